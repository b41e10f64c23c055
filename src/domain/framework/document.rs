//! Framework files (`format: ladder.framework/v1`): what `ladder framework
//! export` writes, `import` reads, and the built-in framework is written in.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::domain::framework::shape;
use crate::domain::framework::source_map::SourceMap;
use crate::domain::framework::validate::{
    FieldNames, validate_competency, validate_expectations, validate_role, validate_track,
};
use crate::domain::framework::{
    Competency, Role, RubricCompetency, Track, Transition, TransitionKind,
};
use crate::domain::validation::Violations;

pub const FORMAT: &str = "ladder.framework/v1";

const BUILTIN_YAML: &str = include_str!("../../../framework/builtin.yaml");

const EXPORT_HEADER: &str = "# Ladder career framework, written by `ladder framework export`.\n\
     # Format: ladder.framework/v1 (docs/framework.md); `ladder framework import FILE` reads it.\n";

/// A whole framework: tracks, competencies, and roles each with its rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    /// `complete`: the file is the whole framework, and importing it removes
    /// what the tenant has beyond it (as `import --prune` does).
    #[serde(default, skip_serializing_if = "ImportMode::is_merge")]
    pub mode: ImportMode,
    pub tracks: Vec<Track>,
    pub competencies: Vec<Competency>,
    pub roles: Vec<RoleDocument>,
}

/// How an import treats what the tenant has and the file does not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Left alone (and listed).
    #[default]
    Merge,
    /// Removed, or retired where something still cites it.
    Complete,
}

impl ImportMode {
    fn is_merge(&self) -> bool {
        *self == ImportMode::Merge
    }
}

/// A role as a file holds it: the role and the expectations of its current
/// published rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDocument {
    pub id: String,
    pub name: String,
    pub track: String,
    pub seniority: i32,
    pub description: String,
    pub transitions: Vec<Transition>,
    /// Absent for a role without a published rubric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rubric: Option<RubricDocument>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RubricDocument {
    pub competencies: Vec<RubricCompetency>,
}

impl RoleDocument {
    pub fn new(role: Role, rubric: Option<Vec<RubricCompetency>>) -> Self {
        Self {
            id: role.id,
            name: role.name,
            track: role.track,
            seniority: role.seniority,
            description: role.description,
            transitions: role.transitions,
            rubric: rubric.map(|competencies| RubricDocument { competencies }),
        }
    }

    pub fn role(&self) -> Role {
        Role {
            id: self.id.clone(),
            name: self.name.clone(),
            track: self.track.clone(),
            seniority: self.seniority,
            description: self.description.clone(),
            transitions: self.transitions.clone(),
        }
    }
}

/// A parse error as a field violation: its path, and its message in the words
/// a person would use ("expected a whole number, found the text \"3\"") with
/// the line and column where the parser stopped.
fn parse_error(err: &serde_yaml_ng::Error) -> Violations {
    let message = err.to_string();
    // serde_yaml_ng appends " at line L column C"; the position is put first.
    let message = match message.rfind(" at line ") {
        Some(cut) => &message[..cut],
        None => &message,
    };
    let at = err
        .location()
        .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
        .unwrap_or_default();
    match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => {
            Violations::one(path, format!("{at}{}", in_plain_words(rest)))
        }
        _ => Violations::one("", format!("{at}{}", in_plain_words(message))),
    }
}

