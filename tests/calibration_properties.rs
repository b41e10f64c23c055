//! Properties of the rater calibration estimator (SPEC §10) on random inputs:
//! the optimality conditions hold at the returned solution, the result does
//! not depend on the order of the ratings, and raters who share no cell get 0.

use std::collections::{BTreeMap, BTreeSet};

use ladder::domain::calibration::{Calibration, Rating, RatingSet, calibrate};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Row {
    subject: String,
    competency: String,
    rater: String,
    level: f64,
    confidence: f64,
}

fn rows_strategy() -> impl Strategy<Value = Vec<Row>> {
    let row = (0..6u8, 0..2u8, 0..7u8, 1.0..=5.0_f64, 0.05..=1.0_f64).prop_map(
        |(subject, competency, rater, level, confidence)| Row {
            subject: format!("s{subject}"),
            competency: format!("c{competency}"),
            rater: format!("r{rater}"),
            level,
            confidence,
        },
    );
    prop::collection::vec(row, 0..60)
}

fn run(rows: &[Row], lambda: f64) -> Calibration {
    let mut ratings = RatingSet::new();
    for row in rows {
        ratings
            .push(Rating {
                subject_id: &row.subject,
                competency_id: &row.competency,
                rater_id: &row.rater,
                level: row.level,
                confidence: row.confidence,
            })
            .unwrap();
    }
    calibrate(ratings, lambda).unwrap()
}

type Cell<'a> = (&'a str, &'a str);

fn cell(row: &Row) -> Cell<'_> {
    (&row.subject, &row.competency)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// At the returned b, with θ_sc = Σ ω (y − b) / Σ ω, the b-update of SPEC
    /// §10 gives b back. Its change times (λ + ω_r) is the residual of the
    /// reduced normal equations, and the error is at most that residual / λ
    /// (the system is diagonally dominant by λ), so this also proves every b_r
    /// is within 1e-9 of the minimiser.
    #[test]
    fn optimality_conditions_hold(rows in rows_strategy(), lambda in 0.05..20.0_f64) {
        let calibration = run(&rows, lambda);
        let b: BTreeMap<&str, f64> = calibration
            .raters
            .iter()
            .map(|r| (r.rater_id.as_str(), r.leniency))
            .collect();
        let mut theta_sums: BTreeMap<Cell, (f64, f64)> = BTreeMap::new();
        for row in &rows {
            let sums = theta_sums.entry(cell(row)).or_default();
            sums.0 += row.confidence * (row.level - b[row.rater.as_str()]);
            sums.1 += row.confidence;
        }
        let theta = |row: &Row| {
            let (sum, weight) = theta_sums[&cell(row)];
            sum / weight
        };
        let mut b_sums: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        let mut squares = 0.0;
        let mut total = 0.0;
        for row in &rows {
            let sums = b_sums.entry(&row.rater).or_default();
            sums.0 += row.confidence * (row.level - theta(row));
            sums.1 += row.confidence;
            squares += row.confidence * (row.level - theta(row) - b[row.rater.as_str()]).powi(2);
            total += row.confidence;
        }
        let mut worst_error = 0.0_f64;
        for rater in &calibration.raters {
            let (sum, omega) = b_sums[rater.rater_id.as_str()];
            let updated = sum / (lambda + omega);
            worst_error = worst_error.max((updated - rater.leniency).abs() * (lambda + omega) / lambda);
            prop_assert!((rater.weight - omega).abs() <= 1e-12 * omega.max(1.0));
        }
        prop_assert!(worst_error <= 1e-9, "certified error {worst_error}");
        prop_assert!(calibration.error_bound <= 1e-9);

        // Summing the normal equations over raters: λ Σ_r b_r = 0.
        let total_leniency: f64 = calibration.raters.iter().map(|r| r.leniency).sum();
        prop_assert!(total_leniency.abs() <= 1e-9);

        let s = if total > 0.0 { (squares / total).sqrt() } else { 0.0 };
        prop_assert!((calibration.residual_scale - s).abs() <= 1e-9);
        for rater in &calibration.raters {
            let se = calibration.residual_scale / (lambda + rater.weight).sqrt();
            prop_assert!((rater.standard_error - se).abs() <= 1e-15);
        }
    }

    #[test]
    fn order_of_the_ratings_changes_no_bit(
        (rows, shuffled) in rows_strategy().prop_flat_map(|rows| {
            let shuffled = Just(rows.clone()).prop_shuffle();
            (Just(rows), shuffled)
        }),
        lambda in 0.05..20.0_f64,
    ) {
        prop_assert_eq!(run(&rows, lambda), run(&shuffled, lambda));
    }

    /// k_r, overlap_r as counted directly; b_r = 0 exactly for a rater who
    /// shares no cell with another rater.
    #[test]
    fn counts_and_isolated_raters(rows in rows_strategy(), lambda in 0.05..20.0_f64) {
        let calibration = run(&rows, lambda);
        let mut raters_of: BTreeMap<Cell, BTreeSet<&str>> = BTreeMap::new();
        for row in &rows {
            raters_of.entry(cell(row)).or_default().insert(&row.rater);
        }
        for rater in &calibration.raters {
            let id = rater.rater_id.as_str();
            let ratings = rows.iter().filter(|r| r.rater == id).count() as u64;
            let overlap = raters_of
                .values()
                .filter(|raters| raters.contains(id) && raters.len() > 1)
                .count() as u64;
            prop_assert_eq!((rater.ratings, rater.overlap), (ratings, overlap));
            if overlap == 0 {
                prop_assert_eq!(rater.leniency, 0.0);
            }
        }
        prop_assert_eq!(calibration.ratings, rows.len() as u64);
        prop_assert_eq!(calibration.cells, raters_of.len() as u64);
    }
}
