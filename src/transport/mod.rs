//! gRPC: the tonic services, the proto<->domain conversions, authentication,
//! and the single mapping from errors to `tonic::Status`.

pub mod auth;
pub mod convert;
pub mod error;
mod services;

pub use services::{AssessmentApi, RecommendationApi, RubricApi};

use tonic::{Request, Response, Status};

use crate::storage::Db;
use crate::transport::auth::Principal;

/// Default largest number of evidence items in one `BatchCreateEvidence`.
pub const DEFAULT_MAX_BATCH: usize = 1000;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    /// Largest number of evidence items in one batch.
    pub max_batch: usize,
}

impl AppState {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            max_batch: DEFAULT_MAX_BATCH,
        }
    }

    /// The caller of a request, with its tenant ready to serve.
    pub async fn caller<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        Ok(Principal::of(request)?.clone())
    }
}

/// Turns a handler's result into what tonic expects; errors become `Status`
/// through `transport::error`, the one mapping.
pub fn respond<T>(result: Result<T, error::ApiError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}
