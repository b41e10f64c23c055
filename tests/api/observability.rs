//! Traces, metrics and logs, for real: spans reach an in-process OTLP
//! collector over gRPC, `/metrics` is scraped over HTTP, and the server's log
//! lines are captured as the JSON the binary writes.
//!
//! The trace and log tests install the server's subscriber for their own
//! thread only (`#[tokio::test]` runs the server's tasks on the test's
//! thread), so the other tests of the binary run without it.

use std::collections::HashMap;
use std::io::Write;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{TimeZone, Utc};
use ladder::app::telemetry::{self, LogFormat};
use ladder::proto::v1::{
    BatchCreateEvidenceRequest, EvidenceSource, GetRoleRequest, ListRolesRequest,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tracing::Dispatch;
use tracing::dispatcher::DefaultGuard;
use tracing::subscriber::NoSubscriber;
use tracing_subscriber::EnvFilter;

use crate::harness::{TestServer, evidence, ladder_bin};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// A caller's W3C trace context: trace `TRACE_ID`, span `CALLER_SPAN_ID`, sampled.
fn traced<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    request
        .metadata_mut()
        .insert("tracestate", "vendor=opaque".parse().unwrap());
    request
}

fn items(subject: &str, summary: &str, count: usize) -> BatchCreateEvidenceRequest {
    let observed = Utc.with_ymd_and_hms(2026, 1, 15, 9, 30, 0).unwrap();
    BatchCreateEvidenceRequest {
        evidence: (0..count)
            .map(|i| ladder::proto::v1::Evidence {
                summary: summary.into(),
                ..evidence(
                    subject,
                    "system_design",
                    4.0,
                    EvidenceSource::Manager,
                    observed,
                    &format!("obs-{i}"),
                )
            })
            .collect(),
    }
}

/// An OTLP trace receiver: keeps every span it is sent, and the service
/// names of their senders.
#[derive(Default, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(name) if kv.key == "service.name" => Some(name.clone()),
                    _ => None,
                });
            self.services.lock().unwrap().extend(service);
            let spans = resource_spans.scope_spans.into_iter().flat_map(|s| s.spans);
            self.spans.lock().unwrap().extend(spans);
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves the collector on a loopback port.
    async fn start(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        addr
    }

    /// Serves the collector over TLS with `identity`'s certificate.
    async fn start_tls(&self, identity: tonic::transport::Identity) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .unwrap()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        addr
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

