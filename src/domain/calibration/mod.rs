//! Rater calibration (SPEC §10): each rater's leniency b_r, estimated from
//! the tenant's own evidence by minimising
//!
//!     L = Σ_i ω_i (y_i − θ_s(i)c(i) − b_r(i))² + λ Σ_r b_r²,
//!
//! and the lookup that lets scoring subtract it. Pure computation: the caller
//! selects the ratings of the window and stores the result. Explained for
//! people-ops readers in `docs/scoring.md`.

mod design;
mod ratings;
mod solve;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::scoring::{MAX_WEIGHT, RaterAdjustments};
use crate::domain::validation::Violations;
use design::Design;
pub use ratings::{Rating, RatingSet};

/// The result of one calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// λ, the prior strength the leniencies were shrunk with.
    pub rater_prior_strength: f64,
    /// Counts of the data: ratings, distinct subjects, cells (subject,
    /// competency pairs).
    pub ratings: u64,
    pub subjects: u64,
    pub cells: u64,
    /// s, the weighted root mean square residual of the fitted model.
    pub residual_scale: f64,
    /// One entry per rater, in rater id order.
    pub raters: Vec<RaterEffect>,
    /// A proven upper bound on max_r |b_r − b*_r|, the distance of the
    /// returned leniencies from the exact minimiser (see `solve`); below
    /// 1e-11 unless rounding prevents it, which takes extreme inputs.
    pub error_bound: f64,
    /// Conjugate-gradient iterations the solve took.
    pub iterations: u64,
}

/// One rater's estimated leniency and what it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaterEffect {
    pub rater_id: String,
    /// b_r: positive rates higher than the other raters of the same people.
    pub leniency: f64,
    /// k_r: number of ratings.
    pub ratings: u64,
    /// ω_r = Σ ω_i over the rater's ratings.
    pub weight: f64,
    /// overlap_r: distinct cells the rater shares with at least one other rater.
    pub overlap: u64,
    /// se_r = s / sqrt(λ + ω_r).
    pub standard_error: f64,
}

/// Estimates every rater's leniency from `ratings` with prior strength
/// `rater_prior_strength` (λ, which must be in (0, 1e6]; the violation names
/// `rater_prior_strength`). The result depends on the set of ratings only,
/// never on the order they were pushed in.
pub fn calibrate(ratings: RatingSet, rater_prior_strength: f64) -> Result<Calibration, Violations> {
    let lambda = rater_prior_strength;
    if !(lambda > 0.0 && lambda <= MAX_WEIGHT) {
        return Err(Violations::one(
            "rater_prior_strength",
            "must be greater than 0 and at most 1000000",
        ));
    }
    let canonical = ratings.into_canonical();
    let design = Design::new(&canonical.rows, canonical.rater_ids.len());
    let solution = solve::solve(&design, lambda);
    let residual_scale = design.residual_scale(&canonical.rows, &solution.leniency);
    let raters = canonical
        .rater_ids
        .into_iter()
        .enumerate()
        .map(|(r, rater_id)| RaterEffect {
            rater_id,
            leniency: solution.leniency[r],
            ratings: design.rater_ratings[r],
            weight: design.rater_weight[r],
            overlap: design.rater_overlap[r],
            standard_error: residual_scale / (lambda + design.rater_weight[r]).sqrt(),
        })
        .collect();
    Ok(Calibration {
        rater_prior_strength: lambda,
        ratings: canonical.rows.len() as u64,
        subjects: canonical.subjects as u64,
        cells: design.cells() as u64,
        residual_scale,
        raters,
        error_bound: solution.error_bound,
        iterations: solution.iterations,
    })
}

/// Rater id → leniency b_r of one calibration: what scoring subtracts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaterEffects(HashMap<String, f64>);

impl RaterEffects {
    /// The adjustments for evidence given as (evidence id, rater id) pairs:
    /// items whose rater the calibration does not know are left as they are.
    pub fn adjustments<'a>(
        &self,
        evidence: impl IntoIterator<Item = (Uuid, &'a str)>,
    ) -> RaterAdjustments {
        evidence
            .into_iter()
            .filter_map(|(id, rater)| self.0.get(rater).map(|&leniency| (id, leniency)))
            .collect()
    }
}

impl FromIterator<(String, f64)> for RaterEffects {
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Calibration {
    /// Every rater's leniency, for scoring.
    pub fn effects(&self) -> RaterEffects {
        self.raters
            .iter()
            .map(|r| (r.rater_id.clone(), r.leniency))
            .collect()
    }
}
