//! Evidence rows: idempotent bulk ingest, corrections, reads for scoring
//! and listing.

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::domain::evidence::{Correction, Evidence, Source};
use crate::domain::framework::closest;
use crate::storage::traced::traced;
use crate::storage::{Refusal, StorageError, TenantId, sqlstate};

macro_rules! columns {
    () => {
        "id, subject_id, competency_id, level, source, rater_id, observed_at, confidence, \
         summary, link, source_system, external_id, revision"
    };
}

/// What an update or delete calls evidence in errors.
pub const KIND: &str = "evidence";

/// One statement for the whole batch: arrays in, one row per item; a key that
/// is already stored is skipped, and RETURNING tells which items were new.
const INSERT_BATCH: &str = "INSERT INTO evidence (tenant_id, id, subject_id, competency_id, level, source, \
         rater_id, observed_at, confidence, summary, link, source_system, external_id) \
     SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::text[], \
         $8::timestamptz[], $9::float8[], $10::text[], $11::text[], $12::text[], $13::text[]) \
     ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING \
     RETURNING id";

const STORED_WITH_KEYS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM evidence WHERE tenant_id = $1 \
       AND (source_system, external_id) IN (SELECT * FROM UNNEST($2::text[], $3::text[]))"
);

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM evidence WHERE tenant_id = $1 AND id = $2"
);

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM evidence WHERE tenant_id = $1 AND subject_id = $2 \
       AND ($3::text IS NULL OR competency_id = $3) \
       AND ($4::timestamptz IS NULL OR observed_at >= $4) \
       AND ($5::timestamptz IS NULL OR observed_at < $5) \
       AND ($6::timestamptz IS NULL OR (observed_at, id) > ($6, $7)) \
     ORDER BY observed_at, id LIMIT $8"
);

const WITH_IDS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM evidence WHERE tenant_id = $1 AND id = ANY($2)"
);

const GET_BY_KEY: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM evidence WHERE tenant_id = $1 AND source_system = $2 AND external_id = $3"
);

/// Writes a correction over the revision it was made from.
const CORRECT: &str = "UPDATE evidence SET level = $4, source = $5, rater_id = $6, \
         observed_at = $7, confidence = $8, summary = $9, link = $10, revision = revision + 1 \
     WHERE tenant_id = $1 AND id = $2 AND revision = $3 \
     RETURNING revision";

const DELETE: &str = "DELETE FROM evidence WHERE tenant_id = $1 AND id = $2";

const DELETE_BY_KEY: &str = "DELETE FROM evidence \
     WHERE tenant_id = $1 AND source_system = $2 AND external_id = $3 RETURNING id";

#[derive(sqlx::FromRow)]
struct EvidenceRow {
    id: Uuid,
    subject_id: String,
    competency_id: String,
    level: f64,
    source: String,
    rater_id: String,
    observed_at: DateTime<Utc>,
    confidence: f64,
    summary: String,
    link: String,
    source_system: String,
    external_id: String,
    revision: i64,
}

pub(super) fn source(name: &str) -> Result<Source, StorageError> {
    Source::parse(name).ok_or_else(|| StorageError::corrupt("evidence source", name))
}

/// Items (by position) about a competency the tenant does not have in use.
/// A competency a prune retired still takes a re-send of evidence stored
/// about it under the same key: that item is already present (SPEC §6),
/// and [`insert_batch`] answers it as stored or as a conflict.
const UNKNOWN_COMPETENCIES: &str = "SELECT (i.n - 1)::bigint FROM UNNEST($2::text[], $3::text[], $4::text[]) \
         WITH ORDINALITY AS i(competency_id, source_system, external_id, n) \
     WHERE NOT EXISTS (SELECT 1 FROM competencies c WHERE c.tenant_id = $1 \
             AND c.id = i.competency_id AND c.retire_time IS NULL) \
       AND NOT EXISTS (SELECT 1 FROM evidence e WHERE e.tenant_id = $1 \
             AND e.source_system = i.source_system AND e.external_id = i.external_id \
             AND e.competency_id = i.competency_id) \
     ORDER BY i.n";

/// The competency ids in use, for suggesting one to a typo.
const COMPETENCY_IDS: &str =
    "SELECT id FROM competencies WHERE tenant_id = $1 AND retire_time IS NULL ORDER BY id";

