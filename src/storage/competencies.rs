//! Competencies: the skills rubrics expect a level of.

use std::collections::HashMap;

use sqlx::PgConnection;
use sqlx::types::Json;

use crate::domain::framework::{Competency, LevelDescriptor};
use crate::storage::idempotency::{self, CreateMethod, RequestKey};
use crate::storage::stored::{self, Meta, MetaRow, Stored, expected_revision};
use crate::storage::traced::{statement, traced};
use crate::storage::{StorageError, TenantId};

macro_rules! columns {
    () => {
        "id, name, description, levels, revision, create_time, update_time"
    };
}

#[derive(sqlx::FromRow)]
struct CompetencyRow {
    id: String,
    name: String,
    description: String,
    levels: Json<Vec<LevelDescriptor>>,
    #[sqlx(flatten)]
    meta: MetaRow,
}

impl From<CompetencyRow> for Stored<Competency> {
    fn from(r: CompetencyRow) -> Self {
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

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM competencies WHERE tenant_id = $1 AND id = $2"
);

pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Stored<Competency>, StorageError> {
    let row: Option<CompetencyRow> = sqlx::query_as(GET)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(traced!(conn, GET))
        .await?;
    row.map(Stored::from)
        .ok_or_else(|| StorageError::not_found("competency", id))
}

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM competencies WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3"
);

/// Up to `limit` competencies after `after`, in id order.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Stored<Competency>>, StorageError> {
    let rows: Vec<CompetencyRow> = sqlx::query_as(LIST)
        .bind(&tenant.0)
        .bind(after)
        .bind(limit)
        .fetch_all(traced!(conn, LIST))
        .await?;
    Ok(rows.into_iter().map(Stored::from).collect())
}

const IN_FRAMEWORK_ORDER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM competencies WHERE tenant_id = $1 AND retire_time IS NULL ORDER BY position, id"
);

/// Every competency in use (not retired), in the order the tenant's
/// framework lists them.
pub async fn in_framework_order(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<Stored<Competency>>, StorageError> {
    let rows: Vec<CompetencyRow> = sqlx::query_as(IN_FRAMEWORK_ORDER)
        .bind(&tenant.0)
        .fetch_all(traced!(conn, IN_FRAMEWORK_ORDER))
        .await?;
    Ok(rows.into_iter().map(Stored::from).collect())
}

const INSERT: &str = concat!(
    "INSERT INTO competencies (tenant_id, id, name, description, levels) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT DO NOTHING RETURNING ",
    columns!()
);

/// Creates a competency; a retry with the same request id and request gets the one
/// the first call made.
pub async fn create(
    conn: &mut PgConnection,
    tenant: &TenantId,
    c: &Competency,
    request: Option<&RequestKey>,
) -> Result<Stored<Competency>, StorageError> {
    idempotency::create_once(
        conn,
        tenant,
        CreateMethod::Competency,
        request,
        async |conn| {
            let row: Option<CompetencyRow> = sqlx::query_as(INSERT)
                .bind(&tenant.0)
                .bind(&c.id)
                .bind(&c.name)
                .bind(&c.description)
                .bind(Json(&c.levels))
                .fetch_optional(traced!(conn, INSERT))
                .await?;
            row.map(Stored::from)
                .ok_or_else(|| StorageError::AlreadyExists {
                    kind: "competency",
                    id: c.id.clone(),
                })
        },
        async |conn, id| get(conn, tenant, id).await,
        |created| created.value.id.clone(),
    )
    .await
}

const UPDATE: &str = concat!(
    "UPDATE competencies SET name = $3, description = $4, levels = $5, \
         revision = revision + 1, update_time = now() \
     WHERE tenant_id = $1 AND id = $2 AND revision = $6 RETURNING ",
    columns!()
);

/// Replaces a competency if it is still at `revision`.
pub async fn update(
    conn: &mut PgConnection,
    tenant: &TenantId,
    c: &Competency,
    revision: i64,
) -> Result<Stored<Competency>, StorageError> {
    let row: Option<CompetencyRow> = sqlx::query_as(UPDATE)
        .bind(&tenant.0)
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.description)
        .bind(Json(&c.levels))
        .bind(revision)
        .fetch_optional(traced!(conn, UPDATE))
        .await?;
    row.map(Stored::from)
        .ok_or_else(|| StorageError::stale("competency", &c.id))
}

const USERS: &str = "SELECT role_id, version FROM rubric_competencies \
     WHERE tenant_id = $1 AND competency_id = $2 ORDER BY role_id, version LIMIT 5";

const DELETE: &str = "DELETE FROM competencies WHERE tenant_id = $1 AND id = $2 AND revision = $3";

/// Deletes a competency no rubric version refers to; `expected` is the
/// revision the caller last saw, if it says.
pub async fn delete(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
    expected: Option<i64>,
) -> Result<(), StorageError> {
    let current: Meta = get(conn, tenant, id).await?.meta;
    let revision = expected_revision("competency", id, current.revision, expected)?;
    let users: Vec<(String, i32)> = sqlx::query_as(USERS)
        .bind(&tenant.0)
        .bind(id)
        .fetch_all(traced!(conn, USERS))
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
    let deleted = sqlx::query(DELETE)
        .bind(&tenant.0)
        .bind(id)
        .bind(revision)
        .execute(traced!(conn, DELETE))
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(StorageError::stale("competency", id));
    }
    Ok(())
}

const NAMES: &str = "SELECT id, name FROM competencies WHERE tenant_id = $1 AND id = ANY($2)";

/// The names of the tenant's competencies among `ids`, by id.
pub async fn names(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[String],
) -> Result<HashMap<String, String>, StorageError> {
    let rows: Vec<(String, String)> = sqlx::query_as(NAMES)
        .bind(&tenant.0)
        .bind(ids)
        .fetch_all(traced!(conn, NAMES))
        .await?;
    Ok(rows.into_iter().collect())
}

/// Retired competencies are missing too: nothing new may refer to them.
const MISSING: &str = "SELECT ids.id FROM unnest($2::text[]) AS ids(id) \
     WHERE NOT EXISTS (SELECT 1 FROM competencies c \
         WHERE c.tenant_id = $1 AND c.id = ids.id AND c.retire_time IS NULL)";

/// The ids among `ids` that the tenant has no competency of.
pub async fn missing(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[String],
) -> Result<Vec<String>, StorageError> {
    stored::missing(conn, statement!(MISSING), tenant, ids).await
}
