//! `ladder evidence import FILE`: streams a CSV or JSON Lines file to the
//! server in batches. Rows the parser or the server refuses are reported,
//! the first few on stderr and every one in the error file `--errors` names,
//! in file order, with their line number, field and reason; the rest are
//! imported. Ingest is idempotent on (source_system, external_id), so an
//! interrupted import can simply be run again.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::iter::Enumerate;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use tonic::Code;
use tonic_types::StatusExt;

use crate::app::client::{Clients, call_failed};
use crate::app::error::AppError;
use crate::domain::evidence::{DEFAULT_CONFIDENCE, Source};
use crate::proto::v1 as pb;
use crate::transport::convert::assessment::source_to_proto;
use crate::transport::convert::time;

/// The columns every row must have; documented in the README.
const REQUIRED_COLUMNS: [&str; 7] = [
    "subject_id",
    "competency_id",
    "level",
    "source",
    "observed_at",
    "source_system",
    "external_id",
];
const OPTIONAL_COLUMNS: [&str; 4] = ["rater_id", "confidence", "summary", "link"];

/// How many refused fields the summary on stderr shows (the error file has all).
const SHOWN_REJECTS: usize = 10;

/// How `run` reads and sends the file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where every rejected row goes; without it only the first few are
    /// printed.
    pub errors: Option<PathBuf>,
    /// Rows per request.
    pub batch_size: usize,
    /// JSON Lines rather than CSV.
    pub json_lines: bool,
    /// Move all dates by whole days so the latest lands within the last day.
    pub shift_dates_to_today: bool,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub created: u64,
    pub already_present: u64,
    pub rejected: u64,
}

/// Why one field of one row was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    field: String,
    reason: String,
}

impl Problem {
    pub(super) fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// A row of the file by line number: the evidence, or every problem it has.
type Parsed = (usize, Result<pb::Evidence, Vec<Problem>>);

/// One row's cells by column name (a JSON number is kept as its text).
type Cells = HashMap<String, String>;

/// Whether a file's name says JSON Lines (else CSV).
pub fn is_jsonl(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "ndjson" | "json")
    )
}

fn is_known(column: &str) -> bool {
    REQUIRED_COLUMNS.contains(&column) || OPTIONAL_COLUMNS.contains(&column)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// How people misspell a column name: case, spaces and hyphens do not count.
fn normalised(column: &str) -> String {
    column.trim().to_lowercase().replace([' ', '-'], "_")
}

/// The candidate closest to `column`, when it is close enough to be a typo.
pub(super) fn closest<'a>(
    column: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let column = normalised(column);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&column, &normalised(c)), c))
        .filter(|(d, c)| *d <= 2.max(column.len().max(c.len()) / 3))
        .min()
        .map(|(_, c)| c)
}

fn quoted<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a CSV header: every required column once. Returns the unknown
/// columns (a warning, not an error); a missing or repeated column is one
/// error naming what was expected and what was probably meant.
fn check_header(file: &Path, header: &[String]) -> Result<Vec<String>, AppError> {
    let unknown: Vec<String> = header.iter().filter(|c| !is_known(c)).cloned().collect();
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .into_iter()
        .filter(|c| !header.iter().any(|h| h == c))
        .collect();
    let repeated: BTreeSet<&str> = header
        .iter()
        .enumerate()
        .filter(|(i, c)| header[..*i].contains(c))
        .map(|(_, c)| c.as_str())
        .collect();
    if missing.is_empty() && repeated.is_empty() {
        return Ok(unknown);
    }
    let mut message = format!(
        "{}: the header line is wrong; nothing was imported",
        file.display()
    );
    for column in &missing {
        message.push_str(&format!("\n  missing required column \"{column}\""));
        if let Some(meant) = closest(column, unknown.iter().map(String::as_str)) {
            message.push_str(&format!(" (is \"{meant}\" meant to be \"{column}\"?)"));
        }
    }
    for column in &repeated {
        message.push_str(&format!("\n  column \"{column}\" appears more than once"));
    }
    message.push_str(&format!(
        "\n  the header is:       {}\n  required columns:    {}\n  optional columns:    {}",
        header.join(","),
        REQUIRED_COLUMNS.join(","),
        OPTIONAL_COLUMNS.join(",")
    ));
    Err(AppError::Config(message))
}

