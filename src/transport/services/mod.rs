//! The `ladder.v1` services. Methods not implemented yet answer
//! UNIMPLEMENTED through the generated default stubs.

mod assessment;
mod audit;
mod calibration;
mod framework;
mod oversight;
mod recommendation;
mod rubric;
mod subject_rights;
mod subjects;
mod xapi;

pub use assessment::AssessmentApi;
pub use audit::AuditApi;
pub use calibration::CalibrationApi;
pub use framework::FrameworkApi;
pub use oversight::OversightApi;
pub use recommendation::RecommendationApi;
pub use rubric::RubricApi;
pub use subject_rights::SubjectRightsApi;
pub use xapi::XapiApi;
