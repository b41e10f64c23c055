//! Logs and traces.
//!
//! Logs: JSON lines for machines (the default), text for people, on stderr;
//! `RUST_LOG` overrides the default `info` level. A line written inside a
//! call carries the call's `rpc` span (its fields, and its `trace_id` and
//! `span_id`), so a log line leads to its trace and back. The statements'
//! `db` spans are left out of the logs: formatting their fields for every
//! statement, whether or not anything is logged inside it, was a tenth of
//! an assessment's instructions (docs/benchmarks.md).
//!
//! Traces: Ladder's spans (target `ladder`, level info and above) go to
//! OpenTelemetry, configured by the standard variables: the OTLP endpoint
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`;
//! none set: nothing is exported, the ids in the logs remain),
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`, the only one this build speaks),
//! `OTEL_EXPORTER_OTLP_HEADERS` and `_TIMEOUT`, `OTEL_SERVICE_NAME`
//! (default `ladder`), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//! and `OTEL_TRACES_SAMPLER_ARG` (default: every trace), `OTEL_SDK_DISABLED`.
//! Spans are exported in batches; [`Telemetry::shutdown`] sends the last.
//!
//! Without an endpoint no OpenTelemetry layer is installed: only the calls'
//! spans are made at all (the statements' are filtered out before they
//! exist), and each gets its ids from the log layer's companion here (the
//! caller's trace id when it sent one, see `join_callers_trace`): a
//! GetRole's server instructions went from 100,000 to 88,000 against the
//! OpenTelemetry layer sampling every span out (docs/benchmarks.md).

use std::sync::OnceLock;

use clap::ValueEnum;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry::{Context as OtelContext, Key, Value};
use opentelemetry_otlp::WithTonicConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider};
use tracing::dispatcher::WeakDispatch;
use tracing::span::{Attributes, Id};
use tracing::{Dispatch, Event, Level, Metadata, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{FilterExt, Targets, filter_fn};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::app::error::AppError;
use crate::app::json_span_fields::JsonSpanFields;
use crate::transport::CALL_SPAN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// The name spans are exported under when `OTEL_SERVICE_NAME` does not say.
const SERVICE_NAME: &str = "ladder";

/// The longest [`Telemetry::shutdown`] waits for the last spans to be sent.
pub const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What [`init`] set up; shut it down before the process exits.
#[derive(Debug)]
pub struct Telemetry {
    /// The exporting provider; none without an OTLP endpoint.
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans not sent yet and stops the exporter, giving up
    /// after [`FLUSH_TIMEOUT`] (a collector that does not answer must not
    /// hold up the exit). Blocks; call it outside the async runtime (which
    /// must still be running).
    pub fn shutdown(self) {
        if let Some(Err(e)) = self
            .provider
            .map(|provider| provider.shutdown_with_timeout(FLUSH_TIMEOUT))
        {
            eprintln!("ladder: flushing traces: {e}");
        }
    }
}

/// Installs the global subscriber: logs to stderr in `format`, traces as
/// the `OTEL_*` variables say. Call it inside the Tokio runtime: the OTLP
/// exporter's connection runs on it. A second call (tests start many
/// servers in one process) keeps the first subscriber.
pub fn init(format: LogFormat) -> Result<Telemetry, AppError> {
    let provider = tracer_provider()?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing::dispatcher::set_global_default(subscriber(
        format,
        filter,
        provider.as_ref(),
        std::io::stderr,
    ));
    Ok(Telemetry { provider })
}

/// The subscriber [`init`] installs, writing logs that pass `filter` to
/// `writer` and spans to `exporting` (none: spans only get ids for the log
/// lines): for tests, which install it for one thread.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    exporting: Option<&SdkTracerProvider>,
    writer: W,
) -> Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // Call spans join their callers' traces through this subscriber's
    // layers, so that log lines carry the caller's trace id too.
    crate::transport::join_callers_trace_with(join_callers_trace);
    let Some(provider) = exporting else {
        // One filter for every layer, before any span is made: the
        // statements' spans, which only traces would show, are never made.
        return Dispatch::new(
            Registry::default()
                .with(filter)
                .with(filter_fn(events_and_call_spans))
                .with(TraceIdsLayer::Own(RandomIdGenerator::default()))
                .with(log_layer(format, writer)),
        );
    };
    Dispatch::new(
        Registry::default()
            .with(
                // Only the attributes docs/operations.md lists: not the source
                // location, thread, target or busy/idle times the layer adds by
                // default (2,000 of a GetRole's 116,000 instructions went to them).
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer(SERVICE_NAME))
                    .with_location(false)
                    .with_threads(false)
                    .with_target(false)
                    .with_tracked_inactivity(false)
                    // Nothing asks OpenTelemetry for the current context: a span's
                    // parent comes from the tracing span it opens in.
                    .with_context_activation(false)
                    .with_filter(traced_spans()),
            )
            .with(TraceIdsLayer::FromOpenTelemetry(OnceLock::new()).with_filter(traced_spans()))
            .with(
                log_layer(format, writer).with_filter(filter.and(filter_fn(events_and_call_spans))),
            ),
    )
}

