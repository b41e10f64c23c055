//! What the connection pool is doing, for `/metrics`: its size and idle
//! connections (read from the pool at each scrape), the calls waiting for a
//! connection and how long getting one took (kept by [`Db`](super::Db) as
//! it hands connections out).

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use sqlx::PgPool;

use super::warm::WarmConnections;

/// Waits for a connection and their durations.
#[derive(Debug)]
pub(super) struct AcquireStats {
    waiting: Gauge,
    seconds: Histogram,
}

impl Default for AcquireStats {
    fn default() -> Self {
        Self {
            waiting: Gauge::default(),
            // 0.1 ms to 6.5 s: a warm pool answers in microseconds, and the
            // acquire timeout is 10 s.
            seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 9)),
        }
    }
}

impl AcquireStats {
    /// Counts a wait for a connection until the returned guard is dropped,
    /// then records how long it took.
    pub(super) fn wait(&self) -> Waiting<'_> {
        self.waiting.inc();
        Waiting {
            stats: self,
            started: Instant::now(),
        }
    }
}

pub(super) struct Waiting<'a> {
    stats: &'a AcquireStats,
    started: Instant,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.stats.waiting.dec();
        self.stats
            .seconds
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// The pool's connections, read at each scrape.
#[derive(Debug)]
struct PoolConnections {
    pool: PgPool,
    warm: Arc<WarmConnections>,
}

impl Collector for PoolConnections {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauges = [
            (
                "connections",
                "Open connections, idle or in use.",
                i64::from(self.pool.size()),
            ),
            (
                "idle_connections",
                "Open connections not in use (in the pool, or kept for the next scoring call).",
                (self.pool.num_idle() + self.warm.len()) as i64,
            ),
            (
                "max_connections",
                "Largest number of connections the pool opens.",
                i64::from(self.pool.options().get_max_connections()),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// Registers the pool's metrics (`connections`, `idle_connections`,
/// `max_connections`, `waiting`, `acquire_seconds`) in `registry`.
pub(super) fn register(
    registry: &mut Registry,
    pool: &PgPool,
    warm: &Arc<WarmConnections>,
    stats: &Arc<AcquireStats>,
) {
    registry.register_collector(Box::new(PoolConnections {
        pool: pool.clone(),
        warm: Arc::clone(warm),
    }));
    registry.register(
        "waiting",
        "Calls waiting for a connection",
        stats.waiting.clone(),
    );
    registry.register_with_unit(
        "acquire",
        "Time to get a connection from the pool (for a transaction, with its BEGIN), including failed attempts",
        Unit::Seconds,
        stats.seconds.clone(),
    );
}
