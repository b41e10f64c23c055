//! Everything scoring a subject reads that changes from call to call, in one
//! statement: the evidence, the tenant's policy, the subject's stored current
//! role, and the tenant's framework revision (which says whether a cached
//! catalog is still current). One round trip instead of one per table is most
//! of what makes an assessment cheap next to fetching the evidence alone.
//!
//! When the policy turns rater calibration on, the same statement finds the
//! tenant's latest calibration (the one run last) and the leniencies of the
//! raters of this subject's evidence; with it off, those parts run no scan.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::domain::calibration::RaterEffects;
use crate::domain::evidence::Observation;
use crate::domain::scoring::{RaterAdjustments, ScoringPolicy};
use crate::storage::evidence::source;
use crate::storage::pg_array::{PgArray, PgStrs};
use crate::storage::traced::traced;
use crate::storage::{StorageError, TenantConnection, TenantId, timeout_setting};

/// The tenant, the subject, the time and the call's remaining time (as
/// `lock_timeout`, milliseconds): one row whatever exists, the evidence as
/// parallel arrays, empty when the subject has none. The function (migration
/// 0017) sets the tenant for the statement's own implicit transaction before
/// it runs the query, under row-level security. (Public for `ladder-bench`,
/// which times it under pgbench.)
pub const READ: &str = "SELECT * FROM ladder_scoring_inputs($1, $2, $3, $4)";

/// What scoring a subject as of a time reads from the database.
#[derive(Debug)]
pub struct ScoringInputs {
    /// `None` for a tenant that has never had a framework.
    pub framework_revision: Option<i64>,
    /// The tenant's policy, or the SPEC defaults.
    pub policy: ScoringPolicy,
    /// Whether the tenant has ever recorded the subject: a stored row, or
    /// evidence at any time (also after `as_of`).
    pub subject_known: bool,
    pub current_role_id: Option<String>,
    /// The subject's evidence observed up to `as_of`.
    pub observations: Vec<Observation>,
    /// The tenant's latest calibration, to score with: `None` when the
    /// policy's `rater_calibration` is off or the tenant has never run one.
    pub calibration_id: Option<Uuid>,
    /// That calibration's leniency of each evidence item's rater, by evidence
    /// id; empty without one, and items of raters it does not know are not
    /// adjusted.
    pub rater_adjustments: RaterAdjustments,
}

/// Borrows from the row it is read from: the sources and raters are only
/// parsed or looked up, so they are not copied out of it.
#[derive(sqlx::FromRow)]
struct InputsRow<'r> {
    framework_revision: Option<i64>,
    policy: Option<Json<ScoringPolicy>>,
    subject_known: bool,
    current_role_id: Option<String>,
    #[sqlx(flatten)]
    evidence: EvidenceArrays<'r>,
    #[sqlx(flatten)]
    calibration: CalibrationColumns<'r>,
}

/// Each evidence item's rater (parallel to [`EvidenceArrays`]), the
/// calibration to score with and its leniencies of those raters.
#[derive(sqlx::FromRow)]
struct CalibrationColumns<'r> {
    raters: PgStrs<'r>,
    calibration_id: Option<Uuid>,
    effect_raters: Vec<String>,
    leniencies: Vec<f64>,
}

impl CalibrationColumns<'_> {
    /// The leniency to remove from each item of `evidence` (none without a
    /// calibration).
    fn adjustments(&self, evidence: &EvidenceArrays<'_>) -> RaterAdjustments {
        let effects: RaterEffects = self
            .effect_raters
            .iter()
            .cloned()
            .zip(self.leniencies.iter().copied())
            .collect();
        effects.adjustments(
            evidence
                .ids
                .0
                .iter()
                .copied()
                .zip(self.raters.0.iter().copied()),
        )
    }
}

/// Reads a subject's scoring inputs as of `as_of` in one tenant-scoped
/// statement, outside any explicit transaction: a single statement sees one
/// snapshot on its own, and what it sets lasts as long as it does. A lock
/// the read waits for is given up once the call's time is up; the read
/// itself is one subject's rows. (PostgreSQL arms a statement's
/// `statement_timeout` when the statement starts, with the value in force
/// then, so a statement cannot set its own; setting it for the session
/// would leave it to the connection's next user.)
pub async fn read(
    conn: &mut TenantConnection,
    tenant: &TenantId,
    subject_id: &str,
    as_of: DateTime<Utc>,
) -> Result<ScoringInputs, StorageError> {
    debug_assert_eq!(conn.tenant(), tenant);
    let lock_timeout = timeout_setting(Some(conn.remaining()));
    let read = async |conn: &mut PgConnection| {
        sqlx::query(READ)
            .bind(&tenant.0)
            .bind(subject_id)
            .bind(as_of)
            .bind(&lock_timeout)
            .fetch_one(traced!(conn, READ))
            .await
            .map_err(StorageError::from)
    };
    // Behind a transaction pooler the statement's preparation and execution
    // must meet the same server connection: a transaction holds it.
    let row = if conn.behind_pooler() {
        conn.in_transaction(read).await?
    } else {
        read(conn.raw()).await?
    };
    let row = InputsRow::from_row(&row)?;
    let rater_adjustments = row.calibration.adjustments(&row.evidence);
    let observations = observations(row.evidence)?;
    Ok(ScoringInputs {
        framework_revision: row.framework_revision,
        policy: row.policy.map(|p| p.0).unwrap_or_default(),
        subject_known: row.subject_known,
        current_role_id: row.current_role_id,
        observations,
        calibration_id: row.calibration.calibration_id,
        rater_adjustments,
    })
}

