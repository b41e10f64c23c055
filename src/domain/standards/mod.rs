//! Open learning-technology standards: frameworks as CASE 1.1 packages and
//! learning records as xAPI statements (SPEC §9, docs/standards.md). Pure
//! translation between their JSON and Ladder's domain types; the API and the
//! CLI apply the results.

pub mod case;
pub mod xapi;

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::domain::framework::Document;
use crate::domain::validation::Violations;
use case::{CaseError, CaseExport, CaseItem, CaseNote};

/// The two formats a whole framework travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameworkFormat {
    /// Ladder's framework file (`format: ladder.framework/v1`).
    Yaml,
    /// A CASE 1.1 package as JSON.
    Case,
}

impl FrameworkFormat {
    /// The format a file's name says: `.json` is a CASE package, `.yaml` and
    /// `.yml` Ladder's file.
    pub fn of_path(path: &Path) -> Option<FrameworkFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "json" => Some(FrameworkFormat::Case),
            "yaml" | "yml" => Some(FrameworkFormat::Yaml),
            _ => None,
        }
    }
}

/// A framework read from a document, with what a CASE package held that
/// was not imported as it stood (always empty for YAML).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadFramework {
    pub document: Document,
    pub notes: Vec<CaseNote>,
    /// The CASE identity of each competency a package held (none for YAML).
    pub case_items: Vec<CaseItem>,
}

/// Reads and validates a framework document. Every problem is a violation
/// at its path in the document (`roles[3].track`, with the line and column
/// for YAML); a document that cannot be read at all is one violation at `""`.
pub fn read_framework(format: FrameworkFormat, bytes: &[u8]) -> Result<ReadFramework, Violations> {
    match format {
        FrameworkFormat::Yaml => Ok(ReadFramework {
            document: Document::from_bytes(bytes)?,
            notes: Vec::new(),
            case_items: Vec::new(),
        }),
        FrameworkFormat::Case => match case::read_case(bytes) {
            Ok(imported) => Ok(ReadFramework {
                document: imported.document,
                notes: imported.notes,
                case_items: imported.items,
            }),
            Err(CaseError::Unreadable(reason)) => Err(Violations::one("", reason)),
            Err(CaseError::Refused(found)) => Err(found),
            Err(CaseError::Invalid(violations)) => {
                let mut located = Violations::new();
                for v in violations.0 {
                    located.add(
                        "",
                        format!(
                            "the package maps to an invalid framework at {}: {}",
                            v.field, v.description
                        ),
                    );
                }
                Err(located)
            }
        },
    }
}

/// A framework as a document; a CASE package carries `last_change` as every
/// object's `lastChangeDateTime`, with Ladder's defaults for the rest
/// ([`CaseExport::new`]), and gives the competencies `case_items` names
/// the identity they were imported with.
pub fn write_framework(
    format: FrameworkFormat,
    document: &Document,
    last_change: DateTime<Utc>,
    case_items: &[CaseItem],
) -> String {
    match format {
        // Plain structs of strings, numbers and lists always serialize.
        FrameworkFormat::Yaml => document
            .to_yaml()
            .expect("a framework document always serializes"),
        FrameworkFormat::Case => {
            let mut options = CaseExport::new(last_change);
            options.items = case_items.to_vec();
            case::to_json(&case::to_case(document, &options))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_tells_the_format() {
        let of = |name: &str| FrameworkFormat::of_path(Path::new(name));
        assert_eq!(of("partner.case.JSON"), Some(FrameworkFormat::Case));
        assert_eq!(of("ladder.yml"), Some(FrameworkFormat::Yaml));
        assert_eq!(of("ladder.yaml"), Some(FrameworkFormat::Yaml));
        assert_eq!(of("ladder.txt"), None);
        assert_eq!(of("ladder"), None);
    }

    #[test]
    fn both_formats_read_back_what_they_write() {
        let doc = Document::builtin();
        let when = Utc::now();
        for format in [FrameworkFormat::Yaml, FrameworkFormat::Case] {
            let text = write_framework(format, doc, when, &[]);
            let read = read_framework(format, text.as_bytes()).unwrap();
            assert_eq!(&read.document, doc);
            assert_eq!(read.notes, []);
        }
    }

    #[test]
    fn an_unreadable_package_is_one_problem_at_the_document() {
        let found = read_framework(FrameworkFormat::Case, b"format: x").unwrap_err();
        assert_eq!(found.0.len(), 1);
        assert_eq!(found.0[0].field, "");
        assert!(found.0[0].description.contains("not JSON"), "{found}");
    }
}
