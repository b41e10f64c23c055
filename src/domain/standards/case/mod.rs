//! CASE 1.1 (1EdTech Competencies and Academic Standards Exchange) packages
//! in and out of Ladder's framework [`Document`]. The mapping, what is
//! tolerated on input and the extension keys are in docs/standards.md.
//!
//! - [`to_case`] writes a framework as a package whose identifiers are UUID v5
//!   of [`LADDER_NAMESPACE`] and a tenant-independent path of Ladder ids, so
//!   that the same framework always exports to the same bytes.
//! - [`read_case`] reads the bytes of a package (Ladder's own or another
//!   tool's) into a `Document` that `Document::validate` accepts, with a note
//!   for every item that has no counterpart in Ladder or was mapped only by
//!   tolerating a deviation, and the [`CaseItem`] each competency came from;
//!   a package with a bad value, a cycle or a self-parent is refused whole
//!   ([`CaseError::Refused`], every problem at once).

mod cycles;
mod export;
mod identity;
mod import;
mod model;

pub use export::{CaseExport, DEFAULT_BASE_URI, to_case, to_json};
pub use identity::{CaseItem, MAX_CASE_KEY_CHARS, adopt_known_ids};
pub use import::{CaseDocumentInfo, CaseImport, from_case};
pub use model::{
    CfAssociation, CfDefinitions, CfDocument, CfItem, CfItemType, CfLink, CfPackage, CfRubric,
    CfRubricCriterion, CfRubricCriterionLevel,
};

use serde_json::Value;
use uuid::Uuid;

use crate::domain::validation::Violations;

/// The namespace of every identifier Ladder writes into a CASE package:
/// UUID v5 of the URL `https://ladder.dev/case`.
pub const LADDER_NAMESPACE: Uuid = Uuid::from_u128(0x1068_44ad_1ec2_5754_b88b_e840_d5f9_a3e1);

/// The CASE identifier of the Ladder object at `path` (`competency/system_design`,
/// `competency/system_design/level/3`, `role/staff_engineer`, ...).
pub fn case_identifier(path: &str) -> Uuid {
    Uuid::new_v5(&LADDER_NAMESPACE, path.as_bytes())
}

/// The CASE identifier of a competency, as [`to_case`] writes it; xAPI
/// statements may name the competency by it or by its URI.
pub fn competency_identifier(competency_id: &str) -> Uuid {
    case_identifier(&format!("competency/{competency_id}"))
}

/// The `CFItemType` values Ladder writes.
pub(crate) mod item_type {
    pub const TRACK: &str = "Track";
    pub const ROLE: &str = "Role";
    pub const COMPETENCY: &str = "Competency";
    pub const LEVEL: &str = "Level";
    pub const BEHAVIOUR: &str = "Behaviour";
    pub const ALL: [&str; 5] = [TRACK, COMPETENCY, LEVEL, BEHAVIOUR, ROLE];
}

/// The keys of Ladder's fields in `extensions` objects.
pub(crate) mod ext {
    /// CFDocument: `ladder.framework/v1`; marks a package Ladder wrote.
    pub const FORMAT: &str = "ladder:format";
    /// CFDocument: `complete` for a framework file in complete mode.
    pub const MODE: &str = "ladder:mode";
    /// Any item: the description when it is empty (`fullStatement` is
    /// required by CASE, so it then holds the name).
    pub const DESCRIPTION: &str = "ladder:description";
    /// Role item: the seniority (a whole number).
    pub const SENIORITY: &str = "ladder:seniority";
    /// `precedes` association between roles: `promotion` or `lateral`.
    pub const TRANSITION: &str = "ladder:transition";
    /// CFRubric: the id of the role whose rubric it is.
    pub const ROLE: &str = "ladder:role";
    /// CFRubricCriterion: the expected level (1-5).
    pub const EXPECTED_LEVEL: &str = "ladder:expectedLevel";
    /// CFRubricCriterion: the critical flag.
    pub const CRITICAL: &str = "ladder:critical";
    /// CFRubricCriterion: the development actions (a list of text).
    pub const DEVELOPMENT_ACTIONS: &str = "ladder:developmentActions";
}

/// Reads one of Ladder's keys from an `extensions` value: an object, or (as
/// some tools write it) a list of objects.
pub(crate) fn extension<'a>(extensions: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    match extensions? {
        Value::Object(map) => map.get(key),
        Value::Array(items) => items.iter().find_map(|v| v.as_object()?.get(key)),
        _ => None,
    }
}

/// How an item of the package was treated by the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// Not imported: the reason says why.
    Skipped,
    /// Imported, but only by tolerating a deviation or filling a gap.
    Adjusted,
}

/// One thing the import could not map, or mapped by tolerating a deviation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseNote {
    /// The identifier of the CASE object (or its URI, or its position such as
    /// `CFItems[12]` when it has neither).
    pub identifier: String,
    pub kind: NoteKind,
    pub reason: String,
}

/// A package that is not imported. Objects that have no counterpart in
/// Ladder are notes instead; a bad value is not, because importing the rest
/// would change the framework in part (SPEC §9: all or nothing).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CaseError {
    #[error("{0}")]
    Unreadable(String),
    /// Every bad value, cycle and self-parent of the package, each at its
    /// path in the package (`CFItems[3]`, `CFRubrics[0].CFRubricCriteria[2].weight`).
    #[error("{0}")]
    Refused(Violations),
    /// The mapped framework still fails validation (a defect of the import:
    /// it drops what it cannot map).
    #[error("the imported framework is invalid: {0}")]
    Invalid(Violations),
}