/// Sends the spans the provider holds; blocking, so off the test's thread,
/// which runs the exporter's connection.
async fn flush(provider: &SdkTracerProvider) {
    let provider = provider.clone();
    tokio::task::spawn_blocking(move || provider.force_flush())
        .await
        .unwrap()
        .expect("flushing the spans");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(span: &Span) -> HashMap<String, Value> {
    span.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
        .collect()
}

fn string(value: Option<&Value>) -> Option<&str> {
    match value {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int(value: Option<&Value>) -> Option<i64> {
    match value {
        Some(Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

/// Installs `subscriber` for this thread (and so for the server the test
/// starts on it). While a single dispatcher exists, tracing-core asks only
/// the registering thread's default whether a callsite is wanted, so a span
/// first reached on another test's thread would be cached as unwanted for
/// ours too; a second dispatcher, kept for the whole binary, makes it ask
/// every dispatcher.
fn install(subscriber: Dispatch) -> DefaultGuard {
    static SECOND: OnceLock<Dispatch> = OnceLock::new();
    SECOND.get_or_init(|| Dispatch::new(NoSubscriber::default()));
    tracing::dispatcher::set_default(&subscriber)
}

/// Log lines, as the server writes them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn a_calls_spans_join_the_callers_trace_with_statements_as_children() {
    let collector = Collector::default();
    let endpoint = format!("http://{}", collector.start().await);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .unwrap();
    let provider = telemetry::exporting_to(exporter);
    let subscriber = telemetry::subscriber(
        LogFormat::Json,
        EnvFilter::new("info"),
        Some(&provider),
        std::io::sink,
    );
    let _installed = install(subscriber);

    let server = TestServer::start().await;
    let mut c = server.clients("tenant-traced").await;
    c.assessment
        .batch_create_evidence(traced(items("emp-1", "shipped the thing", 2)))
        .await
        .unwrap();
    let missing = c
        .rubric
        .get_role(traced(GetRoleRequest {
            role_id: "no_such_role".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    flush(&provider).await;

    let spans = collector.spans();
    let rpc = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} among {:?}", names(&spans)))
    };
    let ingest = rpc("ladder.v1.AssessmentService/BatchCreateEvidence");
    assert_eq!(hex(&ingest.trace_id), TRACE_ID);
    assert_eq!(hex(&ingest.parent_span_id), CALLER_SPAN_ID);
    assert_eq!(ingest.kind, SpanKind::Server as i32);
    let attrs = attributes(ingest);
    assert_eq!(string(attrs.get("rpc.system")), Some("grpc"));
    assert_eq!(
        string(attrs.get("rpc.service")),
        Some("ladder.v1.AssessmentService")
    );
    assert_eq!(string(attrs.get("rpc.method")), Some("BatchCreateEvidence"));
    assert_eq!(int(attrs.get("rpc.grpc.status_code")), Some(0));
    assert_eq!(string(attrs.get("tenant")), Some("tenant-traced"));
    assert!(
        !attrs
            .values()
            .any(|v| string(Some(v)).is_some_and(|s| s.contains("emp-1"))),
        "subject data in the span: {attrs:?}"
    );

    let statements: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == ingest.span_id)
        .collect();
    let insert = statements
        .iter()
        .find(|s| s.name == "evidence::INSERT_BATCH")
        .unwrap_or_else(|| panic!("no insert among {:?}", names(&spans)));
    assert_eq!(insert.trace_id, ingest.trace_id);
    assert_eq!(insert.kind, SpanKind::Client as i32);
    let attrs = attributes(insert);
    assert_eq!(string(attrs.get("db.system")), Some("postgresql"));
    assert_eq!(
        string(attrs.get("db.statement.name")),
        Some("evidence::INSERT_BATCH")
    );
    assert!(string(attrs.get("db.operation")).is_some(), "{attrs:?}");
    assert!(
        statements
            .iter()
            .any(|s| s.name == "evidence::UNKNOWN_COMPETENCIES"),
        "{:?}",
        names(&spans)
    );

    let get = rpc("ladder.v1.RubricService/GetRole");
    assert_eq!(hex(&get.trace_id), TRACE_ID);
    assert_eq!(hex(&get.parent_span_id), CALLER_SPAN_ID);
    // Every span is in the caller's trace: a task the call starts (opening
    // its transaction) runs in its span rather than starting a trace.
    for span in &spans {
        assert_eq!(
            hex(&span.trace_id),
            TRACE_ID,
            "{} in another trace",
            span.name
        );
    }
    // Every statement span is a child of its call's span.
    for statement in spans.iter().filter(|s| s.kind == SpanKind::Client as i32) {
        assert_eq!(statement.trace_id, ingest.trace_id, "{}", statement.name);
        assert!(
            [&ingest.span_id, &get.span_id].contains(&&statement.parent_span_id),
            "{} has another parent",
            statement.name
        );
    }
    assert_eq!(int(attributes(get).get("rpc.grpc.status_code")), Some(5));
    // NOT_FOUND is the caller's error, not the server's.
    assert_ne!(
        get.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
}

/// The binary as deployed: OTLP settings from the standard variables, the
/// caller's sampling decision followed (and none of the traces Ladder would
/// start itself kept), and the spans still in its batch sent at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_serve_exports_by_the_otel_variables_and_flushes_at_shutdown() {
    let collector = Collector::default();
    let endpoint = format!("http://{}", collector.start().await);
    let server = TestServer::start().await;
    let mut child = Command::new(ladder_bin())
        .args(["serve", "--dev", "--no-migrate", "--listen", "127.0.0.1:0"])
        .args(["--database-url", &server.app_database_url()])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_SERVICE_NAME", "ladder-under-test")
        .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        .env("OTEL_TRACES_SAMPLER_ARG", "0")
        .env("LADDER_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let event: serde_json::Value = serde_json::from_str(&line).ok()?;
            (event["message"] == "ladder listening")
                .then(|| event["addr"].as_str().map(String::from))?
        })
        .expect("ladder serve did not start");
    std::thread::spawn(move || for _ in lines {});

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut rubric = ladder::proto::v1::rubric_service_client::RubricServiceClient::new(channel);
    rubric
        .list_roles(traced(ListRolesRequest::default()))
        .await
        .unwrap();
    // Not sampled: Ladder would start this trace itself, at ratio 0.
    rubric
        .get_role(GetRoleRequest {
            role_id: "no_such_role".into(),
        })
        .await
        .unwrap_err();

    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "ladder serve exited with {status}");

    let spans = collector.spans();
    let list = spans
        .iter()
        .find(|s| s.name == "ladder.v1.RubricService/ListRoles")
        .unwrap_or_else(|| panic!("no ListRoles span among {:?}", names(&spans)));
    assert_eq!(hex(&list.trace_id), TRACE_ID);
    assert_eq!(hex(&list.parent_span_id), CALLER_SPAN_ID);
    assert!(
        spans
            .iter()
            .any(|s| s.parent_span_id == list.span_id && s.name == "roles::LIST"),
        "{:?}",
        names(&spans)
    );
    assert!(
        !spans
            .iter()
            .any(|s| s.name == "ladder.v1.RubricService/GetRole"),
        "an unsampled trace was exported"
    );
    let services = collector.services.lock().unwrap().clone();
    assert!(
        !services.is_empty() && services.iter().all(|s| s == "ladder-under-test"),
        "{services:?}"
    );
}

/// `ladder serve --dev` on `server`'s database with `env`; its gRPC address
/// once it listens.
fn spawn_serving(server: &TestServer, env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut command = Command::new(ladder_bin());
    command
        .args(["serve", "--dev", "--no-migrate", "--listen", "127.0.0.1:0"])
        .args(["--database-url", &server.app_database_url()])
        .env("LADDER_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let event: serde_json::Value = serde_json::from_str(&line).ok()?;
            (event["message"] == "ladder listening")
                .then(|| event["addr"].as_str().map(String::from))?
        })
        .unwrap_or_else(|| panic!("ladder serve did not start: {:?}", child.wait()));
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// SIGTERM, then the exit status, waited for off the test's threads.
async fn terminate(mut child: std::process::Child) -> std::process::ExitStatus {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap()
}

/// An `https://` collector (as the chart's schema allows): the binary
/// starts, serves, and sends its spans over TLS, verifying the collector's
/// certificate against the CA `OTEL_EXPORTER_OTLP_CERTIFICATE` names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_serve_exports_to_an_https_collector() {
    let pki = crate::tls::pki();
    let collector = Collector::default();
    let endpoint = format!(
        "https://{}",
        collector.start_tls(pki.server.identity()).await
    );
    let server = TestServer::start().await;
    let ca = pki.ca.pem.cert.to_str().unwrap().to_string();
    let (child, addr) = spawn_serving(
        &server,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.as_str()),
        ],
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut rubric = ladder::proto::v1::rubric_service_client::RubricServiceClient::new(channel);
    rubric
        .list_roles(traced(ListRolesRequest::default()))
        .await
        .unwrap();
    let status = terminate(child).await;
    assert!(status.success(), "ladder serve exited with {status}");
    let spans = collector.spans();
    let list = spans
        .iter()
        .find(|s| s.name == "ladder.v1.RubricService/ListRoles")
        .unwrap_or_else(|| panic!("no ListRoles span among {:?}", names(&spans)));
    assert_eq!(hex(&list.trace_id), TRACE_ID);
}

/// An `https://` collector that is not there (or not yet): the server
/// starts and serves all the same, and its exit is not held up by the
/// spans it cannot send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_serve_starts_and_serves_with_an_https_collector_that_is_not_there() {
    let server = TestServer::start().await;
    let (child, addr) = spawn_serving(
        &server,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:9")],
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut rubric = ladder::proto::v1::rubric_service_client::RubricServiceClient::new(channel);
    rubric
        .list_roles(traced(ListRolesRequest::default()))
        .await
        .unwrap();
    let signalled = std::time::Instant::now();
    let status = terminate(child).await;
    assert!(status.success(), "ladder serve exited with {status}");
    // The trace flush gives up after its 2 s.
    assert!(
        signalled.elapsed() < std::time::Duration::from_secs(5),
        "exit took {:?}",
        signalled.elapsed()
    );
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

#[tokio::test]
async fn log_lines_carry_trace_ids_and_no_subject_data() {
    // As `ladder serve` runs without an OTLP endpoint.
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber =
        telemetry::subscriber(LogFormat::Json, EnvFilter::new("info"), None, move || {
            writer.clone()
        });
    let _installed = install(subscriber);

    let server = TestServer::start().await;
    let mut c = server.clients("tenant-logged").await;
    let subject = "subject-7f3a9c-private";
    let summary = "Led the Zanzibar migration postmortem";
    // The tenant's first call loads its framework, which is logged inside the call.
    c.assessment
        .batch_create_evidence(traced(items(subject, summary, 2)))
        .await
        .unwrap();
    let mut conflicting = items(subject, summary, 1);
    conflicting.evidence[0].level = 2.0;
    let conflict = c
        .assessment
        .batch_create_evidence(traced(conflicting))
        .await
        .unwrap_err();
    assert_ne!(conflict.code(), Code::Ok);

    let text = logs.text();
    assert!(!text.contains(subject), "a subject id in the log:\n{text}");
    assert!(!text.contains(summary), "a summary in the log:\n{text}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON log line"))
        .collect();
    let in_call: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| {
            line["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["name"] == "rpc"))
        })
        .collect();
    assert!(!in_call.is_empty(), "no line inside a call:\n{text}");
    for line in in_call {
        assert_eq!(line["trace_id"], TRACE_ID, "{line}");
        let span_id = line["span_id"].as_str().expect("a span id");
        assert_eq!(span_id.len(), 16, "{line}");
        assert_ne!(span_id, CALLER_SPAN_ID, "{line}");
    }
}

/// GETs `path` from the admin port: the status code and the body.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: ladder\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    (status, body.to_string())
}

