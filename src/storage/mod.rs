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
//! The tenant is set for that connection's session when a call takes it
//! (one round trip, saved when the connection's session already serves the
//! call: [`Db::connection`]). When the call's statements were all answered,
//! the connection is kept for the next scoring call ([`warm`]); otherwise it is
//! cleared and given back to the pool, off the call's path (see
//! [`TenantConnection`]).
//!
//! No connection goes back to the pool inside a transaction or carrying a
//! tenant, even when the call is cancelled: taking a connection and opening
//! its transaction run as a task of their own that finishes even if the
//! caller is gone (cancelling sqlx's `BEGIN` midway would leave the
//! transaction open on a pooled connection, sqlx issues #4385 and #4393),
//! and a tenant connection is checked and cleared, or closed, before it goes
//! back.

pub mod assessments;
pub mod audit;
pub mod calibrations;
mod catalog_cache;
pub mod competencies;
pub mod database_role;
pub mod decisions;
mod error;
pub mod evidence;
pub mod framework_file;
mod idempotency;
mod pg_array;
pub mod policy;
mod pool_metrics;
mod role_cache;
pub mod roles;
pub mod rubrics;
pub mod scoring_inputs;
pub mod stored;
pub mod subject_data;
pub mod subjects;
mod traced;
pub mod tracks;
mod warm;

pub use error::{Refusal, StorageError, sqlstate};
/// How the framework change listener's connection shows in `pg_stat_activity`.
pub use role_cache::APPLICATION_NAME as FRAMEWORK_LISTENER_APPLICATION_NAME;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Row;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

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
/// Given to [`Db::finished`] when the call's work on it is over and every
/// statement was answered, it is kept for the next scoring call ([`warm`]).
/// Dropping it instead (the call failed or was cancelled) hands the
/// connection to a task that clears the setting and checks, in the same
/// statement, that no transaction is open; only then does the connection
/// go back to the pool, otherwise it is closed (which rolls back whatever a
/// cancelled statement left open).
#[derive(Debug)]
pub struct TenantConnection {
    conn: Option<PooledConnection>,
    /// Since when the connection has gone from call to call without going
    /// back to the pool.
    kept_since: Instant,
    /// What [`Db::connection`] last set the session to.
    session: Option<Session>,
    /// Told when clearing the connection finds it lost.
    health: Arc<ConnectionHealth>,
}

impl TenantConnection {
    fn new(conn: PooledConnection, health: Arc<ConnectionHealth>) -> Self {
        Self {
            conn: Some(conn),
            kept_since: Instant::now(),
            session: None,
            health,
        }
    }

    /// Whether the session was last set for `tenant`.
    fn carries(&self, tenant: &TenantId) -> bool {
        self.session.as_ref().is_some_and(|s| s.tenant == *tenant)
    }
}

/// A tenant connection's session settings, as [`Db::connection`] set them.
#[derive(Debug)]
struct Session {
    tenant: TenantId,
    statement_timeout: Duration,
}

impl Session {
    /// The settings for a call of `tenant` with `budget` left: statements
    /// cut a little before the budget ends (at 99.5% of it), so that the
    /// next calls, whose budgets differ by the moments they waited, find
    /// the setting fits them too ([`Session::serves`]).
    fn for_call(tenant: &TenantId, budget: Duration) -> Self {
        let millis = (budget - budget / 200)
            .as_millis()
            .clamp(1, i32::MAX as u128);
        Self {
            tenant: tenant.clone(),
            statement_timeout: Duration::from_millis(millis as u64),
        }
    }

    /// Whether these settings serve a call of `tenant` with `budget` left
    /// as well as setting them anew would: the same tenant, and statements
    /// cut never after the budget ends and at most 1% of it before.
    fn serves(&self, tenant: &TenantId, budget: Duration) -> bool {
        self.tenant == *tenant
            && self.statement_timeout <= budget
            && self.statement_timeout >= budget - budget / 100
    }
}

impl std::ops::Deref for TenantConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn
            .as_ref()
            .expect("a tenant connection until dropped")
    }
}

impl std::ops::DerefMut for TenantConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .expect("a tenant connection until dropped")
    }
}