fn unknown_column_warning(file: &Path, column: &str) -> String {
    let hint = closest(column, REQUIRED_COLUMNS.into_iter().chain(OPTIONAL_COLUMNS))
        .map(|c| format!(" (did you mean \"{c}\"?)"))
        .unwrap_or_default();
    format!(
        "warning: {}: ignoring unknown column \"{column}\"{hint}; the known columns are {}",
        file.display(),
        quoted(REQUIRED_COLUMNS.into_iter().chain(OPTIONAL_COLUMNS))
    )
}

/// `observed_at` as a person wrote it, with a message that says how to fix it.
pub(super) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let without_zone = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    });
    Err(match without_zone {
        Some(naive) => format!(
            "{text:?} has no timezone: write {}Z for UTC, or give the offset (e.g. +02:00)",
            naive.format("%Y-%m-%dT%H:%M:%S")
        ),
        None => format!("{text:?} is not an RFC 3339 time such as 2026-03-02T10:00:00Z"),
    })
}

/// One row's cells as evidence, or every problem with them (by column name).
fn evidence(mut cells: Cells, shift: TimeDelta) -> Result<pb::Evidence, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut take = |column: &str| cells.remove(column).unwrap_or_default();
    let mut required = |column: &str, problems: &mut Vec<Problem>| {
        let value = take(column);
        if value.is_empty() {
            problems.push(Problem::new(column, "is required"));
        }
        value
    };
    let subject_id = required("subject_id", &mut problems);
    let competency_id = required("competency_id", &mut problems);
    let level_text = required("level", &mut problems);
    let source_text = required("source", &mut problems);
    let observed_text = required("observed_at", &mut problems);
    let source_system = required("source_system", &mut problems);
    let external_id = required("external_id", &mut problems);
    let confidence_text = take("confidence");
    let rater_id = take("rater_id");
    let summary = take("summary");
    let link = take("link");

    let level = match level_text.parse::<f64>() {
        Ok(level) => level,
        Err(_) if level_text.is_empty() => 0.0,
        Err(_) => {
            problems.push(Problem::new(
                "level",
                format!("{level_text:?} is not a number (a level in [1, 5])"),
            ));
            0.0
        }
    };
    let source = Source::parse(&source_text);
    if source.is_none() && !source_text.is_empty() {
        problems.push(Problem::new(
            "source",
            format!(
                "unknown source {source_text:?} (self, peer, manager, direct_report, artifact, calibration)"
            ),
        ));
    }
    let observed_at = if observed_text.is_empty() {
        None
    } else {
        parse_time(&observed_text)
            .map_err(|reason| problems.push(Problem::new("observed_at", reason)))
            .ok()
    };
    let confidence = if confidence_text.is_empty() {
        DEFAULT_CONFIDENCE
    } else {
        confidence_text.parse::<f64>().unwrap_or_else(|_| {
            problems.push(Problem::new(
                "confidence",
                format!("{confidence_text:?} is not a number in (0, 1]"),
            ));
            1.0
        })
    };
    match (source, observed_at) {
        (Some(source), Some(observed_at)) if problems.is_empty() => Ok(pb::Evidence {
            subject_id,
            competency_id,
            level,
            source: source_to_proto(source) as i32,
            rater_id,
            observed_at: Some(time::to_proto(observed_at + shift)),
            confidence: Some(confidence),
            summary,
            link,
            source_system,
            external_id,
            ..Default::default()
        }),
        _ => Err(problems),
    }
}

/// The file's rows, read as they are needed so that memory does not grow
/// with the file.
struct Rows {
    file: PathBuf,
    format: Format,
    shift: TimeDelta,
    /// Whether unknown columns are reported (once each) while reading.
    warn: bool,
    warned: BTreeSet<String>,
}

enum Format {
    Csv {
        header: Vec<String>,
        records: csv::StringRecordsIntoIter<File>,
    },
    JsonLines(Enumerate<Lines<BufReader<File>>>),
}

