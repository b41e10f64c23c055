//! Whole frameworks in and out of a tenant: `ladder framework import/export`
//! and the built-in framework a new tenant starts with.

use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

use crate::domain::framework::{Document, FORMAT, ImportMode, Role, RoleDocument, RubricAction};
use crate::storage::stored::optional;
use crate::storage::traced::{Traced, statement, traced};
use crate::storage::{
    Db, StorageError, TenantId, catalog_cache, competencies, roles, rubrics, tracks,
};

/// Registers a tenant; a registered tenant never gets the built-in framework
/// loaded behind its back.
const REGISTER_TENANT: &str = "INSERT INTO tenants (tenant_id, framework_loaded_at) \
     VALUES ($1, now()) ON CONFLICT DO NOTHING";

/// Whether a tenant is registered: looked up before registering, so that a
/// known tenant's first call on a server writes nothing (and so works on a
/// read-only database).
const TENANT_REGISTERED: &str = "SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)";

/// What an import did, or would do, item by item (`role staff_engineer`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: Vec<String>,
    /// Each with the fields the file replaces (`role staff_engineer: name, seniority`).
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    /// With `prune`: deleted, nothing cited them.
    pub removed: Vec<String>,
    /// With `prune`: taken out of the framework but kept for the published
    /// rubric versions, evidence or subjects that cite them.
    pub retired: Vec<String>,
    /// Without `prune`: in the tenant but not in the file, left alone.
    pub not_in_file: Vec<String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (label, items) in [
            ("created", &self.created),
            ("changed", &self.changed),
            ("unchanged", &self.unchanged),
            ("removed", &self.removed),
            ("retired", &self.retired),
            ("kept", &self.not_in_file),
        ] {
            for item in items {
                writeln!(f, "{label:<9} {item}")?;
            }
        }
        write!(
            f,
            "{} created, {} changed, {} unchanged",
            self.created.len(),
            self.changed.len(),
            self.unchanged.len()
        )?;
        if self.removed.len() + self.retired.len() > 0 {
            write!(
                f,
                ", {} removed, {} retired",
                self.removed.len(),
                self.retired.len()
            )?;
        }
        if !self.not_in_file.is_empty() {
            write!(
                f,
                "\n{} item(s) of the tenant are not in the file and were kept; \
                 `--prune` (or `mode: complete` in the file) removes or retires them",
                self.not_in_file.len()
            )?;
        }
        Ok(())
    }
}

async fn register(conn: &mut PgConnection, tenant: &TenantId) -> Result<bool, StorageError> {
    let inserted = sqlx::query(REGISTER_TENANT)
        .bind(&tenant.0)
        .execute(traced!(conn, REGISTER_TENANT))
        .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Loads the built-in framework into a tenant on its first use, every rubric
/// published as version 1. Concurrent first calls are safe: the tenant row's
/// insert makes later ones wait, then find it there and do nothing.
pub async fn ensure_builtin(db: &Db, tenant: &TenantId) -> Result<(), StorageError> {
    let mut tx = db.begin(tenant).await?;
    let registered: bool = sqlx::query_scalar(TENANT_REGISTERED)
        .bind(&tenant.0)
        .fetch_one(traced!(&mut *tx, TENANT_REGISTERED))
        .await?;
    if !registered && register(&mut tx, tenant).await? {
        apply(&mut tx, tenant, Document::builtin()).await?;
        tracing::info!(tenant = %tenant.0, "built-in framework loaded");
    }
    tx.commit().await?;
    Ok(())
}

/// What an import does with what the tenant has and the file does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prune {
    /// Remove it, or retire it where something cites it (`--prune`; `mode:
    /// complete` in the file does the same).
    pub enabled: bool,
    /// (retired role, role in the file): the subjects holding the first as
    /// their current role get the second, in the import's transaction.
    pub reassign: Vec<(String, String)>,
    /// Retire roles that subjects still hold as their current role, without
    /// reassigning them: they keep it, read as it was (SPEC §6).
    pub allow_stranded: bool,
}

