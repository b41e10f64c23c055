//! Career recommendations (SPEC §5): which roles to aim for next, what holds
//! the person back, and which evidence is worth collecting next.
//!
//! Everything is computed in memory from one fetch of the subject's evidence:
//! every published rubric of the tenant is scored with the same engine.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use crate::domain::evidence::{Observation, Source};
use crate::domain::framework::{Catalog, Role, Rubric};
use crate::domain::scoring::{
    Band, CompetencyScore, CompetencyStatus, ManyRubrics, ProbabilityTarget, RaterAdjustments,
    RoleScore, RoleTotals, ScoringPolicy, observations_for_min_evidence, observations_needed_for,
};

/// How far along transitions candidates are looked for.
pub const MAX_STEPS: usize = 2;
/// How many strengths and gaps a recommendation lists.
pub const TOP: usize = 3;
/// The probabilities the evidence plan aims for: even odds, then confidence.
/// Confidence also parts strengths (p_c ≥ it) from gaps (SPEC §5).
pub const EVEN_ODDS: f64 = 0.5;
pub const CONFIDENT: f64 = 0.8;
static EVEN_ODDS_TARGET: LazyLock<ProbabilityTarget> =
    LazyLock::new(|| ProbabilityTarget::new(EVEN_ODDS));
static CONFIDENT_TARGET: LazyLock<ProbabilityTarget> =
    LazyLock::new(|| ProbabilityTarget::new(CONFIDENT));
