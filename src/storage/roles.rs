//! Roles and the transitions between them.

use sqlx::PgConnection;

use crate::domain::framework::{Role, Transition, TransitionKind};
use crate::storage::idempotency::{self, CreateMethod, RequestKey};
use crate::storage::stored::{self, MetaRow, Stored, expected_revision};
use crate::storage::traced::{statement, traced};
use crate::storage::{StorageError, TenantId};

macro_rules! columns {
    () => {
        "id, name, track, seniority, description, revision, create_time, update_time"
    };
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    id: String,
    name: String,
    track: String,
    seniority: i32,
    description: String,
    #[sqlx(flatten)]
    meta: MetaRow,
}

const TRANSITIONS: &str = "SELECT from_role_id, to_role_id, kind FROM role_transitions \
     WHERE tenant_id = $1 AND from_role_id = ANY($2) ORDER BY from_role_id, position";

/// Roles with their transitions, in the order of `rows`.
async fn with_transitions(
    conn: &mut PgConnection,
    tenant: &TenantId,
    rows: Vec<RoleRow>,
) -> Result<Vec<Stored<Role>>, StorageError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let transitions: Vec<(String, String, String)> = sqlx::query_as(TRANSITIONS)
        .bind(&tenant.0)
        .bind(&ids)
        .fetch_all(traced!(conn, TRANSITIONS))
        .await?;
    let mut roles = Vec::with_capacity(rows.len());
    for r in rows {
        let mine = transitions
            .iter()
            .filter(|(from, _, _)| *from == r.id)
            .map(|(_, to, kind)| {
                Ok(Transition {
                    to: to.clone(),
                    kind: TransitionKind::parse(kind)
                        .ok_or_else(|| StorageError::corrupt("transition kind", kind))?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        roles.push(Stored {
            value: Role {
                track: r.track,
                seniority: r.seniority,
                transitions: mine,
                id: r.id,
                name: r.name,
                description: r.description,
            },
            meta: r.meta.meta(None),
        });
    }
    Ok(roles)
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM roles WHERE tenant_id = $1 AND id = $2"
);

pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Stored<Role>, StorageError> {
    let row: Option<RoleRow> = sqlx::query_as(GET)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(traced!(conn, GET))
        .await?;
    let row = row.ok_or_else(|| StorageError::not_found("role", id))?;
    let mut roles = with_transitions(conn, tenant, vec![row]).await?;
    roles
        .pop()
        .ok_or_else(|| StorageError::not_found("role", id))
}

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM roles WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2) \
       AND ($4::text IS NULL OR track = $4) ORDER BY id LIMIT $3"
);

/// Up to `limit` roles after `after`, in id order, of `track` when given.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    after: Option<&str>,
    limit: i64,
    track: Option<&str>,
) -> Result<Vec<Stored<Role>>, StorageError> {
    let rows: Vec<RoleRow> = sqlx::query_as(LIST)
        .bind(&tenant.0)
        .bind(after)
        .bind(limit)
        .bind(track)
        .fetch_all(traced!(conn, LIST))
        .await?;
    with_transitions(conn, tenant, rows).await
}

const IN_FRAMEWORK_ORDER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM roles WHERE tenant_id = $1 AND retire_time IS NULL ORDER BY position, id"
);

/// Every role in use (not retired), in the order the tenant's framework lists them.
pub async fn in_framework_order(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<Stored<Role>>, StorageError> {
    let rows: Vec<RoleRow> = sqlx::query_as(IN_FRAMEWORK_ORDER)
        .bind(&tenant.0)
        .fetch_all(traced!(conn, IN_FRAMEWORK_ORDER))
        .await?;
    with_transitions(conn, tenant, rows).await
}

const DELETE_TRANSITIONS: &str =
    "DELETE FROM role_transitions WHERE tenant_id = $1 AND from_role_id = $2";

const INSERT_TRANSITIONS: &str = "INSERT INTO role_transitions (tenant_id, from_role_id, to_role_id, kind, position) \
     SELECT $1, $2, t.to_role_id, t.kind, t.position::integer \
     FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS t(to_role_id, kind, position)";

/// Replaces a role's transitions; their targets must exist.
pub async fn set_transitions(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role: &Role,
) -> Result<(), StorageError> {
    sqlx::query(DELETE_TRANSITIONS)
        .bind(&tenant.0)
        .bind(&role.id)
        .execute(traced!(conn, DELETE_TRANSITIONS))
        .await?;
    let (targets, kinds): (Vec<&str>, Vec<&str>) = role
        .transitions
        .iter()
        .map(|t| (t.to.as_str(), t.kind.as_str()))
        .unzip();
    sqlx::query(INSERT_TRANSITIONS)
        .bind(&tenant.0)
        .bind(&role.id)
        .bind(&targets)
        .bind(&kinds)
        .execute(traced!(conn, INSERT_TRANSITIONS))
        .await?;
    Ok(())
}

const INSERT: &str = "INSERT INTO roles (tenant_id, id, name, track, description, seniority) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";

/// Creates a role and its transitions, whose targets must exist; a retry
/// with the same request id and request gets the one the first call made.
pub async fn create(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role: &Role,
    request: Option<&RequestKey>,
) -> Result<Stored<Role>, StorageError> {
    idempotency::create_once(
        conn,
        tenant,
        CreateMethod::Role,
        request,
        async |conn| {
            let inserted = sqlx::query(INSERT)
                .bind(&tenant.0)
                .bind(&role.id)
                .bind(&role.name)
                .bind(&role.track)
                .bind(&role.description)
                .bind(role.seniority)
                .execute(traced!(conn, INSERT))
                .await?;
            if inserted.rows_affected() == 0 {
                return Err(StorageError::AlreadyExists {
                    kind: "role",
                    id: role.id.clone(),
                });
            }
            set_transitions(conn, tenant, role).await?;
            get(conn, tenant, &role.id).await
        },
        async |conn, id| get(conn, tenant, id).await,
        |created| created.value.id.clone(),
    )
    .await
}

const UPDATE: &str = "UPDATE roles SET name = $3, track = $4, description = $5, seniority = $7, \
         revision = revision + 1, update_time = now() \
     WHERE tenant_id = $1 AND id = $2 AND revision = $6";

/// Replaces a role, transitions included, if it is still at `revision`.
pub async fn update(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role: &Role,
    revision: i64,
) -> Result<Stored<Role>, StorageError> {
    let updated = sqlx::query(UPDATE)
        .bind(&tenant.0)
        .bind(&role.id)
        .bind(&role.name)
        .bind(&role.track)
        .bind(&role.description)
        .bind(revision)
        .bind(role.seniority)
        .execute(traced!(conn, UPDATE))
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StorageError::stale("role", &role.id));
    }
    set_transitions(conn, tenant, role).await?;
    get(conn, tenant, &role.id).await
}

