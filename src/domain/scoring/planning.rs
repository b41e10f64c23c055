//! How much more evidence would lift a competency to a target (SPEC §5).

use super::model;
use super::numeric::standard_normal_cdf;
use super::policy::ScoringPolicy;
use super::scores::CompetencyScore;
use crate::domain::evidence::Source;

/// The most new observations a plan asks for; a target that needs more is
/// reported as out of reach from that source.
pub const MAX_PLANNED_OBSERVATIONS: u32 = 1000;

/// The smallest number k of new observations from `source` — at the expected
/// level E_c, observed at `as_of` and with confidence 1 — after which
/// p_c ≥ `target` (a probability, 0.5 and 0.8 in recommendations). `Some(0)`
/// when the competency is there already; `None` when more than
/// [`MAX_PLANNED_OBSERVATIONS`] would be needed, in particular when the source
/// weighs nothing. `policy` must be the one that produced `score`.
///
/// Each such observation adds w = source weight to n_c and w·E_c to Σ w·x, so
/// (M − t)·N grows by w/2 per observation while N = n0 + n_c + k·w grows by w:
/// z = (M − t)·√N / σ falls at first when m_c is far above the bar (the new,
/// lower observations pull it down) and then rises without bound. Hence once
/// the target is reached, every larger k reaches it too, and a binary search
/// over k evaluated with the engine's own formulas finds the smallest k with
/// both k and k − 1 actually evaluated.
///
/// It starts from the sums the engine stored (`n`, `weighted_level_sum`), not
/// from values recovered from `m`. Rescoring the grown evidence adds the same
/// terms in id order, which can differ from n + k·w in the last bit, so the
/// engine could disagree only where p(k) lies within about 1e-15 of `target`.
pub fn observations_needed(
    score: &CompetencyScore,
    source: Source,
    policy: &ScoringPolicy,
    target: f64,
) -> Option<u32> {
    observations_needed_for(score, source, policy, &ProbabilityTarget::new(target))
}

/// [`observations_needed`] with the target prepared once for many plans.
pub fn observations_needed_for(
    score: &CompetencyScore,
    source: Source,
    policy: &ScoringPolicy,
    target: &ProbabilityTarget,
) -> Option<u32> {
    // The weight the engine gives such an observation: age 0, confidence 1.
    let weight = model::evidence_weight(
        policy.source_weights.get(source),
        1.0,
        0.0,
        policy.half_life_days,
    );
    let weighted_level = weight * f64::from(score.expected_level);
    let reaches = |k: u32| {
        let k = f64::from(k);
        let (_, z) = model::mean_and_z(
            score.n + k * weight,
            score.weighted_level_sum + k * weighted_level,
            score.expected_level,
            policy,
        );
        target.reached_at(z)
    };

    if reaches(0) {
        return Some(0);
    }
    if !reaches(MAX_PLANNED_OBSERVATIONS) {
        return None;
    }
    smallest(reaches)
}

/// A target for p = Φ(z), with the z where the engine's Φ crosses it
/// bracketed once, so that deciding whether a z reaches it mostly takes a
/// comparison instead of Φ's `erfc` (the evidence plans were a quarter of a
/// recommendation's instructions, each step of their searches an `erfc`).
/// [`ProbabilityTarget::reached_at`] answers as `Φ(z) >= p` does: within
/// [`MARGIN`] of the bracket it computes Φ, and beyond it the answer
/// follows from Φ being monotone, which the search over k relies on
/// already.
#[derive(Debug, Clone, Copy)]
pub struct ProbabilityTarget {
    p: f64,
    /// Every z at or above this reaches p; every z at or below
    /// `short_at_most` does not.
    reached_from: f64,
    short_at_most: f64,
}

/// Room kept on either side of the bracketed crossing, far wider than the
/// z-steps at which Φ's rounding could waver.
const MARGIN: f64 = 1e-9;

impl ProbabilityTarget {
    pub fn new(p: f64) -> Self {
        let reaches = |z: f64| standard_normal_cdf(z) >= p;
        // Φ is 0 below −38.5 and 1 above 8.3 in f64.
        let (mut short, mut reached) = (-40.0, 40.0);
        if reaches(short) {
            // Every z (p ≤ 0); NaN compares false, so only a NaN z is short.
            return Self {
                p,
                reached_from: f64::NEG_INFINITY,
                short_at_most: f64::NAN,
            };
        }
        if !reaches(reached) {
            // No z (p > 1, or NaN).
            return Self {
                p,
                reached_from: f64::INFINITY,
                short_at_most: f64::INFINITY,
            };
        }
        while reached - short > MARGIN {
            let middle = short + (reached - short) / 2.0;
            if reaches(middle) {
                reached = middle;
            } else {
                short = middle;
            }
        }
        Self {
            p,
            reached_from: reached + MARGIN,
            short_at_most: short - MARGIN,
        }
    }

    /// Whether Φ(z) ≥ p.
    pub fn reached_at(&self, z: f64) -> bool {
        if z <= self.short_at_most {
            false
        } else if z >= self.reached_from {
            true
        } else {
            standard_normal_cdf(z) >= self.p
        }
    }
}

/// The smallest number of new observations from `source`, made today with full
/// confidence, that lifts the competency's effective evidence n_c to the
/// policy's `min_evidence`, so that it is scored at all; `Some(0)` when it
/// already is.
pub fn observations_for_min_evidence(
    score: &CompetencyScore,
    source: Source,
    policy: &ScoringPolicy,
) -> Option<u32> {
    let weight = model::evidence_weight(
        policy.source_weights.get(source),
        1.0,
        0.0,
        policy.half_life_days,
    );
    let reaches = |k: u32| score.n + f64::from(k) * weight >= policy.min_evidence;
    if reaches(0) {
        return Some(0);
    }
    if !reaches(MAX_PLANNED_OBSERVATIONS) {
        return None;
    }
    smallest(reaches)
}

