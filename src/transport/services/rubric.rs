//! `ladder.v1.RubricService`.

use crate::proto::v1::rubric_service_server::RubricService;
use crate::transport::AppState;

#[derive(Debug, Clone)]
pub struct RubricApi {
    #[allow(dead_code)]
    state: AppState,
}

impl RubricApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl RubricService for RubricApi {}
