//! The storage layer's errors, and the one place where `sqlx::Error` is
//! classified: by SQLSTATE for what the database refused, by variant for the
//! rest. Everything above storage sees named kinds only.

/// The SQLSTATE codes and classes Ladder tells apart (PostgreSQL manual,
/// appendix A). A class is the code's first two characters.
pub mod sqlstate {
    /// A row with the same unique key exists.
    pub const UNIQUE_VIOLATION: &str = "23505";
    /// Class 22, data exception: a value the column cannot hold (a NUL byte,
    /// a date out of range).
    pub const DATA_EXCEPTION: &str = "22";
    /// Class 23, integrity constraint violation: a foreign key, a check, or
    /// the triggers that keep published rubric versions immutable.
    pub const INTEGRITY_CONSTRAINT_VIOLATION: &str = "23";
    /// Class 40, transaction rollback: a serialization failure or deadlock.
    pub const TRANSACTION_ROLLBACK: &str = "40";
    /// A transaction that met a concurrent one's change; run again, it succeeds.
    pub const SERIALIZATION_FAILURE: &str = "40001";
    /// Class 08, connection exception.
    pub const CONNECTION_EXCEPTION: &str = "08";
    /// Class 53, insufficient resources (disk full, out of memory, too many
    /// connections): only the last passes with time.
    pub const INSUFFICIENT_RESOURCES: &str = "53";
    /// Too many connections: another moment may find one free.
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    /// Class 54, program limit exceeded (a statement too complex, too many columns).
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54";
    /// Class 57, operator intervention (shutdown, terminated backend).
    pub const OPERATOR_INTERVENTION: &str = "57";
    /// A statement cancelled by `statement_timeout` (or a cancel request):
    /// the call's deadline passed.
    pub const QUERY_CANCELED: &str = "57014";
    /// A write (or LISTEN) on a read-only node: a hot standby, or a primary
    /// made read-only (`default_transaction_read_only`, as during some
    /// failovers). Another moment, or another node, may take it.
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    /// A named prepared statement that already exists, or does not: what a
    /// client keeping named statements meets behind a transaction pooler
    /// that cannot carry them (PgBouncer before 1.21, in transaction mode).
    pub const DUPLICATE_PREPARED_STATEMENT: &str = "42P05";
    pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
}

/// What to do about [`sqlstate::DUPLICATE_PREPARED_STATEMENT`] and
/// [`sqlstate::INVALID_SQL_STATEMENT_NAME`]: the setting that fixes them.
pub const BEHIND_A_POOLER: &str = "the database URL seems to lead through a connection pooler \
     in transaction mode that cannot keep prepared statements (PgBouncer before 1.21): \
     start with --database-pooler transaction (LADDER_DATABASE_POOLER) and \
     --database-direct-url (LADDER_DATABASE_DIRECT_URL) set to the database itself, \
     see docs/operations.md";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    /// A create's request id already used by a request that differs in
    /// `fields` (AIP-155).
    #[error("request_id {request_id:?} was already used by a request with other {}", .fields.join(", "))]
    RequestIdReused {
        request_id: String,
        fields: Vec<String>,
    },
    #[error("{kind} {id} was changed by someone else (stale etag)")]
    StaleEtag { kind: &'static str, id: String },
    /// A change the stored data does not allow, said in the layer's words.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Items of a batch whose (source_system, external_id) is stored with
    /// other content, in request order.
    #[error("{}", crate::storage::evidence::describe_conflicts(.0))]
    EvidenceConflict(Vec<crate::storage::evidence::KeyConflict>),
    /// A statement the database refused, for a reason the caller can act on.
    #[error("{}: {message}", .refusal.describe())]
    Refused {
        refusal: Refusal,
        sqlstate: String,
        message: String,
    },
    /// The database cannot be reached or cannot serve now; retry later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database takes no writes now: a hot standby, or a primary made
    /// read-only during a failover. Retry later, or on another node.
    #[error("the database is read-only: {0}")]
    ReadOnly(String),
    /// The call's time ran out: a statement was cancelled by the deadline's
    /// `statement_timeout`, or no connection came free before it.
    #[error("the deadline passed during {0}")]
    DeadlineExceeded(&'static str),
    /// Stored data the code cannot read, a value it cannot encode, or a
    /// statement it got wrong: a bug or corruption, never the caller's to retry.
    #[error("corrupt data or a storage bug: {0}")]
    Corrupt(String),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Why the database refused a statement, by its SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A unique key is taken ([`sqlstate::UNIQUE_VIOLATION`]).
    Conflict,
    /// A constraint forbids the change ([`sqlstate::INTEGRITY_CONSTRAINT_VIOLATION`]).
    Constraint,
    /// A value the column cannot hold ([`sqlstate::DATA_EXCEPTION`]).
    InvalidValue,
    /// A concurrent transaction interfered ([`sqlstate::TRANSACTION_ROLLBACK`]);
    /// the same call again may succeed.
    Retryable,
    /// The database lacks the resources or hits a limit that waiting does
    /// not lift: disk full, out of memory, a program limit
    /// ([`sqlstate::INSUFFICIENT_RESOURCES`], [`sqlstate::PROGRAM_LIMIT_EXCEEDED`]).
    Exhausted,
}

impl Refusal {
    fn describe(self) -> &'static str {
        match self {
            Refusal::Conflict => "the resource already exists",
            Refusal::Constraint => "the change conflicts with stored data",
            Refusal::InvalidValue => "a value cannot be stored",
            Refusal::Retryable => "a concurrent change interfered; retry",
            Refusal::Exhausted => "the database is out of resources for this change",
        }
    }
}

