//! `ladder subject set-role`: who holds which role now, one subject or a
//! whole CSV file (`subject_id,current_role_id`, other columns ignored).

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
