//! The oversight commands (SPEC §11): `ladder explain`, `ladder decide`,
//! `ladder oversight` and `ladder impact`, printing readable tables (or the
//! proto3 JSON mapping with `--json`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::app::client::{ServerArgs, call_failed, report};
use crate::app::error::AppError;
use crate::domain::evidence::Source;
use crate::domain::oversight::Outcome;
use crate::proto::v1 as pb;
use crate::proto::v1::explain_assessment_request::Target;
use crate::proto::v1::oversight_service_client::OversightServiceClient;
use crate::transport::convert::assessment::source_from_proto;
use crate::transport::convert::oversight::outcome_to_proto;
use crate::transport::convert::time;

#[derive(Debug, Subcommand)]
pub enum OversightCommand {
    /// Explain an assessment: per competency the 80 % interval, the prior's
    /// share and the most influential evidence; what decides the band; a summary.
    Explain(ExplainArgs),
    /// Record a decision on a stored assessment (append-only).
    Decide(DecideArgs),
    /// How often decisions on a role followed the band over a period.
    Oversight(OversightArgs),
    /// The adverse-impact report of a role over labelled subjects; the labels
    /// are used for this call only, never stored or logged.
    Impact(ImpactArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A stored assessment's id.
    #[arg(long, required_unless_present = "subject", conflicts_with = "subject")]
    assessment: Option<String>,
    /// Explain a dry run for this subject instead (with --role).
    #[arg(long, requires = "role")]
    subject: Option<String>,
    /// The role of the dry run (its latest published rubric).
    #[arg(long, requires = "subject")]
    role: Option<String>,
    /// The dry run's time (RFC 3339) [default: now].
    #[arg(long, requires = "subject")]
    as_of: Option<DateTime<Utc>>,
    /// Print JSON (the proto3 JSON mapping) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The stored assessment decided on.
    #[arg(long)]
    assessment: String,
    /// advance, hold or defer.
    #[arg(long, value_parser = outcome)]
    outcome: Outcome,
    /// Opaque id of who decided (a person or a committee).
    #[arg(long = "by")]
    decided_by: String,
    /// Why; at least 20 characters when the outcome departs from the band.
    #[arg(long, default_value = "")]
    rationale: String,
    /// A competency level seen differently, COMPETENCY:LEVEL:REASON; repeat
    /// for more.
    #[arg(long = "override", value_name = "COMPETENCY:LEVEL:REASON")]
    overrides: Vec<String>,
    /// Makes a retry return the first record instead of appending another.
    #[arg(long)]
    request_id: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct OversightArgs {
    #[arg(long)]
    role: String,
    /// Start of the period (RFC 3339), inclusive.
    #[arg(long)]
    from: DateTime<Utc>,
    /// End of the period (RFC 3339), exclusive.
    #[arg(long)]
    to: DateTime<Utc>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ImpactArgs {
    #[arg(long)]
    role: String,
    /// CSV with the header `subject_id,group`, one subject per row.
    #[arg(long)]
    labels: PathBuf,
    /// Assess as of this time (RFC 3339) [default: now].
    #[arg(long)]
    as_of: Option<DateTime<Utc>>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

fn outcome(value: &str) -> Result<Outcome, String> {
    Outcome::parse(value).ok_or_else(|| "expected advance, hold or defer".to_string())
}

/// `COMPETENCY:LEVEL:REASON` as an override; the reason may hold colons.
fn override_spec(spec: &str) -> Result<pb::CompetencyOverride, AppError> {
    let mut parts = spec.splitn(3, ':');
    match (parts.next(), parts.next().map(str::parse), parts.next()) {
        (Some(competency), Some(Ok(level)), Some(reason)) => Ok(pb::CompetencyOverride {
            competency_id: competency.to_string(),
            level,
            reason: reason.to_string(),
            assessed_estimate: 0.0,
        }),
        _ => Err(AppError::Config(format!(
            "--override {spec:?}: expected COMPETENCY:LEVEL:REASON, e.g. \
             system_design:4:led the storage redesign"
        ))),
    }
}

/// The labels of a `subject_id,group` CSV file. A bad row is named by its
/// line, never by its values.
fn read_labels(path: &Path) -> Result<Vec<pb::GroupLabel>, AppError> {
    let failed = |e: csv::Error| AppError::Config(format!("{}: {e}", path.display()));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(failed)?;
    let headers = reader.headers().map_err(failed)?.clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            AppError::Config(format!(
                "{}: the header must name the columns subject_id and group",
                path.display()
            ))
        })
    };
    let (subject, group) = (column("subject_id")?, column("group")?);
    let mut labels = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(failed)?;
        let (Some(subject_id), Some(group)) = (record.get(subject), record.get(group)) else {
            return Err(AppError::Config(format!(
                "{} line {}: a column is missing",
                path.display(),
                row + 2
            )));
        };
        labels.push(pb::GroupLabel {
            subject_id: subject_id.to_string(),
            group: group.to_string(),
        });
    }
    Ok(labels)
}

