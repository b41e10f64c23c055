//! Calibration runs and rater effects (SPEC §10).

use crate::domain::calibration::{CalibrationRun, RaterEffect};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::storage::calibrations::RaterEffectOrder;
use crate::transport::convert::{time, uuid_text};

pub fn run_to_proto(run: &CalibrationRun) -> pb::Calibration {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    pb::Calibration {
        id: uuid_text(run.id),
        as_of: Some(time::to_proto(run.window.as_of)),
        window_days: i32::try_from(run.window.window_days).unwrap_or(i32::MAX),
        rater_prior_strength: run.rater_prior_strength,
        rating_count: count(run.ratings),
        subject_count: count(run.subjects),
        cell_count: count(run.cells),
        rater_count: count(run.raters),
        residual_scale: run.residual_scale,
        error_bound: run.error_bound,
        create_time: Some(time::to_proto(run.create_time)),
    }
}

pub fn effect_to_proto(effect: &RaterEffect) -> pb::RaterEffect {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    pb::RaterEffect {
        rater_id: effect.rater_id.clone(),
        leniency: effect.leniency,
        standard_error: effect.standard_error,
        rating_count: count(effect.ratings),
        weight: effect.weight,
        overlap: count(effect.overlap),
    }
}

/// `order_by` of `ListRaterEffects` (AIP-132): `abs_leniency desc` (the
/// default) or `rater_id`.
pub fn effect_order(order_by: &str) -> Result<RaterEffectOrder, Violations> {
    match order_by.split_whitespace().collect::<Vec<_>>().as_slice() {
        [] | ["abs_leniency", "desc"] => Ok(RaterEffectOrder::Magnitude),
        ["rater_id"] => Ok(RaterEffectOrder::RaterId),
        _ => Err(Violations::one(
            "order_by",
            "must be \"abs_leniency desc\" (the default) or \"rater_id\"",
        )),
    }
}
