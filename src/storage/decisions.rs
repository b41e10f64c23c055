//! Human decision records (SPEC §11): appended, never changed. The table's
//! trigger (migration 0008) refuses any UPDATE; a subject's erasure deletes
//! their records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::oversight::{Decision, Outcome, Override, Period};
use crate::domain::scoring::Band;
use crate::storage::idempotency::{self, CreateMethod, RequestKey};
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId};

macro_rules! columns {
    () => {
        "id, assessment_id, subject_id, role_id, outcome, band, decided_by, rationale, overrides, \
         decided_at"
    };
}

/// An override as the `overrides` column holds it.
#[derive(Serialize, Deserialize)]
struct OverrideJson {
    competency_id: String,
    level: u8,
    assessed_estimate: f64,
    reason: String,
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    id: Uuid,
    assessment_id: Uuid,
    subject_id: String,
    role_id: String,
    outcome: String,
    band: String,
    decided_by: String,
    rationale: String,
    overrides: Json<Vec<OverrideJson>>,
    decided_at: DateTime<Utc>,
}

impl TryFrom<DecisionRow> for Decision {
    type Error = StorageError;

    fn try_from(row: DecisionRow) -> Result<Self, StorageError> {
        Ok(Decision {
            id: row.id,
            assessment_id: row.assessment_id,
            subject_id: row.subject_id,
            role_id: row.role_id,
            decided_at: row.decided_at,
            outcome: Outcome::parse(&row.outcome)
                .ok_or_else(|| StorageError::corrupt("decision outcome", &row.outcome))?,
            band: Band::parse(&row.band)
                .ok_or_else(|| StorageError::corrupt("decision band", &row.band))?,
            decided_by: row.decided_by,
            rationale: row.rationale,
            overrides: row
                .overrides
                .0
                .into_iter()
                .map(|o| Override {
                    competency_id: o.competency_id,
                    level: o.level,
                    assessed_estimate: o.assessed_estimate,
                    reason: o.reason,
                })
                .collect(),
        })
    }
}

fn rows_to_decisions(rows: Vec<DecisionRow>) -> Result<Vec<Decision>, StorageError> {
    rows.into_iter().map(Decision::try_from).collect()
}

const INSERT: &str = "INSERT INTO decisions (tenant_id, id, assessment_id, subject_id, role_id, \
         outcome, band, decided_by, rationale, overrides, decided_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

async fn insert(
    conn: &mut PgConnection,
    tenant: &TenantId,
    decision: &Decision,
) -> Result<(), StorageError> {
    let overrides: Vec<OverrideJson> = decision
        .overrides
        .iter()
        .map(|o| OverrideJson {
            competency_id: o.competency_id.clone(),
            level: o.level,
            assessed_estimate: o.assessed_estimate,
            reason: o.reason.clone(),
        })
        .collect();
    sqlx::query(INSERT)
        .bind(&tenant.0)
        .bind(decision.id)
        .bind(decision.assessment_id)
        .bind(&decision.subject_id)
        .bind(&decision.role_id)
        .bind(decision.outcome.as_str())
        .bind(decision.band.as_str())
        .bind(&decision.decided_by)
        .bind(&decision.rationale)
        .bind(Json(overrides))
        .bind(decision.decided_at)
        .execute(traced!(conn, INSERT))
        .await?;
    Ok(())
}

/// Appends a decision in the transaction running on `conn` and returns what
/// is stored: with a request id an earlier call already used for the same request, that call's
/// decision.
pub async fn create(
    conn: &mut PgConnection,
    tenant: &TenantId,
    decision: Decision,
    request: Option<&RequestKey>,
) -> Result<Decision, StorageError> {
    idempotency::create_once(
        conn,
        tenant,
        CreateMethod::Decision,
        request,
        async |conn| {
            insert(conn, tenant, &decision).await?;
            Ok(decision.clone())
        },
        async |conn, key| {
            let id = Uuid::parse_str(key)
                .map_err(|_| StorageError::corrupt("decision request key", key))?;
            get(conn, tenant, id).await
        },
        |created| created.id.to_string(),
    )
    .await
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM decisions WHERE tenant_id = $1 AND id = $2"
);

pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Decision, StorageError> {
    let row: Option<DecisionRow> = sqlx::query_as(GET)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(traced!(conn, GET))
        .await?;
    row.ok_or_else(|| StorageError::not_found("decision", id.to_string()))?
        .try_into()
}

/// Which decisions a listing holds.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub subject_id: Option<String>,
    pub role_id: Option<String>,
    /// Made at or after.
    pub decided_after: Option<DateTime<Utc>>,
    /// Made before.
    pub decided_before: Option<DateTime<Utc>>,
}

/// Where a listing of decisions resumes: the last row served.
pub type DecisionKey = (DateTime<Utc>, Uuid);

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM decisions WHERE tenant_id = $1 \
       AND ($2::text IS NULL OR subject_id = $2) \
       AND ($3::text IS NULL OR role_id = $3) \
       AND ($4::timestamptz IS NULL OR decided_at >= $4) \
       AND ($5::timestamptz IS NULL OR decided_at < $5) \
       AND ($6::timestamptz IS NULL OR (decided_at, id) < ($6, $7)) \
     ORDER BY decided_at DESC, id DESC LIMIT $8"
);

/// Up to `limit` decisions matching `filter` older than `before`, newest first.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    filter: &DecisionFilter,
    before: Option<DecisionKey>,
    limit: i64,
) -> Result<Vec<Decision>, StorageError> {
    let rows: Vec<DecisionRow> = sqlx::query_as(LIST)
        .bind(&tenant.0)
        .bind(filter.subject_id.as_deref())
        .bind(filter.role_id.as_deref())
        .bind(filter.decided_after)
        .bind(filter.decided_before)
        .bind(before.map(|k| k.0))
        .bind(before.map(|k| k.1))
        .bind(limit)
        .fetch_all(traced!(conn, LIST))
        .await?;
    rows_to_decisions(rows)
}

const OF_ROLE_IN_PERIOD: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM decisions WHERE tenant_id = $1 AND role_id = $2 \
       AND decided_at >= $3 AND decided_at < $4"
);

/// Every decision on assessments of `role_id` made within `period`.
pub async fn of_role_in_period(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    period: Period,
) -> Result<Vec<Decision>, StorageError> {
    let rows: Vec<DecisionRow> = sqlx::query_as(OF_ROLE_IN_PERIOD)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(period.start)
        .bind(period.end)
        .fetch_all(traced!(conn, OF_ROLE_IN_PERIOD))
        .await?;
    rows_to_decisions(rows)
}
