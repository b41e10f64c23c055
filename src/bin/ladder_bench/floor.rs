//! The stack alone: a gRPC server built from the service's own stack (tonic
//! on tokio, sqlx connections kept between calls as the real server keeps
//! its scoring connections, TCP_NODELAY) that answers each call with the
//! bare query and nothing else: no token, no tenant setting, no scoring, a
//! five-byte answer. It runs as a child process
//! like the real server, and what it reaches is the most any service built
//! on this stack could reach for an assessment on this machine.
//!
//! It serves the gRPC health check (`grpc.health.v1.Health/Check`), so that
//! the benchmark's callers need no client of their own: the request's
//! `service` field names the subject, and the answer is SERVING when the
//! subject's evidence was found (NOT_SERVING when none was, which the
//! benchmark treats as a failed measurement).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use uuid::Uuid;

use crate::Failure;
use crate::pgbench::BARE_QUERY;

/// Set in the child's environment: this executable then serves the bare
/// query on the address given as its only argument (the database from
/// `DATABASE_URL`).
pub const RUN_FLOOR: &str = "LADDER_BENCH_RUN_FLOOR";

/// The evidence tenant the bare query reads.
const TENANT: &str = crate::workloads::BENCH;

/// As many connections as the real server's default pool.
const POOL_SIZE: u32 = 16;

type EvidenceRow = (Uuid, String, f64, String, f64, DateTime<Utc>);

struct BareQuery {
    pool: PgPool,
    /// Connections between calls, out of the pool, as the real server keeps
    /// its scoring connections (`storage::warm`): giving one back to sqlx's
    /// pool costs a round trip.
    kept: Mutex<Vec<PoolConnection<Postgres>>>,
}

impl BareQuery {
    async fn connection(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match kept {
            Some(conn) => Ok(conn),
            None => self.pool.acquire().await,
        }
    }
}

#[tonic::async_trait]
impl Health for BareQuery {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let subject = request.into_inner().service;
        // The server itself (an empty name, as the health protocol has it).
        if subject.is_empty() {
            return Ok(Response::new(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            }));
        }
        let unavailable = |e: sqlx::Error| Status::unavailable(e.to_string());
        let mut conn = self.connection().await.map_err(unavailable)?;
        let rows: Vec<EvidenceRow> = sqlx::query_as(BARE_QUERY)
            .bind(TENANT)
            .bind(subject)
            .fetch_all(&mut *conn)
            .await
            .map_err(unavailable)?;
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        let status = if rows.is_empty() {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        Ok(Response::new(HealthCheckResponse {
            status: status as i32,
        }))
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented(
            "the stack-alone server only answers Check",
        ))
    }
}

/// The child's whole life: serve until the benchmark stops it.
pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ladder-bench (stack alone): cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ladder-bench (stack alone): {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), Failure> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .ok_or("no address to listen on")?
        .parse()?;
    let url = std::env::var("DATABASE_URL")?;
    let pool = PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        // As the real server: a connection used a moment ago is not pinged.
        .test_before_acquire(false)
        .connect(&url)
        .await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(HealthServer::new(BareQuery {
            pool,
            kept: Mutex::default(),
        }))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