pub async fn run(command: OversightCommand) -> Result<(), AppError> {
    let (server, json) = match &command {
        OversightCommand::Explain(a) => (&a.server, a.json),
        OversightCommand::Decide(a) => (&a.server, a.json),
        OversightCommand::Oversight(a) => (&a.server, a.json),
        OversightCommand::Impact(a) => (&a.server, a.json),
    };
    let mut client = OversightServiceClient::new(server.channel().await?);
    let printed = match command {
        OversightCommand::Explain(args) => {
            let target = match (args.assessment, args.subject) {
                (Some(id), _) => Target::AssessmentId(id),
                (None, subject) => Target::DryRun(pb::DryRunAssessment {
                    subject_id: subject.unwrap_or_default(),
                    role_id: args.role.unwrap_or_default(),
                    rubric_version: 0,
                    as_of: args.as_of.map(time::to_proto),
                }),
            };
            let explanation = client
                .explain_assessment(pb::ExplainAssessmentRequest {
                    target: Some(target),
                })
                .await
                .map_err(call_failed)?
                .into_inner()
                .explanation
                .unwrap_or_default();
            output(json, &explanation, "ladder.v1.Explanation", explain_text)?
        }
        OversightCommand::Decide(args) => {
            let overrides = args
                .overrides
                .iter()
                .map(|spec| override_spec(spec))
                .collect::<Result<Vec<_>, _>>()?;
            let decision = client
                .record_decision(pb::RecordDecisionRequest {
                    assessment_id: args.assessment,
                    outcome: outcome_to_proto(args.outcome) as i32,
                    decided_by: args.decided_by,
                    rationale: args.rationale,
                    overrides,
                    request_id: args.request_id.unwrap_or_default(),
                })
                .await
                .map_err(call_failed)?
                .into_inner()
                .decision
                .unwrap_or_default();
            output(json, &decision, "ladder.v1.Decision", decision_text)?
        }
        OversightCommand::Oversight(args) => {
            let report = client
                .get_oversight_report(pb::GetOversightReportRequest {
                    role_id: args.role,
                    period: Some(pb::TimePeriod {
                        start: Some(time::to_proto(args.from)),
                        end: Some(time::to_proto(args.to)),
                    }),
                })
                .await
                .map_err(call_failed)?
                .into_inner()
                .report
                .unwrap_or_default();
            output(json, &report, "ladder.v1.OversightReport", oversight_text)?
        }
        OversightCommand::Impact(args) => {
            let labels = read_labels(&args.labels)?;
            let report = client
                .compute_impact_report(pb::ComputeImpactReportRequest {
                    role_id: args.role,
                    as_of: args.as_of.map(time::to_proto),
                    labels,
                })
                .await
                .map_err(call_failed)?
                .into_inner()
                .report
                .unwrap_or_default();
            output(json, &report, "ladder.v1.ImpactReport", impact_text)?
        }
    };
    print!("{printed}");
    Ok(())
}

fn output<M: prost::Message>(
    json: bool,
    message: &M,
    full_name: &str,
    text: impl FnOnce(&M) -> String,
) -> Result<String, AppError> {
    if json {
        Ok(report::to_json(message, full_name)? + "\n")
    } else {
        Ok(text(message))
    }
}

fn band(value: i32) -> &'static str {
    match pb::ReadinessBand::try_from(value) {
        Ok(pb::ReadinessBand::Ready) => "READY",
        Ok(pb::ReadinessBand::Developing) => "DEVELOPING",
        Ok(pb::ReadinessBand::NotYet) => "NOT_YET",
        Ok(pb::ReadinessBand::InsufficientEvidence) => "INSUFFICIENT_EVIDENCE",
        _ => "?",
    }
}

fn date(t: Option<prost_types::Timestamp>) -> String {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, 0))
        .map_or_else(|| "?".into(), |t| t.format("%Y-%m-%d").to_string())
}

