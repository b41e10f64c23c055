//! `ladder.v1.RecommendationService`.

use crate::proto::v1::recommendation_service_server::RecommendationService;
use crate::transport::AppState;

#[derive(Debug, Clone)]
pub struct RecommendationApi {
    #[allow(dead_code)]
    state: AppState,
}

impl RecommendationApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl RecommendationService for RecommendationApi {}
