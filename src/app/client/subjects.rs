//! `ladder subject ...`: who holds which role now (`set-role`, one subject
//! or a whole CSV file), where people sit and who manages them (`import`, in
//! batches), and who is where (`list`).

use std::path::Path;

use crate::app::client::{Clients, call_failed};
use crate::app::error::AppError;
use crate::proto::v1 as pb;

/// Sets `role` as `subject`'s current role, creating the subject if need be.
pub async fn set_role(clients: &mut Clients, subject: &str, role: &str) -> Result<(), AppError> {
    clients
        .assessment
        .update_subject(pb::UpdateSubjectRequest {
            subject: Some(pb::Subject {
                id: subject.to_string(),
                current_role_id: role.to_string(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["current_role_id".into()],
            }),
            allow_missing: true,
        })
        .await
        .map_err(call_failed)?;
    Ok(())
}

/// Sets the current role of every subject in a CSV file with the columns
/// `subject_id` and `current_role_id`; returns how many were set.
pub async fn set_roles_from_file(clients: &mut Clients, file: &Path) -> Result<usize, AppError> {
    let io = |source| AppError::Io {
        context: format!("reading {}", file.display()),
        source,
    };
    let mut reader = csv::Reader::from_path(file).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(source) => io(source),
        other => AppError::Config(format!("{}: {other:?}", file.display())),
    })?;
    let headers = reader
        .headers()
        .map_err(|e| AppError::Config(format!("{}: {e}", file.display())))?
        .clone();
    let column =
        |name: &str| {
            headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
            AppError::Config(format!(
                "{}: the header needs the columns subject_id and current_role_id (found: {})",
                file.display(),
                headers.iter().collect::<Vec<_>>().join(",")
            ))
        })
        };
    let (subject_at, role_at) = (column("subject_id")?, column("current_role_id")?);
    let mut count = 0;
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| AppError::Config(format!("{}: {e}", file.display())))?;
        let line = i + 2;
        let (Some(subject), Some(role)) = (row.get(subject_at), row.get(role_at)) else {
            return Err(AppError::Config(format!(
                "{} line {line}: missing subject_id or current_role_id",
                file.display()
            )));
        };
        set_role(clients, subject.trim(), role.trim())
            .await
            .map_err(|e| AppError::Config(format!("{} line {line}: {e}", file.display())))?;
        count += 1;
    }
    Ok(count)
}

/// The columns `ladder subject import` reads; only subject_id is required,
/// and a missing column leaves that field as stored.
const IMPORT_COLUMNS: [&str; 3] = ["current_role_id", "org_unit", "manager_id"];

/// How many rejected rows `subject import` prints.
const MAX_SHOWN_REJECTS: usize = 20;

/// What `subject import` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub updated: usize,
    pub rejected: usize,
}

/// One row of the file: its line and the update it asks for.
type Row = (usize, pb::UpdateSubjectRequest);

/// Sets the role, org unit and manager of every subject in a CSV file with
/// a subject_id column and any of current_role_id, org_unit and manager_id
/// (an empty cell clears the field), in BatchUpdateSubjects calls of up to
/// `batch_size` rows. A row the server refuses is reported with its line and
/// reason, and its batch is sent again without it.
pub async fn import(
    clients: &mut Clients,
    file: &Path,
    batch_size: usize,
) -> Result<ImportSummary, AppError> {
    let rows = read_import(file)?;
    let mut updated = 0;
    let mut rejected: Vec<String> = Vec::new();
    for batch in rows.chunks(batch_size.max(1)) {
        let mut pending: Vec<Row> = batch.to_vec();
        while !pending.is_empty() {
            let request = pb::BatchUpdateSubjectsRequest {
                requests: pending.iter().map(|(_, r)| r.clone()).collect(),
            };
            match clients.assessment.batch_update_subjects(request).await {
                Ok(_) => {
                    updated += pending.len();
                    break;
                }
                Err(status) => {
                    let refused = refused_rows(&status);
                    if status.code() != tonic::Code::InvalidArgument || refused.is_empty() {
                        return Err(call_failed(status));
                    }
                    for (i, field, reason) in &refused {
                        rejected.push(format!("  line {}: {field}: {reason}", pending[*i].0));
                    }
                    pending = pending
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !refused.iter().any(|(r, _, _)| r == i))
                        .map(|(_, row)| row)
                        .collect();
                }
            }
        }
    }
    let summary = ImportSummary {
        updated,
        rejected: rejected.len(),
    };
    let said = format!(
        "imported {}: {} subject(s) updated, {} rejected",
        file.display(),
        summary.updated,
        summary.rejected
    );
    if rejected.is_empty() {
        eprintln!("{said}");
        return Ok(summary);
    }
    let more = rejected.len() > MAX_SHOWN_REJECTS;
    rejected.truncate(MAX_SHOWN_REJECTS);
    Err(AppError::Config(format!(
        "{said}:\n{}{}",
        rejected.join("\n"),
        if more { "\n  …" } else { "" }
    )))
}

