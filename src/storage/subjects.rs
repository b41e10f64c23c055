//! Subjects and the role each holds now.

use sqlx::PgConnection;

use crate::domain::assessment::Subject;
use crate::storage::stored::optional;
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId};

/// A subject exists once it has a stored row or any evidence; one known only
/// from its evidence has no current role and revision 0.
const GET: &str = "SELECT id, current_role_id, revision FROM subjects \
         WHERE tenant_id = $1 AND id = $2 \
     UNION ALL SELECT $2::text, NULL::text, 0::bigint \
         WHERE EXISTS (SELECT 1 FROM evidence WHERE tenant_id = $1 AND subject_id = $2) \
     ORDER BY revision DESC LIMIT 1";

/// Revision of a subject known only from its evidence.
const FROM_EVIDENCE_ONLY: i64 = 0;

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
/// subject's row when it has evidence, or when `allow_missing`. Returns the
/// new revision.
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
    match optional(get(&mut *conn, tenant, &subject.id).await)? {
        Some((_, FROM_EVIDENCE_ONLY))
            if expected_revision.is_none_or(|r| r == FROM_EVIDENCE_ONLY) => {}
        Some(_) => return Err(StorageError::stale("subject", &subject.id)),
        None if allow_missing => {}
        None => return Err(StorageError::not_found("subject", &subject.id)),
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
