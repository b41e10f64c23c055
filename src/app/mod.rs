//! The binary's wiring: command line, configuration, telemetry, the embedded
//! PostgreSQL, server start, and the client commands (`client`). The use
//! cases the services call live in `crate::usecases`.

pub mod admin;
pub mod cli;
pub mod client;
mod coalesced_writes;
pub mod embedded_pg;
pub mod error;
pub mod framework_cmd;
mod json_span_fields;
pub mod memory;
pub mod server;
pub mod telemetry;
pub mod tls;
