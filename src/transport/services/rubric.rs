//! `ladder.v1.RubricService`: competencies, roles and versioned rubrics.
//! Every method: parse the request, run storage functions in the call's
//! transaction, convert the answer (see `transport::pipeline`).

use tonic::{Request, Response, Status};

use crate::domain::framework::{Role, RubricAction, RubricCompetency};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::proto::v1::rubric_service_server::RubricService;
use crate::storage::audit::Resources;
use crate::storage::rubrics::RubricFilter;
use crate::storage::stored::expected_revision;
use crate::storage::{TenantId, TenantTx, case_items, competencies, roles, rubrics, tracks};
use crate::transport::AppState;
use crate::transport::convert::etag;
use crate::transport::convert::framework::{
    COMPETENCY_PATHS, ROLE_PATHS, RUBRIC_PATHS, blank_competency, blank_role, case_items_to_pb,
    competency_to_pb, expectations_from_pb, merge_competency, merge_role, role_to_pb, rubric_to_pb,
    state_from_pb, track_to_pb,
};
use crate::transport::convert::page::Page;
use crate::transport::convert::request::{
    Mask, Update, nested, optional_id, required, required_id,
};
use crate::transport::convert::request_id::request_key;
use crate::transport::error::ApiError;
use crate::transport::methods;

#[derive(Debug, Clone)]
pub struct RubricApi {
    state: AppState,
}

impl RubricApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// Refuses references to rows the tenant does not have, naming each field.
fn unknown_references(
    ids: &[String],
    missing: &[String],
    what: &str,
    field: impl Fn(usize) -> String,
) -> Result<(), ApiError> {
    let mut v = Violations::new();
    for (i, id) in ids.iter().enumerate() {
        if missing.contains(id) {
            v.add(field(i), format!("unknown {what} {id:?}"));
        }
    }
    Ok(v.into_result(())?)
}

/// Refuses a role whose track or transition targets the tenant does not have.
async fn check_role_references(
    tx: &mut TenantTx,
    tenant: &TenantId,
    role: &Role,
) -> Result<(), ApiError> {
    let track = vec![role.track.clone()];
    let missing = tracks::missing(tx, tenant, &track).await?;
    unknown_references(&track, &missing, "track", |_| "role.track_id".to_string())?;
    let targets: Vec<String> = role.transitions.iter().map(|t| t.to.clone()).collect();
    let missing = roles::missing(tx, tenant, &targets).await?;
    unknown_references(&targets, &missing, "role", |k| {
        format!("role.transitions[{k}].to_role_id")
    })
}

async fn check_competencies(
    tx: &mut TenantTx,
    tenant: &TenantId,
    items: &[RubricCompetency],
) -> Result<(), ApiError> {
    let ids: Vec<String> = items.iter().map(|c| c.competency_id.clone()).collect();
    let missing = competencies::missing(tx, tenant, &ids).await?;
    unknown_references(&ids, &missing, "competency", |k| {
        format!("rubric.competencies[{k}].competency_id")
    })
}

/// A version that names one stored version (not 0, "the published one").
fn stored_version(field: &str, version: i32) -> Result<i32, ApiError> {
    if version > 0 {
        Ok(version)
    } else {
        Err(ApiError::field(field, "must be > 0"))
    }
}

/// Which version a publish or retire applies to, and the revision the
/// caller last read.
struct VersionChange {
    role_id: String,
    version: i32,
    expected: Option<i64>,
}

fn version_change(role_id: String, version: i32, tag: &str) -> Result<VersionChange, ApiError> {
    Ok(VersionChange {
        role_id: required_id("role_id", role_id)?,
        version: stored_version("version", version)?,
        expected: etag::expected(tag, "etag")?,
    })
}

/// Publishes or retires one version.
async fn advance(
    tx: &mut TenantTx,
    tenant: &TenantId,
    change: VersionChange,
    action: RubricAction,
) -> Result<pb::Rubric, ApiError> {
    let rubric = rubrics::advance(
        tx,
        tenant,
        &change.role_id,
        change.version,
        change.expected,
        action,
    )
    .await?;
    Ok(rubric_to_pb(rubric))
}

