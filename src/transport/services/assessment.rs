//! `ladder.v1.AssessmentService`: evidence in, assessments out.

use std::borrow::Cow;

use chrono::Utc;
use sqlx::PgConnection;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::assessment::{Assessment, Subject};
use crate::domain::evidence::{self, Evidence};
use crate::domain::framework::{Rubric, RubricState};
use crate::domain::scoring;
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::proto::v1::assessment_service_server::AssessmentService;
use crate::storage::assessments::AssessmentKey;
use crate::storage::evidence::EvidenceFilter;
use crate::storage::evidence::EvidenceKey;
use crate::storage::{self, Db, StorageError, TenantId, etag};
use crate::transport::convert::assessment::{self as convert, subject_id};
use crate::transport::convert::request::page;
use crate::transport::convert::time;
use crate::transport::error::ApiError;
use crate::transport::{AppState, answer};

#[derive(Debug, Clone)]
pub struct AssessmentApi {
    state: AppState,
}

impl AssessmentApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// Validates a batch fully before anything is written, reporting every bad
/// item at once.
fn batch_from_proto(items: &[pb::Evidence], max_batch: usize) -> Result<Vec<Evidence>, Violations> {
    let mut v = Violations::new();
    let parsed: Vec<Option<Evidence>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            convert::evidence_from_proto(item, Uuid::now_v7())
                .map_err(|err| v.extend_prefixed(&format!("evidence[{i}]"), err))
                .ok()
        })
        .collect();
    if let Err(more) = evidence::validate_batch(&parsed, max_batch) {
        v.0.extend(more.0);
    }
    v.into_result(parsed.into_iter().flatten().collect())
}

/// Scores a subject against a role's rubric as of a time, with the tenant's
/// policy; nothing is stored. Reads run on `conn` outside a transaction: one
/// statement for the evidence and policy, and the rubric from the cached
/// catalog unless an older version is asked for by number.
pub(crate) async fn assess(
    db: &Db,
    conn: &mut PgConnection,
    tenant: &TenantId,
    subject_id: &str,
    role_id: &str,
    version: Option<i32>,
    as_of: chrono::DateTime<Utc>,
) -> Result<Assessment, ApiError> {
    let inputs = storage::scoring_inputs::read(&mut *conn, tenant, subject_id, as_of).await?;
    let catalog = db
        .catalog(&mut *conn, tenant, inputs.framework_revision)
        .await?;
    let rubric = match catalog
        .rubric(role_id)
        .filter(|r| version.is_none_or(|v| v == r.version))
    {
        Some(published) => Cow::Borrowed(published),
        None => Cow::Owned(stored_rubric(conn, tenant, role_id, version).await?),
    };
    let score = scoring::score(
        &inputs.observations,
        &rubric.expectations(),
        &inputs.policy,
        as_of,
    )?;
    Ok(Assessment {
        id: Uuid::now_v7(),
        subject_id: subject_id.to_string(),
        role_id: role_id.to_string(),
        rubric_version: rubric.version,
        as_of,
        policy: inputs.policy,
        score,
        create_time: time::truncate(Utc::now()),
    })
}

/// A rubric version that is not the published one: superseded or retired
/// ones can be assessed against, drafts cannot. No transaction is needed: a
/// non-draft version's expectations never change, and a draft is refused
/// whatever its expectations are.
async fn stored_rubric(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: Option<i32>,
) -> Result<Rubric, ApiError> {
    let rubric = storage::framework::rubric(conn, tenant, role_id, version).await?;
    if rubric.state == RubricState::Draft {
        return Err(ApiError::FailedPrecondition(format!(
            "rubric {role_id} version {} is a draft; publish it before assessing against it",
            rubric.version
        )));
    }
    Ok(rubric)
}

