//! Integration tests: the real server over a real socket and a real PostgreSQL,
//! through the generated clients. One binary, so the throwaway cluster is
//! brought up once and every test gets its own database.

mod harness;

mod api_doc;
mod audit;
mod auth;
mod calibration;
mod cli;
mod client_messages;
mod contracts;
mod corrections;
mod demo;
mod evidence;
mod faults;
mod field_behavior;
mod framework;
mod fuzz;
mod import;
mod isolation;
mod limits;
mod observability;
mod overload;
mod oversight;
mod read_only;
mod read_replica;
mod recommend;
mod schema;
mod scopes;
mod server;
mod standards;
mod subject_rights;
mod subjects;
mod tls;
