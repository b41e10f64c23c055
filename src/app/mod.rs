//! The binary's wiring: command line, configuration, telemetry, the embedded
//! PostgreSQL and server start.

pub mod cli;
pub mod client;
pub mod embedded_pg;
pub mod error;
pub mod framework_cmd;
pub mod server;
pub mod telemetry;
