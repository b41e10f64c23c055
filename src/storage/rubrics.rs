//! Rubric versions: what a role expects, competency by competency, and the
//! draft -> published -> superseded/retired lifecycle.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::domain::framework::{
    LevelDescriptor, PublishedText, Rubric, RubricAction, RubricCompetency, RubricState,
};
use crate::storage::idempotency::{self, CreateMethod, RequestKey};
use crate::storage::stored::{MetaRow, Stored, expected_revision};
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId, roles};

macro_rules! columns {
    () => {
        "role_id, version, state, revision, create_time, update_time, publish_time"
    };
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    role_id: String,
    version: i32,
    state: String,
    publish_time: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    meta: MetaRow,
}

/// A rubric competency with the (role, version) it belongs to.
#[derive(sqlx::FromRow)]
struct ExpectationRow {
    role_id: String,
    version: i32,
    competency_id: String,
    expected_level: i16,
    weight: f64,
    critical: bool,
    development_actions: Json<Vec<String>>,
    published_text: Option<Json<FrozenText>>,
}

/// `rubric_competencies.published_text`: the competency's words at publication.
#[derive(serde::Deserialize)]
struct FrozenText {
    name: String,
    levels: Vec<LevelDescriptor>,
}

/// How errors and create requests name one version.
fn version_id(role_id: &str, version: i32) -> String {
    format!("{role_id} version {version}")
}

const EXPECTATIONS: &str = "SELECT role_id, version, competency_id, expected_level, weight, critical, \
         development_actions, published_text \
     FROM rubric_competencies \
     WHERE tenant_id = $1 AND (role_id, version) IN (SELECT * FROM unnest($2::text[], $3::integer[])) \
     ORDER BY role_id, version, position";

/// Rubric versions with their expectations, in the order of `rows`.
async fn with_expectations(
    conn: &mut PgConnection,
    tenant: &TenantId,
    rows: Vec<VersionRow>,
) -> Result<Vec<Stored<Rubric>>, StorageError> {
    let (roles, versions): (Vec<&str>, Vec<i32>) =
        rows.iter().map(|r| (r.role_id.as_str(), r.version)).unzip();
    let expectations: Vec<ExpectationRow> = sqlx::query_as(EXPECTATIONS)
        .bind(&tenant.0)
        .bind(&roles)
        .bind(&versions)
        .fetch_all(traced!(conn, EXPECTATIONS))
        .await?;
    let mut by_version: HashMap<(String, i32), (Vec<RubricCompetency>, Vec<PublishedText>)> =
        HashMap::new();
    for e in expectations {
        let expected_level = u8::try_from(e.expected_level)
            .map_err(|_| StorageError::corrupt("expected level", &e.expected_level.to_string()))?;
        let (competencies, texts) = by_version.entry((e.role_id, e.version)).or_default();
        if let Some(Json(text)) = e.published_text {
            texts.push(PublishedText {
                competency_id: e.competency_id.clone(),
                name: text.name,
                levels: text.levels,
            });
        }
        competencies.push(RubricCompetency {
            competency_id: e.competency_id,
            expected_level,
            weight: e.weight,
            critical: e.critical,
            development_actions: e.development_actions.0,
        });
    }
    let mut rubrics = Vec::with_capacity(rows.len());
    for r in rows {
        let (competencies, published_texts) = by_version
            .remove(&(r.role_id.clone(), r.version))
            .unwrap_or_default();
        rubrics.push(Stored {
            value: Rubric {
                state: RubricState::parse(&r.state)
                    .ok_or_else(|| StorageError::corrupt("rubric state", &r.state))?,
                role_id: r.role_id,
                version: r.version,
                competencies,
                published_texts,
            },
            meta: r.meta.meta(r.publish_time),
        });
    }
    Ok(rubrics)
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM rubric_versions WHERE tenant_id = $1 AND role_id = $2 \
       AND (($3::integer IS NULL AND state = 'published') OR version = $3)"
);

