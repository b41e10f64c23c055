//! `ladder.v1.AssessmentService`: evidence in, assessments out. Every
//! method: parse the request, call storage or `usecases::scoring`, convert the
//! answer (see `transport::pipeline`).

use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::evidence::{self, Correction, Evidence};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::proto::v1::assessment_service_server::AssessmentService;
use crate::storage::assessments::{AssessmentFilter, AssessmentKey};
use crate::storage::audit::Resources;
use crate::storage::evidence::{EvidenceFilter, EvidenceKey};
use crate::storage::stored::expected_revision;
use crate::storage::{self, Node, RequestKey, assessments};
use crate::transport::AppState;
use crate::transport::convert::assessment::{
    self as convert, EVIDENCE_PATHS, policy_paths, subject_id,
};
use crate::transport::convert::page::Page;
use crate::transport::convert::request::{Update, optional_id, required, required_id};
use crate::transport::convert::request_id::request_key;
use crate::transport::convert::time;
use crate::transport::error::ApiError;
use crate::transport::methods;
use crate::transport::services::subjects;
use crate::usecases::scoring::{self, AssessmentSpec};

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
/// item at once; its size first, before any item is looked at (the codec
/// has counted it already, see `transport::wire`).
fn batch_from_proto(items: &[pb::Evidence], max_batch: usize) -> Result<Vec<Evidence>, Violations> {
    if items.len() > max_batch {
        return Err(Violations::one(
            "evidence",
            format!("must hold at most {max_batch} entries"),
        ));
    }
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
    if let Err(more) = evidence::validate_batch(&parsed, max_batch, chrono::Utc::now()) {
        v.0.extend(more.0);
    }
    v.into_result(parsed.into_iter().flatten().collect())
}

/// Refuses evidence about competencies the tenant does not have, naming
/// each item and the competency it most likely meant.
fn unknown_competencies(
    batch: &[Evidence],
    unknown: &[(usize, Option<String>)],
) -> Result<(), ApiError> {
    let mut v = Violations::new();
    for (i, meant) in unknown {
        let id = &batch[*i].competency_id;
        v.add(
            format!("evidence[{i}].competency_id"),
            match meant {
                Some(meant) => format!("unknown competency {id:?} (did you mean {meant:?}?)"),
                None => format!("unknown competency {id:?}"),
            },
        );
    }
    Ok(v.into_result(())?)
}

/// `ListAssessments`' subject filter: every subject's when empty.
fn optional_subject_id(value: &str) -> Result<Option<String>, Violations> {
    if value.is_empty() {
        return Ok(None);
    }
    subject_id(value, "subject_id").map(Some)
}

/// Which stored evidence a correction is for.
enum EvidenceRef {
    Id(Uuid),
    /// The caller's (source_system, external_id).
    Key(String, String),
}

/// `evidence.id`, or when it is empty the caller's key.
fn evidence_ref(e: &pb::Evidence) -> Result<EvidenceRef, Violations> {
    if !e.id.is_empty() {
        return Ok(EvidenceRef::Id(convert::uuid(&e.id, "evidence.id")?));
    }
    if e.source_system.is_empty() || e.external_id.is_empty() {
        return Err(Violations::one(
            "evidence.id",
            "is required, unless evidence.source_system and evidence.external_id name the evidence",
        ));
    }
    let mut v = Violations::new();
    for (field, value) in [
        ("evidence.source_system", &e.source_system),
        ("evidence.external_id", &e.external_id),
    ] {
        if value.chars().count() > evidence::MAX_ID_LEN {
            v.add(
                field,
                format!("must be at most {} characters", evidence::MAX_ID_LEN),
            );
        } else if value.chars().any(char::is_control) {
            v.add(field, "must not contain control characters");
        }
    }
    v.into_result(EvidenceRef::Key(
        e.source_system.clone(),
        e.external_id.clone(),
    ))
}

/// What `UpdateEvidence` asks for, checked in full before anything is read.
struct EvidenceCorrection {
    target: EvidenceRef,
    correction: Correction,
    expected: Option<i64>,
}

