//! The audit log (migration 0010): one row per write, appended in the
//! write's own transaction; the application role can add and read rows,
//! never change or delete them.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId};

/// Who wrote, with which call: what every audit row of a call shares.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// The token's `sub`.
    pub actor: String,
    /// The full gRPC method name.
    pub method: &'static str,
    pub request_id: String,
}

/// What a write wrote: one resource, or for a batch the first and last of
/// `count`. A subject is named by [`subject_name`], never by its id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub first: String,
    pub last: String,
    pub count: i32,
}

impl Resources {
    pub fn one(name: impl Into<String>) -> Self {
        Self {
            first: name.into(),
            last: String::new(),
            count: 1,
        }
    }

    /// The first and last of `names`, and how many there are.
    pub fn batch(names: &[String]) -> Self {
        match names {
            [] => Self::default(),
            [only] => Self::one(only.clone()),
            [first, .., last] => Self {
                first: first.clone(),
                last: last.clone(),
                count: names.len() as i32,
            },
        }
    }
}

/// The outcome of a write that succeeded (failures carry their gRPC code's name).
pub const OK: &str = "Ok";

const APPEND: &str = "INSERT INTO audit_log \
     (tenant_id, actor, method, resource, resource_count, last_resource, request_id, outcome) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Appends one row on `conn`, in whatever transaction it is in.
pub async fn append(
    conn: &mut PgConnection,
    tenant: &TenantId,
    entry: &AuditEntry,
    resources: &Resources,
    outcome: &str,
) -> Result<(), StorageError> {
    sqlx::query(APPEND)
        .bind(&tenant.0)
        .bind(&entry.actor)
        .bind(entry.method)
        .bind(&resources.first)
        .bind(resources.count)
        .bind(&resources.last)
        .bind(&entry.request_id)
        .bind(outcome)
        .execute(traced!(conn, APPEND))
        .await?;
    Ok(())
}

const SUBJECT_NAME: &str = "SELECT 'subjects/~' || ladder_subject_hash($1)";

/// The name a subject has in the audit log: a keyed hash of its id
/// (HMAC-SHA256 under the deployment's key, kept in the database), so that
/// the log names no one once the subject is erased.
pub async fn subject_name(
    conn: &mut PgConnection,
    subject_id: &str,
) -> Result<String, StorageError> {
    Ok(sqlx::query_scalar(SUBJECT_NAME)
        .bind(subject_id)
        .fetch_one(traced!(conn, SUBJECT_NAME))
        .await?)
}

/// One row of the audit log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub actor: String,
    pub method: String,
    pub resource: String,
    pub resource_count: i32,
    pub last_resource: String,
    pub request_id: String,
    pub outcome: String,
    pub at: DateTime<Utc>,
}

/// Which rows a listing wants; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub method: Option<String>,
    pub actor: Option<String>,
    /// At or after.
    pub start_time: Option<DateTime<Utc>>,
    /// Before.
    pub end_time: Option<DateTime<Utc>>,
}

/// Where a listing resumes: the last row served.
pub type AuditKey = (DateTime<Utc>, i64);

const LIST: &str = "SELECT id, actor, method, resource, resource_count, last_resource, \
            request_id, outcome, at \
     FROM audit_log WHERE tenant_id = $1 \
       AND ($2::text IS NULL OR method = $2) \
       AND ($3::text IS NULL OR actor = $3) \
       AND ($4::timestamptz IS NULL OR at >= $4) \
       AND ($5::timestamptz IS NULL OR at < $5) \
       AND ($6::timestamptz IS NULL OR (at, id) < ($6, $7)) \
     ORDER BY at DESC, id DESC LIMIT $8";

/// Up to `limit` rows matching `filter` older than `before`, newest first.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    filter: &AuditFilter,
    before: Option<AuditKey>,
    limit: i64,
) -> Result<Vec<AuditEvent>, StorageError> {
    Ok(sqlx::query_as(LIST)
        .bind(&tenant.0)
        .bind(&filter.method)
        .bind(&filter.actor)
        .bind(filter.start_time)
        .bind(filter.end_time)
        .bind(before.map(|k| k.0))
        .bind(before.map(|k| k.1))
        .bind(limit)
        .fetch_all(traced!(conn, LIST))
        .await?)
}
