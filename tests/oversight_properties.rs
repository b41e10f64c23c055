//! Properties of explanations that must hold for every valid assessment: the
//! closed-form leave-one-out influences equal what the scoring engine computes
//! without the item.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ladder::domain::evidence::{Observation, Source};
use ladder::domain::oversight::{
    CREDIBLE_80_Z, DecidingReason, TOP_INFLUENCES, explain, influences,
};
use ladder::domain::scoring::{Expectation, RoleScore, ScoringPolicy, SourceWeights, score};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use uuid::Uuid;

const COMPETENCIES: [&str; 4] = [
    "system_design",
    "technical_influence",
    "mentoring",
    "communication",
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
    fn score_with(&self, evidence: &[Observation]) -> RoleScore {
        score(evidence, &self.rubric, &self.policy, as_of()).expect("generated inputs are valid")
    }
}

fn observation_strategy() -> impl Strategy<Value = Observation> {
    (
        any::<u128>(),
        select(COMPETENCIES.to_vec()),
        1.0..=5.0_f64,
        select(Source::ALL.to_vec()),
        0.01..=1.0_f64,
        // From a month in the future (left out of the score) to ten years back.
        -30 * 86_400_000_000_i64..10 * 365 * 86_400_000_000_i64,
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

fn inputs_strategy() -> impl Strategy<Value = Inputs> {
    let rubric = subsequence(COMPETENCIES.to_vec(), 1..=4).prop_flat_map(|ids| {
        ids.into_iter()
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
            .collect::<Vec<_>>()
    });
    let policy = (
        30.0..1000.0_f64,
        prop::array::uniform6(0.0..2.0_f64),
        1.0..=5.0_f64,
        0.05..5.0_f64,
        0.2..5.0_f64,
    )
        .prop_map(
            |(half_life_days, weights, prior_mean, prior_strength, sigma)| {
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
                    ..ScoringPolicy::default()
                }
            },
        );
    (
        prop::collection::vec(observation_strategy(), 0..25),
        rubric,
        prop_oneof![Just(ScoringPolicy::default()), policy],
    )
        .prop_map(|(mut evidence, rubric, policy)| {
            // Stored evidence has unique ids; an explanation names items by id.
            let mut seen = HashSet::new();
            evidence.retain(|o| seen.insert(o.id));
            Inputs {
                evidence,
                rubric,
                policy,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Δ_e from the closed form equals m_c minus the engine's m_c on the
    /// evidence without e, to 1e-12.
    #[test]
    fn influences_equal_rescoring_without_the_item(inputs in inputs_strategy()) {
        let full = inputs.score_with(&inputs.evidence);
        for (c, competency) in full.competencies.iter().enumerate() {
            let ranked = influences(competency, inputs.policy.prior_strength, &inputs.evidence)
                .expect("the evidence of the score");
            prop_assert_eq!(ranked.len(), competency.contributions.len());
            for influence in &ranked {
                let without: Vec<Observation> = inputs
                    .evidence
                    .iter()
                    .filter(|o| o.id != influence.evidence_id)
                    .cloned()
                    .collect();
                let left_out = inputs.score_with(&without).competencies[c].m;
                let recomputed = competency.m - left_out;
                prop_assert!(
                    (influence.delta - recomputed).abs() <= 1e-12,
                    "Δ = {} but rescoring gives {}", influence.delta, recomputed
                );
            }
            for pair in ranked.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                prop_assert!(
                    a.delta.abs() > b.delta.abs()
                        || (a.delta.abs() == b.delta.abs() && a.evidence_id < b.evidence_id)
                );
            }
        }
    }

    #[test]
    fn explanation_holds_the_spec_numbers(inputs in inputs_strategy()) {
        let full = inputs.score_with(&inputs.evidence);
        let explanation = explain(&full, &inputs.policy, &inputs.evidence)
            .expect("the evidence of the score");
        let n0 = inputs.policy.prior_strength;
        for (competency, explained) in full.competencies.iter().zip(&explanation.competencies) {
            let half_width = CREDIBLE_80_Z * competency.sd;
            prop_assert_eq!(explained.interval.lower, competency.m - half_width);
            prop_assert_eq!(explained.interval.upper, competency.m + half_width);
            prop_assert_eq!(explained.prior_share, n0 / (n0 + competency.n));
            let ranked = influences(competency, n0, &inputs.evidence).unwrap();
            let top = &ranked[..ranked.len().min(TOP_INFLUENCES)];
            prop_assert_eq!(&explained.top_influences[..], top);
        }
        // Every critical competency below its bar decides, and comes first.
        let critical_below: Vec<&str> = full
            .competencies
            .iter()
            .filter(|c| c.critical && c.p < 0.5)
            .map(|c| c.competency_id.as_str())
            .collect();
        let leading: Vec<&str> = explanation
            .deciding
            .iter()
            .take_while(|d| d.reason == DecidingReason::CriticalBelowBar)
            .map(|d| d.competency_id.as_str())
            .collect();
        let mut sorted_leading = leading.clone();
        sorted_leading.sort_unstable();
        let mut sorted_critical = critical_below.clone();
        sorted_critical.sort_unstable();
        prop_assert_eq!(sorted_leading, sorted_critical);
    }
}
