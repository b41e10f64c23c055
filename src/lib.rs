//! Ladder: scores competency evidence against role rubrics and recommends
//! career moves beyond Senior Engineer.
//!
//! The folders are the layers (see docs/architecture.md): `transport` (gRPC
//! services, proto<->domain conversion, the one handler pipeline) calls
//! `storage` (sqlx repositories), `app::scoring` (what assessments and
//! recommendations share) and `domain` (pure types and scoring); `app` also
//! wires them into the binary.

pub mod app;
pub mod domain;
pub mod proto;
pub mod storage;
pub mod transport;
