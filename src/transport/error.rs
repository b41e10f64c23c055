//! The one place where errors become `tonic::Status`, with google.rpc details:
//! `BadRequest` field violations for bad input, `ErrorInfo` for the rest.
//! Storage errors arrive already classified (`storage::StorageError`).

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::validation::Violations;
use crate::storage::evidence::KeyConflict;
use crate::storage::{Refusal, StorageError};
use crate::transport::limits::RETRY_AFTER;
use crate::transport::pipeline::Scope;
use crate::usecases::scoring::ScoringError;

/// The `ErrorInfo.domain` of every error Ladder returns.
pub const ERROR_DOMAIN: &str = "ladder.v1";

/// Field violations in one answer; the rest are counted in one more.
pub const MAX_VIOLATIONS: usize = 100;
/// Longest `grpc-message`, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest field name or description in a detail, in bytes: they may quote
/// what the client sent.
const MAX_DETAIL_BYTES: usize = 256;

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
    /// Bytes that are not the request message the method takes.
    #[error("the request is not a valid message: {0}")]
    Malformed(String),
    /// Every in-flight slot is taken: the call was shed, not queued.
    #[error("the server is at its limit of {max_in_flight} calls in flight; retry shortly")]
    Overloaded { max_in_flight: usize },
    /// The server is draining before it stops.
    #[error("the server is shutting down; retry on another replica")]
    ShuttingDown,
    /// The call ran out of its deadline (the caller's `grpc-timeout` or the server's default).
    #[error("the deadline of {budget_ms} ms passed before the call finished")]
    DeadlineExceeded { budget_ms: u128 },
    /// A fault of the service itself, detailed in the log only.
    #[error("{0}")]
    Internal(String),
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

/// `ErrorInfo` and a `RetryInfo` saying how long to wait.
fn retry(reason: &str, delay: Duration) -> ErrorDetails {
    let mut details = info(reason, &[]);
    details.set_retry_info(Some(delay));
    details
}

/// `text` cut to at most `max` bytes at a character boundary, marked when cut.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// At most [`MAX_VIOLATIONS`] field violations, each clipped, then one that
/// says how many more there were.
fn bad_request(violations: &Violations) -> (ErrorDetails, String) {
    let mut details = ErrorDetails::new();
    let mut message = String::from("invalid argument: ");
    for (i, v) in violations.0.iter().take(MAX_VIOLATIONS).enumerate() {
        let (field, description) = (
            clip(&v.field, MAX_DETAIL_BYTES),
            clip(&v.description, MAX_DETAIL_BYTES),
        );
        if i > 0 {
            message.push_str("; ");
        }
        if message.len() < MAX_MESSAGE_BYTES {
            message.push_str(&format!("{field}: {description}"));
        }
        details.add_bad_request_violation(field, description);
    }
    let more = violations.0.len().saturating_sub(MAX_VIOLATIONS);
    if more > 0 {
        details.add_bad_request_violation(
            "",
            format!("{more} more violations not listed (at most {MAX_VIOLATIONS} are)"),
        );
    }
    (details, message)
}

