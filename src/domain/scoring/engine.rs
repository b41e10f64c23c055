//! Scoring one subject's evidence against one rubric (SPEC §4).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::adjustments::RaterAdjustments;
use super::model::{self, CONFLICT_THRESHOLD};
use super::numeric::compensated_sum;
use super::observations::validate_evidence;
use super::policy::ScoringPolicy;
use super::rubric::{Expectation, validate_rubric};
use super::samples::{GroupedSamples, Sample};
use super::scores::{CompetencyScore, Contribution, RoleScore};
use crate::domain::evidence::Observation;
use crate::domain::validation::Violations;

/// Scores `evidence` against `rubric` as of `as_of`, after validating all three
/// inputs. Violations name fields as `evidence[17].level`,
/// `rubric.competencies[2].weight` and `policy.sigma`.
pub fn score(
    evidence: &[Observation],
    rubric: &[Expectation],
    policy: &ScoringPolicy,
    as_of: DateTime<Utc>,
) -> Result<RoleScore, Violations> {
    score_calibrated(
        evidence,
        &RaterAdjustments::default(),
        rubric,
        policy,
        as_of,
    )
}

/// [`score`] without validation, for scoring many rubrics against evidence
/// that has already passed [`validate_evidence`](super::validate_evidence)
/// (with rubrics and policy that passed theirs). Invalid input never panics
/// but gives meaningless numbers.
pub fn score_unchecked(
    evidence: &[Observation],
    rubric: &[Expectation],
    policy: &ScoringPolicy,
    as_of: DateTime<Utc>,
) -> RoleScore {
    score_calibrated_unchecked(
        evidence,
        &RaterAdjustments::default(),
        rubric,
        policy,
        as_of,
    )
}

/// [`score`] with rater calibration (SPEC §10): each evidence item in
/// `adjustments` enters with its level minus its rater's leniency, unclamped,
/// and its contribution records the adjustment. Empty adjustments give
/// exactly the numbers of [`score`]. Violations of the adjustments are named
/// `rater_adjustments[<evidence id>]`.
pub fn score_calibrated(
    evidence: &[Observation],
    adjustments: &RaterAdjustments,
    rubric: &[Expectation],
    policy: &ScoringPolicy,
    as_of: DateTime<Utc>,
) -> Result<RoleScore, Violations> {
    let mut violations = Violations::new();
    for (prefix, result) in [
        ("", validate_evidence(evidence)),
        ("", adjustments.validate()),
        ("rubric", validate_rubric(rubric)),
        ("policy", policy.validate()),
    ] {
        if let Err(found) = result {
            violations.extend_prefixed(prefix, found);
        }
    }
    violations.into_result(())?;
    Ok(score_calibrated_unchecked(
        evidence,
        adjustments,
        rubric,
        policy,
        as_of,
    ))
}

/// [`score_calibrated`] without validation, as [`score_unchecked`] is to [`score`].
pub fn score_calibrated_unchecked(
    evidence: &[Observation],
    adjustments: &RaterAdjustments,
    rubric: &[Expectation],
    policy: &ScoringPolicy,
    as_of: DateTime<Utc>,
) -> RoleScore {
    let competencies: Vec<&str> = rubric.iter().map(|e| e.competency_id.as_str()).collect();
    let samples = GroupedSamples::collect(evidence, adjustments, &competencies, policy, as_of);
    role_score(rubric, |c| samples.of(c), policy)
}

/// [`score_calibrated_unchecked`] of the same evidence against each of
/// `rubrics`, in their order, with every competency's samples worked out
/// once for all of them (rubrics of one framework share most of their
/// competencies): what scoring a whole catalog for a recommendation costs.
/// Each score is exactly the one [`score_calibrated_unchecked`] gives.
pub fn score_calibrated_unchecked_many(
    evidence: &[Observation],
    adjustments: &RaterAdjustments,
    rubrics: &[Vec<Expectation>],
    policy: &ScoringPolicy,
    as_of: DateTime<Utc>,
) -> Vec<RoleScore> {
    let mut competencies: Vec<&str> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for expectation in rubrics.iter().flatten() {
        position
            .entry(expectation.competency_id.as_str())
            .or_insert_with(|| {
                competencies.push(expectation.competency_id.as_str());
                competencies.len() - 1
            });
    }
    let samples = GroupedSamples::collect(evidence, adjustments, &competencies, policy, as_of);
    rubrics
        .iter()
        .map(|rubric| {
            role_score(
                rubric,
                |c| samples.of(position[rubric[c].competency_id.as_str()]),
                policy,
            )
        })
        .collect()
}

