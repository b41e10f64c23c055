//! The formulas of SPEC §4, shared by the engine and by planning so that a
//! plan is computed with exactly the arithmetic that will later score it.

use super::numeric::standard_normal_cdf;
use super::policy::ScoringPolicy;
use super::scores::{Band, CompetencyStatus};

/// Disagreement above which a competency is flagged CONFLICTING.
pub(crate) const CONFLICT_THRESHOLD: f64 = 1.0;

/// w_e = source_weight × confidence × 0.5^(age_days / half_life_days).
///
/// Very old evidence underflows to a weight of exactly 0, which every later
/// formula tolerates.
pub(crate) fn evidence_weight(
    source_weight: f64,
    confidence: f64,
    age_days: f64,
    half_life_days: f64,
) -> f64 {
    source_weight * confidence * (-age_days / half_life_days).exp2()
}

/// t_c = E_c − 0.5: level E covers [E − 0.5, E + 0.5).
pub(crate) fn bar(expected_level: u8) -> f64 {
    f64::from(expected_level) - 0.5
}

/// The normal–normal posterior of one competency.
pub(crate) struct Posterior {
    pub m: f64,
    pub sd: f64,
    pub p: f64,
}

/// The posterior from the evidence sums n = Σ w_e and Σ w_e·x_e.
pub(crate) fn posterior(
    n: f64,
    weighted_level_sum: f64,
    expected_level: u8,
    policy: &ScoringPolicy,
) -> Posterior {
    let (m, z) = mean_and_z(n, weighted_level_sum, expected_level, policy);
    Posterior {
        m,
        sd: policy.sigma / (policy.prior_strength + n).sqrt(),
        p: standard_normal_cdf(z),
    }
}

/// The posterior mean and z = (m − t)/sd, of which p = Φ(z).
pub(crate) fn mean_and_z(
    n: f64,
    weighted_level_sum: f64,
    expected_level: u8,
    policy: &ScoringPolicy,
) -> (f64, f64) {
    let total = policy.prior_strength + n;
    let m = (policy.prior_strength * policy.prior_mean + weighted_level_sum) / total;
    // (m − t)/sd, arranged so that a σ small enough to make sd underflow to 0
    // yields ±∞ (or 0 when m = t) instead of 0/0.
    let z = (m - bar(expected_level)) / policy.sigma * total.sqrt();
    (m, z)
}

pub(crate) fn status(
    n: f64,
    m: f64,
    expected_level: u8,
    policy: &ScoringPolicy,
) -> CompetencyStatus {
    if n < policy.min_evidence {
        CompetencyStatus::InsufficientEvidence
    } else if m >= f64::from(expected_level) + 0.5 {
        CompetencyStatus::Exceeds
    } else if m >= bar(expected_level) {
        CompetencyStatus::Meets
    } else {
        CompetencyStatus::Below
    }
}

pub(crate) fn band(readiness: f64, coverage: f64, every_critical_met: bool) -> Band {
    if coverage < 0.5 {
        Band::InsufficientEvidence
    } else if readiness >= 0.75 && every_critical_met {
        Band::Ready
    } else if readiness >= 0.4 {
        Band::Developing
    } else {
        Band::NotYet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_halves_every_half_life_and_underflows_to_zero() {
        assert_eq!(evidence_weight(1.5, 0.5, 0.0, 365.0), 0.75);
        assert_eq!(evidence_weight(1.0, 1.0, 730.0, 365.0), 0.25);
        assert_eq!(evidence_weight(1.0, 1.0, 1e9, 365.0), 0.0);
    }

    #[test]
    fn prior_alone_gives_the_prior_mean() {
        let policy = ScoringPolicy::default();
        let prior = posterior(0.0, 0.0, 3, &policy);
        assert_eq!((prior.m, prior.sd), (3.0, 1.0));
        assert!((prior.p - standard_normal_cdf(0.5)).abs() < 1e-15);
    }

    #[test]
    fn vanishing_sigma_gives_certainty_not_nan() {
        let policy = ScoringPolicy {
            sigma: 5e-324,
            ..ScoringPolicy::default()
        };
        assert_eq!(posterior(1e6, 3_500_000.5, 4, &policy).p, 0.5);
        assert_eq!(posterior(1e6, 3.6e6, 4, &policy).p, 1.0);
        assert_eq!(posterior(1e6, 3.4e6, 4, &policy).p, 0.0);
    }

    #[test]
    fn status_thresholds_are_inclusive_at_the_bar() {
        let policy = ScoringPolicy::default();
        assert_eq!(
            status(0.49, 5.0, 3, &policy),
            CompetencyStatus::InsufficientEvidence
        );
        assert_eq!(status(0.5, 3.5, 3, &policy), CompetencyStatus::Exceeds);
        assert_eq!(status(1.0, 2.5, 3, &policy), CompetencyStatus::Meets);
        assert_eq!(status(1.0, 2.499_999, 3, &policy), CompetencyStatus::Below);
    }

    #[test]
    fn band_rules() {
        assert_eq!(band(1.0, 0.49, true), Band::InsufficientEvidence);
        assert_eq!(band(0.75, 0.5, true), Band::Ready);
        assert_eq!(band(0.9, 1.0, false), Band::Developing);
        assert_eq!(band(0.4, 1.0, true), Band::Developing);
        assert_eq!(band(0.399, 1.0, true), Band::NotYet);
    }
}