/// A file that is not YAML, in words: where, what, and for the mistakes
/// people make most (indentation, a tab, an unquoted `: `) how to fix it.
fn syntax_error(err: &serde_yaml_ng::Error) -> Violations {
    let mut message = err.to_string();
    // The parser's " at line L column C" goes: the position is put first.
    if let Some(start) = message.find(" at line ") {
        let end = message[start..]
            .find(',')
            .map_or(message.len(), |comma| start + comma);
        message.replace_range(start..end, "");
    }
    let at = err
        .location()
        .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
        .unwrap_or_default();
    const HINTS: [(&str, &str); 5] = [
        (
            "mapping values are not allowed",
            "a `key: value` where none can start: this line is most likely indented more or \
             less than the keys above it (line it up with them), or a text contains \": \" and \
             needs quotes",
        ),
        (
            "did not find expected key",
            "a key that does not line up with the keys of its item: indent it like them",
        ),
        (
            "did not find expected '-' indicator",
            "a list item that does not line up with the items above it: start it with \"- \" \
             at their indentation",
        ),
        (
            "found character that cannot start any token",
            "a character that cannot start a value, often a tab: indent with spaces only, or \
             put the text in quotes",
        ),
        ("found a tab character", "a tab: indent with spaces only"),
    ];
    let words = HINTS
        .iter()
        .find(|(raw, _)| message.contains(raw))
        .map_or_else(
            || format!("{message}; check the indentation of this line and the one above"),
            |(_, words)| (*words).to_string(),
        );
    Violations::one("", format!("{at}the file is not valid YAML: {words}"))
}

