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
    pub const ALL: [Outcome; 3] = [Outcome::Advance, Outcome::Hold, Outcome::Defer];

    /// The stable lower-case name used in storage and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Advance => "advance",
            Outcome::Hold => "hold",
            Outcome::Defer => "defer",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == s)
    }

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
    text_violations(
        &mut violations,
        "rationale",
        &input.rationale,
        MAX_RATIONALE_LEN,
    );

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

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::scoring::{Expectation, ScoringPolicy, score_unchecked};

    fn at(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + Duration::days(day)
    }

    /// An assessment with the given band, whose two competencies are
    /// estimated at the prior mean 3.0 (no evidence).
    fn assessment(band: Band) -> Assessment {
        let rubric: Vec<Expectation> = ["system_design", "mentoring"]
            .iter()
            .map(|id| Expectation {
                competency_id: id.to_string(),
                expected_level: 3,
                weight: 1.0,
                critical: false,
            })
            .collect();
        let policy = ScoringPolicy::default();
        let mut score = score_unchecked(&[], &rubric, &policy, at(0));
        score.band = band;
        Assessment {
            id: Uuid::from_u128(7),
            subject_id: "emp-1".into(),
            role_id: "staff".into(),
            rubric_version: 1,
            as_of: at(0),
            policy,
            score,
            create_time: at(0),
            calibration_id: None,
        }
    }

    fn input(outcome: Outcome, rationale: &str) -> DecisionInput {
        DecisionInput {
            outcome,
            decided_by: "mgr-9".into(),
            rationale: rationale.into(),
            overrides: Vec::new(),
        }
    }

    fn fields(result: Result<Decision, Violations>) -> Vec<String> {
        result.unwrap_err().fields()
    }

    fn record(input: DecisionInput, band: Band) -> Result<Decision, Violations> {
        record_decision(Uuid::from_u128(1), at(1), input, &assessment(band))
    }

    const TWENTY: &str = "twenty characters ok";

    #[test]
    fn departing_outcomes_need_a_rationale() {
        for (outcome, band) in [
            (Outcome::Advance, Band::Developing),
            (Outcome::Advance, Band::NotYet),
            (Outcome::Advance, Band::InsufficientEvidence),
            (Outcome::Hold, Band::Ready),
        ] {
            assert_eq!(fields(record(input(outcome, ""), band)), ["rationale"]);
            // Whitespace does not count towards the 20 characters.
            let padded = format!("  {}  ", &TWENTY[..19]);
            assert_eq!(fields(record(input(outcome, &padded), band)), ["rationale"]);
            assert!(record(input(outcome, TWENTY), band).is_ok());
        }
    }

    #[test]
    fn agreeing_and_deferring_outcomes_need_none() {
        for (outcome, band) in [
            (Outcome::Advance, Band::Ready),
            (Outcome::Hold, Band::Developing),
            (Outcome::Hold, Band::InsufficientEvidence),
            (Outcome::Defer, Band::Ready),
            (Outcome::Defer, Band::NotYet),
        ] {
            let decision = record(input(outcome, ""), band).unwrap();
            assert_eq!((decision.band, decision.outcome), (band, outcome));
            assert_eq!(decision.assessment_id, Uuid::from_u128(7));
            assert_eq!(
                (decision.subject_id.as_str(), decision.role_id.as_str()),
                ("emp-1", "staff")
            );
        }
    }

    #[test]
    fn bounds_decided_by_and_the_rationale() {
        let mut bad = input(Outcome::Hold, &"x".repeat(MAX_RATIONALE_LEN + 1));
        bad.decided_by = "someone@example.com".into();
        assert_eq!(
            fields(record(bad, Band::NotYet)),
            ["decided_by", "rationale"]
        );
        let mut missing = input(Outcome::Hold, "nul \0 inside");
        missing.decided_by.clear();
        assert_eq!(
            fields(record(missing, Band::NotYet)),
            ["decided_by", "rationale"]
        );
        assert!(
            record(
                input(Outcome::Hold, &"x".repeat(MAX_RATIONALE_LEN)),
                Band::NotYet
            )
            .is_ok()
        );
    }

    #[test]
    fn overrides_name_rubric_competencies_once_with_a_level_and_a_reason() {
        let override_ = |competency_id: &str, level: i32, reason: &str| OverrideInput {
            competency_id: competency_id.into(),
            level,
            reason: reason.into(),
        };
        let mut decision = input(Outcome::Defer, "");
        decision.overrides = vec![
            override_("system_design", 4, "led the storage redesign"),
            override_("unknown", 3, "reason"),
            override_("system_design", 2, "again"),
            override_("mentoring", 0, " "),
            override_("mentoring", 6, &"r".repeat(MAX_OVERRIDE_REASON_LEN + 1)),
        ];
        assert_eq!(
            fields(record(decision, Band::Developing)),
            [
                "overrides[1].competency_id",
                "overrides[2].competency_id",
                "overrides[3].level",
                "overrides[3].reason",
                "overrides[4].competency_id",
                "overrides[4].level",
                "overrides[4].reason",
            ]
        );

        let mut good = input(Outcome::Defer, "");
        good.overrides = vec![override_("mentoring", 5, "runs the mentoring circle")];
        let recorded = record(good, Band::Developing).unwrap();
        assert_eq!(
            recorded.overrides,
            [Override {
                competency_id: "mentoring".into(),
                level: 5,
                assessed_estimate: 3.0,
                reason: "runs the mentoring circle".into(),
            }]
        );

        let mut too_many = input(Outcome::Defer, "");
        too_many.overrides = vec![override_("mentoring", 3, "r"); MAX_OVERRIDES + 1];
        assert_eq!(fields(record(too_many, Band::Developing)), ["overrides"]);
    }

    #[test]
    fn period_is_half_open_and_must_not_be_empty() {
        let period = Period {
            start: at(0),
            end: at(10),
        };
        assert!(period.contains(at(0)) && !period.contains(at(10)));
        assert_eq!(period.validate(), Ok(()));
        let empty = Period {
            start: at(3),
            end: at(3),
        };
        assert_eq!(empty.validate().unwrap_err().0[0].field, "end");
    }

    fn decision(
        id: u128,
        assessment: u128,
        role: &str,
        day: i64,
        outcome: Outcome,
        band: Band,
        overrides: &[(u8, f64)],
    ) -> Decision {
        Decision {
            id: Uuid::from_u128(id),
            assessment_id: Uuid::from_u128(assessment),
            subject_id: format!("emp-{assessment}"),
            role_id: role.into(),
            decided_at: at(day),
            outcome,
            band,
            decided_by: "mgr-1".into(),
            rationale: TWENTY.into(),
            overrides: overrides
                .iter()
                .map(|&(level, assessed_estimate)| Override {
                    competency_id: "system_design".into(),
                    level,
                    assessed_estimate,
                    reason: "seen in the design review".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn oversight_report_counts_decisions_in_force() {
        use Band::*;
        use Outcome::*;
        let records = [
            // Agrees; its override names the level assessed (3.4 is level 3)
            // and one above it.
            decision(1, 101, "staff", 1, Advance, Ready, &[(3, 3.4), (4, 3.4)]),
            // Departs, then superseded by an agreeing HOLD on the same assessment.
            decision(2, 102, "staff", 2, Advance, Developing, &[(5, 3.2)]),
            decision(3, 102, "staff", 5, Hold, Developing, &[]),
            // Departs: HOLD on READY, overriding below (2 < level 4 of 3.5).
            decision(4, 103, "staff", 3, Hold, Ready, &[(2, 3.5)]),
            // Deferrals take no side.
            decision(5, 104, "staff", 4, Defer, NotYet, &[]),
            // HOLD agrees with INSUFFICIENT_EVIDENCE.
            decision(6, 105, "staff", 6, Hold, InsufficientEvidence, &[(1, 1.2)]),
            // Same time as record 7 on the same assessment: the larger id wins.
            decision(8, 106, "staff", 7, Advance, NotYet, &[]),
            decision(7, 106, "staff", 7, Hold, NotYet, &[]),
            // Outside the period or of another role: left out.
            decision(9, 107, "staff", 10, Advance, Ready, &[]),
            decision(10, 108, "staff", -1, Advance, Ready, &[]),
            decision(11, 109, "principal", 3, Advance, Ready, &[]),
        ];
        let report = oversight_report(
            "staff",
            Period {
                start: at(0),
                end: at(10),
            },
            &records,
        );
        assert_eq!(
            report,
            OversightReport {
                decisions: 6,
                superseded: 2,
                advance: 2,
                hold: 3,
                defer: 1,
                agreed: 3,
                departed: 2,
                agreement_rate: Some(0.6),
                overrides_above: 1,
                overrides_below: 1,
                overrides_same: 2,
            }
        );
    }

    #[test]
    fn oversight_report_without_decisions_has_no_rate() {
        let report = oversight_report(
            "staff",
            Period {
                start: at(0),
                end: at(1),
            },
            &[],
        );
        assert_eq!(report, OversightReport::default());
        let deferred = [decision(1, 1, "staff", 0, Outcome::Defer, Band::Ready, &[])];
        let report = oversight_report(
            "staff",
            Period {
                start: at(0),
                end: at(1),
            },
            &deferred,
        );
        assert_eq!((report.decisions, report.agreement_rate), (1, None));
    }

    #[test]
    fn assessed_level_is_the_bin_of_the_estimate() {
        assert_eq!(
            [0.2, 1.49, 1.5, 2.999, 3.5, 4.49, 5.3].map(assessed_level),
            [1, 1, 2, 3, 4, 4, 5]
        );
    }
}
