//! `ladder.v1.OversightService`: explanations, decision records, the
//! oversight and adverse-impact reports (SPEC §11). Every method: parse the
//! request, call `usecases::oversight`, convert the answer (see
//! `transport::pipeline`).

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::oversight::{DecisionInput, GroupLabel, validate_labels};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::proto::v1::explain_assessment_request::Target;
use crate::proto::v1::oversight_service_server::OversightService;
use crate::storage::RequestKey;
use crate::storage::audit::Resources;
use crate::storage::decisions::{self, DecisionFilter, DecisionKey};
use crate::transport::AppState;
use crate::transport::convert::assessment::{subject_id, uuid};
use crate::transport::convert::oversight as convert;
use crate::transport::convert::page::Page;
use crate::transport::convert::request::nested;
use crate::transport::convert::request_id::request_key;
use crate::transport::convert::time;
use crate::transport::error::ApiError;
use crate::transport::methods;
use crate::usecases::oversight;
use crate::usecases::scoring::AssessmentSpec;

#[derive(Debug, Clone)]
pub struct OversightApi {
    state: AppState,
}

impl OversightApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// What `ExplainAssessment` explains.
enum Explain {
    Stored(Uuid),
    DryRun(AssessmentSpec),
}

fn explain_request(req: pb::ExplainAssessmentRequest) -> Result<Explain, ApiError> {
    match req.target {
        Some(Target::AssessmentId(id)) => Ok(Explain::Stored(uuid(&id, "assessment_id")?)),
        Some(Target::DryRun(dry_run)) => {
            Ok(Explain::DryRun(nested("dry_run", dry_run_spec(dry_run))?))
        }
        None => Err(ApiError::field(
            "assessment_id",
            "name a stored assessment, or give dry_run",
        )),
    }
}

fn dry_run_spec(req: pb::DryRunAssessment) -> Result<AssessmentSpec, Violations> {
    let mut v = Violations::new();
    let subject = subject_id(&req.subject_id, "subject_id")
        .map_err(|e| v.0.extend(e.0))
        .ok();
    if req.role_id.is_empty() {
        v.add("role_id", "is required");
    }
    if req.rubric_version < 0 {
        v.add(
            "rubric_version",
            "must be 0 (latest published) or a version",
        );
    }
    let as_of = time::as_of(req.as_of.as_ref())
        .map_err(|e| v.0.extend(e.0))
        .ok();
    let (Some(subject_id), Some(as_of)) = (subject, as_of) else {
        return Err(v);
    };
    v.into_result(AssessmentSpec {
        subject_id,
        role_id: req.role_id,
        rubric_version: Some(req.rubric_version).filter(|version| *version > 0),
        as_of,
    })
}

/// What `RecordDecision` asks for.
struct DecisionRequest {
    assessment_id: Uuid,
    input: DecisionInput,
    request: Option<RequestKey>,
}

fn decision_request(req: pb::RecordDecisionRequest) -> Result<DecisionRequest, ApiError> {
    let mut v = Violations::new();
    let assessment_id = uuid(&req.assessment_id, "assessment_id")
        .map_err(|e| v.0.extend(e.0))
        .ok();
    let input = convert::decision_input(&req)
        .map_err(|e| v.0.extend(e.0))
        .ok();
    let request = request_key(&req).map_err(|e| v.0.extend(e.0)).ok();
    match (assessment_id, input, request) {
        (Some(assessment_id), Some(input), Some(request)) if v.0.is_empty() => {
            Ok(DecisionRequest {
                assessment_id,
                input,
                request,
            })
        }
        _ => Err(v.into()),
    }
}

fn list_request(
    req: pb::ListDecisionsRequest,
) -> Result<(DecisionFilter, Page<DecisionKey>), ApiError> {
    let page = Page::parse(&req)?;
    let subject = Some(req.subject_id)
        .filter(|s| !s.is_empty())
        .map(|s| subject_id(&s, "subject_id"))
        .transpose()?;
    let role = Some(req.role_id).filter(|r| !r.is_empty());
    if subject.is_none() && role.is_none() {
        return Err(ApiError::field(
            "subject_id",
            "give subject_id, role_id or both",
        ));
    }
    let filter = DecisionFilter {
        subject_id: subject,
        role_id: role,
        decided_after: time::optional(req.decided_after.as_ref(), "decided_after")?,
        decided_before: time::optional(req.decided_before.as_ref(), "decided_before")?,
    };
    Ok((filter, page))
}

fn role_id(value: String) -> Result<String, ApiError> {
    if value.is_empty() {
        Err(ApiError::field("role_id", "is required"))
    } else {
        Ok(value)
    }
}