/// Log lines in `format` to `writer`, each with its call's trace ids.
fn log_layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .fmt_fields(JsonSpanFields)
            .map_event_format(|inner| WithTraceIds {
                inner,
                format: LogFormat::Json,
            })
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .map_event_format(|inner| WithTraceIds {
                inner,
                format: LogFormat::Text,
            })
            .with_writer(writer)
            .boxed(),
    }
}

/// Makes `span` (a call's, not entered yet) a child of the caller's span
/// in `caller`: through the OpenTelemetry layer when spans are exported,
/// otherwise by giving the span's log lines the caller's trace id.
fn join_callers_trace(span: &Span, caller: OtelContext) {
    let trace_id = caller.span().span_context().trace_id();
    if span.set_parent(caller).is_ok() || trace_id == TraceId::INVALID {
        return;
    }
    span.with_subscriber(|(id, dispatch)| {
        if let Some(span) = dispatch
            .downcast_ref::<Registry>()
            .and_then(|registry| registry.span(id))
            && let Some(ids) = span.extensions_mut().get_mut::<TraceIds>()
        {
            ids.trace_id = trace_id;
        }
    });
}

/// What the log layer sees: events, and of the spans only the calls'.
fn events_and_call_spans(metadata: &Metadata<'_>) -> bool {
    !metadata.is_span() || metadata.name() == CALL_SPAN
}

/// Which spans go to OpenTelemetry: Ladder's own, whatever `RUST_LOG` says
/// of the logs.
fn traced_spans() -> Targets {
    Targets::new().with_target(env!("CARGO_CRATE_NAME"), Level::INFO)
}

/// The tracer provider the `OTEL_*` variables describe, exporting over
/// OTLP/gRPC; none when no endpoint is set.
fn tracer_provider() -> Result<Option<SdkTracerProvider>, AppError> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if disabled
        || !(set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    {
        return Ok(None);
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Ok(protocol) = std::env::var(name)
            && !protocol.is_empty()
            && protocol != "grpc"
        {
            return Err(AppError::Config(format!(
                "{name}={protocol}: Ladder exports OTLP over gRPC only; set it to grpc \
                 (the collector's port 4317)"
            )));
        }
    }
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Some(tls) = collector_tls()? {
        builder = builder.with_tls_config(tls);
    }
    let exporter = builder
        .build()
        .map_err(|e| AppError::Config(format!("the OTLP trace exporter: {e}")))?;
    Ok(Some(exporting_to(exporter)))
}

