//! Properties of recommendations (SPEC §5) over random evidence profiles
//! against the built-in framework: strengths and gaps never name the same
//! competency, never rest on the prior alone, and are the ones §5 picks.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ladder::domain::evidence::{Observation, Source};
use ladder::domain::framework::{Catalog, Document, Rubric, RubricState};
use ladder::domain::recommend::recommend;
use ladder::domain::scoring::{
    CompetencyScore, CompetencyStatus, RaterAdjustments, ScoringPolicy, score,
};
use proptest::prelude::*;
use proptest::sample::select;
use uuid::Uuid;

fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
}

/// The built-in framework as a tenant has it once loaded: every rubric
/// published at version 1.
fn builtin_catalog() -> Catalog {
    let doc = Document::builtin();
    let rubrics = doc
        .roles
        .iter()
        .filter_map(|role| {
            Some(Rubric {
                role_id: role.id.clone(),
                version: 1,
                state: RubricState::Published,
                competencies: role.rubric.as_ref()?.competencies.clone(),
                published_texts: Vec::new(),
            })
        })
        .collect();
    Catalog::new(
        doc.tracks.clone(),
        doc.roles.iter().map(|r| r.role()).collect(),
        rubrics,
    )
}

fn competency_ids() -> Vec<String> {
    Document::builtin()
        .competencies
        .iter()
        .map(|c| c.id.clone())
        .collect()
}

/// A person's evidence: a handful of ratings of random competencies, from a
/// week to three years old, so that some competencies have enough evidence
/// and some only the prior.
fn profile() -> impl Strategy<Value = Vec<Observation>> {
    let item = (
        select(competency_ids()),
        1.0..=5.0_f64,
        select(Source::ALL.to_vec()),
        0.2..=1.0_f64,
        7_i64..3 * 365,
    );
    prop::collection::vec(item, 0..40).prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(
                |(i, (competency_id, level, source, confidence, age_days))| Observation {
                    id: Uuid::from_u128(i as u128 + 1),
                    competency_id,
                    level,
                    source,
                    confidence,
                    observed_at: as_of() - Duration::days(age_days),
                },
            )
            .collect()
    })
}

/// SPEC §5's strengths or gaps of one score, worked out here from the
/// competency numbers alone: the evidenced competencies on one side of
/// p_c = 0.8, at most 3, largest `key` first, ties by id.
fn expected(
    competencies: &[CompetencyScore],
    min_evidence: f64,
    strength: bool,
    key: impl Fn(&CompetencyScore) -> f64,
) -> Vec<String> {
    let mut picked: Vec<&CompetencyScore> = competencies
        .iter()
        .filter(|c| c.n >= min_evidence && (c.p >= 0.8) == strength)
        .collect();
    picked.sort_by(|a, b| {
        key(b)
            .partial_cmp(&key(a))
            .unwrap()
            .then_with(|| a.competency_id.cmp(&b.competency_id))
    });
    picked
        .into_iter()
        .take(3)
        .map(|c| c.competency_id.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn strengths_and_gaps_are_disjoint_evidenced_and_as_spec_section_5_picks(
        evidence in profile(),
        min_evidence in select(vec![0.5, 1.0, 2.0]),
    ) {
        let catalog = builtin_catalog();
        let policy = ScoringPolicy { min_evidence, ..ScoringPolicy::default() };
        let result = recommend(
            &catalog,
            "senior_engineer",
            &evidence,
            &RaterAdjustments::default(),
            &policy,
            as_of(),
            100,
        );
        prop_assert!(!result.recommendations.is_empty());
        for rec in &result.recommendations {
            let rubric = catalog.rubric(&rec.role_id).expect("a published rubric");
            let scored = score(&evidence, &rubric.expectations(), &policy, as_of()).unwrap();
            let strengths: Vec<String> =
                rec.strengths.iter().map(|s| s.competency_id.clone()).collect();
            let gaps: Vec<String> = rec.gaps.iter().map(|g| g.competency_id.clone()).collect();
            let names: HashSet<&String> = strengths.iter().collect();
            prop_assert!(gaps.iter().all(|g| !names.contains(g)), "{} in both", rec.role_id);
            for id in strengths.iter().chain(&gaps) {
                let c = scored.competencies.iter().find(|c| &c.competency_id == id).unwrap();
                prop_assert!(c.status != CompetencyStatus::InsufficientEvidence);
            }
            prop_assert_eq!(
                &strengths,
                &expected(&scored.competencies, min_evidence, true, |c| c.weight * c.p)
            );
            prop_assert_eq!(
                &gaps,
                &expected(&scored.competencies, min_evidence, false, |c| c.weight * (1.0 - c.p))
            );
        }
    }
}