#[tonic::async_trait]
impl RubricService for RubricApi {
    async fn get_competency(
        &self,
        request: Request<pb::GetCompetencyRequest>,
    ) -> Result<Response<pb::GetCompetencyResponse>, Status> {
        self.state
            .in_transaction(
                methods::GET_COMPETENCY,
                request,
                |req| required_id("competency_id", req.competency_id),
                async |caller, tx, id| {
                    let c = competencies::get(tx, &caller.tenant, &id).await?;
                    let mut competency = [competency_to_pb(c)];
                    let items = case_items::of(tx, &caller.tenant, &[&id]).await?;
                    case_items_to_pb(&mut competency, &items);
                    let [competency] = competency;
                    Ok(pb::GetCompetencyResponse {
                        competency: Some(competency),
                    })
                },
            )
            .await
    }

    async fn list_competencies(
        &self,
        request: Request<pb::ListCompetenciesRequest>,
    ) -> Result<Response<pb::ListCompetenciesResponse>, Status> {
        self.state
            .in_transaction(
                methods::LIST_COMPETENCIES,
                request,
                |req| Ok(Page::<String>::parse(&req)?),
                async |caller, tx, page| {
                    let (items, next_page_token) = page
                        .fetch(
                            &self.state,
                            &caller.tenant,
                            tx,
                            async |tx, after, limit| {
                                competencies::list(tx, &caller.tenant, after.as_deref(), limit)
                                    .await
                            },
                            |c| c.value.id.clone(),
                        )
                        .await?;
                    let mut competencies: Vec<pb::Competency> =
                        items.into_iter().map(competency_to_pb).collect();
                    let ids: Vec<&str> = competencies.iter().map(|c| c.id.as_str()).collect();
                    let kept = case_items::of(tx, &caller.tenant, &ids).await?;
                    case_items_to_pb(&mut competencies, &kept);
                    Ok(pb::ListCompetenciesResponse {
                        competencies,
                        next_page_token,
                    })
                },
            )
            .await
    }

    async fn create_competency(
        &self,
        request: Request<pb::CreateCompetencyRequest>,
    ) -> Result<Response<pb::CreateCompetencyResponse>, Status> {
        self.state
            .in_transaction(
                methods::CREATE_COMPETENCY,
                request,
                |req| {
                    let request = request_key(&req)?;
                    let input = required(req.competency, "competency")?;
                    let base = blank_competency(&input.id);
                    let all = Mask::all(&COMPETENCY_PATHS);
                    let competency = nested("competency", merge_competency(base, input, &all))?;
                    Ok((competency, request))
                },
                async |caller, tx, (competency, request)| {
                    let created =
                        competencies::create(tx, &caller.tenant, &competency, request.as_ref())
                            .await?;
                    tx.audit(Resources::one(format!("competencies/{}", competency.id)));
                    Ok(pb::CreateCompetencyResponse {
                        competency: Some(competency_to_pb(created)),
                    })
                },
            )
            .await
    }

    async fn update_competency(
        &self,
        request: Request<pb::UpdateCompetencyRequest>,
    ) -> Result<Response<pb::UpdateCompetencyResponse>, Status> {
        self.state
            .in_transaction(
                methods::UPDATE_COMPETENCY,
                request,
                |req| {
                    let input = required(req.competency, "competency")?;
                    let update = Update::parse(
                        req.update_mask,
                        &input,
                        &COMPETENCY_PATHS,
                        &input.etag,
                        "competency.etag",
                    )?;
                    let id = required_id("competency.id", input.id.clone())?;
                    Ok((id, input, update))
                },
                async |caller, tx, (id, input, update)| {
                    let tenant = &caller.tenant;
                    let current = competencies::get(tx, tenant, &id).await?;
                    let revision = expected_revision(
                        "competency",
                        &id,
                        current.meta.revision,
                        update.expected,
                    )?;
                    let merged = nested(
                        "competency",
                        merge_competency(current.value, input, &update.mask),
                    )?;
                    let updated = competencies::update(tx, tenant, &merged, revision).await?;
                    tx.audit(Resources::one(format!("competencies/{id}")));
                    let mut competency = [competency_to_pb(updated)];
                    case_items_to_pb(&mut competency, &case_items::of(tx, tenant, &[&id]).await?);
                    let [competency] = competency;
                    Ok(pb::UpdateCompetencyResponse {
                        competency: Some(competency),
                    })
                },
            )
            .await
    }