impl AssessmentApi {
    async fn batch_create(
        &self,
        tenant: &TenantId,
        req: pb::BatchCreateEvidenceRequest,
    ) -> Result<pb::BatchCreateEvidenceResponse, ApiError> {
        let batch = batch_from_proto(&req.evidence, self.state.max_batch)?;
        let mut tx = self.state.db.begin(tenant).await?;
        let mut competency_ids: Vec<String> =
            batch.iter().map(|e| e.competency_id.clone()).collect();
        competency_ids.sort();
        competency_ids.dedup();
        let unknown =
            storage::evidence::unknown_competencies(&mut tx, tenant, &competency_ids).await?;
        if !unknown.is_empty() {
            let mut v = Violations::new();
            for (i, e) in batch
                .iter()
                .enumerate()
                .filter(|(_, e)| unknown.contains(&e.competency_id))
            {
                v.add(
                    format!("evidence[{i}].competency_id"),
                    format!("unknown competency {:?}", e.competency_id),
                );
            }
            return Err(v.into());
        }
        let ingested = storage::evidence::insert_batch(&mut tx, tenant, batch).await?;
        storage::commit(tx).await?;
        Ok(pb::BatchCreateEvidenceResponse {
            evidence: ingested
                .evidence
                .iter()
                .map(convert::evidence_to_proto)
                .collect(),
            created_count: ingested.created as i32,
        })
    }

    async fn list_evidence(
        &self,
        tenant: &TenantId,
        req: pb::ListEvidenceRequest,
    ) -> Result<pb::ListEvidenceResponse, ApiError> {
        let filter = EvidenceFilter {
            subject_id: subject_id(&req.subject_id, "subject_id")?,
            competency_id: Some(req.competency_id).filter(|c| !c.is_empty()),
            observed_after: time::optional(req.observed_after.as_ref(), "observed_after")?,
            observed_before: time::optional(req.observed_before.as_ref(), "observed_before")?,
        };
        let mut tx = self.state.db.begin(tenant).await?;
        let (evidence, next_page_token) = page(
            req.page_size,
            &req.page_token,
            async |after: Option<EvidenceKey>, limit| {
                storage::evidence::list(&mut tx, tenant, &filter, after, limit).await
            },
            |e| (e.observed_at, e.id),
        )
        .await?;
        storage::commit(tx).await?;
        Ok(pb::ListEvidenceResponse {
            evidence: evidence.iter().map(convert::evidence_to_proto).collect(),
            next_page_token,
        })
    }

    async fn update_subject(
        &self,
        tenant: &TenantId,
        req: pb::UpdateSubjectRequest,
    ) -> Result<pb::UpdateSubjectResponse, ApiError> {
        let subject = req
            .subject
            .ok_or_else(|| ApiError::field("subject", "is required"))?;
        let id = subject_id(&subject.id, "subject.id")?;
        if let Some(mask) = &req.update_mask
            && let Some(bad) = mask.paths.iter().find(|p| p.as_str() != "current_role_id")
        {
            return Err(ApiError::field(
                "update_mask",
                format!("unknown path {bad:?}; expected current_role_id"),
            ));
        }
        let expected =
            match subject.etag.as_str() {
                "" => None,
                tag => Some(etag::revision(tag).ok_or_else(|| {
                    ApiError::field("subject.etag", "is not an etag of this server")
                })?),
            };
        let role = Some(subject.current_role_id).filter(|r| !r.is_empty());
        let mut tx = self.state.db.begin(tenant).await?;
        if let Some(role) = &role
            && !storage::subjects::role_exists(&mut tx, tenant, role).await?
        {
            return Err(ApiError::field(
                "subject.current_role_id",
                format!("unknown role {role:?}"),
            ));
        }
        let subject = Subject {
            id,
            current_role_id: role,
        };
        let revision = storage::subjects::set_current_role(
            &mut tx,
            tenant,
            &subject,
            expected,
            req.allow_missing,
        )
        .await?;
        storage::commit(tx).await?;
        Ok(pb::UpdateSubjectResponse {
            subject: Some(convert::subject_to_proto(&subject, revision)),
        })
    }