/// Each item of `items` about a competency the tenant does not have in use
/// (unknown, or retired and not a re-send), with the id of the competency
/// it most likely meant when one is close.
pub async fn unknown_competencies(
    conn: &mut PgConnection,
    tenant: &TenantId,
    items: &[Evidence],
) -> Result<Vec<(usize, Option<String>)>, StorageError> {
    let column = |f: fn(&Evidence) -> &String| items.iter().map(f).collect::<Vec<_>>();
    let unknown: Vec<i64> = sqlx::query_scalar(UNKNOWN_COMPETENCIES)
        .bind(&tenant.0)
        .bind(column(|e| &e.competency_id))
        .bind(column(|e| &e.source_system))
        .bind(column(|e| &e.external_id))
        .fetch_all(traced!(conn, UNKNOWN_COMPETENCIES))
        .await?;
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let defined: Vec<String> = sqlx::query_scalar(COMPETENCY_IDS)
        .bind(&tenant.0)
        .fetch_all(traced!(conn, COMPETENCY_IDS))
        .await?;
    Ok(unknown
        .into_iter()
        .map(|i| {
            let i = i as usize;
            let meant = closest(&items[i].competency_id, defined.iter().map(String::as_str));
            (i, meant.map(str::to_string))
        })
        .collect())
}

/// Evidence as stored, with the revision its etag is made from.
pub type Revised = (Evidence, i64);

impl TryFrom<EvidenceRow> for Revised {
    type Error = StorageError;

    fn try_from(row: EvidenceRow) -> Result<Self, StorageError> {
        let revision = row.revision;
        Ok((Evidence::try_from(row)?, revision))
    }
}

impl TryFrom<EvidenceRow> for Evidence {
    type Error = StorageError;

    fn try_from(row: EvidenceRow) -> Result<Self, StorageError> {
        Ok(Evidence {
            id: row.id,
            subject_id: row.subject_id,
            competency_id: row.competency_id,
            level: row.level,
            source: source(&row.source)?,
            rater_id: row.rater_id,
            observed_at: row.observed_at,
            confidence: row.confidence,
            summary: row.summary,
            link: row.link,
            source_system: row.source_system,
            external_id: row.external_id,
        })
    }
}

/// A batch item whose (source_system, external_id) is stored with other
/// content: a conflicting re-send.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyConflict {
    /// The item's position in the request.
    pub index: usize,
    /// The evidence stored under the key.
    pub stored_id: Uuid,
    /// The fields in which the item differs from it (API names).
    pub fields: Vec<&'static str>,
}

/// The conflicts in words: which item repeats which stored evidence, and
/// what it says differently.
pub fn describe_conflicts(conflicts: &[KeyConflict]) -> String {
    let each: Vec<String> = conflicts
        .iter()
        .map(|c| {
            format!(
                "evidence[{}] repeats the (source_system, external_id) of stored evidence {} \
                 with a different {}",
                c.index,
                c.stored_id,
                c.fields.join(", ")
            )
        })
        .collect();
    format!(
        "{}; correct stored evidence with UpdateEvidence",
        each.join("; ")
    )
}

/// What a batch ingest did.
#[derive(Debug)]
pub struct Ingested {
    /// In request order, with their revisions; items that already existed
    /// come back as stored.
    pub evidence: Vec<Revised>,
    pub created: usize,
    /// In request order: whether this call stored the item (false: it was
    /// already there).
    pub is_new: Vec<bool>,
}