/// The requests a refused batch names (`requests[3].subject.org_unit`):
/// index, field within the request, reason.
fn refused_rows(status: &tonic::Status) -> Vec<(usize, String, String)> {
    use tonic_types::StatusExt;
    let Some(bad) = status.get_details_bad_request() else {
        return Vec::new();
    };
    bad.field_violations
        .into_iter()
        .filter_map(|v| {
            let rest = v.field.strip_prefix("requests[")?;
            let (index, field) = rest.split_once(']')?;
            let field = field.strip_prefix('.').unwrap_or(field).to_string();
            Some((index.parse().ok()?, field, v.description))
        })
        .collect()
}

/// Reads the file's rows into update requests that create missing subjects
/// and name, in their masks, the columns the file has.
fn read_import(file: &Path) -> Result<Vec<Row>, AppError> {
    let config = |e: &dyn std::fmt::Display| AppError::Config(format!("{}: {e}", file.display()));
    let mut reader = csv::Reader::from_path(file).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(source) => AppError::Io {
            context: format!("reading {}", file.display()),
            source,
        },
        other => config(&format!("{other:?}")),
    })?;
    let headers = reader.headers().map_err(|e| config(&e))?.clone();
    let at = |name: &str| headers.iter().position(|h| h.trim() == name);
    let subject_at = at("subject_id").ok_or_else(|| {
        config(&format!(
            "the header needs a subject_id column and any of {} (found: {})",
            IMPORT_COLUMNS.join(", "),
            headers.iter().collect::<Vec<_>>().join(",")
        ))
    })?;
    let columns: Vec<(&str, usize)> = IMPORT_COLUMNS
        .iter()
        .filter_map(|name| at(name).map(|i| (*name, i)))
        .collect();
    let mask = prost_types::FieldMask {
        paths: columns.iter().map(|(name, _)| name.to_string()).collect(),
    };
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| config(&e))?;
        let cell = |at: usize| record.get(at).unwrap_or_default().trim().to_string();
        let mut subject = pb::Subject {
            id: cell(subject_at),
            ..Default::default()
        };
        for (name, at) in &columns {
            let value = cell(*at);
            match *name {
                "current_role_id" => subject.current_role_id = value,
                "org_unit" => subject.org_unit = value,
                _ => subject.manager_id = value,
            }
        }
        rows.push((
            // The header is line 1.
            i + 2,
            pb::UpdateSubjectRequest {
                subject: Some(subject),
                update_mask: Some(mask.clone()),
                allow_missing: true,
            },
        ));
    }
    Ok(rows)
}

/// Which subjects `subject list` prints.
#[derive(Debug, Clone, Default)]
pub struct ListArgs {
    pub org_unit: Option<String>,
    pub manager: Option<String>,
    pub indirect: bool,
    pub role: Option<String>,
}

/// Every subject matching `args`, page after page, as CSV
/// (subject_id,current_role_id,org_unit,manager_id) on stdout; returns how
/// many. A closed pipe (`| head`) ends the listing quietly.
pub async fn list(clients: &mut Clients, args: &ListArgs) -> Result<usize, AppError> {
    let mut out = csv::Writer::from_writer(std::io::stdout());
    if let Err(e) = out.write_record(["subject_id", "current_role_id", "org_unit", "manager_id"]) {
        return closed_pipe(e).map(|()| 0);
    }
    let mut count = 0;
    let mut page_token = String::new();
    loop {
        let page = clients
            .assessment
            .list_subjects(pb::ListSubjectsRequest {
                page_size: 1000,
                page_token,
                org_unit: args.org_unit.clone().unwrap_or_default(),
                manager_id: args.manager.clone().unwrap_or_default(),
                include_indirect_reports: args.indirect,
                current_role_id: args.role.clone().unwrap_or_default(),
            })
            .await
            .map_err(call_failed)?
            .into_inner();
        let written = page
            .subjects
            .iter()
            .try_for_each(|s| {
                out.write_record([&s.id, &s.current_role_id, &s.org_unit, &s.manager_id])
            })
            .and_then(|()| out.flush().map_err(csv::Error::from));
        if let Err(e) = written {
            return closed_pipe(e).map(|()| count);
        }
        count += page.subjects.len();
        if page.next_page_token.is_empty() {
            return Ok(count);
        }
        page_token = page.next_page_token;
    }
}

/// A write to stdout that failed because the reader went away is the end of
/// the output, not an error.
fn closed_pipe(e: csv::Error) -> Result<(), AppError> {
    match e.into_kind() {
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        csv::ErrorKind::Io(source) => Err(AppError::Io {
            context: "writing the listing".into(),
            source,
        }),
        other => Err(AppError::Config(format!("writing the listing: {other:?}"))),
    }
}