/// Applies a validated framework on `conn` (the caller's tenant
/// transaction), all or nothing: the work runs in a nested transaction
/// (a savepoint) that `dry_run` rolls back, so the report says what would
/// have happened. With a prune (or `mode: complete` in the file) what the
/// tenant has and the file does not is removed, or retired where something
/// still cites it.
pub async fn import(
    conn: &mut PgConnection,
    tenant: &TenantId,
    doc: &Document,
    dry_run: bool,
    prune: &Prune,
) -> Result<ImportReport, StorageError> {
    let mut tx = conn.begin().await?;
    register(&mut tx, tenant).await?;
    let mut report = apply(&mut tx, tenant, doc).await?;
    if prune.enabled || doc.mode == ImportMode::Complete {
        prune_absent(&mut tx, tenant, doc, prune, &mut report).await?;
    } else {
        report.not_in_file = absent(&mut tx, tenant, doc).await?;
    }
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(report)
}

/// A tenant's framework as a file, and when it last changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub document: Document,
    /// The latest update or retirement of any of its items.
    pub last_change: DateTime<Utc>,
}

/// When the tenant's framework last changed: its items' latest update or
/// retirement (a deletion leaves no time behind).
const LAST_CHANGE: &str = "SELECT max(t) FROM ( \
         SELECT update_time AS t FROM tracks WHERE tenant_id = $1 \
         UNION ALL SELECT greatest(update_time, retire_time) FROM competencies WHERE tenant_id = $1 \
         UNION ALL SELECT greatest(update_time, retire_time) FROM roles WHERE tenant_id = $1 \
         UNION ALL SELECT update_time FROM rubric_versions \
             WHERE tenant_id = $1 AND state <> 'draft' \
     ) AS changes";

/// The tenant's framework: its tracks, competencies and roles in the order
/// its framework lists them, each role with its published rubric. A tenant
/// without any framework is `NotFound`, not an empty file.
pub async fn export(conn: &mut PgConnection, tenant: &TenantId) -> Result<Exported, StorageError> {
    let competencies: Vec<_> = competencies::in_framework_order(conn, tenant)
        .await?
        .into_iter()
        .map(|c| c.value)
        .collect();
    let catalog = catalog_cache::read(conn, tenant).await?;
    let last_change: Option<DateTime<Utc>> = sqlx::query_scalar(LAST_CHANGE)
        .bind(&tenant.0)
        .fetch_one(traced!(conn, LAST_CHANGE))
        .await?;
    let Some(last_change) = last_change.filter(|_| {
        !(catalog.tracks().is_empty() && competencies.is_empty() && catalog.roles().is_empty())
    }) else {
        return Err(StorageError::NotFound {
            kind: "framework of tenant",
            id: tenant.0.clone(),
        });
    };
    let (tracks, roles, rubrics) = catalog.into_parts();
    let roles = roles
        .into_iter()
        .map(|role| {
            let rubric = rubrics
                .iter()
                .find(|r| r.role_id == role.id)
                .map(|r| r.competencies.clone());
            RoleDocument::new(role, rubric)
        })
        .collect();
    Ok(Exported {
        document: Document {
            format: FORMAT.to_string(),
            mode: ImportMode::default(),
            tracks,
            competencies,
            roles,
        },
        last_change,
    })
}

/// Numbers the file's items 1, 2, 3, ... in file order (API-created items
/// sort after them, see migration 0005).
const ORDER_TRACKS: &str = "UPDATE tracks t SET position = f.position \
     FROM unnest($2::text[]) WITH ORDINALITY AS f(id, position) \
     WHERE t.tenant_id = $1 AND t.id = f.id AND t.position <> f.position";
const ORDER_COMPETENCIES: &str = "UPDATE competencies c SET position = f.position \
     FROM unnest($2::text[]) WITH ORDINALITY AS f(id, position) \
     WHERE c.tenant_id = $1 AND c.id = f.id AND c.position <> f.position";
const ORDER_ROLES: &str = "UPDATE roles r SET position = f.position \
     FROM unnest($2::text[]) WITH ORDINALITY AS f(id, position) \
     WHERE r.tenant_id = $1 AND r.id = f.id AND r.position <> f.position";

/// Items of the file that an earlier prune retired are back in use.
const RESTORE_TRACKS: &str = "UPDATE tracks SET retire_time = NULL \
     WHERE tenant_id = $1 AND id = ANY($2) AND retire_time IS NOT NULL RETURNING id";
const RESTORE_COMPETENCIES: &str = "UPDATE competencies SET retire_time = NULL \
     WHERE tenant_id = $1 AND id = ANY($2) AND retire_time IS NOT NULL RETURNING id";
const RESTORE_ROLES: &str = "UPDATE roles SET retire_time = NULL \
     WHERE tenant_id = $1 AND id = ANY($2) AND retire_time IS NOT NULL RETURNING id";

