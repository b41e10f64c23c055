//! gRPC: the tonic services, the proto<->domain conversions, authentication,
//! the one handler pipeline every call takes, and the single mapping from
//! errors to `tonic::Status`.

pub mod auth;
pub mod convert;
pub mod error;
pub mod pipeline;
mod services;

pub use services::{AssessmentApi, AuditApi, RecommendationApi, RubricApi, SubjectRightsApi};

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::storage::framework_file::ensure_builtin;
use crate::storage::{Db, StorageError, TenantId};

/// Default largest number of evidence items in one `BatchCreateEvidence`.
pub const DEFAULT_MAX_BATCH: usize = 1000;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    /// Largest number of evidence items in one batch.
    pub max_batch: usize,
    /// Tenants known to have their framework, so that only a tenant's first
    /// call in this process pays for checking.
    provisioned: Arc<Mutex<HashSet<TenantId>>>,
}

impl AppState {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            max_batch: DEFAULT_MAX_BATCH,
            provisioned: Arc::default(),
        }
    }

    pub fn with_max_batch(self, max_batch: usize) -> Self {
        Self { max_batch, ..self }
    }

    /// Makes a tenant ready to serve: on its first use the built-in
    /// framework is loaded into it. Checked once per tenant and process;
    /// the pipeline calls it after the request is validated, so a refused
    /// request writes nothing.
    async fn provision(&self, tenant: &TenantId) -> Result<(), StorageError> {
        if self.lock_provisioned().contains(tenant) {
            return Ok(());
        }
        ensure_builtin(&self.db, tenant).await?;
        self.lock_provisioned().insert(tenant.clone());
        Ok(())
    }

    fn lock_provisioned(&self) -> MutexGuard<'_, HashSet<TenantId>> {
        // The set only ever grows, so a panic elsewhere cannot leave it inconsistent.
        self.provisioned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