/// A rubric version; the published one when `version` is `None`.
pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: Option<i32>,
) -> Result<Stored<Rubric>, StorageError> {
    let not_found = || {
        let id = match version {
            Some(v) => version_id(role_id, v),
            None => format!("{role_id} (published)"),
        };
        StorageError::not_found("rubric", id)
    };
    let row: Option<VersionRow> = sqlx::query_as(GET)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .fetch_optional(traced!(conn, GET))
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

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM rubric_versions WHERE tenant_id = $1 \
       AND ($2::text IS NULL OR (role_id, version) > ($2, $3::integer)) \
       AND ($5::text IS NULL OR role_id = $5) AND ($6::text IS NULL OR state = $6) \
     ORDER BY role_id, version LIMIT $4"
);

/// Up to `limit` rubric versions after `after` in (role, version) order.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    after: Option<(&str, i32)>,
    limit: i64,
    filter: &RubricFilter,
) -> Result<Vec<Stored<Rubric>>, StorageError> {
    let rows: Vec<VersionRow> = sqlx::query_as(LIST)
        .bind(&tenant.0)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .bind(filter.role_id.as_deref())
        .bind(filter.state.map(RubricState::as_str))
        .fetch_all(traced!(conn, LIST))
        .await?;
    with_expectations(conn, tenant, rows).await
}

const INSERT_EXPECTATIONS: &str = "INSERT INTO rubric_competencies \
         (tenant_id, role_id, version, competency_id, position, expected_level, weight, critical, development_actions) \
     SELECT $1, $2, $3, e.competency_id, e.position::integer, e.expected_level, e.weight, e.critical, e.development_actions \
     FROM unnest($4::text[], $5::smallint[], $6::double precision[], $7::boolean[], $8::jsonb[]) \
         WITH ORDINALITY AS e(competency_id, expected_level, weight, critical, development_actions, position)";

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
        .execute(traced!(conn, INSERT_EXPECTATIONS))
        .await?;
    Ok(())
}

const NEXT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) + 1 FROM rubric_versions \
     WHERE tenant_id = $1 AND role_id = $2";

const INSERT_VERSION: &str = "INSERT INTO rubric_versions (tenant_id, role_id, version, state) \
     VALUES ($1, $2, $3, 'draft')";

/// Creates the next draft version of a role's rubric; its competencies must
/// exist. A retry with the same request id and request gets the version the first made.
pub async fn create(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    items: &[RubricCompetency],
    request: Option<&RequestKey>,
) -> Result<Stored<Rubric>, StorageError> {
    idempotency::create_once(
        conn,
        tenant,
        CreateMethod::Rubric,
        request,
        async |conn| {
            roles::lock(conn, tenant, role_id).await?;
            let version: i32 = sqlx::query_scalar(NEXT_VERSION)
                .bind(&tenant.0)
                .bind(role_id)
                .fetch_one(traced!(conn, NEXT_VERSION))
                .await?;
            sqlx::query(INSERT_VERSION)
                .bind(&tenant.0)
                .bind(role_id)
                .bind(version)
                .execute(traced!(conn, INSERT_VERSION))
                .await?;
            insert_expectations(conn, tenant, role_id, version, items).await?;
            get(conn, tenant, role_id, Some(version)).await
        },
        async |conn, key| {
            let (role_id, version) = idempotency::rubric_from_key(key)?;
            get(conn, tenant, role_id, Some(version)).await
        },
        |r| idempotency::rubric_key(&r.value.role_id, r.value.version),
    )
    .await
}

/// The version `action` applies to, its role locked, after checking the
/// caller's `expected` revision and that its state allows the action; also
/// returns the state it moves to.
async fn version_for(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: i32,
    expected: Option<i64>,
    action: RubricAction,
) -> Result<(Stored<Rubric>, RubricState), StorageError> {
    roles::lock(conn, tenant, role_id).await?;
    let current = get(conn, tenant, role_id, Some(version)).await?;
    let id = version_id(role_id, version);
    expected_revision("rubric", &id, current.meta.revision, expected)?;
    let next = current
        .value
        .state
        .after(action)
        .map_err(|why| StorageError::FailedPrecondition(format!("rubric {id}: {why}")))?;
    Ok((current, next))
}

