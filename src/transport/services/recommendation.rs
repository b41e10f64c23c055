//! `ladder.v1.RecommendationService`: one evidence fetch, every published
//! rubric scored in memory.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::assessment::Assessment;
use crate::domain::evidence::Evidence;
use crate::domain::framework::Catalog;
use crate::domain::recommend::{self, Recommendations};
use crate::domain::scoring;
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::proto::v1::recommendation_service_server::RecommendationService;
use crate::storage::stored::optional;
use crate::storage::{Db, StorageError, TenantConnection, TenantId, roles};
use crate::transport::AppState;
use crate::transport::convert::request::optional_id;
use crate::transport::convert::{assessment as convert, recommendation as present, time};
use crate::transport::error::ApiError;
use crate::transport::limits::{MAX_WHAT_IF_ADDED, MAX_WHAT_IF_REMOVED, check_count};
use crate::transport::methods;
use crate::usecases::scoring::{ScoringSnapshot, calibrate_hypothetical};

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

fn max_recommendations(requested: i32) -> Result<usize, ApiError> {
    match requested {
        n if n < 0 => Err(ApiError::field(
            "max_recommendations",
            "must not be negative",
        )),
        0 => Ok(DEFAULT_RECOMMENDATIONS),
        n if n as usize > MAX_RECOMMENDATIONS => Err(ApiError::field(
            "max_recommendations",
            format!("must be at most {MAX_RECOMMENDATIONS}"),
        )),
        n => Ok(n as usize),
    }
}

/// Whom to recommend for, as of when, and how many.
struct Subject {
    id: String,
    /// The role the request names; empty for the stored one.
    requested_role: String,
    as_of: DateTime<Utc>,
    max: usize,
}

fn subject(
    subject_id: &str,
    current_role_id: String,
    as_of: Option<&prost_types::Timestamp>,
    max_recommendations: i32,
) -> Result<Subject, ApiError> {
    Ok(Subject {
        id: convert::subject_id(subject_id, "subject_id")?,
        requested_role: optional_id("current_role_id", current_role_id)?.unwrap_or_default(),
        as_of: time::as_of(as_of)?,
        max: self::max_recommendations(max_recommendations)?,
    })
}

/// A subject's scoring snapshot and the role recommendations start from:
/// the one the request names, else the one stored.
struct Context {
    snapshot: ScoringSnapshot,
    current_role: String,
}

async fn context(
    db: &Db,
    conn: &mut TenantConnection,
    tenant: &TenantId,
    subject: &Subject,
) -> Result<Context, ApiError> {
    let mut snapshot = ScoringSnapshot::read(db, conn, tenant, &subject.id, subject.as_of).await?;
    let current_role = if subject.requested_role.is_empty() {
        snapshot
            .inputs
            .current_role_id
            .clone()
            .ok_or_else(|| ApiError::PreconditionOn {
                field: "current_role_id",
                message: format!(
                    "subject {:?} has no stored current role; pass current_role_id \
                     or set it with UpdateSubject",
                    subject.id
                ),
            })?
    } else {
        subject.requested_role.clone()
    };
    if snapshot.catalog.role(&current_role).is_none() {
        // Not in the catalog: a role a prune retired (SPEC §6), read as it
        // was, so that the people who still hold it keep their
        // recommendations; or no role at all.
        let retired = conn
            .in_transaction(async |tx| optional(roles::get(tx, tenant, &current_role).await))
            .await?;
        let Some(retired) = retired else {
            return Err(ApiError::field(
                "current_role_id",
                format!("unknown role {current_role:?}"),
            ));
        };
        snapshot.catalog = Arc::new(snapshot.catalog.with_role(retired.value));
    }
    Ok(Context {
        snapshot,
        current_role,
    })
}

/// Hypothetical evidence and evidence left out, as a what-if names them.
struct Changes {
    added: Vec<(String, Evidence)>,
    removed: HashSet<Uuid>,
}

fn changes(req: &pb::WhatIfRequest) -> Result<Changes, Violations> {
    let mut v = Violations::new();
    check_count(
        &mut v,
        "added_evidence",
        req.added_evidence.len(),
        MAX_WHAT_IF_ADDED,
    );
    check_count(
        &mut v,
        "removed_evidence_ids",
        req.removed_evidence_ids.len(),
        MAX_WHAT_IF_REMOVED,
    );
    if !v.is_empty() {
        return Err(v);
    }
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
                v.extend_prefixed(&field, e.validate_date(chrono::Utc::now()));
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
    v.into_result(Changes { added, removed })
}

/// Refuses hypothetical evidence about competencies no published rubric uses.
fn unused_competencies(catalog: &Catalog, added: &[(String, Evidence)]) -> Result<(), Violations> {
    let known: HashSet<&str> = catalog
        .rubrics()
        .iter()
        .flat_map(|r| r.competencies.iter().map(|c| c.competency_id.as_str()))
        .collect();
    let mut v = Violations::new();
    for (field, e) in added {
        if !known.contains(e.competency_id.as_str()) {
            v.add(
                format!("{field}.competency_id"),
                format!("no published rubric uses {:?}", e.competency_id),
            );
        }
    }
    v.into_result(())
}

