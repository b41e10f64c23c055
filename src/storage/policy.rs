//! The tenant's scoring policy; the SPEC defaults until a tenant changes it.

use sqlx::PgConnection;
use sqlx::types::Json;

use crate::domain::scoring::ScoringPolicy;
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId};

/// What a stale policy write names; a tenant has one policy, named by the tenant.
pub const KIND: &str = "scoring policy";

const GET: &str = "SELECT policy, revision FROM scoring_policies WHERE tenant_id = $1";

/// Inserts the first version or replaces the one at `revision`; nothing is
/// returned when someone else changed it in between.
const PUT: &str = "INSERT INTO scoring_policies (tenant_id, policy) VALUES ($1, $2) \
     ON CONFLICT (tenant_id) DO UPDATE SET policy = EXCLUDED.policy, \
         revision = scoring_policies.revision + 1, update_time = now() \
     WHERE scoring_policies.revision = $3 \
     RETURNING revision";

/// The policy and its revision (0 while the defaults apply).
pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<(ScoringPolicy, i64), StorageError> {
    let row: Option<(Json<ScoringPolicy>, i64)> = sqlx::query_as(GET)
        .bind(&tenant.0)
        .fetch_optional(traced!(conn, GET))
        .await?;
    Ok(row.map_or_else(|| (ScoringPolicy::default(), 0), |(p, r)| (p.0, r)))
}

/// Stores `policy` if the stored one is still at `revision` (0: the
/// defaults, nothing stored yet). Returns the new revision.
pub async fn put(
    conn: &mut PgConnection,
    tenant: &TenantId,
    policy: &ScoringPolicy,
    revision: i64,
) -> Result<i64, StorageError> {
    sqlx::query_scalar(PUT)
        .bind(&tenant.0)
        .bind(Json(policy))
        .bind(revision)
        .fetch_optional(traced!(conn, PUT))
        .await?
        .ok_or_else(|| StorageError::stale(KIND, &tenant.0))
}
