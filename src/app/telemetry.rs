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

use std::sync::OnceLock;

use clap::ValueEnum;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::dispatcher::WeakDispatch;
use tracing::span::Id;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
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

/// What [`init`] set up; shut it down before the process exits.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports the spans not sent yet and stops the exporter. Blocks; call
    /// it outside the async runtime (which must still be running).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
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
    let _ = tracing::subscriber::set_global_default(subscriber(
        format,
        filter,
        &provider,
        std::io::stderr,
    ));
    Ok(Telemetry { provider })
}

/// The subscriber [`init`] installs, writing logs that pass `filter` to
/// `writer` and spans to `provider`: for tests, which install it for one
/// thread.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    provider: &SdkTracerProvider,
    writer: W,
) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let logs = match format {
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
    };
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
        .with(TraceIdsLayer::default().with_filter(traced_spans()))
        .with(logs.with_filter(filter.and(filter_fn(events_and_call_spans))))
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

/// The tracer provider the `OTEL_*` variables describe: exporting over
/// OTLP/gRPC when an endpoint is set, otherwise only making the ids.
fn tracer_provider() -> Result<SdkTracerProvider, AppError> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if disabled
        || !(set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    {
        return Ok(not_exporting());
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
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| AppError::Config(format!("the OTLP trace exporter: {e}")))?;
    Ok(exporting_to(exporter))
}

/// The tracer provider without an OTLP endpoint: nothing is sent, so
/// nothing is recorded; spans still get their ids (for the log lines and
/// the caller's trace), not span data.
pub fn not_exporting() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_resource(resource())
        .with_sampler(Sampler::AlwaysOff)
        .build()
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
/// formatter (which cannot ask the OpenTelemetry layer itself: it runs
/// inside the dispatch of the event).
#[derive(Default)]
struct TraceIdsLayer {
    dispatch: OnceLock<WeakDispatch>,
}

impl<S> Layer<S> for TraceIdsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    /// On the span's first entry: by then the call has given it its parent.
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<TraceIds>().is_some() {
            return;
        }
        let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) else {
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