/// Creates what is new and changes what differs; a changed rubric becomes a
/// new published version, since published versions are immutable.
async fn apply(
    conn: &mut PgConnection,
    tenant: &TenantId,
    doc: &Document,
) -> Result<ImportReport, StorageError> {
    let mut report = ImportReport::default();
    let track_ids: Vec<&str> = doc.tracks.iter().map(|t| t.id.as_str()).collect();
    let restored: Vec<String> = sqlx::query_scalar(RESTORE_TRACKS)
        .bind(&tenant.0)
        .bind(&track_ids)
        .fetch_all(traced!(conn, RESTORE_TRACKS))
        .await?;
    let stored_tracks = tracks::in_framework_order(conn, tenant).await?;
    for (i, t) in doc.tracks.iter().enumerate() {
        let item = format!("track {}", t.id);
        match stored_tracks.iter().find(|s| s.id == t.id) {
            None => report.created.push(item),
            Some(s) if s == t && !restored.contains(&t.id) => report.unchanged.push(item),
            Some(s) => report.changed.push(replaced(
                item,
                [
                    ("restored", restored.contains(&t.id)),
                    ("name", s.name != t.name),
                    ("description", s.description != t.description),
                ],
            )),
        }
        tracks::put(conn, tenant, t, Some(i as i64 + 1)).await?;
    }
    let restored: Vec<String> = sqlx::query_scalar(RESTORE_COMPETENCIES)
        .bind(&tenant.0)
        .bind(doc.competency_ids())
        .fetch_all(traced!(conn, RESTORE_COMPETENCIES))
        .await?;
    for c in &doc.competencies {
        let item = format!("competency {}", c.id);
        match optional(competencies::get(conn, tenant, &c.id).await)? {
            None => {
                competencies::create(conn, tenant, c, None).await?;
                report.created.push(item);
            }
            Some(current) if current.value == *c && !restored.contains(&c.id) => {
                report.unchanged.push(item)
            }
            Some(current) => {
                let was = &current.value;
                report.changed.push(replaced(
                    item,
                    [
                        ("restored", restored.contains(&c.id)),
                        ("name", was.name != c.name),
                        ("description", was.description != c.description),
                        ("levels", was.levels != c.levels),
                    ],
                ));
                if current.value != *c {
                    competencies::update(conn, tenant, c, current.meta.revision).await?;
                }
            }
        }
    }
    let role_ids: Vec<&str> = doc.roles.iter().map(|r| r.id.as_str()).collect();
    let restored: Vec<String> = sqlx::query_scalar(RESTORE_ROLES)
        .bind(&tenant.0)
        .bind(&role_ids)
        .fetch_all(traced!(conn, RESTORE_ROLES))
        .await?;
    // Roles first without transitions, as a transition may lead to a role
    // defined further down the file.
    let mut to_link = Vec::new();
    for r in &doc.roles {
        let role = r.role();
        let item = format!("role {}", r.id);
        match optional(roles::get(conn, tenant, &r.id).await)? {
            None => {
                let bare = Role {
                    transitions: Vec::new(),
                    ..role.clone()
                };
                roles::create(conn, tenant, &bare, None).await?;
                report.created.push(item);
                to_link.push((role, None));
            }
            Some(current) if current.value == role && !restored.contains(&r.id) => {
                report.unchanged.push(item)
            }
            Some(current) => {
                let was = &current.value;
                report.changed.push(replaced(
                    item,
                    [
                        ("restored", restored.contains(&r.id)),
                        ("name", was.name != role.name),
                        ("track", was.track != role.track),
                        ("seniority", was.seniority != role.seniority),
                        ("description", was.description != role.description),
                        ("transitions", was.transitions != role.transitions),
                    ],
                ));
                to_link.push((role, Some(current.meta.revision)));
            }
        }
    }
    for (role, revision) in to_link {
        match revision {
            Some(revision) => {
                roles::update(conn, tenant, &role, revision).await?;
            }
            None => roles::set_transitions(conn, tenant, &role).await?,
        }
    }
    for r in &doc.roles {
        let Some(rubric) = &r.rubric else { continue };
        let current = optional(rubrics::get(conn, tenant, &r.id, None).await)?;
        match current {
            Some(c) if c.value.competencies == rubric.competencies => report
                .unchanged
                .push(format!("rubric {} version {}", r.id, c.value.version)),
            _ => {
                let draft =
                    rubrics::create(conn, tenant, &r.id, &rubric.competencies, None).await?;
                let version = draft.value.version;
                rubrics::advance(conn, tenant, &r.id, version, None, RubricAction::Publish).await?;
                let item = match current {
                    Some(c) => format!(
                        "rubric {} version {version} (published, supersedes version {})",
                        r.id, c.value.version
                    ),
                    None => format!("rubric {} version {version} (published)", r.id),
                };
                report.created.push(item);
            }
        }
    }
    for (statement, ids) in [
        (statement!(ORDER_TRACKS), track_ids),
        (statement!(ORDER_COMPETENCIES), doc.competency_ids()),
        (statement!(ORDER_ROLES), role_ids),
    ] {
        sqlx::query(statement.sql)
            .bind(&tenant.0)
            .bind(ids)
            .execute(Traced::new(&mut *conn, statement))
            .await?;
    }
    Ok(report)
}

