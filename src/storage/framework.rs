//! Competencies, roles and rubrics.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::domain::framework::{
    Catalog, Competency, LevelDescriptor, Role, Rubric, RubricAction, RubricCompetency,
    RubricState, Transition, TransitionKind,
};
use crate::storage::{StorageError, TenantId};

type CompetencyRow = (String, i16, f64, bool, Json<Vec<String>>);

/// A rubric competency with the (role, version) it belongs to.
type ExpectationRow = (String, i32, String, i16, f64, bool, Json<Vec<String>>);

fn rubric_competency(
    (competency_id, level, weight, critical, actions): CompetencyRow,
) -> RubricCompetency {
    RubricCompetency {
        competency_id,
        expected_level: level as u8,
        weight,
        critical,
        development_actions: actions.0,
    }
}

fn corrupt(what: &str, value: &str) -> StorageError {
    StorageError::Database(sqlx::Error::Protocol(format!(
        "unknown {what} {value:?} in the database"
    )))
}

/// A role's rubric: the latest published version when `version` is `None`.
pub async fn rubric(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: Option<i32>,
) -> Result<Rubric, StorageError> {
    Ok(get_rubric(conn, tenant, role_id, version).await?.value)
}

/// Every track and role (in framework order), each role with its
/// transitions, and every published rubric.
pub async fn catalog(conn: &mut PgConnection, tenant: &TenantId) -> Result<Catalog, StorageError> {
    let tracks = crate::storage::tracks::in_framework_order(conn, tenant).await?;
    let roles = roles_in_framework_order(conn, tenant).await?;
    let published = RubricFilter {
        role_id: None,
        state: Some(RubricState::Published),
    };
    let rubrics = list_rubrics(conn, tenant, None, ALL, &published).await?;
    Ok(Catalog {
        tracks,
        roles: roles.into_iter().map(|r| r.value).collect(),
        rubrics: rubrics.into_iter().map(|r| r.value).collect(),
    })
}

/// A limit that lists everything.
pub const ALL: i64 = i64::MAX;

/// What the database keeps about a stored row besides its content.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// Bumped by every change; the etag is derived from it.
    pub revision: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Rubric versions only: when the version was published.
    pub publish_time: Option<DateTime<Utc>>,
}

