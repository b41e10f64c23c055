//! Properties of the scoring engine that must hold for every valid input.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ladder::domain::evidence::{Observation, Source};
use ladder::domain::scoring::{
    Expectation, MAX_PLANNED_OBSERVATIONS, ManyRubrics, RaterAdjustments, RoleScore, RoleTotals,
    RubricSet, ScoringPolicy, SourceWeights, observations_needed, score,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use uuid::Uuid;

const COMPETENCIES: [&str; 6] = [
    "system_design",
    "technical_influence",
    "mentoring",
    "communication",
    "people_management",
    "product_sense",
];

fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

#[derive(Debug, Clone)]
struct Inputs {
    evidence: Vec<Observation>,
    rubric: Vec<Expectation>,
    policy: ScoringPolicy,
}

impl Inputs {
    fn score(&self) -> RoleScore {
        score(&self.evidence, &self.rubric, &self.policy, as_of())
            .expect("generated inputs are valid")
    }
}

fn observation_strategy() -> impl Strategy<Value = Observation> {
    (
        any::<u128>(),
        select(COMPETENCIES.to_vec()),
        1.0..=5.0_f64,
        select(Source::ALL.to_vec()),
        0.01..=1.0_f64,
        // From a month in the future (excluded) to twenty years back.
        -30 * 86_400_000_000_i64..20 * 365 * 86_400_000_000_i64,
    )
        .prop_map(
            |(id, competency, level, source, confidence, age_micros)| Observation {
                id: Uuid::from_u128(id),
                competency_id: competency.to_string(),
                level,
                source,
                confidence,
                observed_at: as_of() - Duration::microseconds(age_micros),
            },
        )
}

fn rubric_strategy() -> impl Strategy<Value = Vec<Expectation>> {
    subsequence(COMPETENCIES.to_vec(), 1..=4).prop_flat_map(|ids| {
        let expectations: Vec<_> = ids
            .into_iter()
            .map(|id| {
                (1..=5_u8, 0.1..5.0_f64, any::<bool>()).prop_map(
                    move |(expected_level, weight, critical)| Expectation {
                        competency_id: id.to_string(),
                        expected_level,
                        weight,
                        critical,
                    },
                )
            })
            .collect();
        expectations
    })
}

fn policy_strategy() -> impl Strategy<Value = ScoringPolicy> {
    let custom = (
        30.0..1000.0_f64,
        prop::array::uniform6(0.0..2.0_f64),
        1.0..=5.0_f64,
        0.2..5.0_f64,
        0.2..5.0_f64,
        0.0..3.0_f64,
    )
        .prop_map(
            |(half_life_days, weights, prior_mean, prior_strength, sigma, min_evidence)| {
                let mut source_weights = SourceWeights::default();
                for (source, weight) in Source::ALL.into_iter().zip(weights) {
                    source_weights.set(source, weight);
                }
                ScoringPolicy {
                    half_life_days,
                    source_weights,
                    prior_mean,
                    prior_strength,
                    sigma,
                    min_evidence,
                    ..ScoringPolicy::default()
                }
            },
        );
    prop_oneof![Just(ScoringPolicy::default()), custom]
}

fn inputs_strategy() -> impl Strategy<Value = Inputs> {
    (
        prop::collection::vec(observation_strategy(), 0..40),
        rubric_strategy(),
        policy_strategy(),
    )
        .prop_map(|(evidence, rubric, policy)| Inputs {
            evidence,
            rubric,
            policy,
        })
}

/// Like `inputs_strategy`, plus a few observations repeated under the same id
/// with another level and confidence: the canonical order must not rely on
/// unique ids.
fn inputs_with_repeated_ids() -> impl Strategy<Value = Inputs> {
    (
        inputs_strategy(),
        prop::collection::vec(
            (any::<prop::sample::Index>(), 1.0..=5.0_f64, 0.01..=1.0_f64),
            0..4,
        ),
    )
        .prop_map(|(mut inputs, repeats)| {
            if !inputs.evidence.is_empty() {
                for (pick, level, confidence) in repeats {
                    let repeated = Observation {
                        level,
                        confidence,
                        ..pick.get(&inputs.evidence).clone()
                    };
                    inputs.evidence.push(repeated);
                }
            }
            inputs
        })
}

/// k fresh observations as planning assumes them: level E_c, now, confidence 1.
fn planned_observations(
    competency: &Expectation,
    source: Source,
    k: u32,
    seed: u128,
) -> Vec<Observation> {
    (0..u128::from(k))
        .map(|i| Observation {
            id: Uuid::from_u128(seed.wrapping_add(i)),
            competency_id: competency.competency_id.clone(),
            level: f64::from(competency.expected_level),
            source,
            confidence: 1.0,
            observed_at: as_of(),
        })
        .collect()
}

proptest! {
    /// Bit-identical results whatever the evidence order (SPEC asks for 1e-9).
    #[test]
    fn order_of_evidence_does_not_matter(
        (inputs, shuffled) in inputs_with_repeated_ids().prop_flat_map(|inputs| {
            let shuffled = Just(inputs.evidence.clone()).prop_shuffle();
            (Just(inputs), shuffled)
        })
    ) {
        let reordered = Inputs { evidence: shuffled, ..inputs.clone() };
        prop_assert_eq!(inputs.score(), reordered.score());
    }

    /// Scoring many rubrics at once (recommendations) gives each rubric
    /// exactly its own score and totals, to the bit.
    #[test]
    fn many_rubrics_at_once_score_as_each_alone(
        inputs in inputs_with_repeated_ids(),
        others in prop::collection::vec(rubric_strategy(), 0..4),
    ) {
        let mut rubrics = vec![inputs.rubric.clone()];
        rubrics.extend(others);
        let alone: Vec<RoleScore> = rubrics
            .iter()
            .map(|rubric| Inputs { rubric: rubric.clone(), ..inputs.clone() }.score())
            .collect();
        let set = RubricSet::new(rubrics.clone());
        let many = ManyRubrics::new(
            &inputs.evidence,
            &RaterAdjustments::default(),
            &set,
            &inputs.policy,
            as_of(),
        );
        let together: Vec<RoleScore> = (0..rubrics.len()).map(|r| many.score(r)).collect();
        for (r, score) in alone.iter().enumerate() {
            let totals = RoleTotals {
                readiness: score.readiness,
                supported_readiness: score.supported_readiness,
                coverage: score.coverage,
                band: score.band,
            };
            prop_assert_eq!(many.totals(r), totals);
        }
        prop_assert_eq!(together, alone);
    }

    #[test]
    fn probabilities_and_shares_stay_in_range(inputs in inputs_strategy()) {
        let result = inputs.score();
        prop_assert!((0.0..=1.0).contains(&result.readiness));
        prop_assert!((0.0..=1.0).contains(&result.coverage));
        for c in &result.competencies {
            prop_assert!((0.0..=1.0).contains(&c.p), "p = {}", c.p);
            prop_assert!(c.n >= 0.0 && c.sd > 0.0 && c.gap >= 0.0 && c.disagreement >= 0.0);
            prop_assert!(c.m.is_finite() && c.sd.is_finite() && c.disagreement.is_finite());
        }
    }

    /// One more observation at or above the estimate can only confirm it: m_c
    /// does not fall and sd_c does not grow (up to rounding, 1e-12).
    #[test]
    fn evidence_above_the_estimate_never_lowers_it(
        inputs in inputs_strategy(),
        extra in observation_strategy(),
        pick in any::<prop::sample::Index>(),
        above in 0.0..=1.0_f64,
    ) {
        let before = inputs.score();
        let target = &before.competencies[pick.index(before.competencies.len())];
        let level = (target.m + above * (5.0 - target.m)).clamp(1.0, 5.0);
        prop_assume!(level >= target.m);
        let observed_at = extra.observed_at.min(as_of());
        let mut grown = inputs.clone();
        grown.evidence.push(Observation { competency_id: target.competency_id.clone(), level, observed_at, ..extra });

        let after = grown.score();
        let updated = after.competencies.iter().find(|c| c.competency_id == target.competency_id).unwrap();
        prop_assert!(updated.m >= target.m - 1e-12, "m fell from {} to {}", target.m, updated.m);
        prop_assert!(updated.sd <= target.sd + 1e-12, "sd grew from {} to {}", target.sd, updated.sd);
    }

    #[test]
    fn n_is_the_sum_of_the_reported_weights(inputs in inputs_strategy()) {
        for c in inputs.score().competencies {
            let total: f64 = c.contributions.iter().map(|contribution| contribution.weight).sum();
            prop_assert!((c.n - total).abs() <= 1e-12 * c.n.max(1.0), "n = {}, Σ w_e = {}", c.n, total);
        }
    }

    /// A competency's score depends on its own evidence only.
    #[test]
    fn competencies_do_not_see_each_others_evidence(inputs in inputs_strategy()) {
        let full = inputs.score();
        for competency in &full.competencies {
            let own = Inputs {
                evidence: inputs
                    .evidence
                    .iter()
                    .filter(|e| e.competency_id == competency.competency_id)
                    .cloned()
                    .collect(),
                ..inputs.clone()
            };
            let alone = own.score();
            let same = alone.competencies.iter().find(|c| c.competency_id == competency.competency_id);
            prop_assert_eq!(same, Some(competency));
        }
    }

    /// Planning agrees with the engine: k planned observations reach the
    /// target and k − 1 do not; out of reach means the cap does not either.
    #[test]
    fn observations_needed_agrees_with_the_engine(
        inputs in inputs_strategy(),
        pick in any::<prop::sample::Index>(),
        source in select(Source::ALL.to_vec()),
        target in select(vec![0.5, 0.8]),
        seed in any::<u128>(),
    ) {
        let before = inputs.score();
        let index = pick.index(before.competencies.len());
        let expectation = &inputs.rubric[index];
        let p_with = |k: u32| {
            let mut grown = inputs.clone();
            grown.evidence.extend(planned_observations(expectation, source, k, seed));
            grown.score().competencies[index].p
        };
        match observations_needed(&before.competencies[index], source, &inputs.policy, target) {
            Some(k) => {
                prop_assert!(p_with(k) >= target, "{} observations should reach {}", k, target);
                if k > 0 {
                    prop_assert!(p_with(k - 1) < target, "{} observations already reach {}", k - 1, target);
                }
            }
            None => prop_assert!(p_with(MAX_PLANNED_OBSERVATIONS) < target),
        }
    }
}
