//! PostgreSQL repositories. Every query is tenant-scoped. Operations of more
//! than one statement run in a transaction opened by [`Db::begin`], which also
//! applies the tenant to the database session (`ladder.tenant_id`). The hot
//! path of scoring runs its statements on a connection from
//! [`Db::connection`], outside any explicit transaction: the read of
//! [`scoring_inputs`], the cached [`Db::catalog`], and the insert of an
//! assessment. A transaction around them would triple their round trips.
//! Those statements carry no session tenant; when row-level security is
//! turned on, `Db::connection` must take the tenant and set it for the
//! session (one round trip per request, reset on release).

pub mod assessments;
pub mod calibrations;
mod catalog_cache;
pub mod competencies;
pub mod decisions;
mod error;
pub mod evidence;
pub mod framework_file;
mod idempotency;
pub mod policy;
mod pool_metrics;
pub mod roles;
pub mod rubrics;
pub mod scoring_inputs;
pub mod stored;
pub mod subjects;
mod traced;
pub mod tracks;

pub use error::{Refusal, StorageError, sqlstate};

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::domain::framework::Catalog;
use catalog_cache::CatalogCache;
use pool_metrics::AcquireStats;
use traced::traced;

/// The tenant every row of a transaction belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(pub String);

/// A transaction bound to one tenant, opened by [`Db::begin`]; statements
/// run on it as on a connection. (A type of its own, without sqlx's lifetime
/// parameter, so that handler bodies taking it stay `Send` for any caller.)
#[derive(Debug)]
pub struct TenantTx(Transaction<'static, Postgres>);

impl std::ops::Deref for TenantTx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.0
    }
}

impl std::ops::DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0
    }
}

impl TenantTx {
    pub async fn commit(self) -> Result<(), StorageError> {
        Ok(self.0.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), StorageError> {
        Ok(self.0.rollback().await?)
    }
}

/// A pooled connection outside any transaction (see the module documentation).
pub type PooledConnection = PoolConnection<Postgres>;

/// A connection idle this long is checked before use (a firewall or a
/// database restart may have cut it); checking one used a moment ago would
/// add a round trip to every call of a busy server. Connections idle since
/// a loss was noticed are checked too (`ConnectionHealth`).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

const PING: &str = "SELECT 1";

const SET_TENANT: &str = "SELECT set_config('ladder.tenant_id', $1, true)";

/// The tenant and the call's remaining time (in milliseconds; 0: none) for
/// one transaction, in the one statement a transaction starts with anyway.
const SET_TENANT_AND_TIMEOUT: &str = "SELECT set_config('ladder.tenant_id', $1, true), \
     set_config('statement_timeout', $2, true)";

/// The call's remaining time for a connection's statements outside a
/// transaction; every checkout for a call sets it anew.
const SET_SESSION_TIMEOUT: &str = "SELECT set_config('statement_timeout', $1, false)";

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

#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
    catalogs: Arc<CatalogCache>,
    health: Arc<ConnectionHealth>,
    acquire_stats: Arc<AcquireStats>,
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
            health,
            acquire_stats: Arc::default(),
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

    /// A pooled connection outside any transaction, for work made of single
    /// tenant-scoped statements (see the module documentation), whose
    /// statements are cancelled once `budget` has passed.
    pub async fn connection(&self, budget: Duration) -> Result<PooledConnection, StorageError> {
        let setting = timeout_setting(Some(budget));
        self.checkout(Some(budget), || {
            let (pool, setting) = (self.pool.clone(), setting.clone());
            async move {
                let mut conn = pool.acquire().await?;
                let set = sqlx::query(SET_SESSION_TIMEOUT)
                    .bind(setting)
                    .execute(&mut *conn)
                    .await;
                if let Err(err) = set {
                    conn.close_on_drop();
                    return Err(err.into());
                }
                Ok(conn)
            }
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

    /// Opens a transaction for one tenant; the database session's
    /// `ladder.tenant_id` is set for its duration, so row-level security can
    /// enforce isolation without any handler changing.
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
        self.checkout(budget, || {
            let (pool, tenant, setting) = (self.pool.clone(), tenant.0.clone(), setting.clone());
            async move {
                let mut tx = pool.begin().await?;
                sqlx::query(SET_TENANT_AND_TIMEOUT)
                    .bind(tenant)
                    .bind(setting)
                    .execute(&mut *tx)
                    .await?;
                Ok(TenantTx(tx))
            }
        })
        .await
    }

    /// Answers when the database does, on a connection of its own rather
    /// than the pool's: a busy pool is not a dead database.
    pub async fn ping(&self) -> Result<(), StorageError> {
        // A closed pool (the server is stopping) serves nothing, whatever
        // the database says.
        if self.pool.is_closed() {
            return Err(StorageError::Unavailable(
                "the connection pool is closed".into(),
            ));
        }
        let pinged = async {
            let mut conn = PgConnection::connect_with(&self.pool.connect_options()).await?;
            sqlx::query(PING).execute(&mut conn).await?;
            conn.close().await?;
            Ok(())
        }
        .await;
        if pinged.is_err() {
            self.health.lost_now();
        }
        pinged
    }

    /// Registers the connection pool's metrics in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        pool_metrics::register(registry, &self.pool, &self.acquire_stats);
    }

    pub async fn close(&self) {
        self.pool.close().await;
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
