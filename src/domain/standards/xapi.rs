//! xAPI statements (1.0.3 and 2.0) as evidence: each statement becomes one
//! piece of evidence, or an instruction to delete the evidence of a statement
//! it voids. The mapping and the rescaling rules are in docs/standards.md.
//!
//! Ladder stores no personal identifiers: a statement whose actor (or
//! instructor) is identified by `mbox`, `mbox_sha1sum` or `openid` is refused,
//! and no refusal repeats anything of a statement but its id.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::evidence::{Evidence, MAX_TEXT_LEN, Source};
use crate::domain::standards::case::{CaseItem, LADDER_NAMESPACE, competency_identifier};

/// The `source_system` of evidence from xAPI; the statement id is its
/// `external_id`.
pub const SOURCE_SYSTEM: &str = "xapi";
/// The verb of a statement that voids another.
pub const VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";
/// `context.extensions` key: the evidence source (`self`, `peer`, `manager`,
/// `direct_report`, `artifact`, `calibration`); `artifact` when absent.
pub const SOURCE_EXTENSION: &str = "https://ladder.dev/xapi/source";
/// `context.extensions` key: the confidence, a number in (0, 1]; 1 when absent.
pub const CONFIDENCE_EXTENSION: &str = "https://ladder.dev/xapi/confidence";

/// A tenant's settings for reading statements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XapiOptions {
    /// The `homePage` of the tenant's HRIS accounts. When set, an account of
    /// another system is refused; when not, any account's `name` is taken as
    /// the HRIS id.
    pub hris_home_page: Option<String>,
}

/// How statement objects name competencies: by Ladder id, by the CASE
/// identifier Ladder exports for the competency (bare, or as `urn:uuid:`),
/// by that item's CASE URI, or by an alias the caller adds (the URI of an
/// item of a package the framework was imported from).
#[derive(Debug, Clone, Default)]
pub struct CompetencyIndex {
    names: HashMap<String, String>,
}

impl CompetencyIndex {
    /// The competencies `ids`, with the CASE URIs a CASE export under
    /// `case_base_uri` gives them.
    pub fn new<'a>(case_base_uri: &str, ids: impl IntoIterator<Item = &'a str>) -> Self {
        let base = case_base_uri.trim_end_matches('/');
        let mut index = CompetencyIndex::default();
        for id in ids {
            let identifier = competency_identifier(id);
            index.alias(id, id);
            index.alias(&identifier.to_string(), id);
            index.alias(&format!("urn:uuid:{identifier}"), id);
            index.alias(&format!("{base}/ims/case/v1p1/CFItems/{identifier}"), id);
        }
        index
    }

    /// The names of the CASE item a competency of the index was imported
    /// from: its URI and identifier (SPEC §9), so that statements written
    /// against the source framework count for the competency.
    pub fn case_item(&mut self, item: &CaseItem) {
        if self.find(&item.competency_id) != Some(item.competency_id.as_str()) {
            return;
        }
        for name in [&item.identifier, &item.uri].into_iter().flatten() {
            self.alias(name, &item.competency_id);
        }
        if let Some(identifier) = item.identifier.as_deref()
            && Uuid::parse_str(identifier).is_ok()
        {
            self.alias(&format!("urn:uuid:{identifier}"), &item.competency_id);
        }
    }

    /// Another name of the competency `competency_id`.
    pub fn alias(&mut self, name: &str, competency_id: &str) {
        self.names
            .insert(name.trim().to_lowercase(), competency_id.to_string());
    }

    /// The competency `object_id` names, if any.
    pub fn find(&self, object_id: &str) -> Option<&str> {
        self.names
            .get(&object_id.trim().to_lowercase())
            .map(String::as_str)
    }
}

/// What a statement asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum XapiAction {
    /// Ingest this evidence (keyed by `(SOURCE_SYSTEM, statement id)`).
    Record(Evidence),
    /// Delete the evidence keyed by `(SOURCE_SYSTEM, voided_statement_id)`.
    Void { voided_statement_id: String },
}

/// A statement that maps: its position in the file and its id.
#[derive(Debug, Clone, PartialEq)]
pub struct XapiMapped {
    pub index: usize,
    pub statement_id: String,
    pub action: XapiAction,
}