/// `item: name, seniority`, naming the fields that differ.
fn replaced<const N: usize>(item: String, fields: [(&str, bool); N]) -> String {
    let differ: Vec<&str> = fields
        .iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| *name)
        .collect();
    format!("{item}: {}", differ.join(", "))
}

const ABSENT: &str = "SELECT 'track ' || id FROM tracks \
         WHERE tenant_id = $1 AND retire_time IS NULL AND NOT (id = ANY($2)) \
     UNION ALL SELECT 'competency ' || id FROM competencies \
         WHERE tenant_id = $1 AND retire_time IS NULL AND NOT (id = ANY($3)) \
     UNION ALL SELECT 'role ' || id FROM roles \
         WHERE tenant_id = $1 AND retire_time IS NULL AND NOT (id = ANY($4))";

/// The items of the tenant's framework that the file does not contain.
async fn absent(
    conn: &mut PgConnection,
    tenant: &TenantId,
    doc: &Document,
) -> Result<Vec<String>, StorageError> {
    let (tracks, roles) = doc.track_and_role_ids();
    Ok(sqlx::query_scalar(ABSENT)
        .bind(&tenant.0)
        .bind(tracks)
        .bind(doc.competency_ids())
        .bind(roles)
        .fetch_all(traced!(conn, ABSENT))
        .await?)
}

/// Gives the subjects holding a role the prune takes away another one.
const REASSIGN_SUBJECTS: &str = "UPDATE subjects \
     SET current_role_id = $3, revision = revision + 1, update_time = now() \
     WHERE tenant_id = $1 AND current_role_id = $2";

/// Roles the file does not contain, each with whether something cites it (a
/// rubric version that is not a draft, or a subject's current role) and how
/// many subjects hold it as their current role.
const ROLES_TO_PRUNE: &str = "SELECT r.id, \
         EXISTS (SELECT 1 FROM rubric_versions v WHERE v.tenant_id = r.tenant_id \
             AND v.role_id = r.id AND v.state <> 'draft') \
         OR EXISTS (SELECT 1 FROM subjects s WHERE s.tenant_id = r.tenant_id \
             AND s.current_role_id = r.id), \
         (SELECT count(*) FROM subjects s WHERE s.tenant_id = r.tenant_id \
             AND s.current_role_id = r.id) \
     FROM roles r WHERE r.tenant_id = $1 AND r.retire_time IS NULL AND NOT (r.id = ANY($2)) \
     ORDER BY r.position, r.id";
/// Transitions into every pruned role go, and out of the removed ones; a
/// retired role keeps its moves out, so that whoever still holds it is
/// recommended from where they stand.
const UNLINK_ROLES: &str = "DELETE FROM role_transitions \
     WHERE tenant_id = $1 AND (to_role_id = ANY($2) OR from_role_id = ANY($3))";
const DELETE_ROLE_DRAFTS: &str = "DELETE FROM rubric_versions \
     WHERE tenant_id = $1 AND role_id = ANY($2) AND state = 'draft'";
const RETIRE_ROLE_RUBRICS: &str = "UPDATE rubric_versions \
     SET state = 'retired', revision = revision + 1, update_time = now() \
     WHERE tenant_id = $1 AND role_id = ANY($2) AND state IN ('published', 'superseded')";
const DELETE_ROLES: &str = "DELETE FROM roles WHERE tenant_id = $1 AND id = ANY($2)";
const RETIRE_ROLES: &str =
    "UPDATE roles SET retire_time = now() WHERE tenant_id = $1 AND id = ANY($2)";

