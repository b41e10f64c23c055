//! What one call works on: a transaction bound to its tenant
//! ([`TenantTx`], from [`Db::begin`](super::Db::begin)) or, on the scoring path, a pooled
//! connection that knows its call's tenant and deadline without setting
//! them on the session ([`TenantConnection`], from [`Db::connection`](super::Db::connection)).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use super::traced::traced;
use super::{
    ConnectionHealth, SET_TENANT_AND_TIMEOUT, StorageError, TenantId, audit, connection_lost,
    outside_transaction, timeout_setting,
};

/// A transaction bound to one tenant, opened by [`Db::begin`](super::Db::begin); statements
/// run on it as on a connection. (A type of its own, without sqlx's lifetime
/// parameter, so that handler bodies taking it stay `Send` for any caller.)
#[derive(Debug)]
pub struct TenantTx {
    pub(super) tx: Transaction<'static, Postgres>,
    /// What the work on this transaction wrote, for the audit log.
    pub(super) audited: Option<audit::Resources>,
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

/// A pooled connection outside any explicit transaction for one call of one
/// tenant, from [`Db::connection`](super::Db::connection). The tenant and the call's deadline are
/// known here, not to the connection's session: statements run on it either
/// set the tenant themselves for their own implicit transaction (the read of
/// [`scoring_inputs`](super::scoring_inputs)) or run in a transaction from
/// [`TenantConnection::begin`], which sets the tenant and the remaining time
/// for that transaction only.
///
/// Given to [`Db::finished`](super::Db::finished) when the call's work on it is over and every
/// statement was answered, it is kept for the next scoring call ([`warm`](super::warm)).
/// Dropping it instead (the call failed or was cancelled) hands the
/// connection to a task that checks that no transaction is open (a
/// cancelled `BEGIN` can leave one); only then does the connection go back
/// to the pool, otherwise it is closed (which rolls back whatever a
/// cancelled statement left open).
#[derive(Debug)]
pub struct TenantConnection {
    pub(super) conn: Option<PooledConnection>,
    tenant: TenantId,
    /// When the call's time is up.
    deadline: Instant,
    /// Since when the connection has gone from call to call without going
    /// back to the pool.
    pub(super) kept_since: Instant,
    /// Told when checking the connection finds it lost.
    pub(super) health: Arc<ConnectionHealth>,
    /// Whether the connection leads through a transaction pooler
    /// ([`Db::behind_transaction_pooler`](super::Db::behind_transaction_pooler)).
    behind_pooler: bool,
}

impl TenantConnection {
    pub(super) fn new(
        conn: PooledConnection,
        tenant: &TenantId,
        budget: Duration,
        health: Arc<ConnectionHealth>,
        behind_pooler: bool,
    ) -> Self {
        let now = Instant::now();
        Self {
            conn: Some(conn),
            tenant: tenant.clone(),
            deadline: now + budget,
            kept_since: now,
            health,
            behind_pooler,
        }
    }

    /// Whether a statement outside a transaction may meet another server
    /// connection than the one it was prepared on: behind a transaction
    /// pooler, where even one statement runs in a transaction of its own
    /// (its preparation and execution are two exchanges, and the pooler may
    /// hand the server connection to another client in between).
    pub fn behind_pooler(&self) -> bool {
        self.behind_pooler
    }

    /// The tenant of the call it serves.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The call's remaining time.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The connection itself, for a statement that sets the tenant for its
    /// own implicit transaction: nothing on it is set for the tenant, so
    /// row-level security shows any other statement no row.
    pub fn raw(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .expect("a tenant connection until dropped")
    }

    /// Opens a transaction on the connection with the tenant and the
    /// call's remaining time (`statement_timeout`) set for it only.
    /// Dropped without a commit, it is rolled back before the connection's
    /// next statement.
    pub async fn begin(&mut self) -> Result<Transaction<'_, Postgres>, StorageError> {
        let setting = timeout_setting(Some(self.remaining()));
        let tenant = self.tenant.0.clone();
        let mut tx = Connection::begin(self.raw()).await?;
        sqlx::query(SET_TENANT_AND_TIMEOUT)
            .bind(tenant)
            .bind(setting)
            .execute(traced!(tx, SET_TENANT_AND_TIMEOUT))
            .await?;
        Ok(tx)
    }

    /// Runs `work` in a transaction from [`TenantConnection::begin`],
    /// committed when it succeeds.
    pub async fn in_transaction<T, E: From<StorageError>>(
        &mut self,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut tx = self.begin().await?;
        let done = work(&mut tx).await?;
        tx.commit().await.map_err(StorageError::from)?;
        Ok(done)
    }

    /// The connection taken for another call.
    pub(super) fn serve(&mut self, tenant: &TenantId, budget: Duration) {
        tenant.clone_into(&mut self.tenant);
        self.deadline = Instant::now() + budget;
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
            // reads its answer before sending the next one), and so is the
            // rollback of a transaction dropped open.
            match outside_transaction(&mut conn).await {
                Ok(true) => {}
                Ok(false) => conn.close_on_drop(),
                Err(err) => {
                    // Kept connections used since are then checked first
                    // (see `KEPT_CONNECTION_TRUSTED_FOR`).
                    if connection_lost(&err) {
                        health.lost_now();
                    }
                    conn.close_on_drop();
                }
            }
        });
    }
}