impl Meta {
    /// The opaque version token of AIP-154.
    pub fn etag(&self) -> String {
        crate::storage::etag::of(self.revision)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    pub value: T,
    pub meta: Meta,
}

/// Refuses a change made against an older version; an empty etag means "any".
pub fn check_etag(
    kind: &'static str,
    id: &str,
    meta: &Meta,
    etag: &str,
) -> Result<(), StorageError> {
    if etag.is_empty() || etag == meta.etag() {
        Ok(())
    } else {
        Err(StorageError::StaleEtag {
            kind,
            id: id.to_string(),
        })
    }
}

/// `Ok(None)` for a row that is not there.
pub fn optional<T>(result: Result<T, StorageError>) -> Result<Option<T>, StorageError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A write the schema refuses (a row still referenced, an immutable rubric
/// version) is a failed precondition, not a database fault.
fn refused(err: sqlx::Error) -> StorageError {
    match &err {
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("23000" | "23503")) => {
            StorageError::FailedPrecondition(db.message().to_string())
        }
        _ => StorageError::Database(err),
    }
}

fn stale(kind: &'static str, id: &str) -> StorageError {
    StorageError::StaleEtag {
        kind,
        id: id.to_string(),
    }
}

#[derive(sqlx::FromRow)]
struct MetaRow {
    revision: i64,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
}

impl MetaRow {
    fn meta(self, publish_time: Option<DateTime<Utc>>) -> Meta {
        Meta {
            revision: self.revision,
            create_time: self.create_time,
            update_time: self.update_time,
            publish_time,
        }
    }
}

// ---------------------------------------------------------------- competencies

macro_rules! competency_columns {
    () => {
        "id, name, description, levels, revision, create_time, update_time"
    };
}

const GET_COMPETENCY: &str = concat!(
    "SELECT ",
    competency_columns!(),
    " FROM competencies WHERE tenant_id = $1 AND id = $2"
);

const COMPETENCIES_IN_FRAMEWORK_ORDER: &str = concat!(
    "SELECT ",
    competency_columns!(),
    " FROM competencies WHERE tenant_id = $1 AND retire_time IS NULL ORDER BY position, id"
);

const LIST_COMPETENCIES: &str = concat!(
    "SELECT ",
    competency_columns!(),
    " FROM competencies WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3"
);

const INSERT_COMPETENCY: &str = concat!(
    "INSERT INTO competencies (tenant_id, id, name, description, levels) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT DO NOTHING RETURNING ",
    competency_columns!()
);

const UPDATE_COMPETENCY: &str = concat!(
    "UPDATE competencies SET name = $3, description = $4, levels = $5, \
         revision = revision + 1, update_time = now() \
     WHERE tenant_id = $1 AND id = $2 AND revision = $6 RETURNING ",
    competency_columns!()
);

const DELETE_COMPETENCY: &str =
    "DELETE FROM competencies WHERE tenant_id = $1 AND id = $2 AND revision = $3";

const COMPETENCY_USERS: &str = "SELECT role_id, version FROM rubric_competencies \
     WHERE tenant_id = $1 AND competency_id = $2 ORDER BY role_id, version LIMIT 5";

#[derive(sqlx::FromRow)]
struct CompetencyRecord {
    id: String,
    name: String,
    description: String,
    levels: Json<Vec<LevelDescriptor>>,
    #[sqlx(flatten)]
    meta: MetaRow,
}

impl From<CompetencyRecord> for Stored<Competency> {
    fn from(r: CompetencyRecord) -> Self {
        Stored {
            value: Competency {
                id: r.id,
                name: r.name,
                description: r.description,
                levels: r.levels.0,
            },
            meta: r.meta.meta(None),
        }
    }
}

pub async fn get_competency(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Stored<Competency>, StorageError> {
    let row: Option<CompetencyRecord> = sqlx::query_as(GET_COMPETENCY)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Stored::from).ok_or_else(|| StorageError::NotFound {
        kind: "competency",
        id: id.to_string(),
    })
}

/// Up to `limit` competencies after `after`, in id order.
pub async fn list_competencies(
    conn: &mut PgConnection,
    tenant: &TenantId,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Stored<Competency>>, StorageError> {
    let rows: Vec<CompetencyRecord> = sqlx::query_as(LIST_COMPETENCIES)
        .bind(&tenant.0)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(Stored::from).collect())
}

/// Every competency in use, in the order the tenant's framework lists them.
pub async fn competencies_in_framework_order(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<Stored<Competency>>, StorageError> {
    let rows: Vec<CompetencyRecord> = sqlx::query_as(COMPETENCIES_IN_FRAMEWORK_ORDER)
        .bind(&tenant.0)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(Stored::from).collect())
}

pub async fn create_competency(
    conn: &mut PgConnection,
    tenant: &TenantId,
    c: &Competency,
) -> Result<Stored<Competency>, StorageError> {
    let row: Option<CompetencyRecord> = sqlx::query_as(INSERT_COMPETENCY)
        .bind(&tenant.0)
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.description)
        .bind(Json(&c.levels))
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Stored::from)
        .ok_or_else(|| StorageError::AlreadyExists {
            kind: "competency",
            id: c.id.clone(),
        })
}

/// Replaces a competency last read at `revision`.
pub async fn update_competency(
    conn: &mut PgConnection,
    tenant: &TenantId,
    c: &Competency,
    revision: i64,
) -> Result<Stored<Competency>, StorageError> {
    let row: Option<CompetencyRecord> = sqlx::query_as(UPDATE_COMPETENCY)
        .bind(&tenant.0)
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.description)
        .bind(Json(&c.levels))
        .bind(revision)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Stored::from)
        .ok_or_else(|| stale("competency", &c.id))
}

