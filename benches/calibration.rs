//! Rater calibration at the size SPEC §10 is built for: a tenant with
//! 1,000,000 ratings from 10,000 raters (50,000 people × 4 competencies,
//! panels of 5 raters drawn at random). One iteration is a whole run: interning
//! the ratings as they would stream from storage, and the estimate.
//! Target: seconds on one core.

// The bench reads only the ratings, not the truth they were drawn from.
#[allow(dead_code)]
#[path = "../tests/support/rater_simulation.rs"]
mod rater_simulation;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ladder::domain::calibration::{Rating, RatingSet, calibrate};
use rater_simulation::{Simulation, competency_id, rater_id, subject_id};

const TENANT: Simulation = Simulation {
    subjects: 50_000,
    competencies: 4,
    raters: 10_000,
    panel: 5,
    leniency_sd: 0.5,
    noise_sd: 0.5,
    seed: 7,
};

fn calibration(c: &mut Criterion) {
    let world = TENANT.run();
    let subjects: Vec<String> = (0..TENANT.subjects).map(subject_id).collect();
    let competencies: Vec<String> = (0..TENANT.competencies).map(competency_id).collect();
    let raters: Vec<String> = (0..TENANT.raters).map(rater_id).collect();
    let run = || {
        let mut ratings = RatingSet::new();
        for r in &world.ratings {
            ratings
                .push(Rating {
                    subject_id: &subjects[r.subject],
                    competency_id: &competencies[r.competency],
                    rater_id: &raters[r.rater],
                    level: r.level,
                    confidence: r.confidence,
                })
                .unwrap();
        }
        calibrate(ratings, 5.0).unwrap()
    };
    let result = run();
    println!(
        "{} ratings, {} raters: {} CG iterations, certified error {:.1e}",
        result.ratings,
        result.raters.len(),
        result.iterations,
        result.error_bound
    );
    let mut group = c.benchmark_group("calibrate");
    group.sample_size(10);
    group.bench_function("1M_ratings_10k_raters", |b| b.iter(|| black_box(run())));
    group.finish();
}

criterion_group!(benches, calibration);
criterion_main!(benches);