/// Competencies the file does not contain, with the published versions that
/// still use them (they block the prune), whether anything cites them and
/// how much evidence is about them.
const COMPETENCIES_TO_PRUNE: &str = "SELECT c.id, \
         ARRAY(SELECT v.role_id || ' version ' || v.version FROM rubric_competencies rc \
             JOIN rubric_versions v USING (tenant_id, role_id, version) \
             WHERE rc.tenant_id = c.tenant_id AND rc.competency_id = c.id \
               AND v.state = 'published' ORDER BY 1), \
         EXISTS (SELECT 1 FROM rubric_competencies rc WHERE rc.tenant_id = c.tenant_id \
             AND rc.competency_id = c.id) \
         OR EXISTS (SELECT 1 FROM evidence e WHERE e.tenant_id = c.tenant_id \
             AND e.competency_id = c.id), \
         (SELECT count(*) FROM evidence e WHERE e.tenant_id = c.tenant_id \
             AND e.competency_id = c.id) \
     FROM competencies c \
     WHERE c.tenant_id = $1 AND c.retire_time IS NULL AND NOT (c.id = ANY($2)) \
     ORDER BY c.position, c.id";
const DELETE_COMPETENCIES: &str = "DELETE FROM competencies WHERE tenant_id = $1 AND id = ANY($2)";
const RETIRE_COMPETENCIES: &str =
    "UPDATE competencies SET retire_time = now() WHERE tenant_id = $1 AND id = ANY($2)";

/// Tracks the file does not contain and no role (retired ones included)
/// belongs to.
const DELETE_UNUSED_TRACKS: &str = "DELETE FROM tracks t \
     WHERE t.tenant_id = $1 AND NOT (t.id = ANY($2)) \
       AND NOT EXISTS (SELECT 1 FROM roles r WHERE r.tenant_id = t.tenant_id AND r.track = t.id) \
     RETURNING t.id";
/// The rest of the tracks the file does not contain: retired roles still
/// belong to them.
const RETIRE_TRACKS: &str = "UPDATE tracks SET retire_time = now(), update_time = now() \
     WHERE tenant_id = $1 AND NOT (id = ANY($2)) AND retire_time IS NULL \
     RETURNING id";