/// Evidence as parallel arrays, one element per item.
#[derive(sqlx::FromRow)]
struct EvidenceArrays<'r> {
    ids: PgArray<Uuid>,
    competencies: PgArray<String>,
    levels: PgArray<f64>,
    sources: PgStrs<'r>,
    confidences: PgArray<f64>,
    observed: PgArray<DateTime<Utc>>,
}

fn observations(arrays: EvidenceArrays<'_>) -> Result<Vec<Observation>, StorageError> {
    arrays
        .ids
        .0
        .into_iter()
        .zip(arrays.competencies.0)
        .zip(arrays.levels.0)
        .zip(arrays.sources.0)
        .zip(arrays.confidences.0)
        .zip(arrays.observed.0)
        .map(
            |(((((id, competency_id), level), src), confidence), observed_at)| {
                Ok(Observation {
                    id,
                    competency_id,
                    level,
                    source: source(src)?,
                    confidence,
                    observed_at,
                })
            },
        )
        .collect()
}

/// Like [`READ`]'s query for many subjects at once, without current roles: the
/// evidence of every subject in `$2`, each item with its subject, and the
/// leniencies of its raters when the policy turns calibration on.
const READ_MANY: &str = "SELECT t.framework_revision, p.policy, \
         e.subjects, e.ids, e.competencies, e.levels, e.sources, e.confidences, e.observed, \
         e.raters, c.id AS calibration_id, f.rater_ids AS effect_raters, f.leniencies \
     FROM (SELECT $1::text AS tenant_id) AS q \
     LEFT JOIN tenants t ON t.tenant_id = q.tenant_id \
     LEFT JOIN scoring_policies p ON p.tenant_id = q.tenant_id \
     CROSS JOIN LATERAL ( \
         SELECT COALESCE(array_agg(subject_id), '{}') AS subjects, \
                COALESCE(array_agg(id), '{}') AS ids, \
                COALESCE(array_agg(competency_id), '{}') AS competencies, \
                COALESCE(array_agg(level), '{}') AS levels, \
                COALESCE(array_agg(source), '{}') AS sources, \
                COALESCE(array_agg(confidence), '{}') AS confidences, \
                COALESCE(array_agg(observed_at), '{}') AS observed, \
                COALESCE(array_agg(rater_id), '{}') AS raters \
         FROM evidence \
         WHERE tenant_id = $1 AND subject_id = ANY($2) AND observed_at <= $3) AS e \
     LEFT JOIN LATERAL ( \
         SELECT id FROM calibrations \
         WHERE tenant_id = $1 AND (p.policy ->> 'rater_calibration')::boolean IS TRUE \
         ORDER BY create_time DESC, id DESC LIMIT 1) AS c ON true \
     CROSS JOIN LATERAL ( \
         SELECT COALESCE(array_agg(rater_id), '{}') AS rater_ids, \
                COALESCE(array_agg(leniency), '{}') AS leniencies \
         FROM rater_effects \
         WHERE tenant_id = $1 AND calibration_id = c.id AND rater_id = ANY (e.raters)) AS f";

/// What scoring many subjects as of one time reads from the database.
#[derive(Debug)]
pub struct ManyScoringInputs {
    /// `None` for a tenant that has never had a framework.
    pub framework_revision: Option<i64>,
    /// The tenant's policy, or the SPEC defaults.
    pub policy: ScoringPolicy,
    /// Each subject's evidence observed up to `as_of`; a subject without
    /// any has no entry.
    pub observations: HashMap<String, Vec<Observation>>,
    /// As for [`ScoringInputs`]: the calibration to score with, if any.
    pub calibration_id: Option<Uuid>,
    /// Its leniency of each evidence item's rater, by evidence id (of every
    /// subject).
    pub rater_adjustments: RaterAdjustments,
}

#[derive(sqlx::FromRow)]
struct ManyInputsRow<'r> {
    framework_revision: Option<i64>,
    policy: Option<Json<ScoringPolicy>>,
    subjects: PgArray<String>,
    #[sqlx(flatten)]
    evidence: EvidenceArrays<'r>,
    #[sqlx(flatten)]
    calibration: CalibrationColumns<'r>,
}

/// Reads the scoring inputs of every subject in `subject_ids` as of `as_of`
/// in one tenant-scoped statement (one snapshot), in a transaction of its
/// own on `conn` whose `statement_timeout` is the call's remaining time
/// (many subjects' evidence may take a while to read).
pub async fn read_many(
    conn: &mut TenantConnection,
    tenant: &TenantId,
    subject_ids: &[String],
    as_of: DateTime<Utc>,
) -> Result<ManyScoringInputs, StorageError> {
    debug_assert_eq!(conn.tenant(), tenant);
    let mut tx = conn.begin().await?;
    let row = sqlx::query(READ_MANY)
        .bind(&tenant.0)
        .bind(subject_ids)
        .bind(as_of)
        .fetch_one(traced!(tx, READ_MANY))
        .await?;
    tx.commit().await?;
    let row = ManyInputsRow::from_row(&row)?;
    let rater_adjustments = row.calibration.adjustments(&row.evidence);
    let mut by_subject: HashMap<String, Vec<Observation>> = HashMap::new();
    for (subject_id, observation) in row.subjects.0.into_iter().zip(observations(row.evidence)?) {
        by_subject.entry(subject_id).or_default().push(observation);
    }
    Ok(ManyScoringInputs {
        framework_revision: row.framework_revision,
        policy: row.policy.map(|p| p.0).unwrap_or_default(),
        observations: by_subject,
        calibration_id: row.calibration.calibration_id,
        rater_adjustments,
    })
}