impl Drop for TenantConnection {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            conn.close_on_drop();
            return;
        };
        let health = Arc::clone(&self.health);
        runtime.spawn(async move {
            // A cancelled statement still in flight is awaited first (sqlx
            // reads its answer before sending the next one).
            match clear_tenant(&mut conn).await {
                Ok(true) => {}
                Ok(false) => conn.close_on_drop(),
                Err(err) => {
                    // Kept connections used since are then checked first
                    // (see `KEPT_SESSION_TRUSTED_FOR`).
                    if connection_lost(&err) {
                        health.lost_now();
                    }
                    conn.close_on_drop();
                }
            }
        });
    }
}

/// A connection idle this long is checked before use (a firewall or a
/// database restart may have cut it); checking one used a moment ago would
/// add a round trip to every call of a busy server. Connections idle since
/// a loss was noticed are checked too (`ConnectionHealth`).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

const PING: &str = "SELECT 1";

/// The `application_name` of [`Db::ping`]'s connection, as
/// `pg_stat_activity` shows it.
pub const HEALTH_PROBE_APPLICATION_NAME: &str = "ladder health probe";

/// A kept connection used this recently is taken as alive: its session
/// settings are not sent again when they serve the next call
/// ([`Session::serves`]), which saves the call a round trip. Longer idle,
/// setting them again is also the check that finds a connection lost by a
/// database restart (and the call then retries on a checked one,
/// [`Db::checkout`]); a restart takes longer than this. A connection lost
/// within it fails its next call, as calls in flight at the loss fail,
/// and the loss is noted as it is cleared, so that the other kept
/// connections are checked before use.
const KEPT_SESSION_TRUSTED_FOR: Duration = Duration::from_secs(1);

/// The shortest `statement_timeout` a kept connection's session may carry:
/// the next call's setting statement runs under it (PostgreSQL arms a
/// statement's timer with the value in force when it starts), and a
/// timeout of a few milliseconds, left by a call with a short deadline,
/// could cut it on a busy machine and fail a call that has time enough.
const SHORTEST_KEPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs [`CLEAR_TENANT`]: whether the connection may go back to the pool.
async fn clear_tenant(conn: &mut PgConnection) -> Result<bool, StorageError> {
    // A `&str` without arguments goes as a simple query.
    let row = sqlx::Executor::fetch_one(conn, CLEAR_TENANT).await?;
    Ok(row.get::<bool, _>(0))
}

/// For the transaction it runs in.
const SET_TENANT: &str = "SELECT set_config('ladder.tenant_id', $1, true)";

/// The tenant and the call's remaining time (in milliseconds; 0: none) for
/// one transaction, in the one statement a transaction starts with anyway.
const SET_TENANT_AND_TIMEOUT: &str = "SELECT set_config('ladder.tenant_id', $1, true), \
     set_config('statement_timeout', $2, true)";

/// The tenant and the call's remaining time for a connection's statements
/// outside a transaction, for the session: every checkout for a call sets
/// them anew, and [`CLEAR_TENANT`] clears the tenant on release.
const SET_SESSION_TENANT_AND_TIMEOUT: &str = "SELECT set_config('ladder.tenant_id', $1, false), \
     set_config('statement_timeout', $2, false)";

/// Longest wait for a pooled connection; a call waits at most half its
/// remaining time, so that an exhausted pool answers UNAVAILABLE before the
/// deadline does.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// `statement_timeout`'s value for a remaining time: whole milliseconds, at
/// least 1 (0 would mean no limit).
fn timeout_setting(budget: Option<Duration>) -> String {
    budget
        .map_or(0, |b| b.as_millis().clamp(1, i32::MAX as u128))
        .to_string()
}

/// A failure of the connection itself (closed by a database restart, a
/// terminated backend, a network cut), as opposed to a statement's.
fn connection_lost(err: &StorageError) -> bool {
    matches!(err, StorageError::Unavailable(_))
}

/// Clears the session's tenant, restores its `statement_timeout` (a short
/// one, left by a call with a short deadline, would otherwise bound the
/// first statement of the pool's next user, before that sets its own), and
/// tells whether the statement ran outside any transaction. Sent as a
/// simple query, whose implicit transaction starts at the statement's own
/// timestamp: the two are equal only then, so an open transaction left
/// behind (by a cancelled `BEGIN`, say) shows, and the connection is closed
/// instead of pooled.
const CLEAR_TENANT: &str = "SELECT set_config('ladder.tenant_id', '', false) IS NOT NULL \
     AND set_config('statement_timeout', \
         (SELECT reset_val FROM pg_settings WHERE name = 'statement_timeout'), false) IS NOT NULL \
     AND transaction_timestamp() = statement_timestamp()";

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

