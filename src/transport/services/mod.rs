//! The `ladder.v1` services. Methods not implemented yet answer
//! UNIMPLEMENTED through the generated default stubs.

mod assessment;
mod oversight;
mod recommendation;
mod rubric;

pub use assessment::AssessmentApi;
pub use oversight::OversightApi;
pub use recommendation::RecommendationApi;
pub use rubric::RubricApi;
