//! The tunable constants of the scoring model, overridable per tenant and
//! stored as JSON.

use serde::{Deserialize, Serialize};

use crate::domain::evidence::Source;
use crate::domain::validation::Violations;

/// Upper bound for every weight and for the prior strength. Far above any
/// sensible setting, it keeps all sums of a validated input far from f64
/// overflow, so that scoring never meets ∞/∞.
pub const MAX_WEIGHT: f64 = 1e6;

/// The parameters of SPEC §4. Fields missing from stored JSON take their
/// defaults, so a tenant override needs to name only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoringPolicy {
    /// Age at which a piece of evidence counts half as much.
    pub half_life_days: f64,
    pub source_weights: SourceWeights,
    /// μ0: the level assumed before any evidence.
    pub prior_mean: f64,
    /// n0: how many units of effective evidence the prior is worth.
    pub prior_strength: f64,
    /// σ: the noise of one observation, in levels.
    pub sigma: f64,
    /// Effective evidence below which a competency is INSUFFICIENT_EVIDENCE.
    pub min_evidence: f64,
    /// Whether scoring removes each rater's leniency, estimated by the
    /// tenant's latest calibration (SPEC §10).
    pub rater_calibration: bool,
    /// A calibration's default window: evidence observed in the last this
    /// many days before its as_of.
    pub calibration_window_days: u32,
    /// A calibration's default λ: how many units of rating weight ω a rater's
    /// leniency estimate is shrunk towards 0 by.
    pub rater_prior_strength: f64,
}

/// Longest calibration window: a century of evidence.
pub const MAX_CALIBRATION_WINDOW_DAYS: u32 = 36_500;

impl Default for ScoringPolicy {
    fn default() -> Self {
        Self {
            half_life_days: 365.0,
            source_weights: SourceWeights::default(),
            prior_mean: 3.0,
            prior_strength: 1.0,
            sigma: 1.0,
            min_evidence: 0.5,
            rater_calibration: false,
            calibration_window_days: 730,
            rater_prior_strength: 5.0,
        }
    }
}

/// How much one observation of each source counts before confidence and age.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceWeights {
    #[serde(rename = "self")]
    pub self_review: f64,
    pub peer: f64,
    pub manager: f64,
    pub direct_report: f64,
    pub artifact: f64,
    pub calibration: f64,
}

impl Default for SourceWeights {
    fn default() -> Self {
        Self {
            self_review: 0.5,
            peer: 0.8,
            manager: 1.0,
            direct_report: 0.7,
            artifact: 1.0,
            calibration: 1.5,
        }
    }
}

impl SourceWeights {
    pub fn get(&self, source: Source) -> f64 {
        match source {
            Source::SelfReview => self.self_review,
            Source::Peer => self.peer,
            Source::Manager => self.manager,
            Source::DirectReport => self.direct_report,
            Source::Artifact => self.artifact,
            Source::Calibration => self.calibration,
        }
    }

    pub fn set(&mut self, source: Source, weight: f64) {
        let slot = match source {
            Source::SelfReview => &mut self.self_review,
            Source::Peer => &mut self.peer,
            Source::Manager => &mut self.manager,
            Source::DirectReport => &mut self.direct_report,
            Source::Artifact => &mut self.artifact,
            Source::Calibration => &mut self.calibration,
        };
        *slot = weight;
    }
}