impl StorageError {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        StorageError::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// A change made against a revision that is no longer the stored one.
    pub fn stale(kind: &'static str, id: impl Into<String>) -> Self {
        StorageError::StaleEtag {
            kind,
            id: id.into(),
        }
    }

    /// A stored value outside what the code knows (`unknown track "x"`).
    pub fn corrupt(what: &str, value: &str) -> Self {
        StorageError::Corrupt(format!("unknown {what} {value:?} in the database"))
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(err: sqlx::Error) -> Self {
        use sqlstate::*;
        match &err {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let message = db.message().to_string();
                let refusal = match code.get(..2).unwrap_or_default() {
                    _ if code == UNIQUE_VIOLATION => Refusal::Conflict,
                    _ if code == QUERY_CANCELED => {
                        return StorageError::DeadlineExceeded("a statement");
                    }
                    _ if code == TOO_MANY_CONNECTIONS => {
                        return StorageError::Unavailable(format!("{message} (SQLSTATE {code})"));
                    }
                    _ if code == DUPLICATE_PREPARED_STATEMENT
                        || code == INVALID_SQL_STATEMENT_NAME =>
                    {
                        return StorageError::Corrupt(format!(
                            "{message} (SQLSTATE {code}): {BEHIND_A_POOLER}"
                        ));
                    }
                    _ if code == READ_ONLY_SQL_TRANSACTION => {
                        return StorageError::ReadOnly(format!("{message} (SQLSTATE {code})"));
                    }
                    INTEGRITY_CONSTRAINT_VIOLATION => Refusal::Constraint,
                    DATA_EXCEPTION => Refusal::InvalidValue,
                    TRANSACTION_ROLLBACK => Refusal::Retryable,
                    INSUFFICIENT_RESOURCES | PROGRAM_LIMIT_EXCEEDED => Refusal::Exhausted,
                    CONNECTION_EXCEPTION | OPERATOR_INTERVENTION => {
                        return StorageError::Unavailable(format!("{message} (SQLSTATE {code})"));
                    }
                    // Syntax errors, unknown columns, wrong types: the statement is wrong.
                    _ => return StorageError::Corrupt(format!("{message} (SQLSTATE {code})")),
                };
                StorageError::Refused {
                    refusal,
                    sqlstate: code,
                    message,
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StorageError::Unavailable(err.to_string()),
            // Decoding and encoding failures, protocol surprises, missing rows
            // a statement promised: the data or the code is wrong.
            _ => StorageError::Corrupt(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_failures_are_corrupt_not_unavailable() {
        let err = StorageError::from(sqlx::Error::Protocol("unexpected message".into()));
        assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
        let err = StorageError::from(sqlx::Error::RowNotFound);
        assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
    }

    fn refused(code: &'static str) -> StorageError {
        #[derive(Debug)]
        struct Refused(&'static str);
        impl std::fmt::Display for Refused {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "refused with {}", self.0)
            }
        }
        impl std::error::Error for Refused {}
        impl sqlx::error::DatabaseError for Refused {
            fn message(&self) -> &str {
                "refused"
            }
            fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
                Some(self.0.into())
            }
            fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
                self
            }
            fn kind(&self) -> sqlx::error::ErrorKind {
                sqlx::error::ErrorKind::Other
            }
        }
        StorageError::from(sqlx::Error::Database(Box::new(Refused(code))))
    }

    #[test]
    fn what_passes_with_time_is_told_apart_from_what_does_not() {
        let retryable = |e: &StorageError| {
            matches!(
                e,
                StorageError::Unavailable(_)
                    | StorageError::ReadOnly(_)
                    | StorageError::Refused {
                        refusal: Refusal::Retryable,
                        ..
                    }
            )
        };
        // serialization failure, deadlock, connection failure, terminated
        // backend, database starting up, too many connections, a read-only node
        for code in [
            "40001", "40P01", "08006", "57P01", "57P03", "53300", "25006",
        ] {
            assert!(retryable(&refused(code)), "{code}: {:?}", refused(code));
        }
        // disk full, out of memory, statement too complex
        for code in ["53100", "53200", "54001"] {
            let err = refused(code);
            assert!(
                matches!(
                    err,
                    StorageError::Refused {
                        refusal: Refusal::Exhausted,
                        ..
                    }
                ),
                "{code}: {err:?}"
            );
        }
        assert!(matches!(
            refused("57014"),
            StorageError::DeadlineExceeded(_)
        ));
    }

    #[test]
    fn an_exhausted_pool_is_unavailable() {
        let err = StorageError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
    }
}
