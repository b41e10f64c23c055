//! Human decision records and the oversight report over them (SPEC §11).
//!
//! Ladder recommends; a person decides. A decision records what was decided
//! on an assessment, by whom and why, with any competency level the person
//! sees differently. Records are append-only: a later decision on the same
//! assessment supersedes an earlier one, which is kept unchanged.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::assessment::Assessment;
use crate::domain::evidence::opaque_id_violations;
use crate::domain::scoring::Band;
use crate::domain::validation::Violations;

/// Shortest rationale, in characters after trimming, for an outcome that
/// departs from the band.
pub const MIN_DEPARTING_RATIONALE: usize = 20;
/// Longest rationale, in characters.
pub const MAX_RATIONALE_LEN: usize = 4000;
/// Longest reason for an override, in characters.
pub const MAX_OVERRIDE_REASON_LEN: usize = 1000;
/// Most overrides in one decision (there is at most one per rubric competency
/// anyway; this bounds the work of refusing more).
pub const MAX_OVERRIDES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Promote (or move) the subject to the assessed role.
    Advance,
    /// Do not, for now.
    Hold,
    /// Decide later (more evidence, another committee).
    Defer,
}

/// How an outcome relates to the band of the assessment it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// ADVANCE on READY, or HOLD on any other band.
    Agrees,
    /// ADVANCE on a band other than READY, or HOLD on READY: needs a rationale.
    Departs,
    /// DEFER takes no side, whatever the band.
    Defers,
}

impl Outcome {
    pub fn agreement_with(self, band: Band) -> Agreement {
        match (self, band == Band::Ready) {
            (Outcome::Defer, _) => Agreement::Defers,
            (Outcome::Advance, true) | (Outcome::Hold, false) => Agreement::Agrees,
            (Outcome::Advance, false) | (Outcome::Hold, true) => Agreement::Departs,
        }
    }
}

/// A decision as the person recording it states it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionInput {
    pub outcome: Outcome,
    /// Opaque id of the person (or committee) who decided.
    pub decided_by: String,
    pub rationale: String,
    pub overrides: Vec<OverrideInput>,
}

/// A competency level the decider sees differently from the assessment.
#[derive(Debug, Clone, PartialEq)]
pub struct OverrideInput {
    pub competency_id: String,
    /// A level in 1..=5; wider here so that a bad one can be named, not lost
    /// in conversion.
    pub level: i32,
    pub reason: String,
}

/// A recorded decision: the input plus what it decided on, copied from the
/// assessment so that the record is read without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub id: Uuid,
    pub assessment_id: Uuid,
    pub subject_id: String,
    pub role_id: String,
    pub decided_at: DateTime<Utc>,
    pub outcome: Outcome,
    /// The assessment's band, which the outcome agrees with or departs from.
    pub band: Band,
    pub decided_by: String,
    pub rationale: String,
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub competency_id: String,
    pub level: u8,
    /// m_c of the assessment for this competency.
    pub assessed_estimate: f64,
    pub reason: String,
}

/// Validates `input` against the assessment it decides and builds the record.
/// Violations name `decided_by`, `rationale`, `overrides` and
/// `overrides[i].competency_id|level|reason`.
pub fn record_decision(
    id: Uuid,
    decided_at: DateTime<Utc>,
    input: DecisionInput,
    assessment: &Assessment,
) -> Result<Decision, Violations> {
    let band = assessment.score.band;
    let mut violations = opaque_id_violations("decided_by", &input.decided_by, true);
    let rationale_len = input.rationale.trim().chars().count();
    if input.outcome.agreement_with(band) == Agreement::Departs
        && rationale_len < MIN_DEPARTING_RATIONALE
    {
        violations.add(
            "rationale",
            format!(
                "must hold at least {MIN_DEPARTING_RATIONALE} characters when the outcome \
                 departs from the band"
            ),
        );
    }
    text_violations(&mut violations, "rationale", &input.rationale, MAX_RATIONALE_LEN);

    let estimates: HashMap<&str, f64> = assessment
        .score
        .competencies
        .iter()
        .map(|c| (c.competency_id.as_str(), c.m))
        .collect();
    let mut overrides = Vec::with_capacity(input.overrides.len());
    if input.overrides.len() > MAX_OVERRIDES {
        violations.add(
            "overrides",
            format!("must hold at most {MAX_OVERRIDES} overrides"),
        );
    } else {
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        for (i, requested) in input.overrides.iter().enumerate() {
            let field = |name: &str| format!("overrides[{i}].{name}");
            let estimate = estimates.get(requested.competency_id.as_str()).copied();
            if estimate.is_none() {
                violations.add(
                    field("competency_id"),
                    "must be a competency of the assessed rubric",
                );
            } else if let Some(first) = first_of.insert(&requested.competency_id, i) {
                violations.add(
                    field("competency_id"),
                    format!("overrides the competency of overrides[{first}] again"),
                );
            }
            let level = u8::try_from(requested.level)
                .ok()
                .filter(|level| (1..=5).contains(level));
            if level.is_none() {
                violations.add(field("level"), "must be a level in 1..=5");
            }
            if requested.reason.trim().is_empty() {
                violations.add(field("reason"), "is required");
            }
            text_violations(
                &mut violations,
                &field("reason"),
                &requested.reason,
                MAX_OVERRIDE_REASON_LEN,
            );
            if let (Some(assessed_estimate), Some(level)) = (estimate, level) {
                overrides.push(Override {
                    competency_id: requested.competency_id.clone(),
                    level,
                    assessed_estimate,
                    reason: requested.reason.clone(),
                });
            }
        }
    }
    violations.into_result(())?;
    Ok(Decision {
        id,
        assessment_id: assessment.id,
        subject_id: assessment.subject_id.clone(),
        role_id: assessment.role_id.clone(),
        decided_at,
        outcome: input.outcome,
        band,
        decided_by: input.decided_by,
        rationale: input.rationale,
        overrides,
    })
}

