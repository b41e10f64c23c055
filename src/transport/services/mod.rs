//! The `ladder.v1` services. Methods not implemented yet answer
//! UNIMPLEMENTED through the generated default stubs.

mod assessment;
mod calibration;
mod framework;
mod oversight;
mod recommendation;
mod rubric;
mod xapi;

pub use assessment::AssessmentApi;
pub use calibration::CalibrationApi;
pub use framework::FrameworkApi;
pub use oversight::OversightApi;
pub use recommendation::RecommendationApi;
pub use rubric::RubricApi;
pub use xapi::XapiApi;
