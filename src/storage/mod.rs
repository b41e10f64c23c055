//! PostgreSQL repositories. Every query is tenant-scoped twice: by its own
//! `tenant_id` clause (which the indexes serve) and by row-level security
//! (migration 0007), whose policies compare `tenant_id` with the setting
//! `ladder.tenant_id` and match nothing while it is unset or empty.
//!
//! No setting outlives a transaction: the tenant and every timeout are set
//! with `is_local` (`set_config(..., true)`), for the transaction they are
//! made in, on every path. A connection between two transactions carries
//! nothing of either, so that behind a transaction pooler (which hands the
//! server connection to other clients between transactions) no client sees
//! another's tenant or timeout.
//!
//! Operations of more than one statement run in a transaction opened by
//! [`Db::begin`], which sets `ladder.tenant_id` and `statement_timeout` for
//! that transaction only. The hot path of scoring runs on a
//! [`TenantConnection`] from [`Db::connection`], which carries the call's
//! tenant and deadline on this side only: its one statement, the read of
//! [`scoring_inputs`], is a function that sets the tenant for its own
//! implicit transaction (one round trip, migration 0015); anything else
//! runs in a transaction of its own on it ([`TenantConnection::begin`]).
//! When the call's statements were all answered, the connection is kept for
//! the next scoring call ([`warm`]); otherwise it is checked and given back
//! to the pool, off the call's path (see [`TenantConnection`]).
//!
//! No connection goes back to the pool inside a transaction, even when the
//! call is cancelled: taking a connection and opening its transaction run as
//! a task of their own that finishes even if the caller is gone (cancelling
//! sqlx's `BEGIN` midway would leave the transaction open on a pooled
//! connection, sqlx issues #4385 and #4393), and a tenant connection is
//! checked, or closed, before it goes back.

pub mod assessments;
pub mod audit;
pub mod calibrations;
pub mod case_items;
mod catalog_cache;
pub mod competencies;
pub mod database_role;
pub mod decisions;
mod error;
pub mod evidence;
pub mod framework_file;
mod idempotency;
mod page_token_key;
mod pg_array;
pub mod policy;
mod pool_metrics;
mod replica;
mod role_cache;
pub mod roles;
pub mod rubrics;
pub mod scoring_inputs;
mod session;
pub mod stored;
pub mod subject_data;
pub mod subjects;
mod traced;
pub mod tracks;
mod warm;

pub use error::{BEHIND_A_POOLER, Refusal, StorageError, sqlstate};
pub use idempotency::RequestKey;
pub use replica::{
    APPLICATION_NAME as READ_REPLICA_APPLICATION_NAME,
    LAG_MONITOR_APPLICATION_NAME as READ_REPLICA_LAG_MONITOR_APPLICATION_NAME, Node,
};
/// How the framework change listener's connection shows in `pg_stat_activity`.
pub use role_cache::APPLICATION_NAME as FRAMEWORK_LISTENER_APPLICATION_NAME;
pub use session::{PooledConnection, TenantConnection, TenantTx};

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::domain::framework::{Catalog, Role};
use catalog_cache::CatalogCache;
use pool_metrics::AcquireStats;
use role_cache::{RoleCache, Roles};
use stored::Stored;
use traced::traced;
use warm::{Checkout, WarmConnections};

/// The tenant every row of a transaction belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(pub String);

/// A connection idle this long is checked before use (a firewall or a
/// database restart may have cut it); checking one used a moment ago would
/// add a round trip to every call of a busy server. Connections idle since
/// a loss was noticed are checked too (`ConnectionHealth`).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// Whether the database takes writes: a hot standby does not, nor does a
/// primary made read-only (as during some failovers). Sent as a simple
/// query, so that it prepares nothing a transaction pooler could misplace.
const PING: &str = "SELECT pg_is_in_recovery() \
     OR current_setting('transaction_read_only')::boolean AS read_only";

/// The `application_name` of [`Db::ping`]'s connection, as
/// `pg_stat_activity` shows it.
pub const HEALTH_PROBE_APPLICATION_NAME: &str = "ladder health probe";

