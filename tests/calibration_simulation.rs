//! Does calibration help, not only compute? A simulated tenant with known
//! true levels and true rater leniencies (tests/support/rater_simulation.rs):
//! the estimated leniencies must track the true ones, and calibrated m_c must
//! be closer to the true levels than uncalibrated ones. Run with
//! `cargo test --test calibration_simulation -- --nocapture` to see the
//! figures quoted in docs/scoring.md.

#[path = "support/rater_simulation.rs"]
mod rater_simulation;

use chrono::{TimeZone, Utc};
use ladder::domain::calibration::{Rating, RatingSet, calibrate};
use ladder::domain::evidence::{Observation, Source};
use ladder::domain::scoring::{
    Expectation, RaterAdjustments, ScoringPolicy, score_calibrated_unchecked, score_unchecked,
};
use rater_simulation::{Simulation, World, competency_id, rater_id, subject_id};
use uuid::Uuid;

const SIMULATION: Simulation = Simulation {
    subjects: 600,
    competencies: 3,
    raters: 60,
    panel: 3,
    leniency_sd: 0.5,
    noise_sd: 0.5,
    seed: 2025,
};

struct Figures {
    correlation: f64,
    /// RMSE of m_c, the §4 estimate (the prior included).
    rmse_uncalibrated: f64,
    rmse_calibrated: f64,
    /// RMSE of the evidence mean Σ w_e x_e / n_c alone, where the rater
    /// effect is not diluted by the prior.
    mean_rmse_uncalibrated: f64,
    mean_rmse_calibrated: f64,
}

fn evaluate(simulation: &Simulation) -> Figures {
    let world = simulation.run();
    let subjects: Vec<String> = (0..simulation.subjects).map(subject_id).collect();
    let competencies: Vec<String> = (0..simulation.competencies).map(competency_id).collect();
    let raters: Vec<String> = (0..simulation.raters).map(rater_id).collect();

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
    let calibration = calibrate(ratings, ScoringPolicy::default().rater_prior_strength).unwrap();
    assert!(calibration.error_bound <= 1e-9);
    // Rater ids are zero-padded, so id order is simulation order.
    let estimated: Vec<f64> = calibration.raters.iter().map(|r| r.leniency).collect();
    assert_eq!(estimated.len(), simulation.raters);

    let [uncalibrated, calibrated, mean_uncalibrated, mean_calibrated] =
        squared_errors(&world, &competencies, &raters, &calibration);
    Figures {
        correlation: correlation(&estimated, &world.true_leniency),
        rmse_uncalibrated: uncalibrated.sqrt(),
        rmse_calibrated: calibrated.sqrt(),
        mean_rmse_uncalibrated: mean_uncalibrated.sqrt(),
        mean_rmse_calibrated: mean_calibrated.sqrt(),
    }
}

/// Mean squared errors against the true levels of m_c and of the evidence
/// mean, without and with the calibration's adjustments (default policy).
fn squared_errors(
    world: &World,
    competencies: &[String],
    raters: &[String],
    calibration: &ladder::domain::calibration::Calibration,
) -> [f64; 4] {
    let as_of = Utc.with_ymd_and_hms(2025, 6, 30, 0, 0, 0).unwrap();
    let policy = ScoringPolicy::default();
    let effects = calibration.effects();
    let rubric: Vec<Expectation> = competencies
        .iter()
        .map(|id| Expectation {
            competency_id: id.clone(),
            expected_level: 3,
            weight: 1.0,
            critical: false,
        })
        .collect();
    let mut by_subject: Vec<Vec<(Observation, &str)>> = vec![Vec::new(); world.true_levels.len()];
    for (i, r) in world.ratings.iter().enumerate() {
        let observation = Observation {
            id: Uuid::from_u128(i as u128 + 1),
            competency_id: competencies[r.competency].clone(),
            level: r.level,
            source: Source::Peer,
            confidence: r.confidence,
            observed_at: as_of,
        };
        by_subject[r.subject].push((observation, raters[r.rater].as_str()));
    }
    let (mut sums, mut count) = ([0.0; 4], 0.0);
    for (evidence, true_levels) in by_subject.iter().zip(&world.true_levels) {
        let adjustments: RaterAdjustments =
            effects.adjustments(evidence.iter().map(|(o, rater)| (o.id, *rater)));
        let observations: Vec<Observation> = evidence.iter().map(|(o, _)| o.clone()).collect();
        let plain = score_unchecked(&observations, &rubric, &policy, as_of);
        let adjusted =
            score_calibrated_unchecked(&observations, &adjustments, &rubric, &policy, as_of);
        let pairs = plain.competencies.iter().zip(&adjusted.competencies);
        for ((p, a), truth) in pairs.zip(true_levels) {
            let estimates = [
                p.m,
                a.m,
                p.weighted_level_sum / p.n,
                a.weighted_level_sum / a.n,
            ];
            for (sum, estimate) in sums.iter_mut().zip(estimates) {
                *sum += (estimate - truth).powi(2);
            }
            count += 1.0;
        }
    }
    sums.map(|sum| sum / count)
}

fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let covariance: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    covariance / (vx * vy).sqrt()
}

#[test]
fn calibration_recovers_leniency_and_brings_scores_closer_to_the_truth() {
    let figures = evaluate(&SIMULATION);
    println!(
        "600 subjects x 3 competencies, 60 raters, panels of 3: \
         corr(b_r, true leniency) = {:.3}; RMSE of m_c: uncalibrated {:.3}, calibrated {:.3}; \
         RMSE of the evidence mean: uncalibrated {:.3}, calibrated {:.3}",
        figures.correlation,
        figures.rmse_uncalibrated,
        figures.rmse_calibrated,
        figures.mean_rmse_uncalibrated,
        figures.mean_rmse_calibrated
    );
    assert!(figures.correlation > 0.9, "{}", figures.correlation);
    assert!(figures.rmse_calibrated < figures.rmse_uncalibrated);
    assert!(figures.mean_rmse_calibrated < figures.mean_rmse_uncalibrated);
}

#[test]
fn raters_who_agree_get_no_meaningful_correction() {
    // Without true leniencies there is nothing to remove: the estimates stay
    // small and calibrated scores are no worse than a whisker.
    let figures = evaluate(&Simulation {
        leniency_sd: 0.0,
        ..SIMULATION
    });
    println!(
        "same world, no true leniency: RMSE of m_c uncalibrated {:.3}, calibrated {:.3}; \
         of the evidence mean uncalibrated {:.3}, calibrated {:.3}",
        figures.rmse_uncalibrated,
        figures.rmse_calibrated,
        figures.mean_rmse_uncalibrated,
        figures.mean_rmse_calibrated
    );
    assert!(figures.rmse_calibrated < figures.rmse_uncalibrated * 1.02);
}
