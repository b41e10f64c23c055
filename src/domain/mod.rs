//! Pure types and the scoring engine: no I/O, no gRPC, no SQL.

pub mod evidence;
pub mod framework;
pub mod scoring;
pub mod validation;
