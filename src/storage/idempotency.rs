//! Idempotent creates (AIP-155): a create that carries a request id records,
//! in `create_requests`, the id of what it made, so that a retry with the
//! same request id gets that resource back and nothing is written twice.
//! This module owns the table and the format of the ids it records.

use sqlx::PgConnection;

use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId};

/// The creates that honour a request id; each keeps its own ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMethod {
    Competency,
    Role,
    Rubric,
    Assessment,
    Decision,
}

impl CreateMethod {
    /// The name `create_requests.method` holds.
    fn as_str(self) -> &'static str {
        match self {
            CreateMethod::Competency => "CreateCompetency",
            CreateMethod::Role => "CreateRole",
            CreateMethod::Rubric => "CreateRubric",
            CreateMethod::Assessment => "CreateAssessment",
            CreateMethod::Decision => "RecordDecision",
        }
    }
}

/// The recorded id of a rubric version.
pub(super) fn rubric_key(role_id: &str, version: i32) -> String {
    format!("{role_id}/{version}")
}

/// The (role, version) of a recorded rubric id.
pub(super) fn rubric_from_key(key: &str) -> Result<(&str, i32), StorageError> {
    key.rsplit_once('/')
        .and_then(|(role, version)| Some((role, version.parse().ok()?)))
        .ok_or_else(|| StorageError::corrupt("rubric request key", key))
}

const CLAIM: &str = "INSERT INTO create_requests (tenant_id, method, request_id, resource_id) \
     VALUES ($1, $2, $3, '') ON CONFLICT DO NOTHING";

const CLAIMED: &str = "SELECT resource_id FROM create_requests \
     WHERE tenant_id = $1 AND method = $2 AND request_id = $3";

const RECORD: &str = "UPDATE create_requests SET resource_id = $4 \
     WHERE tenant_id = $1 AND method = $2 AND request_id = $3";

/// Claims a request id for the transaction running on `conn`. `Some(key)`
/// when an earlier create with this id committed: the caller returns that
/// resource instead. A concurrent retry waits here until the first commits.
async fn claim(
    conn: &mut PgConnection,
    tenant: &TenantId,
    method: CreateMethod,
    request_id: &str,
) -> Result<Option<String>, StorageError> {
    let claimed = sqlx::query(CLAIM)
        .bind(&tenant.0)
        .bind(method.as_str())
        .bind(request_id)
        .execute(traced!(conn, CLAIM))
        .await?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    Ok(Some(
        sqlx::query_scalar(CLAIMED)
            .bind(&tenant.0)
            .bind(method.as_str())
            .bind(request_id)
            .fetch_one(traced!(conn, CLAIMED))
            .await?,
    ))
}

/// Runs `create` once per request id, in the transaction running on `conn`:
/// a retry with the same id gets the resource the first call made (read by
/// `fetch` from the key `key` gave it), and nothing is written twice.
/// Without a request id it just creates.
pub(super) async fn create_once<T>(
    conn: &mut PgConnection,
    tenant: &TenantId,
    method: CreateMethod,
    request_id: Option<&str>,
    create: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StorageError>,
    fetch: impl AsyncFnOnce(&mut PgConnection, &str) -> Result<T, StorageError>,
    key: impl FnOnce(&T) -> String,
) -> Result<T, StorageError> {
    let Some(request_id) = request_id else {
        return create(conn).await;
    };
    if let Some(key) = claim(conn, tenant, method, request_id).await? {
        return fetch(conn, &key).await;
    }
    let created = create(conn).await?;
    sqlx::query(RECORD)
        .bind(&tenant.0)
        .bind(method.as_str())
        .bind(request_id)
        .bind(key(&created))
        .execute(traced!(conn, RECORD))
        .await?;
    Ok(created)
}
