//! `ladder evidence import FILE`: streams a CSV or JSON Lines file to the
//! server in batches. Rows the server refuses go to an error file with their
//! line number and reason; the rest are imported. Ingest is idempotent on
//! (source_system, external_id), so an interrupted import can simply be run
//! again.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use tonic::Code;
use tonic_types::StatusExt;

use crate::app::client::{Clients, call_failed};
use crate::app::error::AppError;
use crate::domain::evidence::Source;
use crate::proto::v1 as pb;
use crate::transport::convert::assessment::source_to_proto;
use crate::transport::convert::time;

/// One row of the file; the columns are documented in the README.
#[derive(Debug, Deserialize)]
struct Row {
    subject_id: String,
    competency_id: String,
    level: f64,
    source: String,
    #[serde(default)]
    rater_id: String,
    observed_at: DateTime<Utc>,
    #[serde(default = "full_confidence")]
    confidence: f64,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    link: String,
    source_system: String,
    external_id: String,
}

fn full_confidence() -> f64 {
    1.0
}

impl Row {
    fn into_proto(self) -> Result<pb::Evidence, String> {
        let source = Source::parse(&self.source).ok_or_else(|| {
            format!(
                "source: unknown source {:?} (self, peer, manager, direct_report, artifact, calibration)",
                self.source
            )
        })?;
        Ok(pb::Evidence {
            subject_id: self.subject_id,
            competency_id: self.competency_id,
            level: self.level,
            source: source_to_proto(source) as i32,
            rater_id: self.rater_id,
            observed_at: Some(time::to_proto(self.observed_at)),
            confidence: self.confidence,
            summary: self.summary,
            link: self.link,
            source_system: self.source_system,
            external_id: self.external_id,
            ..Default::default()
        })
    }
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub created: u64,
    pub already_present: u64,
    pub rejected: u64,
}

/// A parsed row and the line it came from.
type Numbered = (usize, pb::Evidence);

fn is_jsonl(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "ndjson" | "json")
    )
}

/// The error file: every refused row with its line number and reason.
struct Rejects {
    writer: csv::Writer<File>,
    path: PathBuf,
    count: u64,
}

impl Rejects {
    fn create(path: PathBuf) -> Result<Self, AppError> {
        let failed =
            |e: csv::Error| AppError::Config(format!("cannot write {}: {e}", path.display()));
        let mut writer = csv::Writer::from_path(&path).map_err(failed)?;
        writer.write_record(["line", "reason"]).map_err(failed)?;
        Ok(Self {
            writer,
            path,
            count: 0,
        })
    }

    fn add(&mut self, line: usize, reason: String) -> Result<(), AppError> {
        self.count += 1;
        self.writer
            .write_record([line.to_string(), reason])
            .map_err(|e| AppError::Config(format!("cannot write {}: {e}", self.path.display())))
    }

    fn finish(mut self) -> Result<(PathBuf, u64), AppError> {
        self.writer.flush().map_err(|source| AppError::Io {
            context: format!("writing {}", self.path.display()),
            source,
        })?;
        Ok((self.path, self.count))
    }
}

/// A row of the file with its line number, or why it could not be read.
type Parsed = (usize, Result<pb::Evidence, String>);