/// TLS for an `https://` collector: its certificate verified against the
/// system's roots, plus the CA certificates in the PEM file
/// `OTEL_EXPORTER_OTLP_CERTIFICATE` (or `..._TRACES_CERTIFICATE`) names, for
/// a collector with a certificate of a private CA. None for a plaintext
/// (`http://`) endpoint.
fn collector_tls() -> Result<Option<tonic::transport::ClientTlsConfig>, AppError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .unwrap_or_default();
    // The exporter makes a schemeless endpoint https:// (unless
    // OTEL_EXPORTER_OTLP_INSECURE); only https:// connections use this.
    if endpoint.trim().to_ascii_lowercase().starts_with("http://") {
        return Ok(None);
    }
    let mut tls = tonic::transport::ClientTlsConfig::new().with_enabled_roots();
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    ] {
        if let Some(path) = var(name) {
            let pem = std::fs::read(&path)
                .map_err(|e| AppError::Config(format!("{name}={path}: {e}")))?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            break;
        }
    }
    Ok(Some(tls))
}

/// A tracer provider exporting to `exporter` in batches, configured
/// otherwise by the `OTEL_*` variables.
pub fn exporting_to(exporter: opentelemetry_otlp::SpanExporter) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_resource(resource())
        .with_batch_exporter(exporter)
        .build()
}

/// The process as traces name it: the `OTEL_*` variables' resource, named
/// `ladder` unless they name it.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let service = Key::from_static_str("service.name");
    let unnamed = match detected.get(&service) {
        Some(Value::String(name)) => name.as_str().starts_with("unknown_service"),
        _ => true,
    };
    if unnamed {
        Resource::builder().with_service_name(SERVICE_NAME).build()
    } else {
        detected
    }
}

/// A span's OpenTelemetry ids, formatted only when a line is logged.
#[derive(Clone, Copy)]
struct TraceIds {
    trace_id: TraceId,
    span_id: SpanId,
}

/// Keeps each traced span's [`TraceIds`] in its extensions, for the log
/// formatter.
enum TraceIdsLayer {
    /// Copied from the OpenTelemetry layer's span (the formatter cannot ask
    /// that layer itself: it runs inside the dispatch of the event).
    FromOpenTelemetry(OnceLock<WeakDispatch>),
    /// Made here, without an OpenTelemetry layer: a new trace for every
    /// span, until [`join_callers_trace`] gives it the caller's.
    Own(RandomIdGenerator),
}

impl<S> Layer<S> for TraceIdsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        if let Self::FromOpenTelemetry(dispatch) = self {
            let _ = dispatch.set(subscriber.downgrade());
        }
    }

    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Self::Own(ids) = self else { return };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(TraceIds {
                trace_id: ids.new_trace_id(),
                span_id: ids.new_span_id(),
            });
        }
    }

    /// On the span's first entry: by then the call has given it its parent.
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Self::FromOpenTelemetry(dispatch) = self else {
            return;
        };
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<TraceIds>().is_some() {
            return;
        }
        let Some(dispatch) = dispatch.get().and_then(WeakDispatch::upgrade) else {
            return;
        };
        let Some(otel) = tracing_opentelemetry::get_otel_context(id, &dispatch) else {
            return;
        };
        let otel_span = otel.span();
        let ids = otel_span.span_context();
        if ids.is_valid() {
            span.extensions_mut().insert(TraceIds {
                trace_id: ids.trace_id(),
                span_id: ids.span_id(),
            });
        }
    }
}

/// The line `inner` formats, with the innermost traced span's ids added:
/// as two more members of the JSON object, or as `trace_id=… span_id=…`
/// at the end of a text line.
struct WithTraceIds<F> {
    inner: F,
    format: LogFormat,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let ids = ctx.event_scope().and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<TraceIds>().copied())
        });
        let Some(TraceIds { trace_id, span_id }) = ids else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let line = line.trim_end_matches('\n');
        match self.format {
            LogFormat::Json => match line.strip_suffix('}') {
                Some(members) => writeln!(
                    writer,
                    r#"{members},"trace_id":"{trace_id}","span_id":"{span_id}"}}"#
                ),
                None => writeln!(writer, "{line}"),
            },
            LogFormat::Text => writeln!(writer, "{line} trace_id={trace_id} span_id={span_id}"),
        }
    }
}
