//! Scoring one subject's evidence against one rubric (SPEC §4).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::adjustments::RaterAdjustments;
use super::model::{self, CONFLICT_THRESHOLD};
use super::numeric::{CompensatedSum, compensated_sum};
use super::observations::validate_evidence;
use super::policy::ScoringPolicy;
use super::rubric::{Expectation, validate_rubric};
use super::samples::{GroupedSamples, Sample};
use super::scores::{Band, CompetencyScore, CompetencyStatus, Contribution, RoleScore};
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
    let competencies = rubric
        .iter()
        .enumerate()
        .map(|(c, expectation)| {
            let samples = samples.of(c);
            let sums = EvidenceSums::of(samples);
            let level = LevelScore::of(&sums, expectation.expected_level, policy);
            competency_score(expectation, &sums, &level, samples)
        })
        .collect();
    role_score(competencies, policy)
}

/// Rubrics prepared for scoring the same evidence against all of them
/// ([`ManyRubrics`]): the competencies they name and the distinct
/// (competency, expected level) pairs, worked out once rather than per
/// call (a server keeps a tenant's catalog, and this with it, while its
/// framework is unchanged).
#[derive(Debug, Clone, Default)]
pub struct RubricSet {
    rubrics: Vec<Vec<Expectation>>,
    /// Every competency the rubrics name, once, in order of first mention.
    competencies: Vec<String>,
    /// Per rubric, per competency in rubric order: its position in
    /// `competencies` and its (competency, expected level) pair's in `levels`.
    slots: Vec<Vec<(usize, usize)>>,
    /// The distinct (competency position, expected level) pairs.
    levels: Vec<(usize, u8)>,
}

impl RubricSet {
    pub fn new(rubrics: Vec<Vec<Expectation>>) -> Self {
        let mut competencies: Vec<String> = Vec::new();
        let mut position: HashMap<&str, usize> = HashMap::new();
        let mut level_slot: HashMap<(usize, u8), usize> = HashMap::new();
        let mut levels: Vec<(usize, u8)> = Vec::new();
        let slots = rubrics
            .iter()
            .map(|rubric| {
                rubric
                    .iter()
                    .map(|expectation| {
                        let id = expectation.competency_id.as_str();
                        let c = *position.entry(id).or_insert_with(|| {
                            competencies.push(id.to_string());
                            competencies.len() - 1
                        });
                        let key = (c, expectation.expected_level);
                        let level = *level_slot.entry(key).or_insert_with(|| {
                            levels.push(key);
                            levels.len() - 1
                        });
                        (c, level)
                    })
                    .collect()
            })
            .collect();
        Self {
            rubrics,
            competencies,
            slots,
            levels,
        }
    }
}

/// The same evidence scored against every rubric of a [`RubricSet`]: what a
/// recommendation does with a whole catalog, whose rubrics share most of
/// their competencies (the built-in framework's 24 rubrics name 199
/// competencies, 52 distinct at their expected levels). Every competency's
/// samples are grouped and summed once, and its posterior worked out once
/// per expected level. A rubric's standing ([`ManyRubrics::totals`]) then
/// costs a few sums and no allocation, and its full score
/// ([`ManyRubrics::score`]) is exactly the one [`score_calibrated_unchecked`]
/// gives.
pub struct ManyRubrics<'r> {
    set: &'r RubricSet,
    policy: &'r ScoringPolicy,
    samples: GroupedSamples,
    /// Per competency of the set.
    sums: Vec<EvidenceSums>,
    /// Per (competency, expected level) pair of the set.
    levels: Vec<LevelScore>,
}

impl<'r> ManyRubrics<'r> {
    /// `evidence`, `adjustments`, the set's rubrics and `policy` as for
    /// [`score_calibrated_unchecked`] (already valid).
    pub fn new(
        evidence: &[Observation],
        adjustments: &RaterAdjustments,
        set: &'r RubricSet,
        policy: &'r ScoringPolicy,
        as_of: DateTime<Utc>,
    ) -> Self {
        let competencies: Vec<&str> = set.competencies.iter().map(String::as_str).collect();
        let samples = GroupedSamples::collect(evidence, adjustments, &competencies, policy, as_of);
        let sums: Vec<EvidenceSums> = (0..competencies.len())
            .map(|c| EvidenceSums::of(samples.of(c)))
            .collect();
        let levels = set
            .levels
            .iter()
            .map(|&(c, expected_level)| LevelScore::of(&sums[c], expected_level, policy))
            .collect();
        Self {
            set,
            policy,
            samples,
            sums,
            levels,
        }
    }