/// What `ComputeImpactReport` asks for. The labels are never logged: the
/// pipeline's span names the method and the tenant only, and the refusals of
/// `validate_labels` name fields, not values.
struct ImpactRequest {
    role_id: String,
    as_of: DateTime<Utc>,
    labels: Vec<GroupLabel>,
}

fn impact_request(req: pb::ComputeImpactReportRequest) -> Result<ImpactRequest, ApiError> {
    let role_id = role_id(req.role_id)?;
    let as_of = time::as_of(req.as_of.as_ref())?;
    let labels = convert::labels_from_proto(req.labels);
    validate_labels(&labels)?;
    Ok(ImpactRequest {
        role_id,
        as_of,
        labels,
    })
}

#[tonic::async_trait]
impl OversightService for OversightApi {
    async fn explain_assessment(
        &self,
        request: Request<pb::ExplainAssessmentRequest>,
    ) -> Result<Response<pb::ExplainAssessmentResponse>, Status> {
        let db = &self.state.db;
        self.state
            .on_connection(
                methods::EXPLAIN_ASSESSMENT,
                request,
                explain_request,
                async |caller, conn, target| {
                    let tenant = &caller.tenant;
                    let explanation = match target {
                        Explain::Stored(id) => convert::explanation_to_proto(
                            &oversight::explain_stored(conn, tenant, id).await?,
                            true,
                        ),
                        Explain::DryRun(spec) => convert::explanation_to_proto(
                            &oversight::explain_dry_run(db, conn, tenant, &spec).await?,
                            false,
                        ),
                    };
                    Ok(pb::ExplainAssessmentResponse {
                        explanation: Some(explanation),
                    })
                },
            )
            .await
    }

    async fn record_decision(
        &self,
        request: Request<pb::RecordDecisionRequest>,
    ) -> Result<Response<pb::RecordDecisionResponse>, Status> {
        self.state
            .in_transaction(
                methods::RECORD_DECISION,
                request,
                decision_request,
                async |caller, tx, req| {
                    let decision = oversight::record_decision(
                        tx,
                        &caller.tenant,
                        req.assessment_id,
                        req.input,
                        req.request.as_ref(),
                    )
                    .await?;
                    tx.audit(Resources::one(format!("decisions/{}", decision.id)));
                    Ok(pb::RecordDecisionResponse {
                        decision: Some(convert::decision_to_proto(&decision)),
                    })
                },
            )
            .await
    }

    async fn list_decisions(
        &self,
        request: Request<pb::ListDecisionsRequest>,
    ) -> Result<Response<pb::ListDecisionsResponse>, Status> {
        self.state
            .in_transaction(
                methods::LIST_DECISIONS,
                request,
                list_request,
                async |caller, tx, (filter, page)| {
                    let (decisions, next_page_token) = page
                        .fetch(
                            &self.state,
                            &caller.tenant,
                            tx,
                            async |tx, before, limit| {
                                decisions::list(tx, &caller.tenant, &filter, before, limit).await
                            },
                            |d| (d.decided_at, d.id),
                        )
                        .await?;
                    Ok(pb::ListDecisionsResponse {
                        decisions: decisions.iter().map(convert::decision_to_proto).collect(),
                        next_page_token,
                    })
                },
            )
            .await
    }

    async fn get_oversight_report(
        &self,
        request: Request<pb::GetOversightReportRequest>,
    ) -> Result<Response<pb::GetOversightReportResponse>, Status> {
        self.state
            .in_transaction(
                methods::GET_OVERSIGHT_REPORT,
                request,
                |req| {
                    let period = convert::period(req.period.as_ref())?;
                    Ok((role_id(req.role_id)?, period))
                },
                async |caller, tx, (role_id, period)| {
                    let report =
                        oversight::oversight_report(tx, &caller.tenant, &role_id, period).await?;
                    Ok(pb::GetOversightReportResponse {
                        report: Some(convert::oversight_report_to_proto(
                            &role_id, period, &report,
                        )),
                    })
                },
            )
            .await
    }

    async fn compute_impact_report(
        &self,
        request: Request<pb::ComputeImpactReportRequest>,
    ) -> Result<Response<pb::ComputeImpactReportResponse>, Status> {
        let db = &self.state.db;
        self.state
            .on_connection(
                methods::COMPUTE_IMPACT_REPORT,
                request,
                impact_request,
                async |caller, conn, req| {
                    let computed = oversight::impact_report(
                        db,
                        conn,
                        &caller.tenant,
                        &req.role_id,
                        req.as_of,
                        &req.labels,
                        &caller.audit_entry(),
                    )
                    .await?;
                    Ok(pb::ComputeImpactReportResponse {
                        report: Some(convert::impact_report_to_proto(
                            &req.role_id,
                            req.as_of,
                            &computed,
                        )),
                    })
                },
            )
            .await
    }
}