/// A rubric's score from the samples of each of its competencies (by the
/// competency's position in the rubric).
fn role_score<'s>(
    rubric: &[Expectation],
    samples_of: impl Fn(usize) -> &'s [Sample],
    policy: &ScoringPolicy,
) -> RoleScore {
    let competencies: Vec<CompetencyScore> = rubric
        .iter()
        .enumerate()
        .map(|(c, expectation)| score_competency(expectation, samples_of(c), policy))
        .collect();

    let total_weight = compensated_sum(competencies.iter().map(|c| c.weight));
    let readiness = share(
        compensated_sum(competencies.iter().map(|c| c.weight * c.p)),
        total_weight,
    );
    let evidenced = || competencies.iter().filter(|c| c.n >= policy.min_evidence);
    let coverage = share(compensated_sum(evidenced().map(|c| c.weight)), total_weight);
    let supported_readiness = share(
        compensated_sum(evidenced().map(|c| c.weight * c.p)),
        total_weight,
    );
    let every_critical_met = competencies.iter().all(|c| !c.critical || c.p >= 0.5);
    RoleScore {
        band: model::band(readiness, coverage, every_critical_met),
        competencies,
        readiness,
        supported_readiness,
        coverage,
    }
}

fn score_competency(
    expectation: &Expectation,
    samples: &[Sample],
    policy: &ScoringPolicy,
) -> CompetencyScore {
    let n = compensated_sum(samples.iter().map(|s| s.weight));
    let weighted_level_sum = compensated_sum(samples.iter().map(|s| s.weight * s.level));
    let posterior = model::posterior(n, weighted_level_sum, expectation.expected_level, policy);
    let disagreement = disagreement(samples, n, weighted_level_sum);
    CompetencyScore {
        competency_id: expectation.competency_id.clone(),
        expected_level: expectation.expected_level,
        weight: expectation.weight,
        critical: expectation.critical,
        n,
        weighted_level_sum,
        m: posterior.m,
        sd: posterior.sd,
        p: posterior.p,
        gap: (model::bar(expectation.expected_level) - posterior.m).max(0.0),
        disagreement,
        status: model::status(n, posterior.m, expectation.expected_level, policy),
        conflicting: disagreement > CONFLICT_THRESHOLD,
        contributions: samples
            .iter()
            .map(|s| Contribution {
                evidence_id: s.evidence_id(),
                weight: s.weight,
                rater_adjustment: s.rater_adjustment,
            })
            .collect(),
    }
}

/// sqrt(Σ w_e (x_e − x̄)² / n) with x̄ = Σ w_e x_e / n; 0 without effective
/// evidence. Two passes (mean first) rather than Σ w x² − n x̄², whose
/// cancellation would turn unanimous evidence into a disagreement of ~1e-8.
fn disagreement(samples: &[Sample], n: f64, weighted_level_sum: f64) -> f64 {
    if n <= 0.0 {
        return 0.0;
    }
    let mean = weighted_level_sum / n;
    let spread = compensated_sum(samples.iter().map(|s| s.weight * (s.level - mean).powi(2)));
    (spread / n).sqrt()
}

