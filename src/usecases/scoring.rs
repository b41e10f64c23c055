//! Scoring a subject: the reads and the engine call that assessments and
//! recommendations share, between the transport services and storage. Every
//! read runs on one connection outside an explicit transaction (see
//! `storage`'s module documentation): one statement for the changing inputs,
//! the catalog from memory while it is current.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::assessment::Assessment;
use crate::domain::evidence::Evidence;
use crate::domain::framework::{Catalog, Rubric, RubricState};
use crate::domain::scoring::{self, RoleScore};
use crate::domain::validation::Violations;
use crate::storage::audit::AuditEntry;
use crate::storage::rubrics::RubricFilter;
use crate::storage::scoring_inputs::{self, ScoringInputs};
use crate::storage::stored::{ALL, microseconds};
use crate::storage::{
    Db, RequestKey, StorageError, TenantConnection, TenantId, assessments, calibrations, rubrics,
};

#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The engine refused its inputs, naming them (`policy.sigma`).
    #[error("invalid scoring inputs: {0}")]
    Invalid(#[from] Violations),
}

/// Everything scoring one subject as of one time reads.
#[derive(Debug)]
pub struct ScoringSnapshot {
    /// The tenant's roles and published rubrics.
    pub catalog: Arc<Catalog>,
    /// The subject's evidence, the policy and the subject's stored role.
    pub inputs: ScoringInputs,
}

impl ScoringSnapshot {
    /// Reads a subject's scoring inputs and the tenant's catalog on `conn`;
    /// NOT_FOUND for a subject the tenant has never recorded.
    pub async fn read(
        db: &Db,
        conn: &mut TenantConnection,
        tenant: &TenantId,
        subject_id: &str,
        as_of: DateTime<Utc>,
    ) -> Result<Self, StorageError> {
        let inputs = scoring_inputs::read(&mut *conn, tenant, subject_id, as_of).await?;
        // A subject never recorded is most likely a mistyped id: scoring it
        // would answer "insufficient evidence" about nobody (SPEC §6).
        if !inputs.subject_known {
            return Err(StorageError::not_found("subject", subject_id));
        }
        let catalog = db.catalog(conn, tenant, inputs.framework_revision).await?;
        Ok(Self { catalog, inputs })
    }

    /// The rubric version to assess against; see [`rubric`].
    async fn rubric(
        &self,
        conn: &mut TenantConnection,
        tenant: &TenantId,
        role_id: &str,
        version: Option<i32>,
    ) -> Result<Cow<'_, Rubric>, StorageError> {
        rubric(&self.catalog, conn, tenant, role_id, version).await
    }
}

/// Adds to `inputs` the leniency, under the calibration they score with, of
/// the rater of each item of `hypothetical` (evidence a what-if adds, not
/// stored, so the scoring statement did not see its raters): the item is
/// then scored as it would be once stored.
pub async fn calibrate_hypothetical<'e>(
    conn: &mut TenantConnection,
    tenant: &TenantId,
    inputs: &mut ScoringInputs,
    hypothetical: impl IntoIterator<Item = &'e Evidence>,
) -> Result<(), StorageError> {
    let Some(calibration_id) = inputs.calibration_id else {
        return Ok(());
    };
    let rated: Vec<&Evidence> = hypothetical
        .into_iter()
        .filter(|e| !e.rater_id.is_empty())
        .collect();
    if rated.is_empty() {
        return Ok(());
    }
    let raters: Vec<&str> = rated.iter().map(|e| e.rater_id.as_str()).collect();
    let effects = conn
        .in_transaction(async |conn| {
            calibrations::leniencies_of(conn, tenant, calibration_id, &raters).await
        })
        .await?;
    for (id, leniency) in effects
        .adjustments(rated.iter().map(|e| (e.id, e.rater_id.as_str())))
        .iter()
    {
        inputs.rater_adjustments.insert(id, leniency);
    }
    Ok(())
}

/// The rubric version to assess against: the published one from the
/// catalog (for a retired role, its last version), or the version asked for
/// by number. Superseded and retired versions can be assessed against,
/// drafts cannot. A non-draft version
/// never changes, so reading it outside a transaction is safe.
async fn rubric<'c>(
    catalog: &'c Catalog,
    conn: &mut TenantConnection,
    tenant: &TenantId,
    role_id: &str,
    version: Option<i32>,
) -> Result<Cow<'c, Rubric>, StorageError> {
    if let Some(published) = catalog
        .rubric(role_id)
        .filter(|r| version.is_none_or(|v| v == r.version))
    {
        return Ok(Cow::Borrowed(published));
    }
    let retired_role = version.is_none() && catalog.role(role_id).is_none();
    let rubric = conn
        .in_transaction(async |tx| {
            match rubrics::get(tx, tenant, role_id, version).await {
                // A role a prune retired has no published version left: it
                // is read as it was, with the version it had when retired
                // (SPEC §6), so the people who still hold it can be assessed
                // against it.
                Err(StorageError::NotFound { .. }) if retired_role => {
                    let retired = RubricFilter {
                        role_id: Some(role_id.to_string()),
                        state: Some(RubricState::Retired),
                    };
                    let mut versions = rubrics::list(tx, tenant, None, ALL, &retired).await?;
                    versions.pop().ok_or_else(|| {
                        StorageError::not_found("rubric", format!("{role_id} (published)"))
                    })
                }
                other => other,
            }
        })
        .await?
        .value;
    if rubric.state == RubricState::Draft {
        return Err(StorageError::FailedPrecondition(format!(
            "rubric {role_id} version {} is a draft; publish it before assessing against it",
            rubric.version
        )));
    }
    Ok(Cow::Owned(rubric))
}