/// Deletes a competency no rubric version refers to.
pub async fn delete_competency(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
    etag: &str,
) -> Result<(), StorageError> {
    let current = get_competency(conn, tenant, id).await?;
    check_etag("competency", id, &current.meta, etag)?;
    let users: Vec<(String, i32)> = sqlx::query_as(COMPETENCY_USERS)
        .bind(&tenant.0)
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    if !users.is_empty() {
        let users: Vec<String> = users
            .iter()
            .map(|(role, version)| format!("{role} version {version}"))
            .collect();
        return Err(StorageError::FailedPrecondition(format!(
            "competency {id} is used by rubrics ({}); remove it from them first",
            users.join(", ")
        )));
    }
    let deleted = sqlx::query(DELETE_COMPETENCY)
        .bind(&tenant.0)
        .bind(id)
        .bind(current.meta.revision)
        .execute(&mut *conn)
        .await
        .map_err(refused)?;
    if deleted.rows_affected() == 0 {
        return Err(stale("competency", id));
    }
    Ok(())
}

/// Which kind of row an id refers to.
#[derive(Debug, Clone, Copy)]
pub enum Referenced {
    Competency,
    Role,
    Track,
}

/// Retired rows are missing too: nothing new may refer to them.
const MISSING_COMPETENCIES: &str = "SELECT ids.id FROM unnest($2::text[]) AS ids(id) \
     WHERE NOT EXISTS (SELECT 1 FROM competencies c \
         WHERE c.tenant_id = $1 AND c.id = ids.id AND c.retire_time IS NULL)";

const MISSING_TRACKS: &str = "SELECT ids.id FROM unnest($2::text[]) AS ids(id) \
     WHERE NOT EXISTS (SELECT 1 FROM tracks t WHERE t.tenant_id = $1 AND t.id = ids.id)";

const MISSING_ROLES: &str = "SELECT ids.id FROM unnest($2::text[]) AS ids(id) \
     WHERE NOT EXISTS (SELECT 1 FROM roles r \
         WHERE r.tenant_id = $1 AND r.id = ids.id AND r.retire_time IS NULL)";

/// The ids among `ids` that the tenant has no row of.
pub async fn missing(
    conn: &mut PgConnection,
    tenant: &TenantId,
    kind: Referenced,
    ids: &[String],
) -> Result<Vec<String>, StorageError> {
    let sql = match kind {
        Referenced::Competency => MISSING_COMPETENCIES,
        Referenced::Role => MISSING_ROLES,
        Referenced::Track => MISSING_TRACKS,
    };
    Ok(sqlx::query_scalar(sql)
        .bind(&tenant.0)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?)
}

// ----------------------------------------------------------------------- roles

macro_rules! role_columns {
    () => {
        "id, name, track, seniority, description, revision, create_time, update_time"
    };
}

const GET_ROLE: &str = concat!(
    "SELECT ",
    role_columns!(),
    " FROM roles WHERE tenant_id = $1 AND id = $2"
);

const LIST_ROLES: &str = concat!(
    "SELECT ",
    role_columns!(),
    " FROM roles WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2) \
       AND ($4::text IS NULL OR track = $4) ORDER BY id LIMIT $3"
);

const ROLES_IN_FRAMEWORK_ORDER: &str = concat!(
    "SELECT ",
    role_columns!(),
    " FROM roles WHERE tenant_id = $1 AND retire_time IS NULL ORDER BY position, id"
);

const INSERT_ROLE: &str = concat!(
    "INSERT INTO roles (tenant_id, id, name, track, seniority, description) \
     VALUES ($1, $2, $3, $4, $6, $5) ON CONFLICT DO NOTHING RETURNING ",
    role_columns!()
);

const UPDATE_ROLE: &str = concat!(
    "UPDATE roles SET name = $3, track = $4, description = $5, seniority = $7, \
         revision = revision + 1, update_time = now() \
     WHERE tenant_id = $1 AND id = $2 AND revision = $6 RETURNING ",
    role_columns!()
);

