//! gRPC: the tonic services, the proto<->domain conversions, authentication,
//! and the single mapping from errors to `tonic::Status`.

pub mod auth;
pub mod convert;
pub mod error;
mod services;

pub use services::{AssessmentApi, RecommendationApi, RubricApi};

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use tonic::{Request, Response, Status};

use crate::storage::framework_file::ensure_builtin;
use crate::storage::{Db, TenantId};
use crate::transport::auth::Principal;
use crate::transport::error::ApiError;

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
    ready: Arc<Mutex<HashSet<TenantId>>>,
}

impl AppState {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            max_batch: DEFAULT_MAX_BATCH,
            ready: Arc::default(),
        }
    }

    pub fn with_max_batch(self, max_batch: usize) -> Self {
        Self { max_batch, ..self }
    }

    /// The caller of a request, with its tenant ready to serve: on a
    /// tenant's first use the built-in framework is loaded into it.
    pub async fn caller<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let principal = Principal::of(request)?.clone();
        if !self.is_ready(&principal.tenant) {
            ensure_builtin(&self.db, &principal.tenant)
                .await
                .map_err(ApiError::from)?;
            self.lock_ready().insert(principal.tenant.clone());
        }
        Ok(principal)
    }

    fn is_ready(&self, tenant: &TenantId) -> bool {
        self.lock_ready().contains(tenant)
    }

    fn lock_ready(&self) -> std::sync::MutexGuard<'_, HashSet<TenantId>> {
        // The set only ever grows, so a panic elsewhere cannot leave it inconsistent.
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs a handler body, turning its error into a `Status` through
/// `transport::error`, the one mapping.
pub async fn answer<T>(
    body: impl Future<Output = Result<T, error::ApiError>>,
) -> Result<Response<T>, Status> {
    body.await.map(Response::new).map_err(Status::from)
}