/// Rewrites serde's type vocabulary (`invalid type: string "3", expected u8`).
fn in_plain_words(message: &str) -> String {
    const TYPES: [(&str, &str); 9] = [
        ("expected u8", "expected a whole number 1-5"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
        (
            "expected a sequence",
            "expected a list (lines starting with \"- \")",
        ),
        ("expected a string", "expected text"),
        ("invalid type: string", "found the text"),
        ("invalid type: integer", "found the number"),
        ("invalid type: floating point", "found the number"),
    ];
    let mut message = message.to_string();
    if let Some(start) = message.find("expected struct ") {
        message.replace_range(start.., "expected a mapping (lines of `key: value`)");
    }
    for (serde, plain) in TYPES {
        message = message.replace(serde, plain);
    }
    if let Some((found, expected)) = message.split_once(", expected ")
        && found.starts_with("found ")
    {
        return format!("expected {expected}, {found}");
    }
    message
}

/// Ends a duplicate's message, followed by the path of the first definition.
const FIRST_DEFINED: &str = "; first defined at ";

/// Puts the line and column of each violation, and the id of the item it is
/// in, in front of its message.
fn locate(violations: Violations, text: &str, doc: Option<&Document>) -> Violations {
    let map = SourceMap::of(text);
    let mut violations = violations.0;
    // In file order, as a person works through them.
    violations.sort_by_key(|v| map.locate(&v.field).map(|p| (p.line, p.column)));
    let mut located = Violations::new();
    for v in violations {
        let item = doc.and_then(|d| d.item_named_by(&v.field));
        let at = match map.locate(&v.field) {
            Some(_) if v.description.starts_with("line ") => String::new(),
            Some(p) => format!("line {}, column {}: ", p.line, p.column),
            None => String::new(),
        };
        let item = item.map(|i| format!("({i}) ")).unwrap_or_default();
        let mut description = v.description;
        // A duplicate names where the first definition is.
        if let Some((_, first)) = description.split_once(FIRST_DEFINED)
            && let Some(p) = map.locate(first)
        {
            description.push_str(&format!(", line {}", p.line));
        }
        located.add(v.field, format!("{item}{at}{description}"));
    }
    located
}

impl Document {
    /// Parses and validates the bytes of a framework file: UTF-8 is required,
    /// and a problem with the encoding names its byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Document, Violations> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Document::from_yaml(text),
            Err(e) => {
                let offset = e.valid_up_to();
                let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
                Err(Violations::one(
                    "",
                    format!(
                        "line {line}: the file is not UTF-8: byte 0x{:02X} at byte offset {offset} \
                         does not start a valid UTF-8 character; save the file as UTF-8",
                        bytes[offset]
                    ),
                ))
            }
        }
    }

    /// Parses and validates a framework file; every problem names its YAML
    /// path, the line and column it is on, and the id of the item it is in.
    pub fn from_yaml(text: &str) -> Result<Document, Violations> {
        if text.trim().is_empty() {
            return Err(Violations::one(
                "",
                format!(
                    "the file is empty: a framework file has `format: {FORMAT}`, `tracks`, \
                     `competencies` and `roles` (`ladder framework export` writes one to start from)"
                ),
            ));
        }
        let mut value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| syntax_error(&e))?;
        // Every missing field and mistyped value first, mended so that the
        // meaning of the rest is checked in the same run.
        let (mut found, mended) = shape::check(&mut value);
        // A promotion checked against a stand-in seniority says nothing.
        let seniority_mended = mended.iter().any(|m| m.ends_with(".seniority"));
        let doc: Document = serde_yaml_ng::from_value(value).map_err(|e| parse_error(&e))?;
        let within = |field: &str, path: &str| {
            field == path
                || field
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        };
        found.0.extend(
            doc.validate()
                .0
                .into_iter()
                .filter(|v| !mended.iter().any(|m| within(&v.field, m)))
                .filter(|v| !(seniority_mended && v.description.starts_with("a promotion"))),
        );
        let found = locate(found, text, Some(&doc));
        found.into_result(doc)
    }

    /// The item a field path is in, as a person names it: `role "staff"`.
    fn item_named_by(&self, path: &str) -> Option<String> {
        let (list, rest) = path.split_once('[')?;
        let index: usize = rest.split_once(']')?.0.parse().ok()?;
        let (kind, id) = match list {
            "tracks" => ("track", &self.tracks.get(index)?.id),
            "competencies" => ("competency", &self.competencies.get(index)?.id),
            "roles" => ("role", &self.roles.get(index)?.id),
            _ => return None,
        };
        (!id.is_empty()).then(|| format!("{kind} {id:?}"))
    }

    /// The file in the layout of docs/framework.md's examples (a list
    /// indented under its key, `[]` for an empty one), so that a file
    /// written that way and exported again does not change.
    pub fn to_yaml(&self) -> Result<String, serde_yaml_ng::Error> {
        let mut out = String::from(EXPORT_HEADER);
        emit_mapping(&serde_yaml_ng::to_value(self)?, 0, false, &mut out)?;
        Ok(out)
    }

    /// The framework every new tenant starts with (`framework/builtin.yaml`).
    pub fn builtin() -> &'static Document {
        static BUILTIN: OnceLock<Document> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Document::from_yaml(BUILTIN_YAML)
                .unwrap_or_else(|v| panic!("framework/builtin.yaml is invalid: {v}"))
        })
    }

    /// The ids of the file's competencies, in file order.
    pub fn competency_ids(&self) -> Vec<&str> {
        self.competencies.iter().map(|c| c.id.as_str()).collect()
    }

    /// The ids of the file's tracks and of its roles, in file order.
    pub fn track_and_role_ids(&self) -> (Vec<&str>, Vec<&str>) {
        (
            self.tracks.iter().map(|t| t.id.as_str()).collect(),
            self.roles.iter().map(|r| r.id.as_str()).collect(),
        )
    }

    /// Every problem of the file, each with its YAML path. A file is
    /// self-contained: transitions and rubrics refer to roles and competencies
    /// defined in it.
    pub fn validate(&self) -> Violations {
        let mut v = Violations::new();
        if self.format != FORMAT {
            v.add("format", format!("must be {FORMAT}"));
        }
        let duplicate = |kind: &str, list: &str, id: &str, first: usize| {
            format!("duplicate {kind} id {id:?}{FIRST_DEFINED}{list}[{first}].id")
        };
        let mut tracks = HashMap::new();
        for (i, t) in self.tracks.iter().enumerate() {
            let at = format!("tracks[{i}]");
            v.extend_prefixed(&at, validate_track(t));
            if let Some(&first) = tracks.get(t.id.as_str()) {
                v.add(
                    format!("{at}.id"),
                    duplicate("track", "tracks", &t.id, first),
                );
            } else {
                tracks.insert(t.id.as_str(), i);
            }
        }
        let mut competencies = HashMap::new();
        for (i, c) in self.competencies.iter().enumerate() {
            let at = format!("competencies[{i}]");
            v.extend_prefixed(&at, validate_competency(c));
            if let Some(&first) = competencies.get(c.id.as_str()) {
                v.add(
                    format!("{at}.id"),
                    duplicate("competency", "competencies", &c.id, first),
                );
            } else {
                competencies.insert(c.id.as_str(), i);
            }
        }
        let mut roles = HashMap::new();
        for (i, r) in self.roles.iter().enumerate() {
            if let Some(&(first, _)) = roles.get(r.id.as_str()) {
                v.add(
                    format!("roles[{i}].id"),
                    duplicate("role", "roles", &r.id, first),
                );
            } else {
                roles.insert(r.id.as_str(), (i, r));
            }
        }
        for (i, r) in self.roles.iter().enumerate() {
            let at = format!("roles[{i}]");
            v.extend_prefixed(&at, validate_role(&r.role(), FieldNames::FILE));
            if !r.track.is_empty() && !tracks.contains_key(r.track.as_str()) {
                v.add(
                    format!("{at}.track"),
                    unknown("track", &r.track, tracks.keys().copied()),
                );
            }
            for (k, t) in r.transitions.iter().enumerate() {
                match roles.get(t.to.as_str()) {
                    None => v.add(
                        format!("{at}.transitions[{k}].to"),
                        unknown("role", &t.to, roles.keys().copied()),
                    ),
                    Some((_, target))
                        if t.kind == TransitionKind::Promotion
                            && target.seniority <= r.seniority =>
                    {
                        v.add(
                            format!("{at}.transitions[{k}].kind"),
                            format!(
                                "a promotion must lead to a more senior role: {:?} has seniority {}, {:?} has {}",
                                t.to, target.seniority, r.id, r.seniority
                            ),
                        )
                    }
                    Some(_) => {}
                }
            }
            let Some(rubric) = &r.rubric else { continue };
            let at = format!("{at}.rubric");
            v.extend_prefixed(
                &at,
                validate_expectations(&rubric.competencies, FieldNames::FILE),
            );
            for (k, c) in rubric.competencies.iter().enumerate() {
                if !competencies.contains_key(c.competency_id.as_str()) {
                    v.add(
                        format!("{at}.competencies[{k}].competency"),
                        unknown("competency", &c.competency_id, competencies.keys().copied()),
                    );
                }
            }
        }
        v
    }
}

