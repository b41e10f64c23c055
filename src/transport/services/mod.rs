//! The four `ladder.v1` services. Methods not implemented yet answer
//! UNIMPLEMENTED through the generated default stubs.

mod assessment;
mod calibration;
mod recommendation;
mod rubric;

pub use assessment::AssessmentApi;
pub use calibration::CalibrationApi;
pub use recommendation::RecommendationApi;
pub use rubric::RubricApi;
