//! A read replica: a hot standby streaming from the primary, which reads
//! may be sent to ([`Db::with_read_replica`]). Which calls may read there
//! is the caller's to say ([`Node`]); whether the replica is used is
//! decided here: only while its lag, measured on the standby every second,
//! is within the bound, and while it answers. Otherwise every call goes to
//! the primary, until the replica catches up.
//!
//! Lag is measured as the standby sees it: 0 while it has replayed all the
//! WAL it has received (`pg_last_wal_receive_lsn() <=
//! pg_last_wal_replay_lsn()`: an idle primary sends nothing, and the time
//! since the last replayed transaction would grow without any lag), else
//! the time since the last transaction it replayed committed
//! (`now() - pg_last_xact_replay_timestamp()`). A database that is not in
//! recovery (the read URL names a primary) has none.
//!
//! The replica's connections are a pool of their own, with its own
//! connections kept for scoring calls ([`warm`](super::warm)); the
//! catalogs and roles a server keeps in memory are the primary's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};

use super::warm::WarmConnections;
use super::{
    ConnectionHealth, Db, StorageError, TenantConnection, TenantId, TenantTx, connection_lost,
    pool_metrics, pool_options,
};

/// Where a call's statements may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// The primary: writes, and reads that must see what the call (or the
    /// server, for what it keeps in memory) wrote.
    Primary,
    /// The read replica while it is in use; the primary when there is
    /// none, or while it lags more than its bound or does not answer.
    Replica,
}

/// How the replica's pooled connections show in the standby's
/// `pg_stat_activity` (unless its URL names another).
pub const APPLICATION_NAME: &str = "ladder read replica";

/// How the connection that measures the replica's lag shows there.
pub const LAG_MONITOR_APPLICATION_NAME: &str = "ladder replica lag monitor";

/// How often the lag is measured.
const MEASURE_EVERY: Duration = Duration::from_secs(1);

/// A measurement not answered in this time counts as a replica that
/// cannot be reached.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(1);

/// The standby's lag in seconds (see the module documentation); NULL when
/// it cannot tell (it has replayed no transaction since it started and is
/// behind what it received). Sent as a simple query: no prepared statement.
const LAG: &str = "SELECT CASE \
     WHEN NOT pg_is_in_recovery() THEN 0::float8 \
     WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0::float8 \
     ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::float8 \
     END";

/// The read replica of a [`Db`].
#[derive(Debug)]
pub(super) struct Replica {
    /// The replica's pool, connections kept for scoring calls and their
    /// health; its catalogs and roles are the primary's (unused here).
    db: Db,
    status: Arc<Status>,
    monitor: tokio::task::AbortHandle,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}

impl Replica {
    pub(super) async fn close(&self) {
        self.monitor.abort();
        self.db.close().await;
    }

    pub(super) fn release_idle_connections(&self) {
        self.db.release_idle_connections();
    }
}

/// Whether the replica is used, and its last lag, as measured.
#[derive(Debug)]
struct Status {
    max_lag: Duration,
    in_use: AtomicBool,
    /// 1 while in use, else 0.
    in_use_gauge: Gauge,
    /// The last measured lag in seconds; -1 when it could not be measured.
    lag_seconds: Gauge<f64, AtomicU64>,
}

impl Status {
    fn new(max_lag: Duration) -> Self {
        let status = Self {
            max_lag,
            in_use: AtomicBool::new(false),
            in_use_gauge: Gauge::default(),
            lag_seconds: Gauge::default(),
        };
        status.lag_seconds.set(-1.0);
        status
    }

    fn in_use(&self) -> bool {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Takes a measurement: the replica is in use while its lag is known
    /// and within the bound. Changes are logged.
    fn record(&self, measured: Result<Option<f64>, StorageError>) {
        let lag = match &measured {
            Ok(Some(lag)) => *lag,
            Ok(None) | Err(_) => -1.0,
        };
        self.lag_seconds.set(lag);
        let usable = lag >= 0.0 && lag <= self.max_lag.as_secs_f64();
        self.in_use_gauge.set(i64::from(usable));
        if self.in_use.swap(usable, Ordering::Relaxed) == usable {
            return;
        }
        let max_lag_seconds = self.max_lag.as_secs_f64();
        match measured {
            _ if usable => {
                tracing::info!(
                    lag_seconds = lag,
                    max_lag_seconds,
                    "read replica in use: reads go to it"
                );
            }
            Ok(Some(lag)) => tracing::warn!(
                lag_seconds = lag,
                max_lag_seconds,
                "read replica lags more than its bound: reads go to the primary until it catches up"
            ),
            Ok(None) => tracing::warn!(
                "read replica cannot tell its lag (nothing replayed yet): reads go to the primary"
            ),
            Err(error) => tracing::warn!(
                %error,
                "read replica cannot be reached: reads go to the primary"
            ),
        }
    }
}

/// Measures the replica's lag on `conn`, connecting first when there is
/// none; a connection that failed is dropped.
async fn measure(
    options: &PgConnectOptions,
    conn: &mut Option<PgConnection>,
) -> Result<Option<f64>, StorageError> {
    let attempt = async {
        let conn = match conn {
            Some(conn) => conn,
            None => conn.insert(PgConnection::connect_with(options).await?),
        };
        // A `&str` without arguments goes as a simple query.
        let row = sqlx::Executor::fetch_one(conn, LAG).await?;
        Ok::<_, StorageError>(row.try_get::<Option<f64>, _>(0)?)
    };
    let measured = tokio::time::timeout(MEASURE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(StorageError::Unavailable(
                "the read replica did not answer in time".into(),
            ))
        });
    if measured.is_err() {
        // Dropped: its socket closes.
        *conn = None;
    }
    measured
}

