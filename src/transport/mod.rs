//! gRPC: the tonic services, the proto<->domain conversions, authentication,
//! and the single mapping from errors to `tonic::Status`.

pub mod auth;
pub mod error;
mod services;

pub use services::{AssessmentApi, RecommendationApi, RubricApi};

use tonic::{Request, Status};

use crate::storage::Db;
use crate::transport::auth::Principal;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
}

impl AppState {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The caller of a request, with its tenant ready to serve.
    pub async fn caller<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        Ok(Principal::of(request)?.clone())
    }
}
