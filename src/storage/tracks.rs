//! Tracks: the families of roles of a tenant's framework.

use sqlx::PgConnection;

use crate::domain::framework::Track;
use crate::storage::traced::{statement, traced};
use crate::storage::{StorageError, TenantId, stored};

const IN_FRAMEWORK_ORDER: &str = "SELECT id, name, description FROM tracks \
     WHERE tenant_id = $1 AND retire_time IS NULL ORDER BY position, id";

const PAGE: &str = "SELECT id, name, description FROM tracks \
     WHERE tenant_id = $1 AND retire_time IS NULL AND ($2::text IS NULL OR id > $2) \
     ORDER BY id LIMIT $3";

const UPSERT: &str = "INSERT INTO tracks (tenant_id, id, name, description, position) \
     VALUES ($1, $2, $3, $4, COALESCE($5, nextval('framework_positions'))) \
     ON CONFLICT (tenant_id, id) DO UPDATE \
         SET name = EXCLUDED.name, description = EXCLUDED.description, \
             position = COALESCE($5, tracks.position), update_time = now() \
         WHERE (tracks.name, tracks.description, tracks.position) \
             IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description, COALESCE($5, tracks.position))";

type TrackRow = (String, String, String);

fn track((id, name, description): TrackRow) -> Track {
    Track {
        id,
        name,
        description,
    }
}

/// Every track of the tenant in use (not retired), in the order its
/// framework lists them.
pub async fn in_framework_order(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<Track>, StorageError> {
    let rows: Vec<TrackRow> = sqlx::query_as(IN_FRAMEWORK_ORDER)
        .bind(&tenant.0)
        .fetch_all(traced!(conn, IN_FRAMEWORK_ORDER))
        .await?;
    Ok(rows.into_iter().map(track).collect())
}

/// Up to `limit` tracks in use after `after`, in id order.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Track>, StorageError> {
    let rows: Vec<TrackRow> = sqlx::query_as(PAGE)
        .bind(&tenant.0)
        .bind(after)
        .bind(limit)
        .fetch_all(traced!(conn, PAGE))
        .await?;
    Ok(rows.into_iter().map(track).collect())
}

/// Creates the track or brings it to `t`; `position` places it in framework
/// order (`None` keeps a stored track's place and puts a new one last).
pub async fn put(
    conn: &mut PgConnection,
    tenant: &TenantId,
    t: &Track,
    position: Option<i64>,
) -> Result<(), StorageError> {
    sqlx::query(UPSERT)
        .bind(&tenant.0)
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.description)
        .bind(position)
        .execute(traced!(conn, UPSERT))
        .await?;
    Ok(())
}

const MISSING: &str = "SELECT ids.id FROM unnest($2::text[]) AS ids(id) \
     WHERE NOT EXISTS (SELECT 1 FROM tracks t \
         WHERE t.tenant_id = $1 AND t.id = ids.id AND t.retire_time IS NULL)";

/// The ids among `ids` that the tenant has no track of: retired tracks are
/// missing too, nothing new may refer to them.
pub async fn missing(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[String],
) -> Result<Vec<String>, StorageError> {
    stored::missing(conn, statement!(MISSING), tenant, ids).await
}
