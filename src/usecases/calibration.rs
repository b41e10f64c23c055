//! Running a rater calibration (SPEC §10): the tenant's ratings in the window,
//! read in one streaming pass, the estimator run off the async workers, and
//! the snapshot stored with its per-rater effects, all in the caller's
//! transaction.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::calibration::{self, CalibrationRun, CalibrationWindow};
use crate::storage::stored::microseconds;
use crate::storage::{StorageError, TenantId, calibrations, policy};
use crate::usecases::scoring::ScoringError;

/// What to calibrate: the window's end, and the parameters a request may
/// leave to the tenant's scoring policy.
#[derive(Debug, Clone)]
pub struct CalibrationSpec {
    pub as_of: DateTime<Utc>,
    /// `None`: the policy's `calibration_window_days`.
    pub window_days: Option<u32>,
    /// `None`: the policy's `rater_prior_strength`.
    pub rater_prior_strength: Option<f64>,
}

/// Runs a calibration and stores it; from then on it is the tenant's latest,
/// the one scoring uses when the policy turns rater calibration on.
pub async fn run(
    conn: &mut PgConnection,
    tenant: &TenantId,
    spec: &CalibrationSpec,
) -> Result<CalibrationRun, ScoringError> {
    let (defaults, _) = policy::get(&mut *conn, tenant).await?;
    let window = CalibrationWindow {
        as_of: spec.as_of,
        window_days: spec.window_days.unwrap_or(defaults.calibration_window_days),
    };
    let lambda = spec
        .rater_prior_strength
        .unwrap_or(defaults.rater_prior_strength);
    let ratings = calibrations::ratings(&mut *conn, tenant, window).await?;
    // A large tenant's estimate takes CPU seconds: not on an async worker.
    let calibration = tokio::task::spawn_blocking(move || calibration::calibrate(ratings, lambda))
        .await
        .map_err(|e| StorageError::Corrupt(format!("the calibration estimator failed: {e}")))??;
    let run = CalibrationRun {
        id: Uuid::now_v7(),
        window,
        rater_prior_strength: calibration.rater_prior_strength,
        ratings: calibration.ratings,
        subjects: calibration.subjects,
        cells: calibration.cells,
        raters: calibration.raters.len() as u64,
        residual_scale: calibration.residual_scale,
        error_bound: calibration.error_bound,
        create_time: microseconds(Utc::now()),
    };
    calibrations::create(conn, tenant, &run, &calibration).await?;
    Ok(run)
}