const DELETE_ROLE: &str = "DELETE FROM roles WHERE tenant_id = $1 AND id = $2 AND revision = $3";

const LOCK_ROLE: &str = "SELECT id FROM roles WHERE tenant_id = $1 AND id = $2 FOR UPDATE";

const ROLE_TRANSITIONS: &str = "SELECT from_role_id, to_role_id, kind FROM role_transitions \
     WHERE tenant_id = $1 AND from_role_id = ANY($2) ORDER BY from_role_id, position";

const DELETE_TRANSITIONS: &str =
    "DELETE FROM role_transitions WHERE tenant_id = $1 AND from_role_id = $2";

const INSERT_TRANSITIONS: &str = "INSERT INTO role_transitions (tenant_id, from_role_id, to_role_id, kind, position) \
     SELECT $1, $2, t.to_role_id, t.kind, t.position::integer \
     FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS t(to_role_id, kind, position)";

const TRANSITIONS_INTO: &str = "SELECT from_role_id FROM role_transitions \
     WHERE tenant_id = $1 AND to_role_id = $2 ORDER BY from_role_id";

const FROZEN_VERSIONS: &str = "SELECT version FROM rubric_versions \
     WHERE tenant_id = $1 AND role_id = $2 AND state <> 'draft' ORDER BY version";

const DELETE_DRAFTS: &str =
    "DELETE FROM rubric_versions WHERE tenant_id = $1 AND role_id = $2 AND state = 'draft'";

#[derive(sqlx::FromRow)]
struct RoleRecord {
    id: String,
    name: String,
    track: String,
    seniority: i32,
    description: String,
    #[sqlx(flatten)]
    meta: MetaRow,
}

/// Roles with their transitions, in the order of `rows`.
async fn with_transitions(
    conn: &mut PgConnection,
    tenant: &TenantId,
    rows: Vec<RoleRecord>,
) -> Result<Vec<Stored<Role>>, StorageError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let transitions: Vec<(String, String, String)> = sqlx::query_as(ROLE_TRANSITIONS)
        .bind(&tenant.0)
        .bind(&ids)
        .fetch_all(&mut *conn)
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
                        .ok_or_else(|| corrupt("transition kind", kind))?,
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

fn role_not_found(id: &str) -> StorageError {
    StorageError::NotFound {
        kind: "role",
        id: id.to_string(),
    }
}

