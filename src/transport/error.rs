//! The one place where errors become `tonic::Status`, with google.rpc details:
//! `BadRequest` field violations for bad input, `ErrorInfo` for the rest.
//! Storage errors arrive already classified (`storage::StorageError`).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::app::scoring::ScoringError;
use crate::domain::validation::Violations;
use crate::storage::{Refusal, StorageError};
use crate::transport::pipeline::Scope;

/// The `ErrorInfo.domain` of every error Ladder returns.
pub const ERROR_DOMAIN: &str = "ladder.v1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid argument: {0}")]
    InvalidArgument(#[from] Violations),
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's token lacks the scope the method needs.
    #[error("the token lacks the `{}` scope this method needs", .0.as_str())]
    MissingScope(Scope),
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

impl From<ScoringError> for ApiError {
    fn from(err: ScoringError) -> Self {
        match err {
            ScoringError::Storage(e) => ApiError::Storage(e),
            ScoringError::Invalid(v) => ApiError::InvalidArgument(v),
        }
    }
}

fn info(reason: &str, metadata: &[(&str, &str)]) -> ErrorDetails {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata)
}

/// What a storage error tells the client, and how loudly it is logged:
/// only faults of the service itself are errors in the log.
fn storage_status(err: &StorageError) -> (Code, ErrorDetails) {
    match err {
        StorageError::NotFound { kind, id } => (
            Code::NotFound,
            info("NOT_FOUND", &[("kind", kind), ("id", id)]),
        ),
        StorageError::AlreadyExists { kind, id } => (
            Code::AlreadyExists,
            info("ALREADY_EXISTS", &[("kind", kind), ("id", id)]),
        ),
        StorageError::StaleEtag { kind, id } => (
            Code::Aborted,
            info("STALE_ETAG", &[("kind", kind), ("id", id)]),
        ),
        StorageError::FailedPrecondition(_) => {
            (Code::FailedPrecondition, info("FAILED_PRECONDITION", &[]))
        }
        StorageError::EvidenceConflict { items } => {
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
        StorageError::Refused {
            refusal, sqlstate, ..
        } => {
            let (code, reason) = match refusal {
                Refusal::Conflict => (Code::AlreadyExists, "ALREADY_EXISTS"),
                Refusal::Constraint => (Code::FailedPrecondition, "CONSTRAINT"),
                Refusal::InvalidValue => (Code::InvalidArgument, "INVALID_VALUE"),
                Refusal::Retryable => (Code::Aborted, "CONCURRENT_UPDATE"),
            };
            (code, info(reason, &[("sqlstate", sqlstate)]))
        }
        StorageError::Unavailable(_) => (Code::Unavailable, info("DATABASE_UNAVAILABLE", &[])),
        StorageError::Corrupt(_) | StorageError::Migrate(_) => {
            (Code::Internal, info("INTERNAL", &[]))
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        let (code, details) = match &err {
            ApiError::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in &violations.0 {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                (Code::InvalidArgument, details)
            }
            ApiError::Unauthenticated(_) => (Code::Unauthenticated, info("UNAUTHENTICATED", &[])),
            ApiError::MissingScope(scope) => (
                Code::PermissionDenied,
                info("MISSING_SCOPE", &[("scope", scope.as_str())]),
            ),
            ApiError::PreconditionOn { field, message } => (
                Code::FailedPrecondition,
                ErrorDetails::with_precondition_failure_violation("FIELD", *field, message.clone()),
            ),
            ApiError::Storage(e) => storage_status(e),
        };
        let message = match code {
            // The service's own faults: the details are for the log, not the caller.
            Code::Internal => {
                tracing::error!(error = %err, "internal error");
                "internal error".to_string()
            }
            Code::Unavailable => {
                tracing::error!(error = %err, "database unavailable");
                "the database is unavailable; retry later".to_string()
            }
            // The caller's to fix; the message may name subjects, which logs never do.
            _ => {
                tracing::debug!(code = ?code, "request refused");
                err.to_string()
            }
        };
        Status::with_error_details(code, message, details)
    }
}
