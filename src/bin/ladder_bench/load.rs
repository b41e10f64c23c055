//! The closed-loop load generator: each caller sends one request, waits for
//! its answer and sends the next, for a warm-up and then for the measured
//! time; every call's latency goes into an HDR histogram.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::Failure;

/// What a measurement saw: completed operations over the elapsed time, and
/// the latency of each (in microseconds).
pub struct Measured {
    pub operations: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0.5 for the median), in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1_000.0
    }
}

/// An empty histogram of latencies from 1 µs to 10 minutes, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

pub fn record(histogram: &mut Histogram<u64>, started: Instant) {
    histogram.saturating_record(started.elapsed().as_micros().max(1) as u64);
}

/// Runs `call(caller, n)` (n = 0, 1, 2, ... across all callers) from every
/// caller at once, each waiting for its answer before its next call: first for
/// `warmup` (not recorded), then for `measure`. The first failed call ends the
/// measurement with its error.
pub async fn closed_loop<C, F, Fut>(
    callers: &[C],
    warmup: Duration,
    measure: Duration,
    call: F,
) -> Result<Measured, Failure>
where
    C: Clone + Send + 'static,
    F: Fn(C, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicU64::new(0));
    phase(callers, &call, &next, warmup).await?;
    phase(callers, &call, &next, measure).await
}

/// Like [`closed_loop`] for two workloads, `a` and `b`, measured in
/// `slices` alternating turns of `measure / slices` each (after a warm-up of
/// each): on a shared machine whose speed drifts, both see the same stretches
/// of it, so the ratio of the two compares the workloads, not the moments.
pub async fn alternating<C, FA, FutA, FB, FutB>(
    callers: &[C],
    warmup: Duration,
    measure: Duration,
    slices: u32,
    a: FA,
    b: FB,
) -> Result<(Measured, Measured), Failure>
where
    C: Clone + Send + 'static,
    FA: Fn(C, u64) -> FutA + Send + Sync + 'static,
    FutA: Future<Output = Result<(), Failure>> + Send + 'static,
    FB: Fn(C, u64) -> FutB + Send + Sync + 'static,
    FutB: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let (a, b) = (Arc::new(a), Arc::new(b));
    let next = Arc::new(AtomicU64::new(0));
    phase(callers, &a, &next, warmup).await?;
    phase(callers, &b, &next, warmup).await?;
    let slice = measure / slices;
    let mut measured_a = phase(callers, &a, &next, slice).await?;
    let mut measured_b = phase(callers, &b, &next, slice).await?;
    for _ in 1..slices {
        measured_a.add(phase(callers, &a, &next, slice).await?)?;
        measured_b.add(phase(callers, &b, &next, slice).await?)?;
    }
    Ok((measured_a, measured_b))
}

impl Measured {
    /// Adds another measurement of the same workload (a later turn).
    pub fn add(&mut self, other: Measured) -> Result<(), Failure> {
        self.operations += other.operations;
        self.elapsed += other.elapsed;
        self.latency.add(other.latency)?;
        Ok(())
    }
}

/// Every caller calling for `duration`: what they did in that time.
async fn phase<C, F, Fut>(
    callers: &[C],
    call: &Arc<F>,
    next: &Arc<AtomicU64>,
    duration: Duration,
) -> Result<Measured, Failure>
where
    C: Clone + Send + 'static,
    F: Fn(C, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = callers
        .iter()
        .map(|caller| {
            let (caller, call, next) = (caller.clone(), call.clone(), next.clone());
            tokio::spawn(async move {
                let mut latency = histogram();
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let started = Instant::now();
                    call(caller.clone(), n).await?;
                    record(&mut latency, started);
                    done += 1;
                }
                Ok::<_, Failure>((done, latency))
            })
        })
        .collect();
    let mut operations = 0;
    let mut latency = histogram();
    for task in tasks {
        let (done, seen) = task.await??;
        operations += done;
        latency.add(seen)?;
    }
    Ok(Measured {
        operations,
        elapsed: start.elapsed(),
        latency,
    })
}