    async fn update_policy(
        &self,
        tenant: &TenantId,
        req: pb::UpdateScoringPolicyRequest,
    ) -> Result<pb::UpdateScoringPolicyResponse, ApiError> {
        let update = req
            .policy
            .ok_or_else(|| ApiError::field("policy", "is required"))?;
        let paths: Vec<String> = match req.update_mask {
            Some(mask) if !mask.paths.is_empty() => mask.paths,
            // No mask replaces every field (AIP-134).
            _ => convert::POLICY_FIELDS
                .iter()
                .map(|f| f.to_string())
                .collect(),
        };
        let mut tx = self.state.db.begin(tenant).await?;
        let (mut policy, revision) = storage::policy::get(&mut tx, tenant).await?;
        if !update.etag.is_empty() && etag::revision(&update.etag) != Some(revision) {
            return Err(StorageError::StaleEtag {
                kind: "scoring policy",
                id: update.etag,
            }
            .into());
        }
        convert::apply_policy_mask(&mut policy, &update, &paths)?;
        let mut prefixed = Violations::new();
        if let Err(v) = policy.validate() {
            prefixed.extend_prefixed("policy", v);
            return Err(prefixed.into());
        }
        let revision = storage::policy::put(&mut tx, tenant, &policy, revision).await?;
        storage::commit(tx).await?;
        Ok(pb::UpdateScoringPolicyResponse {
            policy: Some(convert::policy_to_proto(&policy, revision)),
        })
    }

    async fn create_assessment(
        &self,
        tenant: &TenantId,
        req: pb::CreateAssessmentRequest,
    ) -> Result<pb::CreateAssessmentResponse, ApiError> {
        let subject = subject_id(&req.subject_id, "subject_id")?;
        if req.role_id.is_empty() {
            return Err(ApiError::field("role_id", "is required"));
        }
        let version = match req.rubric_version {
            0 => None,
            v if v > 0 => Some(v),
            _ => {
                return Err(ApiError::field(
                    "rubric_version",
                    "must be 0 (latest published) or a version",
                ));
            }
        };
        let as_of = time::as_of(req.as_of.as_ref())?;
        let request_id =
            Some(req.request_id.as_str()).filter(|r| !r.is_empty() && !req.validate_only);
        let db = &self.state.db;
        let mut conn = db.connection().await?;
        if let Some(rid) = request_id
            && let Some(existing) =
                storage::assessments::by_request_id(&mut conn, tenant, rid).await?
        {
            return Ok(pb::CreateAssessmentResponse {
                assessment: Some(convert::assessment_to_proto(&existing)),
            });
        }
        let mut assessment = assess(
            db,
            &mut conn,
            tenant,
            &subject,
            &req.role_id,
            version,
            as_of,
        )
        .await?;
        if !req.validate_only {
            assessment =
                storage::assessments::insert(&mut conn, tenant, assessment, request_id).await?;
        }
        Ok(pb::CreateAssessmentResponse {
            assessment: Some(convert::assessment_to_proto(&assessment)),
        })
    }
}

