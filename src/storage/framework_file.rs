//! Whole frameworks in and out of a tenant: `ladder framework import/export`
//! and the built-in framework a new tenant starts with.

use std::fmt;

use sqlx::PgConnection;

use crate::domain::framework::{Document, FORMAT, Role, RoleDocument, RubricAction};
use crate::storage::stored::{ALL, optional};
use crate::storage::traced::traced;
use crate::storage::{Db, StorageError, TenantId, catalog_cache, competencies, roles, rubrics};

/// Registers a tenant; a registered tenant never gets the built-in framework
/// loaded behind its back.
const REGISTER_TENANT: &str = "INSERT INTO tenants (tenant_id, framework_loaded_at) \
     VALUES ($1, now()) ON CONFLICT DO NOTHING";

/// What an import did, or would do, item by item (`role staff_engineer`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (label, items) in [
            ("created", &self.created),
            ("changed", &self.changed),
            ("unchanged", &self.unchanged),
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
        )
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
    if register(&mut tx, tenant).await? {
        apply(&mut tx, tenant, Document::builtin()).await?;
        tracing::info!(tenant = %tenant.0, "built-in framework loaded");
    }
    tx.commit().await?;
    Ok(())
}

/// Applies a validated framework in one transaction, all or nothing; with
/// `dry_run` the transaction is rolled back and the report says what would
/// have happened.
pub async fn import(
    db: &Db,
    tenant: &TenantId,
    doc: &Document,
    dry_run: bool,
) -> Result<ImportReport, StorageError> {
    let mut tx = db.begin(tenant).await?;
    register(&mut tx, tenant).await?;
    let report = apply(&mut tx, tenant, doc).await?;
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(report)
}

/// The tenant's framework: every competency and role, each role with its
/// published rubric, in id order.
pub async fn export(db: &Db, tenant: &TenantId) -> Result<Document, StorageError> {
    let mut tx = db.begin(tenant).await?;
    let competencies = competencies::list(&mut tx, tenant, None, ALL)
        .await?
        .into_iter()
        .map(|c| c.value)
        .collect();
    let mut catalog = catalog_cache::read(&mut tx, tenant).await?;
    tx.commit().await?;
    let roles = std::mem::take(&mut catalog.roles)
        .into_iter()
        .map(|role| {
            let rubric = catalog.rubric(&role.id).map(|r| r.competencies.clone());
            RoleDocument::new(role, rubric)
        })
        .collect();
    Ok(Document {
        format: FORMAT.to_string(),
        competencies,
        roles,
    })
}

/// Creates what is new and changes what differs; a changed rubric becomes a
/// new published version, since published versions are immutable.
async fn apply(
    conn: &mut PgConnection,
    tenant: &TenantId,
    doc: &Document,
) -> Result<ImportReport, StorageError> {
    let mut report = ImportReport::default();
    for c in &doc.competencies {
        let item = format!("competency {}", c.id);
        match optional(competencies::get(conn, tenant, &c.id).await)? {
            None => {
                competencies::create(conn, tenant, c, None).await?;
                report.created.push(item);
            }
            Some(current) if current.value == *c => report.unchanged.push(item),
            Some(current) => {
                competencies::update(conn, tenant, c, current.meta.revision).await?;
                report.changed.push(item);
            }
        }
    }
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
            Some(current) if current.value == role => report.unchanged.push(item),
            Some(current) => {
                report.changed.push(item);
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
    Ok(report)
}