    /// The standing of the set's rubric `r`.
    pub fn totals(&self, r: usize) -> RoleTotals {
        let parts =
            self.set.rubrics[r]
                .iter()
                .zip(&self.set.slots[r])
                .map(|(expectation, &(c, level))| Part {
                    weight: expectation.weight,
                    critical: expectation.critical,
                    n: self.sums[c].n,
                    p: self.levels[level].p,
                });
        RoleTotals::of(parts, self.policy)
    }

    /// The full score of the set's rubric `r`.
    pub fn score(&self, r: usize) -> RoleScore {
        let competencies = self.set.rubrics[r]
            .iter()
            .zip(&self.set.slots[r])
            .map(|(expectation, &(c, level))| {
                competency_score(
                    expectation,
                    &self.sums[c],
                    &self.levels[level],
                    self.samples.of(c),
                )
            })
            .collect();
        role_score(competencies, self.policy)
    }
}

/// A rubric's standing without its competencies' details.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoleTotals {
    pub readiness: f64,
    pub supported_readiness: f64,
    pub coverage: f64,
    pub band: Band,
}

/// What a rubric's totals read of one of its competencies' scores.
#[derive(Clone, Copy)]
struct Part {
    weight: f64,
    critical: bool,
    n: f64,
    p: f64,
}

impl RoleTotals {
    fn of(parts: impl Iterator<Item = Part> + Clone, policy: &ScoringPolicy) -> Self {
        let total_weight = compensated_sum(parts.clone().map(|c| c.weight));
        let readiness = share(
            compensated_sum(parts.clone().map(|c| c.weight * c.p)),
            total_weight,
        );
        let evidenced = || parts.clone().filter(|c| c.n >= policy.min_evidence);
        let coverage = share(compensated_sum(evidenced().map(|c| c.weight)), total_weight);
        let supported_readiness = share(
            compensated_sum(evidenced().map(|c| c.weight * c.p)),
            total_weight,
        );
        let every_critical_met = parts.clone().all(|c| !c.critical || c.p >= 0.5);
        Self {
            band: model::band(readiness, coverage, every_critical_met),
            readiness,
            supported_readiness,
            coverage,
        }
    }
}

/// A rubric's score from its competencies' scores, in rubric order.
fn role_score(competencies: Vec<CompetencyScore>, policy: &ScoringPolicy) -> RoleScore {
    let totals = RoleTotals::of(
        competencies.iter().map(|c| Part {
            weight: c.weight,
            critical: c.critical,
            n: c.n,
            p: c.p,
        }),
        policy,
    );
    RoleScore {
        competencies,
        readiness: totals.readiness,
        supported_readiness: totals.supported_readiness,
        coverage: totals.coverage,
        band: totals.band,
    }
}

/// What a competency's score owes to its evidence alone.
struct EvidenceSums {
    n: f64,
    weighted_level_sum: f64,
    disagreement: f64,
}

impl EvidenceSums {
    fn of(samples: &[Sample]) -> Self {
        // One pass feeds both sums (each sees its terms in the same order as
        // a pass of its own would, so the same bits).
        let (mut n, mut weighted_level_sum) =
            (CompensatedSum::default(), CompensatedSum::default());
        for sample in samples {
            n.add(sample.weight);
            weighted_level_sum.add(sample.weight * sample.level);
        }
        let (n, weighted_level_sum) = (n.total(), weighted_level_sum.total());
        Self {
            n,
            weighted_level_sum,
            disagreement: disagreement(samples, n, weighted_level_sum),
        }
    }
}

/// What it owes to its evidence and its expected level (not to its weight
/// or whether it is critical).
struct LevelScore {
    m: f64,
    sd: f64,
    p: f64,
    gap: f64,
    status: CompetencyStatus,
}

impl LevelScore {
    fn of(sums: &EvidenceSums, expected_level: u8, policy: &ScoringPolicy) -> Self {
        let posterior = model::posterior(sums.n, sums.weighted_level_sum, expected_level, policy);
        Self {
            m: posterior.m,
            sd: posterior.sd,
            p: posterior.p,
            gap: (model::bar(expected_level) - posterior.m).max(0.0),
            status: model::status(sums.n, posterior.m, expected_level, policy),
        }
    }
}

fn competency_score(
    expectation: &Expectation,
    sums: &EvidenceSums,
    level: &LevelScore,
    samples: &[Sample],
) -> CompetencyScore {
    CompetencyScore {
        competency_id: expectation.competency_id.clone(),
        expected_level: expectation.expected_level,
        weight: expectation.weight,
        critical: expectation.critical,
        n: sums.n,
        weighted_level_sum: sums.weighted_level_sum,
        m: level.m,
        sd: level.sd,
        p: level.p,
        gap: level.gap,
        disagreement: sums.disagreement,
        status: level.status,
        conflicting: sums.disagreement > CONFLICT_THRESHOLD,
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
            .fields();
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
