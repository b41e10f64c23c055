//! Errors of the storage layer, in terms the transport layer can map.

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("{kind} {id} was changed by someone else (stale etag)")]
    StaleEtag { kind: &'static str, id: String },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error(
        "evidence items {items:?} repeat a stored (source_system, external_id) with different content"
    )]
    EvidenceConflict { items: Vec<usize> },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