/// The value of the sample `name{labels}` (labels exactly as written).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let mut c = server.clients("tenant-metrics").await;
    for _ in 0..2 {
        c.rubric
            .list_roles(ListRolesRequest::default())
            .await
            .unwrap();
    }
    let missing = c
        .rubric
        .get_role(GetRoleRequest {
            role_id: "no_such_role".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    c.assessment
        .batch_create_evidence(items("emp-1", "", 3))
        .await
        .unwrap();
    // The same items again: stored already, not ingested twice.
    c.assessment
        .batch_create_evidence(items("emp-1", "", 3))
        .await
        .unwrap();
    server.state.metrics.record_shed();

    let (status, metrics) = get(admin, "/metrics").await;
    assert_eq!(status, 200);
    let rubric = r#"grpc_service="ladder.v1.RubricService""#;
    let value = |series: String| {
        sample(&metrics, &series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    assert_eq!(
        value(format!(
            r#"ladder_rpc_requests_total{{{rubric},grpc_method="ListRoles",grpc_code="OK"}}"#
        )),
        2.0
    );
    assert_eq!(
        value(format!(
            r#"ladder_rpc_requests_total{{{rubric},grpc_method="GetRole",grpc_code="NOT_FOUND"}}"#
        )),
        1.0
    );
    assert_eq!(
        value(format!(
            r#"ladder_rpc_duration_seconds_count{{{rubric},grpc_method="ListRoles"}}"#
        )),
        2.0
    );
    assert_eq!(
        value(format!(
            r#"ladder_rpc_duration_seconds_bucket{{le="+Inf",{rubric},grpc_method="ListRoles"}}"#
        )),
        2.0
    );
    assert_eq!(
        value(format!(
            r#"ladder_rpc_in_flight{{{rubric},grpc_method="ListRoles"}}"#
        )),
        0.0
    );
    assert_eq!(
        value(
            r#"ladder_rpc_requests_total{grpc_service="ladder.v1.AssessmentService",grpc_method="BatchCreateEvidence",grpc_code="OK"}"#
                .into()
        ),
        2.0
    );
    assert_eq!(value("ladder_evidence_ingested_total".into()), 3.0);
    assert_eq!(value("ladder_rpc_shed_total".into()), 1.0);
    // The test server's pool: at most 8 connections, at least one opened.
    assert_eq!(value("ladder_db_pool_max_connections".into()), 8.0);
    assert!(value("ladder_db_pool_connections".into()) >= 1.0);
    assert!(sample(&metrics, "ladder_db_pool_idle_connections").is_some());
    assert_eq!(value("ladder_db_pool_waiting".into()), 0.0);
    assert!(value("ladder_db_pool_acquire_seconds_count".into()) >= 5.0);
}

/// The build and the process: `ladder_build_info` names the version, and the
/// `process_*` metrics Prometheus' clients export elsewhere are there with
/// plausible values; every line of the scrape parses as OpenMetrics text.
#[tokio::test]
async fn metrics_say_which_build_runs_and_what_the_process_uses() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, metrics) = get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "not a metric name: {line}"
        );
        assert!(
            !series.contains('{') || series.ends_with('}'),
            "unclosed labels: {line}"
        );
    }
    let value = |series: &str| {
        sample(&metrics, series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    let build = format!(
        r#"ladder_build_info{{version="{}",revision="unknown"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&build), 1.0);
    assert!(
        metrics.contains("# TYPE ladder_build_info gauge"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE process_cpu_seconds counter"),
        "{metrics}"
    );
    assert!(value("process_cpu_seconds_total") > 0.0);
    // This test binary: more than a megabyte resident, a few descriptors open.
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
    let open = value("process_open_fds");
    assert!(open >= 3.0, "{open}");
    assert!(value("process_max_fds") >= open);
    assert!(value("process_threads") >= 1.0);
    let started = value("process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        started <= now + 1.0 && started > now - 24.0 * 3600.0,
        "started at {started}, now {now}"
    );
}

#[tokio::test]
async fn liveness_ignores_the_database_and_readiness_needs_it() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    assert_eq!(get(admin, "/livez").await.0, 200);
    assert_eq!(get(admin, "/readyz").await.0, 200);
    assert_eq!(get(admin, "/nothing-here").await.0, 404);

    // Pings go over one connection of their own, kept from ping to ping; a
    // lost one is replaced at once rather than failing the probe.
    const PROBES: &str = "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1";
    let probes = || {
        sqlx::query_scalar::<_, i32>(PROBES)
            .bind(ladder::storage::HEALTH_PROBE_APPLICATION_NAME)
            .fetch_all(&server.pool)
    };
    let first = probes().await.unwrap();
    assert_eq!(first.len(), 1, "one probe connection: {first:?}");
    for _ in 0..3 {
        assert_eq!(get(admin, "/readyz").await.0, 200);
    }
    assert_eq!(probes().await.unwrap(), first, "the same connection");
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(first[0])
        .execute(&server.pool)
        .await
        .unwrap();
    assert_eq!(get(admin, "/readyz").await.0, 200);
    let replaced = probes().await.unwrap();
    assert_eq!(replaced.len(), 1);
    assert_ne!(replaced, first, "a new connection");

    // The database goes away (the pool is closed under the server).
    server.state.db.close().await;
    assert_eq!(get(admin, "/readyz").await.0, 503);
    assert_eq!(get(admin, "/livez").await.0, 200);
    // The gRPC health service's `liveness` name says the same.
    let mut health = HealthClient::new(server.channel().await);
    let liveness = health
        .check(HealthCheckRequest {
            service: ladder::app::server::LIVENESS_SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(liveness.status, ServingStatus::Serving as i32);
}
