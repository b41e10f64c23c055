//! The `ladder.v1` services. Methods not implemented yet answer
//! UNIMPLEMENTED through the generated default stubs.

mod assessment;
mod audit;
mod recommendation;
mod rubric;
mod subject_rights;

pub use assessment::AssessmentApi;
pub use audit::AuditApi;
pub use recommendation::RecommendationApi;
pub use rubric::RubricApi;
pub use subject_rights::SubjectRightsApi;
