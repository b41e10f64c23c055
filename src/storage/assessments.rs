//! Stored assessments: snapshots that never change after they are written.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::assessment::Assessment;
use crate::domain::scoring::{RoleScore, ScoringPolicy};
use crate::storage::{StorageError, TenantId};

const COLUMNS: &str = "id, subject_id, role_id, rubric_version, as_of, policy, result, create_time";

const INSERT: &str = "INSERT INTO assessments (tenant_id, id, subject_id, role_id, rubric_version, as_of, \
         policy, result, readiness, coverage, band, request_id, create_time) \
     VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8::json, $9, $10, $11, $12, $13) \
     ON CONFLICT (tenant_id, request_id) WHERE request_id IS NOT NULL DO NOTHING";

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
        }
    }
}

/// JSON text for a `json` column: bound as text and cast by the statement,
/// so the server only checks its syntax. (sqlx's `Json` binds `jsonb`, which
/// the server would take apart and print again.)
fn json_text(value: &impl serde::Serialize) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| StorageError::Database(sqlx::Error::Encode(e.into())))
}

/// Stores a snapshot and returns what is stored: with a `request_id` that a
/// concurrent call already used, that call's assessment.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: &TenantId,
    assessment: Assessment,
    request_id: Option<&str>,
) -> Result<Assessment, StorageError> {
    let score = &assessment.score;
    let inserted = sqlx::query(INSERT)
        .bind(&tenant.0)
        .bind(assessment.id)
        .bind(&assessment.subject_id)
        .bind(&assessment.role_id)
        .bind(assessment.rubric_version)
        .bind(assessment.as_of)
        .bind(json_text(&assessment.policy)?)
        .bind(json_text(score)?)
        .bind(score.readiness)
        .bind(score.coverage)
        .bind(format!("{:?}", score.band))
        .bind(request_id)
        .bind(assessment.create_time)
        .execute(&mut *conn)
        .await?;
    match request_id {
        Some(rid) if inserted.rows_affected() == 0 => {
            by_request_id(conn, tenant, rid).await?.ok_or_else(|| {
                StorageError::FailedPrecondition(format!("request_id {rid:?} vanished"))
            })
        }
        _ => Ok(assessment),
    }
}

pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Assessment, StorageError> {
    let row: Option<AssessmentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM assessments WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(&tenant.0)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Assessment::from)
        .ok_or_else(|| StorageError::NotFound {
            kind: "assessment",
            id: id.to_string(),
        })
}

/// The assessment a request id already produced, if any.
pub async fn by_request_id(
    conn: &mut PgConnection,
    tenant: &TenantId,
    request_id: &str,
) -> Result<Option<Assessment>, StorageError> {
    let row: Option<AssessmentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM assessments WHERE tenant_id = $1 AND request_id = $2"
    ))
    .bind(&tenant.0)
    .bind(request_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Assessment::from))
}

/// Where a listing of assessments resumes: the last row served.
pub type AssessmentKey = (DateTime<Utc>, Uuid);

/// Up to `limit` of a subject's assessments older than `before`, newest first.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    subject_id: &str,
    before: Option<AssessmentKey>,
    limit: i64,
) -> Result<Vec<Assessment>, StorageError> {
    let rows: Vec<AssessmentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM assessments WHERE tenant_id = $1 AND subject_id = $2 \
           AND ($3::timestamptz IS NULL OR (create_time, id) < ($3, $4)) \
         ORDER BY create_time DESC, id DESC LIMIT $5"
    ))
    .bind(&tenant.0)
    .bind(subject_id)
    .bind(before.map(|k| k.0))
    .bind(before.map(|k| k.1))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Assessment::from).collect())
}
