//! Idempotent creates (AIP-155): a create that carries a request id records,
//! in `create_requests`, the id of what it made and what the request asked
//! (a digest per field), so that a retry with the same request id gets that
//! resource back and nothing is written twice, while the same id with
//! another request is refused naming the fields that differ. This module
//! owns the table and the format of the ids it records.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use sqlx::types::Json;

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

/// A create's request id and what the request asked: a digest of each
/// field it sets, by path (`role.name`), the request id left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub id: String,
    pub fields: BTreeMap<String, String>,
}

impl RequestKey {
    /// The paths whose values differ from `other`'s, set in either.
    pub fn differing(&self, other: &BTreeMap<String, String>) -> Vec<String> {
        let mut paths: Vec<String> = self
            .fields
            .iter()
            .filter(|(path, digest)| other.get(*path) != Some(digest))
            .map(|(path, _)| path.clone())
            .chain(
                other
                    .keys()
                    .filter(|path| !self.fields.contains_key(*path))
                    .cloned(),
            )
            .collect();
        paths.sort();
        paths
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

const CLAIM: &str = "INSERT INTO create_requests \
         (tenant_id, method, request_id, resource_id, request_fields) \
     VALUES ($1, $2, $3, '', $4) ON CONFLICT DO NOTHING";

/// `request_fields` is NULL for ids recorded before migration 0017.
const CLAIMED: &str = "SELECT resource_id, request_fields FROM create_requests \
     WHERE tenant_id = $1 AND method = $2 AND request_id = $3";

const RECORD: &str = "UPDATE create_requests SET resource_id = $4 \
     WHERE tenant_id = $1 AND method = $2 AND request_id = $3";

/// Claims a request id for the transaction running on `conn`. `Some(key)`
/// when an earlier create with this id and the same request committed: the
/// caller returns that resource instead; the id with another request is
/// [`StorageError::RequestIdReused`]. A concurrent retry waits here until
/// the first commits.
async fn claim(
    conn: &mut PgConnection,
    tenant: &TenantId,
    method: CreateMethod,
    request: &RequestKey,
) -> Result<Option<String>, StorageError> {
    let claimed = sqlx::query(CLAIM)
        .bind(&tenant.0)
        .bind(method.as_str())
        .bind(&request.id)
        .bind(Json(&request.fields))
        .execute(traced!(conn, CLAIM))
        .await?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    let (resource_id, fields): (String, Option<Json<BTreeMap<String, String>>>) =
        sqlx::query_as(CLAIMED)
            .bind(&tenant.0)
            .bind(method.as_str())
            .bind(&request.id)
            .fetch_one(traced!(conn, CLAIMED))
            .await?;
    match fields.map(|f| request.differing(&f.0)) {
        Some(fields) if !fields.is_empty() => Err(StorageError::RequestIdReused {
            request_id: request.id.clone(),
            fields,
        }),
        _ => Ok(Some(resource_id)),
    }
}

/// Runs `create` once per request id, in the transaction running on `conn`:
/// a retry with the same id gets the resource the first call made (read by
/// `fetch` from the key `key` gave it), and nothing is written twice.
/// Without a request id it just creates.
pub(super) async fn create_once<T>(
    conn: &mut PgConnection,
    tenant: &TenantId,
    method: CreateMethod,
    request: Option<&RequestKey>,
    create: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StorageError>,
    fetch: impl AsyncFnOnce(&mut PgConnection, &str) -> Result<T, StorageError>,
    key: impl FnOnce(&T) -> String,
) -> Result<T, StorageError> {
    let Some(request) = request else {
        return create(conn).await;
    };
    if let Some(key) = claim(conn, tenant, method, request).await? {
        return fetch(conn, &key).await;
    }
    let created = create(conn).await?;
    sqlx::query(RECORD)
        .bind(&tenant.0)
        .bind(method.as_str())
        .bind(&request.id)
        .bind(key(&created))
        .execute(traced!(conn, RECORD))
        .await?;
    Ok(created)
}
