//! Pure types and the scoring engine: no I/O, no gRPC, no SQL.

pub mod assessment;
pub mod calibration;
pub mod evidence;
pub mod framework;
pub mod oversight;
pub mod recommend;
pub mod scoring;
pub mod standards;
pub mod subject;
pub mod validation;