/// Measures the lag every [`MEASURE_EVERY`] until aborted.
async fn watch(options: PgConnectOptions, mut conn: Option<PgConnection>, status: Arc<Status>) {
    loop {
        tokio::time::sleep(MEASURE_EVERY).await;
        status.record(measure(&options, &mut conn).await);
    }
}

impl Db {
    /// Adds a read replica on `options` (a hot standby of this database),
    /// with a pool of its own of at most `max_connections`, used for the
    /// reads of [`Node::Replica`] while its lag is at most `max_lag`. Its
    /// lag is measured now and then every second on a connection of its
    /// own; a replica that cannot be reached does not keep the server from
    /// starting (it is not used until it answers).
    pub async fn with_read_replica(
        mut self,
        options: PgConnectOptions,
        max_connections: u32,
        max_lag: Duration,
    ) -> Result<Self, StorageError> {
        let options = if options.get_application_name().is_some() {
            options
        } else {
            options.application_name(APPLICATION_NAME)
        };
        let health = Arc::new(ConnectionHealth::default());
        // As the primary's pool (`Db::connect`), but opening connections
        // only when calls need them.
        let pool = pool_options(max_connections, &health).connect_lazy_with(options.clone());
        let db = Db {
            pool,
            health,
            acquire_stats: Arc::default(),
            warm: Arc::default(),
            probe: Arc::default(),
            replica: None,
            ..self.clone()
        };
        let status = Arc::new(Status::new(max_lag));
        let options = options.application_name(LAG_MONITOR_APPLICATION_NAME);
        let mut conn = None;
        status.record(measure(&options, &mut conn).await);
        let monitor = tokio::spawn(watch(options, conn, Arc::clone(&status))).abort_handle();
        self.replica = Some(Arc::new(Replica {
            db,
            status,
            monitor,
        }));
        Ok(self)
    }

    /// The replica's handle while it is in use.
    fn replica_in_use(&self) -> Option<&Db> {
        self.replica
            .as_deref()
            .filter(|replica| replica.status.in_use())
            .map(|replica| &replica.db)
    }

    /// Whether reads of [`Node::Replica`] go to the read replica now.
    pub fn read_replica_in_use(&self) -> bool {
        self.replica_in_use().is_some()
    }

    /// [`Db::connection`] on `node`: for [`Node::Replica`], the read
    /// replica's while it is in use. A replica that fails to give one
    /// (lost, exhausted) leaves the call to the primary.
    pub async fn connection_on(
        &self,
        node: Node,
        tenant: &TenantId,
        budget: Duration,
    ) -> Result<TenantConnection, StorageError> {
        let started = Instant::now();
        if node == Node::Replica
            && let Some(replica) = self.replica_in_use()
        {
            match replica.connection(tenant, budget).await {
                Err(error) if connection_lost(&error) => {
                    tracing::warn!(%error, "read replica unavailable; reading from the primary");
                }
                other => return other,
            }
        }
        self.connection(tenant, budget.saturating_sub(started.elapsed()))
            .await
    }

    /// [`Db::begin_within`] on `node`: for [`Node::Replica`], a (read)
    /// transaction on the read replica while it is in use. A replica that
    /// fails to open one leaves the call to the primary.
    pub async fn begin_on(
        &self,
        node: Node,
        tenant: &TenantId,
        budget: Option<Duration>,
    ) -> Result<TenantTx, StorageError> {
        let started = Instant::now();
        if node == Node::Replica
            && let Some(replica) = self.replica_in_use()
        {
            match replica.begin_within(tenant, budget).await {
                Err(error) if connection_lost(&error) => {
                    tracing::warn!(%error, "read replica unavailable; reading from the primary");
                }
                other => return other,
            }
        }
        let left = budget.map(|b| b.saturating_sub(started.elapsed()));
        self.begin_within(tenant, left).await
    }

    /// Where a connection from [`Db::connection_on`] is kept once its call
    /// is over: with the other connections of its node.
    pub(super) fn warm_for(&self, conn: &TenantConnection) -> &Arc<WarmConnections> {
        match self.replica.as_deref() {
            Some(replica) if Arc::ptr_eq(&conn.health, &replica.db.health) => &replica.db.warm,
            _ => &self.warm,
        }
    }

    /// Registers the read replica's metrics, when there is one, in
    /// `registry`: `lag_seconds`, `in_use` and its pool's (as
    /// [`Db::register_metrics`]'s, under `pool_`).
    pub fn register_replica_metrics(&self, registry: &mut Registry) {
        let Some(replica) = self.replica.as_deref() else {
            return;
        };
        registry.register_with_unit(
            "lag",
            "The read replica's replay lag as last measured (every second); -1 when it could not be measured",
            Unit::Seconds,
            replica.status.lag_seconds.clone(),
        );
        registry.register(
            "in_use",
            "1 while reads go to the read replica, 0 while it lags more than its bound or cannot be reached",
            replica.status.in_use_gauge.clone(),
        );
        let db = &replica.db;
        pool_metrics::register(
            registry.sub_registry_with_prefix("pool"),
            &db.pool,
            &db.warm,
            &db.acquire_stats,
        );
    }
}
