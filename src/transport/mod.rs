//! gRPC: the tonic services, the proto<->domain conversions, authentication,
//! and the single mapping from errors to `tonic::Status`.

pub mod auth;
pub mod error;
mod services;

pub use services::{AssessmentApi, RecommendationApi, RubricApi};

use crate::storage::Db;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
}
