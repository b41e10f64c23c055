//! The deployment's page-token key (migration 0017): made once per database
//! so that every replica seals and opens the same tokens; read by a server
//! the first time it pages, on that call's own connection (a call holding
//! the pool's last connection must not wait for another), and kept.

use sqlx::PgConnection;

use crate::storage::traced::traced;
use crate::storage::{Db, StorageError};

const READ: &str = "SELECT key FROM page_token_key";

impl Db {
    pub async fn page_token_key(&self, conn: &mut PgConnection) -> Result<&[u8; 32], StorageError> {
        self.page_token_key
            .get_or_try_init(async || {
                let key: Vec<u8> = sqlx::query_scalar(READ)
                    .fetch_one(traced!(conn, READ))
                    .await?;
                <[u8; 32]>::try_from(key).map_err(|key| {
                    StorageError::corrupt("page token key of length", &key.len().to_string())
                })
            })
            .await
    }
}
