//! Rater calibrations (SPEC §10): the ratings a run reads, and the immutable
//! snapshots it stores (migration 0009 refuses any change to them). The
//! latest calibration's effects reach scoring through the one scoring
//! statement, `scoring_inputs::read`.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::calibration::{
    Calibration, CalibrationRun, CalibrationWindow, RaterEffect, RaterEffects, Rating, RatingSet,
};
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId};

pub const KIND: &str = "calibration";

/// Every rated evidence item of the tenant in the window, in no order (the
/// estimator's result does not depend on it).
const RATINGS: &str = "SELECT subject_id, competency_id, rater_id, level, confidence \
     FROM evidence \
     WHERE tenant_id = $1 AND rater_id <> '' AND observed_at > $2 AND observed_at <= $3";

/// Reads the tenant's ratings in `window` in one streaming pass: rows are
/// interned into the set as they arrive, never held as a whole result.
pub async fn ratings(
    conn: &mut PgConnection,
    tenant: &TenantId,
    window: CalibrationWindow,
) -> Result<RatingSet, StorageError> {
    let mut set = RatingSet::new();
    let mut rows = sqlx::query(RATINGS)
        .bind(&tenant.0)
        .bind(window.starts_after())
        .bind(window.as_of)
        .fetch(traced!(conn, RATINGS));
    while let Some(row) = rows.try_next().await? {
        let rating = Rating {
            subject_id: row.try_get(0)?,
            competency_id: row.try_get(1)?,
            rater_id: row.try_get(2)?,
            level: row.try_get(3)?,
            confidence: row.try_get(4)?,
        };
        // Stored evidence passed the same checks when it was ingested.
        set.push(rating)
            .map_err(|v| StorageError::Corrupt(format!("stored evidence as a rating: {v}")))?;
    }
    Ok(set)
}

const INSERT: &str = "INSERT INTO calibrations (tenant_id, id, as_of, window_days, \
         rater_prior_strength, ratings, subjects, cells, raters, residual_scale, error_bound, \
         create_time) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// Every effect of one calibration in one statement, from parallel arrays.
const INSERT_EFFECTS: &str = "INSERT INTO rater_effects (tenant_id, calibration_id, rater_id, \
         leniency, ratings, weight, overlap, standard_error) \
     SELECT $1, $2, e.* FROM UNNEST($3::text[], $4::float8[], $5::int8[], $6::float8[], \
         $7::int8[], $8::float8[]) AS e";

/// A count as PostgreSQL's bigint holds it.
fn bigint(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Stores `calibration` as a new snapshot with its per-rater effects, in
/// two statements of the caller's transaction.
pub async fn create(
    conn: &mut PgConnection,
    tenant: &TenantId,
    run: &CalibrationRun,
    calibration: &Calibration,
) -> Result<(), StorageError> {
    sqlx::query(INSERT)
        .bind(&tenant.0)
        .bind(run.id)
        .bind(run.window.as_of)
        .bind(i32::try_from(run.window.window_days).unwrap_or(i32::MAX))
        .bind(run.rater_prior_strength)
        .bind(bigint(run.ratings))
        .bind(bigint(run.subjects))
        .bind(bigint(run.cells))
        .bind(bigint(run.raters))
        .bind(run.residual_scale)
        .bind(run.error_bound)
        .bind(run.create_time)
        .execute(traced!(conn, INSERT))
        .await?;
    let raters = &calibration.raters;
    sqlx::query(INSERT_EFFECTS)
        .bind(&tenant.0)
        .bind(run.id)
        .bind(
            raters
                .iter()
                .map(|r| r.rater_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(raters.iter().map(|r| r.leniency).collect::<Vec<_>>())
        .bind(raters.iter().map(|r| bigint(r.ratings)).collect::<Vec<_>>())
        .bind(raters.iter().map(|r| r.weight).collect::<Vec<_>>())
        .bind(raters.iter().map(|r| bigint(r.overlap)).collect::<Vec<_>>())
        .bind(raters.iter().map(|r| r.standard_error).collect::<Vec<_>>())
        .execute(traced!(conn, INSERT_EFFECTS))
        .await?;
    Ok(())
}

macro_rules! columns {
    () => {
        "id, as_of, window_days, rater_prior_strength, ratings, subjects, cells, raters, \
         residual_scale, error_bound, create_time"
    };
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: Uuid,
    as_of: DateTime<Utc>,
    window_days: i32,
    rater_prior_strength: f64,
    ratings: i64,
    subjects: i64,
    cells: i64,
    raters: i64,
    residual_scale: f64,
    error_bound: f64,
    create_time: DateTime<Utc>,
}

impl From<RunRow> for CalibrationRun {
    fn from(row: RunRow) -> Self {
        // The table's CHECK constraints keep every count and the window
        // non-negative.
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        CalibrationRun {
            id: row.id,
            window: CalibrationWindow {
                as_of: row.as_of,
                window_days: u32::try_from(row.window_days).unwrap_or_default(),
            },
            rater_prior_strength: row.rater_prior_strength,
            ratings: count(row.ratings),
            subjects: count(row.subjects),
            cells: count(row.cells),
            raters: count(row.raters),
            residual_scale: row.residual_scale,
            error_bound: row.error_bound,
            create_time: row.create_time,
        }
    }
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM calibrations WHERE tenant_id = $1 AND id = $2"
);

pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<CalibrationRun, StorageError> {
    let row: Option<RunRow> = sqlx::query_as(GET)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(traced!(conn, GET))
        .await?;
    row.map(CalibrationRun::from)
        .ok_or_else(|| StorageError::not_found(KIND, id.to_string()))
}

/// Where a listing of calibrations resumes: the last row served.
pub type CalibrationKey = (DateTime<Utc>, Uuid);

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM calibrations WHERE tenant_id = $1 \
       AND ($2::timestamptz IS NULL OR (create_time, id) < ($2, $3)) \
     ORDER BY create_time DESC, id DESC LIMIT $4"
);

/// Up to `limit` of the tenant's calibrations older than `before`, newest first.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    before: Option<CalibrationKey>,
    limit: i64,
) -> Result<Vec<CalibrationRun>, StorageError> {
    let rows: Vec<RunRow> = sqlx::query_as(LIST)
        .bind(&tenant.0)
        .bind(before.map(|k| k.0))
        .bind(before.map(|k| k.1))
        .bind(limit)
        .fetch_all(traced!(conn, LIST))
        .await?;
    Ok(rows.into_iter().map(CalibrationRun::from).collect())
}

/// The orders rater effects can be listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaterEffectOrder {
    /// Largest |b_r| first, then by rater id.
    Magnitude,
    RaterId,
}

