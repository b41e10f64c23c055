//! The admin HTTP port (`--admin-listen`), apart from the gRPC port so it can
//! be kept off the network the API is on, for tools that do not speak gRPC:
//!
//! - `/metrics`: the Prometheus metrics (`transport::metrics`), in the
//!   OpenMetrics text format;
//! - `/livez`: 200 while the process answers; never looks at the database,
//!   so a database outage does not get the pods restarted;
//! - `/readyz`: 200 while the server serves and the database answers a ping
//!   within 2 s, else 503; 503 from the moment it is told to stop.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::app::error::AppError;
use crate::transport::AppState;

/// How long `/readyz` waits for the database.
const READY_PING_TIMEOUT: Duration = Duration::from_secs(2);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves the admin endpoints on `listener` until the task is dropped. Start
/// it when the gRPC server is about to serve: it reports ready from then on.
pub async fn serve(listener: TcpListener, state: AppState) -> Result<(), AppError> {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(live))
        .route("/readyz", get(ready))
        .with_state(state);
    axum::serve(listener, router)
        .await
        .map_err(|source| AppError::Io {
            context: "serving the admin port".into(),
            source,
        })
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, OPENMETRICS)],
        state.metrics.encode(),
    )
}

async fn live() -> &'static str {
    "ok\n"
}

async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.stopping() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match tokio::time::timeout(READY_PING_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n"),
        Ok(Err(_)) | Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n"),
    }
}
