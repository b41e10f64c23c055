//! Explanations, decisions, oversight and impact reports (SPEC §11).

use crate::domain::oversight::{
    DecidingReason, Decision, DecisionInput, GroupLabel, ImpactReport, Outcome, OverrideInput,
    OversightReport, Period,
};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::transport::convert::assessment::{band_to_proto, source_to_proto, status_to_proto};
use crate::transport::convert::{time, uuid_text};
use crate::usecases::oversight::{ComputedImpact, ExplainedAssessment};

pub fn outcome_to_proto(outcome: Outcome) -> pb::DecisionOutcome {
    match outcome {
        Outcome::Advance => pb::DecisionOutcome::Advance,
        Outcome::Hold => pb::DecisionOutcome::Hold,
        Outcome::Defer => pb::DecisionOutcome::Defer,
    }
}

pub fn outcome_from_proto(value: i32) -> Option<Outcome> {
    Outcome::ALL
        .into_iter()
        .find(|o| outcome_to_proto(*o) as i32 == value)
}

fn reason_to_proto(reason: DecidingReason) -> pb::DecidingReason {
    match reason {
        DecidingReason::CriticalBelowBar => pb::DecidingReason::CriticalBelowBar,
        DecidingReason::LargestShortfall => pb::DecidingReason::LargestShortfall,
    }
}

pub fn explanation_to_proto(explained: &ExplainedAssessment, stored: bool) -> pb::Explanation {
    let a = &explained.assessment;
    let e = &explained.explanation;
    pb::Explanation {
        assessment_id: if stored {
            uuid_text(a.id)
        } else {
            String::new()
        },
        subject_id: a.subject_id.clone(),
        role_id: a.role_id.clone(),
        role_name: explained.role_name.clone(),
        rubric_version: a.rubric_version,
        as_of: Some(time::to_proto(a.as_of)),
        band: band_to_proto(e.band) as i32,
        readiness: e.readiness,
        coverage: e.coverage,
        competencies: e
            .competencies
            .iter()
            .map(|c| pb::CompetencyExplanation {
                competency_id: c.competency_id.clone(),
                competency_name: explained
                    .competency_names
                    .get(&c.competency_id)
                    .cloned()
                    .unwrap_or_else(|| c.competency_id.clone()),
                critical: c.critical,
                status: status_to_proto(c.status) as i32,
                estimated_level: c.estimate,
                bar: c.bar,
                probability: c.p,
                interval_lower: c.interval.lower,
                interval_upper: c.interval.upper,
                prior_share: c.prior_share,
                evidence_count: c.evidence_count as i32,
                top_influences: c
                    .top_influences
                    .iter()
                    .map(|i| pb::EvidenceInfluence {
                        evidence_id: uuid_text(i.evidence_id),
                        source: source_to_proto(i.source) as i32,
                        observed_at: Some(time::to_proto(i.observed_at)),
                        level: i.level,
                        weight: i.weight,
                        delta: i.delta,
                    })
                    .collect(),
            })
            .collect(),
        deciding_competencies: e
            .deciding
            .iter()
            .map(|d| pb::DecidingCompetency {
                competency_id: d.competency_id.clone(),
                reason: reason_to_proto(d.reason) as i32,
                shortfall: d.shortfall,
            })
            .collect(),
        summary: explained.summary.clone(),
    }
}

/// The decision a `RecordDecision` request states; the rest of its
/// validation needs the assessment (`domain::oversight::record_decision`).
pub fn decision_input(req: &pb::RecordDecisionRequest) -> Result<DecisionInput, Violations> {
    let outcome = outcome_from_proto(req.outcome)
        .ok_or_else(|| Violations::one("outcome", "must be ADVANCE, HOLD or DEFER"))?;
    Ok(DecisionInput {
        outcome,
        decided_by: req.decided_by.clone(),
        rationale: req.rationale.clone(),
        overrides: req
            .overrides
            .iter()
            .map(|o| OverrideInput {
                competency_id: o.competency_id.clone(),
                level: o.level,
                reason: o.reason.clone(),
            })
            .collect(),
    })
}

