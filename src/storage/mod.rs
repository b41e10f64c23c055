//! PostgreSQL repositories. Every query is tenant-scoped, and every operation
//! runs in a transaction opened by [`Db::begin`], the one place that applies the
//! tenant to the database session.

pub mod assessments;
mod error;
pub mod etag;
pub mod evidence;
pub mod framework;
pub mod framework_file;
pub mod policy;
pub mod subjects;

pub use error::StorageError;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

/// The tenant every row of a transaction belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(pub String);

/// A transaction bound to one tenant.
pub type TenantTx = Transaction<'static, Postgres>;

const SET_TENANT: &str = "SELECT set_config('ladder.tenant_id', $1, true)";

#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    pub async fn connect(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// Applies the migrations in `migrations/`; safe to run again and from
    /// several replicas at once (sqlx serialises them with an advisory lock).
    pub async fn migrate(&self) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Opens a transaction for one tenant; the database session's
    /// `ladder.tenant_id` is set for its duration, so row-level security can
    /// enforce isolation without any handler changing.
    pub async fn begin(&self, tenant: &TenantId) -> Result<TenantTx, StorageError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(SET_TENANT)
            .bind(&tenant.0)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Commits a transaction opened by [`Db::begin`].
pub async fn commit(tx: TenantTx) -> Result<(), StorageError> {
    Ok(tx.commit().await?)
}

/// Creates database `name` on the server behind `server` (connected to its
/// `postgres` maintenance database) unless it exists.
pub async fn ensure_database(server: &PgConnectOptions, name: &str) -> Result<(), StorageError> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(&server.clone().database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        sqlx::query(&sql).execute(&mut conn).await?;
    }
    conn.close().await?;
    Ok(())
}