/// Reads the bytes of a CASE package: JSON (UTF-8, a byte-order mark is
/// skipped), either the package itself or an object wrapping it under
/// `CFPackage`. Keys are matched without regard to case. An item that does not
/// have the shape of its class is skipped with a note; the rest are mapped.
pub fn read_case(bytes: &[u8]) -> Result<CaseImport, CaseError> {
    let (package, mut notes, malformed) = parse_package(bytes)?;
    // The other problems are named by their place in the lists, which the
    // entries left out would shift: a package of the wrong shape is
    // answered with all its malformed entries first.
    if !malformed.is_empty() {
        return Err(CaseError::Refused(malformed));
    }
    let mut imported = from_case(&package)?;
    notes.append(&mut imported.notes);
    imported.notes = notes;
    Ok(imported)
}

type Parsed = (CfPackage, Vec<CaseNote>, Violations);

fn parse_package(bytes: &[u8]) -> Result<Parsed, CaseError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        CaseError::Unreadable(format!(
            "the file is not UTF-8 (byte offset {}); save it as UTF-8",
            e.valid_up_to()
        ))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        CaseError::Unreadable(format!(
            "line {}, column {}: not JSON: {}",
            e.line(),
            e.column(),
            plain_json_error(&e)
        ))
    })?;
    let Value::Object(mut top) = value else {
        return Err(CaseError::Unreadable(
            "a CASE package is a JSON object with CFDocument and CFItems".into(),
        ));
    };
    if let Some(key) = key_like(&top, "CFPackage")
        && let Some(Value::Object(inner)) = top.remove(&key)
    {
        top = inner;
    }
    let mut take = |name: &str| key_like(&top, name).and_then(|k| top.remove(&k));
    let document = take("CFDocument");
    let items = take("CFItems");
    let associations = take("CFAssociations");
    let definitions = take("CFDefinitions");
    let rubrics = take("CFRubrics");
    if document.is_none() && items.is_none() {
        return Err(CaseError::Unreadable(
            "not a CASE package: it has neither CFDocument nor CFItems".into(),
        ));
    }
    let mut notes = Vec::new();
    let mut malformed = Violations::new();
    let document = match document {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| CaseError::Unreadable(format!("CFDocument: {}", plain_json_error(&e))))?,
        None => {
            notes.push(CaseNote {
                identifier: "CFDocument".into(),
                kind: NoteKind::Adjusted,
                reason: "the package has no CFDocument: its items were read without one".into(),
            });
            CfDocument::default()
        }
    };
    let package = CfPackage {
        document,
        items: list_of(items, "CFItems", &mut malformed)?,
        associations: list_of(associations, "CFAssociations", &mut malformed)?,
        definitions: definitions.and_then(|v| serde_json::from_value(v).ok()),
        rubrics: list_of(rubrics, "CFRubrics", &mut malformed)?,
    };
    Ok((package, notes, malformed))
}

/// The key of `map` equal to `name` but for case.
fn key_like(map: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Each element of a list read on its own, so that every malformed object
/// is named (at `{name}[i]`), not only the first.
fn list_of<T: serde::de::DeserializeOwned>(
    value: Option<Value>,
    name: &str,
    malformed: &mut Violations,
) -> Result<Vec<T>, CaseError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(CaseError::Unreadable(format!("{name} must be a list"))),
    };
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let identifier = item
            .get("identifier")
            .and_then(Value::as_str)
            .map(|id| format!(" ({id})"))
            .unwrap_or_default();
        match serde_json::from_value(item) {
            Ok(v) => parsed.push(v),
            Err(e) => malformed.add(
                format!("{name}[{i}]"),
                format!("not a {name} entry{identifier}: {}", plain_json_error(&e)),
            ),
        }
    }
    Ok(parsed)
}

/// serde_json's message without its trailing position (reported separately).
fn plain_json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_string(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_the_v5_uuid_of_the_ladder_case_url() {
        assert_eq!(
            LADDER_NAMESPACE,
            Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://ladder.dev/case")
        );
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;
    use crate::domain::framework::Document;
    use chrono::TimeZone;

    fn options() -> CaseExport {
        CaseExport::new(chrono::Utc.with_ymd_and_hms(2026, 1, 15, 9, 30, 0).unwrap())
    }

    #[test]
    fn the_builtin_framework_round_trips_without_loss() {
        let doc = Document::builtin();
        let first = to_json(&to_case(doc, &options()));
        let imported = read_case(first.as_bytes()).unwrap();
        assert_eq!(imported.notes, []);
        assert_eq!(&imported.document, doc);
        assert_eq!(to_json(&to_case(&imported.document, &options())), first);
    }

    #[test]
    fn empty_and_name_like_descriptions_survive() {
        let mut doc = Document::builtin().clone();
        doc.competencies[0].description.clear();
        doc.competencies[1].description = doc.competencies[1].name.clone();
        doc.competencies[2].levels[0].description.clear();
        doc.tracks[0].description.clear();
        doc.mode = crate::domain::framework::ImportMode::Complete;
        let imported = from_case(&to_case(&doc, &options())).unwrap();
        assert_eq!(imported.document, doc);
    }

    #[test]
    fn identifiers_are_uuids_derived_from_ladder_ids() {
        let package = to_case(Document::builtin(), &options());
        let item = &package.items[4];
        assert_eq!(item.item_type.as_deref(), Some("Competency"));
        let id = Uuid::parse_str(item.identifier.as_deref().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 5);
        assert_eq!(
            id,
            competency_identifier(&Document::builtin().competencies[0].id)
        );
    }
}
