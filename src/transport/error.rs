//! The one place where errors become `tonic::Status`, with google.rpc details:
//! `BadRequest` field violations for bad input, `ErrorInfo` for the rest.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::validation::Violations;
use crate::storage::StorageError;

/// The `ErrorInfo.domain` of every error Ladder returns.
pub const ERROR_DOMAIN: &str = "ladder.v1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid argument: {0}")]
    InvalidArgument(#[from] Violations),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A precondition on one request field, named in a PreconditionFailure detail.
    #[error("{field}: {message}")]
    PreconditionOn {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ApiError {
    /// A single bad field, the common case in handlers.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        ApiError::InvalidArgument(Violations::one(field, description))
    }
}

fn info(reason: &str, metadata: &[(&str, &str)]) -> ErrorDetails {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata)
}

/// A database error by its SQLSTATE class: what the request got wrong is the
/// caller's to fix, not an outage to retry.
fn database_status(e: &sqlx::Error) -> Status {
    let code = e
        .as_database_error()
        .and_then(|d| d.code())
        .unwrap_or_default();
    let (status, reason, message) = match code.get(..2) {
        // Data exceptions: a value PostgreSQL cannot hold (a NUL byte, a date out of range).
        Some("22") => (
            Code::InvalidArgument,
            "INVALID_VALUE",
            "a value cannot be stored",
        ),
        Some("23") if code == "23505" => (
            Code::AlreadyExists,
            "ALREADY_EXISTS",
            "the resource already exists",
        ),
        Some("23") => (
            Code::FailedPrecondition,
            "CONSTRAINT",
            "the change conflicts with stored data",
        ),
        Some("40") => (
            Code::Aborted,
            "CONCURRENT_UPDATE",
            "a concurrent change interfered; retry",
        ),
        _ => (
            Code::Unavailable,
            "DATABASE_UNAVAILABLE",
            "the database is unavailable; retry later",
        ),
    };
    if status == Code::Unavailable {
        tracing::error!(error = %e, "database error");
    } else {
        tracing::info!(error = %e, sqlstate = %code, "request refused by the database");
    }
    let detail = e
        .as_database_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    Status::with_error_details(
        status,
        if detail.is_empty() || status == Code::Unavailable {
            message.to_string()
        } else {
            format!("{message}: {detail}")
        },
        info(reason, &[("sqlstate", &code)]),
    )
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        let message = err.to_string();
        let (code, details) = match &err {
            ApiError::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in &violations.0 {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                (Code::InvalidArgument, details)
            }
            ApiError::Unauthenticated(_) => (Code::Unauthenticated, info("UNAUTHENTICATED", &[])),
            ApiError::PermissionDenied(_) => {
                (Code::PermissionDenied, info("PERMISSION_DENIED", &[]))
            }
            ApiError::PreconditionOn { field, message } => (
                Code::FailedPrecondition,
                ErrorDetails::with_precondition_failure_violation("FIELD", *field, message.clone()),
            ),
            ApiError::FailedPrecondition(_) => {
                (Code::FailedPrecondition, info("FAILED_PRECONDITION", &[]))
            }
            ApiError::Storage(StorageError::NotFound { kind, id }) => (
                Code::NotFound,
                info("NOT_FOUND", &[("kind", kind), ("id", id)]),
            ),
            ApiError::Storage(StorageError::AlreadyExists { kind, id }) => (
                Code::AlreadyExists,
                info("ALREADY_EXISTS", &[("kind", kind), ("id", id)]),
            ),
            ApiError::Storage(StorageError::StaleEtag { kind, id }) => (
                Code::Aborted,
                info("STALE_ETAG", &[("kind", kind), ("id", id)]),
            ),
            ApiError::Storage(StorageError::FailedPrecondition(_)) => {
                (Code::FailedPrecondition, info("FAILED_PRECONDITION", &[]))
            }
            ApiError::Storage(StorageError::EvidenceConflict { items }) => {
                let metadata: HashMap<String, String> = items
                    .iter()
                    .map(|i| {
                        let field = format!("evidence[{i}]");
                        (field, "key stored with different content".to_string())
                    })
                    .collect();
                let details =
                    ErrorDetails::with_error_info("EVIDENCE_KEY_CONFLICT", ERROR_DOMAIN, metadata);
                (Code::AlreadyExists, details)
            }
            ApiError::Storage(StorageError::Database(e)) => return database_status(e),
            ApiError::Storage(StorageError::Migrate(e)) => {
                tracing::error!(error = %e, "migration error");
                (Code::Internal, info("INTERNAL", &[]))
            }
        };
        Status::with_error_details(code, message, details)
    }
}
