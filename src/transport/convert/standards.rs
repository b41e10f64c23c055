//! Framework documents and xAPI statement results: proto <-> domain.

use crate::domain::standards::FrameworkFormat;
use crate::domain::standards::case::{CaseNote, NoteKind};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::storage::framework_file::ImportReport;

/// The format an import names; it is required.
pub fn format_from_pb(value: i32, field: &str) -> Result<FrameworkFormat, Violations> {
    match pb::FrameworkFormat::try_from(value) {
        Ok(pb::FrameworkFormat::Yaml) => Ok(FrameworkFormat::Yaml),
        Ok(pb::FrameworkFormat::Case) => Ok(FrameworkFormat::Case),
        _ => Err(Violations::one(
            field,
            "is required: FRAMEWORK_FORMAT_YAML or FRAMEWORK_FORMAT_CASE",
        )),
    }
}

pub fn format_to_pb(format: FrameworkFormat) -> pb::FrameworkFormat {
    match format {
        FrameworkFormat::Yaml => pb::FrameworkFormat::Yaml,
        FrameworkFormat::Case => pb::FrameworkFormat::Case,
    }
}

fn note_to_pb(note: CaseNote) -> pb::ImportNote {
    let kind = match note.kind {
        NoteKind::Skipped => pb::ImportNoteKind::Skipped,
        NoteKind::Adjusted => pb::ImportNoteKind::Adjusted,
    };
    pb::ImportNote {
        identifier: note.identifier,
        kind: kind as i32,
        reason: note.reason,
    }
}

pub fn import_to_pb(report: ImportReport, notes: Vec<CaseNote>) -> pb::ImportFrameworkResponse {
    pb::ImportFrameworkResponse {
        created: report.created,
        changed: report.changed,
        unchanged: report.unchanged,
        removed: report.removed,
        retired: report.retired,
        not_in_file: report.not_in_file,
        notes: notes.into_iter().map(note_to_pb).collect(),
    }
}

/// The report a response carries, for the CLI to print as the direct
/// import does.
pub fn report_from_pb(response: &pb::ImportFrameworkResponse) -> ImportReport {
    ImportReport {
        created: response.created.clone(),
        changed: response.changed.clone(),
        unchanged: response.unchanged.clone(),
        removed: response.removed.clone(),
        retired: response.retired.clone(),
        not_in_file: response.not_in_file.clone(),
    }
}

/// The notes a response carries, for the CLI to print as the direct import
/// does.
pub fn notes_from_pb(response: &pb::ImportFrameworkResponse) -> Vec<CaseNote> {
    response
        .notes
        .iter()
        .map(|n| CaseNote {
            identifier: n.identifier.clone(),
            kind: match pb::ImportNoteKind::try_from(n.kind) {
                Ok(pb::ImportNoteKind::Skipped) => NoteKind::Skipped,
                _ => NoteKind::Adjusted,
            },
            reason: n.reason.clone(),
        })
        .collect()
}