/// A statement that does not map, and why (the reason holds nothing of the
/// statement but its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XapiSkipped {
    pub index: usize,
    pub statement_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct XapiBatch {
    pub mapped: Vec<XapiMapped>,
    pub skipped: Vec<XapiSkipped>,
}

/// The file as a whole cannot be read (single statements that cannot be read
/// are skipped instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct XapiError(pub String);

/// The statements of a file: a JSON array, an object with a `statements`
/// array (what an LRS returns), one statement, or JSON Lines (one statement
/// per line; a line that is not JSON is an `Err` naming the line).
pub fn parse_statements(bytes: &[u8]) -> Result<Vec<Result<Value, String>>, XapiError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        XapiError(format!(
            "the file is not UTF-8 (byte offset {}); save it as UTF-8",
            e.valid_up_to()
        ))
    })?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(XapiError("the file holds no statements".into()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => Ok(items.into_iter().map(Ok).collect()),
        Ok(Value::Object(mut map)) => match map.remove("statements") {
            Some(Value::Array(items)) => Ok(items.into_iter().map(Ok).collect()),
            Some(_) => Err(XapiError("`statements` must be a list".into())),
            None => Ok(vec![Ok(Value::Object(map))]),
        },
        Ok(_) => Err(XapiError(
            "expected statements: a JSON array, an object, or one object per line".into(),
        )),
        Err(e) if trimmed.starts_with('[') => Err(XapiError(format!(
            "line {}, column {}: not a JSON array of statements ({})",
            e.line(),
            e.column(),
            e.classify_name()
        ))),
        Err(_) => Ok(text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(n, line)| {
                serde_json::from_str::<Value>(line)
                    .map_err(|e| format!("line {} is not JSON ({})", n + 1, e.classify_name()))
            })
            .collect()),
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// The kind of error only: serde's messages may quote the statement.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

/// Maps every statement of a file; see [`map_statement`]. A statement id
/// repeated with the same content is imported once; repeated with other
/// content it is refused. A statement voided by another statement of the same
/// file is not imported (the void is kept, for a copy stored before).
pub fn map_statements(
    bytes: &[u8],
    competencies: &CompetencyIndex,
    options: &XapiOptions,
) -> Result<XapiBatch, XapiError> {
    let mut batch = XapiBatch::default();
    let mut first: HashMap<String, usize> = HashMap::new();
    for (index, statement) in parse_statements(bytes)?.into_iter().enumerate() {
        let mapped = match statement {
            Ok(statement) => map_statement(&statement, competencies, options),
            Err(reason) => Err((None, reason)),
        };
        let (statement_id, action) = match mapped {
            Ok(ok) => ok,
            Err((statement_id, reason)) => {
                batch.skipped.push(XapiSkipped {
                    index,
                    statement_id,
                    reason,
                });
                continue;
            }
        };
        if let Some(&earlier) = first.get(&statement_id) {
            let same = match (&batch.mapped[earlier].action, &action) {
                (XapiAction::Record(a), XapiAction::Record(b)) => a.same_content(b),
                (a, b) => a == b,
            };
            let reason = if same {
                format!(
                    "repeats statement #{} with the same content: imported once",
                    batch.mapped[earlier].index
                )
            } else {
                format!(
                    "repeats the id of statement #{} with different content: a statement id names one statement",
                    batch.mapped[earlier].index
                )
            };
            batch.skipped.push(XapiSkipped {
                index,
                statement_id: Some(statement_id),
                reason,
            });
            continue;
        }
        first.insert(statement_id.clone(), batch.mapped.len());
        batch.mapped.push(XapiMapped {
            index,
            statement_id,
            action,
        });
    }
    let voided: HashMap<String, usize> = batch
        .mapped
        .iter()
        .filter_map(|m| match &m.action {
            XapiAction::Void {
                voided_statement_id,
            } => Some((voided_statement_id.clone(), m.index)),
            XapiAction::Record(_) => None,
        })
        .collect();
    let (kept, dropped): (Vec<_>, Vec<_>) = batch.mapped.into_iter().partition(|m| {
        !(matches!(m.action, XapiAction::Record(_)) && voided.contains_key(&m.statement_id))
    });
    batch.mapped = kept;
    for m in dropped {
        batch.skipped.push(XapiSkipped {
            index: m.index,
            reason: format!(
                "voided by statement #{} of the same file",
                voided[&m.statement_id]
            ),
            statement_id: Some(m.statement_id),
        });
    }
    batch.skipped.sort_by_key(|s| s.index);
    Ok(batch)
}

/// A refusal: the statement id when it has one, and the reason.
type Refusal = (Option<String>, String);

/// Maps one statement to its id and action, or says why it does not map.
pub fn map_statement(
    statement: &Value,
    competencies: &CompetencyIndex,
    options: &XapiOptions,
) -> Result<(String, XapiAction), Refusal> {
    if !statement.is_object() {
        return Err((None, "a statement is a JSON object".into()));
    }
    let id = statement
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
        .map(|u| u.to_string())
        .ok_or_else(|| {
            (
                None,
                "the statement has no id (a UUID): Ladder keys xAPI evidence by statement id"
                    .to_string(),
            )
        })?;
    let refuse = |reason: String| (Some(id.clone()), reason);
    let verb = statement
        .pointer("/verb/id")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("the statement has no verb.id".into()))?;
    let object = statement.get("object");
    let object_type = object
        .and_then(|o| o.get("objectType"))
        .and_then(Value::as_str)
        .unwrap_or("Activity");

    if verb == VOIDED {
        // The actor of a void is not stored, so it is not checked.
        let voided = object
            .filter(|_| object_type == "StatementRef")
            .and_then(|o| o.get("id"))
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s.trim()).ok())
            .ok_or_else(|| {
                refuse(
                    "a voiding statement's object must be a StatementRef with a statement id"
                        .into(),
                )
            })?;
        return Ok((
            id,
            XapiAction::Void {
                voided_statement_id: voided.to_string(),
            },
        ));
    }

    let subject_id = agent_id(statement.get("actor"), "actor", options).map_err(&refuse)?;
    if object_type != "Activity" {
        return Err(refuse(format!(
            "the object is a {object_type}: evidence needs an Activity whose id names a competency"
        )));
    }
    let competency_id = object
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .and_then(|o| competencies.find(o))
        .ok_or_else(|| refuse("object.id names no competency of this tenant".into()))?;
    let level = level(statement.pointer("/result/score")).map_err(&refuse)?;
    let context_extension = |key: &str| {
        statement
            .pointer("/context/extensions")
            .and_then(|e| e.get(key))
    };
    let source = match context_extension(SOURCE_EXTENSION) {
        None => Source::Artifact,
        Some(v) => v.as_str().and_then(Source::parse).ok_or_else(|| {
            refuse(format!(
                "context.extensions[{SOURCE_EXTENSION}] must be one of self, peer, manager, direct_report, artifact, calibration"
            ))
        })?,
    };
    let confidence = match context_extension(CONFIDENCE_EXTENSION) {
        None => 1.0,
        Some(v) => v
            .as_f64()
            .filter(|c| *c > 0.0 && *c <= 1.0)
            .ok_or_else(|| {
                refuse(format!(
                    "context.extensions[{CONFIDENCE_EXTENSION}] must be a number in (0, 1]"
                ))
            })?,
    };
    let rater_id = match statement.pointer("/context/instructor") {
        None | Some(Value::Null) => String::new(),
        instructor => agent_id(instructor, "context.instructor", options).map_err(&refuse)?,
    };
    let observed_at = observed_at(statement).map_err(&refuse)?;
    let evidence = Evidence {
        id: Uuid::new_v5(&LADDER_NAMESPACE, format!("xapi/statement/{id}").as_bytes()),
        subject_id,
        competency_id: competency_id.to_string(),
        level,
        source,
        rater_id,
        observed_at,
        confidence,
        summary: summary(statement, verb),
        link: String::new(),
        source_system: SOURCE_SYSTEM.into(),
        external_id: id.clone(),
    };
    let violations = evidence.validate(true);
    if !violations.is_empty() {
        return Err(refuse(format!("not valid evidence: {violations}")));
    }
    Ok((id, XapiAction::Record(evidence)))
}

