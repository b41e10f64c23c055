//! The database roles Ladder runs as (docs/security.md): the owner, which
//! runs the migrations, and the application role `ladder_app`, which row-
//! level security binds to one tenant per request.

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::storage::traced::traced;
use crate::storage::{Db, StorageError};

/// The role the migrations grant the service's privileges to.
pub const APP_ROLE: &str = "ladder_app";

const APP_ROLE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)";

/// CREATE and ALTER ROLE take no parameters: the server quotes the password.
const CREATE_APP_ROLE_STATEMENT: &str = "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L \
     NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', $1::text, $2::text)";
const ALTER_APP_ROLE_STATEMENT: &str = "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L \
     NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', $1::text, $2::text)";

/// Creates the application role on the server behind `server` (as a role
/// that may create roles), or sets its password and attributes if it
/// exists: it may log in with `password` and nothing more.
pub async fn ensure_app_role(
    server: &PgConnectOptions,
    password: &str,
) -> Result<(), StorageError> {
    let mut conn = PgConnection::connect_with(&server.clone().database("postgres")).await?;
    let exists: bool = sqlx::query_scalar(APP_ROLE_EXISTS)
        .bind(APP_ROLE)
        .fetch_one(&mut conn)
        .await?;
    let statement = if exists {
        ALTER_APP_ROLE_STATEMENT
    } else {
        CREATE_APP_ROLE_STATEMENT
    };
    let statement: String = sqlx::query_scalar(statement)
        .bind(APP_ROLE)
        .bind(password)
        .fetch_one(&mut conn)
        .await?;
    sqlx::query(&statement).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// What the connected role could do beyond one tenant's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePrivileges {
    pub name: String,
    pub superuser: bool,
    pub bypass_rls: bool,
    /// Relations of the current schema the role owns or may act as owner of.
    pub owned: i64,
}

impl RolePrivileges {
    /// Why this role must not serve, if it must not: each thing it could do
    /// around row-level security.
    pub fn reasons(&self) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if self.superuser {
            reasons.push("it is a superuser (row-level security does not apply to it)");
        }
        if self.bypass_rls {
            reasons.push("it has BYPASSRLS");
        }
        if self.owned > 0 {
            reasons.push("it owns tables (or is a member of their owner), so it could disable row-level security or drop them");
        }
        reasons
    }
}

const PRIVILEGES: &str = "SELECT r.rolname::text, r.rolsuper, r.rolbypassrls, \
     (SELECT count(*) FROM pg_class c \
      WHERE c.relnamespace = current_schema()::regnamespace \
        AND c.relkind IN ('r', 'p', 'v', 'm', 'S') \
        AND pg_has_role(current_user, c.relowner, 'MEMBER')) \
     FROM pg_roles r WHERE r.rolname = current_user";

/// The privileges of the role `db` connects as.
pub async fn current(db: &Db) -> Result<RolePrivileges, StorageError> {
    // In a transaction, as every statement behind a transaction pooler.
    let mut tx = db.pool().begin().await?;
    let (name, superuser, bypass_rls, owned): (String, bool, bool, i64) =
        sqlx::query_as(PRIVILEGES)
            .fetch_one(traced!(tx, PRIVILEGES))
            .await?;
    tx.commit().await?;
    Ok(RolePrivileges {
        name,
        superuser,
        bypass_rls,
        owned,
    })
}