impl Db {
    pub async fn connect(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StorageError> {
        let health = Arc::new(ConnectionHealth::default());
        let suspects = Arc::clone(&health);
        let pool = PgPoolOptions::new()
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
        tokio::time::timeout(Self::acquire_wait(budget), attempts)
            .await
            .unwrap_or_else(|_| {
                Err(StorageError::Unavailable(
                    "no database connection came free in time".into(),
                ))
            })
    }

    /// A pooled connection outside any transaction whose session carries
    /// `tenant`, for work made of single statements (see the module
    /// documentation), whose statements are cancelled once `budget` has
    /// passed (at 99.5% of it, [`Session::for_call`]): one kept from an
    /// earlier call if there is one ([`warm`]), whose settings are sent
    /// again only when they do not serve this call
    /// ([`KEPT_SESSION_TRUSTED_FOR`]). Taking it runs as a task of its own
    /// (see [`Db::begin_within`]).
    pub async fn connection(
        &self,
        tenant: &TenantId,
        budget: Duration,
    ) -> Result<TenantConnection, StorageError> {
        self.checkout(Some(budget), || {
            let (pool, warm, health) = (
                self.pool.clone(),
                Arc::clone(&self.warm),
                Arc::clone(&self.health),
            );
            let tenant = tenant.clone();
            run_to_completion(async move {
                let mut conn = match warm.take(&tenant, |idle_for| health.suspect(idle_for)) {
                    Checkout::Kept { conn, idle_for } => {
                        let trusted = idle_for < KEPT_SESSION_TRUSTED_FOR;
                        let serves = conn
                            .session
                            .as_ref()
                            .is_some_and(|s| s.serves(&tenant, budget));
                        if trusted && serves {
                            return Ok(conn);
                        }
                        conn
                    }
                    Checkout::FromPool(_waiting) => {
                        TenantConnection::new(pool.acquire().await?, health)
                    }
                };
                // Forgotten first: should setting fail, what the session
                // carries is unknown (and the connection is not kept).
                conn.session = None;
                let session = Session::for_call(&tenant, budget);
                sqlx::query(SET_SESSION_TENANT_AND_TIMEOUT)
                    .bind(&tenant.0)
                    .bind(timeout_setting(Some(session.statement_timeout)))
                    .execute(traced!(conn, SET_SESSION_TENANT_AND_TIMEOUT))
                    .await?;
                conn.session = Some(session);
                Ok(conn)
            })
        })
        .await
    }

    /// Takes back a connection from [`Db::connection`] whose call is over
    /// with every statement answered, and keeps it for the next scoring
    /// call, unless its session cuts statements within
    /// [`SHORTEST_KEPT_TIMEOUT`]. (Dropping one instead clears it and gives
    /// it back to the pool.)
    pub fn finished(&self, conn: TenantConnection) {
        let keepable = conn
            .session
            .as_ref()
            .is_some_and(|s| s.statement_timeout >= SHORTEST_KEPT_TIMEOUT);
        if keepable {
            self.warm.keep(conn);
        }
    }

    /// Gives back to the pool the connections kept for scoring calls that
    /// none has taken for a while, so that the pool's idle timeout applies
    /// to them when the server is quiet; call it now and then.
    pub fn release_idle_connections(&self) {
        self.warm.release_idle(PING_IF_IDLE_FOR);
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
        Ok(role_cache::watch(Arc::clone(&self.roles), &self.pool).await?)
    }

    /// Applies the migrations in `migrations/`; safe to run again and from
    /// several replicas at once (sqlx serialises them with an advisory lock).
    pub async fn migrate(&self) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
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
            if sqlx::query(PING).execute(&mut *conn).await.is_ok() {
                return Ok(());
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
            sqlx::query(PING).execute(&mut conn).await?;
            Ok(conn)
        }
        .await;
        match pinged {
            Ok(conn) => {
                *probe = Some(conn);
                Ok(())
            }
            Err(err) => {
                self.health.lost_now();
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
        .execute(traced!(conn, SET_TENANT))
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