impl Rows {
    fn open(path: &Path, json_lines: bool, shift: TimeDelta, warn: bool) -> Result<Self, AppError> {
        let file = File::open(path).map_err(|source| AppError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        let format = if json_lines {
            Format::JsonLines(BufReader::new(file).lines().enumerate())
        } else {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .flexible(true)
                .from_reader(file);
            let header: Vec<String> = reader
                .headers()
                .map_err(|e| AppError::Config(format!("{}: header: {e}", path.display())))?
                .iter()
                .map(|c| c.trim_start_matches('\u{feff}').to_string())
                .collect();
            let unknown = check_header(path, &header)?;
            if warn {
                for column in unknown {
                    eprintln!("{}", unknown_column_warning(path, &column));
                }
            }
            Format::Csv {
                header,
                records: reader.into_records(),
            }
        };
        Ok(Self {
            file: path.to_path_buf(),
            format,
            shift,
            warn,
            warned: BTreeSet::new(),
        })
    }

    fn json_cells(&mut self, line: &str) -> Result<Cells, Vec<Problem>> {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
            .map_err(|e| vec![Problem::new("row", format!("not a JSON object: {e}"))])?;
        let mut problems = Vec::new();
        let mut cells = Cells::new();
        for (key, value) in object {
            if !is_known(&key) {
                if self.warn && self.warned.insert(key.clone()) {
                    eprintln!("{}", unknown_column_warning(&self.file, &key));
                }
                continue;
            }
            match value {
                serde_json::Value::String(s) => {
                    cells.insert(key, s.trim().to_string());
                }
                serde_json::Value::Number(n) => {
                    cells.insert(key, n.to_string());
                }
                serde_json::Value::Null => {}
                other => problems.push(Problem::new(
                    &key,
                    format!("expected a string or a number, found {other}"),
                )),
            }
        }
        if problems.is_empty() {
            Ok(cells)
        } else {
            Err(problems)
        }
    }
}

impl Iterator for Rows {
    type Item = Result<Parsed, AppError>;

    fn next(&mut self) -> Option<Self::Item> {
        let shift = self.shift;
        match &mut self.format {
            Format::Csv { header, records } => {
                let record = records.next()?;
                Some(Ok(match record {
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line() as usize);
                        (line, Err(vec![Problem::new("row", e.to_string())]))
                    }
                    Ok(record) => {
                        let line = record.position().map_or(0, |p| p.line() as usize);
                        if record.len() > header.len() {
                            let problem = Problem::new(
                                "row",
                                format!(
                                    "has {} fields but the header has {} columns",
                                    record.len(),
                                    header.len()
                                ),
                            );
                            (line, Err(vec![problem]))
                        } else {
                            let cells = header
                                .iter()
                                .zip(record.iter())
                                .filter(|(column, _)| is_known(column))
                                .map(|(column, value)| (column.clone(), value.to_string()))
                                .collect();
                            (line, evidence(cells, shift))
                        }
                    }
                }))
            }
            Format::JsonLines(lines) => loop {
                let (i, line) = lines.next()?;
                match line {
                    Err(source) => {
                        return Some(Err(AppError::Io {
                            context: format!("reading {}", self.file.display()),
                            source,
                        }));
                    }
                    Ok(line) if line.trim().is_empty() => continue,
                    Ok(line) => {
                        let parsed = self.json_cells(&line).and_then(|c| evidence(c, shift));
                        return Some(Ok((i + 1, parsed)));
                    }
                }
            },
        }
    }
}

/// The whole days to add to every date so that the file's latest one falls
/// within the last day before `now` (never after it: evidence observed after
/// an assessment's time is left out of it).
fn shift_to(path: &Path, json_lines: bool, now: DateTime<Utc>) -> Result<TimeDelta, AppError> {
    let mut latest: Option<DateTime<Utc>> = None;
    for row in Rows::open(path, json_lines, TimeDelta::zero(), false)? {
        if let (_, Ok(evidence)) = row?
            && let Some(t) = evidence.observed_at
            && let Some(t) = DateTime::from_timestamp(t.seconds, t.nanos as u32)
        {
            latest = latest.max(Some(t));
        }
    }
    let Some(latest) = latest else {
        return Ok(TimeDelta::zero());
    };
    let days = (now - latest).num_seconds().div_euclid(86_400);
    eprintln!(
        "moving every observed_at by {days} days: the latest, {}, becomes {}",
        latest.to_rfc3339(),
        (latest + TimeDelta::days(days)).to_rfc3339()
    );
    Ok(TimeDelta::days(days))
}

