//! The service's Prometheus metrics, one registry per server (so servers
//! in one process, as in the tests, keep their own counts), served as text
//! on the admin port's `/metrics` (`app::admin`). Names follow Prometheus
//! conventions: a `ladder_` prefix, the unit in the name, `_total` on
//! counters (added by the encoder to the names registered here).
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `ladder_rpc_requests_total` | `grpc_service`, `grpc_method`, `grpc_code` | calls finished |
//! | `ladder_rpc_duration_seconds` | `grpc_service`, `grpc_method` | histogram of call latency |
//! | `ladder_rpc_in_flight` | `grpc_service`, `grpc_method` | calls being served |
//! | `ladder_rpc_shed_total` | | calls refused by load shedding ([`Metrics::record_shed`]) |
//! | `ladder_evidence_ingested_total` | | evidence rows stored by BatchCreateEvidence |
//! | `ladder_db_pool_*` | | the connection pool (`storage::pool_metrics`) |
//! | `ladder_build_info`, `process_*` | | the build and the process (`transport::process_metrics`) |

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tonic::Code;

use crate::storage::Db;
use crate::transport::pipeline::Method;
use crate::transport::process_metrics::{BuildInfo, ProcessCollector};

/// Latency buckets, 1 ms to 10 s.
const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: &'static str,
    grpc_method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    grpc_service: &'static str,
    grpc_method: &'static str,
    grpc_code: &'static str,
}

type HistogramFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// The metrics of one server; cheap to clone, all clones count together.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Instruments>,
}

#[derive(Debug)]
struct Instruments {
    registry: Registry,
    requests: Family<CallLabels, Counter>,
    duration: HistogramFamily,
    in_flight: Family<MethodLabels, Gauge>,
    shed: Counter,
    evidence_ingested: Counter,
}

impl Metrics {
    /// The service's metrics and those of `db`'s connection pool.
    pub fn new(db: &Db) -> Self {
        // The process' metrics go by the names every Prometheus client
        // gives them; the service's own under `ladder_`.
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector::new()));
        let ladder = registry.sub_registry_with_prefix("ladder");
        ladder.register_collector(Box::new(BuildInfo));
        let requests = Family::<CallLabels, Counter>::default();
        let duration: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        let in_flight = Family::<MethodLabels, Gauge>::default();
        let shed = Counter::default();
        let evidence_ingested = Counter::default();
        let rpc = ladder.sub_registry_with_prefix("rpc");
        rpc.register(
            "requests",
            "Calls finished, by method and gRPC status code",
            requests.clone(),
        );
        rpc.register_with_unit(
            "duration",
            "Time from the call reaching its handler to its answer, by method",
            Unit::Seconds,
            duration.clone(),
        );
        rpc.register("in_flight", "Calls being served", in_flight.clone());
        rpc.register(
            "shed",
            "Calls refused because the server was overloaded",
            shed.clone(),
        );
        ladder.sub_registry_with_prefix("evidence").register(
            "ingested",
            "Evidence rows stored (items already stored are not counted again)",
            evidence_ingested.clone(),
        );
        db.register_metrics(ladder.sub_registry_with_prefix("db_pool"));
        db.register_replica_metrics(ladder.sub_registry_with_prefix("db_replica"));
        Self {
            inner: Arc::new(Instruments {
                registry,
                requests,
                duration,
                in_flight,
                shed,
                evidence_ingested,
            }),
        }
    }

    /// Counts a call refused by load shedding (`ladder_rpc_shed_total`).
    pub fn record_shed(&self) {
        self.inner.shed.inc();
    }

    /// Counts evidence rows stored (`ladder_evidence_ingested_total`).
    pub fn record_evidence_ingested(&self, rows: u64) {
        self.inner.evidence_ingested.inc_by(rows);
    }

    /// Starts timing a call of `method`; it is in flight until the returned
    /// timer is finished or dropped.
    pub(crate) fn start(&self, method: Method) -> CallTimer {
        let labels = MethodLabels {
            grpc_service: method.service(),
            grpc_method: method.short_name(),
        };
        // The call's own handles (clones share the count): its end looks up
        // only its code's counter.
        let in_flight = self.inner.in_flight.get_or_create(&labels).clone();
        in_flight.inc();
        CallTimer {
            metrics: self.clone(),
            duration: self.inner.duration.get_or_create(&labels).clone(),
            in_flight,
            labels,
            started: Instant::now(),
            code: None,
        }
    }

    /// The metrics in the Prometheus (OpenMetrics) text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// One call being served. A call dropped before it finished (its client
/// went away or its deadline passed) is counted as `CANCELLED`.
#[derive(Debug)]
pub(crate) struct CallTimer {
    metrics: Metrics,
    in_flight: Gauge,
    duration: Histogram,
    labels: MethodLabels,
    started: Instant,
    code: Option<Code>,
}

impl CallTimer {
    pub(crate) fn finish(mut self, code: Code) {
        self.code = Some(code);
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        self.in_flight.dec();
        self.duration.observe(self.started.elapsed().as_secs_f64());
        let code = self.code.unwrap_or(Code::Cancelled);
        self.metrics
            .inner
            .requests
            .get_or_create(&CallLabels {
                grpc_service: self.labels.grpc_service,
                grpc_method: self.labels.grpc_method,
                grpc_code: code_name(code),
            })
            .inc();
    }
}

/// The code as gRPC writes it (`NOT_FOUND`).
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
