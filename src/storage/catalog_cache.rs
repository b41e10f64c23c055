//! Each tenant's catalog (roles, transitions, published rubrics) as last read,
//! with the framework revision it was read at. Reading it costs four queries
//! and it changes rarely; the revision, which triggers move on every change
//! (migration 0003), is read with each subject's evidence, so a stale entry is
//! never used, on this replica or any other.

use std::sync::Arc;

use quick_cache::sync::Cache;
use sqlx::{Connection, PgConnection};

use crate::domain::framework::{Catalog, RubricState};
use crate::storage::rubrics::RubricFilter;
use crate::storage::stored::ALL;
use crate::storage::traced::traced;
use crate::storage::{
    SET_TENANT_AND_TIMEOUT, StorageError, TenantId, roles, rubrics, timeout_setting, tracks,
};

/// How many tenants' catalogs a server keeps (a catalog of the built-in
/// framework's size takes some tens of kilobytes).
const CAPACITY: usize = 1000;

const REVISION: &str = "SELECT framework_revision FROM tenants WHERE tenant_id = $1";

#[derive(Debug, Clone)]
struct Entry {
    revision: i64,
    catalog: Arc<Catalog>,
}

pub struct CatalogCache {
    entries: Cache<TenantId, Entry>,
}

impl std::fmt::Debug for CatalogCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogCache")
            .field("tenants", &self.entries.len())
            .finish()
    }
}

impl Default for CatalogCache {
    fn default() -> Self {
        Self {
            entries: Cache::new(CAPACITY),
        }
    }
}

impl CatalogCache {
    /// The tenant's catalog at `revision` or later: from memory when the
    /// cached one was read at `revision`, otherwise read again in a
    /// transaction of its own on `conn` (outside any), whose statements are
    /// cut once `budget` has passed.
    pub async fn get(
        &self,
        conn: &mut PgConnection,
        tenant: &TenantId,
        revision: Option<i64>,
        budget: std::time::Duration,
    ) -> Result<Arc<Catalog>, StorageError> {
        if let Some(entry) = self.entries.get(tenant)
            && Some(entry.revision) == revision
        {
            return Ok(entry.catalog);
        }
        // One snapshot for the revision and everything the catalog is read
        // from, so that the pair cached is exact.
        let mut tx = conn
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        sqlx::query(SET_TENANT_AND_TIMEOUT)
            .bind(&tenant.0)
            .bind(timeout_setting(Some(budget)))
            .execute(traced!(tx, SET_TENANT_AND_TIMEOUT))
            .await?;
        let read_at: Option<i64> = sqlx::query_scalar(REVISION)
            .bind(&tenant.0)
            .fetch_optional(traced!(tx, REVISION))
            .await?;
        let catalog = Arc::new(read(&mut tx, tenant).await?);
        tx.commit().await?;
        if let Some(revision) = read_at {
            self.entries.insert(
                tenant.clone(),
                Entry {
                    revision,
                    catalog: Arc::clone(&catalog),
                },
            );
        }
        Ok(catalog)
    }
}

/// Every track and role in use (in framework order), each role with its
/// transitions, and every published rubric, read on `conn`.
pub(super) async fn read(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Catalog, StorageError> {
    let tracks = tracks::in_framework_order(conn, tenant).await?;
    let roles = roles::in_framework_order(conn, tenant).await?;
    let published = RubricFilter {
        role_id: None,
        state: Some(RubricState::Published),
    };
    let rubrics = rubrics::list(conn, tenant, None, ALL, &published).await?;
    Ok(Catalog::new(
        tracks,
        roles.into_iter().map(|r| r.value).collect(),
        rubrics.into_iter().map(|r| r.value).collect(),
    ))
}