/// The batch items a refusal names, with the field and why; empty when it
/// names none.
fn refused_items(status: &tonic::Status) -> Vec<(usize, Problem)> {
    // "evidence[3].level" -> (3, "level"); "evidence[3]" -> (3, "")
    let item = |field: &str| -> Option<(usize, String)> {
        let (index, rest) = field.strip_prefix("evidence[")?.split_once(']')?;
        Some((
            index.parse().ok()?,
            rest.trim_start_matches('.').to_string(),
        ))
    };
    match status.code() {
        Code::InvalidArgument => status
            .get_details_bad_request()
            .map(|b| {
                b.field_violations
                    .into_iter()
                    .filter_map(|v| {
                        let (i, field) = item(&v.field)?;
                        let field = if field.is_empty() {
                            "row".into()
                        } else {
                            field
                        };
                        Some((i, Problem::new(&field, v.description)))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Code::AlreadyExists => status
            .get_details_error_info()
            .map(|info| {
                info.metadata
                    .into_iter()
                    .filter_map(|(key, conflict)| {
                        let (i, _) = item(&key)?;
                        // "<stored evidence id>: <fields that differ>"
                        let (stored, fields) = conflict.split_once(": ")?;
                        let reason = format!(
                            "(source_system, external_id) is stored as evidence {stored} with a \
                             different {}; to change it, use `ladder evidence correct`",
                            fields.replace(',', ", ")
                        );
                        Some((i, Problem::new("external_id", reason)))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The rejected rows of a file: the first few refused fields for the
/// summary on stderr, and, when the caller named an error file, every
/// refused field of every refused row in it, in file order (the file is
/// created at the first rejected row).
pub(super) struct Rejects {
    path: Option<PathBuf>,
    writer: Option<csv::Writer<File>>,
    pub(super) rows: u64,
    /// The first few, for the summary on stderr.
    shown: Vec<String>,
    /// How many refused fields there were in all.
    fields: usize,
}

impl Rejects {
    pub(super) fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            writer: None,
            rows: 0,
            shown: Vec::new(),
            fields: 0,
        }
    }

    fn write_failed(path: &Path, e: csv::Error) -> AppError {
        AppError::Config(format!("cannot write {}: {e}", path.display()))
    }

    /// Records refused rows; lines of a call all come after those of the
    /// calls before it, so sorting each keeps the file in file order.
    pub(super) fn add(&mut self, mut rows: Vec<(usize, Vec<Problem>)>) -> Result<(), AppError> {
        if rows.is_empty() {
            return Ok(());
        }
        rows.sort_by_key(|(line, _)| *line);
        if let (None, Some(path)) = (&self.writer, &self.path) {
            let mut writer =
                csv::Writer::from_path(path).map_err(|e| Self::write_failed(path, e))?;
            writer
                .write_record(["line", "field", "reason"])
                .map_err(|e| Self::write_failed(path, e))?;
            self.writer = Some(writer);
        }
        for (line, problems) in rows {
            self.rows += 1;
            for p in problems {
                self.fields += 1;
                if self.shown.len() < SHOWN_REJECTS {
                    self.shown
                        .push(format!("  line {line}: {}: {}", p.field, p.reason));
                }
                if let (Some(writer), Some(path)) = (self.writer.as_mut(), &self.path)
                    && let Err(e) = writer.write_record([line.to_string(), p.field, p.reason])
                {
                    return Err(Self::write_failed(path, e));
                }
            }
        }
        Ok(())
    }

    /// Flushes the error file; a clean run removes the named file's earlier
    /// contents, so they do not look current.
    pub(super) fn finish(mut self) -> Result<Self, AppError> {
        if let Some(path) = &self.path {
            if let Some(writer) = self.writer.as_mut() {
                writer.flush().map_err(|source| AppError::Io {
                    context: format!("writing {}", path.display()),
                    source,
                })?;
            } else if path.exists() {
                std::fs::remove_file(path).map_err(|source| AppError::Io {
                    context: format!("removing the stale {}", path.display()),
                    source,
                })?;
            }
        }
        Ok(self)
    }

    /// The command's failure after `said` (what it did), listing the first
    /// refused fields and where the rest are.
    pub(super) fn failure(&self, said: &str) -> AppError {
        let more = self.fields > self.shown.len();
        let whereabouts = match (&self.path, more) {
            (Some(path), _) => format!(
                "; the rejected rows (line, field, reason) are in {}{}",
                path.display(),
                if more { ", the first ones here" } else { "" }
            ),
            (None, true) => format!(
                "; the first {} of {} refused fields (--errors FILE lists them all)",
                self.shown.len(),
                self.fields
            ),
            (None, false) => String::new(),
        };
        AppError::Config(format!(
            "{said}{whereabouts}:\n{}{}",
            self.shown.join("\n"),
            if more { "\n  …" } else { "" },
        ))
    }
}

/// Imports the file. Rejected rows make it an error (after the rest went in),
/// so that scripts notice.
pub async fn run(
    clients: &mut Clients,
    path: &Path,
    options: Options,
) -> Result<Summary, AppError> {
    let shift = if options.shift_dates_to_today {
        shift_to(path, options.json_lines, Utc::now())?
    } else {
        TimeDelta::zero()
    };
    let mut rows = Rows::open(path, options.json_lines, shift, true)?;
    let mut rejects = Rejects::new(options.errors.clone());
    let batch_size = options.batch_size.max(1);

    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} rows read  {per_sec}  {elapsed}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut created = 0u64;
    let mut present = 0u64;
    loop {
        let mut chunk: Vec<(usize, pb::Evidence)> = Vec::with_capacity(batch_size);
        let mut refused: Vec<(usize, Vec<Problem>)> = Vec::new();
        for row in rows.by_ref() {
            let (line, parsed) = row?;
            bar.inc(1);
            match parsed {
                Ok(evidence) => chunk.push((line, evidence)),
                Err(problems) => refused.push((line, problems)),
            }
            if chunk.len() >= batch_size {
                break;
            }
        }
        if chunk.is_empty() {
            rejects.add(refused)?;
            break;
        }
        let mut pending: Vec<&(usize, pb::Evidence)> = chunk.iter().collect();
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
                    let mut by_item: HashMap<usize, Vec<Problem>> = HashMap::new();
                    for (i, problem) in refused_items(&status) {
                        if i < pending.len() {
                            by_item.entry(i).or_default().push(problem);
                        }
                    }
                    // A refusal that names none of the rows sent cannot be retried around.
                    if by_item.is_empty() {
                        bar.abandon();
                        return Err(call_failed(status));
                    }
                    refused.extend(by_item.iter().map(|(i, p)| (pending[*i].0, p.clone())));
                    pending = pending
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !by_item.contains_key(i))
                        .map(|(_, row)| row)
                        .collect();
                }
            }
        }
        rejects.add(refused)?;
    }
    bar.finish_and_clear();
    let rejects = rejects.finish()?;
    let summary = Summary {
        created,
        already_present: present,
        rejected: rejects.rows,
    };
    let said = format!(
        "imported {}: {} created, {} already present, {} rejected",
        path.display(),
        summary.created,
        summary.already_present,
        summary.rejected,
    );
    if summary.rejected == 0 {
        eprintln!("{said}");
        return Ok(summary);
    }
    Err(rejects.failure(&said))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_column_is_matched_to_the_one_meant() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("observed", REQUIRED_COLUMNS), Some("observed_at"));
        assert_eq!(closest("Subject ID", REQUIRED_COLUMNS), Some("subject_id"));
        assert_eq!(closest("sumary", OPTIONAL_COLUMNS), Some("summary"));
        assert_eq!(closest("department", REQUIRED_COLUMNS), None);
    }

    #[test]
    fn a_time_without_a_timezone_says_how_to_write_it() {
        assert!(parse_time("2026-03-02T10:00:00+02:00").is_ok());
        let said = parse_time("2026-03-02 10:00:00").unwrap_err();
        assert!(
            said.contains("has no timezone") && said.contains("2026-03-02T10:00:00Z"),
            "{said}"
        );
        let said = parse_time("2026-03-02 10:00").unwrap_err();
        assert!(said.contains("2026-03-02T10:00:00Z"), "{said}");
        let said = parse_time("2026-03-02").unwrap_err();
        assert!(said.contains("2026-03-02T00:00:00Z"), "{said}");
        let said = parse_time("yesterday").unwrap_err();
        assert!(said.contains("RFC 3339"), "{said}");
    }
}