    async fn delete_competency(
        &self,
        request: Request<pb::DeleteCompetencyRequest>,
    ) -> Result<Response<pb::DeleteCompetencyResponse>, Status> {
        self.state
            .in_transaction(
                methods::DELETE_COMPETENCY,
                request,
                |req| {
                    let expected = etag::expected(&req.etag, "etag")?;
                    Ok((required_id("competency_id", req.competency_id)?, expected))
                },
                async |caller, tx, (id, expected)| {
                    competencies::delete(tx, &caller.tenant, &id, expected).await?;
                    tx.audit(Resources::one(format!("competencies/{id}")));
                    Ok(pb::DeleteCompetencyResponse {})
                },
            )
            .await
    }

    async fn get_role(
        &self,
        request: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::GetRoleResponse>, Status> {
        self.state
            .cached_read(
                methods::GET_ROLE,
                request,
                |req| required_id("role_id", req.role_id),
                async |reads, id, deadline| {
                    let role = reads.role(&id, deadline.remaining()).await?;
                    Ok(pb::GetRoleResponse {
                        role: Some(role_to_pb(role)),
                    })
                },
            )
            .await
    }

    async fn list_tracks(
        &self,
        request: Request<pb::ListTracksRequest>,
    ) -> Result<Response<pb::ListTracksResponse>, Status> {
        self.state
            .in_transaction(
                methods::LIST_TRACKS,
                request,
                |req| Ok(Page::<String>::parse(&req)?),
                async |caller, tx, page| {
                    let (items, next_page_token) = page
                        .fetch(
                            &self.state,
                            &caller.tenant,
                            tx,
                            async |tx, after, limit| {
                                tracks::list(tx, &caller.tenant, after.as_deref(), limit).await
                            },
                            |t| t.id.clone(),
                        )
                        .await?;
                    Ok(pb::ListTracksResponse {
                        tracks: items.into_iter().map(track_to_pb).collect(),
                        next_page_token,
                    })
                },
            )
            .await
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        self.state
            .in_transaction(
                methods::LIST_ROLES,
                request,
                |req| {
                    let track = match req.track_id.as_str() {
                        "" => None,
                        id => Some(required_id("track_id", id.to_string())?),
                    };
                    Ok((Page::<String>::parse(&req)?, track))
                },
                async |caller, tx, (page, track)| {
                    let (items, next_page_token) = page
                        .fetch(
                            &self.state,
                            &caller.tenant,
                            tx,
                            async |tx, after, limit| {
                                roles::list(
                                    tx,
                                    &caller.tenant,
                                    after.as_deref(),
                                    limit,
                                    track.as_deref(),
                                )
                                .await
                            },
                            |r| r.value.id.clone(),
                        )
                        .await?;
                    Ok(pb::ListRolesResponse {
                        roles: items.into_iter().map(role_to_pb).collect(),
                        next_page_token,
                    })
                },
            )
            .await
    }

    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::CreateRoleResponse>, Status> {
        self.state
            .in_transaction(
                methods::CREATE_ROLE,
                request,
                |req| {
                    let request = request_key(&req)?;
                    let input = required(req.role, "role")?;
                    let base = blank_role(&input.id);
                    let role = nested("role", merge_role(base, input, &Mask::all(&ROLE_PATHS)))?;
                    Ok((role, request))
                },
                async |caller, tx, (role, request)| {
                    check_role_references(tx, &caller.tenant, &role).await?;
                    let created =
                        roles::create(tx, &caller.tenant, &role, request.as_ref()).await?;
                    tx.audit(Resources::one(format!("roles/{}", role.id)));
                    Ok(pb::CreateRoleResponse {
                        role: Some(role_to_pb(created)),
                    })
                },
            )
            .await
    }

    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::UpdateRoleResponse>, Status> {
        self.state
            .in_transaction(
                methods::UPDATE_ROLE,
                request,
                |req| {
                    let input = required(req.role, "role")?;
                    let update = Update::parse(
                        req.update_mask,
                        &input,
                        &ROLE_PATHS,
                        &input.etag,
                        "role.etag",
                    )?;
                    let id = required_id("role.id", input.id.clone())?;
                    Ok((id, input, update))
                },
                async |caller, tx, (id, input, update)| {
                    let tenant = &caller.tenant;
                    let current = roles::get(tx, tenant, &id).await?;
                    let revision =
                        expected_revision("role", &id, current.meta.revision, update.expected)?;
                    let merged = nested("role", merge_role(current.value, input, &update.mask))?;
                    check_role_references(tx, tenant, &merged).await?;
                    let updated = roles::update(tx, tenant, &merged, revision).await?;
                    tx.audit(Resources::one(format!("roles/{id}")));
                    Ok(pb::UpdateRoleResponse {
                        role: Some(role_to_pb(updated)),
                    })
                },
            )
            .await
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        self.state
            .in_transaction(
                methods::DELETE_ROLE,
                request,
                |req| {
                    let expected = etag::expected(&req.etag, "etag")?;
                    Ok((required_id("role_id", req.role_id)?, expected))
                },
                async |caller, tx, (id, expected)| {
                    roles::delete(tx, &caller.tenant, &id, expected).await?;
                    tx.audit(Resources::one(format!("roles/{id}")));
                    Ok(pb::DeleteRoleResponse {})
                },
            )
            .await
    }

    async fn get_rubric(
        &self,
        request: Request<pb::GetRubricRequest>,
    ) -> Result<Response<pb::GetRubricResponse>, Status> {
        self.state
            .in_transaction(
                methods::GET_RUBRIC,
                request,
                |req| {
                    let role_id = required_id("role_id", req.role_id)?;
                    let version = match req.version {
                        0 => None,
                        v => Some(stored_version("version", v)?),
                    };
                    Ok((role_id, version))
                },
                async |caller, tx, (role_id, version)| {
                    let rubric = rubrics::get(tx, &caller.tenant, &role_id, version).await?;
                    Ok(pb::GetRubricResponse {
                        rubric: Some(rubric_to_pb(rubric)),
                    })
                },
            )
            .await
    }

    async fn list_rubrics(
        &self,
        request: Request<pb::ListRubricsRequest>,
    ) -> Result<Response<pb::ListRubricsResponse>, Status> {
        self.state
            .in_transaction(
                methods::LIST_RUBRICS,
                request,
                |req| {
                    let page = Page::<(String, i32)>::parse(&req)?;
                    let filter =
                        RubricFilter {
                            role_id: optional_id("role_id", req.role_id)?,
                            state: match req.state {
                                0 => None,
                                value => Some(state_from_pb(value).ok_or_else(|| {
                                    ApiError::field("state", "unknown rubric state")
                                })?),
                            },
                        };
                    Ok((page, filter))
                },
                async |caller, tx, (page, filter)| {
                    let (items, next_page_token) = page
                        .fetch(
                            &self.state,
                            &caller.tenant,
                            tx,
                            async |tx, after, limit| {
                                let after = after.as_ref().map(|(role, v)| (role.as_str(), *v));
                                rubrics::list(tx, &caller.tenant, after, limit, &filter).await
                            },
                            |r| (r.value.role_id.clone(), r.value.version),
                        )
                        .await?;
                    Ok(pb::ListRubricsResponse {
                        rubrics: items.into_iter().map(rubric_to_pb).collect(),
                        next_page_token,
                    })
                },
            )
            .await
    }

    async fn create_rubric(
        &self,
        request: Request<pb::CreateRubricRequest>,
    ) -> Result<Response<pb::CreateRubricResponse>, Status> {
        self.state
            .in_transaction(
                methods::CREATE_RUBRIC,
                request,
                |req| {
                    let request = request_key(&req)?;
                    let input = required(req.rubric, "rubric")?;
                    let role_id = required_id("rubric.role_id", input.role_id)?;
                    let items = nested("rubric", expectations_from_pb(input.competencies))?;
                    Ok((role_id, items, request))
                },
                async |caller, tx, (role_id, items, request)| {
                    check_competencies(tx, &caller.tenant, &items).await?;
                    let created =
                        rubrics::create(tx, &caller.tenant, &role_id, &items, request.as_ref())
                            .await?;
                    let version = created.value.version;
                    tx.audit(Resources::one(format!("roles/{role_id}/rubrics/{version}")));
                    Ok(pb::CreateRubricResponse {
                        rubric: Some(rubric_to_pb(created)),
                    })
                },
            )
            .await
    }

    async fn update_rubric(
        &self,
        request: Request<pb::UpdateRubricRequest>,
    ) -> Result<Response<pb::UpdateRubricResponse>, Status> {
        self.state
            .in_transaction(
                methods::UPDATE_RUBRIC,
                request,
                |req| {
                    let input = required(req.rubric, "rubric")?;
                    let update = Update::parse(
                        req.update_mask,
                        &input,
                        &RUBRIC_PATHS,
                        &input.etag,
                        "rubric.etag",
                    )?;
                    let role_id = required_id("rubric.role_id", input.role_id)?;
                    let version = stored_version("rubric.version", input.version)?;
                    let items = if update.mask.covers("competencies") {
                        Some(nested("rubric", expectations_from_pb(input.competencies))?)
                    } else {
                        None
                    };
                    Ok((role_id, version, items, update.expected))
                },
                async |caller, tx, (role_id, version, items, expected)| {
                    let tenant = &caller.tenant;
                    let items = match items {
                        Some(items) => items,
                        None => {
                            rubrics::get(tx, tenant, &role_id, Some(version))
                                .await?
                                .value
                                .competencies
                        }
                    };
                    check_competencies(tx, tenant, &items).await?;
                    let updated =
                        rubrics::update(tx, tenant, &role_id, version, expected, &items).await?;
                    tx.audit(Resources::one(format!("roles/{role_id}/rubrics/{version}")));
                    Ok(pb::UpdateRubricResponse {
                        rubric: Some(rubric_to_pb(updated)),
                    })
                },
            )
            .await
    }

    async fn delete_rubric(
        &self,
        request: Request<pb::DeleteRubricRequest>,
    ) -> Result<Response<pb::DeleteRubricResponse>, Status> {
        self.state
            .in_transaction(
                methods::DELETE_RUBRIC,
                request,
                |req| version_change(req.role_id, req.version, &req.etag),
                async |caller, tx, change| {
                    rubrics::delete(
                        tx,
                        &caller.tenant,
                        &change.role_id,
                        change.version,
                        change.expected,
                    )
                    .await?;
                    tx.audit(Resources::one(format!(
                        "roles/{}/rubrics/{}",
                        change.role_id, change.version
                    )));
                    Ok(pb::DeleteRubricResponse {})
                },
            )
            .await
    }

    async fn publish_rubric(
        &self,
        request: Request<pb::PublishRubricRequest>,
    ) -> Result<Response<pb::PublishRubricResponse>, Status> {
        self.state
            .in_transaction(
                methods::PUBLISH_RUBRIC,
                request,
                |req| version_change(req.role_id, req.version, &req.etag),
                async |caller, tx, change| {
                    let rubric = advance(tx, &caller.tenant, change, RubricAction::Publish).await?;
                    tx.audit(Resources::one(format!(
                        "roles/{}/rubrics/{}",
                        rubric.role_id, rubric.version
                    )));
                    Ok(pb::PublishRubricResponse {
                        rubric: Some(rubric),
                    })
                },
            )
            .await
    }

    async fn retire_rubric(
        &self,
        request: Request<pb::RetireRubricRequest>,
    ) -> Result<Response<pb::RetireRubricResponse>, Status> {
        self.state
            .in_transaction(
                methods::RETIRE_RUBRIC,
                request,
                |req| version_change(req.role_id, req.version, &req.etag),
                async |caller, tx, change| {
                    let rubric = advance(tx, &caller.tenant, change, RubricAction::Retire).await?;
                    tx.audit(Resources::one(format!(
                        "roles/{}/rubrics/{}",
                        rubric.role_id, rubric.version
                    )));
                    Ok(pb::RetireRubricResponse {
                        rubric: Some(rubric),
                    })
                },
            )
            .await
    }
}
