//! One span per statement. Every statement of a call runs through
//! [`traced!`], which names it after its constant (`competencies::GET`) so a
//! trace shows which statement took the time, never its parameters:
//!
//! ```ignore
//! sqlx::query_as(GET).bind(&tenant.0).bind(id).fetch_optional(traced!(conn, GET))
//! ```
//!
//! The span (`db`, a child of the call's `rpc` span) carries `db.system`
//! (`postgresql`), `db.operation` (the statement's first keyword: `SELECT`,
//! `INSERT`, `UPDATE`, `DELETE`, `WITH`) and `db.statement.name`, and lasts
//! until the statement's rows have been read.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, PgConnection, Postgres};
use tracing::{Instrument, Span};

/// A statement constant and its name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Statement {
    /// `ladder::storage::competencies::GET`, as `module_path!` gives it.
    path: &'static str,
    pub(crate) sql: &'static str,
}

impl Statement {
    pub(crate) const fn new(path: &'static str, sql: &'static str) -> Self {
        Self { path, sql }
    }

    /// `competencies::GET`: the constant's path inside `storage`.
    pub(crate) fn name(&self) -> &'static str {
        self.path
            .strip_prefix(concat!(env!("CARGO_CRATE_NAME"), "::storage::"))
            .unwrap_or(self.path)
    }

    fn span(&self) -> Span {
        tracing::info_span!(
            "db",
            otel.name = self.name(),
            otel.kind = "client",
            db.system = "postgresql",
            db.operation = operation(self.sql),
            db.statement.name = self.name(),
        )
    }
}

/// The statement's command: its first keyword, upper-cased by the constants' style.
fn operation(sql: &str) -> &str {
    sql.split_whitespace().next().unwrap_or("")
}

/// A [`Statement`] named after the constant it is given.
macro_rules! statement {
    ($constant:ident) => {
        $crate::storage::traced::Statement::new(
            concat!(module_path!(), "::", stringify!($constant)),
            $constant,
        )
    };
}

/// The connection `$conn` (a `&mut PgConnection` or anything that derefs to
/// one), running statement `$constant` in its span.
macro_rules! traced {
    ($conn:expr, $constant:ident) => {
        $crate::storage::traced::Traced::new(
            &mut *$conn,
            $crate::storage::traced::statement!($constant),
        )
    };
}

pub(crate) use {statement, traced};

/// Whether statements go unnamed (see [`use_unnamed_statements`]).
static UNNAMED_STATEMENTS: AtomicBool = AtomicBool::new(false);

/// From now on every statement of this process is prepared as PostgreSQL's
/// unnamed statement, never as a named one kept on its connection: a
/// transaction pooler that cannot carry prepared statements (PgBouncer
/// before 1.21 in transaction mode) hands the server connection a named
/// statement lives on to other clients, whose own names then collide with
/// it, or gives this client another one where the name is unknown. Set
/// once, when the database is reached through such a pooler (a process
/// reaches its database one way); it costs a statement description per
/// execution, which the pooler's own round trip dwarfs.
pub(crate) fn use_unnamed_statements() {
    UNNAMED_STATEMENTS.store(true, Ordering::Relaxed);
}

/// A query that is prepared unnamed when [`use_unnamed_statements`] was
/// called, and otherwise as it asks.
struct MaybeUnnamed<E>(E);

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for MaybeUnnamed<E> {
    fn sql(&self) -> &'q str {
        self.0.sql()
    }

    fn statement(&self) -> Option<&PgStatement<'q>> {
        self.0.statement()
    }

    fn take_arguments(
        &mut self,
    ) -> Result<Option<sqlx::postgres::PgArguments>, sqlx::error::BoxDynError> {
        self.0.take_arguments()
    }

    fn persistent(&self) -> bool {
        self.0.persistent() && !UNNAMED_STATEMENTS.load(Ordering::Relaxed)
    }
}

/// An executor that runs one statement on a connection inside the
/// statement's span.
pub(crate) struct Traced<'c> {
    conn: &'c mut PgConnection,
    statement: Statement,
}

impl<'c> Traced<'c> {
    pub(crate) fn new(conn: &'c mut PgConnection, statement: Statement) -> Self {
        Self { conn, statement }
    }

    /// The span, after checking (in debug builds, so in every test) that
    /// the statement run is the one the span is named after.
    fn span_for(&self, sql: &str) -> Span {
        debug_assert_eq!(
            sql,
            self.statement.sql,
            "traced!(_, {}) runs another statement",
            self.statement.name()
        );
        self.statement.span()
    }
}

impl fmt::Debug for Traced<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traced")
            .field("statement", &self.statement.name())
            .finish_non_exhaustive()
    }
}

impl<'c> Executor<'c> for Traced<'c> {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let span = self.span_for(query.sql());
        let mut rows = self.conn.fetch_many(MaybeUnnamed(query));
        // The span is entered while the rows are read and closes when the
        // stream is dropped.
        stream::poll_fn(move |cx| span.in_scope(|| rows.poll_next_unpin(cx))).boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let span = self.span_for(query.sql());
        Box::pin(
            self.conn
                .fetch_optional(MaybeUnnamed(query))
                .instrument(span),
        )
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        self.conn.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        self.conn.describe(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &str = "SELECT 1";

    #[test]
    fn a_statement_is_named_after_its_constant_inside_storage() {
        let statement = statement!(GET);
        assert_eq!(statement.name(), "traced::tests::GET");
        assert_eq!(statement.sql, GET);
    }

    #[test]
    fn the_operation_is_the_first_keyword() {
        assert_eq!(operation("SELECT 1"), "SELECT");
        assert_eq!(operation("\n  INSERT INTO t VALUES (1)"), "INSERT");
        assert_eq!(operation("WITH x AS (SELECT 1) DELETE FROM t"), "WITH");
    }
}
