//! Ladder: scores competency evidence against role rubrics and recommends
//! career moves beyond Senior Engineer.
//!
//! The folders are the layers (see docs/architecture.md), every import
//! pointing down: `app` (the binary's wiring and the CLI) starts `transport`
//! (gRPC services, proto<->domain conversion, the one handler pipeline),
//! which calls `usecases` (what one call does across storage and the
//! domain), which call `storage` (sqlx repositories) and `domain` (pure
//! types and engines).

pub mod app;
pub mod domain;
pub mod proto;
pub mod storage;
pub mod transport;
pub mod usecases;