/// What to assess: a subject against a role's rubric as of a time.
#[derive(Debug, Clone)]
pub struct AssessmentSpec {
    pub subject_id: String,
    pub role_id: String,
    /// `None`: the published version.
    pub rubric_version: Option<i32>,
    pub as_of: DateTime<Utc>,
}

/// Scores a subject with the tenant's policy and, when the policy turns rater
/// calibration on, the tenant's latest calibration (none run yet: scored
/// uncalibrated, citing none); nothing is stored.
pub async fn assess(
    db: &Db,
    conn: &mut TenantConnection,
    tenant: &TenantId,
    spec: &AssessmentSpec,
) -> Result<Assessment, ScoringError> {
    Ok(assess_with_inputs(db, conn, tenant, spec).await?.0)
}

/// [`assess`], also returning what was read to score: the observations the
/// score cites and the catalog, for explaining it.
pub async fn assess_with_inputs(
    db: &Db,
    conn: &mut TenantConnection,
    tenant: &TenantId,
    spec: &AssessmentSpec,
) -> Result<(Assessment, ScoringSnapshot), ScoringError> {
    let snapshot = ScoringSnapshot::read(db, conn, tenant, &spec.subject_id, spec.as_of).await?;
    let rubric = snapshot
        .rubric(conn, tenant, &spec.role_id, spec.rubric_version)
        .await?;
    let inputs = &snapshot.inputs;
    let score = scoring::score_calibrated(
        &inputs.observations,
        &inputs.rater_adjustments,
        &rubric.expectations(),
        &inputs.policy,
        spec.as_of,
    )?;
    let assessment = Assessment {
        id: Uuid::now_v7(),
        subject_id: spec.subject_id.clone(),
        role_id: spec.role_id.clone(),
        rubric_version: rubric.version,
        as_of: spec.as_of,
        policy: inputs.policy.clone(),
        score,
        create_time: microseconds(Utc::now()),
        calibration_id: inputs.calibration_id,
    };
    drop(rubric);
    Ok((assessment, snapshot))
}

/// Many subjects scored against one role's published rubric as of one time;
/// nothing is stored.
#[derive(Debug)]
pub struct ManyScores {
    pub rubric_version: i32,
    /// The rater calibration they were scored with, if any.
    pub calibration_id: Option<Uuid>,
    /// In the order of the subject ids asked for.
    pub scores: Vec<RoleScore>,
}

/// Scores every subject of `subject_ids` against `role_id`'s published
/// rubric with the tenant's policy (and its latest calibration when the
/// policy turns calibration on), as an assessment would. The evidence of all of them is read in
/// one statement and the catalog comes from memory while it is current.
pub async fn assess_many(
    db: &Db,
    conn: &mut TenantConnection,
    tenant: &TenantId,
    role_id: &str,
    subject_ids: &[String],
    as_of: DateTime<Utc>,
) -> Result<ManyScores, ScoringError> {
    let inputs = scoring_inputs::read_many(&mut *conn, tenant, subject_ids, as_of).await?;
    let catalog = db.catalog(conn, tenant, inputs.framework_revision).await?;
    let rubric = rubric(&catalog, conn, tenant, role_id, None).await?;
    let expectations = rubric.expectations();
    let scores = subject_ids
        .iter()
        .map(|subject_id| {
            let observations = inputs
                .observations
                .get(subject_id)
                .map_or(&[][..], Vec::as_slice);
            // Stored evidence, policy, published rubrics and calibrations
            // passed validation when they were written, as for
            // recommendations.
            scoring::score_calibrated_unchecked(
                observations,
                &inputs.rater_adjustments,
                &expectations,
                &inputs.policy,
                as_of,
            )
        })
        .collect();
    Ok(ManyScores {
        rubric_version: rubric.version,
        calibration_id: inputs.calibration_id,
        scores,
    })
}

/// Assesses and, unless `validate_only`, stores the snapshot with its audit
/// row; a retry with the same request id and request gets the snapshot the
/// first call stored (and writes nothing).
pub async fn create_assessment(
    db: &Db,
    conn: &mut TenantConnection,
    tenant: &TenantId,
    spec: &AssessmentSpec,
    validate_only: bool,
    request: Option<&RequestKey>,
    audit: &AuditEntry,
) -> Result<Assessment, ScoringError> {
    let assessment = assess(db, conn, tenant, spec).await?;
    if validate_only {
        return Ok(assessment);
    }
    Ok(assessments::create(conn, tenant, assessment, request, audit).await?)
}