/// Makes the file the whole framework: what it does not contain is deleted,
/// or retired where a published rubric version, evidence or a subject cites
/// it. A competency that a role kept without a rubric in the file still
/// expects in its published version refuses the whole import, naming them,
/// and so does a role that subjects hold as their current role, unless the
/// prune reassigns them or allows stranding them.
async fn prune_absent(
    conn: &mut PgConnection,
    tenant: &TenantId,
    doc: &Document,
    prune: &Prune,
    report: &mut ImportReport,
) -> Result<(), StorageError> {
    let (track_ids, role_ids) = doc.track_and_role_ids();
    for (from, to) in &prune.reassign {
        let moved = sqlx::query(REASSIGN_SUBJECTS)
            .bind(&tenant.0)
            .bind(from)
            .bind(to)
            .execute(traced!(conn, REASSIGN_SUBJECTS))
            .await?
            .rows_affected();
        report.changed.push(format!(
            "subjects of role {from}: current role now {to} ({moved} subjects)"
        ));
    }
    let roles: Vec<(String, bool, i64)> = sqlx::query_as(ROLES_TO_PRUNE)
        .bind(&tenant.0)
        .bind(&role_ids)
        .fetch_all(traced!(conn, ROLES_TO_PRUNE))
        .await?;
    let held: Vec<(String, i64)> = roles
        .iter()
        .filter(|(_, _, holders)| *holders > 0)
        .map(|(id, _, holders)| (id.clone(), *holders))
        .collect();
    if !held.is_empty() && !prune.allow_stranded {
        let each: Vec<String> = held
            .iter()
            .map(|(id, n)| format!("{id} ({n} subjects)"))
            .collect();
        return Err(StorageError::FailedPrecondition(format!(
            "the prune retires roles that subjects hold as their current role: {}; \
             reassign them to a role of the file (`--reassign OLD=NEW`, `reassign` over the \
             API) or keep them on the retired role (`--allow-stranded`, `allow_stranded`)",
            each.join(", ")
        )));
    }
    let (cited, uncited) = split_by_citation(
        roles
            .into_iter()
            .map(|(id, cited, _)| (id, cited))
            .collect(),
    );
    let every: Vec<&String> = cited.iter().chain(&uncited).collect();
    sqlx::query(UNLINK_ROLES)
        .bind(&tenant.0)
        .bind(&every)
        .bind(&uncited)
        .execute(traced!(conn, UNLINK_ROLES))
        .await?;
    for statement in [
        statement!(DELETE_ROLE_DRAFTS),
        statement!(RETIRE_ROLE_RUBRICS),
    ] {
        sqlx::query(statement.sql)
            .bind(&tenant.0)
            .bind(&every)
            .execute(Traced::new(&mut *conn, statement))
            .await?;
    }
    for (statement, ids) in [
        (statement!(DELETE_ROLES), &uncited),
        (statement!(RETIRE_ROLES), &cited),
    ] {
        sqlx::query(statement.sql)
            .bind(&tenant.0)
            .bind(ids)
            .execute(Traced::new(&mut *conn, statement))
            .await?;
    }
    report
        .removed
        .extend(uncited.iter().map(|id| format!("role {id}")));
    report.retired.extend(
        cited
            .iter()
            .map(|id| match held.iter().find(|(held, _)| held == id) {
                Some((_, n)) => format!(
                    "role {id} (current role of {n} subjects, who keep it; its rubric versions are \
                 retired and stay for the assessments that cite them)"
                ),
                None => format!(
                    "role {id} (its rubric versions are retired and stay for the assessments that \
                 cite them)"
                ),
            }),
    );

    let competencies: Vec<(String, Vec<String>, bool, i64)> = sqlx::query_as(COMPETENCIES_TO_PRUNE)
        .bind(&tenant.0)
        .bind(doc.competency_ids())
        .fetch_all(traced!(conn, COMPETENCIES_TO_PRUNE))
        .await?;
    let blocked: Vec<String> = competencies
        .iter()
        .filter(|(_, users, _, _)| !users.is_empty())
        .map(|(id, users, _, _)| format!("{id} (used by {})", users.join(", ")))
        .collect();
    if !blocked.is_empty() {
        return Err(StorageError::FailedPrecondition(format!(
            "cannot remove competencies the file no longer contains while published rubrics \
             still expect them: {}; give those roles a rubric in the file without them, or keep \
             the competencies",
            blocked.join("; ")
        )));
    }
    let evidence: Vec<(String, i64)> = competencies
        .iter()
        .map(|(id, _, _, n)| (id.clone(), *n))
        .collect();
    let (cited, uncited) = split_by_citation(
        competencies
            .into_iter()
            .map(|(id, _, cited, _)| (id, cited))
            .collect(),
    );
    for (statement, ids) in [
        (statement!(DELETE_COMPETENCIES), &uncited),
        (statement!(RETIRE_COMPETENCIES), &cited),
    ] {
        sqlx::query(statement.sql)
            .bind(&tenant.0)
            .bind(ids)
            .execute(Traced::new(&mut *conn, statement))
            .await?;
    }
    report
        .removed
        .extend(uncited.iter().map(|id| format!("competency {id}")));
    report.retired.extend(cited.iter().map(|id| {
        let n = evidence
            .iter()
            .find(|(e, _)| e == id)
            .map_or(0, |(_, n)| *n);
        format!(
            "competency {id} ({n} evidence items and earlier rubric versions may still cite it; \
             a re-send of that evidence is already present)"
        )
    }));

    let removed: Vec<String> = sqlx::query_scalar(DELETE_UNUSED_TRACKS)
        .bind(&tenant.0)
        .bind(&track_ids)
        .fetch_all(traced!(conn, DELETE_UNUSED_TRACKS))
        .await?;
    report
        .removed
        .extend(removed.iter().map(|id| format!("track {id}")));
    let retired: Vec<String> = sqlx::query_scalar(RETIRE_TRACKS)
        .bind(&tenant.0)
        .bind(&track_ids)
        .fetch_all(traced!(conn, RETIRE_TRACKS))
        .await?;
    report.retired.extend(
        retired
            .iter()
            .map(|id| format!("track {id} (retired roles still belong to it)")),
    );
    Ok(())
}

/// (cited, not cited) ids, each in the order given.
fn split_by_citation(items: Vec<(String, bool)>) -> (Vec<String>, Vec<String>) {
    let (cited, uncited): (Vec<_>, Vec<_>) = items.into_iter().partition(|(_, cited)| *cited);
    (
        cited.into_iter().map(|(id, _)| id).collect(),
        uncited.into_iter().map(|(id, _)| id).collect(),
    )
}
