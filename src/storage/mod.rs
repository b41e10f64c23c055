//! PostgreSQL repositories. Every query is tenant-scoped twice: by its own
//! `tenant_id` clause (which the indexes serve) and by row-level security
//! (migration 0007), whose policies compare `tenant_id` with the setting
//! `ladder.tenant_id` and match nothing while it is unset or empty.
//!
//! Operations of more than one statement run in a transaction opened by
//! [`Db::begin`], which sets `ladder.tenant_id` for that transaction only.
//! The hot path of scoring runs its statements on a [`TenantConnection`]
//! from [`Db::connection`], outside any explicit transaction: the read of
//! [`scoring_inputs`], the cached [`Db::catalog`], and the insert of an
//! assessment (a transaction around them would triple their round trips).
//! The tenant is set for that connection's session when it is taken from the
//! pool (one round trip) and cleared after it is given back, off the call's
//! path (see [`TenantConnection`]).
//!
//! No connection goes back to the pool inside a transaction or carrying a
//! tenant, even when the call is cancelled: taking a connection and opening
//! its transaction run as a task of their own that finishes even if the
//! caller is gone (cancelling sqlx's `BEGIN` midway would leave the
//! transaction open on a pooled connection, sqlx issues #4385 and #4393),
//! and a tenant connection is checked and cleared, or closed, on release.

pub mod assessments;
pub mod audit;
mod catalog_cache;
pub mod competencies;
pub mod database_role;
mod error;
pub mod evidence;
pub mod framework_file;
mod idempotency;
pub mod policy;
pub mod roles;
pub mod rubrics;
pub mod scoring_inputs;
pub mod stored;
pub mod subject_data;
pub mod subjects;

pub use error::{Refusal, StorageError, sqlstate};

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::domain::framework::Catalog;
use catalog_cache::CatalogCache;

/// The tenant every row of a transaction belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(pub String);

/// A transaction bound to one tenant, opened by [`Db::begin`]; statements
/// run on it as on a connection. (A type of its own, without sqlx's lifetime
/// parameter, so that handler bodies taking it stay `Send` for any caller.)
#[derive(Debug)]
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    /// What the work on this transaction wrote, for the audit log.
    audited: Option<audit::Resources>,
}

impl std::ops::Deref for TenantTx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl TenantTx {
    /// Records what a write wrote; the pipeline appends it to the audit log
    /// in this transaction before committing.
    pub fn audit(&mut self, resources: audit::Resources) {
        self.audited = Some(resources);
    }

    /// What [`TenantTx::audit`] recorded, if anything.
    pub fn audited(&mut self) -> Option<audit::Resources> {
        self.audited.take()
    }

    pub async fn commit(self) -> Result<(), StorageError> {
        Ok(self.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), StorageError> {
        Ok(self.tx.rollback().await?)
    }
}

/// A pooled connection outside any transaction.
pub type PooledConnection = PoolConnection<Postgres>;

/// A pooled connection outside any explicit transaction whose session
/// carries one tenant's `ladder.tenant_id`, from [`Db::connection`].
///
/// Dropping it (after the call, or when the call is cancelled) hands the
/// connection to a task that clears the setting and checks, in the same
/// statement, that no transaction is open; only then does the connection
/// go back to the pool, otherwise it is closed (which rolls back whatever a
/// cancelled statement left open).
#[derive(Debug)]
pub struct TenantConnection(Option<PooledConnection>);

impl std::ops::Deref for TenantConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.0.as_ref().expect("a tenant connection until dropped")
    }
}

impl std::ops::DerefMut for TenantConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.0.as_mut().expect("a tenant connection until dropped")
    }
}

impl Drop for TenantConnection {
    fn drop(&mut self) {
        let Some(mut conn) = self.0.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            conn.close_on_drop();
            return;
        };
        runtime.spawn(async move {
            // A cancelled statement still in flight is awaited first (sqlx
            // reads its answer before sending the next one).
            if !clear_tenant(&mut conn).await {
                conn.close_on_drop();
            }
        });
    }
}

/// A connection idle this long is checked before use (a firewall or a
/// database restart may have cut it); checking one used a moment ago would
/// add a round trip to every call of a busy server.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

const PING: &str = "SELECT 1";

/// Runs [`CLEAR_TENANT`]: whether the connection may go back to the pool.
async fn clear_tenant(conn: &mut PgConnection) -> bool {
    // A `&str` without arguments goes as a simple query.
    sqlx::Executor::fetch_one(conn, CLEAR_TENANT)
        .await
        .is_ok_and(|row| row.get::<bool, _>(0))
}

/// For the transaction it runs in.
const SET_TENANT: &str = "SELECT set_config('ladder.tenant_id', $1, true)";