/// The HRIS id of an agent: its `account.name`. Personal identifiers are
/// refused by name of the field only.
fn agent_id(agent: Option<&Value>, field: &str, options: &XapiOptions) -> Result<String, String> {
    let Some(agent) = agent.filter(|a| a.is_object()) else {
        return Err(format!("the statement has no {field}"));
    };
    if agent.get("objectType").and_then(Value::as_str) == Some("Group") {
        return Err(format!("{field} is a Group: evidence is about one person"));
    }
    for personal in ["mbox", "mbox_sha1sum", "openid"] {
        if agent.get(personal).is_some() {
            return Err(format!(
                "{field} is identified by {personal}: Ladder stores no personal identifiers; identify the person by {field}.account (homePage and HRIS id)"
            ));
        }
    }
    let account = agent
        .get("account")
        .ok_or_else(|| format!("{field} has no account (homePage and HRIS id)"))?;
    let name = account
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| format!("{field}.account has no name"))?;
    let home_page = account
        .get("homePage")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{field}.account has no homePage"))?;
    if let Some(hris) = &options.hris_home_page {
        let same = |a: &str, b: &str| {
            a.trim_end_matches('/')
                .eq_ignore_ascii_case(b.trim_end_matches('/'))
        };
        if !same(home_page, hris) {
            return Err(format!(
                "{field}.account is not an account of the tenant's HRIS (its homePage differs)"
            ));
        }
    }
    Ok(name.to_string())
}