/// Where a listing of rater effects resumes: the order it was served in and
/// its last row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaterEffectKey {
    pub order: RaterEffectOrder,
    pub leniency: f64,
    pub rater_id: String,
}

impl RaterEffectKey {
    pub fn of(order: RaterEffectOrder, effect: &RaterEffect) -> Self {
        Self {
            order,
            leniency: effect.leniency,
            rater_id: effect.rater_id.clone(),
        }
    }
}

const LIST_EFFECTS_BY_MAGNITUDE: &str = "SELECT rater_id, leniency, ratings, weight, overlap, \
         standard_error \
     FROM rater_effects WHERE tenant_id = $1 AND calibration_id = $2 \
       AND ($3::float8 IS NULL OR abs(leniency) < $3 OR (abs(leniency) = $3 AND rater_id > $4)) \
     ORDER BY abs(leniency) DESC, rater_id LIMIT $5";

const LIST_EFFECTS_BY_RATER: &str = "SELECT rater_id, leniency, ratings, weight, overlap, \
         standard_error \
     FROM rater_effects WHERE tenant_id = $1 AND calibration_id = $2 \
       AND ($3::text IS NULL OR rater_id > $3) \
     ORDER BY rater_id LIMIT $4";

#[derive(sqlx::FromRow)]
struct EffectRow {
    rater_id: String,
    leniency: f64,
    ratings: i64,
    weight: f64,
    overlap: i64,
    standard_error: f64,
}

impl From<EffectRow> for RaterEffect {
    fn from(row: EffectRow) -> Self {
        RaterEffect {
            rater_id: row.rater_id,
            leniency: row.leniency,
            ratings: u64::try_from(row.ratings).unwrap_or_default(),
            weight: row.weight,
            overlap: u64::try_from(row.overlap).unwrap_or_default(),
            standard_error: row.standard_error,
        }
    }
}

/// Up to `limit` effects of calibration `id` after `after`, in `order`. An
/// unknown calibration has none: callers check it exists first.
pub async fn list_effects(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: Uuid,
    order: RaterEffectOrder,
    after: Option<RaterEffectKey>,
    limit: i64,
) -> Result<Vec<RaterEffect>, StorageError> {
    let rows: Vec<EffectRow> = match order {
        RaterEffectOrder::Magnitude => {
            sqlx::query_as(LIST_EFFECTS_BY_MAGNITUDE)
                .bind(&tenant.0)
                .bind(id)
                .bind(after.as_ref().map(|k| k.leniency.abs()))
                .bind(after.map(|k| k.rater_id))
                .bind(limit)
                .fetch_all(traced!(conn, LIST_EFFECTS_BY_MAGNITUDE))
                .await?
        }
        RaterEffectOrder::RaterId => {
            sqlx::query_as(LIST_EFFECTS_BY_RATER)
                .bind(&tenant.0)
                .bind(id)
                .bind(after.map(|k| k.rater_id))
                .bind(limit)
                .fetch_all(traced!(conn, LIST_EFFECTS_BY_RATER))
                .await?
        }
    };
    Ok(rows.into_iter().map(RaterEffect::from).collect())
}

const LENIENCIES_OF: &str = "SELECT rater_id, leniency FROM rater_effects \
     WHERE tenant_id = $1 AND calibration_id = $2 AND rater_id = ANY($3)";

/// Calibration `id`'s leniencies of the raters among `rater_ids` it knows:
/// for evidence that is not stored (a what-if's), which the scoring
/// statement cannot look up.
pub async fn leniencies_of(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: Uuid,
    rater_ids: &[&str],
) -> Result<RaterEffects, StorageError> {
    let rows: Vec<(String, f64)> = sqlx::query_as(LENIENCIES_OF)
        .bind(&tenant.0)
        .bind(id)
        .bind(rater_ids)
        .fetch_all(traced!(conn, LENIENCIES_OF))
        .await?;
    Ok(rows.into_iter().collect())
}