fn text_violations(violations: &mut Violations, field: &str, text: &str, max_len: usize) {
    if text.chars().count() > max_len {
        violations.add(field, format!("must be at most {max_len} characters"));
    }
    // PostgreSQL text cannot hold a NUL byte.
    if text.contains('\0') {
        violations.add(field, "must not contain NUL characters");
    }
}

/// A half-open time range [start, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// A violation names `end`, for the caller to prefix (`period.end`).
    pub fn validate(&self) -> Result<(), Violations> {
        if self.start < self.end {
            Ok(())
        } else {
            Err(Violations::one("end", "must be later than start"))
        }
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// How often people followed the band for one role over one period.
///
/// Counted are the decisions in force: of the records on one assessment
/// decided within the period, the latest (equal times: the larger id) counts
/// and the earlier ones are `superseded`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OversightReport {
    pub decisions: u64,
    pub superseded: u64,
    pub advance: u64,
    pub hold: u64,
    pub defer: u64,
    /// Decisions that agree with the band (see [`Agreement`]).
    pub agreed: u64,
    /// Decisions that depart from it.
    pub departed: u64,
    /// agreed / (agreed + departed): deferrals count for neither; `None`
    /// without any ADVANCE or HOLD.
    pub agreement_rate: Option<f64>,
    /// Overrides to a level above the assessed one, the level whose bin
    /// [L − 0.5, L + 0.5) holds m_c (clamped to 1..=5).
    pub overrides_above: u64,
    pub overrides_below: u64,
    /// Overrides that name the level assessed anyway.
    pub overrides_same: u64,
}

/// The report for `role_id` over `period` from `records`, which may hold
/// records of other roles and times (they are left out).
pub fn oversight_report(role_id: &str, period: Period, records: &[Decision]) -> OversightReport {
    let mut latest: HashMap<Uuid, &Decision> = HashMap::new();
    let mut in_period = 0;
    for record in records
        .iter()
        .filter(|r| r.role_id == role_id && period.contains(r.decided_at))
    {
        in_period += 1;
        let current = latest.entry(record.assessment_id).or_insert(record);
        if (record.decided_at, record.id) > (current.decided_at, current.id) {
            *current = record;
        }
    }
    let mut report = OversightReport {
        superseded: in_period - latest.len() as u64,
        ..OversightReport::default()
    };
    for decision in latest.values() {
        report.decisions += 1;
        match decision.outcome {
            Outcome::Advance => report.advance += 1,
            Outcome::Hold => report.hold += 1,
            Outcome::Defer => report.defer += 1,
        }
        match decision.outcome.agreement_with(decision.band) {
            Agreement::Agrees => report.agreed += 1,
            Agreement::Departs => report.departed += 1,
            Agreement::Defers => {}
        }
        for override_ in &decision.overrides {
            let assessed = assessed_level(override_.assessed_estimate);
            match override_.level.cmp(&assessed) {
                std::cmp::Ordering::Greater => report.overrides_above += 1,
                std::cmp::Ordering::Less => report.overrides_below += 1,
                std::cmp::Ordering::Equal => report.overrides_same += 1,
            }
        }
    }
    let sided = report.agreed + report.departed;
    report.agreement_rate = (sided > 0).then(|| report.agreed as f64 / sided as f64);
    report
}

/// The level whose bin [L − 0.5, L + 0.5) holds `estimate`, within 1..=5.
fn assessed_level(estimate: f64) -> u8 {
    (estimate + 0.5).floor().clamp(1.0, 5.0) as u8
}