pub fn decision_to_proto(d: &Decision) -> pb::Decision {
    pb::Decision {
        id: uuid_text(d.id),
        assessment_id: uuid_text(d.assessment_id),
        subject_id: d.subject_id.clone(),
        role_id: d.role_id.clone(),
        outcome: outcome_to_proto(d.outcome) as i32,
        band: band_to_proto(d.band) as i32,
        decided_by: d.decided_by.clone(),
        rationale: d.rationale.clone(),
        overrides: d
            .overrides
            .iter()
            .map(|o| pb::CompetencyOverride {
                competency_id: o.competency_id.clone(),
                level: i32::from(o.level),
                reason: o.reason.clone(),
                assessed_estimate: o.assessed_estimate,
            })
            .collect(),
        decide_time: Some(time::to_proto(d.decided_at)),
    }
}

/// A required period, its violations named `period.start` and `period.end`.
pub fn period(value: Option<&pb::TimePeriod>) -> Result<Period, Violations> {
    let Some(value) = value else {
        return Err(Violations::one("period", "is required"));
    };
    let mut v = Violations::new();
    let mut bound = |t: Option<&prost_types::Timestamp>, field: &str| match t {
        Some(t) => time::from_proto(t, field).map_err(|e| v.0.extend(e.0)).ok(),
        None => {
            v.add(field, "is required");
            None
        }
    };
    let start = bound(value.start.as_ref(), "period.start");
    let end = bound(value.end.as_ref(), "period.end");
    let (Some(start), Some(end)) = (start, end) else {
        return Err(v);
    };
    let period = Period { start, end };
    if let Err(e) = period.validate() {
        v.extend_prefixed("period", e);
    }
    v.into_result(period)
}

fn period_to_proto(period: Period) -> pb::TimePeriod {
    pb::TimePeriod {
        start: Some(time::to_proto(period.start)),
        end: Some(time::to_proto(period.end)),
    }
}

pub fn oversight_report_to_proto(
    role_id: &str,
    period: Period,
    r: &OversightReport,
) -> pb::OversightReport {
    let count = |n: u64| n as i64;
    pb::OversightReport {
        role_id: role_id.to_string(),
        period: Some(period_to_proto(period)),
        decisions: count(r.decisions),
        superseded: count(r.superseded),
        advance: count(r.advance),
        hold: count(r.hold),
        defer: count(r.defer),
        agreed: count(r.agreed),
        departed: count(r.departed),
        agreement_rate: r.agreement_rate,
        overrides_above: count(r.overrides_above),
        overrides_below: count(r.overrides_below),
        overrides_same: count(r.overrides_same),
    }
}

pub fn labels_from_proto(labels: Vec<pb::GroupLabel>) -> Vec<GroupLabel> {
    labels
        .into_iter()
        .map(|l| GroupLabel {
            subject_id: l.subject_id,
            group: l.group,
        })
        .collect()
}

fn groups_to_proto(report: &ImpactReport) -> Vec<pb::GroupImpact> {
    report
        .groups
        .iter()
        .map(|g| pb::GroupImpact {
            group: g.group.clone(),
            n: g.n as i64,
            figures: g.figures.as_ref().map(|f| pb::GroupFigures {
                ready: f.ready as i64,
                rate: f.rate,
                mean_readiness: f.mean_readiness,
                impact_ratio: f.impact_ratio,
                below_four_fifths: f.below_four_fifths,
                fisher_p: f.fisher_p,
            }),
        })
        .collect()
}

pub fn impact_report_to_proto(
    role_id: &str,
    as_of: chrono::DateTime<chrono::Utc>,
    computed: &ComputedImpact,
) -> pb::ImpactReport {
    pb::ImpactReport {
        role_id: role_id.to_string(),
        rubric_version: computed.rubric_version,
        as_of: Some(time::to_proto(as_of)),
        reference_group: computed.report.reference_group.clone().unwrap_or_default(),
        groups: groups_to_proto(&computed.report),
        label_count: computed.audit.label_count as i32,
        group_count: computed.audit.group_count as i32,
        labels_sha256: computed.audit.labels_sha256.clone(),
        calibration_id: computed
            .calibration_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}
