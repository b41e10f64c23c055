//! Human oversight (SPEC §11) between the transport services and storage:
//! explanations of stored and dry-run assessments, decision records, the
//! oversight report and the adverse-impact report. The numbers come from
//! `domain::oversight`; this module reads what they need.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::assessment::Assessment;
use crate::domain::evidence::Observation;
use crate::domain::oversight::{
    self, Decision, DecisionInput, Explanation, GroupLabel, ImpactReport, LabelledOutcome,
    LabelsAudit, OversightReport, Period,
};
use crate::storage::audit::{self, AuditEntry, Resources};
use crate::storage::stored::{microseconds, optional};
use crate::storage::{
    Db, RequestKey, StorageError, TenantConnection, TenantId, assessments, competencies, decisions,
    evidence, roles,
};
use crate::usecases::scoring::{self, AssessmentSpec, ScoringError};

/// An assessment with its explanation and the names it is told with.
#[derive(Debug)]
pub struct ExplainedAssessment {
    pub assessment: Assessment,
    /// The role's name now; its id when the role is gone.
    pub role_name: String,
    /// The rubric competencies' names now, by id.
    pub competency_names: HashMap<String, String>,
    pub explanation: Explanation,
    pub summary: String,
}

/// Explains a stored assessment from the evidence it cites, as that evidence
/// entered the score. Evidence deleted since cannot be explained away: the
/// call fails with FAILED_PRECONDITION rather than explain another score.
pub async fn explain_stored(
    conn: &mut TenantConnection,
    tenant: &TenantId,
    assessment_id: Uuid,
) -> Result<ExplainedAssessment, StorageError> {
    conn.in_transaction(async |conn| explain_stored_on(conn, tenant, assessment_id).await)
        .await
}

async fn explain_stored_on(
    conn: &mut PgConnection,
    tenant: &TenantId,
    assessment_id: Uuid,
) -> Result<ExplainedAssessment, StorageError> {
    let assessment = assessments::get(conn, tenant, assessment_id).await?;
    let cited: Vec<Uuid> = assessment
        .score
        .competencies
        .iter()
        .flat_map(|c| c.contributions.iter().map(|k| k.evidence_id))
        .collect();
    let observations: Vec<Observation> = evidence::with_ids(conn, tenant, &cited)
        .await?
        .iter()
        .map(|e| e.observation())
        .collect();
    explained(conn, tenant, assessment, &observations, Stored::Yes).await
}

/// Scores a subject now, without storing anything, and explains the result.
pub async fn explain_dry_run(
    db: &Db,
    conn: &mut TenantConnection,
    tenant: &TenantId,
    spec: &AssessmentSpec,
) -> Result<ExplainedAssessment, ScoringError> {
    let (assessment, snapshot) = scoring::assess_with_inputs(db, conn, tenant, spec).await?;
    let observations = &snapshot.inputs.observations;
    Ok(conn
        .in_transaction(async |conn| {
            explained(conn, tenant, assessment, observations, Stored::No).await
        })
        .await?)
}

/// Whether the assessment explained was stored: a dry run's id names
/// nothing a caller could look up, so its errors do not cite it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    Yes,
    No,
}

async fn explained(
    conn: &mut PgConnection,
    tenant: &TenantId,
    assessment: Assessment,
    observations: &[Observation],
    stored: Stored,
) -> Result<ExplainedAssessment, StorageError> {
    let explanation = oversight::explain(&assessment.score, &assessment.policy, observations)
        .map_err(|e| {
            StorageError::FailedPrecondition(match stored {
                Stored::Yes => format!(
                    "assessment {} can no longer be explained: {e}",
                    assessment.id
                ),
                Stored::No => format!(
                    "the dry run of {} for {} cannot be explained: {e}",
                    assessment.subject_id, assessment.role_id
                ),
            })
        })?;
    let role_name = optional(roles::get(conn, tenant, &assessment.role_id).await)?
        .map_or_else(|| assessment.role_id.clone(), |role| role.value.name);
    let rubric_ids: Vec<String> = assessment
        .score
        .competencies
        .iter()
        .map(|c| c.competency_id.clone())
        .collect();
    let competency_names = competencies::names(conn, tenant, &rubric_ids).await?;
    let summary = oversight::summary(&explanation, &role_name, &competency_names);
    Ok(ExplainedAssessment {
        assessment,
        role_name,
        competency_names,
        explanation,
        summary,
    })
}

/// Validates a decision against the stored assessment it decides and appends
/// it, in the transaction running on `conn`. A retry with the same
/// request id and request gets the first call's record.
pub async fn record_decision(
    conn: &mut PgConnection,
    tenant: &TenantId,
    assessment_id: Uuid,
    input: DecisionInput,
    request: Option<&RequestKey>,
) -> Result<Decision, ScoringError> {
    let assessment = assessments::get(conn, tenant, assessment_id).await?;
    let decision =
        oversight::record_decision(Uuid::now_v7(), microseconds(Utc::now()), input, &assessment)?;
    Ok(decisions::create(conn, tenant, decision, request).await?)
}

/// The oversight report of `role_id` over `period`.
pub async fn oversight_report(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    period: Period,
) -> Result<OversightReport, StorageError> {
    let records = decisions::of_role_in_period(conn, tenant, role_id, period).await?;
    Ok(oversight::oversight_report(role_id, period, &records))
}

/// An adverse-impact report and what it was computed on.
#[derive(Debug)]
pub struct ComputedImpact {
    pub report: ImpactReport,
    /// The published rubric version every subject was assessed against.
    pub rubric_version: i32,
    /// The rater calibration they were scored with, if any.
    pub calibration_id: Option<Uuid>,
    /// What may be kept of the labels.
    pub audit: LabelsAudit,
}

/// Assesses every labelled subject (nothing stored) against `role_id`'s
/// published rubric as of `as_of` and reports READY rates per group.
/// `labels` must have passed `oversight::validate_labels`. They stay in
/// memory: only the counts and digest of its audit row leave this call.
pub async fn impact_report(
    db: &Db,
    conn: &mut TenantConnection,
    tenant: &TenantId,
    role_id: &str,
    as_of: DateTime<Utc>,
    labels: &[GroupLabel],
    entry: &AuditEntry,
) -> Result<ComputedImpact, ScoringError> {
    let subject_ids: Vec<String> = labels.iter().map(|l| l.subject_id.clone()).collect();
    let scored = scoring::assess_many(db, conn, tenant, role_id, &subject_ids, as_of).await?;
    let outcomes: Vec<LabelledOutcome> = labels
        .iter()
        .zip(&scored.scores)
        .map(|(label, score)| LabelledOutcome {
            group: label.group.clone(),
            band: score.band,
            readiness: score.readiness,
        })
        .collect();
    let audit = oversight::labels_audit(labels);
    let resources = Resources::one(format!(
        "impact_reports/{role_id}?labels={}&groups={}&sha256={}",
        audit.label_count, audit.group_count, audit.labels_sha256
    ));
    conn.in_transaction(async |conn| {
        audit::append(conn, tenant, entry, &resources, audit::OK).await
    })
    .await?;
    Ok(ComputedImpact {
        report: oversight::impact_report(&outcomes),
        rubric_version: scored.rubric_version,
        calibration_id: scored.calibration_id,
        audit,
    })
}
