//! Integration tests: the real server over a real socket and a real PostgreSQL,
//! through the generated clients. One binary, so the throwaway cluster is
//! brought up once and every test gets its own database.

mod harness;

mod audit;
mod auth;
mod cli;
mod evidence;
mod framework;
mod import;
mod isolation;
mod recommend;
mod schema;
mod scopes;
mod server;
mod subject_rights;