pub async fn get_role(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Stored<Role>, StorageError> {
    let row: Option<RoleRecord> = sqlx::query_as(GET_ROLE)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let row = row.ok_or_else(|| role_not_found(id))?;
    let mut roles = with_transitions(conn, tenant, vec![row]).await?;
    roles.pop().ok_or_else(|| role_not_found(id))
}

/// Up to `limit` roles after `after`, in id order, of `track` when given.
pub async fn list_roles(
    conn: &mut PgConnection,
    tenant: &TenantId,
    after: Option<&str>,
    limit: i64,
    track: Option<&str>,
) -> Result<Vec<Stored<Role>>, StorageError> {
    let rows: Vec<RoleRecord> = sqlx::query_as(LIST_ROLES)
        .bind(&tenant.0)
        .bind(after)
        .bind(limit)
        .bind(track)
        .fetch_all(&mut *conn)
        .await?;
    with_transitions(conn, tenant, rows).await
}

/// Every role, in the order the tenant's framework lists them.
pub async fn roles_in_framework_order(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<Stored<Role>>, StorageError> {
    let rows: Vec<RoleRecord> = sqlx::query_as(ROLES_IN_FRAMEWORK_ORDER)
        .bind(&tenant.0)
        .fetch_all(&mut *conn)
        .await?;
    with_transitions(conn, tenant, rows).await
}

/// Replaces a role's transitions; their targets must exist.
pub async fn set_transitions(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role: &Role,
) -> Result<(), StorageError> {
    sqlx::query(DELETE_TRANSITIONS)
        .bind(&tenant.0)
        .bind(&role.id)
        .execute(&mut *conn)
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
        .execute(&mut *conn)
        .await
        .map_err(refused)?;
    Ok(())
}

async fn insert_role_row(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role: &Role,
) -> Result<(), StorageError> {
    let row: Option<RoleRecord> = sqlx::query_as(INSERT_ROLE)
        .bind(&tenant.0)
        .bind(&role.id)
        .bind(&role.name)
        .bind(&role.track)
        .bind(&role.description)
        .bind(role.seniority)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(_) => Ok(()),
        None => Err(StorageError::AlreadyExists {
            kind: "role",
            id: role.id.clone(),
        }),
    }
}

async fn update_role_row(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role: &Role,
    revision: i64,
) -> Result<(), StorageError> {
    let row: Option<RoleRecord> = sqlx::query_as(UPDATE_ROLE)
        .bind(&tenant.0)
        .bind(&role.id)
        .bind(&role.name)
        .bind(&role.track)
        .bind(&role.description)
        .bind(revision)
        .bind(role.seniority)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(drop).ok_or_else(|| stale("role", &role.id))
}

/// Creates a role and its transitions, whose targets must exist.
pub async fn create_role(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role: &Role,
) -> Result<Stored<Role>, StorageError> {
    insert_role_row(conn, tenant, role).await?;
    set_transitions(conn, tenant, role).await?;
    get_role(conn, tenant, &role.id).await
}

/// Replaces a role last read at `revision`, transitions included.
pub async fn update_role(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role: &Role,
    revision: i64,
) -> Result<Stored<Role>, StorageError> {
    update_role_row(conn, tenant, role, revision).await?;
    set_transitions(conn, tenant, role).await?;
    get_role(conn, tenant, &role.id).await
}

/// Deletes a role that no transition leads to and that has no rubric
/// version but drafts (which go with it).
pub async fn delete_role(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
    etag: &str,
) -> Result<(), StorageError> {
    lock_role(conn, tenant, id).await?;
    let current = get_role(conn, tenant, id).await?;
    check_etag("role", id, &current.meta, etag)?;
    let sources: Vec<String> = sqlx::query_scalar(TRANSITIONS_INTO)
        .bind(&tenant.0)
        .bind(id)
        .fetch_all(&mut *conn)
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
        .fetch_all(&mut *conn)
        .await?;
    if !frozen.is_empty() {
        return Err(StorageError::FailedPrecondition(format!(
            "role {id} has published rubric versions ({frozen:?}), which assessments cite; it cannot be deleted"
        )));
    }
    sqlx::query(DELETE_DRAFTS)
        .bind(&tenant.0)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(DELETE_ROLE)
        .bind(&tenant.0)
        .bind(id)
        .bind(current.meta.revision)
        .execute(&mut *conn)
        .await
        .map_err(refused)?;
    Ok(())
}

/// Serialises the rubric writes of one role (version numbers, the one
/// published version), and says whether the role exists.
async fn lock_role(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<(), StorageError> {
    let found: Option<String> = sqlx::query_scalar(LOCK_ROLE)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    found.map(drop).ok_or_else(|| role_not_found(id))
}

// --------------------------------------------------------------------- rubrics

macro_rules! version_columns {
    () => {
        "role_id, version, state, revision, create_time, update_time, publish_time"
    };
}

const GET_VERSION: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM rubric_versions WHERE tenant_id = $1 AND role_id = $2 \
       AND (($3::integer IS NULL AND state = 'published') OR version = $3)"
);

const LIST_VERSIONS: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM rubric_versions WHERE tenant_id = $1 \
       AND ($2::text IS NULL OR (role_id, version) > ($2, $3::integer)) \
       AND ($5::text IS NULL OR role_id = $5) AND ($6::text IS NULL OR state = $6) \
     ORDER BY role_id, version LIMIT $4"
);

const VERSION_EXPECTATIONS: &str = "SELECT role_id, version, competency_id, expected_level, weight, critical, development_actions \
     FROM rubric_competencies \
     WHERE tenant_id = $1 AND (role_id, version) IN (SELECT * FROM unnest($2::text[], $3::integer[])) \
     ORDER BY role_id, version, position";

