//! The benchmark's evidence rows: deterministic in their index, written either
//! as `BatchCreateEvidence` items or in PostgreSQL's binary COPY format.
//!
//! A population is a tenant's subjects with exactly [`PER_SUBJECT`] items each.
//! Its rows are interleaved (row `i` belongs to subject `i % subjects`), so each
//! subject's rows lie spread over the whole table, as evidence that arrives
//! over years does, rather than packed into one or two pages.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use ladder::domain::framework::Document;
use ladder::proto::v1 as pb;
use uuid::Uuid;

/// Evidence items per subject: the assessment workloads' subject size.
pub const PER_SUBJECT: usize = 50;
/// The columns a COPY row fills, in its order.
pub const COPY_EVIDENCE: &str = "COPY evidence (tenant_id, id, subject_id, competency_id, level, \
     source, rater_id, observed_at, confidence, summary, link, source_system, external_id) \
     FROM STDIN (FORMAT binary)";
const COPY_FIELDS: i16 = 13;
/// Subject ids are decimal numbers of one width, from here on, so that
/// pgbench can draw them with `random()` and send them as query parameters.
const FIRST_SUBJECT: usize = 1_000_000;
const SOURCES: [(pb::EvidenceSource, &str); 6] = [
    (pb::EvidenceSource::Self_, "self"),
    (pb::EvidenceSource::Peer, "peer"),
    (pb::EvidenceSource::Manager, "manager"),
    (pb::EvidenceSource::DirectReport, "direct_report"),
    (pb::EvidenceSource::Artifact, "artifact"),
    (pb::EvidenceSource::Calibration, "calibration"),
];
/// Every rubric of the built-in framework sees evidence: a subject's items
/// cycle through its competencies.
static COMPETENCIES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| Document::builtin().competency_ids());
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// The high half of the ids of copied rows; ids are unique per tenant.
const ID_PREFIX: u64 = 0x0193_0000_0000_7000;
const THREE_YEARS_MINUTES: usize = 3 * 365 * 24 * 60;

/// The id of the `n`-th subject (0-based) of every tenant.
pub fn subject_id(n: usize) -> String {
    (FIRST_SUBJECT + n).to_string()
}

/// pgbench's range of subject numbers for the first `subjects` subjects.
pub fn subject_range(subjects: usize) -> (usize, usize) {
    (FIRST_SUBJECT, FIRST_SUBJECT + subjects - 1)
}

/// Subjects `first .. first + subjects` of `tenant`, `PER_SUBJECT` rows each.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    pub tenant: &'static str,
    pub first: usize,
    pub subjects: usize,
    /// Observation times count back from here.
    pub newest: DateTime<Utc>,
}

/// One row of a population.
pub struct Row {
    subject: String,
    competency: &'static str,
    level: f64,
    source: usize,
    rater: String,
    observed_at: DateTime<Utc>,
    confidence: f64,
    external_id: String,
}

impl Population {
    pub fn rows(&self) -> usize {
        self.subjects * PER_SUBJECT
    }

    pub fn row(&self, i: usize) -> Row {
        let subject = self.first + i % self.subjects;
        let item = i / self.subjects;
        // Unique per tenant whatever the population: subject and item.
        let n = subject * PER_SUBJECT + item;
        Row {
            subject: subject_id(subject),
            competency: COMPETENCIES[item % COMPETENCIES.len()],
            level: 1.0 + ((n * 7) % 41) as f64 / 10.0,
            source: (n / COMPETENCIES.len()) % SOURCES.len(),
            rater: format!("rater-{}", n % 97),
            // Spread over three years, so decay weights differ.
            observed_at: self.newest
                - chrono::Duration::minutes(((n * 7919) % THREE_YEARS_MINUTES) as i64),
            confidence: 0.5 + (n % 6) as f64 / 10.0,
            external_id: format!("ev-{n}"),
        }
    }

    /// Rows `range` as `BatchCreateEvidence` items.
    pub fn batch(&self, range: std::ops::Range<usize>) -> pb::BatchCreateEvidenceRequest {
        pb::BatchCreateEvidenceRequest {
            evidence: range.map(|i| self.row(i).to_proto()).collect(),
        }
    }

    /// Rows `range` in COPY's binary format, appended to `out` (without the
    /// header and trailer, see [`copy_header`] and [`copy_trailer`]). The ids
    /// grow with the row, as time-ordered UUIDs would.
    pub fn copy_rows(&self, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
        for i in range {
            let row = self.row(i);
            let id = Uuid::from_u64_pair(ID_PREFIX, (self.first * PER_SUBJECT + i) as u64);
            out.extend_from_slice(&COPY_FIELDS.to_be_bytes());
            text(out, self.tenant);
            field(out, id.as_bytes());
            text(out, &row.subject);
            text(out, row.competency);
            field(out, &row.level.to_be_bytes());
            text(out, SOURCES[row.source].1);
            text(out, &row.rater);
            let micros = row.observed_at.timestamp_micros() - POSTGRES_EPOCH_MICROS;
            field(out, &micros.to_be_bytes());
            field(out, &row.confidence.to_be_bytes());
            text(out, "benchmark evidence");
            text(out, "");
            text(out, "hris");
            text(out, &row.external_id);
        }
    }
}

impl Row {
    fn to_proto(&self) -> pb::Evidence {
        pb::Evidence {
            subject_id: self.subject.clone(),
            competency_id: self.competency.into(),
            level: self.level,
            source: SOURCES[self.source].0 as i32,
            rater_id: self.rater.clone(),
            observed_at: Some(prost_types::Timestamp {
                seconds: self.observed_at.timestamp(),
                nanos: self.observed_at.timestamp_subsec_nanos() as i32,
            }),
            confidence: Some(self.confidence),
            summary: "benchmark evidence".into(),
            source_system: "hris".into(),
            external_id: self.external_id.clone(),
            ..Default::default()
        }
    }
}

/// The signature, flags and header extension of a binary COPY stream.
pub fn copy_header(out: &mut Vec<u8>) {
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
}

pub fn copy_trailer(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i16).to_be_bytes());
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn text(out: &mut Vec<u8>, value: &str) {
    field(out, value.as_bytes());
}