/// Inserts a validated batch. Items whose key is already stored with the same
/// content are returned as stored; a key stored with different content fails
/// the whole batch with [`StorageError::EvidenceConflict`] naming the items,
/// the evidence stored under their keys and the fields that differ.
pub async fn insert_batch(
    conn: &mut PgConnection,
    tenant: &TenantId,
    items: Vec<Evidence>,
) -> Result<Ingested, StorageError> {
    // Rows are inserted, and their keys locked, in key order: two batches
    // that share keys then wait for each other instead of deadlocking.
    let mut in_key_order: Vec<&Evidence> = items.iter().collect();
    in_key_order.sort_by(|a, b| {
        (&a.source_system, &a.external_id).cmp(&(&b.source_system, &b.external_id))
    });
    macro_rules! column {
        ($field:ident) => {
            in_key_order
                .iter()
                .map(|e| e.$field.clone())
                .collect::<Vec<_>>()
        };
    }
    let sources: Vec<&str> = in_key_order.iter().map(|e| e.source.as_str()).collect();
    let inserted: Vec<Uuid> = sqlx::query_scalar(INSERT_BATCH)
        .bind(&tenant.0)
        .bind(column!(id))
        .bind(column!(subject_id))
        .bind(column!(competency_id))
        .bind(column!(level))
        .bind(&sources)
        .bind(column!(rater_id))
        .bind(column!(observed_at))
        .bind(column!(confidence))
        .bind(column!(summary))
        .bind(column!(link))
        .bind(column!(source_system))
        .bind(column!(external_id))
        .fetch_all(traced!(conn, INSERT_BATCH))
        .await?;
    let created = inserted.len();
    if created == items.len() {
        return Ok(Ingested {
            is_new: vec![true; created],
            evidence: items.into_iter().map(|e| (e, 1)).collect(),
            created,
        });
    }
    let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
    let (systems, externals): (Vec<String>, Vec<String>) = items
        .iter()
        .filter(|e| !inserted.contains(&e.id))
        .map(|e| (e.source_system.clone(), e.external_id.clone()))
        .unzip();
    let stored: Vec<EvidenceRow> = sqlx::query_as(STORED_WITH_KEYS)
        .bind(&tenant.0)
        .bind(&systems)
        .bind(&externals)
        .fetch_all(traced!(conn, STORED_WITH_KEYS))
        .await?;
    let mut by_key = std::collections::HashMap::new();
    for row in stored {
        let (evidence, revision) = Revised::try_from(row)?;
        by_key.insert(
            (evidence.source_system.clone(), evidence.external_id.clone()),
            (evidence, revision),
        );
    }
    let mut conflicts = Vec::new();
    let mut evidence = Vec::with_capacity(items.len());
    let is_new: Vec<bool> = items.iter().map(|e| inserted.contains(&e.id)).collect();
    for (i, item) in items.into_iter().enumerate() {
        if is_new[i] {
            evidence.push((item, 1));
            continue;
        }
        // Skipped as stored, yet gone when read: deleted meanwhile by
        // another call (the skip locks nothing). A retry sees which.
        let Some((existing, revision)) =
            by_key.get(&(item.source_system.clone(), item.external_id.clone()))
        else {
            return Err(StorageError::Refused {
                refusal: Refusal::Retryable,
                sqlstate: sqlstate::SERIALIZATION_FAILURE.to_string(),
                message: format!(
                    "the evidence stored under the key of evidence[{i}] was deleted meanwhile"
                ),
            });
        };
        let fields = existing.differing_fields(&item);
        if fields.is_empty() {
            evidence.push((existing.clone(), *revision));
        } else {
            conflicts.push(KeyConflict {
                index: i,
                stored_id: existing.id,
                fields,
            });
        }
    }
    if conflicts.is_empty() {
        Ok(Ingested {
            evidence,
            created,
            is_new,
        })
    } else {
        Err(StorageError::EvidenceConflict(conflicts))
    }
}

/// Inserts a validated batch as [`insert_batch`] does, except that a key
/// stored with different content refuses only its own item: per item, in
/// request order, the evidence as stored and whether this call stored it,
/// or `None` for a refused item. Each attempt runs in a nested transaction
/// (a savepoint), undone when it finds conflicts; the next leaves them out.
pub async fn insert_each(
    conn: &mut PgConnection,
    tenant: &TenantId,
    items: Vec<Evidence>,
) -> Result<Vec<Option<(Evidence, bool)>>, StorageError> {
    let mut outcome = vec![None; items.len()];
    let mut pending: Vec<usize> = (0..items.len()).collect();
    while !pending.is_empty() {
        let attempt = pending.iter().map(|&i| items[i].clone()).collect();
        let mut tx = conn.begin().await?;
        match insert_batch(&mut tx, tenant, attempt).await {
            Ok(ingested) => {
                tx.commit().await?;
                let stored = ingested.evidence.into_iter().zip(ingested.is_new);
                for (&i, ((evidence, _), is_new)) in pending.iter().zip(stored) {
                    outcome[i] = Some((evidence, is_new));
                }
                break;
            }
            Err(StorageError::EvidenceConflict(refused)) => {
                tx.rollback().await?;
                pending = pending
                    .into_iter()
                    .enumerate()
                    .filter(|(k, _)| !refused.iter().any(|c| c.index == *k))
                    .map(|(_, i)| i)
                    .collect();
            }
            Err(other) => return Err(other),
        }
    }
    Ok(outcome)
}