/// For the session, until [`CLEAR_TENANT`].
const SET_SESSION_TENANT: &str = "SELECT set_config('ladder.tenant_id', $1, false)";

/// Clears the session's tenant and tells whether the statement ran outside
/// any transaction. Sent as a simple query, whose implicit transaction
/// starts at the statement's own timestamp: the two are equal only then, so
/// an open transaction left behind (by a cancelled `BEGIN`, say) shows, and
/// the connection is closed instead of pooled.
const CLEAR_TENANT: &str = "SELECT set_config('ladder.tenant_id', '', false) IS NOT NULL \
     AND transaction_timestamp() = statement_timestamp()";

#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
    catalogs: Arc<CatalogCache>,
}

impl Db {
    pub async fn connect(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            catalogs: Arc::default(),
        })
    }

    /// A pooled connection outside any transaction whose session carries
    /// `tenant`, for work made of single statements (see the module
    /// documentation). Runs as a task of its own (see [`Db::begin`]).
    pub async fn connection(&self, tenant: &TenantId) -> Result<TenantConnection, StorageError> {
        let (pool, tenant) = (self.pool.clone(), tenant.clone());
        run_to_completion(async move {
            let mut conn = TenantConnection(Some(pool.acquire().await?));
            sqlx::query(SET_SESSION_TENANT)
                .bind(&tenant.0)
                .execute(&mut *conn)
                .await?;
            Ok(conn)
        })
        .await
    }

    /// The tenant's roles and published rubrics as of framework `revision`
    /// (from [`scoring_inputs::read`]), from memory while it is current,
    /// otherwise read on `conn`.
    pub async fn catalog(
        &self,
        conn: &mut PgConnection,
        tenant: &TenantId,
        revision: Option<i64>,
    ) -> Result<Arc<Catalog>, StorageError> {
        self.catalogs.get(conn, tenant, revision).await
    }

    /// Applies the migrations in `migrations/`; safe to run again and from
    /// several replicas at once (sqlx serialises them with an advisory lock).
    pub async fn migrate(&self) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query(PING).execute(&self.pool).await?;
        Ok(())
    }

    /// Opens a transaction for one tenant; `ladder.tenant_id` is set for
    /// its duration, so row-level security admits that tenant's rows only.
    ///
    /// Taking the connection and opening the transaction run as a task of
    /// their own, which completes even if the call is cancelled meanwhile:
    /// a `BEGIN` abandoned halfway would otherwise return the connection to
    /// the pool inside an open transaction (sqlx issues #4385 and #4393).
    /// Once the transaction exists, dropping it rolls it back.
    pub async fn begin(&self, tenant: &TenantId) -> Result<TenantTx, StorageError> {
        let (pool, tenant) = (self.pool.clone(), tenant.clone());
        run_to_completion(async move {
            let mut tx = pool.begin().await?;
            set_tenant(&mut tx, &tenant).await?;
            Ok(TenantTx { tx, audited: None })
        })
        .await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Runs `work` as a task that finishes even when the caller stops waiting
/// for it; what it returns to a caller that is gone is dropped there.
async fn run_to_completion<T: Send + 'static>(
    work: impl Future<Output = Result<T, StorageError>> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => Err(StorageError::Unavailable(
            "the server is shutting down".into(),
        )),
    }
}

/// Applies the tenant to the transaction running on `conn`.
async fn set_tenant(conn: &mut PgConnection, tenant: &TenantId) -> Result<(), StorageError> {
    sqlx::query(SET_TENANT)
        .bind(&tenant.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// Opens a transaction for one tenant on a connection taken outside one.
pub(crate) async fn begin_on<'c>(
    conn: &'c mut PgConnection,
    tenant: &TenantId,
) -> Result<Transaction<'c, Postgres>, StorageError> {
    let mut tx = Connection::begin(conn).await?;
    set_tenant(&mut tx, tenant).await?;
    Ok(tx)
}

const DATABASE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)";

/// CREATE DATABASE takes no parameters: the server quotes the name itself.
const CREATE_DATABASE_STATEMENT: &str = "SELECT format('CREATE DATABASE %I', $1::text)";

/// Creates database `name` on the server behind `server` (connected to its
/// `postgres` maintenance database) unless it exists.
pub async fn ensure_database(server: &PgConnectOptions, name: &str) -> Result<(), StorageError> {
    let mut conn = PgConnection::connect_with(&server.clone().database("postgres")).await?;
    let exists: bool = sqlx::query_scalar(DATABASE_EXISTS)
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        let create: String = sqlx::query_scalar(CREATE_DATABASE_STATEMENT)
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        sqlx::query(&create).execute(&mut conn).await?;
    }
    conn.close().await?;
    Ok(())
}