/// A kept connection used this recently is taken as alive and used without
/// a check, which would cost every call a round trip. Longer idle, it is
/// pinged first, which finds a connection lost by a database restart (and
/// the call then retries on a checked one, [`Db::checkout`]); a restart
/// takes longer than this. A connection lost within it fails its next
/// call, as calls in flight at the loss fail, and the loss is noted as it
/// is checked, so that the other kept connections are checked before use.
const KEPT_CONNECTION_TRUSTED_FOR: Duration = Duration::from_secs(1);

/// Runs [`OUTSIDE_TRANSACTION`]: whether the connection may go back to the
/// pool.
async fn outside_transaction(conn: &mut PgConnection) -> Result<bool, StorageError> {
    // A `&str` without arguments goes as a simple query.
    let row = sqlx::Executor::fetch_one(conn, OUTSIDE_TRANSACTION).await?;
    Ok(row.get::<bool, _>(0))
}

/// The tenant and the call's remaining time (in milliseconds; 0: none) for
/// one transaction, in the one statement a transaction starts with anyway.
pub(crate) const SET_TENANT_AND_TIMEOUT: &str = "SELECT set_config('ladder.tenant_id', $1, true), \
     set_config('statement_timeout', $2, true)";

/// Longest wait for a pooled connection; a call waits at most half its
/// remaining time, so that an exhausted pool answers UNAVAILABLE before the
/// deadline does.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// `statement_timeout`'s (or `lock_timeout`'s) value for a remaining time:
/// whole milliseconds, at least 1 (0 would mean no limit).
pub(crate) fn timeout_setting(budget: Option<Duration>) -> String {
    budget
        .map_or(0, |b| b.as_millis().clamp(1, i32::MAX as u128))
        .to_string()
}

const BACKEND_PID: &str = "SELECT pg_backend_pid()";

/// How often [`Db::why_no_connection`] may try a connection to log why none
/// opens.
const CONNECT_FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// When the reason connections fail to open was last looked for.
#[derive(Debug, Default)]
struct ConnectFailures {
    last: std::sync::Mutex<Option<Instant>>,
}

impl ConnectFailures {
    /// Whether it is time to look again (and, if so, it now was).
    fn due(&self) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < CONNECT_FAILURE_LOG_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// How long [`Db::leads_through_transaction_pooler`] waits for a statement
/// PostgreSQL itself answers at once.
const POOLER_PROBE_WAIT: Duration = Duration::from_secs(2);

async fn backend_pid(conn: &mut PgConnection) -> Result<i32, StorageError> {
    // A `&str` without arguments goes as a simple query.
    let row = sqlx::Executor::fetch_one(conn, BACKEND_PID).await?;
    Ok(row.try_get::<i32, _>(0)?)
}

/// Runs [`PING`]: whether the database refuses writes.
async fn read_only(conn: &mut PgConnection) -> Result<bool, StorageError> {
    // A `&str` without arguments goes as a simple query.
    let row = sqlx::Executor::fetch_one(conn, PING).await?;
    Ok(row.try_get::<bool, _>(0)?)
}

/// A ping's answer: a database that refuses writes cannot serve (every call
/// may write, if only its audit row), so the server stops taking calls
/// until it is writable again.
fn writable(read_only: bool) -> Result<(), StorageError> {
    if read_only {
        return Err(StorageError::ReadOnly(
            "pg_is_in_recovery() or transaction_read_only".into(),
        ));
    }
    Ok(())
}

/// A failure of the connection itself (closed by a database restart, a
/// terminated backend, a network cut), as opposed to a statement's.
fn connection_lost(err: &StorageError) -> bool {
    matches!(err, StorageError::Unavailable(_))
}

/// Whether the statement ran outside any transaction. Sent as a simple
/// query, whose implicit transaction starts at the statement's own
/// timestamp: the two are equal only then, so an open transaction left
/// behind (by a cancelled `BEGIN`, say) shows, and the connection is closed
/// instead of pooled. (Nothing else needs clearing: no setting outlives a
/// transaction.)
const OUTSIDE_TRANSACTION: &str = "SELECT transaction_timestamp() = statement_timestamp()";

#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
    catalogs: Arc<CatalogCache>,
    roles: Arc<RoleCache>,
    health: Arc<ConnectionHealth>,
    acquire_stats: Arc<AcquireStats>,
    warm: Arc<WarmConnections>,
    /// [`Db::ping`]'s connection, outside the pool.
    probe: Arc<tokio::sync::Mutex<Option<PgConnection>>>,
    /// Behind a transaction pooler: the database itself, for the work that
    /// needs a session of its own (migrations' advisory lock, the framework
    /// listener's LISTEN).
    direct: Option<PgConnectOptions>,
    /// Where reads may go ([`Db::with_read_replica`]).
    replica: Option<Arc<replica::Replica>>,
    /// When a failure to connect was last explained in the log.
    connect_failures: Arc<ConnectFailures>,
    /// [`Db::page_token_key`], once read.
    page_token_key: Arc<tokio::sync::OnceCell<[u8; 32]>>,
}

