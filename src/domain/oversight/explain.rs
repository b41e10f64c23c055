//! The explanation of an assessment (SPEC §11): for each competency how sure
//! the estimate is, how much of it is still the prior, and which evidence moved
//! it most; for the role, which competencies decide the band; and a summary in
//! plain words built from those numbers alone.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use uuid::Uuid;

use crate::domain::evidence::{Observation, Source};
use crate::domain::scoring::{Band, CompetencyScore, CompetencyStatus, RoleScore, ScoringPolicy};

/// z with Φ(z) = 0.9: m_c ± z·sd_c holds 80 % of the posterior.
pub const CREDIBLE_80_Z: f64 = 1.2815515655446004;
/// Evidence items shown per competency, those with the largest |Δ_e|.
pub const TOP_INFLUENCES: usize = 3;
/// Competencies shown as deciding the band besides the failing critical ones.
pub const FURTHER_DECIDING: usize = 3;

/// Everything SPEC §11 asks to explain about one score.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub band: Band,
    pub readiness: f64,
    pub coverage: f64,
    /// One entry per rubric competency, in rubric order.
    pub competencies: Vec<CompetencyExplanation>,
    /// The competencies that decide the band, most decisive first: every
    /// critical one with p_c < 0.5, then up to [`FURTHER_DECIDING`] others
    /// with the largest shortfall W_c·(1 − p_c) > 0.
    pub deciding: Vec<DecidingCompetency>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompetencyExplanation {
    pub competency_id: String,
    pub critical: bool,
    pub status: CompetencyStatus,
    /// m_c.
    pub estimate: f64,
    /// t_c = E_c − 0.5.
    pub bar: f64,
    /// p_c.
    pub p: f64,
    /// m_c ± 1.2815515655446004·sd_c.
    pub interval: CredibleInterval,
    /// n0 / (n0 + n_c): how much of m_c is still the prior.
    pub prior_share: f64,
    /// Contributing evidence items (including any whose weight decayed to 0).
    pub evidence_count: usize,
    /// The [`TOP_INFLUENCES`] items with the largest |Δ_e|, largest first,
    /// equal |Δ_e| by evidence id.
    pub top_influences: Vec<Influence>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CredibleInterval {
    pub lower: f64,
    pub upper: f64,
}

/// One evidence item's leave-one-out influence on a competency estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Influence {
    pub evidence_id: Uuid,
    pub source: Source,
    pub observed_at: DateTime<Utc>,
    /// x_e as it entered the score: with rater calibration, the calibrated
    /// level x_e − b_r.
    pub level: f64,
    /// w_e.
    pub weight: f64,
    /// Δ_e = m_c − m_c^(−e): positive when the item pulls the estimate up.
    pub delta: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecidingCompetency {
    pub competency_id: String,
    pub reason: DecidingReason,
    /// W_c·(1 − p_c): the readiness weight this competency leaves unearned.
    pub shortfall: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidingReason {
    /// Critical with p_c < 0.5: on its own it keeps the role from READY.
    CriticalBelowBar,
    /// Among the largest W_c·(1 − p_c) of the remaining competencies.
    LargestShortfall,
}

/// The evidence supplied does not belong to the score: an inconsistency
/// between stored assessment and stored evidence, never the caller's input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExplainError {
    #[error("evidence {0} contributes to the score but was not supplied")]
    MissingEvidence(Uuid),
    #[error("the supplied evidence levels do not reproduce the score of {0}")]
    LevelsDoNotMatch(String),
}

/// Explains `score`, computed under `policy` from `evidence`: the observations
/// as stored (with rater calibration on, each enters at its level less the
/// rater adjustment its contribution records). Evidence the score does not
/// cite is ignored.
pub fn explain(
    score: &RoleScore,
    policy: &ScoringPolicy,
    evidence: &[Observation],
) -> Result<Explanation, ExplainError> {
    let by_id = index(evidence);
    let competencies = score
        .competencies
        .iter()
        .map(|competency| {
            let mut influences = leave_one_out(competency, policy.prior_strength, &by_id)?;
            influences.truncate(TOP_INFLUENCES);
            let half_width = CREDIBLE_80_Z * competency.sd;
            Ok(CompetencyExplanation {
                competency_id: competency.competency_id.clone(),
                critical: competency.critical,
                status: competency.status,
                estimate: competency.m,
                bar: f64::from(competency.expected_level) - 0.5,
                p: competency.p,
                interval: CredibleInterval {
                    lower: competency.m - half_width,
                    upper: competency.m + half_width,
                },
                prior_share: policy.prior_strength / (policy.prior_strength + competency.n),
                evidence_count: competency.contributions.len(),
                top_influences: influences,
            })
        })
        .collect::<Result<_, ExplainError>>()?;
    Ok(Explanation {
        band: score.band,
        readiness: score.readiness,
        coverage: score.coverage,
        competencies,
        deciding: deciding(&score.competencies),
    })
}

/// The influence Δ_e of every item contributing to `competency`, largest
/// |Δ_e| first (equal ones by evidence id), from the posterior's sums in
/// closed form: with T = n0 + n_c,
///
///   Δ_e = (n0·μ0 + Σw·x)/T − (n0·μ0 + Σw·x − w_e·x_e)/(T − w_e)
///       = w_e·(x_e − m_c) / (n0 + n_c − w_e).
///
/// One pass over the items instead of re-scoring once per item.
pub fn influences(
    competency: &CompetencyScore,
    prior_strength: f64,
    evidence: &[Observation],
) -> Result<Vec<Influence>, ExplainError> {
    leave_one_out(competency, prior_strength, &index(evidence))
}

fn index(evidence: &[Observation]) -> HashMap<Uuid, &Observation> {
    evidence.iter().map(|o| (o.id, o)).collect()
}

fn leave_one_out(
    competency: &CompetencyScore,
    prior_strength: f64,
    evidence: &HashMap<Uuid, &Observation>,
) -> Result<Vec<Influence>, ExplainError> {
    let mut influences = Vec::with_capacity(competency.contributions.len());
    let mut weighted_level_sum = 0.0;
    let mut magnitude = 0.0;
    for contribution in &competency.contributions {
        let observation = evidence
            .get(&contribution.evidence_id)
            .ok_or(ExplainError::MissingEvidence(contribution.evidence_id))?;
        let weight = contribution.weight;
        // x_e as it entered the score: under rater calibration the stored
        // level less the leniency the contribution records (SPEC §10).
        let level = observation.level - contribution.rater_adjustment;
        weighted_level_sum += weight * level;
        magnitude += weight * level.abs();
        // n_c − w_e is exactly 0 when e is the only item, so a tiny n0 still
        // gives the right denominator instead of a rounding residue.
        let others = (competency.n - weight).max(0.0);
        influences.push(Influence {
            evidence_id: contribution.evidence_id,
            source: observation.source,
            observed_at: observation.observed_at,
            level,
            weight,
            delta: weight * (level - competency.m) / (prior_strength + others),
        });
    }
    // The closed form is only as right as the levels it is given: levels that
    // do not add up to the engine's Σ w·x (another calibration, edited
    // evidence) would explain a different score.
    if (weighted_level_sum - competency.weighted_level_sum).abs() > 1e-9 * magnitude.max(1.0) {
        return Err(ExplainError::LevelsDoNotMatch(
            competency.competency_id.clone(),
        ));
    }
    influences.sort_by(|a, b| {
        b.delta
            .abs()
            .total_cmp(&a.delta.abs())
            .then(a.evidence_id.cmp(&b.evidence_id))
    });
    Ok(influences)
}

fn deciding(competencies: &[CompetencyScore]) -> Vec<DecidingCompetency> {
    let mut ranked: Vec<DecidingCompetency> = competencies
        .iter()
        .map(|c| DecidingCompetency {
            competency_id: c.competency_id.clone(),
            reason: if c.critical && c.p < 0.5 {
                DecidingReason::CriticalBelowBar
            } else {
                DecidingReason::LargestShortfall
            },
            shortfall: c.weight * (1.0 - c.p),
        })
        .collect();
    // Stable: equal shortfalls keep rubric order.
    ranked.sort_by(|a, b| {
        let critical_first = |d: &DecidingCompetency| d.reason != DecidingReason::CriticalBelowBar;
        critical_first(a)
            .cmp(&critical_first(b))
            .then(b.shortfall.total_cmp(&a.shortfall))
    });
    let critical = ranked
        .iter()
        .take_while(|d| d.reason == DecidingReason::CriticalBelowBar)
        .count();
    let further = ranked[critical..]
        .iter()
        .take(FURTHER_DECIDING)
        .take_while(|d| d.shortfall > 0.0)
        .count();
    ranked.truncate(critical + further);
    ranked
}

/// A few sentences a person can read, from the numbers of `explanation` only.
/// `competency_names` maps ids to the names the rubric was published with; an
/// id without a name is shown as is.
pub fn summary(
    explanation: &Explanation,
    role_name: &str,
    competency_names: &HashMap<String, String>,
) -> String {
    let name = |id: &str| -> String {
        competency_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    };
    let competency = |id: &str| {
        explanation
            .competencies
            .iter()
            .find(|c| c.competency_id == id)
            .expect("deciding competencies come from the explanation")
    };
    let readiness = format!("Readiness {:.2}", explanation.readiness);
    match explanation.band {
        Band::InsufficientEvidence => {
            let mut text = format!(
                "There is not enough evidence to judge readiness for {role_name}: competencies \
                 with enough evidence carry {:.0}% of the rubric weight.",
                explanation.coverage * 100.0
            );
            let missing: Vec<String> = explanation
                .competencies
                .iter()
                .filter(|c| c.status == CompetencyStatus::InsufficientEvidence)
                .map(|c| name(&c.competency_id))
                .collect();
            if !missing.is_empty() {
                text += &format!(" Missing evidence on {}.", list(&missing));
            }
            text
        }
        Band::Ready => {
            let mut text = format!(
                "Ready for {role_name}. {readiness}, and every critical competency is more \
                 likely than not at its bar."
            );
            if let Some(closest) = explanation.deciding.first() {
                text += &format!(
                    " Closest to holding it back: {}.",
                    competency_clause(
                        &name(&closest.competency_id),
                        competency(&closest.competency_id)
                    )
                );
            }
            text
        }
        Band::Developing | Band::NotYet => {
            let held_back: Vec<&DecidingCompetency> = explanation.deciding.iter().take(2).collect();
            let Some((first, rest)) = held_back.split_first() else {
                return format!("Not yet ready for {role_name}. {readiness}.");
            };
            let mut text = format!(
                "Ready for {role_name} is held back by {}.",
                competency_clause(
                    &name(&first.competency_id),
                    competency(&first.competency_id)
                )
            );
            for next in rest {
                text += &format!(
                    " Also by {}.",
                    competency_clause(&name(&next.competency_id), competency(&next.competency_id))
                );
            }
            text + &format!(" {readiness}.")
        }
    }
}

/// "technical influence (critical): estimated 3.30 against a bar of 3.5, from 4
/// pieces of evidence, most influenced by one peer review from 2025 (pulls it
/// down by 0.40)".
fn competency_clause(name: &str, c: &CompetencyExplanation) -> String {
    let critical = if c.critical { " (critical)" } else { "" };
    let mut clause = format!(
        "{name}{critical}: estimated {:.2} against a bar of {:.1}",
        c.estimate, c.bar
    );
    match c.top_influences.first() {
        None => clause += ", with no evidence yet",
        Some(top) => {
            let pieces = if c.evidence_count == 1 {
                "piece"
            } else {
                "pieces"
            };
            let direction = if top.delta < 0.0 { "down" } else { "up" };
            clause += &format!(
                ", from {} {pieces} of evidence, most influenced by one {} from {} \
                 (pulls it {direction} by {:.2})",
                c.evidence_count,
                source_noun(top.source),
                top.observed_at.year(),
                top.delta.abs()
            );
        }
    }
    if c.prior_share >= 0.5 {
        clause += &format!(
            "; the starting assumption is still {:.0}% of the estimate",
            c.prior_share * 100.0
        );
    }
    clause
}

fn source_noun(source: Source) -> &'static str {
    match source {
        Source::SelfReview => "self review",
        Source::Peer => "peer review",
        Source::Manager => "manager review",
        Source::DirectReport => "direct-report review",
        Source::Artifact => "work artifact",
        Source::Calibration => "calibration committee rating",
    }
}

