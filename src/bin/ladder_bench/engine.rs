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

/// Turns each case's measurement is split into, taken in turn with the
/// other cases': the host's speed drifts by a third within minutes, and
/// measured one after the other the cases would each see a different
/// stretch of it (a case measured first once read 20 M items/s against
/// 27-30 M/s minutes before).
const TURNS: u32 = 6;

/// What makes a given amount of evidence.
pub type Inputs = fn(usize) -> Vec<Observation>;

/// One `Measured` per case (an evidence count and what makes that much
/// evidence), in the cases' order: operations are evidence items scored,
/// the latency is that of one `score` call. The cases are measured in
/// [`TURNS`] alternating turns, and each case's turns are added up.
pub fn measure(
    warmup: Duration,
    duration: Duration,
    cases: &[(usize, Inputs)],
) -> Result<Vec<Measured>, Failure> {
    let rubric = rubric();
    let policy = ScoringPolicy::default();
    let inputs: Vec<(usize, Vec<Observation>)> = cases
        .iter()
        .map(|&(size, make)| (size, make(size)))
        .collect();
    let run = |evidence: &[Observation], duration: Duration| -> Result<Measured, Failure> {
        let mut latency = histogram();
        let mut calls = 0u64;
        let start = Instant::now();
        while start.elapsed() < duration {
            let started = Instant::now();
            let scored = score(black_box(evidence), &rubric, &policy, as_of())
                .map_err(|e| format!("the engine refused its inputs: {e:?}"))?;
            black_box(scored);
            record(&mut latency, started);
            calls += 1;
        }
        Ok(Measured {
            operations: calls * evidence.len() as u64,
            elapsed: start.elapsed(),
            latency,
        })
    };
    for (_, evidence) in &inputs {
        run(evidence, warmup)?;
    }
    let turn = duration / TURNS;
    let mut results = inputs
        .iter()
        .map(|(_, evidence)| run(evidence, turn))
        .collect::<Result<Vec<_>, _>>()?;
    for _ in 1..TURNS {
        for ((_, evidence), result) in inputs.iter().zip(&mut results) {
            result.add(run(evidence, turn)?)?;
        }
    }
    Ok(results)
}
