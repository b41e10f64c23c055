//! Subjects: the role each holds now, their org unit and their manager.

use sqlx::PgConnection;

use crate::domain::assessment::Subject;
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantId};

/// Revision of a subject known only from its evidence: it has no row yet.
pub const FROM_EVIDENCE_ONLY: i64 = 0;

/// A subject exists once it has a stored row or any evidence; one known only
/// from its evidence has nothing else recorded and revision 0.
const GET: &str = "SELECT id, current_role_id, org_unit, manager_id, revision FROM subjects \
         WHERE tenant_id = $1 AND id = $2 \
     UNION ALL SELECT $2::text, NULL::text, NULL::text, NULL::text, 0::bigint \
         WHERE EXISTS (SELECT 1 FROM evidence WHERE tenant_id = $1 AND subject_id = $2) \
     ORDER BY revision DESC LIMIT 1";

type SubjectRow = (String, Option<String>, Option<String>, Option<String>, i64);

fn from_row((id, current_role_id, org_unit, manager_id, revision): SubjectRow) -> (Subject, i64) {
    (
        Subject {
            id,
            current_role_id,
            org_unit,
            manager_id,
        },
        revision,
    )
}

/// The subject and its revision.
pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<(Subject, i64), StorageError> {
    let row: Option<SubjectRow> = sqlx::query_as(GET)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(traced!(conn, GET))
        .await?;
    row.map(from_row)
        .ok_or_else(|| StorageError::not_found("subject", id))
}

/// [`GET`] for many ids at once: the ones that exist, in no particular order.
const GET_MANY: &str = "SELECT i.id, s.current_role_id, s.org_unit, s.manager_id, \
            COALESCE(s.revision, 0) \
     FROM unnest($2::text[]) AS i (id) \
     LEFT JOIN subjects s ON s.tenant_id = $1 AND s.id = i.id \
     WHERE s.id IS NOT NULL \
        OR EXISTS (SELECT 1 FROM evidence e WHERE e.tenant_id = $1 AND e.subject_id = i.id)";

/// Those of `ids` that exist, with their revisions.
pub async fn get_many(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[String],
) -> Result<Vec<(Subject, i64)>, StorageError> {
    let rows: Vec<SubjectRow> = sqlx::query_as(GET_MANY)
        .bind(&tenant.0)
        .bind(ids)
        .fetch_all(traced!(conn, GET_MANY))
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Writes subjects as read at a revision: a row read at revision r is
/// updated only if it is still at r; a subject without a row (revision 0)
/// gets one unless another call made it meanwhile. Returns the ids written
/// and their new revisions.
const PUT_MANY: &str = "WITH input AS (\
       SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) \
         AS t (id, current_role_id, org_unit, manager_id, revision)), \
     updated AS (\
       UPDATE subjects s SET current_role_id = i.current_role_id, org_unit = i.org_unit, \
           manager_id = i.manager_id, revision = s.revision + 1, update_time = now() \
       FROM input i \
       WHERE s.tenant_id = $1 AND s.id = i.id AND i.revision > 0 AND s.revision = i.revision \
       RETURNING s.id, s.revision), \
     inserted AS (\
       INSERT INTO subjects (tenant_id, id, current_role_id, org_unit, manager_id) \
       SELECT $1, id, current_role_id, org_unit, manager_id FROM input WHERE revision = 0 \
       ON CONFLICT (tenant_id, id) DO NOTHING \
       RETURNING id, revision) \
     SELECT id, revision FROM updated UNION ALL SELECT id, revision FROM inserted";

/// Stores each subject over the revision it was read at (0 for one without
/// a row) and returns the new revisions, in the order given. A subject
/// changed by another call since it was read is stale, and then nothing
/// must be kept: the caller's transaction is rolled back.
pub async fn put_many(
    conn: &mut PgConnection,
    tenant: &TenantId,
    writes: &[(Subject, i64)],
) -> Result<Vec<i64>, StorageError> {
    let column = |f: fn(&Subject) -> Option<String>| -> Vec<Option<String>> {
        writes.iter().map(|(s, _)| f(s)).collect()
    };
    let ids: Vec<&str> = writes.iter().map(|(s, _)| s.id.as_str()).collect();
    let revisions: Vec<i64> = writes.iter().map(|(_, r)| *r).collect();
    let written: Vec<(String, i64)> = sqlx::query_as(PUT_MANY)
        .bind(&tenant.0)
        .bind(&ids)
        .bind(column(|s| s.current_role_id.clone()))
        .bind(column(|s| s.org_unit.clone()))
        .bind(column(|s| s.manager_id.clone()))
        .bind(&revisions)
        .fetch_all(traced!(conn, PUT_MANY))
        .await?;
    ids.iter()
        .map(|id| {
            written
                .iter()
                .find(|(w, _)| w == id)
                .map(|(_, revision)| *revision)
                .ok_or_else(|| StorageError::stale("subject", *id))
        })
        .collect()
}

/// One lock per tenant for changes of manager: two calls that each add
/// half of a cycle (a reports to b, b reports to a) would otherwise both
/// find none. Held until the transaction ends.
const LOCK_MANAGERS: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('ladder.subject_managers/' || $1, 0))";