/// Writes a mapping's entries at `indent`; with `in_list` the first entry
/// goes on the line a `- ` already started.
fn emit_mapping(
    value: &serde_yaml_ng::Value,
    indent: usize,
    in_list: bool,
    out: &mut String,
) -> Result<(), serde_yaml_ng::Error> {
    use serde_yaml_ng::Value;
    let Value::Mapping(entries) = value else {
        return emit_scalar(value, indent, out);
    };
    for (i, (key, value)) in entries.iter().enumerate() {
        if !(in_list && i == 0) {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&scalar_text(key, indent)?);
        out.push(':');
        match value {
            Value::Sequence(items) if items.is_empty() => out.push_str(" []\n"),
            Value::Sequence(items) => {
                out.push('\n');
                for item in items {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str("- ");
                    match item {
                        Value::Mapping(_) => emit_mapping(item, indent + 4, true, out)?,
                        _ => emit_scalar(item, indent + 4, out)?,
                    }
                }
            }
            Value::Mapping(_) => {
                out.push('\n');
                emit_mapping(value, indent + 2, false, out)?;
            }
            _ => {
                out.push(' ');
                emit_scalar(value, indent + 2, out)?;
            }
        }
    }
    Ok(())
}

/// A scalar and its line end; a block scalar's lines indented at `indent`.
fn emit_scalar(
    value: &serde_yaml_ng::Value,
    indent: usize,
    out: &mut String,
) -> Result<(), serde_yaml_ng::Error> {
    out.push_str(&scalar_text(value, indent)?);
    out.push('\n');
    Ok(())
}

