//! Rater calibration (SPEC §10): each rater's leniency b_r, estimated from
//! the tenant's own evidence by minimising
//!
//! ```text
//! L = Σ_i ω_i (y_i − θ_s(i)c(i) − b_r(i))² + λ Σ_r b_r²,
//! ```
//!
//! and the lookup that lets scoring subtract it. Pure computation: the caller
//! selects the ratings of the window and stores the result. Explained for
//! people-ops readers in `docs/scoring.md`.

mod design;
mod ratings;
mod solve;

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
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

/// Which evidence a calibration reads: every item with a rater observed in
/// (as_of − window_days, as_of].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalibrationWindow {
    pub as_of: DateTime<Utc>,
    pub window_days: u32,
}

impl CalibrationWindow {
    /// The exclusive lower bound of `observed_at`.
    pub fn starts_after(&self) -> DateTime<Utc> {
        self.as_of - TimeDelta::days(i64::from(self.window_days))
    }
}

/// A stored calibration: its parameters and what it found overall. Its
/// per-rater effects are stored with it and listed on their own.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationRun {
    pub id: Uuid,
    pub window: CalibrationWindow,
    pub rater_prior_strength: f64,
    pub ratings: u64,
    pub subjects: u64,
    pub cells: u64,
    pub raters: u64,
    pub residual_scale: f64,
    pub error_bound: f64,
    pub create_time: DateTime<Utc>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ratings<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, f64)>) -> RatingSet {
        let mut set = RatingSet::new();
        for (subject_id, rater_id, level) in rows {
            set.push(Rating {
                subject_id,
                competency_id: "c",
                rater_id,
                level,
                confidence: 1.0,
            })
            .unwrap();
        }
        set
    }

    #[test]
    fn refuses_a_prior_strength_outside_its_range() {
        for lambda in [0.0, -1.0, f64::NAN, f64::INFINITY, 1.1e6] {
            let error = calibrate(RatingSet::new(), lambda).unwrap_err();
            assert_eq!(error.0[0].field, "rater_prior_strength");
        }
    }

    #[test]
    fn no_ratings_give_an_empty_calibration() {
        let calibration = calibrate(RatingSet::new(), 5.0).unwrap();
        assert_eq!(
            (calibration.ratings, calibration.cells, calibration.subjects),
            (0, 0, 0)
        );
        assert_eq!(calibration.raters, []);
        assert_eq!(
            (calibration.residual_scale, calibration.error_bound),
            (0.0, 0.0)
        );
    }

    #[test]
    fn unanimous_raters_have_no_leniency_and_no_residual() {
        let calibration = calibrate(
            ratings([
                ("s1", "a", 3.0),
                ("s1", "b", 3.0),
                ("s2", "a", 4.0),
                ("s2", "b", 4.0),
            ]),
            5.0,
        )
        .unwrap();
        for rater in &calibration.raters {
            assert_eq!((rater.leniency, rater.overlap, rater.ratings), (0.0, 2, 2));
            assert_eq!(rater.standard_error, 0.0);
        }
        assert_eq!(calibration.residual_scale, 0.0);
    }

    /// The slow case for alternating updates: 2 000 raters in a chain, each
    /// sharing one person with the next and rating them a level higher, with
    /// a weak prior. CG certifies 1e-11 in a bounded number of steps, and
    /// agrees with a direct solve of the tridiagonal reduced equations
    /// (Thomas algorithm): diagonal λ + deg/2, off-diagonal −1/2, and
    /// g = +1/2 at the head of the chain, −1/2 at its tail, 0 between.
    #[test]
    fn long_weak_chain_matches_a_direct_solve() {
        let (raters, lambda) = (2000, 0.01);
        let ids: Vec<(String, String)> = (0..raters)
            .map(|k| (format!("s{k:04}"), format!("r{k:04}")))
            .collect();
        let rows = ids.windows(2).flat_map(|pair| {
            let subject = pair[0].0.as_str();
            [
                (subject, pair[0].1.as_str(), 4.0),
                (subject, pair[1].1.as_str(), 3.0),
            ]
        });
        let calibration = calibrate(ratings(rows), lambda).unwrap();
        assert!(calibration.error_bound <= solve::TARGET_ERROR);
        assert!(calibration.iterations <= 2 * raters as u64);

        let diagonal = |k: usize| lambda + if k == 0 || k == raters - 1 { 0.5 } else { 1.0 };
        let mut rhs = vec![0.0; raters];
        (rhs[0], rhs[raters - 1]) = (0.5, -0.5);
        let (mut upper, mut forward) = (vec![0.0; raters], vec![0.0; raters]);
        for k in 0..raters {
            let (previous_upper, previous_forward) = if k == 0 {
                (0.0, 0.0)
            } else {
                (upper[k - 1], forward[k - 1])
            };
            let pivot = diagonal(k) + 0.5 * previous_upper;
            upper[k] = -0.5 / pivot;
            forward[k] = (rhs[k] + 0.5 * previous_forward) / pivot;
        }
        let mut exact = forward;
        for k in (0..raters - 1).rev() {
            exact[k] -= upper[k] * exact[k + 1];
        }
        for (rater, exact) in calibration.raters.iter().zip(exact) {
            assert!((rater.leniency - exact).abs() <= 1e-9, "{}", rater.rater_id);
        }
    }

    #[test]
    fn effects_adjust_only_evidence_of_known_raters() {
        let calibration = calibrate(
            ratings([
                ("s1", "a", 4.0),
                ("s1", "b", 3.0),
                ("s2", "a", 3.0),
                ("s2", "b", 2.0),
            ]),
            5.0,
        )
        .unwrap();
        let adjustments = calibration.effects().adjustments([
            (Uuid::from_u128(1), "a"),
            (Uuid::from_u128(2), "b"),
            (Uuid::from_u128(3), "unknown"),
        ]);
        assert_eq!(
            adjustments.of(Uuid::from_u128(1)),
            calibration.raters[0].leniency
        );
        assert_eq!(
            adjustments.of(Uuid::from_u128(2)),
            calibration.raters[1].leniency
        );
        assert!((adjustments.of(Uuid::from_u128(1)) - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(adjustments.of(Uuid::from_u128(3)), 0.0);
    }
}