/// "a", "a and b", "a, b and c".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::scoring::{Expectation, RaterAdjustments, score, score_calibrated};

    fn as_of() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap()
    }

    /// Manager observations made at `as_of`: each weighs exactly 1.
    fn manager(id: u128, competency_id: &str, level: f64) -> Observation {
        Observation {
            id: Uuid::from_u128(id),
            competency_id: competency_id.into(),
            level,
            source: Source::Manager,
            confidence: 1.0,
            observed_at: as_of(),
        }
    }

    fn rubric() -> Vec<Expectation> {
        vec![Expectation {
            competency_id: "technical_influence".into(),
            expected_level: 4,
            weight: 1.0,
            critical: true,
        }]
    }

    fn explained(evidence: &[Observation]) -> Explanation {
        let policy = ScoringPolicy::default();
        let scored = score(evidence, &rubric(), &policy, as_of()).unwrap();
        explain(&scored, &policy, evidence).unwrap()
    }

    fn names() -> HashMap<String, String> {
        HashMap::from([(
            "technical_influence".to_string(),
            "technical influence".to_string(),
        )])
    }

    #[test]
    fn influences_by_hand() {
        // n0 = 1, μ0 = 3: m = (3 + 5 + 2) / 3. Without the 5: (3 + 2) / 2;
        // without the 2: (3 + 5) / 2.
        let evidence = [
            manager(2, "technical_influence", 2.0),
            manager(1, "technical_influence", 5.0),
        ];
        let explanation = explained(&evidence);
        let competency = &explanation.competencies[0];
        let deltas: Vec<(u128, f64)> = competency
            .top_influences
            .iter()
            .map(|i| (i.evidence_id.as_u128(), i.delta))
            .collect();
        assert_eq!(deltas.len(), 2);
        assert_eq!(deltas[0].0, 1);
        assert!((deltas[0].1 - (10.0 / 3.0 - 2.5)).abs() < 1e-15);
        assert_eq!(deltas[1].0, 2);
        assert!((deltas[1].1 - (10.0 / 3.0 - 4.0)).abs() < 1e-15);
        assert_eq!(competency.prior_share, 1.0 / 3.0);
        let half_width = CREDIBLE_80_Z / 3.0_f64.sqrt();
        assert_eq!(competency.interval.lower, competency.estimate - half_width);
        assert_eq!(competency.interval.upper, competency.estimate + half_width);
    }

    #[test]
    fn calibrated_levels_are_explained_as_they_entered_the_score() {
        // A lenient rater's 4.5 (b = +1/3) enters at 25/6, a strict rater's
        // 3.5 (b = −1/3) at 23/6: m = (3 + 25/6 + 23/6) / 3 = 11/3, and
        // leaving one out moves m by (x_e − 11/3) / 2: 1/4 and 1/12.
        let policy = ScoringPolicy::default();
        let evidence = [
            manager(1, "technical_influence", 4.5),
            manager(2, "technical_influence", 3.5),
        ];
        let adjustments: RaterAdjustments = [
            (Uuid::from_u128(1), 1.0 / 3.0),
            (Uuid::from_u128(2), -1.0 / 3.0),
        ]
        .into_iter()
        .collect();
        let scored =
            score_calibrated(&evidence, &adjustments, &rubric(), &policy, as_of()).unwrap();
        let explanation = explain(&scored, &policy, &evidence).unwrap();
        let competency = &explanation.competencies[0];
        assert!((competency.estimate - 11.0 / 3.0).abs() < 1e-12);
        let influences: Vec<(u128, f64, f64)> = competency
            .top_influences
            .iter()
            .map(|i| (i.evidence_id.as_u128(), i.level, i.delta))
            .collect();
        assert_eq!(influences.len(), 2);
        for ((id, level, delta), (want_id, want_level, want_delta)) in influences
            .into_iter()
            .zip([(1, 25.0 / 6.0, 0.25), (2, 23.0 / 6.0, 1.0 / 12.0)])
        {
            assert_eq!(id, want_id);
            assert!((level - want_level).abs() < 1e-12);
            assert!((delta - want_delta).abs() < 1e-12);
        }
    }

    #[test]
    fn equal_influences_are_ordered_by_evidence_id() {
        let evidence: Vec<Observation> = [9, 4, 7, 5]
            .into_iter()
            .map(|id| manager(id, "technical_influence", 4.0))
            .collect();
        let ids: Vec<u128> = explained(&evidence).competencies[0]
            .top_influences
            .iter()
            .map(|i| i.evidence_id.as_u128())
            .collect();
        assert_eq!(ids, [4, 5, 7]);
    }

    #[test]
    fn refuses_evidence_that_does_not_belong_to_the_score() {
        let policy = ScoringPolicy::default();
        let evidence = [manager(1, "technical_influence", 5.0)];
        let scored = score(&evidence, &rubric(), &policy, as_of()).unwrap();
        assert_eq!(
            explain(&scored, &policy, &[]),
            Err(ExplainError::MissingEvidence(Uuid::from_u128(1)))
        );
        let recalibrated = [manager(1, "technical_influence", 4.5)];
        assert_eq!(
            explain(&scored, &policy, &recalibrated),
            Err(ExplainError::LevelsDoNotMatch("technical_influence".into()))
        );
    }

    fn competency(id: &str, weight: f64, p: f64, critical: bool) -> CompetencyScore {
        CompetencyScore {
            competency_id: id.into(),
            expected_level: 3,
            weight,
            critical,
            n: 0.0,
            weighted_level_sum: 0.0,
            m: 3.0,
            sd: 1.0,
            p,
            gap: 0.0,
            disagreement: 0.0,
            status: CompetencyStatus::Meets,
            conflicting: false,
            contributions: Vec::new(),
        }
    }

    #[test]
    fn failing_criticals_decide_first_then_the_largest_shortfalls() {
        let ranked = deciding(&[
            competency("a", 1.0, 0.9, false), // shortfall 0.1
            competency("b", 1.0, 0.45, true), // critical below: 0.55
            competency("c", 3.0, 0.8, false), // 0.6
            competency("d", 1.0, 0.2, true),  // critical below: 0.8
            competency("e", 1.0, 0.6, true),  // critical met: 0.4
            competency("f", 2.0, 1.0, false), // no shortfall
            competency("g", 0.5, 0.2, false), // 0.4, after e in rubric order
        ]);
        let order: Vec<(&str, DecidingReason)> = ranked
            .iter()
            .map(|d| (d.competency_id.as_str(), d.reason))
            .collect();
        use DecidingReason::*;
        assert_eq!(
            order,
            [
                ("d", CriticalBelowBar),
                ("b", CriticalBelowBar),
                ("c", LargestShortfall),
                ("e", LargestShortfall),
                ("g", LargestShortfall),
            ]
        );
        let none_short = deciding(&[competency("f", 2.0, 1.0, false)]);
        assert!(none_short.is_empty());
    }

    #[test]
    fn summary_names_what_holds_the_band_back() {
        let evidence = [
            manager(2, "technical_influence", 2.0),
            manager(1, "technical_influence", 5.0),
        ];
        assert_eq!(
            summary(&explained(&evidence), "Staff Engineer", &names()),
            "Ready for Staff Engineer is held back by technical influence (critical): estimated \
             3.33 against a bar of 3.5, from 2 pieces of evidence, most influenced by one manager \
             review from 2025 (pulls it up by 0.83). Readiness 0.39."
        );
    }

    #[test]
    fn summary_of_a_ready_band_names_the_closest_call() {
        let evidence: Vec<Observation> = (1..=6)
            .map(|id| manager(id, "technical_influence", 5.0))
            .collect();
        assert_eq!(
            summary(&explained(&evidence), "Staff Engineer", &HashMap::new()),
            "Ready for Staff Engineer. Readiness 1.00, and every critical competency is more \
             likely than not at its bar. Closest to holding it back: technical_influence \
             (critical): estimated 4.71 against a bar of 3.5, from 6 pieces of evidence, most \
             influenced by one manager review from 2025 (pulls it up by 0.05)."
        );
    }

    #[test]
    fn summary_without_evidence_says_what_is_missing() {
        assert_eq!(
            summary(&explained(&[]), "Staff Engineer", &names()),
            "There is not enough evidence to judge readiness for Staff Engineer: competencies \
             with enough evidence carry 0% of the rubric weight. Missing evidence on technical \
             influence."
        );
    }
}
