//! Subjects and the role each holds now.

use sqlx::PgConnection;

use crate::domain::assessment::Subject;
use crate::storage::stored::optional;
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId};

const GET: &str =
    "SELECT id, current_role_id, revision FROM subjects WHERE tenant_id = $1 AND id = $2";

const UPDATE: &str = "UPDATE subjects SET current_role_id = $3, revision = revision + 1, update_time = now() \
     WHERE tenant_id = $1 AND id = $2 AND ($4::bigint IS NULL OR revision = $4) \
     RETURNING revision";

const INSERT: &str = "INSERT INTO subjects (tenant_id, id, current_role_id) VALUES ($1, $2, $3) \
     ON CONFLICT (tenant_id, id) DO NOTHING RETURNING revision";

/// The subject and its revision.
pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<(Subject, i64), StorageError> {
    let row: Option<(String, Option<String>, i64)> = sqlx::query_as(GET)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(traced!(conn, GET))
        .await?;
    let (id, current_role_id, revision) =
        row.ok_or_else(|| StorageError::not_found("subject", id))?;
    Ok((
        Subject {
            id,
            current_role_id,
        },
        revision,
    ))
}

/// Sets the current role, checking `expected_revision` when given; creates the
/// subject when `allow_missing`. Returns the new revision.
pub async fn set_current_role(
    conn: &mut PgConnection,
    tenant: &TenantId,
    subject: &Subject,
    expected_revision: Option<i64>,
    allow_missing: bool,
) -> Result<i64, StorageError> {
    let updated: Option<i64> = sqlx::query_scalar(UPDATE)
        .bind(&tenant.0)
        .bind(&subject.id)
        .bind(&subject.current_role_id)
        .bind(expected_revision)
        .fetch_optional(traced!(conn, UPDATE))
        .await?;
    if let Some(revision) = updated {
        return Ok(revision);
    }
    if optional(get(&mut *conn, tenant, &subject.id).await)?.is_some() {
        return Err(StorageError::stale("subject", &subject.id));
    }
    if !allow_missing {
        return Err(StorageError::not_found("subject", &subject.id));
    }
    sqlx::query_scalar(INSERT)
        .bind(&tenant.0)
        .bind(&subject.id)
        .bind(&subject.current_role_id)
        .fetch_optional(traced!(conn, INSERT))
        .await?
        // Created concurrently by another call: its revision is not the caller's.
        .ok_or_else(|| StorageError::stale("subject", &subject.id))
}