const SET_STATE: &str = "UPDATE rubric_versions SET state = $4, revision = revision + 1, update_time = now(), \
         publish_time = CASE WHEN $4 = 'published' THEN now() ELSE publish_time END \
     WHERE tenant_id = $1 AND role_id = $2 AND version = $3 AND revision = $5";

/// Moves a version read at `current` to `state` (bumping its revision).
async fn set_state(
    conn: &mut PgConnection,
    tenant: &TenantId,
    current: &Stored<Rubric>,
    state: RubricState,
) -> Result<Stored<Rubric>, StorageError> {
    let Rubric {
        role_id, version, ..
    } = &current.value;
    let updated = sqlx::query(SET_STATE)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .bind(state.as_str())
        .bind(current.meta.revision)
        .execute(traced!(conn, SET_STATE))
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StorageError::stale("rubric", version_id(role_id, *version)));
    }
    get(conn, tenant, role_id, Some(*version)).await
}

const DELETE_EXPECTATIONS: &str =
    "DELETE FROM rubric_competencies WHERE tenant_id = $1 AND role_id = $2 AND version = $3";

/// Replaces the competencies of a draft.
pub async fn update(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: i32,
    expected: Option<i64>,
    items: &[RubricCompetency],
) -> Result<Stored<Rubric>, StorageError> {
    let (current, state) =
        version_for(conn, tenant, role_id, version, expected, RubricAction::Edit).await?;
    sqlx::query(DELETE_EXPECTATIONS)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .execute(traced!(conn, DELETE_EXPECTATIONS))
        .await?;
    insert_expectations(conn, tenant, role_id, version, items).await?;
    set_state(conn, tenant, &current, state).await
}

const DELETE: &str = "DELETE FROM rubric_versions \
     WHERE tenant_id = $1 AND role_id = $2 AND version = $3 AND revision = $4";

/// Deletes a draft; published versions are never deleted.
pub async fn delete(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: i32,
    expected: Option<i64>,
) -> Result<(), StorageError> {
    let (current, _) = version_for(
        conn,
        tenant,
        role_id,
        version,
        expected,
        RubricAction::Delete,
    )
    .await?;
    sqlx::query(DELETE)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .bind(current.meta.revision)
        .execute(traced!(conn, DELETE))
        .await?;
    Ok(())
}

const SUPERSEDE: &str = "UPDATE rubric_versions SET state = 'superseded', revision = revision + 1, update_time = now() \
     WHERE tenant_id = $1 AND role_id = $2 AND state = 'published'";

/// Keeps, with each expectation of a draft about to be published, the
/// competency's name and level descriptors as they are now.
const FREEZE_TEXTS: &str = "UPDATE rubric_competencies rc \
     SET published_text = jsonb_build_object('name', c.name, 'levels', c.levels) \
     FROM competencies c \
     WHERE rc.tenant_id = $1 AND rc.role_id = $2 AND rc.version = $3 \
       AND c.tenant_id = rc.tenant_id AND c.id = rc.competency_id";

/// Publishes a draft (superseding the role's published version, and freezing
/// the competency texts it is published with) or retires a published or
/// superseded version.
pub async fn advance(
    conn: &mut PgConnection,
    tenant: &TenantId,
    role_id: &str,
    version: i32,
    expected: Option<i64>,
    action: RubricAction,
) -> Result<Stored<Rubric>, StorageError> {
    let (current, state) = version_for(conn, tenant, role_id, version, expected, action).await?;
    if state == RubricState::Published {
        sqlx::query(FREEZE_TEXTS)
            .bind(&tenant.0)
            .bind(role_id)
            .bind(version)
            .execute(traced!(conn, FREEZE_TEXTS))
            .await?;
        sqlx::query(SUPERSEDE)
            .bind(&tenant.0)
            .bind(role_id)
            .execute(traced!(conn, SUPERSEDE))
            .await?;
    }
    set_state(conn, tenant, &current, state).await
}
