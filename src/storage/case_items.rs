//! The CASE identity of competencies (SPEC §9): the identifier, URI and
//! human coding scheme of the item each was imported from, kept on the
//! competency's row (migration 0021).

use sqlx::PgConnection;

use crate::domain::standards::ReadFramework;
use crate::domain::standards::case::{CaseItem, adopt_known_ids};
use crate::storage::framework_file::{self, ImportReport, Prune};
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId};

/// Retired competencies too: an item that comes back returns to its own.
const KNOWN: &str = "SELECT id, case_identifier, case_uri, case_human_coding_scheme \
     FROM competencies \
     WHERE tenant_id = $1 AND (case_identifier IS NOT NULL OR case_uri IS NOT NULL) \
     ORDER BY id";

#[derive(sqlx::FromRow)]
struct KnownRow {
    id: String,
    case_identifier: Option<String>,
    case_uri: Option<String>,
    case_human_coding_scheme: Option<String>,
}

/// The tenant's competencies that came from a CASE item, with its identity.
pub async fn known(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<CaseItem>, StorageError> {
    let rows: Vec<KnownRow> = sqlx::query_as(KNOWN)
        .bind(&tenant.0)
        .fetch_all(traced!(conn, KNOWN))
        .await?;
    Ok(rows.into_iter().map(CaseItem::from).collect())
}

impl From<KnownRow> for CaseItem {
    fn from(r: KnownRow) -> Self {
        CaseItem {
            competency_id: r.id,
            identifier: r.case_identifier,
            uri: r.case_uri,
            human_coding_scheme: r.case_human_coding_scheme,
        }
    }
}

const OF: &str = "SELECT id, case_identifier, case_uri, case_human_coding_scheme \
     FROM competencies \
     WHERE tenant_id = $1 AND id = ANY($2) \
       AND (case_identifier IS NOT NULL OR case_uri IS NOT NULL)";

/// The CASE identity of those of the competencies `ids` that have one.
pub async fn of(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[&str],
) -> Result<Vec<CaseItem>, StorageError> {
    let rows: Vec<KnownRow> = sqlx::query_as(OF)
        .bind(&tenant.0)
        .bind(ids)
        .fetch_all(traced!(conn, OF))
        .await?;
    Ok(rows.into_iter().map(CaseItem::from).collect())
}

const RECORD: &str = "UPDATE competencies AS c \
     SET case_identifier = i.identifier, case_uri = i.uri, case_human_coding_scheme = i.code \
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS i(id, identifier, uri, code) \
     WHERE c.tenant_id = $1 AND c.id = i.id";

async fn record(
    conn: &mut PgConnection,
    tenant: &TenantId,
    items: &[CaseItem],
) -> Result<(), StorageError> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = items.iter().map(|i| i.competency_id.as_str()).collect();
    let identifiers: Vec<Option<&str>> = items.iter().map(|i| i.identifier.as_deref()).collect();
    let uris: Vec<Option<&str>> = items.iter().map(|i| i.uri.as_deref()).collect();
    let codes: Vec<Option<&str>> = items
        .iter()
        .map(|i| i.human_coding_scheme.as_deref())
        .collect();
    sqlx::query(RECORD)
        .bind(&tenant.0)
        .bind(ids)
        .bind(identifiers)
        .bind(uris)
        .bind(codes)
        .execute(traced!(conn, RECORD))
        .await?;
    Ok(())
}

/// Imports a framework read from a document on `conn` (the caller's tenant
/// transaction) like [`framework_file::import`]; a CASE package's items
/// first take the ids of the competencies they already became (so a renamed
/// item updates its competency), and each competency then keeps its item's
/// identity. A dry run records nothing.
pub async fn import(
    conn: &mut PgConnection,
    tenant: &TenantId,
    read: &mut ReadFramework,
    dry_run: bool,
    prune: &Prune,
) -> Result<ImportReport, StorageError> {
    if !read.case_items.is_empty() {
        let known = known(conn, tenant).await?;
        adopt_known_ids(&mut read.document, &mut read.case_items, &known);
    }
    let report = framework_file::import(conn, tenant, &read.document, dry_run, prune).await?;
    if !dry_run {
        record(conn, tenant, &read.case_items).await?;
    }
    Ok(report)
}
