//! `ladder.v1.AssessmentService`.

use crate::proto::v1::assessment_service_server::AssessmentService;
use crate::transport::AppState;

#[derive(Debug, Clone)]
pub struct AssessmentApi {
    #[allow(dead_code)]
    state: AppState,
}

impl AssessmentApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl AssessmentService for AssessmentApi {}