/// The file's rows, read as they are needed so that memory does not grow
/// with the file.
fn rows(path: &Path) -> Result<Box<dyn Iterator<Item = Result<Parsed, AppError>>>, AppError> {
    let context = format!("reading {}", path.display());
    let file = File::open(path).map_err(|source| AppError::Io {
        context: context.clone(),
        source,
    })?;
    if is_jsonl(path) {
        let lines = BufReader::new(file).lines().enumerate();
        return Ok(Box::new(lines.filter_map(move |(i, line)| {
            match line {
                Err(source) => Some(Err(AppError::Io {
                    context: context.clone(),
                    source,
                })),
                Ok(line) if line.trim().is_empty() => None,
                Ok(line) => Some(Ok((
                    i + 1,
                    serde_json::from_str::<Row>(&line)
                        .map_err(|e| e.to_string())
                        .and_then(Row::into_proto),
                ))),
            }
        })));
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = reader
        .headers()
        .map_err(|e| AppError::Config(format!("{}: header: {e}", path.display())))?
        .clone();
    Ok(Box::new(reader.into_records().enumerate().map(
        move |(i, record)| {
            // The header is line 1; a record knows its own line when it parsed.
            let line = record
                .as_ref()
                .ok()
                .and_then(|r| r.position())
                .map_or(i + 2, |p| p.line() as usize);
            let parsed = record
                .and_then(|r| r.deserialize::<Row>(Some(&headers)))
                .map_err(|e| e.to_string())
                .and_then(Row::into_proto);
            Ok((line, parsed))
        },
    )))
}

/// The batch items a refusal names, with why; empty when it names none.
fn refused_items(status: &tonic::Status) -> Vec<(usize, String)> {
    let index = |field: &str| -> Option<usize> {
        field
            .strip_prefix("evidence[")?
            .split(']')
            .next()?
            .parse()
            .ok()
    };
    match status.code() {
        Code::InvalidArgument => status
            .get_details_bad_request()
            .map(|b| {
                b.field_violations
                    .into_iter()
                    .filter_map(|v| {
                        Some((index(&v.field)?, format!("{}: {}", v.field, v.description)))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Code::AlreadyExists => status
            .get_details_error_info()
            .map(|info| {
                info.metadata
                    .into_iter()
                    .filter_map(|(k, why)| {
                        Some((index(&k)?, format!("(source_system, external_id): {why}")))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

pub async fn run(
    clients: &mut Clients,
    path: &Path,
    errors: Option<PathBuf>,
    batch_size: usize,
) -> Result<Summary, AppError> {
    let errors_path = errors.unwrap_or_else(|| {
        let mut p = path.as_os_str().to_owned();
        p.push(".errors.csv");
        PathBuf::from(p)
    });
    let mut rejects = Rejects::create(errors_path)?;
    let mut rows = rows(path)?;

    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} rows read  {per_sec}  {elapsed}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut created = 0u64;
    let mut present = 0u64;
    loop {
        let mut chunk: Vec<Numbered> = Vec::with_capacity(batch_size.max(1));
        for row in rows.by_ref() {
            let (line, parsed) = row?;
            bar.inc(1);
            match parsed {
                Ok(evidence) => chunk.push((line, evidence)),
                Err(reason) => rejects.add(line, reason)?,
            }
            if chunk.len() >= batch_size.max(1) {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        let mut pending: Vec<&Numbered> = chunk.iter().collect();
        // Each refusal names its items; drop them and send the rest again.
        while !pending.is_empty() {
            let request = pb::BatchCreateEvidenceRequest {
                evidence: pending.iter().map(|(_, e)| e.clone()).collect(),
            };
            match clients.assessment.batch_create_evidence(request).await {
                Ok(response) => {
                    let response = response.into_inner();
                    created += response.created_count as u64;
                    present += (pending.len() as u64).saturating_sub(response.created_count as u64);
                    break;
                }
                Err(status) => {
                    let refused = refused_items(&status);
                    if refused.is_empty() {
                        bar.abandon();
                        return Err(call_failed(status));
                    }
                    let mut dropped = BTreeSet::new();
                    // A refusal that names none of the rows sent cannot be retried around.
                    for (i, reason) in refused {
                        if let Some((line, _)) = pending.get(i)
                            && dropped.insert(i)
                        {
                            rejects.add(*line, reason)?;
                        }
                    }
                    if dropped.is_empty() {
                        bar.abandon();
                        return Err(call_failed(status));
                    }
                    pending = pending
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !dropped.contains(i))
                        .map(|(_, row)| row)
                        .collect();
                }
            }
        }
    }
    bar.finish();
    let (errors_path, rejected) = rejects.finish()?;
    let summary = Summary {
        created,
        already_present: present,
        rejected,
    };
    eprintln!(
        "imported {}: {} created, {} already present, {} rejected{}",
        path.display(),
        summary.created,
        summary.already_present,
        summary.rejected,
        if summary.rejected > 0 {
            format!(" (see {})", errors_path.display())
        } else {
            String::new()
        }
    );
    Ok(summary)
}
