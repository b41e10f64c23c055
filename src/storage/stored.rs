//! What every editable row carries besides its content: the revision that
//! guards updates (AIP-154 etags are made from it in transport), and its
//! timestamps.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use sqlx::PgConnection;

use crate::storage::traced::{Statement, Traced};
use crate::storage::{StorageError, TenantId};

/// Microsecond precision, as PostgreSQL keeps times: a time cut to it
/// compares equal to what is read back after storing it.
pub fn microseconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// A limit that lists everything.
pub const ALL: i64 = i64::MAX;

/// What the database keeps about a stored row besides its content.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// Bumped by every change.
    pub revision: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Rubric versions only: when the version was published.
    pub publish_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    pub value: T,
    pub meta: Meta,
}

/// The revision a write must find: the caller's, when it sent one (from an
/// etag), else the one just read, so that a concurrent change in between is
/// refused rather than overwritten. A caller's revision that is no longer
/// current is refused before any other check can mask it.
pub fn expected_revision(
    kind: &'static str,
    id: &str,
    current: i64,
    expected: Option<i64>,
) -> Result<i64, StorageError> {
    match expected {
        Some(revision) if revision != current => Err(StorageError::stale(kind, id)),
        _ => Ok(current),
    }
}

/// `Ok(None)` for a row that is not there.
pub fn optional<T>(result: Result<T, StorageError>) -> Result<Option<T>, StorageError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The ids among `ids` that the tenant has no row of, by `statement`: one
/// of the `MISSING` statements of a table's repository, which takes the
/// tenant and the ids.
pub(super) async fn missing(
    conn: &mut PgConnection,
    statement: Statement,
    tenant: &TenantId,
    ids: &[String],
) -> Result<Vec<String>, StorageError> {
    Ok(sqlx::query_scalar(statement.sql)
        .bind(&tenant.0)
        .bind(ids)
        .fetch_all(Traced::new(conn, statement))
        .await?)
}

/// The metadata columns as a row part (`#[sqlx(flatten)]`).
#[derive(sqlx::FromRow)]
pub(super) struct MetaRow {
    revision: i64,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
}

impl MetaRow {
    pub(super) fn meta(self, publish_time: Option<DateTime<Utc>>) -> Meta {
        Meta {
            revision: self.revision,
            create_time: self.create_time,
            update_time: self.update_time,
            publish_time,
        }
    }
}