/// The smallest k in 1..=MAX that `reaches`, given that 0 does not and MAX
/// does and that once reached every larger k reaches too. Plans mostly ask
/// for a few observations, so the search gallops up from 1 (1, 2, 4, …)
/// and then bisects: about 2·log2(k) evaluations, each a posterior and so
/// an erfc, instead of log2(MAX) whatever k (the evidence plans of a
/// recommendation were a third of its instructions, callgrind).
fn smallest(reaches: impl Fn(u32) -> bool) -> Option<u32> {
    // Invariant: `short` does not reach the target, `enough` does.
    let (mut short, mut enough) = (0, 1);
    while enough < MAX_PLANNED_OBSERVATIONS && !reaches(enough) {
        short = enough;
        enough = (enough * 2).min(MAX_PLANNED_OBSERVATIONS);
    }
    while enough - short > 1 {
        let middle = short + (enough - short) / 2;
        if reaches(middle) {
            enough = middle;
        } else {
            short = middle;
        }
    }
    Some(enough)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scoring::{Expectation, score_unchecked};

    fn no_evidence(expected_level: u8) -> CompetencyScore {
        let rubric = [Expectation {
            competency_id: "system_design".into(),
            expected_level,
            weight: 1.0,
            critical: true,
        }];
        let policy = ScoringPolicy::default();
        score_unchecked(&[], &rubric, &policy, chrono::Utc::now())
            .competencies
            .remove(0)
    }

    #[test]
    fn enough_evidence_counts_source_weights() {
        // min_evidence 0.5: one observation of any source weighing at least
        // 0.5 (a self review, a manager's); at 1, a self review needs two,
        // calibration (1.5) still one; a zero-weight source never gets there.
        let score = no_evidence(4);
        let mut policy = ScoringPolicy::default();
        let needed =
            |source, policy: &ScoringPolicy| observations_for_min_evidence(&score, source, policy);
        assert_eq!(needed(Source::Manager, &policy), Some(1));
        assert_eq!(needed(Source::SelfReview, &policy), Some(1));
        policy.min_evidence = 1.0;
        assert_eq!(needed(Source::Manager, &policy), Some(1));
        assert_eq!(needed(Source::SelfReview, &policy), Some(2));
        assert_eq!(needed(Source::Calibration, &policy), Some(1));
        policy.min_evidence = 2.0;
        assert_eq!(needed(Source::DirectReport, &policy), Some(3));
        policy.source_weights.set(Source::Peer, 0.0);
        assert_eq!(needed(Source::Peer, &policy), None);
        policy.min_evidence = 0.0;
        assert_eq!(needed(Source::Peer, &policy), Some(0));
    }

    #[test]
    fn already_there_needs_nothing() {
        // Prior mean 3 against bar 2.5: p = Φ(0.5) ≈ 0.69.
        let score = no_evidence(3);
        let policy = ScoringPolicy::default();
        assert_eq!(
            observations_needed(&score, Source::SelfReview, &policy, 0.5),
            Some(0)
        );
        // k manager observations at 3 keep m = 3, so z = 0.5·√(1 + k), and
        // Φ(z) ≥ 0.8 needs z ≥ 0.8416: √2/2 ≈ 0.707 is short, √3/2 ≈ 0.866 is not.
        assert_eq!(
            observations_needed(&score, Source::Manager, &policy, 0.8),
            Some(2)
        );
    }

    #[test]
    fn exact_boundary_counts_as_reached() {
        // One manager observation at 4 puts m exactly on the bar 3.5: p = 0.5.
        let score = no_evidence(4);
        let policy = ScoringPolicy::default();
        assert_eq!(
            observations_needed(&score, Source::Manager, &policy, 0.5),
            Some(1)
        );
    }

    proptest::proptest! {
        /// A prepared target answers as computing Φ does, at and around
        /// its crossing, in both tails and for targets outside (0, 1].
        #[test]
        fn a_prepared_target_answers_as_phi_does(
            p in proptest::prop_oneof![
                0.0..=1.0,
                proptest::prelude::Just(0.5),
                proptest::prelude::Just(0.8),
                proptest::prelude::Just(1.0),
                proptest::prelude::Just(-0.5),
                proptest::prelude::Just(1.5),
                proptest::prelude::Just(1e-300),
                proptest::prelude::Just(f64::NAN),
            ],
            offsets in proptest::collection::vec(-1e-8..1e-8, 50),
            zs in proptest::collection::vec(proptest::prelude::any::<f64>(), 20),
        ) {
            let target = ProbabilityTarget::new(p);
            let crossing = target.reached_from - MARGIN;
            let near = offsets.iter().map(|d| crossing + d);
            let special = [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.0, -0.0, 8.3, -38.5];
            for z in near.chain(zs).chain(special) {
                proptest::prop_assert_eq!(
                    target.reached_at(z),
                    standard_normal_cdf(z) >= p,
                    "z = {:e}, p = {:e}", z, p
                );
            }
        }
    }

    #[test]
    fn a_weightless_source_never_gets_there() {
        let score = no_evidence(5);
        let mut policy = ScoringPolicy::default();
        policy.source_weights.set(Source::Peer, 0.0);
        assert_eq!(
            observations_needed(&score, Source::Peer, &policy, 0.5),
            None
        );
        // Bar 4.5: z = (3 + 5k − 4.5·(1 + k)) / √(1 + k) = (0.5k − 1.5) / √(1 + k),
        // which reaches 0 (p = 0.5) at k = 3.
        assert_eq!(
            observations_needed(&score, Source::Manager, &policy, 0.5),
            Some(3)
        );
    }
}
