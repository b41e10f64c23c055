//! Everything stored about one subject, together: for export and erasure
//! (SPEC §8, data subjects' rights). A new table holding subject data adds
//! its rows to both.

use sqlx::PgConnection;

use crate::domain::assessment::{Assessment, Subject};
use crate::domain::oversight::Decision;
use crate::storage::decisions::DecisionFilter;
use crate::storage::evidence::EvidenceFilter;
use crate::storage::stored::ALL;
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId, assessments, decisions, evidence, subjects};

/// What is stored about one subject.
#[derive(Debug, Clone)]
pub struct SubjectData {
    pub subject_id: String,
    pub current_role_id: Option<String>,
    pub org_unit: Option<String>,
    pub manager_id: Option<String>,
    /// Oldest first, with their revisions.
    pub evidence: Vec<evidence::Revised>,
    /// Newest first.
    pub assessments: Vec<Assessment>,
    /// Newest first.
    pub decisions: Vec<Decision>,
}

/// Reads everything stored about `subject_id`; nothing stored reads as an
/// empty document. Run it in one transaction for a consistent document.
pub async fn export(
    conn: &mut PgConnection,
    tenant: &TenantId,
    subject_id: &str,
) -> Result<SubjectData, StorageError> {
    let subject = match subjects::get(&mut *conn, tenant, subject_id).await {
        Ok((subject, _)) => subject,
        Err(StorageError::NotFound { .. }) => Subject::bare(subject_id.to_string()),
        Err(e) => return Err(e),
    };
    let filter = EvidenceFilter {
        subject_id: subject_id.to_string(),
        competency_id: None,
        observed_after: None,
        observed_before: None,
    };
    let evidence = evidence::list(&mut *conn, tenant, &filter, None, ALL).await?;
    let assessments = assessments::list(&mut *conn, tenant, subject_id, None, ALL).await?;
    let of_subject = DecisionFilter {
        subject_id: Some(subject_id.to_string()),
        role_id: None,
        decided_after: None,
        decided_before: None,
    };
    let decisions = decisions::list(&mut *conn, tenant, &of_subject, None, ALL).await?;
    Ok(SubjectData {
        subject_id: subject_id.to_string(),
        current_role_id: subject.current_role_id,
        org_unit: subject.org_unit,
        manager_id: subject.manager_id,
        evidence,
        assessments,
        decisions,
    })
}

/// How many rows an erasure deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub evidence: i64,
    pub assessments: i64,
    pub decisions: i64,
    pub subject: bool,
}

/// Every row about the subject, in one statement: its evidence (freeing
/// their keys for a new ingest), the decisions on its assessments, its
/// assessments, the request ids that remembered either, its stored role, org
/// unit and manager, and its id as the manager of others (their rows stay,
/// without a manager).
const ERASE: &str = "WITH erased_evidence AS (\
       DELETE FROM evidence WHERE tenant_id = $1 AND subject_id = $2 RETURNING id), \
     erased_decisions AS (\
       DELETE FROM decisions WHERE tenant_id = $1 AND subject_id = $2 RETURNING id), \
     erased_assessments AS (\
       DELETE FROM assessments WHERE tenant_id = $1 AND subject_id = $2 RETURNING id), \
     erased_requests AS (\
       DELETE FROM create_requests WHERE tenant_id = $1 \
         AND ((method = 'CreateAssessment' \
               AND resource_id IN (SELECT id::text FROM erased_assessments)) \
           OR (method = 'RecordDecision' \
               AND resource_id IN (SELECT id::text FROM erased_decisions))) RETURNING 1), \
     erased_subject AS (\
       DELETE FROM subjects WHERE tenant_id = $1 AND id = $2 RETURNING id), \
     unmanaged AS (\
       UPDATE subjects SET manager_id = NULL, revision = revision + 1, update_time = now() \
       WHERE tenant_id = $1 AND manager_id = $2 RETURNING 1) \
     SELECT (SELECT count(*) FROM erased_evidence), (SELECT count(*) FROM erased_assessments), \
            (SELECT count(*) FROM erased_decisions), EXISTS (SELECT 1 FROM erased_subject)";

/// Deletes everything stored about `subject_id`.
pub async fn erase(
    conn: &mut PgConnection,
    tenant: &TenantId,
    subject_id: &str,
) -> Result<Erased, StorageError> {
    let (evidence, assessments, decisions, subject): (i64, i64, i64, bool) = sqlx::query_as(ERASE)
        .bind(&tenant.0)
        .bind(subject_id)
        .fetch_one(traced!(conn, ERASE))
        .await?;
    Ok(Erased {
        evidence,
        assessments,
        decisions,
        subject,
    })
}