const NEXT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) + 1 FROM rubric_versions \
     WHERE tenant_id = $1 AND role_id = $2";

const INSERT_VERSION: &str = "INSERT INTO rubric_versions (tenant_id, role_id, version, state) \
     VALUES ($1, $2, $3, 'draft')";

const INSERT_EXPECTATIONS: &str = "INSERT INTO rubric_competencies \
         (tenant_id, role_id, version, competency_id, position, expected_level, weight, critical, development_actions) \
     SELECT $1, $2, $3, e.competency_id, e.position::integer, e.expected_level, e.weight, e.critical, e.development_actions \
     FROM unnest($4::text[], $5::smallint[], $6::double precision[], $7::boolean[], $8::jsonb[]) \
         WITH ORDINALITY AS e(competency_id, expected_level, weight, critical, development_actions, position)";

const DELETE_EXPECTATIONS: &str =
    "DELETE FROM rubric_competencies WHERE tenant_id = $1 AND role_id = $2 AND version = $3";

const SET_VERSION_STATE: &str = "UPDATE rubric_versions SET state = $4, revision = revision + 1, update_time = now(), \
         publish_time = CASE WHEN $4 = 'published' THEN now() ELSE publish_time END \
     WHERE tenant_id = $1 AND role_id = $2 AND version = $3 AND revision = $5";

const SUPERSEDE: &str = "UPDATE rubric_versions SET state = 'superseded', revision = revision + 1, update_time = now() \
     WHERE tenant_id = $1 AND role_id = $2 AND state = 'published'";

const DELETE_VERSION: &str = "DELETE FROM rubric_versions \
     WHERE tenant_id = $1 AND role_id = $2 AND version = $3 AND revision = $4";

#[derive(sqlx::FromRow)]
struct VersionRecord {
    role_id: String,
    version: i32,
    state: String,
    publish_time: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    meta: MetaRow,
}

/// Rubric versions with their expectations, in the order of `rows`.
async fn with_expectations(
    conn: &mut PgConnection,
    tenant: &TenantId,
    rows: Vec<VersionRecord>,
) -> Result<Vec<Stored<Rubric>>, StorageError> {
    let (roles, versions): (Vec<&str>, Vec<i32>) =
        rows.iter().map(|r| (r.role_id.as_str(), r.version)).unzip();
    let expectations: Vec<ExpectationRow> = sqlx::query_as(VERSION_EXPECTATIONS)
        .bind(&tenant.0)
        .bind(&roles)
        .bind(&versions)
        .fetch_all(&mut *conn)
        .await?;
    let mut by_version: HashMap<(String, i32), Vec<RubricCompetency>> = HashMap::new();
    for (role_id, version, id, level, weight, critical, actions) in expectations {
        by_version
            .entry((role_id, version))
            .or_default()
            .push(rubric_competency((id, level, weight, critical, actions)));
    }
    let mut rubrics = Vec::with_capacity(rows.len());
    for r in rows {
        let competencies = by_version
            .remove(&(r.role_id.clone(), r.version))
            .unwrap_or_default();
        rubrics.push(Stored {
            value: Rubric {
                state: RubricState::parse(&r.state)
                    .ok_or_else(|| corrupt("rubric state", &r.state))?,
                role_id: r.role_id,
                version: r.version,
                competencies,
            },
            meta: r.meta.meta(r.publish_time),
        });
    }
    Ok(rubrics)
}

/// A rubric version; the published one when `version` is `None`.
pub async fn get_rubric(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: Option<i32>,
) -> Result<Stored<Rubric>, StorageError> {
    let not_found = || StorageError::NotFound {
        kind: "rubric",
        id: match version {
            Some(v) => format!("{role_id} version {v}"),
            None => format!("{role_id} (published)"),
        },
    };
    let row: Option<VersionRecord> = sqlx::query_as(GET_VERSION)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?;
    let row = row.ok_or_else(not_found)?;
    let mut rubrics = with_expectations(conn, tenant, vec![row]).await?;
    rubrics.pop().ok_or_else(not_found)
}