/// The level in [1, 5] of `result.score`: `scaled` in [0, 1] as
/// 1 + 4·scaled; otherwise `raw` within [`min`, `max`] as
/// 1 + 4·(raw − min)/(max − min).
fn level(score: Option<&Value>) -> Result<f64, String> {
    let Some(score) = score.filter(|s| s.is_object()) else {
        return Err(
            "the statement has no result.score: without a score it is no evidence of a level"
                .into(),
        );
    };
    let number = |key: &str| score.get(key).and_then(Value::as_f64);
    if let Some(scaled) = number("scaled") {
        return match scaled {
            s if (0.0..=1.0).contains(&s) => Ok(1.0 + 4.0 * s),
            s if (-1.0..0.0).contains(&s) => Err(
                "result.score.scaled is negative: Ladder maps only 0..1 to levels 1-5, and a negative score has no level".into(),
            ),
            _ => Err("result.score.scaled must be in [-1, 1]".into()),
        };
    }
    match (number("raw"), number("min"), number("max")) {
        (Some(raw), Some(min), Some(max)) if max > min && (min..=max).contains(&raw) => {
            Ok(1.0 + 4.0 * (raw - min) / (max - min))
        }
        (Some(_), Some(_), Some(_)) => {
            Err("result.score.raw must lie within min..max, and max must exceed min".into())
        }
        (Some(_), ..) => {
            Err("result.score.raw without min and max cannot be rescaled to 1-5".into())
        }
        (None, ..) => Err("result.score has neither scaled nor raw".into()),
    }
}

/// `timestamp` (or, without it, `stored`), to the microsecond. A time without
/// an offset, which xAPI 1.0.3 allows, is read as UTC.
fn observed_at(statement: &Value) -> Result<DateTime<Utc>, String> {
    let (field, text) = ["timestamp", "stored"]
        .into_iter()
        .find_map(|f| Some((f, statement.get(f)?.as_str()?)))
        .ok_or_else(|| "the statement has no timestamp".to_string())?;
    let at = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map_err(|_| format!("{field} is not an ISO 8601 date and time"))?;
    DateTime::from_timestamp_micros(at.timestamp_micros())
        .ok_or_else(|| format!("{field} is out of range"))
}