#[tonic::async_trait]
impl AssessmentService for AssessmentApi {
    async fn batch_create_evidence(
        &self,
        request: Request<pb::BatchCreateEvidenceRequest>,
    ) -> Result<Response<pb::BatchCreateEvidenceResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(self.batch_create(&caller.tenant, request.into_inner())).await
    }

    async fn get_evidence(
        &self,
        request: Request<pb::GetEvidenceRequest>,
    ) -> Result<Response<pb::GetEvidenceResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(async {
            let id = convert::uuid(&request.get_ref().evidence_id, "evidence_id")?;
            let mut tx = self.state.db.begin(&caller.tenant).await?;
            let evidence = storage::evidence::get(&mut tx, &caller.tenant, id).await?;
            storage::commit(tx).await?;
            Ok(pb::GetEvidenceResponse {
                evidence: Some(convert::evidence_to_proto(&evidence)),
            })
        })
        .await
    }

    async fn list_evidence(
        &self,
        request: Request<pb::ListEvidenceRequest>,
    ) -> Result<Response<pb::ListEvidenceResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(self.list_evidence(&caller.tenant, request.into_inner())).await
    }

    async fn delete_evidence(
        &self,
        request: Request<pb::DeleteEvidenceRequest>,
    ) -> Result<Response<pb::DeleteEvidenceResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(async {
            let id = convert::uuid(&request.get_ref().evidence_id, "evidence_id")?;
            let mut tx = self.state.db.begin(&caller.tenant).await?;
            storage::evidence::delete(&mut tx, &caller.tenant, id).await?;
            storage::commit(tx).await?;
            Ok(pb::DeleteEvidenceResponse {})
        })
        .await
    }

    async fn get_subject(
        &self,
        request: Request<pb::GetSubjectRequest>,
    ) -> Result<Response<pb::GetSubjectResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(async {
            let id = subject_id(&request.get_ref().subject_id, "subject_id")?;
            let mut tx = self.state.db.begin(&caller.tenant).await?;
            let (subject, revision) = storage::subjects::get(&mut tx, &caller.tenant, &id).await?;
            storage::commit(tx).await?;
            Ok(pb::GetSubjectResponse {
                subject: Some(convert::subject_to_proto(&subject, revision)),
            })
        })
        .await
    }

    async fn update_subject(
        &self,
        request: Request<pb::UpdateSubjectRequest>,
    ) -> Result<Response<pb::UpdateSubjectResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(self.update_subject(&caller.tenant, request.into_inner())).await
    }

    async fn get_scoring_policy(
        &self,
        request: Request<pb::GetScoringPolicyRequest>,
    ) -> Result<Response<pb::GetScoringPolicyResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(async {
            let mut tx = self.state.db.begin(&caller.tenant).await?;
            let (policy, revision) = storage::policy::get(&mut tx, &caller.tenant).await?;
            storage::commit(tx).await?;
            Ok(pb::GetScoringPolicyResponse {
                policy: Some(convert::policy_to_proto(&policy, revision)),
            })
        })
        .await
    }

    async fn update_scoring_policy(
        &self,
        request: Request<pb::UpdateScoringPolicyRequest>,
    ) -> Result<Response<pb::UpdateScoringPolicyResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(self.update_policy(&caller.tenant, request.into_inner())).await
    }

    async fn create_assessment(
        &self,
        request: Request<pb::CreateAssessmentRequest>,
    ) -> Result<Response<pb::CreateAssessmentResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(self.create_assessment(&caller.tenant, request.into_inner())).await
    }

    async fn get_assessment(
        &self,
        request: Request<pb::GetAssessmentRequest>,
    ) -> Result<Response<pb::GetAssessmentResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(async {
            let id = convert::uuid(&request.get_ref().assessment_id, "assessment_id")?;
            let mut tx = self.state.db.begin(&caller.tenant).await?;
            let assessment = storage::assessments::get(&mut tx, &caller.tenant, id).await?;
            storage::commit(tx).await?;
            Ok(pb::GetAssessmentResponse {
                assessment: Some(convert::assessment_to_proto(&assessment)),
            })
        })
        .await
    }

    async fn list_assessments(
        &self,
        request: Request<pb::ListAssessmentsRequest>,
    ) -> Result<Response<pb::ListAssessmentsResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(async {
            let req = request.get_ref();
            let subject = subject_id(&req.subject_id, "subject_id")?;
            let mut tx = self.state.db.begin(&caller.tenant).await?;
            let (assessments, next_page_token) = page(
                req.page_size,
                &req.page_token,
                async |before: Option<AssessmentKey>, limit| {
                    storage::assessments::list(&mut tx, &caller.tenant, &subject, before, limit)
                        .await
                },
                |a| (a.create_time, a.id),
            )
            .await?;
            storage::commit(tx).await?;
            Ok(pb::ListAssessmentsResponse {
                assessments: assessments
                    .iter()
                    .map(convert::assessment_to_proto)
                    .collect(),
                next_page_token,
            })
        })
        .await
    }
}