/// When a connection to the database was last found lost (a restart, a
/// terminated backend, a cut network): connections idle since before then
/// are pinged before use, so that dead ones are replaced rather than fail
/// a call.
#[derive(Debug, Default)]
struct ConnectionHealth {
    lost_at: std::sync::Mutex<Option<Instant>>,
}

impl ConnectionHealth {
    fn lost_now(&self) {
        *self
            .lost_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }

    /// Whether a connection idle for `idle_for` may have been cut since.
    fn suspect(&self, idle_for: Duration) -> bool {
        if idle_for >= PING_IF_IDLE_FOR {
            return true;
        }
        let lost_at = *self
            .lost_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lost_at.is_some_and(|lost| {
            Instant::now()
                .checked_sub(idle_for)
                .is_none_or(|idle_since| idle_since <= lost)
        })
    }
}

/// A pool of at most `max_connections` whose connections idle long enough
/// to be suspect (or since a loss `health` noted) are pinged before use.
fn pool_options(max_connections: u32, health: &Arc<ConnectionHealth>) -> PgPoolOptions {
    let suspects = Arc::clone(health);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            let suspect = suspects.suspect(meta.idle_for);
            Box::pin(async move {
                if suspect {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

impl Db {
    pub async fn connect(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StorageError> {
        let health = Arc::new(ConnectionHealth::default());
        let pool = pool_options(max_connections, &health)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            catalogs: Arc::default(),
            roles: Arc::default(),
            health,
            acquire_stats: Arc::default(),
            warm: Arc::default(),
            probe: Arc::default(),
            direct: None,
            replica: None,
            connect_failures: Arc::default(),
            page_token_key: Arc::default(),
        })
    }

    /// The database is reached through a pooler in transaction mode (one
    /// that cannot carry prepared statements from client to client, such as
    /// PgBouncer before 1.21, or any in that mode): every statement is
    /// prepared unnamed and runs in a transaction, and `direct`, the
    /// database without the pooler, serves migrations and the framework
    /// listener. Calls nothing session-bound through the pooler.
    pub fn behind_transaction_pooler(mut self, direct: PgConnectOptions) -> Self {
        traced::use_unnamed_statements();
        self.direct = Some(direct);
        self
    }

    /// Whether the pool's URL leads through a pooler in transaction mode,
    /// found out directly: a client that keeps its server connection sees
    /// the same backend on every statement and never another client's, but
    /// behind a transaction pooler the next client's transaction gets the
    /// backend a client just released (PgBouncer reuses the last one), and
    /// the client's next statement, while that transaction holds it, gets
    /// another one or waits. Simple queries only, so that nothing named is
    /// prepared.
    pub async fn leads_through_transaction_pooler(&self) -> Result<bool, StorageError> {
        let options = self.pool.connect_options().as_ref().clone();
        let mut client = PgConnection::connect_with(&options).await?;
        let mut holder = PgConnection::connect_with(&options).await?;
        let first = backend_pid(&mut client).await?;
        sqlx::Executor::execute(&mut holder, "BEGIN").await?;
        let held = backend_pid(&mut holder).await?;
        let again = tokio::time::timeout(POOLER_PROBE_WAIT, backend_pid(&mut client)).await;
        sqlx::Executor::execute(&mut holder, "COMMIT").await?;
        let pooled = match again {
            // Two clients never share a backend on PostgreSQL itself; a
            // pooler hands the one just released to the next transaction.
            Ok(again) => held == first || again? != first,
            // Waiting for the server connection another client holds.
            Err(_) => true,
        };
        let _ = client.close().await;
        let _ = holder.close().await;
        Ok(pooled)
    }

    /// Where work needing a session of its own connects.
    fn session_options(&self) -> PgConnectOptions {
        self.direct.clone().unwrap_or_else(|| {
            let options = self.pool.connect_options();
            options.as_ref().clone()
        })
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    /// How long a call with `budget` left may wait for a connection.
    fn acquire_wait(budget: Option<Duration>) -> Duration {
        budget.map_or(ACQUIRE_TIMEOUT, |b| (b / 2).min(ACQUIRE_TIMEOUT))
    }

    /// Runs `start` (a checkout and its first statement), and once more
    /// if that statement found the connection lost: the loss is noted, so
    /// the second checkout pings every connection idle since before it and
    /// the pool replaces the dead ones. After a database restart the first
    /// call does not fail. Waiting is bounded by half the remaining budget
    /// (at most [`ACQUIRE_TIMEOUT`]), so an exhausted pool or an absent
    /// database answers UNAVAILABLE before the deadline does.
    async fn checkout<T, F>(
        &self,
        budget: Option<Duration>,
        start: impl Fn() -> F,
    ) -> Result<T, StorageError>
    where
        F: Future<Output = Result<T, StorageError>>,
    {
        let _waiting = self.acquire_stats.wait();
        let attempts = async {
            match start().await {
                Err(err) if connection_lost(&err) => {
                    tracing::info!(error = %err, "replacing lost database connections");
                    self.health.lost_now();
                    start().await
                }
                other => other,
            }
        };
        let result = tokio::time::timeout(Self::acquire_wait(budget), attempts)
            .await
            .unwrap_or_else(|_| {
                Err(StorageError::Unavailable(
                    "no database connection came free in time".into(),
                ))
            });
        if let Err(StorageError::Unavailable(_)) = &result {
            self.why_no_connection();
        }
        result
    }

    /// When a call found no connection while the pool could still open
    /// one, opening one failed: the pool only says it timed out, so one more
    /// connection is tried here to log PostgreSQL's own reason (its SQLSTATE
    /// and message: too many connections, a password refused, a database
    /// starting up), at most once per [`CONNECT_FAILURE_LOG_EVERY`].
    fn why_no_connection(&self) {
        if self.pool.size() >= self.pool.options().get_max_connections()
            || !self.connect_failures.due()
        {
            return;
        }
        let options = self.pool.connect_options().as_ref().clone();
        tokio::spawn(async move {
            if let Err(err) = PgConnection::connect_with(&options).await {
                tracing::warn!(
                    error = %StorageError::from(err),
                    "cannot open a database connection"
                );
            }
        });
    }

    /// A pooled connection outside any explicit transaction for a call of
    /// `tenant` with `budget` left, for work made of single statements
    /// (see the module documentation): one kept from an earlier call if
    /// there is one ([`warm`]), pinged first when it has been idle for
    /// [`KEPT_CONNECTION_TRUSTED_FOR`]. Nothing is set on it: it carries no
    /// session setting of any call.
    pub async fn connection(
        &self,
        tenant: &TenantId,
        budget: Duration,
    ) -> Result<TenantConnection, StorageError> {
        self.checkout(Some(budget), || async move {
            match self.warm.take(|idle_for| self.health.suspect(idle_for)) {
                Checkout::Kept { mut conn, idle_for } => {
                    if idle_for >= KEPT_CONNECTION_TRUSTED_FOR {
                        conn.raw().ping().await?;
                    }
                    conn.serve(tenant, budget);
                    Ok(conn)
                }
                Checkout::FromPool(_waiting) => Ok(TenantConnection::new(
                    self.pool.acquire().await?,
                    tenant,
                    budget,
                    Arc::clone(&self.health),
                    self.direct.is_some(),
                )),
            }
        })
        .await
    }

    /// Takes back a connection from [`Db::connection`] whose call is over
    /// with every statement answered, and keeps it for the next scoring
    /// call. (Dropping one instead checks it and gives it back to the
    /// pool.)
    pub fn finished(&self, conn: TenantConnection) {
        self.warm_for(&conn).keep(conn);
    }

    /// Gives back to the pool the connections kept for scoring calls that
    /// none has taken for a while, so that the pool's idle timeout applies
    /// to them when the server is quiet; call it now and then.
    pub fn release_idle_connections(&self) {
        self.warm.release_idle(PING_IF_IDLE_FOR);
        if let Some(replica) = &self.replica {
            replica.release_idle_connections();
        }
    }

    /// The tenant's roles and published rubrics as of framework `revision`
    /// (from [`scoring_inputs::read`]), from memory while it is current,
    /// otherwise read in a transaction of its own on `conn`.
    pub async fn catalog(
        &self,
        conn: &mut TenantConnection,
        tenant: &TenantId,
        revision: Option<i64>,
    ) -> Result<Arc<Catalog>, StorageError> {
        debug_assert_eq!(conn.tenant(), tenant);
        let budget = conn.remaining();
        self.catalogs
            .get(conn.raw(), tenant, revision, budget)
            .await
    }

    /// The reads of `tenant` that this server answers from memory where it
    /// can ([`TenantReads`]).
    pub fn reads<'a>(&'a self, tenant: &'a TenantId) -> TenantReads<'a> {
        TenantReads { db: self, tenant }
    }

    /// Forgets the tenant's roles this server keeps in memory (the catalogs
    /// check the revision themselves): call it when a write of the tenant's
    /// framework has committed, so that the caller's next read on this
    /// server sees the write without waiting for the notification.
    pub fn framework_changed(&self, tenant: &TenantId) {
        self.roles.drop_tenant(tenant);
    }

    /// Listens for framework changes committed anywhere (migration 0012),
    /// for the in-memory roles, and returns the work of following them (run
    /// it until the server stops). Without it, every role read goes to the
    /// database.
    pub async fn watch_framework_changes(
        &self,
    ) -> Result<impl Future<Output = ()> + Send + use<>, StorageError> {
        Ok(role_cache::watch(Arc::clone(&self.roles), self.session_options()).await)
    }

    /// Applies the migrations in `migrations/`; safe to run again and from
    /// several replicas at once (sqlx serialises them with an advisory lock).
    pub async fn migrate(&self) -> Result<(), StorageError> {
        let session = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.session_options())
            .await?;
        let migrated = sqlx::migrate!("./migrations").run(&session).await;
        session.close().await;
        Ok(migrated?)
    }

    /// Opens a transaction for one tenant; `ladder.tenant_id` is set for
    /// its duration, so row-level security admits that tenant's rows only.
    pub async fn begin(&self, tenant: &TenantId) -> Result<TenantTx, StorageError> {
        self.begin_within(tenant, None).await
    }

    /// [`Db::begin`] for a call with `budget` left: its statements are
    /// cancelled (`statement_timeout`) once the budget has passed, so no
    /// work goes on for a caller who left.
    pub async fn begin_within(
        &self,
        tenant: &TenantId,
        budget: Option<Duration>,
    ) -> Result<TenantTx, StorageError> {
        let setting = timeout_setting(budget);
        // Taking the connection and opening the transaction run as a task of
        // their own, which completes even if the call is cancelled meanwhile:
        // a `BEGIN` abandoned halfway would otherwise return the connection
        // to the pool inside an open transaction (sqlx issues #4385 and
        // #4393). Once the transaction exists, dropping it rolls it back.
        self.checkout(budget, || {
            let (pool, tenant, setting) = (self.pool.clone(), tenant.0.clone(), setting.clone());
            // Connections kept for scoring calls count as in use: while
            // this waits, none is kept, and one goes back if the pool has
            // none to give.
            let exhausted =
                pool.num_idle() == 0 && pool.size() >= pool.options().get_max_connections();
            let waiting = self.warm.wait_for_pool(exhausted);
            run_to_completion(async move {
                let tx = pool.begin().await;
                drop(waiting);
                let mut tx = tx?;
                sqlx::query(SET_TENANT_AND_TIMEOUT)
                    .bind(tenant)
                    .bind(setting)
                    .execute(traced!(tx, SET_TENANT_AND_TIMEOUT))
                    .await?;
                Ok(TenantTx { tx, audited: None })
            })
        })
        .await
    }

    /// Answers when the database does, on a connection of its own rather
    /// than the pool's: a busy pool is not a dead database. The connection
    /// is kept from ping to ping (a new one each time cost a password
    /// handshake every few seconds); one that fails is replaced at once, so
    /// a database that restarted between two pings answers the second, and
    /// its loss is noted so that the pool's connections idle since are
    /// checked before use.
    pub async fn ping(&self) -> Result<(), StorageError> {
        // A closed pool (the server is stopping) serves nothing, whatever
        // the database says.
        if self.pool.is_closed() {
            return Err(StorageError::Unavailable(
                "the connection pool is closed".into(),
            ));
        }
        let mut probe = self.probe.lock().await;
        if let Some(conn) = probe.as_mut() {
            if let Ok(read_only) = read_only(conn).await {
                return writable(read_only);
            }
            self.health.lost_now();
            *probe = None;
        }
        let pinged = async {
            let options = self.pool.connect_options();
            let options = options.as_ref().clone();
            let mut conn = PgConnection::connect_with(
                &options.application_name(HEALTH_PROBE_APPLICATION_NAME),
            )
            .await?;
            let read_only = read_only(&mut conn).await?;
            Ok((conn, read_only))
        }
        .await;
        match pinged {
            Ok((conn, read_only)) => {
                *probe = Some(conn);
                writable(read_only)
            }
            Err(err) => {
                self.health.lost_now();
                tracing::warn!(error = %err, "the database health probe cannot connect");
                Err(err)
            }
        }
    }

    /// Registers the connection pool's metrics in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        pool_metrics::register(registry, &self.pool, &self.warm, &self.acquire_stats);
    }

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn close(&self) {
        // The pool's close waits for every connection to come back.
        self.warm.close();
        self.pool.close().await;
        if let Some(probe) = self.probe.lock().await.take() {
            // Closing politely is a courtesy; the socket goes either way.
            let _ = probe.close().await;
        }
        if let Some(replica) = &self.replica {
            Box::pin(replica.close()).await;
        }
    }
}

/// One tenant's reads that a server keeps in memory, from [`Db::reads`]:
/// bound to the tenant, like a [`TenantTx`], but taking a connection only
/// when memory cannot answer.
#[derive(Debug, Clone, Copy)]
pub struct TenantReads<'a> {
    db: &'a Db,
    tenant: &'a TenantId,
}

impl TenantReads<'_> {
    /// Role `id`: from memory while [`Db::watch_framework_changes`]
    /// listens and the tenant's framework has not changed since it was read,
    /// otherwise every role of the tenant is read in one transaction (within
    /// `budget`) and kept (see [`role_cache`]).
    pub async fn role(&self, id: &str, budget: Duration) -> Result<Stored<Role>, StorageError> {
        let roles = match self.db.roles.get(self.tenant) {
            Some(roles) => roles,
            // Boxed: taken only when memory cannot answer, and the read's
            // future is large (every call's future would be as large).
            None => Box::pin(self.load_roles(budget)).await?,
        };
        roles
            .get(id)
            .cloned()
            .ok_or_else(|| StorageError::not_found("role", id))
    }

    /// Reads every role of the tenant in one transaction and keeps them.
    async fn load_roles(&self, budget: Duration) -> Result<Arc<Roles>, StorageError> {
        let (db, tenant) = (self.db, self.tenant);
        let start = db.roles.begin_load();
        let mut tx = db.begin_within(tenant, Some(budget)).await?;
        let read = roles::list(&mut tx, tenant, None, stored::ALL, None).await?;
        tx.commit().await?;
        let roles: Arc<Roles> = Arc::new(
            read.into_iter()
                .map(|role| (role.value.id.clone(), role))
                .collect(),
        );
        db.roles.keep(tenant, start, Arc::clone(&roles));
        Ok(roles)
    }
}

/// Runs `work` as a task that finishes even when the caller stops waiting
/// for it; what it returns to a caller that is gone is dropped there. The
/// task runs in the caller's span, so its statements' spans stay in the
/// call's trace (and follow its sampling decision) instead of each starting
/// a trace of its own.
async fn run_to_completion<T: Send + 'static>(
    work: impl Future<Output = Result<T, StorageError>> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::spawn(tracing::Instrument::in_current_span(work)).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => Err(StorageError::Unavailable(
            "the server is shutting down".into(),
        )),
    }
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