pub async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Revised, StorageError> {
    let row: Option<EvidenceRow> = sqlx::query_as(GET)
        .bind(&tenant.0)
        .bind(id)
        .fetch_optional(traced!(conn, GET))
        .await?;
    row.ok_or_else(|| StorageError::not_found(KIND, id.to_string()))?
        .try_into()
}

/// The evidence stored under a caller's key.
pub async fn get_by_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    source_system: &str,
    external_id: &str,
) -> Result<Revised, StorageError> {
    let row: Option<EvidenceRow> = sqlx::query_as(GET_BY_KEY)
        .bind(&tenant.0)
        .bind(source_system)
        .bind(external_id)
        .fetch_optional(traced!(conn, GET_BY_KEY))
        .await?;
    row.ok_or_else(|| StorageError::not_found(KIND, format!("({source_system}, {external_id})")))?
        .try_into()
}

/// Writes `correction` over `evidence` as read at `revision`, answering the
/// corrected evidence and its new revision; a change made since that read
/// is refused as a stale etag.
pub async fn correct(
    conn: &mut PgConnection,
    tenant: &TenantId,
    evidence: Evidence,
    revision: i64,
    correction: &Correction,
) -> Result<Revised, StorageError> {
    let corrected = evidence.corrected(correction);
    let revision: Option<i64> = sqlx::query_scalar(CORRECT)
        .bind(&tenant.0)
        .bind(corrected.id)
        .bind(revision)
        .bind(corrected.level)
        .bind(corrected.source.as_str())
        .bind(&corrected.rater_id)
        .bind(corrected.observed_at)
        .bind(corrected.confidence)
        .bind(&corrected.summary)
        .bind(&corrected.link)
        .fetch_optional(traced!(conn, CORRECT))
        .await?;
    let revision = revision.ok_or_else(|| StorageError::stale(KIND, corrected.id.to_string()))?;
    Ok((corrected, revision))
}

pub async fn delete(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<(), StorageError> {
    let deleted = sqlx::query(DELETE)
        .bind(&tenant.0)
        .bind(id)
        .execute(traced!(conn, DELETE))
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(StorageError::not_found(KIND, id.to_string()));
    }
    Ok(())
}

/// Deletes the evidence stored under a caller's key, answering its id, or
/// `None` when there is none.
pub async fn delete_by_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    source_system: &str,
    external_id: &str,
) -> Result<Option<Uuid>, StorageError> {
    Ok(sqlx::query_scalar(DELETE_BY_KEY)
        .bind(&tenant.0)
        .bind(source_system)
        .bind(external_id)
        .fetch_optional(traced!(conn, DELETE_BY_KEY))
        .await?)
}

/// What [`list`] filters on.
#[derive(Debug, Default, Clone)]
pub struct EvidenceFilter {
    pub subject_id: String,
    pub competency_id: Option<String>,
    pub observed_after: Option<DateTime<Utc>>,
    pub observed_before: Option<DateTime<Utc>>,
}

/// Where a listing of evidence resumes: the last row served.
pub type EvidenceKey = (DateTime<Utc>, Uuid);

/// Up to `limit` of a subject's evidence after `after`, oldest observation first.
pub async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    filter: &EvidenceFilter,
    after: Option<EvidenceKey>,
    limit: i64,
) -> Result<Vec<Revised>, StorageError> {
    let rows: Vec<EvidenceRow> = sqlx::query_as(LIST)
        .bind(&tenant.0)
        .bind(&filter.subject_id)
        .bind(&filter.competency_id)
        .bind(filter.observed_after)
        .bind(filter.observed_before)
        .bind(after.map(|k| k.0))
        .bind(after.map(|k| k.1))
        .bind(limit)
        .fetch_all(traced!(conn, LIST))
        .await?;
    rows.into_iter().map(Revised::try_from).collect()
}

/// The tenant's evidence items among `ids` that still exist, in no order.
pub async fn with_ids(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[Uuid],
) -> Result<Vec<Evidence>, StorageError> {
    let rows: Vec<EvidenceRow> = sqlx::query_as(WITH_IDS)
        .bind(&tenant.0)
        .bind(ids)
        .fetch_all(traced!(conn, WITH_IDS))
        .await?;
    rows.into_iter().map(Evidence::try_from).collect()
}