/// "xAPI: passed": the verb's display name (en-US, en, or any), or the last
/// segment of its id.
fn summary(statement: &Value, verb: &str) -> String {
    let display = statement
        .pointer("/verb/display")
        .and_then(Value::as_object);
    let name = display
        .and_then(|d| {
            ["en-US", "en-GB", "en"]
                .iter()
                .find_map(|l| d.get(*l))
                .or_else(|| d.values().next())
        })
        .and_then(Value::as_str)
        .unwrap_or_else(|| verb.rsplit(['/', '#']).next().unwrap_or(verb));
    let text: String = format!("xAPI: {name}")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_LEN)
        .collect();
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> CompetencyIndex {
        CompetencyIndex::new("https://ladder.dev", ["system_design", "mentoring"])
    }

    fn statement(score: Value) -> Value {
        json!({
            "id": "6f1c3a52-3c55-4a4e-9d43-1b0c7e2f5a10",
            "actor": {"objectType": "Agent", "account": {"homePage": "https://hris.example", "name": "emp-1042"}},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/passed", "display": {"en-US": "passed"}},
            "object": {"objectType": "Activity", "id": "system_design"},
            "result": {"score": score},
            "timestamp": "2026-03-02T10:00:00.1234567Z"
        })
    }

    fn record(v: &Value) -> Evidence {
        match map_statement(v, &index(), &XapiOptions::default()) {
            Ok((_, XapiAction::Record(e))) => e,
            other => panic!("{other:?}"),
        }
    }

    fn refusal(v: &Value) -> String {
        map_statement(v, &index(), &XapiOptions::default())
            .unwrap_err()
            .1
    }

    #[test]
    fn scaled_scores_map_onto_levels_one_to_five() {
        for (scaled, level) in [(0.0, 1.0), (0.5, 3.0), (0.75, 4.0), (1.0, 5.0)] {
            assert_eq!(record(&statement(json!({"scaled": scaled}))).level, level);
        }
        assert!(refusal(&statement(json!({"scaled": -0.5}))).contains("negative"));
        assert!(refusal(&statement(json!({"scaled": 1.5}))).contains("[-1, 1]"));
    }

    #[test]
    fn raw_scores_are_rescaled_by_min_and_max() {
        let e = record(&statement(json!({"raw": 70, "min": 0, "max": 80})));
        assert_eq!(e.level, 1.0 + 4.0 * 70.0 / 80.0);
        assert!(refusal(&statement(json!({"raw": 7}))).contains("without min and max"));
        assert!(refusal(&statement(json!({"raw": 90, "min": 0, "max": 80}))).contains("within"));
    }

    #[test]
    fn a_statement_becomes_keyed_evidence() {
        let e = record(&statement(json!({"scaled": 0.5})));
        assert_eq!(e.subject_id, "emp-1042");
        assert_eq!(e.competency_id, "system_design");
        assert_eq!(e.source, Source::Artifact);
        assert_eq!(e.confidence, 1.0);
        assert_eq!(e.source_system, "xapi");
        assert_eq!(e.external_id, "6f1c3a52-3c55-4a4e-9d43-1b0c7e2f5a10");
        assert_eq!(e.summary, "xAPI: passed");
        assert_eq!(e.observed_at.timestamp_subsec_micros(), 123_456);
    }

    #[test]
    fn personal_identifiers_are_refused_without_being_repeated() {
        let mut s = statement(json!({"scaled": 0.5}));
        s["actor"] = json!({"mbox": "mailto:jane.doe@example.com"});
        let reason = refusal(&s);
        assert!(reason.contains("mbox"), "{reason}");
        assert!(!reason.contains("jane"), "{reason}");
        s["actor"] =
            json!({"account": {"homePage": "https://hris.example", "name": "jane@example.com"}});
        let reason = refusal(&s);
        assert!(!reason.contains("jane"), "{reason}");
    }

    #[test]
    fn the_tenant_hris_decides_which_accounts_are_subjects() {
        let options = XapiOptions {
            hris_home_page: Some("https://hris.example/".into()),
        };
        let s = statement(json!({"scaled": 0.5}));
        assert!(map_statement(&s, &index(), &options).is_ok());
        let mut other = s.clone();
        other["actor"]["account"]["homePage"] = json!("https://lms.example");
        assert!(map_statement(&other, &index(), &options).is_err());
    }

    #[test]
    fn competencies_are_found_by_id_case_identifier_or_uri() {
        let index = index();
        let identifier = competency_identifier("mentoring");
        assert_eq!(index.find("mentoring"), Some("mentoring"));
        assert_eq!(
            index.find(&format!("urn:uuid:{identifier}")),
            Some("mentoring")
        );
        assert_eq!(
            index.find(&format!(
                "https://ladder.dev/ims/case/v1p1/CFItems/{identifier}"
            )),
            Some("mentoring")
        );
        assert_eq!(index.find("https://example.com/course/1"), None);
    }

    #[test]
    fn json_lines_and_lrs_results_are_read() {
        let lines = "{\"id\":1}\n\nnot json\n{\"id\":2}\n";
        let parsed = parse_statements(lines.as_bytes()).unwrap();
        assert_eq!(parsed.len(), 3);
        assert!(parsed[1].as_ref().unwrap_err().contains("line 3"));
        let lrs = br#"{"statements": [{"id": 1}, {"id": 2}], "more": ""}"#;
        assert_eq!(parse_statements(lrs).unwrap().len(), 2);
        assert!(parse_statements(b"[{\"id\": 1},").is_err());
    }
}
