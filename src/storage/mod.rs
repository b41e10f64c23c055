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
mod catalog_cache;
pub mod competencies;
pub mod decisions;
mod error;
pub mod evidence;
pub mod framework_file;
mod idempotency;
pub mod policy;
pub mod roles;
pub mod rubrics;
pub mod scoring_inputs;
pub mod stored;
pub mod subjects;

pub use error::{Refusal, StorageError, sqlstate};

use std::sync::Arc;
use std::time::Duration;

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
/// add a round trip to every call of a busy server.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

const PING: &str = "SELECT 1";

const SET_TENANT: &str = "SELECT set_config('ladder.tenant_id', $1, true)";

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

    /// A pooled connection outside any transaction, for work made of single
    /// tenant-scoped statements (see the module documentation).
    pub async fn connection(&self) -> Result<PooledConnection, StorageError> {
        Ok(self.pool.acquire().await?)
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

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query(PING).execute(&self.pool).await?;
        Ok(())
    }

    /// Opens a transaction for one tenant; the database session's
    /// `ladder.tenant_id` is set for its duration, so row-level security can
    /// enforce isolation without any handler changing.
    pub async fn begin(&self, tenant: &TenantId) -> Result<TenantTx, StorageError> {
        let mut tx = self.pool.begin().await?;
        set_tenant(&mut tx, tenant).await?;
        Ok(TenantTx(tx))
    }

    pub async fn close(&self) {
        self.pool.close().await;
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