/// Which rubric versions a listing returns.
#[derive(Debug, Clone, Default)]
pub struct RubricFilter {
    pub role_id: Option<String>,
    pub state: Option<RubricState>,
}

/// Up to `limit` rubric versions after `after` in (role, version) order.
pub async fn list_rubrics(
    conn: &mut PgConnection,
    tenant: &TenantId,
    after: Option<(&str, i32)>,
    limit: i64,
    filter: &RubricFilter,
) -> Result<Vec<Stored<Rubric>>, StorageError> {
    let rows: Vec<VersionRecord> = sqlx::query_as(LIST_VERSIONS)
        .bind(&tenant.0)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .bind(filter.role_id.as_deref())
        .bind(filter.state.map(RubricState::as_str))
        .fetch_all(&mut *conn)
        .await?;
    with_expectations(conn, tenant, rows).await
}

async fn insert_expectations(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: i32,
    items: &[RubricCompetency],
) -> Result<(), StorageError> {
    let ids: Vec<&str> = items.iter().map(|c| c.competency_id.as_str()).collect();
    let levels: Vec<i16> = items.iter().map(|c| i16::from(c.expected_level)).collect();
    let weights: Vec<f64> = items.iter().map(|c| c.weight).collect();
    let critical: Vec<bool> = items.iter().map(|c| c.critical).collect();
    let actions: Vec<Json<&Vec<String>>> =
        items.iter().map(|c| Json(&c.development_actions)).collect();
    sqlx::query(INSERT_EXPECTATIONS)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .bind(&ids)
        .bind(&levels)
        .bind(&weights)
        .bind(&critical)
        .bind(&actions)
        .execute(&mut *conn)
        .await
        .map_err(refused)?;
    Ok(())
}

/// Creates the next draft version of a role's rubric; its competencies must exist.
pub async fn create_rubric(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    items: &[RubricCompetency],
) -> Result<Stored<Rubric>, StorageError> {
    lock_role(conn, tenant, role_id).await?;
    let version: i32 = sqlx::query_scalar(NEXT_VERSION)
        .bind(&tenant.0)
        .bind(role_id)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(INSERT_VERSION)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    insert_expectations(conn, tenant, role_id, version, items).await?;
    get_rubric(conn, tenant, role_id, Some(version)).await
}

/// The version `action` applies to, locked, after checking its etag and
/// that its state allows the action; also returns the state it moves to.
async fn version_for(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: i32,
    etag: &str,
    action: RubricAction,
) -> Result<(Stored<Rubric>, RubricState), StorageError> {
    lock_role(conn, tenant, role_id).await?;
    let current = get_rubric(conn, tenant, role_id, Some(version)).await?;
    check_etag(
        "rubric",
        &format!("{role_id} version {version}"),
        &current.meta,
        etag,
    )?;
    let next = current.value.state.after(action).map_err(|why| {
        StorageError::FailedPrecondition(format!("rubric {role_id} version {version}: {why}"))
    })?;
    Ok((current, next))
}

async fn set_state(
    conn: &mut PgConnection,
    tenant: &TenantId,
    current: &Stored<Rubric>,
    state: RubricState,
) -> Result<Stored<Rubric>, StorageError> {
    let Rubric {
        role_id, version, ..
    } = &current.value;
    let updated = sqlx::query(SET_VERSION_STATE)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .bind(state.as_str())
        .bind(current.meta.revision)
        .execute(&mut *conn)
        .await
        .map_err(refused)?;
    if updated.rows_affected() == 0 {
        return Err(stale("rubric", &format!("{role_id} version {version}")));
    }
    get_rubric(conn, tenant, role_id, Some(*version)).await
}