/// A scalar as serde_yaml_ng quotes it, without its line end.
fn scalar_text(
    value: &serde_yaml_ng::Value,
    indent: usize,
) -> Result<String, serde_yaml_ng::Error> {
    let text = serde_yaml_ng::to_string(value)?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    // A block scalar (`|-` and its lines, two spaces in) is moved under its key.
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().to_string();
    Ok(lines.fold(first, |mut all, line| {
        all.push('\n');
        if !line.is_empty() {
            all.push_str(&" ".repeat(indent));
            all.push_str(line.strip_prefix("  ").unwrap_or(line));
        }
        all
    }))
}

/// "unknown competency "team_wrok": not defined in this file (did you mean
/// "teamwork"?)", suggesting the closest defined id when one is close.
fn unknown<'a>(kind: &str, id: &str, defined: impl Iterator<Item = &'a str>) -> String {
    match closest(id, defined) {
        Some(d) => {
            format!("unknown {kind} {id:?}: not defined in this file (did you mean {d:?}?)")
        }
        None => format!("unknown {kind} {id:?}: not defined in this file"),
    }
}

/// The id among `defined` a typo of `id` most likely meant, when one is
/// close enough to suggest.
pub fn closest<'a>(id: &str, defined: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    defined
        .map(|d| (strsim::damerau_levenshtein(id, d), d))
        .filter(|&(distance, d)| distance <= 2.max(d.len() / 4))
        .min()
        .map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_framework_is_valid_and_complete() {
        let doc = Document::builtin();
        assert_eq!(doc.competencies.len(), 16);
        assert_eq!(doc.roles.len(), 24);
        assert!(doc.roles.iter().all(|r| r.rubric.is_some()));
    }

    #[test]
    fn export_parses_back_to_the_same_document() {
        let doc = Document::builtin();
        let text = doc.to_yaml().unwrap();
        assert_eq!(&Document::from_yaml(&text).unwrap(), doc);
    }

    #[test]
    fn a_file_in_the_docs_layout_is_written_back_unchanged() {
        let text = include_str!("../../../tests/data/ft_framework.yaml");
        let doc = Document::from_yaml(text).unwrap();
        assert_eq!(doc.to_yaml().unwrap(), text);
        let mut multiline = doc;
        multiline.competencies[0].description = "Two lines:\nthe second".into();
        multiline.roles[0].description = "yes".into();
        let written = multiline.to_yaml().unwrap();
        assert_eq!(
            Document::from_yaml(&written).unwrap(),
            multiline,
            "{written}"
        );
    }

    #[test]
    fn errors_name_their_yaml_path() {
        let mut doc = Document::builtin().clone();
        doc.roles[3].rubric.as_mut().unwrap().competencies[2].expected_level = 7;
        doc.roles[1].transitions[0].to = "nobody".into();
        doc.competencies[0].levels.pop();
        let fields: Vec<String> = doc.validate().fields();
        assert_eq!(
            fields,
            [
                "competencies[0].levels",
                "roles[1].transitions[0].to",
                "roles[3].rubric.competencies[2].expected_level"
            ]
        );
    }

    #[test]
    fn type_errors_name_their_yaml_path() {
        let text = BUILTIN_YAML.replacen("expected_level: 3", "expected_level: high", 1);
        let err = Document::from_yaml(&text).unwrap_err();
        assert_eq!(
            err.0[0].field,
            "roles[0].rubric.competencies[0].expected_level"
        );
    }
}
