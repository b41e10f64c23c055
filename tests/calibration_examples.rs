//! Worked examples: the rater calibration estimator against
//! tests/data/calibration_cases.json, whose expected numbers come from
//! tests/data/calibration_reference.py — a stdlib-only Python direct solve of
//! the full normal equations of SPEC §10 in exact rational arithmetic, never
//! from the estimator. After editing a case, rerun
//! `python3 tests/data/calibration_reference.py`. Numbers must agree within 1e-9.

use ladder::domain::calibration::{Rating, RatingSet, calibrate};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Suite {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    rater_prior_strength: f64,
    ratings: Vec<RatingRow>,
    expected: Expected,
}

#[derive(Deserialize)]
struct RatingRow {
    subject_id: String,
    competency_id: String,
    rater_id: String,
    level: f64,
    confidence: f64,
}

#[derive(Deserialize)]
struct Expected {
    ratings: u64,
    cells: u64,
    subjects: u64,
    residual_scale: f64,
    raters: Vec<ExpectedRater>,
}

#[derive(Deserialize)]
struct ExpectedRater {
    rater_id: String,
    leniency: f64,
    ratings: u64,
    weight: f64,
    overlap: u64,
    standard_error: f64,
}

fn suite() -> Suite {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/calibration_cases.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_close(what: &str, actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= TOLERANCE,
        "{what}: {actual} differs from the reference {expected}"
    );
}

#[test]
fn estimator_matches_the_direct_solve() {
    let suite = suite();
    assert!(suite.cases.len() >= 8);
    for case in &suite.cases {
        let mut ratings = RatingSet::new();
        for row in &case.ratings {
            ratings
                .push(Rating {
                    subject_id: &row.subject_id,
                    competency_id: &row.competency_id,
                    rater_id: &row.rater_id,
                    level: row.level,
                    confidence: row.confidence,
                })
                .unwrap();
        }
        let actual = calibrate(ratings, case.rater_prior_strength).unwrap();
        let expected = &case.expected;
        let name = &case.name;
        assert_eq!(
            (actual.ratings, actual.cells, actual.subjects),
            (expected.ratings, expected.cells, expected.subjects),
            "{name}: counts"
        );
        assert!(
            actual.error_bound <= 1e-11,
            "{name}: {}",
            actual.error_bound
        );
        assert_close(
            &format!("{name}: s"),
            actual.residual_scale,
            expected.residual_scale,
        );
        let ids: Vec<&str> = actual.raters.iter().map(|r| r.rater_id.as_str()).collect();
        let expected_ids: Vec<&str> = expected
            .raters
            .iter()
            .map(|r| r.rater_id.as_str())
            .collect();
        assert_eq!(ids, expected_ids, "{name}: raters");
        for (rater, reference) in actual.raters.iter().zip(&expected.raters) {
            let what = |field: &str| format!("{name}: {} {field}", rater.rater_id);
            assert_close(&what("b_r"), rater.leniency, reference.leniency);
            assert_close(&what("omega_r"), rater.weight, reference.weight);
            assert_close(
                &what("se_r"),
                rater.standard_error,
                reference.standard_error,
            );
            assert_eq!(
                (rater.ratings, rater.overlap),
                (reference.ratings, reference.overlap),
                "{}",
                what("k_r, overlap_r")
            );
            if reference.overlap == 0 {
                assert_eq!(rater.leniency, 0.0, "{}", what("isolated b_r"));
            }
        }
    }
}