const TRANSITIONS_INTO: &str = "SELECT from_role_id FROM role_transitions \
     WHERE tenant_id = $1 AND to_role_id = $2 ORDER BY from_role_id";

const FROZEN_VERSIONS: &str = "SELECT version FROM rubric_versions \
     WHERE tenant_id = $1 AND role_id = $2 AND state <> 'draft' ORDER BY version";

const DELETE_DRAFTS: &str =
    "DELETE FROM rubric_versions WHERE tenant_id = $1 AND role_id = $2 AND state = 'draft'";

const DELETE: &str = "DELETE FROM roles WHERE tenant_id = $1 AND id = $2 AND revision = $3";

/// Deletes a role that no transition leads to and that has no rubric
/// version but drafts (which go with it); `expected` is the revision the
/// caller last saw, if it says.
pub async fn delete(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
    expected: Option<i64>,
) -> Result<(), StorageError> {
    lock(conn, tenant, id).await?;
    let current = get(conn, tenant, id).await?;
    let revision = expected_revision("role", id, current.meta.revision, expected)?;
    let sources: Vec<String> = sqlx::query_scalar(TRANSITIONS_INTO)
        .bind(&tenant.0)
        .bind(id)
        .fetch_all(traced!(conn, TRANSITIONS_INTO))
        .await?;
    if !sources.is_empty() {
        return Err(StorageError::FailedPrecondition(format!(
            "role {id} is the target of transitions from {}; remove those first",
            sources.join(", ")
        )));
    }
    let frozen: Vec<i32> = sqlx::query_scalar(FROZEN_VERSIONS)
        .bind(&tenant.0)
        .bind(id)
        .fetch_all(traced!(conn, FROZEN_VERSIONS))
        .await?;
    if !frozen.is_empty() {
        return Err(StorageError::FailedPrecondition(format!(
            "role {id} has published rubric versions ({frozen:?}), which assessments cite; it cannot be deleted"
        )));
    }
    sqlx::query(DELETE_DRAFTS)
        .bind(&tenant.0)
        .bind(id)
        .execute(traced!(conn, DELETE_DRAFTS))
        .await?;
    let deleted = sqlx::query(DELETE)
        .bind(&tenant.0)
        .bind(id)
        .bind(revision)
        .execute(traced!(conn, DELETE))
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(StorageError::stale("role", id));
    }
    Ok(())
}

const LOCK: &str = "SELECT id FROM roles WHERE tenant_id = $1 AND id = $2 FOR UPDATE";

/// Serialises the rubric writes of one role (version numbers, the one
/// published version), and says whether the role exists.
pub(super) async fn lock(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<(), StorageError> {
    let found: Option<String> = sqlx::query_scalar(LOCK)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(traced!(conn, LOCK))
        .await?;
    found
        .map(drop)
        .ok_or_else(|| StorageError::not_found("role", id))
}

/// Retired roles are missing too: nothing new may refer to them.
const MISSING: &str = "SELECT ids.id FROM unnest($2::text[]) AS ids(id) \
     WHERE NOT EXISTS (SELECT 1 FROM roles r \
         WHERE r.tenant_id = $1 AND r.id = ids.id AND r.retire_time IS NULL)";

/// The ids among `ids` that the tenant has no role of.
pub async fn missing(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[String],
) -> Result<Vec<String>, StorageError> {
    stored::missing(conn, statement!(MISSING), tenant, ids).await
}
