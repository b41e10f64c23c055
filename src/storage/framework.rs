//! Competencies, roles and rubrics.

use sqlx::PgConnection;
use sqlx::types::Json;

use crate::domain::framework::{
    Catalog, Role, Rubric, RubricCompetency, RubricState, Track, Transition, TransitionKind,
};
use crate::storage::{StorageError, TenantId};

const RUBRIC_VERSION: &str = "SELECT version, state FROM rubric_versions \
     WHERE tenant_id = $1 AND role_id = $2 \
       AND (($3::integer IS NULL AND state = 'published') OR version = $3)";

const RUBRIC_COMPETENCIES: &str = "SELECT competency_id, expected_level, weight, critical, development_actions \
     FROM rubric_competencies WHERE tenant_id = $1 AND role_id = $2 AND version = $3 ORDER BY position";

const ROLES: &str =
    "SELECT id, name, track, description FROM roles WHERE tenant_id = $1 ORDER BY id";

const TRANSITIONS: &str = "SELECT from_role_id, to_role_id, kind FROM role_transitions \
     WHERE tenant_id = $1 ORDER BY from_role_id, position";

const PUBLISHED_RUBRICS: &str = "SELECT rc.role_id, rc.version, rc.competency_id, rc.expected_level, rc.weight, \
            rc.critical, rc.development_actions \
     FROM rubric_competencies rc \
     JOIN rubric_versions rv USING (tenant_id, role_id, version) \
     WHERE rv.tenant_id = $1 AND rv.state = 'published' \
     ORDER BY rc.role_id, rc.position";

type CompetencyRow = (String, i16, f64, bool, Json<Vec<String>>);

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
    let not_found = || StorageError::NotFound {
        kind: "rubric",
        id: match version {
            Some(v) => format!("{role_id} version {v}"),
            None => format!("{role_id} (published)"),
        },
    };
    let (version, state): (i32, String) = sqlx::query_as(RUBRIC_VERSION)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(not_found)?;
    let rows: Vec<CompetencyRow> = sqlx::query_as(RUBRIC_COMPETENCIES)
        .bind(&tenant.0)
        .bind(role_id)
        .bind(version)
        .fetch_all(&mut *conn)
        .await?;
    Ok(Rubric {
        role_id: role_id.to_string(),
        version,
        state: RubricState::parse(&state).ok_or_else(|| corrupt("rubric state", &state))?,
        competencies: rows.into_iter().map(rubric_competency).collect(),
    })
}

/// Every role with its transitions, and every published rubric.
pub async fn catalog(conn: &mut PgConnection, tenant: &TenantId) -> Result<Catalog, StorageError> {
    let roles: Vec<(String, String, String, String)> = sqlx::query_as(ROLES)
        .bind(&tenant.0)
        .fetch_all(&mut *conn)
        .await?;
    let transitions: Vec<(String, String, String)> = sqlx::query_as(TRANSITIONS)
        .bind(&tenant.0)
        .fetch_all(&mut *conn)
        .await?;
    let mut catalog = Catalog::default();
    for (id, name, track, description) in roles {
        catalog.roles.push(Role {
            track: Track::parse(&track).ok_or_else(|| corrupt("track", &track))?,
            transitions: Vec::new(),
            id,
            name,
            description,
        });
    }
    for (from, to, kind) in transitions {
        let kind = TransitionKind::parse(&kind).ok_or_else(|| corrupt("transition kind", &kind))?;
        if let Some(role) = catalog.roles.iter_mut().find(|r| r.id == from) {
            role.transitions.push(Transition { to, kind });
        }
    }
    let rows: Vec<(String, i32, String, i16, f64, bool, Json<Vec<String>>)> =
        sqlx::query_as(PUBLISHED_RUBRICS)
            .bind(&tenant.0)
            .fetch_all(&mut *conn)
            .await?;
    for (role_id, version, competency_id, level, weight, critical, actions) in rows {
        let competency = rubric_competency((competency_id, level, weight, critical, actions));
        match catalog.rubrics.last_mut() {
            Some(rubric) if rubric.role_id == role_id => rubric.competencies.push(competency),
            _ => catalog.rubrics.push(Rubric {
                role_id,
                version,
                state: RubricState::Published,
                competencies: vec![competency],
            }),
        }
    }
    Ok(catalog)
}
