//! Stored assessments: snapshots that never change after they are written.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::assessment::Assessment;
use crate::domain::scoring::{RoleScore, ScoringPolicy};
use crate::storage::audit::{self, AuditEntry};
use crate::storage::idempotency::{self, CreateMethod, RequestKey};
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantConnection, TenantId, timeout_setting};

macro_rules! columns {
    () => {
        "id, subject_id, role_id, rubric_version, as_of, policy, result, create_time, calibration_id"
    };
}

#[derive(sqlx::FromRow)]
struct AssessmentRow {
    id: Uuid,
    subject_id: String,
    role_id: String,
    rubric_version: i32,
    as_of: DateTime<Utc>,
    policy: Json<ScoringPolicy>,
    result: Json<RoleScore>,
    create_time: DateTime<Utc>,
    calibration_id: Option<Uuid>,
}

impl From<AssessmentRow> for Assessment {
    fn from(row: AssessmentRow) -> Self {
        Assessment {
            id: row.id,
            subject_id: row.subject_id,
            role_id: row.role_id,
            rubric_version: row.rubric_version,
            as_of: row.as_of,
            policy: row.policy.0,
            score: row.result.0,
            create_time: row.create_time,
            calibration_id: row.calibration_id,
        }
    }
}

/// JSON text for a `json` column: bound as text and cast by the statement,
/// so the server only checks its syntax. (sqlx's `Json` binds `jsonb`, which
/// the server would take apart and print again.)
fn json_text(value: &impl serde::Serialize) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| StorageError::Corrupt(format!("encoding JSON: {e}")))
}

/// The snapshot and its audit row, in one statement that also sets the
/// tenant and `lock_timeout` (migration 0016): for its own implicit
/// transaction when run alone, else for the rest of the caller's.
const INSERT: &str = "SELECT ladder_store_assessment($1, $2, $3, $4, $5, $6, $7, \
     $8::json, $9::json, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";

async fn insert(
    conn: &mut PgConnection,
    tenant: &TenantId,
    lock_timeout: &str,
    assessment: &Assessment,
    request_id: Option<&str>,
    audit: &AuditEntry,
) -> Result<(), StorageError> {
    let score = &assessment.score;
    sqlx::query(INSERT)
        .bind(&tenant.0)
        .bind(lock_timeout)
        .bind(assessment.id)
        .bind(&assessment.subject_id)
        .bind(&assessment.role_id)
        .bind(assessment.rubric_version)
        .bind(assessment.as_of)
        .bind(json_text(&assessment.policy)?)
        .bind(json_text(score)?)
        .bind(score.readiness)
        .bind(score.coverage)
        .bind(score.band.as_str())
        .bind(request_id)
        .bind(assessment.create_time)
        .bind(assessment.calibration_id)
        .bind(&audit.actor)
        .bind(audit.method)
        .bind(&audit.request_id)
        .bind(audit::OK)
        .execute(traced!(conn, INSERT))
        .await?;
    Ok(())
}

/// Stores a snapshot and returns what is stored: with a request id an
/// earlier call already used for the same request, that call's assessment. Either one statement
/// (no request id) or a short transaction of its own on `conn` (the tenant
/// and the call's remaining time set for it only), so that a call cancelled
/// before its commit leaves nothing behind and every row a create writes,
/// the audit row included, commits together or not at all.
pub async fn create(
    conn: &mut TenantConnection,
    tenant: &TenantId,
    assessment: Assessment,
    request: Option<&RequestKey>,
    audit: &AuditEntry,
) -> Result<Assessment, StorageError> {
    debug_assert_eq!(conn.tenant(), tenant);
    let lock_timeout = timeout_setting(Some(conn.remaining()));
    // Without a request id to look up first, one statement writes both rows
    // and sets its tenant itself: one round trip (not behind a transaction
    // pooler, where even one statement needs a transaction of its own).
    if request.is_none() && !conn.behind_pooler() {
        insert(conn.raw(), tenant, &lock_timeout, &assessment, None, audit).await?;
        return Ok(assessment);
    }
    let mut tx = conn.begin().await?;
    let stored = match request {
        None => {
            insert(&mut tx, tenant, &lock_timeout, &assessment, None, audit).await?;
            assessment
        }
        Some(request) => {
            idempotency::create_once(
                &mut tx,
                tenant,
                CreateMethod::Assessment,
                Some(request),
                async |conn| {
                    let request_id = Some(request.id.as_str());
                    insert(conn, tenant, &lock_timeout, &assessment, request_id, audit).await?;
                    Ok(assessment.clone())
                },
                async |conn, key| {
                    let id = Uuid::parse_str(key)
                        .map_err(|_| StorageError::corrupt("assessment request key", key))?;
                    get(conn, tenant, id).await
                },
                |created| created.id.to_string(),
            )
            .await?
        }
    };
    tx.commit().await?;
    Ok(stored)
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM assessments WHERE tenant_id = $1 AND id = $2"
);

pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Assessment, StorageError> {
    let row: Option<AssessmentRow> = sqlx::query_as(GET)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(traced!(conn, GET))
        .await?;
    row.map(Assessment::from)
        .ok_or_else(|| StorageError::not_found("assessment", id.to_string()))
}

/// Where a listing of assessments resumes: the last row served.
pub type AssessmentKey = (DateTime<Utc>, Uuid);

/// Which assessments a listing selects; every filter set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssessmentFilter {
    pub subject_id: Option<String>,
    pub role_id: Option<String>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
}

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM assessments WHERE tenant_id = $1 \
       AND ($2::text IS NULL OR subject_id = $2) \
       AND ($3::text IS NULL OR role_id = $3) \
       AND ($4::timestamptz IS NULL OR create_time >= $4) \
       AND ($5::timestamptz IS NULL OR create_time < $5) \
       AND ($6::timestamptz IS NULL OR (create_time, id) < ($6, $7)) \
     ORDER BY create_time DESC, id DESC LIMIT $8"
);

/// Up to `limit` of a subject's assessments older than `before`, newest first.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    subject_id: &str,
    before: Option<AssessmentKey>,
    limit: i64,
) -> Result<Vec<Assessment>, StorageError> {
    let of_subject = AssessmentFilter {
        subject_id: Some(subject_id.to_string()),
        ..AssessmentFilter::default()
    };
    list_matching(conn, tenant, &of_subject, before, limit).await
}

/// Up to `limit` assessments matching `filter` older than `before`, newest
/// first.
pub async fn list_matching(
    conn: &mut PgConnection,
    tenant: &TenantId,
    filter: &AssessmentFilter,
    before: Option<AssessmentKey>,
    limit: i64,
) -> Result<Vec<Assessment>, StorageError> {
    let rows: Vec<AssessmentRow> = sqlx::query_as(LIST)
        .bind(&tenant.0)
        .bind(&filter.subject_id)
        .bind(&filter.role_id)
        .bind(filter.created_after)
        .bind(filter.created_before)
        .bind(before.map(|k| k.0))
        .bind(before.map(|k| k.1))
        .bind(limit)
        .fetch_all(traced!(conn, LIST))
        .await?;
    Ok(rows.into_iter().map(Assessment::from).collect())
}
