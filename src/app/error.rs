//! Errors of the wiring layer: what stops the binary from starting or running.

use crate::app::embedded_pg::EmbeddedError;
use crate::domain::validation::Violations;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Configuration the binary cannot start with: flags, environment, files.
    #[error("{0}")]
    Config(String),
    #[error(
        "the framework file is invalid; nothing was imported:\n{}",
        .0.0.iter().map(|v| format!("  {}: {}", v.field, v.description)).collect::<Vec<_>>().join("\n")
    )]
    InvalidFramework(Violations),
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A blocking task (starting or stopping PostgreSQL) that panicked or was cancelled.
    #[error("{context}: {source}")]
    Task {
        context: &'static str,
        source: tokio::task::JoinError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}
