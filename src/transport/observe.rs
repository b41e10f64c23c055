//! What the pipeline records of every call: its span and its metrics.
//!
//! The span follows the OpenTelemetry RPC conventions: a server span named
//! after the full method (`ladder.v1.RubricService/GetRole`) with
//! `rpc.system` (`grpc`), `rpc.service`, `rpc.method` and, when the call
//! ends, `rpc.grpc.status_code`; `tenant` and `scope` are the only other
//! fields (never subject data). A caller's W3C `traceparent`/`tracestate`
//! metadata makes it a child of the caller's span, so Ladder's spans join
//! the caller's trace. Server errors (the codes the conventions count as a
//! server fault) set the span's status to error.

use std::future::Future;
use std::sync::OnceLock;

use opentelemetry::Context as OtelContext;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{KeyRef, MetadataMap};
use tonic::{Code, Status};
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::storage::TenantId;
use crate::transport::AppState;
use crate::transport::metrics::CallTimer;
use crate::transport::pipeline::Method;

/// The name of every call's span (the log layer keeps only these spans).
pub(crate) const CALL_SPAN: &str = "rpc";

/// How a call's span joins its caller's trace, as the binary's telemetry
/// (`app::telemetry`, which also writes trace ids into log lines) does it;
/// until one is set, through OpenTelemetry only.
static JOIN_CALLERS_TRACE: OnceLock<fn(&Span, OtelContext)> = OnceLock::new();

/// Sets, once per process, how call spans join their callers' traces.
pub fn join_callers_trace_with(join: fn(&Span, OtelContext)) {
    let _ = JOIN_CALLERS_TRACE.set(join);
}

/// A call being observed.
pub(crate) struct ObservedCall {
    span: Span,
    timer: CallTimer,
}

impl AppState {
    /// Opens the call's span (joined to the caller's trace when the metadata
    /// carries one) and starts its metrics.
    pub(crate) fn observe(
        &self,
        method: Method,
        tenant: &TenantId,
        metadata: &MetadataMap,
    ) -> ObservedCall {
        let span = tracing::info_span!(
            CALL_SPAN,
            otel.name = method.name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = method.service(),
            rpc.method = method.short_name(),
            rpc.grpc.status_code = tracing::field::Empty,
            scope = method.scope.as_str(),
            tenant = tenant.0.as_str(),
        );
        if metadata.contains_key("traceparent") {
            let caller = TraceContextPropagator::new().extract(&Metadata(metadata));
            match JOIN_CALLERS_TRACE.get() {
                Some(join) => join(&span, caller),
                None => {
                    let _ = span.set_parent(caller);
                }
            }
        }
        ObservedCall {
            span,
            timer: self.metrics.start(method),
        }
    }
}

impl ObservedCall {
    /// Runs the call inside its span and records how it ended.
    pub(crate) async fn run<T>(
        self,
        call: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let Self { span, timer } = self;
        let result = call.instrument(span.clone()).await;
        let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        span.record("rpc.grpc.status_code", code as i32);
        if is_server_error(code) {
            span.record("otel.status_code", "ERROR");
        }
        timer.finish(code);
        result
    }
}

/// The codes the OpenTelemetry gRPC conventions count as the server's fault;
/// the others (a bad argument, a missing row) are the caller's.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// gRPC metadata as OpenTelemetry reads a carrier.
struct Metadata<'a>(&'a MetadataMap);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                KeyRef::Ascii(key) => Some(key.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}
