//! Metrics about the process rather than its calls, computed when scraped:
//!
//! | metric | what |
//! | --- | --- |
//! | `ladder_build_info{version, revision}` | always 1; the labels say which build runs |
//! | `process_cpu_seconds_total` | user and system CPU time |
//! | `process_resident_memory_bytes`, `process_virtual_memory_bytes` | memory |
//! | `process_open_fds`, `process_max_fds` | file descriptors open, and the limit |
//! | `process_threads` | operating-system threads |
//! | `process_start_time_seconds` | when the process started, in Unix seconds |
//!
//! The `process_*` names are the ones Prometheus' own client libraries use,
//! so existing dashboards apply. They are read from `/proc/self` (Linux): a
//! few small files per scrape; elsewhere they are left out.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// The version this binary was built from, and the source revision when the
/// build said (`LADDER_REVISION`, as the Dockerfile's `REVISION` argument sets it).
#[derive(Debug)]
pub struct BuildInfo;

const REVISION: &str = match option_env!("LADDER_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

impl Collector for BuildInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let labels = [
            ("version", env!("CARGO_PKG_VERSION")),
            ("revision", REVISION),
        ];
        let mut metric = encoder.encode_descriptor(
            "build_info",
            "Which build of Ladder runs: always 1, with its version and source revision",
            None,
            MetricType::Gauge,
        )?;
        metric.encode_family(&labels)?.encode_gauge(&1i64)
    }
}

/// The process' resources, read from `/proc/self` at each scrape.
#[derive(Debug)]
pub struct ProcessCollector {
    /// When the process started, in Unix seconds (it does not change).
    start_time: Option<f64>,
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessCollector {
    pub fn new() -> Self {
        let start_time = Stat::read().and_then(|stat| {
            let boot = std::fs::read_to_string("/proc/stat").ok()?;
            let boot: f64 = boot
                .lines()
                .find_map(|line| line.strip_prefix("btime "))?
                .trim()
                .parse()
                .ok()?;
            Some(boot + stat.start_ticks / clock_ticks()?)
        });
        Self { start_time }
    }
}

/// The fields of `/proc/self/stat` exported.
struct Stat {
    cpu_ticks: f64,
    threads: i64,
    start_ticks: f64,
    virtual_bytes: i64,
    resident_pages: i64,
}

impl Stat {
    fn read() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // After the command name, which is in parentheses and may hold spaces:
        // the fields from the third (state) on.
        let (_, rest) = text.rsplit_once(") ")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<i64>().ok());
        Some(Self {
            cpu_ticks: (field(14)? + field(15)?) as f64,
            threads: field(20)?,
            start_ticks: field(22)? as f64,
            virtual_bytes: field(23)?,
            resident_pages: field(24)?,
        })
    }
}

fn clock_ticks() -> Option<f64> {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then_some(ticks as f64)
}

fn page_size() -> Option<i64> {
    // SAFETY: sysconf reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (size > 0).then_some(size as i64)
}

fn max_fds() -> Option<i64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limit into `limit`, which we own.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then(|| i64::try_from(limit.rlim_cur).ok())?
}

fn open_fds() -> Option<i64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // Less the descriptor read_dir itself holds open.
    Some(entries.count() as i64 - 1)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Option<impl Into<f64>>,
) -> Result<(), fmt::Error> {
    let Some(value) = value else { return Ok(()) };
    let gauge = ConstGauge::new(value.into());
    gauge.encode(encoder.encode_descriptor(name, help, unit, gauge.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let stat = Stat::read();
        if let (Some(stat), Some(ticks)) = (&stat, clock_ticks()) {
            let counter = ConstCounter::new(stat.cpu_ticks / ticks);
            counter.encode(encoder.encode_descriptor(
                "process_cpu",
                "User and system CPU time spent",
                Some(&Unit::Seconds),
                counter.metric_type(),
            )?)?;
        }
        let resident = stat
            .as_ref()
            .zip(page_size())
            .map(|(stat, page)| (stat.resident_pages * page) as f64);
        gauge(
            &mut encoder,
            "process_resident_memory",
            "Resident memory size",
            Some(&Unit::Bytes),
            resident,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory",
            "Virtual memory size",
            Some(&Unit::Bytes),
            stat.as_ref().map(|stat| stat.virtual_bytes as f64),
        )?;
        gauge(
            &mut encoder,
            "process_threads",
            "Operating-system threads",
            None,
            stat.as_ref().map(|stat| stat.threads as f64),
        )?;
        gauge(
            &mut encoder,
            "process_open_fds",
            "Open file descriptors",
            None,
            open_fds().map(|n| n as f64),
        )?;
        gauge(
            &mut encoder,
            "process_max_fds",
            "Limit on open file descriptors",
            None,
            max_fds().map(|n| n as f64),
        )?;
        gauge(
            &mut encoder,
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Some(&Unit::Seconds),
            self.start_time,
        )
    }
}
