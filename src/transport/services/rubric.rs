//! `ladder.v1.RubricService`: competencies, roles and versioned rubrics.

use tonic::{Request, Response, Status};

use crate::domain::framework::{Role, RubricAction, RubricCompetency};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::proto::v1::rubric_service_server::RubricService;
use crate::storage::framework::{self as repo, Referenced, RubricFilter};
use crate::storage::{self, TenantId, TenantTx};
use crate::transport::convert::framework::{
    COMPETENCY_PATHS, ROLE_PATHS, RUBRIC_PATHS, blank_competency, blank_role, competency_to_pb,
    expectations_from_pb, merge_competency, merge_role, role_to_pb, rubric_to_pb, state_from_pb,
    track_to_pb,
};
use crate::transport::convert::request::{
    Mask, check_request_id, nested, page, required, required_id,
};
use crate::transport::error::ApiError;
use crate::transport::{AppState, answer};

#[derive(Debug, Clone)]
pub struct RubricApi {
    state: AppState,
}

impl RubricApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// The caller's tenant and the request's message.
    async fn open<T>(&self, request: Request<T>) -> Result<(TenantId, T), Status> {
        let tenant = self.state.caller(&request).await?.tenant;
        Ok((tenant, request.into_inner()))
    }

    async fn begin(&self, tenant: &TenantId) -> Result<TenantTx, ApiError> {
        Ok(self.state.db.begin(tenant).await?)
    }

    /// Publishes or retires one version.
    async fn advance(
        &self,
        tenant: &TenantId,
        role_id: &str,
        version: i32,
        etag: &str,
        action: RubricAction,
    ) -> Result<pb::Rubric, ApiError> {
        required_id("role_id", role_id)?;
        let version = stored_version(version)?;
        let mut tx = self.begin(tenant).await?;
        let rubric = repo::advance_rubric(&mut tx, tenant, role_id, version, etag, action).await?;
        storage::commit(tx).await?;
        Ok(rubric_to_pb(rubric))
    }
}

/// Refuses references to rows the tenant does not have, naming each field.
async fn check_references(
    tx: &mut TenantTx,
    tenant: &TenantId,
    kind: Referenced,
    ids: Vec<String>,
    field: impl Fn(usize) -> String,
) -> Result<(), ApiError> {
    let missing = repo::missing(tx, tenant, kind, &ids).await?;
    let what = match kind {
        Referenced::Competency => "competency",
        Referenced::Role => "role",
        Referenced::Track => "track",
    };
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
    check_references(
        tx,
        tenant,
        Referenced::Track,
        vec![role.track.clone()],
        |_| "role.track_id".to_string(),
    )
    .await?;
    let targets = role.transitions.iter().map(|t| t.to.clone()).collect();
    check_references(tx, tenant, Referenced::Role, targets, |k| {
        format!("role.transitions[{k}].to_role_id")
    })
    .await
}

async fn check_competencies(
    tx: &mut TenantTx,
    tenant: &TenantId,
    items: &[RubricCompetency],
) -> Result<(), ApiError> {
    let ids = items.iter().map(|c| c.competency_id.clone()).collect();
    check_references(tx, tenant, Referenced::Competency, ids, |k| {
        format!("rubric.competencies[{k}].competency_id")
    })
    .await
}

fn check_create(request_id: &str) -> Result<(), ApiError> {
    let mut v = Violations::new();
    check_request_id(&mut v, request_id);
    Ok(v.into_result(())?)
}

/// A version that names one stored version (not 0, "the published one").
fn stored_version(version: i32) -> Result<i32, ApiError> {
    if version > 0 {
        Ok(version)
    } else {
        Err(ApiError::field("version", "must be > 0"))
    }
}

/// The create_requests key of a rubric version.
fn rubric_key(role_id: &str, version: i32) -> String {
    format!("{role_id}/{version}")
}