fn explain_text(e: &pb::Explanation) -> String {
    let what = if e.assessment_id.is_empty() {
        "dry run, not stored".to_string()
    } else {
        format!("assessment {}", e.assessment_id)
    };
    let mut out = format!(
        "{} for {} ({}, rubric v{}) as of {} ({what})\nband {}  readiness {:.3}  coverage {:.3}\n\n\
         {:<34} {:>8} {:>15} {:>5} {:>6} {:>6} {:>8}\n",
        e.subject_id,
        e.role_name,
        e.role_id,
        e.rubric_version,
        date(e.as_of),
        band(e.band),
        e.readiness,
        e.coverage,
        "competency",
        "estimate",
        "80% interval",
        "bar",
        "p",
        "prior",
        "evidence",
    );
    for c in &e.competencies {
        let name = if c.critical {
            format!("{} (critical)", c.competency_name)
        } else {
            c.competency_name.clone()
        };
        out.push_str(&format!(
            "{:<34} {:>8.2} {:>15} {:>5.1} {:>6.3} {:>5.0}% {:>8}\n",
            name,
            c.estimated_level,
            format!("[{:.2}, {:.2}]", c.interval_lower, c.interval_upper),
            c.bar,
            c.probability,
            c.prior_share * 100.0,
            c.evidence_count,
        ));
        for i in &c.top_influences {
            out.push_str(&format!(
                "    {:+.3}  {} {} level {:.1} weight {:.2}  ({})\n",
                i.delta,
                source_from_proto(i.source).map_or("?", Source::as_str),
                date(i.observed_at),
                i.level,
                i.weight,
                i.evidence_id,
            ));
        }
    }
    if !e.deciding_competencies.is_empty() {
        let deciding: Vec<String> = e
            .deciding_competencies
            .iter()
            .map(|d| match pb::DecidingReason::try_from(d.reason) {
                Ok(pb::DecidingReason::CriticalBelowBar) => {
                    format!("{} (critical, below the bar)", d.competency_id)
                }
                _ => format!("{} (shortfall {:.2})", d.competency_id, d.shortfall),
            })
            .collect();
        out.push_str(&format!("\ndeciding: {}\n", deciding.join(", ")));
    }
    out.push_str(&format!("\n{}\n", e.summary));
    out
}

fn outcome_name(value: i32) -> &'static str {
    match pb::DecisionOutcome::try_from(value) {
        Ok(pb::DecisionOutcome::Advance) => "ADVANCE",
        Ok(pb::DecisionOutcome::Hold) => "HOLD",
        Ok(pb::DecisionOutcome::Defer) => "DEFER",
        _ => "?",
    }
}

fn decision_text(d: &pb::Decision) -> String {
    let mut out = format!(
        "decision {} recorded: {} on assessment {} ({} for {}, band {}) by {}\n",
        d.id,
        outcome_name(d.outcome),
        d.assessment_id,
        d.subject_id,
        d.role_id,
        band(d.band),
        d.decided_by,
    );
    if !d.rationale.is_empty() {
        out.push_str(&format!("rationale: {}\n", d.rationale));
    }
    for o in &d.overrides {
        out.push_str(&format!(
            "override: {} at level {} (estimate {:.2}): {}\n",
            o.competency_id, o.level, o.assessed_estimate, o.reason
        ));
    }
    out
}

fn oversight_text(r: &pb::OversightReport) -> String {
    let period = r.period.unwrap_or_default();
    let rate = r
        .agreement_rate
        .map_or_else(|| "-".into(), |rate| format!("{:.0}%", rate * 100.0));
    format!(
        "decisions on {} from {} to {}\n\n\
         decisions in force  {:>5}   (superseded {})\n\
         advance             {:>5}\n\
         hold                {:>5}\n\
         defer               {:>5}\n\
         agreed with band    {:>5}\n\
         departed from band  {:>5}\n\
         agreement rate      {:>5}\n\
         overrides above     {:>5}\n\
         overrides below     {:>5}\n\
         overrides same      {:>5}\n",
        r.role_id,
        date(period.start),
        date(period.end),
        r.decisions,
        r.superseded,
        r.advance,
        r.hold,
        r.defer,
        r.agreed,
        r.departed,
        rate,
        r.overrides_above,
        r.overrides_below,
        r.overrides_same,
    )
}

fn impact_text(r: &pb::ImpactReport) -> String {
    let reference = if r.reference_group.is_empty() {
        "none (no group has 5 members)"
    } else {
        &r.reference_group
    };
    let mut out = format!(
        "adverse impact for {} (rubric v{}) as of {}; reference group: {reference}\n\n\
         {:<24} {:>6} {:>6} {:>6} {:>10} {:>7} {:>6} {:>9}\n",
        r.role_id,
        r.rubric_version,
        date(r.as_of),
        "group",
        "n",
        "ready",
        "rate",
        "readiness",
        "ratio",
        "4/5",
        "Fisher p",
    );
    for g in &r.groups {
        match &g.figures {
            Some(f) => out.push_str(&format!(
                "{:<24} {:>6} {:>6} {:>6.3} {:>10.3} {:>7} {:>6} {:>9.4}\n",
                g.group,
                g.n,
                f.ready,
                f.rate,
                f.mean_readiness,
                f.impact_ratio
                    .map_or_else(|| "-".into(), |ratio| format!("{ratio:.3}")),
                if f.below_four_fifths { "below" } else { "" },
                f.fisher_p,
            )),
            None => out.push_str(&format!(
                "{:<24} {:>6}  (fewer than 5: count only)\n",
                g.group, g.n
            )),
        }
    }
    out.push_str(&format!(
        "\n{} labels in {} groups; SHA-256 of the labels: {}\n",
        r.label_count, r.group_count, r.labels_sha256
    ));
    if !r.calibration_id.is_empty() {
        out.push_str(&format!(
            "rater leniency removed with calibration {}\n",
            r.calibration_id
        ));
    }
    out
}
