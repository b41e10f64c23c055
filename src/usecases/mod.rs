//! Use cases: what one call does across storage and the domain, between the
//! transport services above and the repositories and pure engines below.
//! Scoring a subject (assessments, recommendations, what-ifs), explaining
//! and deciding on an assessment and reporting on decisions and their
//! impact, and running a rater calibration. Nothing here knows gRPC or the
//! binary's wiring.

pub mod calibration;
pub mod oversight;
pub mod scoring;
