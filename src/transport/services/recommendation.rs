//! `ladder.v1.RecommendationService`: one evidence fetch, every published
//! rubric scored in memory.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::assessment::Assessment;
use crate::domain::evidence::Observation;
use crate::domain::framework::Catalog;
use crate::domain::recommend::{self, Recommendations};
use crate::domain::scoring::{self, ScoringPolicy};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::proto::v1::recommendation_service_server::RecommendationService;
use crate::storage::scoring_inputs::ScoringInputs;
use crate::storage::{self, TenantId};
use crate::transport::convert::{assessment as convert, recommendation as present, time};
use crate::transport::error::ApiError;
use crate::transport::{AppState, answer};

/// Default and largest number of recommendations returned.
const DEFAULT_RECOMMENDATIONS: usize = 10;
const MAX_RECOMMENDATIONS: usize = 100;

#[derive(Debug, Clone)]
pub struct RecommendationApi {
    state: AppState,
}

impl RecommendationApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// What recommending reads from the database.
struct Context {
    catalog: Arc<Catalog>,
    policy: ScoringPolicy,
    evidence: Vec<Observation>,
    current_role: String,
}

fn max_recommendations(requested: i32) -> Result<usize, ApiError> {
    match requested {
        n if n < 0 => Err(ApiError::field(
            "max_recommendations",
            "must not be negative",
        )),
        0 => Ok(DEFAULT_RECOMMENDATIONS),
        n => Ok((n as usize).min(MAX_RECOMMENDATIONS)),
    }
}

impl RecommendationApi {
    async fn context(
        &self,
        tenant: &TenantId,
        subject_id: &str,
        requested_role: &str,
        as_of: DateTime<Utc>,
    ) -> Result<Context, ApiError> {
        convert::subject_id(subject_id, "subject_id")?;
        let db = &self.state.db;
        let mut conn = db.connection().await?;
        let ScoringInputs {
            framework_revision,
            policy,
            current_role_id,
            observations: evidence,
        } = storage::scoring_inputs::read(&mut conn, tenant, subject_id, as_of).await?;
        let current_role = if requested_role.is_empty() {
            current_role_id.ok_or_else(|| ApiError::PreconditionOn {
                field: "current_role_id",
                message: format!(
                    "subject {subject_id:?} has no stored current role; pass current_role_id \
                         or set it with UpdateSubject"
                ),
            })?
        } else {
            requested_role.to_string()
        };
        let catalog = db.catalog(&mut conn, tenant, framework_revision).await?;
        if catalog.role(&current_role).is_none() {
            return Err(ApiError::field(
                "current_role_id",
                format!("unknown role {current_role:?}"),
            ));
        }
        Ok(Context {
            catalog,
            policy,
            evidence,
            current_role,
        })
    }

    async fn recommend(
        &self,
        tenant: &TenantId,
        req: pb::RecommendRequest,
    ) -> Result<pb::RecommendResponse, ApiError> {
        let as_of = time::as_of(req.as_of.as_ref())?;
        let max = max_recommendations(req.max_recommendations)?;
        let ctx = self
            .context(tenant, &req.subject_id, &req.current_role_id, as_of)
            .await?;
        let result = run(&ctx, as_of, max);
        Ok(present::recommendations_to_proto(
            &req.subject_id,
            &ctx.current_role,
            as_of,
            &result,
        ))
    }

    async fn what_if(
        &self,
        tenant: &TenantId,
        req: pb::WhatIfRequest,
    ) -> Result<pb::WhatIfResponse, ApiError> {
        let as_of = time::as_of(req.as_of.as_ref())?;
        let max = max_recommendations(req.max_recommendations)?;
        let mut v = Violations::new();
        let mut added = Vec::with_capacity(req.added_evidence.len());
        for (i, item) in req.added_evidence.iter().enumerate() {
            let field = format!("added_evidence[{i}]");
            // Hypothetical evidence is about this subject, whatever it says.
            let item = pb::Evidence {
                subject_id: req.subject_id.clone(),
                ..item.clone()
            };
            match convert::evidence_from_proto(&item, Uuid::new_v4()) {
                Ok(e) => {
                    v.extend_prefixed(&field, e.validate(false));
                    added.push((field, e));
                }
                Err(err) => v.extend_prefixed(&field, err),
            }
        }
        let mut removed = HashSet::new();
        for (i, id) in req.removed_evidence_ids.iter().enumerate() {
            match convert::uuid(id, &format!("removed_evidence_ids[{i}]")) {
                Ok(id) => {
                    removed.insert(id);
                }
                Err(err) => v.0.extend(err.0),
            }
        }
        v.into_result(())?;
        let mut ctx = self
            .context(tenant, &req.subject_id, &req.current_role_id, as_of)
            .await?;
        let mut v = Violations::new();
        let known: HashSet<&str> = ctx
            .catalog
            .rubrics
            .iter()
            .flat_map(|r| r.competencies.iter().map(|c| c.competency_id.as_str()))
            .collect();
        for (field, e) in &added {
            if !known.contains(e.competency_id.as_str()) {
                v.add(
                    format!("{field}.competency_id"),
                    format!("no published rubric uses {:?}", e.competency_id),
                );
            }
        }
        v.into_result(())?;
        ctx.evidence.retain(|o| !removed.contains(&o.id));
        ctx.evidence
            .extend(added.iter().map(|(_, e)| e.observation()));
        let assessment = if req.role_id.is_empty() {
            None
        } else {
            let rubric = ctx.catalog.rubric(&req.role_id).ok_or_else(|| {
                ApiError::field(
                    "role_id",
                    format!("role {:?} has no published rubric", req.role_id),
                )
            })?;
            let score =
                scoring::score_unchecked(&ctx.evidence, &rubric.expectations(), &ctx.policy, as_of);
            Some(convert::assessment_to_proto(&Assessment {
                id: Uuid::nil(),
                subject_id: req.subject_id.clone(),
                role_id: rubric.role_id.clone(),
                rubric_version: rubric.version,
                as_of,
                policy: ctx.policy.clone(),
                score,
                create_time: as_of,
            }))
        };
        let result = run(&ctx, as_of, max);
        Ok(pb::WhatIfResponse {
            recommendations: Some(present::recommendations_to_proto(
                &req.subject_id,
                &ctx.current_role,
                as_of,
                &result,
            )),
            assessment,
        })
    }
}

fn run(ctx: &Context, as_of: DateTime<Utc>, max: usize) -> Recommendations {
    recommend::recommend(
        &ctx.catalog,
        &ctx.current_role,
        &ctx.evidence,
        &ctx.policy,
        as_of,
        max,
    )
}

#[tonic::async_trait]
impl RecommendationService for RecommendationApi {
    async fn recommend(
        &self,
        request: Request<pb::RecommendRequest>,
    ) -> Result<Response<pb::RecommendResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(self.recommend(&caller.tenant, request.into_inner())).await
    }

    async fn what_if(
        &self,
        request: Request<pb::WhatIfRequest>,
    ) -> Result<Response<pb::WhatIfResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        answer(self.what_if(&caller.tenant, request.into_inner())).await
    }
}
