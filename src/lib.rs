//! Ladder: scores competency evidence against role rubrics and recommends
//! career moves beyond Senior Engineer.
//!
//! The folders are the layers (see docs/architecture.md): `transport` (gRPC
//! services and proto<->domain conversion) calls `storage` (sqlx repositories)
//! and `domain` (pure types and scoring); `app` wires them into the binary.

pub mod app;
pub mod domain;
pub mod proto;
pub mod storage;
pub mod transport;
