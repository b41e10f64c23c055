//! The binary's wiring (command line, configuration, telemetry, the embedded
//! PostgreSQL, server start) and the application functions that span
//! storage and the domain (`scoring`, `oversight`).

pub mod admin;
pub mod calibration;
pub mod cli;
pub mod client;
mod coalesced_writes;
pub mod embedded_pg;
pub mod error;
pub mod framework_cmd;
mod json_span_fields;
pub mod memory;
pub mod oversight;
pub mod scoring;
pub mod server;
pub mod telemetry;
pub mod tls;