/// Replaces the competencies of a draft.
pub async fn update_rubric(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: i32,
    etag: &str,
    items: &[RubricCompetency],
) -> Result<Stored<Rubric>, StorageError> {
    let (current, state) =
        version_for(conn, tenant, role_id, version, etag, RubricAction::Edit).await?;
    sqlx::query(DELETE_EXPECTATIONS)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .execute(&mut *conn)
        .await
        .map_err(refused)?;
    insert_expectations(conn, tenant, role_id, version, items).await?;
    set_state(conn, tenant, &current, state).await
}

/// Deletes a draft; published versions are never deleted.
pub async fn delete_rubric(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: i32,
    etag: &str,
) -> Result<(), StorageError> {
    let (current, _) =
        version_for(conn, tenant, role_id, version, etag, RubricAction::Delete).await?;
    sqlx::query(DELETE_VERSION)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .bind(current.meta.revision)
        .execute(&mut *conn)
        .await
        .map_err(refused)?;
    Ok(())
}

/// Publishes a draft (superseding the role's published version) or retires a
/// published or superseded version.
pub async fn advance_rubric(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: i32,
    etag: &str,
    action: RubricAction,
) -> Result<Stored<Rubric>, StorageError> {
    let (current, state) = version_for(conn, tenant, role_id, version, etag, action).await?;
    if state == RubricState::Published {
        sqlx::query(SUPERSEDE)
            .bind(&tenant.0)
            .bind(role_id)
            .execute(&mut *conn)
            .await
            .map_err(refused)?;
    }
    set_state(conn, tenant, &current, state).await
}

// ------------------------------------------------------------ idempotent creates

const CLAIM_REQUEST: &str = "INSERT INTO create_requests (tenant_id, method, request_id, resource_id) \
     VALUES ($1, $2, $3, '') ON CONFLICT DO NOTHING";

const CLAIMED_RESOURCE: &str = "SELECT resource_id FROM create_requests \
     WHERE tenant_id = $1 AND method = $2 AND request_id = $3";

const RECORD_REQUEST: &str = "UPDATE create_requests SET resource_id = $4 \
     WHERE tenant_id = $1 AND method = $2 AND request_id = $3";

/// Claims a create's request id for this transaction. `Some(resource id)`
/// when an earlier create with this id committed: the caller returns that
/// resource instead. A concurrent retry waits here until the first commits.
async fn claim_request(
    conn: &mut PgConnection,
    tenant: &TenantId,
    method: &str,
    request_id: &str,
) -> Result<Option<String>, StorageError> {
    let claimed = sqlx::query(CLAIM_REQUEST)
        .bind(&tenant.0)
        .bind(method)
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    Ok(Some(
        sqlx::query_scalar(CLAIMED_RESOURCE)
            .bind(&tenant.0)
            .bind(method)
            .bind(request_id)
            .fetch_one(&mut *conn)
            .await?,
    ))
}

/// Records what a claimed create made.
async fn record_request(
    conn: &mut PgConnection,
    tenant: &TenantId,
    method: &str,
    request_id: &str,
    resource_id: &str,
) -> Result<(), StorageError> {
    sqlx::query(RECORD_REQUEST)
        .bind(&tenant.0)
        .bind(method)
        .bind(request_id)
        .bind(resource_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Runs `create` once per request id: a retry with the same id gets the
/// resource the first call made (read by `fetch` from the id `key` gives),
/// and nothing is written twice. Without a request id it just creates.
pub async fn create_once<T>(
    conn: &mut PgConnection,
    tenant: &TenantId,
    method: &str,
    request_id: &str,
    create: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StorageError>,
    fetch: impl AsyncFnOnce(&mut PgConnection, &str) -> Result<T, StorageError>,
    key: impl FnOnce(&T) -> String,
) -> Result<T, StorageError> {
    if request_id.is_empty() {
        return create(conn).await;
    }
    if let Some(id) = claim_request(conn, tenant, method, request_id).await? {
        return fetch(conn, &id).await;
    }
    let created = create(conn).await?;
    record_request(conn, tenant, method, request_id, &key(&created)).await?;
    Ok(created)
}