#[tonic::async_trait]
impl RubricService for RubricApi {
    async fn get_competency(
        &self,
        request: Request<pb::GetCompetencyRequest>,
    ) -> Result<Response<pb::GetCompetencyResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            required_id("competency_id", &req.competency_id)?;
            let mut tx = self.begin(&tenant).await?;
            let c = repo::get_competency(&mut tx, &tenant, &req.competency_id).await?;
            Ok(pb::GetCompetencyResponse {
                competency: Some(competency_to_pb(c)),
            })
        })
        .await
    }

    async fn list_competencies(
        &self,
        request: Request<pb::ListCompetenciesRequest>,
    ) -> Result<Response<pb::ListCompetenciesResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            let mut tx = self.begin(&tenant).await?;
            let (items, next_page_token) = page(
                req.page_size,
                &req.page_token,
                async |after: Option<String>, limit| {
                    repo::list_competencies(&mut tx, &tenant, after.as_deref(), limit).await
                },
                |c| c.value.id.clone(),
            )
            .await?;
            Ok(pb::ListCompetenciesResponse {
                competencies: items.into_iter().map(competency_to_pb).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn create_competency(
        &self,
        request: Request<pb::CreateCompetencyRequest>,
    ) -> Result<Response<pb::CreateCompetencyResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            check_create(&req.request_id)?;
            let input = required(req.competency, "competency")?;
            let base = blank_competency(&input.id);
            let competency = nested(
                "competency",
                merge_competency(base, input, &Mask::all(&COMPETENCY_PATHS)),
            )?;
            let mut tx = self.begin(&tenant).await?;
            let created = repo::create_once(
                &mut tx,
                &tenant,
                "CreateCompetency",
                &req.request_id,
                async |conn| repo::create_competency(conn, &tenant, &competency).await,
                async |conn, id| repo::get_competency(conn, &tenant, id).await,
                |c| c.value.id.clone(),
            )
            .await?;
            storage::commit(tx).await?;
            Ok(pb::CreateCompetencyResponse {
                competency: Some(competency_to_pb(created)),
            })
        })
        .await
    }

    async fn update_competency(
        &self,
        request: Request<pb::UpdateCompetencyRequest>,
    ) -> Result<Response<pb::UpdateCompetencyResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            let mask = Mask::parse(req.update_mask, &COMPETENCY_PATHS)?;
            let input = required(req.competency, "competency")?;
            required_id("competency.id", &input.id)?;
            let mut tx = self.begin(&tenant).await?;
            let current = repo::get_competency(&mut tx, &tenant, &input.id).await?;
            repo::check_etag("competency", &input.id, &current.meta, &input.etag)?;
            let merged = nested("competency", merge_competency(current.value, input, &mask))?;
            let updated =
                repo::update_competency(&mut tx, &tenant, &merged, current.meta.revision).await?;
            storage::commit(tx).await?;
            Ok(pb::UpdateCompetencyResponse {
                competency: Some(competency_to_pb(updated)),
            })
        })
        .await
    }

    async fn delete_competency(
        &self,
        request: Request<pb::DeleteCompetencyRequest>,
    ) -> Result<Response<pb::DeleteCompetencyResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            required_id("competency_id", &req.competency_id)?;
            let mut tx = self.begin(&tenant).await?;
            repo::delete_competency(&mut tx, &tenant, &req.competency_id, &req.etag).await?;
            storage::commit(tx).await?;
            Ok(pb::DeleteCompetencyResponse {})
        })
        .await
    }

    async fn get_role(
        &self,
        request: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::GetRoleResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            required_id("role_id", &req.role_id)?;
            let mut tx = self.begin(&tenant).await?;
            let role = repo::get_role(&mut tx, &tenant, &req.role_id).await?;
            Ok(pb::GetRoleResponse {
                role: Some(role_to_pb(role)),
            })
        })
        .await
    }

    async fn list_tracks(
        &self,
        request: Request<pb::ListTracksRequest>,
    ) -> Result<Response<pb::ListTracksResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            let mut tx = self.begin(&tenant).await?;
            let (items, next_page_token) = page(
                req.page_size,
                &req.page_token,
                async |after: Option<String>, limit| {
                    storage::tracks::list(&mut tx, &tenant, after.as_deref(), limit).await
                },
                |t| t.id.clone(),
            )
            .await?;
            Ok(pb::ListTracksResponse {
                tracks: items.into_iter().map(track_to_pb).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            let track = (!req.track_id.is_empty()).then_some(req.track_id.as_str());
            if let Some(track) = track {
                required_id("track_id", track)?;
            }
            let mut tx = self.begin(&tenant).await?;
            let (items, next_page_token) = page(
                req.page_size,
                &req.page_token,
                async |after: Option<String>, limit| {
                    repo::list_roles(&mut tx, &tenant, after.as_deref(), limit, track).await
                },
                |r| r.value.id.clone(),
            )
            .await?;
            Ok(pb::ListRolesResponse {
                roles: items.into_iter().map(role_to_pb).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::CreateRoleResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            check_create(&req.request_id)?;
            let input = required(req.role, "role")?;
            let base = blank_role(&input.id);
            let role = nested("role", merge_role(base, input, &Mask::all(&ROLE_PATHS)))?;
            let mut tx = self.begin(&tenant).await?;
            check_role_references(&mut tx, &tenant, &role).await?;
            let created = repo::create_once(
                &mut tx,
                &tenant,
                "CreateRole",
                &req.request_id,
                async |conn| repo::create_role(conn, &tenant, &role).await,
                async |conn, id| repo::get_role(conn, &tenant, id).await,
                |r| r.value.id.clone(),
            )
            .await?;
            storage::commit(tx).await?;
            Ok(pb::CreateRoleResponse {
                role: Some(role_to_pb(created)),
            })
        })
        .await
    }

    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::UpdateRoleResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            let mask = Mask::parse(req.update_mask, &ROLE_PATHS)?;
            let input = required(req.role, "role")?;
            required_id("role.id", &input.id)?;
            let mut tx = self.begin(&tenant).await?;
            let current = repo::get_role(&mut tx, &tenant, &input.id).await?;
            repo::check_etag("role", &input.id, &current.meta, &input.etag)?;
            let merged = nested("role", merge_role(current.value, input, &mask))?;
            check_role_references(&mut tx, &tenant, &merged).await?;
            let updated =
                repo::update_role(&mut tx, &tenant, &merged, current.meta.revision).await?;
            storage::commit(tx).await?;
            Ok(pb::UpdateRoleResponse {
                role: Some(role_to_pb(updated)),
            })
        })
        .await
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            required_id("role_id", &req.role_id)?;
            let mut tx = self.begin(&tenant).await?;
            repo::delete_role(&mut tx, &tenant, &req.role_id, &req.etag).await?;
            storage::commit(tx).await?;
            Ok(pb::DeleteRoleResponse {})
        })
        .await
    }

    async fn get_rubric(
        &self,
        request: Request<pb::GetRubricRequest>,
    ) -> Result<Response<pb::GetRubricResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            required_id("role_id", &req.role_id)?;
            let version = match req.version {
                0 => None,
                v => Some(stored_version(v)?),
            };
            let mut tx = self.begin(&tenant).await?;
            let rubric = repo::get_rubric(&mut tx, &tenant, &req.role_id, version).await?;
            Ok(pb::GetRubricResponse {
                rubric: Some(rubric_to_pb(rubric)),
            })
        })
        .await
    }

    async fn list_rubrics(
        &self,
        request: Request<pb::ListRubricsRequest>,
    ) -> Result<Response<pb::ListRubricsResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            let filter = RubricFilter {
                role_id: Some(req.role_id).filter(|r| !r.is_empty()),
                state: match req.state {
                    0 => None,
                    value => Some(
                        state_from_pb(value)
                            .ok_or_else(|| ApiError::field("state", "unknown rubric state"))?,
                    ),
                },
            };
            let mut tx = self.begin(&tenant).await?;
            let (items, next_page_token) = page(
                req.page_size,
                &req.page_token,
                async |after: Option<(String, i32)>, limit| {
                    let after = after.as_ref().map(|(role, v)| (role.as_str(), *v));
                    repo::list_rubrics(&mut tx, &tenant, after, limit, &filter).await
                },
                |r| (r.value.role_id.clone(), r.value.version),
            )
            .await?;
            Ok(pb::ListRubricsResponse {
                rubrics: items.into_iter().map(rubric_to_pb).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn create_rubric(
        &self,
        request: Request<pb::CreateRubricRequest>,
    ) -> Result<Response<pb::CreateRubricResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            check_create(&req.request_id)?;
            let input = required(req.rubric, "rubric")?;
            required_id("rubric.role_id", &input.role_id)?;
            let items = nested("rubric", expectations_from_pb(input.competencies))?;
            let mut tx = self.begin(&tenant).await?;
            check_competencies(&mut tx, &tenant, &items).await?;
            let role_id = input.role_id;
            let created = repo::create_once(
                &mut tx,
                &tenant,
                "CreateRubric",
                &req.request_id,
                async |conn| repo::create_rubric(conn, &tenant, &role_id, &items).await,
                async |conn, key| {
                    let (role, version) = key
                        .rsplit_once('/')
                        .and_then(|(role, v)| Some((role, v.parse().ok()?)))
                        .ok_or_else(|| storage::StorageError::NotFound {
                            kind: "rubric",
                            id: key.to_string(),
                        })?;
                    repo::get_rubric(conn, &tenant, role, Some(version)).await
                },
                |r| rubric_key(&r.value.role_id, r.value.version),
            )
            .await?;
            storage::commit(tx).await?;
            Ok(pb::CreateRubricResponse {
                rubric: Some(rubric_to_pb(created)),
            })
        })
        .await
    }

    async fn update_rubric(
        &self,
        request: Request<pb::UpdateRubricRequest>,
    ) -> Result<Response<pb::UpdateRubricResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            let mask = Mask::parse(req.update_mask, &RUBRIC_PATHS)?;
            let input = required(req.rubric, "rubric")?;
            required_id("rubric.role_id", &input.role_id)?;
            let version = stored_version(input.version)
                .map_err(|_| ApiError::field("rubric.version", "must be > 0"))?;
            let mut tx = self.begin(&tenant).await?;
            let current = repo::get_rubric(&mut tx, &tenant, &input.role_id, Some(version)).await?;
            let items = if mask.has("competencies") {
                nested("rubric", expectations_from_pb(input.competencies))?
            } else {
                current.value.competencies
            };
            check_competencies(&mut tx, &tenant, &items).await?;
            let updated = repo::update_rubric(
                &mut tx,
                &tenant,
                &input.role_id,
                version,
                &input.etag,
                &items,
            )
            .await?;
            storage::commit(tx).await?;
            Ok(pb::UpdateRubricResponse {
                rubric: Some(rubric_to_pb(updated)),
            })
        })
        .await
    }

    async fn delete_rubric(
        &self,
        request: Request<pb::DeleteRubricRequest>,
    ) -> Result<Response<pb::DeleteRubricResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            required_id("role_id", &req.role_id)?;
            let version = stored_version(req.version)?;
            let mut tx = self.begin(&tenant).await?;
            repo::delete_rubric(&mut tx, &tenant, &req.role_id, version, &req.etag).await?;
            storage::commit(tx).await?;
            Ok(pb::DeleteRubricResponse {})
        })
        .await
    }

    async fn publish_rubric(
        &self,
        request: Request<pb::PublishRubricRequest>,
    ) -> Result<Response<pb::PublishRubricResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            let rubric = self
                .advance(
                    &tenant,
                    &req.role_id,
                    req.version,
                    &req.etag,
                    RubricAction::Publish,
                )
                .await?;
            Ok(pb::PublishRubricResponse {
                rubric: Some(rubric),
            })
        })
        .await
    }

    async fn retire_rubric(
        &self,
        request: Request<pb::RetireRubricRequest>,
    ) -> Result<Response<pb::RetireRubricResponse>, Status> {
        let (tenant, req) = self.open(request).await?;
        answer(async {
            let rubric = self
                .advance(
                    &tenant,
                    &req.role_id,
                    req.version,
                    &req.etag,
                    RubricAction::Retire,
                )
                .await?;
            Ok(pb::RetireRubricResponse {
                rubric: Some(rubric),
            })
        })
        .await
    }
}
