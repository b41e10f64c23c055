//! Throughput of the scoring engine: one 16-competency rubric against growing
//! amounts of evidence, with criterion's statistics. `ladder-bench` measures
//! the same inputs for its table (target: ≥ 25 million evidence items per
//! second per core from 1,000 items up, cost linear in the evidence count).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ladder::domain::scoring::{ScoringPolicy, score, score_unchecked};
use std::hint::black_box;

#[path = "../src/bin/ladder_bench/engine_inputs.rs"]
mod engine_inputs;

use engine_inputs::{as_of, evidence, rubric};

fn scoring(c: &mut Criterion) {
    let rubric = rubric();
    let policy = ScoringPolicy::default();
    let mut group = c.benchmark_group("score");
    for count in [10, 100, 1_000, 10_000] {
        let evidence = evidence(count);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(
            BenchmarkId::new("validated", count),
            &evidence,
            |b, evidence| b.iter(|| score(black_box(evidence), &rubric, &policy, as_of()).unwrap()),
        );
        group.bench_with_input(
            BenchmarkId::new("unchecked", count),
            &evidence,
            |b, evidence| {
                b.iter(|| score_unchecked(black_box(evidence), &rubric, &policy, as_of()))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, scoring);
criterion_main!(benches);
