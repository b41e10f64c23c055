//! gRPC: the tonic services, the proto<->domain conversions, authentication,
//! the one table of methods and the one handler pipeline every call takes,
//! and the single mapping from errors to `tonic::Status`.

pub mod admission;
pub mod auth;
pub mod convert;
pub mod error;
pub mod limits;
pub mod methods;
pub mod metrics;
mod observe;
pub mod process_metrics;
pub mod required;
pub(crate) use observe::CALL_SPAN;
pub use observe::join_callers_trace_with;
pub mod pipeline;
mod services;
pub mod wire;

pub use services::{
    AssessmentApi, AuditApi, CalibrationApi, FrameworkApi, OversightApi, RecommendationApi,
    RubricApi, SubjectRightsApi, XapiApi,
};

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::storage::framework_file::ensure_builtin;
use crate::storage::{Db, StorageError, TenantId};
use crate::transport::limits::{CpuPool, Limits};
use crate::transport::metrics::Metrics;

pub use limits::DEFAULT_MAX_BATCH;

/// Largest framework document (`ImportFramework`) or set of xAPI statements
/// (`ImportStatements`) a call takes: 16 MiB, room for a CASE package of
/// tens of thousands of items. The services that take them accept messages
/// of this size plus [`MESSAGE_OVERHEAD`].
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// Room for the rest of a message around its document.
pub const MESSAGE_OVERHEAD: usize = 64 << 10;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    /// The bounds and capacities this server enforces.
    pub limits: Arc<Limits>,
    /// Where CPU-heavy work runs.
    pub cpu: CpuPool,
    /// This server's Prometheus metrics.
    pub metrics: Metrics,
    /// Set when the server was told to stop: from then on it is not ready
    /// (the admin port's `/readyz` answers 503), whatever the database says.
    stopping: Arc<AtomicBool>,
    /// Tenants known to have their framework, so that only a tenant's first
    /// call in this process pays for checking.
    provisioned: Arc<Mutex<HashSet<TenantId>>>,
}

impl AppState {
    /// A state with the default limits for `db`'s pool.
    pub fn new(db: Db) -> Self {
        let limits = Limits::for_pool(db.max_connections());
        Self::with_limits(db, limits)
    }

    pub fn with_limits(db: Db, limits: Limits) -> Self {
        Self {
            metrics: Metrics::new(&db),
            db,
            cpu: CpuPool::new(limits.max_cpu_tasks),
            limits: Arc::new(limits),
            stopping: Arc::default(),
            provisioned: Arc::default(),
        }
    }

    /// Marks the server as stopping: it is no longer ready.
    pub fn begin_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether the server was told to stop.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Makes a tenant ready to serve: on its first use the built-in
    /// framework is loaded into it. Checked once per tenant and process;
    /// the pipeline calls it after the request is validated, so a refused
    /// request writes nothing. Provisioning runs on the primary; whether
    /// it ran for this call (so that the call reads there too, where what
    /// it wrote is).
    async fn provision(&self, tenant: &TenantId) -> Result<bool, StorageError> {
        if self.lock_provisioned().contains(tenant) {
            return Ok(false);
        }
        // Boxed: a tenant's first call only, and its future is large (every
        // call's future would otherwise be as large and moved as often).
        Box::pin(ensure_builtin(&self.db, tenant)).await?;
        self.lock_provisioned().insert(tenant.clone());
        Ok(true)
    }

    fn lock_provisioned(&self) -> MutexGuard<'_, HashSet<TenantId>> {
        // The set only ever grows, so a panic elsewhere cannot leave it inconsistent.
        self.provisioned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