/// part / whole for shares of rubric weight: 0 for an empty rubric, and never
/// above 1 even when rounding of the two sums would overshoot by an ulp.
fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole).min(1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::domain::evidence::Source;
    use crate::domain::scoring::CompetencyScore;

    #[test]
    fn prefixes_violations_by_input() {
        let observation = Observation {
            id: Uuid::nil(),
            competency_id: "system_design".into(),
            level: 7.0,
            source: Source::Manager,
            confidence: 1.0,
            observed_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        };
        let rubric = [Expectation {
            competency_id: "system_design".into(),
            expected_level: 4,
            weight: 0.0,
            critical: true,
        }];
        let policy = ScoringPolicy {
            sigma: 0.0,
            ..ScoringPolicy::default()
        };
        let fields: Vec<String> = score(&[observation], &rubric, &policy, Utc::now())
            .unwrap_err()
            .0
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "evidence[0].level",
                "rubric.competencies[0].weight",
                "policy.sigma"
            ]
        );
        assert_eq!(
            score(&[], &[], &ScoringPolicy::default(), Utc::now())
                .unwrap_err()
                .0[0]
                .field,
            "rubric.competencies"
        );
    }

    fn observations() -> Vec<Observation> {
        let observed_at = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
        [
            (1, 4.0, Source::Manager),
            (2, 2.5, Source::Peer),
            (3, 3.0, Source::SelfReview),
        ]
        .into_iter()
        .map(|(id, level, source)| Observation {
            id: Uuid::from_u128(id),
            competency_id: "system_design".into(),
            level,
            source,
            confidence: 0.9,
            observed_at,
        })
        .collect()
    }

    fn rubric() -> [Expectation; 1] {
        [Expectation {
            competency_id: "system_design".into(),
            expected_level: 3,
            weight: 1.0,
            critical: false,
        }]
    }

    #[test]
    fn calibration_shifts_each_adjusted_level_and_nothing_else() {
        let evidence = observations();
        let as_of = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let policy = ScoringPolicy::default();
        let plain = score(&evidence, &rubric(), &policy, as_of).unwrap();
        assert_eq!(
            score_calibrated(
                &evidence,
                &RaterAdjustments::default(),
                &rubric(),
                &policy,
                as_of
            ),
            Ok(plain.clone())
        );

        // Evidence 1 by a lenient rater (+0.75), 2 by a severe one (−0.5),
        // 3 by a rater the calibration does not know.
        let adjustments: RaterAdjustments =
            [(Uuid::from_u128(1), 0.75), (Uuid::from_u128(2), -0.5)]
                .into_iter()
                .collect();
        let calibrated =
            score_calibrated(&evidence, &adjustments, &rubric(), &policy, as_of).unwrap();
        let (before, after) = (&plain.competencies[0], &calibrated.competencies[0]);
        let shifts: Vec<f64> = after
            .contributions
            .iter()
            .map(|c| c.rater_adjustment)
            .collect();
        assert_eq!(shifts, [0.75, -0.5, 0.0]);
        let weights =
            |c: &CompetencyScore| c.contributions.iter().map(|c| c.weight).collect::<Vec<_>>();
        assert_eq!((after.n, weights(after)), (before.n, weights(before)));
        let w = weights(before);
        let expected_shift = -(w[0] * 0.75 - w[1] * 0.5);
        assert!(
            (after.weighted_level_sum - before.weighted_level_sum - expected_shift).abs() < 1e-12
        );
        let expected_m = (policy.prior_strength * policy.prior_mean + after.weighted_level_sum)
            / (policy.prior_strength + after.n);
        assert_eq!(after.m, expected_m);
    }

    #[test]
    fn adjusted_levels_are_not_clamped_but_adjustments_must_be_finite() {
        let evidence = observations();
        let as_of = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let policy = ScoringPolicy::default();
        // Level 4 − (−2) = 6: above the scale, counted as such.
        let beyond: RaterAdjustments = [(Uuid::from_u128(1), -2.0)].into_iter().collect();
        let plain = score(&evidence, &rubric(), &policy, as_of).unwrap();
        let shifted = score_calibrated(&evidence, &beyond, &rubric(), &policy, as_of).unwrap();
        let w = plain.competencies[0].contributions[0].weight;
        assert!(
            (shifted.competencies[0].weighted_level_sum
                - plain.competencies[0].weighted_level_sum
                - 2.0 * w)
                .abs()
                < 1e-12
        );
        let broken: RaterAdjustments = [(Uuid::from_u128(2), f64::NAN)].into_iter().collect();
        assert_eq!(
            score_calibrated(&evidence, &broken, &rubric(), &policy, as_of)
                .unwrap_err()
                .0[0]
                .field,
            format!("rater_adjustments[{}]", Uuid::from_u128(2))
        );
    }

    #[test]
    fn empty_rubric_on_the_unchecked_path_has_no_readiness() {
        let result = score_unchecked(&[], &[], &ScoringPolicy::default(), Utc::now());
        assert_eq!((result.readiness, result.coverage), (0.0, 0.0));
        assert_eq!(result.band, super::super::Band::InsufficientEvidence);
    }
}
