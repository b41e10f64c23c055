//! `ladder evidence correct FILE`: applies a CSV of corrections to stored
//! evidence, one `UpdateEvidence` per row. A row names the evidence by
//! `evidence_id` or by `source_system` and `external_id`, and gives the new
//! values of the columns to change; an empty cell keeps the stored value.
//! Rejected rows are reported as `evidence import` reports them.

use std::path::{Path, PathBuf};

use tonic::Code;
use tonic_types::StatusExt;

use crate::app::client::evidence_import::{Problem, Rejects, closest, parse_time};
use crate::app::client::{Clients, call_failed};
use crate::app::error::AppError;
use crate::domain::evidence::Source;
use crate::proto::v1 as pb;
use crate::transport::convert::assessment::{EVIDENCE_PATHS, source_to_proto};
use crate::transport::convert::time;

/// The columns that name the evidence to correct.
const KEY_COLUMNS: [&str; 3] = ["evidence_id", "source_system", "external_id"];
/// Sent back so that a correction made from a stale read is refused.
const ETAG_COLUMN: &str = "etag";

/// What a corrections file did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub corrected: u64,
    pub rejected: u64,
}

/// Checks the header: the evidence is named, something is corrected, and
/// no column is unknown (a misspelt one would silently correct nothing).
fn check_header(file: &Path, header: &[String]) -> Result<(), AppError> {
    let known =
        |c: &str| KEY_COLUMNS.contains(&c) || EVIDENCE_PATHS.contains(&c) || c == ETAG_COLUMN;
    let has = |c: &str| header.iter().any(|h| h == c);
    let mut problems = Vec::new();
    for column in header.iter().filter(|c| !known(c)) {
        let hint = closest(column, KEY_COLUMNS.into_iter().chain(EVIDENCE_PATHS))
            .map(|c| format!(" (did you mean \"{c}\"?)"))
            .unwrap_or_default();
        problems.push(format!("unknown column \"{column}\"{hint}"));
    }
    let named = has("evidence_id") || (has("source_system") && has("external_id"));
    if !named {
        problems.push(
            "no column names the evidence: give evidence_id, or source_system and external_id"
                .into(),
        );
    }
    if !EVIDENCE_PATHS.iter().any(|c| has(c)) {
        problems.push(format!(
            "no column to correct: give one or more of {}",
            EVIDENCE_PATHS.join(",")
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(AppError::Config(format!(
        "{}: the header line is wrong; nothing was corrected\n  {}\n  the header is:       {}\n  naming the evidence: evidence_id, or source_system,external_id\n  correctable columns: {}\n  optional column:     etag",
        file.display(),
        problems.join("\n  "),
        header.join(","),
        EVIDENCE_PATHS.join(","),
    )))
}

/// One row as an `UpdateEvidence` request, or every problem it has.
fn request(cells: &[(&str, &str)]) -> Result<pb::UpdateEvidenceRequest, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut evidence = pb::Evidence::default();
    let mut paths = Vec::new();
    for &(column, value) in cells.iter().filter(|(_, v)| !v.is_empty()) {
        match column {
            "evidence_id" => evidence.id = value.to_string(),
            "source_system" => evidence.source_system = value.to_string(),
            "external_id" => evidence.external_id = value.to_string(),
            "etag" => evidence.etag = value.to_string(),
            "level" => match value.parse() {
                Ok(level) => evidence.level = level,
                Err(_) => problems.push(Problem::new(
                    column,
                    format!("{value:?} is not a number (a level in [1, 5])"),
                )),
            },
            "source" => match Source::parse(value) {
                Some(source) => evidence.source = source_to_proto(source) as i32,
                None => problems.push(Problem::new(
                    column,
                    format!(
                        "unknown source {value:?} (self, peer, manager, direct_report, artifact, calibration)"
                    ),
                )),
            },
            "observed_at" => match parse_time(value) {
                Ok(t) => evidence.observed_at = Some(time::to_proto(t)),
                Err(reason) => problems.push(Problem::new(column, reason)),
            },
            "confidence" => match value.parse() {
                Ok(confidence) => evidence.confidence = Some(confidence),
                Err(_) => problems.push(Problem::new(
                    column,
                    format!("{value:?} is not a number in (0, 1]"),
                )),
            },
            "rater_id" => evidence.rater_id = value.to_string(),
            "summary" => evidence.summary = value.to_string(),
            "link" => evidence.link = value.to_string(),
            _ => continue,
        }
        if EVIDENCE_PATHS.contains(&column) {
            paths.push(column.to_string());
        }
    }
    if evidence.id.is_empty()
        && (evidence.source_system.is_empty() || evidence.external_id.is_empty())
    {
        problems.push(Problem::new(
            "evidence_id",
            "is required, unless source_system and external_id name the evidence",
        ));
    }
    if paths.is_empty() && problems.is_empty() {
        problems.push(Problem::new(
            "row",
            "corrects nothing: every column to correct is empty",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(pb::UpdateEvidenceRequest {
        evidence: Some(evidence),
        update_mask: Some(prost_types::FieldMask { paths }),
    })
}

/// Why the server refused a row, by column; `None` for a refusal that is
/// not about the row (unavailable, unauthenticated), which stops the run.
fn refused(status: &tonic::Status, by_id: bool) -> Option<Vec<Problem>> {
    match status.code() {
        Code::InvalidArgument => {
            let violations = status.get_details_bad_request()?.field_violations;
            Some(
                violations
                    .into_iter()
                    .map(|v| {
                        let column = match v.field.strip_prefix("evidence.") {
                            Some(column) => column.to_string(),
                            None => "row".to_string(),
                        };
                        Problem::new(&column, v.description)
                    })
                    .collect(),
            )
        }
        Code::NotFound => Some(vec![if by_id {
            Problem::new("evidence_id", "no evidence of this id is stored")
        } else {
            Problem::new(
                "external_id",
                "no evidence is stored under this (source_system, external_id)",
            )
        }]),
        Code::Aborted => Some(vec![Problem::new(
            ETAG_COLUMN,
            "the evidence was changed since this etag was read; read it again",
        )]),
        _ => None,
    }
}

/// Applies the file's corrections in file order. Rejected rows make it an
/// error (after the rest were applied), so that scripts notice.
pub async fn run(
    clients: &mut Clients,
    path: &Path,
    errors: Option<PathBuf>,
) -> Result<Summary, AppError> {
    let read_failed = |e: csv::Error| AppError::Config(format!("{}: {e}", path.display()));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(source) => AppError::Io {
                context: format!("reading {}", path.display()),
                source,
            },
            other => AppError::Config(format!("{}: {other:?}", path.display())),
        })?;
    let header: Vec<String> = reader
        .headers()
        .map_err(read_failed)?
        .iter()
        .map(|c| c.trim_start_matches('\u{feff}').to_string())
        .collect();
    check_header(path, &header)?;
    let mut rejects = Rejects::new(errors);
    let mut corrected = 0u64;
    for record in reader.records() {
        let record = record.map_err(read_failed)?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let cells: Vec<(&str, &str)> = header
            .iter()
            .map(String::as_str)
            .zip(record.iter())
            .collect();
        let request = match request(&cells) {
            Ok(request) => request,
            Err(problems) => {
                rejects.add(vec![(line, problems)])?;
                continue;
            }
        };
        let by_id = request.evidence.as_ref().is_some_and(|e| !e.id.is_empty());
        match clients.assessment.update_evidence(request).await {
            Ok(_) => corrected += 1,
            Err(status) => match refused(&status, by_id) {
                Some(problems) => rejects.add(vec![(line, problems)])?,
                None => return Err(call_failed(status)),
            },
        }
    }
    let rejects = rejects.finish()?;
    let summary = Summary {
        corrected,
        rejected: rejects.rows,
    };
    let said = format!(
        "corrected {}: {} corrected, {} rejected",
        path.display(),
        summary.corrected,
        summary.rejected
    );
    if summary.rejected == 0 {
        eprintln!("{said}");
        return Ok(summary);
    }
    Err(rejects.failure(&said))
}