fn evidence_correction(req: pb::UpdateEvidenceRequest) -> Result<EvidenceCorrection, ApiError> {
    let input = required(req.evidence, "evidence")?;
    let mut v = Violations::new();
    let target = evidence_ref(&input).map_err(|e| v.0.extend(e.0)).ok();
    let update = Update::parse(
        req.update_mask,
        &input,
        &EVIDENCE_PATHS,
        &input.etag,
        "evidence.etag",
    )
    .map_err(|e| v.0.extend(e.0))
    .ok();
    let correction = update.as_ref().and_then(|u| {
        convert::correction_from_proto(&input, &u.mask, chrono::Utc::now())
            .map_err(|e| v.0.extend(e.0))
            .ok()
    });
    match (target, update, correction) {
        (Some(target), Some(update), Some(correction)) if v.is_empty() => Ok(EvidenceCorrection {
            target,
            correction,
            expected: update.expected,
        }),
        _ => Err(v.into()),
    }
}

/// What `CreateAssessment` asks for.
struct AssessmentRequest {
    spec: AssessmentSpec,
    validate_only: bool,
    request: Option<RequestKey>,
}

fn assessment_request(req: pb::CreateAssessmentRequest) -> Result<AssessmentRequest, ApiError> {
    // A dry run stores nothing, so there is nothing for a retry to find.
    let request = if req.validate_only {
        None
    } else {
        request_key(&req)?
    };
    let subject_id = subject_id(&req.subject_id, "subject_id")?;
    let role_id = required_id("role_id", req.role_id)?;
    let rubric_version = match req.rubric_version {
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
    Ok(AssessmentRequest {
        spec: AssessmentSpec {
            subject_id,
            role_id,
            rubric_version,
            as_of,
        },
        validate_only: req.validate_only,
        request,
    })
}

#[tonic::async_trait]
impl AssessmentService for AssessmentApi {
    async fn batch_create_evidence(
        &self,
        request: Request<pb::BatchCreateEvidenceRequest>,
    ) -> Result<Response<pb::BatchCreateEvidenceResponse>, Status> {
        let max_batch = self.state.limits.max_batch;
        let response = self
            .state
            .in_transaction(
                methods::BATCH_CREATE_EVIDENCE,
                request,
                |req| Ok(batch_from_proto(&req.evidence, max_batch)?),
                async |caller, tx, batch| {
                    let tenant = &caller.tenant;
                    let unknown =
                        storage::evidence::unknown_competencies(tx, tenant, &batch).await?;
                    unknown_competencies(&batch, &unknown)?;
                    let ingested = storage::evidence::insert_batch(tx, tenant, batch).await?;
                    let names: Vec<String> = ingested
                        .evidence
                        .iter()
                        .map(|(e, _)| format!("evidence/{}", e.id))
                        .collect();
                    tx.audit(Resources::batch(&names));
                    Ok(pb::BatchCreateEvidenceResponse {
                        evidence: ingested
                            .evidence
                            .iter()
                            .map(convert::evidence_to_proto)
                            .collect(),
                        created_count: ingested.created as i32,
                    })
                },
            )
            .await?;
        // Counted once committed.
        let created = response.get_ref().created_count;
        self.state
            .metrics
            .record_evidence_ingested(u64::try_from(created).unwrap_or(0));
        Ok(response)
    }

    async fn get_evidence(
        &self,
        request: Request<pb::GetEvidenceRequest>,
    ) -> Result<Response<pb::GetEvidenceResponse>, Status> {
        self.state
            .in_transaction(
                methods::GET_EVIDENCE,
                request,
                |req| Ok(convert::uuid(&req.evidence_id, "evidence_id")?),
                async |caller, tx, id| {
                    let evidence = storage::evidence::get(tx, &caller.tenant, id).await?;
                    Ok(pb::GetEvidenceResponse {
                        evidence: Some(convert::evidence_to_proto(&evidence)),
                    })
                },
            )
            .await
    }

    async fn list_evidence(
        &self,
        request: Request<pb::ListEvidenceRequest>,
    ) -> Result<Response<pb::ListEvidenceResponse>, Status> {
        self.state
            .in_transaction(
                methods::LIST_EVIDENCE,
                request,
                |req| {
                    let page = Page::<EvidenceKey>::parse(&req)?;
                    let filter = EvidenceFilter {
                        subject_id: subject_id(&req.subject_id, "subject_id")?,
                        competency_id: optional_id("competency_id", req.competency_id)?,
                        observed_after: time::optional(
                            req.observed_after.as_ref(),
                            "observed_after",
                        )?,
                        observed_before: time::optional(
                            req.observed_before.as_ref(),
                            "observed_before",
                        )?,
                    };
                    Ok((page, filter))
                },
                async |caller, tx, (page, filter)| {
                    let (evidence, next_page_token) = page
                        .fetch(
                            &self.state,
                            &caller.tenant,
                            tx,
                            async |tx, after, limit| {
                                storage::evidence::list(tx, &caller.tenant, &filter, after, limit)
                                    .await
                            },
                            |(e, _)| (e.observed_at, e.id),
                        )
                        .await?;
                    Ok(pb::ListEvidenceResponse {
                        evidence: evidence.iter().map(convert::evidence_to_proto).collect(),
                        next_page_token,
                    })
                },
            )
            .await
    }

    async fn delete_evidence(
        &self,
        request: Request<pb::DeleteEvidenceRequest>,
    ) -> Result<Response<pb::DeleteEvidenceResponse>, Status> {
        self.state
            .in_transaction(
                methods::DELETE_EVIDENCE,
                request,
                |req| Ok(convert::uuid(&req.evidence_id, "evidence_id")?),
                async |caller, tx, id| {
                    storage::evidence::delete(tx, &caller.tenant, id).await?;
                    tx.audit(Resources::one(format!("evidence/{id}")));
                    Ok(pb::DeleteEvidenceResponse {})
                },
            )
            .await
    }

    async fn update_evidence(
        &self,
        request: Request<pb::UpdateEvidenceRequest>,
    ) -> Result<Response<pb::UpdateEvidenceResponse>, Status> {
        self.state
            .in_transaction(
                methods::UPDATE_EVIDENCE,
                request,
                evidence_correction,
                async |caller, tx, input| {
                    let tenant = &caller.tenant;
                    let (stored, revision) = match &input.target {
                        EvidenceRef::Id(id) => storage::evidence::get(tx, tenant, *id).await?,
                        EvidenceRef::Key(system, external) => {
                            storage::evidence::get_by_key(tx, tenant, system, external).await?
                        }
                    };
                    let revision = expected_revision(
                        storage::evidence::KIND,
                        &stored.id.to_string(),
                        revision,
                        input.expected,
                    )?;
                    // A correction that changes nothing writes nothing (AIP-134:
                    // an update without a mask that sets no field).
                    if stored.clone().corrected(&input.correction) == stored {
                        return Ok(pb::UpdateEvidenceResponse {
                            evidence: Some(convert::evidence_to_proto(&(stored, revision))),
                        });
                    }
                    let corrected =
                        storage::evidence::correct(tx, tenant, stored, revision, &input.correction)
                            .await?;
                    tx.audit(Resources::one(format!("evidence/{}", corrected.0.id)));
                    Ok(pb::UpdateEvidenceResponse {
                        evidence: Some(convert::evidence_to_proto(&corrected)),
                    })
                },
            )
            .await
    }

    async fn get_subject(
        &self,
        request: Request<pb::GetSubjectRequest>,
    ) -> Result<Response<pb::GetSubjectResponse>, Status> {
        subjects::get(&self.state, request).await
    }

    async fn update_subject(
        &self,
        request: Request<pb::UpdateSubjectRequest>,
    ) -> Result<Response<pb::UpdateSubjectResponse>, Status> {
        subjects::update(&self.state, request).await
    }

    async fn batch_update_subjects(
        &self,
        request: Request<pb::BatchUpdateSubjectsRequest>,
    ) -> Result<Response<pb::BatchUpdateSubjectsResponse>, Status> {
        subjects::batch_update(&self.state, request).await
    }

    async fn list_subjects(
        &self,
        request: Request<pb::ListSubjectsRequest>,
    ) -> Result<Response<pb::ListSubjectsResponse>, Status> {
        subjects::list(&self.state, request).await
    }

    async fn get_scoring_policy(
        &self,
        request: Request<pb::GetScoringPolicyRequest>,
    ) -> Result<Response<pb::GetScoringPolicyResponse>, Status> {
        self.state
            .in_transaction(
                methods::GET_SCORING_POLICY,
                request,
                |_| Ok(()),
                async |caller, tx, ()| {
                    let (policy, revision) = storage::policy::get(tx, &caller.tenant).await?;
                    Ok(pb::GetScoringPolicyResponse {
                        policy: Some(convert::policy_to_proto(&policy, revision)),
                    })
                },
            )
            .await
    }

    async fn update_scoring_policy(
        &self,
        request: Request<pb::UpdateScoringPolicyRequest>,
    ) -> Result<Response<pb::UpdateScoringPolicyResponse>, Status> {
        self.state
            .in_transaction(
                methods::UPDATE_SCORING_POLICY,
                request,
                |req| {
                    let input = required(req.policy, "policy")?;
                    let update = Update::parse(
                        req.update_mask,
                        &input,
                        &policy_paths(),
                        &input.etag,
                        "policy.etag",
                    )?;
                    Ok((input, update))
                },
                async |caller, tx, (input, update)| {
                    let tenant = &caller.tenant;
                    let (current, revision) = storage::policy::get(tx, tenant).await?;
                    let revision = expected_revision(
                        storage::policy::KIND,
                        &tenant.0,
                        revision,
                        update.expected,
                    )?;
                    let policy = convert::merge_policy(current, &input, &update.mask)?;
                    let revision = storage::policy::put(tx, tenant, &policy, revision).await?;
                    tx.audit(Resources::one("scoring_policy"));
                    Ok(pb::UpdateScoringPolicyResponse {
                        policy: Some(convert::policy_to_proto(&policy, revision)),
                    })
                },
            )
            .await
    }

    async fn create_assessment(
        &self,
        request: Request<pb::CreateAssessmentRequest>,
    ) -> Result<Response<pb::CreateAssessmentResponse>, Status> {
        let db = &self.state.db;
        self.state
            .on_connection_routed(
                methods::CREATE_ASSESSMENT,
                request,
                assessment_request,
                // A dry run stores nothing: it may read from the replica.
                |req| {
                    if req.validate_only {
                        Node::Replica
                    } else {
                        Node::Primary
                    }
                },
                async |caller, conn, req| {
                    let assessment = scoring::create_assessment(
                        db,
                        conn,
                        &caller.tenant,
                        &req.spec,
                        req.validate_only,
                        req.request.as_ref(),
                        &caller.audit_entry(),
                    )
                    .await?;
                    Ok(pb::CreateAssessmentResponse {
                        assessment: Some(convert::assessment_to_proto(&assessment)),
                    })
                },
            )
            .await
    }

    async fn get_assessment(
        &self,
        request: Request<pb::GetAssessmentRequest>,
    ) -> Result<Response<pb::GetAssessmentResponse>, Status> {
        self.state
            .in_transaction(
                methods::GET_ASSESSMENT,
                request,
                |req| Ok(convert::uuid(&req.assessment_id, "assessment_id")?),
                async |caller, tx, id| {
                    let assessment = assessments::get(tx, &caller.tenant, id).await?;
                    Ok(pb::GetAssessmentResponse {
                        assessment: Some(convert::assessment_to_proto(&assessment)),
                    })
                },
            )
            .await
    }

    async fn list_assessments(
        &self,
        request: Request<pb::ListAssessmentsRequest>,
    ) -> Result<Response<pb::ListAssessmentsResponse>, Status> {
        self.state
            .in_transaction(
                methods::LIST_ASSESSMENTS,
                request,
                |req| {
                    let page = Page::<AssessmentKey>::parse(&req)?;
                    let filter = AssessmentFilter {
                        subject_id: optional_subject_id(&req.subject_id)?,
                        role_id: optional_id("role_id", req.role_id)?,
                        created_after: time::optional(req.created_after.as_ref(), "created_after")?,
                        created_before: time::optional(
                            req.created_before.as_ref(),
                            "created_before",
                        )?,
                    };
                    Ok((filter, page))
                },
                async |caller, tx, (filter, page)| {
                    let (assessments, next_page_token) = page
                        .fetch(
                            &self.state,
                            &caller.tenant,
                            tx,
                            async |tx, before, limit| {
                                assessments::list_matching(
                                    tx,
                                    &caller.tenant,
                                    &filter,
                                    before,
                                    limit,
                                )
                                .await
                            },
                            |a| (a.create_time, a.id),
                        )
                        .await?;
                    Ok(pb::ListAssessmentsResponse {
                        assessments: assessments
                            .iter()
                            .map(convert::assessment_to_proto)
                            .collect(),
                        next_page_token,
                    })
                },
            )
            .await
    }
}
