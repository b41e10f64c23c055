//! The scoring engine in-process, on one thread (so one core): the public
//! `score` (validation included, as the service calls it) of one
//! 16-competency rubric against growing amounts of evidence.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ladder::domain::evidence::Observation;
use ladder::domain::scoring::{ScoringPolicy, score};

use crate::Failure;
use crate::engine_inputs::{as_of, rubric};
use crate::load::{Measured, histogram, record};

/// Evidence counts measured: "from 1,000 items up".
pub const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// One `Measured` per size, of the evidence `inputs` makes: operations are
/// evidence items scored, the latency is that of one `score` call.
pub fn measure(
    warmup: Duration,
    duration: Duration,
    inputs: fn(usize) -> Vec<Observation>,
    sizes: &[usize],
) -> Result<Vec<(usize, Measured)>, Failure> {
    let rubric = rubric();
    let policy = ScoringPolicy::default();
    let mut results = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let evidence = inputs(size);
        let run = |duration: Duration| -> Result<Measured, Failure> {
            let mut latency = histogram();
            let mut calls = 0u64;
            let start = Instant::now();
            while start.elapsed() < duration {
                let started = Instant::now();
                let scored = score(black_box(&evidence), &rubric, &policy, as_of())
                    .map_err(|e| format!("the engine refused its inputs: {e:?}"))?;
                black_box(scored);
                record(&mut latency, started);
                calls += 1;
            }
            Ok(Measured {
                operations: calls * size as u64,
                elapsed: start.elapsed(),
                latency,
            })
        };
        run(warmup)?;
        results.push((size, run(duration)?));
    }
    Ok(results)
}