impl ScoringPolicy {
    /// Every violation, with field paths relative to the policy
    /// (`sigma`, `source_weights.peer`).
    pub fn validate(&self) -> Result<(), Violations> {
        let mut violations = Violations::new();
        let positive = |value: f64| value.is_finite() && value > 0.0;
        if !positive(self.half_life_days) {
            violations.add("half_life_days", "must be a finite number greater than 0");
        }
        if !positive(self.sigma) {
            violations.add("sigma", "must be a finite number greater than 0");
        }
        if !(positive(self.prior_strength) && self.prior_strength <= MAX_WEIGHT) {
            violations.add(
                "prior_strength",
                "must be greater than 0 and at most 1000000",
            );
        }
        if !(1.0..=5.0).contains(&self.prior_mean) {
            violations.add("prior_mean", "must be a level in [1, 5]");
        }
        if !(self.min_evidence.is_finite() && self.min_evidence >= 0.0) {
            violations.add("min_evidence", "must be a finite number of at least 0");
        }
        if !(1..=MAX_CALIBRATION_WINDOW_DAYS).contains(&self.calibration_window_days) {
            violations.add(
                "calibration_window_days",
                "must be a whole number of days from 1 to 36500",
            );
        }
        if !(positive(self.rater_prior_strength) && self.rater_prior_strength <= MAX_WEIGHT) {
            violations.add(
                "rater_prior_strength",
                "must be greater than 0 and at most 1000000",
            );
        }
        for source in Source::ALL {
            if !(0.0..=MAX_WEIGHT).contains(&self.source_weights.get(source)) {
                violations.add(
                    format!("source_weights.{}", source.as_str()),
                    "must be in [0, 1000000]",
                );
            }
        }
        violations.into_result(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<(), Violations>) -> Vec<String> {
        result.unwrap_err().fields()
    }

    #[test]
    fn defaults_are_the_spec_defaults_and_valid() {
        let policy = ScoringPolicy::default();
        assert_eq!(policy.validate(), Ok(()));
        let weights: Vec<f64> = Source::ALL
            .iter()
            .map(|&s| policy.source_weights.get(s))
            .collect();
        assert_eq!(weights, [0.5, 0.8, 1.0, 0.7, 1.0, 1.5]);
        assert_eq!(
            (
                policy.half_life_days,
                policy.prior_mean,
                policy.prior_strength,
                policy.sigma,
                policy.min_evidence
            ),
            (365.0, 3.0, 1.0, 1.0, 0.5)
        );
        assert_eq!(
            (
                policy.rater_calibration,
                policy.calibration_window_days,
                policy.rater_prior_strength
            ),
            (false, 730, 5.0)
        );
    }

    #[test]
    fn calibration_parameters_are_checked_even_when_calibration_is_off() {
        for (window, strength, expected) in [
            (0, 5.0, vec!["calibration_window_days"]),
            (
                36_501,
                0.0,
                vec!["calibration_window_days", "rater_prior_strength"],
            ),
            (36_500, f64::INFINITY, vec!["rater_prior_strength"]),
        ] {
            let policy = ScoringPolicy {
                calibration_window_days: window,
                rater_prior_strength: strength,
                ..ScoringPolicy::default()
            };
            assert_eq!(fields(policy.validate()), expected);
        }
        let extremes = ScoringPolicy {
            rater_calibration: true,
            calibration_window_days: 1,
            rater_prior_strength: MAX_WEIGHT,
            ..ScoringPolicy::default()
        };
        assert_eq!(extremes.validate(), Ok(()));
    }

    #[test]
    fn names_every_bad_field() {
        let mut policy = ScoringPolicy {
            half_life_days: 0.0,
            prior_mean: 5.5,
            prior_strength: f64::NAN,
            sigma: -1.0,
            min_evidence: f64::INFINITY,
            ..ScoringPolicy::default()
        };
        for source in Source::ALL {
            policy.source_weights.set(source, -0.1);
        }
        assert_eq!(
            fields(policy.validate()),
            [
                "half_life_days",
                "sigma",
                "prior_strength",
                "prior_mean",
                "min_evidence",
                "source_weights.self",
                "source_weights.peer",
                "source_weights.manager",
                "source_weights.direct_report",
                "source_weights.artifact",
                "source_weights.calibration",
            ]
        );
    }

    #[test]
    fn refuses_non_finite_and_huge_weights_but_accepts_zero() {
        let mut policy = ScoringPolicy::default();
        policy.source_weights.set(Source::Peer, f64::INFINITY);
        policy.source_weights.set(Source::Manager, 2e6);
        policy.source_weights.set(Source::SelfReview, 0.0);
        assert_eq!(
            fields(policy.validate()),
            ["source_weights.peer", "source_weights.manager"]
        );
    }

    #[test]
    fn stored_json_uses_spec_names_and_fills_missing_fields() {
        let json = serde_json::to_value(ScoringPolicy::default()).unwrap();
        assert_eq!(json["source_weights"]["self"], 0.5);
        assert_eq!(json["source_weights"]["direct_report"], 0.7);

        let partial: ScoringPolicy =
            serde_json::from_str(r#"{"half_life_days": 180, "source_weights": {"self": 0}}"#)
                .unwrap();
        let mut expected = ScoringPolicy {
            half_life_days: 180.0,
            ..ScoringPolicy::default()
        };
        expected.source_weights.set(Source::SelfReview, 0.0);
        assert_eq!(partial, expected);

        let calibrated: ScoringPolicy =
            serde_json::from_str(r#"{"rater_calibration": true}"#).unwrap();
        assert!(calibrated.rater_calibration);
        assert_eq!(calibrated.rater_prior_strength, 5.0);
    }
}