/// Serialises the tenant's manager changes until the transaction ends; take
/// it before reading what the change is checked against.
pub async fn lock_managers(conn: &mut PgConnection, tenant: &TenantId) -> Result<(), StorageError> {
    sqlx::query(LOCK_MANAGERS)
        .bind(&tenant.0)
        .execute(traced!(conn, LOCK_MANAGERS))
        .await?;
    Ok(())
}

/// Walks up from each of `$2` along manager_id; UNION (not UNION ALL) ends
/// the walk once it comes round again.
const IN_CYCLES: &str = "WITH RECURSIVE up (start, id) AS (\
       SELECT s.id, s.manager_id FROM subjects s \
       WHERE s.tenant_id = $1 AND s.id = ANY($2) AND s.manager_id IS NOT NULL \
     UNION \
       SELECT up.start, s.manager_id FROM up \
       JOIN subjects s ON s.tenant_id = $1 AND s.id = up.id \
       WHERE s.manager_id IS NOT NULL) \
     SELECT DISTINCT start FROM up WHERE id = start";

/// Those of `ids` that are, as stored now, their own manager's manager at
/// some remove.
pub async fn in_cycles(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[String],
) -> Result<Vec<String>, StorageError> {
    Ok(sqlx::query_scalar(IN_CYCLES)
        .bind(&tenant.0)
        .bind(ids)
        .fetch_all(traced!(conn, IN_CYCLES))
        .await?)
}

/// Which subjects a listing selects; every filter set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectFilter {
    /// This unit and every unit below it, by whole parts.
    pub org_unit: Option<String>,
    pub manager_id: Option<String>,
    /// With `manager_id`: the reports of reports too, at any depth.
    pub indirect_reports: bool,
    pub current_role_id: Option<String>,
}

impl SubjectFilter {
    fn any(&self) -> bool {
        self.org_unit.is_some() || self.manager_id.is_some() || self.current_role_id.is_some()
    }
}

/// Subjects in id order after `$6`. An org unit and the units below it are
/// one byte range of `subjects_by_org_unit` (migration 0018): `u` itself,
/// and from `u/` up to `u0`, '0' being the byte after '/'. A manager's
/// subtree walks `subjects_by_manager` down (UNION ends a cycle, though
/// writes refuse them). Subjects known only from evidence have no role, unit
/// or manager, so they are listed only when no filter is set (`$8`).
const LIST: &str = "WITH RECURSIVE under (id) AS (\
       SELECT id FROM subjects WHERE $4::boolean AND tenant_id = $1 AND manager_id = $3 \
     UNION \
       SELECT s.id FROM under u \
       JOIN subjects s ON s.tenant_id = $1 AND s.manager_id = u.id) \
     (SELECT id, current_role_id, org_unit, manager_id, revision FROM subjects \
       WHERE tenant_id = $1 \
         AND ($2::text IS NULL OR org_unit = $2 \
              OR (org_unit ~>=~ ($2 || '/') AND org_unit ~<~ ($2 || '0'))) \
         AND ($3::text IS NULL OR ($4 AND id IN (SELECT id FROM under)) \
              OR (NOT $4 AND manager_id = $3)) \
         AND ($5::text IS NULL OR current_role_id = $5) \
         AND ($6::text IS NULL OR id > $6) \
       ORDER BY id LIMIT $7) \
     UNION ALL \
     (SELECT DISTINCT e.subject_id, NULL::text, NULL::text, NULL::text, 0::bigint \
       FROM evidence e \
       WHERE NOT $8::boolean AND e.tenant_id = $1 AND ($6::text IS NULL OR e.subject_id > $6) \
         AND NOT EXISTS (SELECT 1 FROM subjects s \
                         WHERE s.tenant_id = $1 AND s.id = e.subject_id) \
       ORDER BY 1 LIMIT $7) \
     ORDER BY 1 LIMIT $7";

/// Up to `limit` subjects matching `filter` with ids after `after`, in id
/// order, with their revisions.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    filter: &SubjectFilter,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<(Subject, i64)>, StorageError> {
    let rows: Vec<SubjectRow> = sqlx::query_as(LIST)
        .bind(&tenant.0)
        .bind(&filter.org_unit)
        .bind(&filter.manager_id)
        .bind(filter.indirect_reports)
        .bind(&filter.current_role_id)
        .bind(after)
        .bind(limit)
        .bind(filter.any())
        .fetch_all(traced!(conn, LIST))
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}