/// The what-if assessment against `role_id`'s published rubric.
fn hypothetical_assessment(
    ctx: &Context,
    subject_id: &str,
    role_id: &str,
    as_of: DateTime<Utc>,
) -> Result<pb::Assessment, ApiError> {
    let rubric = ctx.snapshot.catalog.rubric(role_id).ok_or_else(|| {
        ApiError::field(
            "role_id",
            format!("role {role_id:?} has no published rubric"),
        )
    })?;
    let inputs = &ctx.snapshot.inputs;
    let score = scoring::score_calibrated_unchecked(
        &inputs.observations,
        &inputs.rater_adjustments,
        &rubric.expectations(),
        &inputs.policy,
        as_of,
    );
    Ok(convert::assessment_to_proto(&Assessment {
        id: Uuid::nil(),
        subject_id: subject_id.to_string(),
        role_id: rubric.role_id.clone(),
        rubric_version: rubric.version,
        as_of,
        policy: inputs.policy.clone(),
        score,
        create_time: as_of,
        calibration_id: inputs.calibration_id,
    }))
}

/// Up to `max` recommendations from the context's current role.
fn recommendations(ctx: &Context, as_of: DateTime<Utc>, max: usize) -> Recommendations {
    recommend::recommend(
        &ctx.snapshot.catalog,
        &ctx.current_role,
        &ctx.snapshot.inputs.observations,
        &ctx.snapshot.inputs.rater_adjustments,
        &ctx.snapshot.inputs.policy,
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
        let (db, cpu) = (&self.state.db, &self.state.cpu);
        self.state
            .on_connection(
                methods::RECOMMEND,
                request,
                |req| {
                    subject(
                        &req.subject_id,
                        req.current_role_id,
                        req.as_of.as_ref(),
                        req.max_recommendations,
                    )
                },
                async |caller, conn, subject| {
                    let ctx = context(db, conn, &caller.tenant, &subject).await?;
                    cpu.run(move || {
                        let result = recommendations(&ctx, subject.as_of, subject.max);
                        present::recommendations_to_proto(
                            &subject.id,
                            &ctx.current_role,
                            subject.as_of,
                            result,
                        )
                    })
                    .await
                },
            )
            .await
    }

    async fn what_if(
        &self,
        request: Request<pb::WhatIfRequest>,
    ) -> Result<Response<pb::WhatIfResponse>, Status> {
        let (db, cpu) = (&self.state.db, &self.state.cpu);
        self.state
            .on_connection(
                methods::WHAT_IF,
                request,
                |req| {
                    let changes = changes(&req)?;
                    let subject = subject(
                        &req.subject_id,
                        req.current_role_id,
                        req.as_of.as_ref(),
                        req.max_recommendations,
                    )?;
                    let role_id = optional_id("role_id", req.role_id)?.unwrap_or_default();
                    Ok((subject, changes, role_id))
                },
                async |caller, conn, (subject, changes, role_id)| {
                    let mut ctx = context(db, conn, &caller.tenant, &subject).await?;
                    calibrate_hypothetical(
                        conn,
                        &caller.tenant,
                        &mut ctx.snapshot.inputs,
                        changes.added.iter().map(|(_, e)| e),
                    )
                    .await?;
                    cpu.run(move || what_if(ctx, &subject, &changes, &role_id))
                        .await?
                },
            )
            .await
    }
}

/// A what-if's answer: the context's evidence with the changes made,
/// scored against every rubric (and against `role_id`'s, if named).
fn what_if(
    mut ctx: Context,
    subject: &Subject,
    changes: &Changes,
    role_id: &str,
) -> Result<pb::WhatIfResponse, ApiError> {
    unused_competencies(&ctx.snapshot.catalog, &changes.added)?;
    let observations = &mut ctx.snapshot.inputs.observations;
    // Leaving out evidence the subject does not have is a mistake worth
    // saying, not a no-op.
    if let Some(unknown) = changes
        .removed
        .iter()
        .filter(|id| !observations.iter().any(|o| o.id == **id))
        .min()
    {
        return Err(StorageError::not_found("evidence", unknown.to_string()).into());
    }
    observations.retain(|o| !changes.removed.contains(&o.id));
    observations.extend(changes.added.iter().map(|(_, e)| e.observation()));
    let assessment = if role_id.is_empty() {
        None
    } else {
        Some(hypothetical_assessment(
            &ctx,
            &subject.id,
            role_id,
            subject.as_of,
        )?)
    };
    let result = recommendations(&ctx, subject.as_of, subject.max);
    Ok(pb::WhatIfResponse {
        recommendations: Some(present::recommendations_to_proto(
            &subject.id,
            &ctx.current_role,
            subject.as_of,
            result,
        )),
        assessment,
    })
}