/// An `ErrorInfo` naming the first conflicting item (`index`), the evidence
/// stored under its key (`evidence_id`) and the fields it differs in
/// (`fields`, comma-separated API names); every conflicting item, up to
/// [`MAX_VIOLATIONS`], as `evidence[i]` = `<stored id>: <fields>`; and how
/// many there are (`conflicts`).
fn evidence_conflicts(conflicts: &[KeyConflict]) -> ErrorDetails {
    let mut metadata: HashMap<String, String> = conflicts
        .iter()
        .take(MAX_VIOLATIONS)
        .map(|c| {
            (
                format!("evidence[{}]", c.index),
                format!("{}: {}", c.stored_id, c.fields.join(",")),
            )
        })
        .collect();
    if let Some(first) = conflicts.first() {
        metadata.insert("index".into(), first.index.to_string());
        metadata.insert("evidence_id".into(), first.stored_id.to_string());
        metadata.insert("fields".into(), first.fields.join(","));
    }
    metadata.insert("conflicts".into(), conflicts.len().to_string());
    ErrorDetails::with_error_info("EVIDENCE_KEY_CONFLICT", ERROR_DOMAIN, metadata)
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
        StorageError::RequestIdReused { request_id, fields } => (
            Code::AlreadyExists,
            info(
                "REQUEST_ID_REUSED",
                &[("request_id", request_id), ("fields", &fields.join(","))],
            ),
        ),
        StorageError::StaleEtag { kind, id } => (
            Code::Aborted,
            info("STALE_ETAG", &[("kind", kind), ("id", id)]),
        ),
        StorageError::FailedPrecondition(_) => {
            (Code::FailedPrecondition, info("FAILED_PRECONDITION", &[]))
        }
        StorageError::EvidenceConflict(conflicts) => {
            (Code::AlreadyExists, evidence_conflicts(conflicts))
        }
        StorageError::Refused {
            refusal, sqlstate, ..
        } => {
            let (code, reason) = match refusal {
                Refusal::Conflict => (Code::AlreadyExists, "ALREADY_EXISTS"),
                Refusal::Constraint => (Code::FailedPrecondition, "CONSTRAINT"),
                Refusal::InvalidValue => (Code::InvalidArgument, "INVALID_VALUE"),
                Refusal::Retryable => (Code::Aborted, "CONCURRENT_UPDATE"),
                Refusal::Exhausted => (Code::ResourceExhausted, "DATABASE_RESOURCES"),
            };
            let mut details = info(reason, &[("sqlstate", sqlstate)]);
            if *refusal == Refusal::Retryable {
                details.set_retry_info(Some(RETRY_AFTER));
            }
            (code, details)
        }
        StorageError::DeadlineExceeded(_) => {
            (Code::DeadlineExceeded, info("DEADLINE_EXCEEDED", &[]))
        }
        StorageError::Unavailable(_) => (
            Code::Unavailable,
            retry("DATABASE_UNAVAILABLE", RETRY_AFTER),
        ),
        StorageError::ReadOnly(_) => (Code::Unavailable, retry("DATABASE_READ_ONLY", RETRY_AFTER)),
        StorageError::Corrupt(_) | StorageError::Migrate(_) => {
            (Code::Internal, info("INTERNAL", &[]))
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        let (code, details) = match &err {
            ApiError::InvalidArgument(violations) => {
                tracing::debug!(code = ?Code::InvalidArgument, "request refused");
                let (details, message) = bad_request(violations);
                let message = clip(&message, MAX_MESSAGE_BYTES);
                return Status::with_error_details(Code::InvalidArgument, message, details);
            }
            ApiError::Malformed(_) => (Code::InvalidArgument, info("MALFORMED_REQUEST", &[])),
            ApiError::Overloaded { .. } => {
                (Code::ResourceExhausted, retry("OVERLOADED", RETRY_AFTER))
            }
            ApiError::ShuttingDown => (Code::Unavailable, retry("SHUTTING_DOWN", RETRY_AFTER)),
            ApiError::DeadlineExceeded { .. } => {
                (Code::DeadlineExceeded, info("DEADLINE_EXCEEDED", &[]))
            }
            ApiError::Internal(_) => (Code::Internal, info("INTERNAL", &[])),
            ApiError::Unauthenticated(_) => (Code::Unauthenticated, info("UNAUTHENTICATED", &[])),
            ApiError::MissingScope(scope) => (
                Code::PermissionDenied,
                info("MISSING_SCOPE", &[("scope", scope.as_str())]),
            ),
            ApiError::PreconditionOn { field, message } => (
                Code::FailedPrecondition,
                ErrorDetails::with_precondition_failure_violation(
                    "FIELD",
                    *field,
                    clip(message, MAX_DETAIL_BYTES),
                ),
            ),
            ApiError::Storage(e) => storage_status(e),
        };
        let message = match code {
            // The service's own faults: the details are for the log, not the caller.
            Code::Internal => {
                tracing::error!(error = %err, "internal error");
                "internal error".to_string()
            }
            Code::Unavailable if matches!(err, ApiError::Storage(StorageError::ReadOnly(_))) => {
                tracing::error!(error = %err, "database read-only");
                "the database is read-only (a standby, or a primary during a failover); \
                 retry later"
                    .to_string()
            }
            Code::Unavailable if matches!(err, ApiError::Storage(_)) => {
                tracing::error!(error = %err, "database unavailable");
                "the database is unavailable; retry later".to_string()
            }
            // The caller's to fix; the message may name subjects, which logs never do.
            _ => {
                tracing::debug!(code = ?code, "request refused");
                err.to_string()
            }
        };
        Status::with_error_details(code, clip(&message, MAX_MESSAGE_BYTES), details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt;

    #[test]
    fn details_and_message_are_capped() {
        let mut violations = Violations::new();
        for i in 0..250 {
            violations.add(format!("evidence[{i}].summary"), "x".repeat(5000));
        }
        let status = Status::from(ApiError::InvalidArgument(violations));
        assert!(status.message().len() <= MAX_MESSAGE_BYTES);
        let listed = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(listed.len(), MAX_VIOLATIONS + 1);
        assert!(
            listed
                .iter()
                .all(|v| v.description.len() <= MAX_DETAIL_BYTES)
        );
        assert_eq!(
            listed[MAX_VIOLATIONS].description,
            "150 more violations not listed (at most 100 are)"
        );
    }

    #[test]
    fn clipping_keeps_characters_whole() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("ééééé", 7), "éé...");
    }
}