/// How many sources an evidence plan names per competency.
pub const PLANNED_SOURCES: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct Strength {
    pub competency_id: String,
    pub expected_level: u8,
    pub estimated_level: f64,
    pub probability: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub competency_id: String,
    pub expected_level: u8,
    pub estimated_level: f64,
    pub probability: f64,
    /// W_c × (1 − p_c).
    pub shortfall: f64,
    pub development_actions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionReason {
    InsufficientEvidence,
    Gap,
}

/// New observations from one source, at the expected level, observed now with
/// full confidence, needed to lift p_c to even odds and to confidence.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcePlan {
    pub source: Source,
    /// Observations that lift n_c to `min_evidence`, so the competency is scored.
    pub for_enough_evidence: Option<u32>,
    pub for_even_odds: Option<u32>,
    pub for_confidence: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceToCollect {
    pub competency_id: String,
    pub reason: CollectionReason,
    pub probability: f64,
    /// Most helpful first.
    pub sources: Vec<SourcePlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub role_id: String,
    pub role_name: String,
    /// The role's track id.
    pub track: String,
    pub rubric_version: i32,
    /// From the current role to this one; empty when not reachable.
    pub path: Vec<String>,
    /// Transitions from the current role; `None` when not reachable.
    pub steps: Option<usize>,
    /// The rubric's standing (its full score is what the strengths, gaps
    /// and evidence plans are made from).
    pub totals: RoleTotals,
    pub strengths: Vec<Strength>,
    pub gaps: Vec<Gap>,
    pub evidence_to_collect: Vec<EvidenceToCollect>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackFit {
    pub track_id: String,
    pub track_name: String,
    /// The supported readiness of the track's best-supported role other than
    /// the current one, in [0, 1]; 0 when the evidence points nowhere in it.
    pub fit: f64,
    /// That role; `None` when the fit is 0.
    pub best_role_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendations {
    pub recommendations: Vec<Recommendation>,
    pub track_fits: Vec<TrackFit>,
}

/// The shortest path (in transitions) from `from` to every role within
/// [`MAX_STEPS`], breadth first so that ties keep the first path found in
/// transition order.
fn reachable(catalog: &Catalog, from: &str) -> BTreeMap<String, Vec<String>> {
    let mut paths = BTreeMap::new();
    let mut queue = VecDeque::from([vec![from.to_string()]]);
    while let Some(path) = queue.pop_front() {
        let last = path.last().expect("paths are never empty");
        if path.len() > MAX_STEPS {
            continue;
        }
        for t in catalog
            .role(last)
            .map(|r| r.transitions.as_slice())
            .unwrap_or_default()
        {
            if t.to == from || paths.contains_key(&t.to) {
                continue;
            }
            let mut next = path.clone();
            next.push(t.to.clone());
            paths.insert(t.to.clone(), next.clone());
            queue.push_back(next);
        }
    }
    paths
}

/// A role that may be recommended, before its details are worked out.
struct Candidate<'a> {
    role: &'a Role,
    rubric: &'a Rubric,
    /// The rubric's position in the catalog.
    index: usize,
    totals: RoleTotals,
    /// Role ids from the current role to this one; empty when unreachable.
    path: Vec<String>,
}

impl Candidate<'_> {
    fn steps(&self) -> Option<usize> {
        (!self.path.is_empty()).then(|| self.path.len() - 1)
    }
}

/// SPEC §5's order: READY roles first; then what the evidence supports
/// (supported readiness), fewer steps (unreachable last), readiness, role id.
/// With no evidence every supported readiness is 0 and steps decide, so no
/// role ranks up on the prior alone.
fn rank(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    let ready = |c: &Candidate| c.totals.band == Band::Ready;
    ready(b)
        .cmp(&ready(a))
        .then(
            b.totals
                .supported_readiness
                .total_cmp(&a.totals.supported_readiness),
        )
        .then(
            a.steps()
                .unwrap_or(usize::MAX)
                .cmp(&b.steps().unwrap_or(usize::MAX)),
        )
        .then(b.totals.readiness.total_cmp(&a.totals.readiness))
        .then_with(|| a.role.id.cmp(&b.role.id))
}

/// Recommends next roles for a subject whose current role is `current_role`.
/// `evidence` must already be valid (it is stored, or was validated), and so
/// must `adjustments`, the rater calibration to score with (empty for none).
pub fn recommend(
    catalog: &Catalog,
    current_role: &str,
    evidence: &[Observation],
    adjustments: &RaterAdjustments,
    policy: &ScoringPolicy,
    as_of: DateTime<Utc>,
    max_recommendations: usize,
) -> Recommendations {
    let many = ManyRubrics::new(evidence, adjustments, catalog.rubric_set(), policy, as_of);
    let scored: Vec<(&Rubric, RoleTotals)> = catalog
        .rubrics()
        .iter()
        .enumerate()
        .map(|(index, rubric)| (rubric, many.totals(index)))
        .collect();
    let paths = reachable(catalog, current_role);
    // Without a known current role no READY role counts as a step down.
    let current_seniority = catalog.role(current_role).map_or(i32::MIN, |r| r.seniority);
    let mut candidates: Vec<Candidate> = scored
        .iter()
        .enumerate()
        .filter(|(_, (rubric, _))| rubric.role_id != current_role)
        .filter_map(|(index, &(rubric, totals))| {
            let role = catalog.role(&rubric.role_id)?;
            let path = paths.get(&rubric.role_id).cloned().unwrap_or_default();
            // Off the transition graph only READY roles count, and never a
            // step down: only a transition can offer one.
            let offered = !path.is_empty()
                || (totals.band == Band::Ready && role.seniority >= current_seniority);
            offered.then_some(Candidate {
                role,
                rubric,
                index,
                totals,
                path,
            })
        })
        .collect();
    candidates.sort_by(rank);
    // Full scores, strengths, gaps and evidence plans (the costly part) only
    // for the recommendations returned.
    candidates.truncate(max_recommendations);
    let mut plans = SourcePlans::default();
    let recommendations = candidates
        .into_iter()
        .map(|c| {
            let score = many.score(c.index);
            Recommendation {
                role_id: c.role.id.clone(),
                role_name: c.role.name.clone(),
                track: c.role.track.clone(),
                rubric_version: c.rubric.version,
                steps: c.steps(),
                strengths: strengths(&score),
                gaps: gaps(c.rubric, &score),
                evidence_to_collect: evidence_to_collect(&score, policy, &mut plans),
                totals: c.totals,
                path: c.path,
            }
        })
        .collect();
    Recommendations {
        recommendations,
        track_fits: track_fits(catalog, current_role, &scored),
    }
}

/// Per track of the tenant, its best-supported role other than the current
/// one: the direction the evidence (not the prior) points to.
fn track_fits(
    catalog: &Catalog,
    current_role: &str,
    scored: &[(&Rubric, RoleTotals)],
) -> Vec<TrackFit> {
    catalog
        .tracks()
        .iter()
        .map(|track| {
            let best = scored
                .iter()
                .filter(|(rubric, totals)| {
                    rubric.role_id != current_role && totals.supported_readiness > 0.0
                })
                .filter(|(rubric, _)| {
                    catalog
                        .role(&rubric.role_id)
                        .is_some_and(|r| r.track == track.id)
                })
                .max_by(|a, b| {
                    a.1.supported_readiness
                        .total_cmp(&b.1.supported_readiness)
                        .then_with(|| b.0.role_id.cmp(&a.0.role_id))
                });
            TrackFit {
                track_id: track.id.clone(),
                track_name: track.name.clone(),
                fit: best.map_or(0.0, |(_, t)| t.supported_readiness),
                best_role_id: best.map(|(r, _)| r.role_id.clone()),
            }
        })
        .collect()
}

/// Whether a competency is scored on evidence rather than the prior alone
/// (n_c ≥ min_evidence): only those are strengths or gaps.
fn evidenced(c: &CompetencyScore) -> bool {
    c.status != CompetencyStatus::InsufficientEvidence
}

/// A strength (SPEC §5): evidenced, and p_c ≥ 0.8.
fn is_strength(c: &CompetencyScore) -> bool {
    evidenced(c) && c.p >= CONFIDENT
}

/// A gap (SPEC §5): evidenced, and p_c < 0.8. Never a strength too.
fn is_gap(c: &CompetencyScore) -> bool {
    evidenced(c) && !is_strength(c)
}

/// Up to [`TOP`] strengths, largest W_c·p_c first, ties by competency id.
fn strengths(score: &RoleScore) -> Vec<Strength> {
    let mut met: Vec<&CompetencyScore> = score
        .competencies
        .iter()
        .filter(|c| is_strength(c))
        .collect();
    met.sort_by(|a, b| {
        (b.weight * b.p)
            .total_cmp(&(a.weight * a.p))
            .then_with(|| a.competency_id.cmp(&b.competency_id))
    });
    met.into_iter()
        .take(TOP)
        .map(|c| Strength {
            competency_id: c.competency_id.clone(),
            expected_level: c.expected_level,
            estimated_level: c.m,
            probability: c.p,
        })
        .collect()
}

fn shortfall(c: &CompetencyScore) -> f64 {
    c.weight * (1.0 - c.p)
}

/// Up to [`TOP`] gaps, largest shortfall W_c·(1 − p_c) first, ties by
/// competency id.
fn gaps(rubric: &Rubric, score: &RoleScore) -> Vec<Gap> {
    let mut open: Vec<&CompetencyScore> = score.competencies.iter().filter(|c| is_gap(c)).collect();
    open.sort_by(|a, b| {
        shortfall(b)
            .total_cmp(&shortfall(a))
            .then_with(|| a.competency_id.cmp(&b.competency_id))
    });
    open.into_iter()
        .take(TOP)
        .map(|c| Gap {
            competency_id: c.competency_id.clone(),
            expected_level: c.expected_level,
            estimated_level: c.m,
            probability: c.p,
            shortfall: shortfall(c),
            development_actions: rubric
                .competency(&c.competency_id)
                .map(|rc| rc.development_actions.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// The evidence plans of one recommendation's competencies, by competency
/// and expected level: a competency's plan depends on nothing else (its
/// evidence is the same in every rubric), and the recommendations of one
/// call share many, each plan a few dozen posteriors.
#[derive(Default)]
struct SourcePlans(HashMap<(String, u8), Vec<SourcePlan>>);

impl SourcePlans {
    fn of(&mut self, c: &CompetencyScore, policy: &ScoringPolicy) -> Vec<SourcePlan> {
        self.0
            .entry((c.competency_id.clone(), c.expected_level))
            .or_insert_with(|| source_plans(c, policy))
            .clone()
    }
}

/// Competencies with too little evidence or a gap (every one, not only the
/// [`TOP`] listed as gaps), the largest shortfall first, each with the
/// sources that would settle it soonest.
fn evidence_to_collect(
    score: &RoleScore,
    policy: &ScoringPolicy,
    plans: &mut SourcePlans,
) -> Vec<EvidenceToCollect> {
    let mut wanted: Vec<(&CompetencyScore, CollectionReason)> = score
        .competencies
        .iter()
        .filter_map(|c| {
            if !evidenced(c) {
                Some((c, CollectionReason::InsufficientEvidence))
            } else {
                is_gap(c).then_some((c, CollectionReason::Gap))
            }
        })
        .collect();
    wanted.sort_by(|a, b| {
        shortfall(b.0)
            .total_cmp(&shortfall(a.0))
            .then_with(|| a.0.competency_id.cmp(&b.0.competency_id))
    });
    wanted
        .into_iter()
        .map(|(c, reason)| EvidenceToCollect {
            competency_id: c.competency_id.clone(),
            reason,
            probability: c.p,
            sources: plans.of(c, policy),
        })
        .collect()
}

/// Every source that can help: fewest observations to confidence first, then
/// to even odds, then the heaviest source (it also adds the most evidence).
fn source_plans(c: &CompetencyScore, policy: &ScoringPolicy) -> Vec<SourcePlan> {
    let mut plans: Vec<SourcePlan> = Source::ALL
        .into_iter()
        .map(|source| SourcePlan {
            source,
            for_enough_evidence: observations_for_min_evidence(c, source, policy),
            for_even_odds: observations_needed_for(c, source, policy, &EVEN_ODDS_TARGET),
            for_confidence: observations_needed_for(c, source, policy, &CONFIDENT_TARGET),
        })
        .filter(|p| p.for_even_odds.is_some() || p.for_confidence.is_some())
        .collect();
    // What settles the competency: enough evidence to score it and confidence
    // that it meets the bar, whichever needs more observations.
    let key = |p: &SourcePlan| {
        let most =
            |a: Option<u32>, b: Option<u32>| a.zip(b).map(|(a, b)| a.max(b)).unwrap_or(u32::MAX);
        (
            most(p.for_confidence, p.for_enough_evidence),
            most(p.for_even_odds, p.for_enough_evidence),
        )
    };
    plans.sort_by(|a, b| {
        key(a)
            .cmp(&key(b))
            .then(
                policy
                    .source_weights
                    .get(b.source)
                    .total_cmp(&policy.source_weights.get(a.source)),
            )
            .then(a.source.cmp(&b.source))
    });
    plans.truncate(PLANNED_SOURCES);
    plans
}
