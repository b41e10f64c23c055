//! Rater calibration through the API (SPEC §10): runs against the
//! independent reference of tests/data/calibration_reference.py, the window,
//! scoring with and without calibration, stored assessments citing theirs,
//! paging, tenancy, bad parameters and `ladder calibrate`.

use std::collections::HashMap;
use std::process::Command;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ladder::domain::calibration::{Rating, RatingSet, calibrate};
use ladder::proto::v1::explain_assessment_request::Target;
use ladder::proto::v1::{
    Assessment, BatchCreateEvidenceRequest, Calibration, ComputeImpactReportRequest,
    CreateAssessmentRequest, DryRunAssessment, Evidence, EvidenceSource, ExplainAssessmentRequest,
    GetAssessmentRequest, GetCalibrationRequest, GroupLabel, ListCalibrationsRequest,
    ListRaterEffectsRequest, RaterEffect, ReadinessBand, RecommendRequest, RunCalibrationRequest,
    ScoringPolicy, UpdateScoringPolicyRequest, WhatIfRequest,
};
use serde::Deserialize;
use tonic::Code;

use crate::harness::{Clients, TestServer, bad_fields, evidence, ladder_bin, timestamp, token};

const TOLERANCE: f64 = 1e-9;
const ROLE: &str = "senior_engineer";
const COMPETENCY: &str = "system_design";
/// The person whose raters do not cancel out (see `three_raters`).
const UNBALANCED: &str = "emp-9";

fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// One rating as evidence: a manager observation with a rater, a day before `as_of()`.
fn rated(subject: &str, competency: &str, rater: &str, level: f64, key: &str) -> Evidence {
    Evidence {
        rater_id: rater.into(),
        ..evidence(
            subject,
            competency,
            level,
            EvidenceSource::Manager,
            as_of() - Duration::days(1),
            key,
        )
    }
}

async fn ingest(c: &mut Clients, evidence: Vec<Evidence>) -> Vec<Evidence> {
    c.assessment
        .batch_create_evidence(BatchCreateEvidenceRequest { evidence })
        .await
        .unwrap()
        .into_inner()
        .evidence
}

async fn run(c: &mut Clients, lambda: Option<f64>) -> Calibration {
    c.calibration
        .run_calibration(RunCalibrationRequest {
            as_of: Some(timestamp(as_of())),
            window_days: None,
            rater_prior_strength: lambda,
        })
        .await
        .unwrap()
        .into_inner()
        .calibration
        .unwrap()
}

/// Every effect of a calibration, page by page, in `order_by`.
async fn effects(c: &mut Clients, id: &str, order_by: &str, page_size: i32) -> Vec<RaterEffect> {
    let (mut all, mut page_token) = (Vec::new(), String::new());
    loop {
        let page = c
            .calibration
            .list_rater_effects(ListRaterEffectsRequest {
                calibration_id: id.into(),
                page_size,
                page_token,
                order_by: order_by.into(),
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.rater_effects);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn set_calibration(c: &mut Clients, on: bool) {
    c.assessment
        .update_scoring_policy(UpdateScoringPolicyRequest {
            policy: Some(ScoringPolicy {
                rater_calibration: on,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["rater_calibration".into()],
            }),
        })
        .await
        .unwrap();
}

async fn assess(c: &mut Clients, subject: &str, validate_only: bool) -> Assessment {
    assess_against(c, subject, ROLE, validate_only).await
}

async fn assess_against(
    c: &mut Clients,
    subject: &str,
    role: &str,
    validate_only: bool,
) -> Assessment {
    c.assessment
        .create_assessment(CreateAssessmentRequest {
            subject_id: subject.into(),
            role_id: role.into(),
            as_of: Some(timestamp(as_of())),
            validate_only,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap()
}

/// An assessment's numbers, without what differs between two calls.
fn numbers(a: &Assessment) -> Assessment {
    Assessment {
        id: String::new(),
        create_time: None,
        ..a.clone()
    }
}

// The reference cases of tests/data/calibration_cases.json.

#[derive(Deserialize)]
struct Suite {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    rater_prior_strength: f64,
    ratings: Vec<ReferenceRating>,
    expected: Expected,
}

#[derive(Deserialize)]
struct ReferenceRating {
    subject_id: String,
    competency_id: String,
    rater_id: String,
    level: f64,
    confidence: f64,
}

#[derive(Deserialize)]
struct Expected {
    ratings: i64,
    cells: i64,
    subjects: i64,
    residual_scale: f64,
    raters: Vec<ExpectedRater>,
}

#[derive(Deserialize)]
struct ExpectedRater {
    rater_id: String,
    leniency: f64,
    ratings: i64,
    weight: f64,
    overlap: i64,
    standard_error: f64,
}

fn suite() -> Suite {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/calibration_cases.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The reference's competencies as the built-in framework names them.
fn builtin_competency(reference: &str) -> &str {
    match reference {
        "delivery" => "delivery_coordination",
        other => other,
    }
}

fn close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= TOLERANCE,
        "{what}: {actual} vs {expected}"
    );
}

#[tokio::test]
async fn a_run_through_the_api_equals_the_reference_and_the_estimator() {
    let server = TestServer::start().await;
    for case in suite().cases.into_iter().filter(|c| !c.ratings.is_empty()) {
        let mut c = server.clients(&format!("ref-{}", case.name)).await;
        let items = case
            .ratings
            .iter()
            .enumerate()
            .map(|(i, r)| Evidence {
                confidence: Some(r.confidence),
                ..rated(
                    &r.subject_id,
                    builtin_competency(&r.competency_id),
                    &r.rater_id,
                    r.level,
                    &format!("{}-{i}", case.name),
                )
            })
            .collect();
        ingest(&mut c, items).await;
        let calibration = run(&mut c, Some(case.rater_prior_strength)).await;
        let name = &case.name;
        assert_eq!(
            (
                calibration.rating_count,
                calibration.cell_count,
                calibration.subject_count,
                calibration.rater_count
            ),
            (
                case.expected.ratings,
                case.expected.cells,
                case.expected.subjects,
                case.expected.raters.len() as i64
            ),
            "{name}"
        );
        assert_eq!(calibration.window_days, 730, "{name}: the policy's default");
        close(
            calibration.residual_scale,
            case.expected.residual_scale,
            name,
        );
        let listed = effects(&mut c, &calibration.id, "rater_id", 0).await;
        assert_eq!(listed.len(), case.expected.raters.len(), "{name}");
        for (effect, expected) in listed.iter().zip(&case.expected.raters) {
            let what = format!("{name} {}", expected.rater_id);
            assert_eq!(effect.rater_id, expected.rater_id, "{what}");
            assert_eq!(
                (effect.rating_count, effect.overlap),
                (expected.ratings, expected.overlap),
                "{what}"
            );
            close(effect.leniency, expected.leniency, &what);
            close(effect.weight, expected.weight, &what);
            close(effect.standard_error, expected.standard_error, &what);
        }

        // The estimator on the same ratings gives the very same numbers.
        let mut ratings = RatingSet::new();
        for r in &case.ratings {
            ratings
                .push(Rating {
                    subject_id: &r.subject_id,
                    competency_id: builtin_competency(&r.competency_id),
                    rater_id: &r.rater_id,
                    level: r.level,
                    confidence: r.confidence,
                })
                .unwrap();
        }
        let domain = calibrate(ratings, case.rater_prior_strength).unwrap();
        assert_eq!(calibration.residual_scale, domain.residual_scale, "{name}");
        assert_eq!(calibration.error_bound, domain.error_bound, "{name}");
        for (effect, expected) in listed.iter().zip(&domain.raters) {
            assert_eq!(
                (
                    effect.rater_id.as_str(),
                    effect.leniency,
                    effect.rating_count as u64,
                    effect.weight,
                    effect.overlap as u64,
                    effect.standard_error
                ),
                (
                    expected.rater_id.as_str(),
                    expected.leniency,
                    expected.ratings,
                    expected.weight,
                    expected.overlap,
                    expected.standard_error
                ),
                "{name}"
            );
        }
    }
}

#[tokio::test]
async fn the_window_is_open_at_its_start_and_closed_at_as_of() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let at = |t: DateTime<Utc>, rater: &str, key: &str| Evidence {
        observed_at: Some(timestamp(t)),
        ..rated("emp-1", COMPETENCY, rater, 3.0, key)
    };
    let start = as_of() - Duration::days(10);
    let micro = Duration::microseconds(1);
    ingest(
        &mut c,
        vec![
            at(start, "at-start", "w-1"),
            at(start + micro, "just-inside", "w-2"),
            at(as_of(), "at-as-of", "w-3"),
            at(as_of() + micro, "after-as-of", "w-4"),
            at(as_of(), "", "w-5"),
        ],
    )
    .await;
    let calibration = c
        .calibration
        .run_calibration(RunCalibrationRequest {
            as_of: Some(timestamp(as_of())),
            window_days: Some(10),
            rater_prior_strength: None,
        })
        .await
        .unwrap()
        .into_inner()
        .calibration
        .unwrap();
    assert_eq!(
        (calibration.window_days, calibration.rater_prior_strength),
        (10, 5.0)
    );
    assert_eq!(calibration.rating_count, 2);
    let raters: Vec<String> = effects(&mut c, &calibration.id, "rater_id", 0)
        .await
        .into_iter()
        .map(|e| e.rater_id)
        .collect();
    assert_eq!(raters, ["at-as-of", "just-inside"]);
}

/// Six people rated on one competency by a lenient, a fair and a severe
/// manager, and `UNBALANCED` rated by the lenient and the fair one only (for
/// a person rated by every rater once alike, the leniencies cancel out);
/// returns the stored evidence by id.
async fn three_raters(c: &mut Clients) -> HashMap<String, Evidence> {
    let mut items = vec![
        rated(UNBALANCED, COMPETENCY, "mgr-lenient", 4.0, "u-1"),
        rated(UNBALANCED, COMPETENCY, "mgr-fair", 3.2, "u-2"),
    ];
    for k in 0..6 {
        let subject = format!("emp-{k}");
        let truth = 2.5 + 0.3 * f64::from(k);
        for (rater, bias) in [
            ("mgr-lenient", 0.8),
            ("mgr-fair", 0.0),
            ("mgr-severe", -0.6),
        ] {
            items.push(rated(
                &subject,
                COMPETENCY,
                rater,
                truth + bias,
                &format!("{subject}-{rater}"),
            ));
        }
    }
    ingest(c, items)
        .await
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect()
}

fn competency(a: &Assessment) -> &ladder::proto::v1::CompetencyAssessment {
    a.competencies
        .iter()
        .find(|c| c.competency_id == COMPETENCY)
        .unwrap()
}

#[tokio::test]
async fn calibration_off_changes_nothing_and_on_removes_each_raters_leniency() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let stored = three_raters(&mut c).await;
    let uncalibrated = assess(&mut c, UNBALANCED, true).await;
    assert_eq!(uncalibrated.calibration_id, "");

    // On, but no calibration run yet: scored uncalibrated, citing none.
    set_calibration(&mut c, true).await;
    let none_yet = assess(&mut c, UNBALANCED, true).await;
    assert_eq!(numbers(&none_yet).competencies, uncalibrated.competencies);
    assert_eq!(none_yet.calibration_id, "");

    let calibration = run(&mut c, None).await;
    let leniency: HashMap<String, f64> = effects(&mut c, &calibration.id, "", 0)
        .await
        .into_iter()
        .map(|e| (e.rater_id, e.leniency))
        .collect();
    assert!(leniency["mgr-lenient"] > 0.3 && leniency["mgr-severe"] < -0.3);

    // Off: exactly today's numbers, whatever calibrations exist.
    set_calibration(&mut c, false).await;
    let off = assess(&mut c, UNBALANCED, true).await;
    assert_eq!(off.competencies, uncalibrated.competencies);
    assert_eq!(
        (
            off.readiness,
            off.coverage,
            off.band,
            off.calibration_id.as_str()
        ),
        (
            uncalibrated.readiness,
            uncalibrated.coverage,
            uncalibrated.band,
            ""
        )
    );

    // On: each item enters with level − b_r of its rater, weights unchanged.
    set_calibration(&mut c, true).await;
    let on = assess(&mut c, UNBALANCED, true).await;
    assert_eq!(on.calibration_id, calibration.id);
    let (before, after) = (competency(&uncalibrated), competency(&on));
    assert_eq!(after.contributions.len(), 2);
    let (mut n, mut sum) = (0.0, 0.0);
    for (k, k0) in after.contributions.iter().zip(&before.contributions) {
        let item = &stored[&k.evidence_id];
        assert_eq!(
            (k.evidence_id.as_str(), k.weight),
            (k0.evidence_id.as_str(), k0.weight)
        );
        assert_eq!(k0.rater_adjustment, 0.0);
        assert_eq!(k.rater_adjustment, leniency[&item.rater_id]);
        n += k.weight;
        sum += k.weight * (item.level - k.rater_adjustment);
    }
    // SPEC §4 with the default prior (μ0 = 3, n0 = 1) on the adjusted levels.
    close(after.estimated_level, (3.0 + sum) / (1.0 + n), "m_c");
    assert_ne!(after.estimated_level, before.estimated_level);
    close(after.effective_evidence, before.effective_evidence, "n_c");
    // Competencies without rated evidence are untouched.
    for (a, b) in on.competencies.iter().zip(&uncalibrated.competencies) {
        if a.competency_id != COMPETENCY {
            assert_eq!(a, b);
        }
    }

    // Recommendations and what-if score with the same calibration.
    let recommended = c
        .recommendation
        .recommend(RecommendRequest {
            subject_id: UNBALANCED.into(),
            current_role_id: ROLE.into(),
            as_of: Some(timestamp(as_of())),
            max_recommendations: 100,
        })
        .await
        .unwrap()
        .into_inner();
    let staff = recommended
        .recommendations
        .iter()
        .find(|r| r.role_id == "staff_engineer")
        .expect("staff engineer is recommended");
    let staff_on = assess_against(&mut c, UNBALANCED, "staff_engineer", true).await;
    assert_eq!(staff.readiness, staff_on.readiness);
    set_calibration(&mut c, false).await;
    let staff_off = assess_against(&mut c, UNBALANCED, "staff_engineer", true).await;
    set_calibration(&mut c, true).await;
    assert_ne!(staff_on.readiness, staff_off.readiness);
    let what_if = c
        .recommendation
        .what_if(WhatIfRequest {
            subject_id: UNBALANCED.into(),
            current_role_id: ROLE.into(),
            as_of: Some(timestamp(as_of())),
            role_id: ROLE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(what_if.calibration_id, calibration.id);
    assert_eq!(what_if.competencies, on.competencies);
}

#[tokio::test]
async fn a_stored_assessment_keeps_citing_its_calibration_after_a_new_run() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    three_raters(&mut c).await;
    set_calibration(&mut c, true).await;
    let first = run(&mut c, Some(5.0)).await;
    let stored = assess(&mut c, UNBALANCED, false).await;
    assert_eq!(stored.calibration_id, first.id);

    let second = run(&mut c, Some(0.5)).await;
    let read = c
        .assessment
        .get_assessment(GetAssessmentRequest {
            assessment_id: stored.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(read, stored);
    let again = assess(&mut c, UNBALANCED, false).await;
    assert_eq!(again.calibration_id, second.id);
    assert_ne!(
        competency(&again).estimated_level,
        competency(&stored).estimated_level
    );
    let cited: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT calibration_id FROM assessments WHERE id = $1::uuid")
            .bind(&stored.id)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(cited.unwrap().to_string(), first.id);

    // The snapshots themselves never change.
    for statement in [
        "UPDATE calibrations SET residual_scale = 0",
        "DELETE FROM rater_effects",
        "TRUNCATE calibrations CASCADE",
    ] {
        let refused = sqlx::query(statement).execute(&server.pool).await;
        assert!(refused.is_err(), "{statement} was allowed");
    }
}

#[tokio::test]
async fn rater_effects_and_calibrations_page_in_their_orders() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let case = suite()
        .cases
        .into_iter()
        .find(|c| c.name == "generated_panels")
        .unwrap();
    let items = case
        .ratings
        .iter()
        .enumerate()
        .map(|(i, r)| Evidence {
            confidence: Some(r.confidence),
            ..rated(
                &r.subject_id,
                builtin_competency(&r.competency_id),
                &r.rater_id,
                r.level,
                &format!("p-{i}"),
            )
        })
        .collect();
    ingest(&mut c, items).await;
    let calibration = run(&mut c, None).await;
    let by_rater = effects(&mut c, &calibration.id, "rater_id", 3).await;
    let ids: Vec<&str> = by_rater.iter().map(|e| e.rater_id.as_str()).collect();
    let expected: Vec<&str> = case
        .expected
        .raters
        .iter()
        .map(|r| r.rater_id.as_str())
        .collect();
    assert_eq!(ids, expected);

    let by_magnitude = effects(&mut c, &calibration.id, "abs_leniency desc", 3).await;
    let mut sorted = by_rater.clone();
    sorted.sort_by(|a, b| {
        b.leniency
            .abs()
            .total_cmp(&a.leniency.abs())
            .then(a.rater_id.cmp(&b.rater_id))
    });
    assert_eq!(by_magnitude, sorted);
    assert_eq!(effects(&mut c, &calibration.id, "", 100).await, sorted);

    let first_page = c
        .calibration
        .list_rater_effects(ListRaterEffectsRequest {
            calibration_id: calibration.id.clone(),
            page_size: 3,
            order_by: "rater_id".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mixed = c
        .calibration
        .list_rater_effects(ListRaterEffectsRequest {
            calibration_id: calibration.id.clone(),
            page_size: 3,
            page_token: first_page.next_page_token,
            order_by: "abs_leniency desc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(mixed.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&mixed), ["page_token"]);
    let unknown_order = c
        .calibration
        .list_rater_effects(ListRaterEffectsRequest {
            calibration_id: calibration.id.clone(),
            order_by: "leniency".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&unknown_order), ["order_by"]);

    // Calibrations: newest first, two to a page.
    let second = run(&mut c, Some(1.0)).await;
    let third = run(&mut c, Some(2.0)).await;
    let (mut listed, mut page_token) = (Vec::new(), String::new());
    loop {
        let page = c
            .calibration
            .list_calibrations(ListCalibrationsRequest {
                page_size: 2,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.calibrations);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(listed, [third, second, calibration.clone()]);
    let got = c
        .calibration
        .get_calibration(GetCalibrationRequest {
            calibration_id: calibration.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .calibration
        .unwrap();
    assert_eq!(got, calibration);
}

#[tokio::test]
async fn another_tenants_calibration_is_not_found() {
    let server = TestServer::start().await;
    let mut a = server.clients("tenant-a").await;
    three_raters(&mut a).await;
    let calibration = run(&mut a, None).await;
    let mut b = server.clients("tenant-b").await;
    let get = b
        .calibration
        .get_calibration(GetCalibrationRequest {
            calibration_id: calibration.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::NotFound);
    let list = b
        .calibration
        .list_rater_effects(ListRaterEffectsRequest {
            calibration_id: calibration.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(list.code(), Code::NotFound);
    let listed = b
        .calibration
        .list_calibrations(ListCalibrationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.calibrations.is_empty());
    // Tenant b's scoring never sees tenant a's calibration.
    set_calibration(&mut b, true).await;
    three_raters(&mut b).await;
    assert_eq!(assess(&mut b, "emp-1", true).await.calibration_id, "");
}

#[tokio::test]
async fn bad_parameters_are_refused_naming_the_field_and_nothing_is_written() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    three_raters(&mut c).await;
    for (window_days, lambda, fields) in [
        (None, Some(0.0), vec!["rater_prior_strength"]),
        (None, Some(-1.0), vec!["rater_prior_strength"]),
        (None, Some(f64::NAN), vec!["rater_prior_strength"]),
        (None, Some(2e6), vec!["rater_prior_strength"]),
        (Some(0), None, vec!["window_days"]),
        (Some(-5), None, vec!["window_days"]),
        (Some(36_501), None, vec!["window_days"]),
        (
            Some(0),
            Some(0.0),
            vec!["window_days", "rater_prior_strength"],
        ),
    ] {
        let refused = c
            .calibration
            .run_calibration(RunCalibrationRequest {
                as_of: None,
                window_days,
                rater_prior_strength: lambda,
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&refused), fields);
    }
    let bad_id = c
        .calibration
        .get_calibration(GetCalibrationRequest {
            calibration_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&bad_id), ["calibration_id"]);
    assert_eq!(server.count("calibrations").await, 0);
    assert_eq!(server.count("rater_effects").await, 0);

    // The policy's calibration defaults are checked where they are set.
    let refused = c
        .assessment
        .update_scoring_policy(UpdateScoringPolicyRequest {
            policy: Some(ScoringPolicy {
                calibration_window_days: -5,
                rater_prior_strength: -1.0,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![
                    "calibration_window_days".into(),
                    "rater_prior_strength".into(),
                ],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&refused),
        [
            "policy.calibration_window_days",
            "policy.rater_prior_strength"
        ]
    );
    // Set, they are what a run without parameters uses.
    c.assessment
        .update_scoring_policy(UpdateScoringPolicyRequest {
            policy: Some(ScoringPolicy {
                calibration_window_days: 3,
                rater_prior_strength: 2.5,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![
                    "calibration_window_days".into(),
                    "rater_prior_strength".into(),
                ],
            }),
        })
        .await
        .unwrap();
    let calibration = run(&mut c, None).await;
    assert_eq!(
        (calibration.window_days, calibration.rater_prior_strength),
        (3, 2.5)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ladder_calibrate_prints_the_most_lenient_and_most_severe_raters() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    three_raters(&mut c).await;
    let out = Command::new(ladder_bin())
        .args([
            "calibrate",
            "--as-of",
            "2026-06-01T12:00:00Z",
            "--prior-strength",
            "1",
            "--server",
            &server.url(),
            "--token",
            &token("tenant-a"),
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calibration = c
        .calibration
        .list_calibrations(ListCalibrationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .calibrations
        .remove(0);
    assert!(printed.contains(&calibration.id), "{printed}");
    assert!(
        printed.contains("20 ratings by 3 raters of 7 people"),
        "{printed}"
    );
    let effects: HashMap<String, RaterEffect> = effects(&mut c, &calibration.id, "", 0)
        .await
        .into_iter()
        .map(|e| (e.rater_id.clone(), e))
        .collect();
    let line = |rater: &str| {
        let e = &effects[rater];
        format!(
            "{rater:<24} {:>+7.3} ± {:<6.3} {:>8} {:>9.2} {:>10}",
            e.leniency, e.standard_error, e.rating_count, e.weight, e.overlap
        )
    };
    let lenient = printed.find("most lenient").unwrap();
    let severe = printed.find("most severe").unwrap();
    let lenient_line = printed.find(&line("mgr-lenient")).expect(&printed);
    let severe_line = printed.find(&line("mgr-severe")).expect(&printed);
    assert!(lenient < lenient_line && lenient_line < severe && severe < severe_line);
    assert!(printed.contains("b_r ± se_r") && printed.contains("overlap_r"));
}

/// Every competency of `role`'s published rubric.
async fn rubric_competencies(c: &mut Clients, role: &str) -> Vec<String> {
    c.published_rubric(role)
        .await
        .competencies
        .into_iter()
        .map(|c| c.competency_id)
        .collect()
}

/// SPEC §4's weight of a full-confidence manager rating a day old (as
/// `rated` makes them), worked out here rather than read from the server.
fn day_old_manager_weight() -> f64 {
    0.5_f64.powf(1.0 / 365.0)
}

/// SPEC §11's leave-one-out influence Δ_e = m_c − m_c^(−e) of every item of
/// one competency, given each item's calibrated level and weight, with the
/// default prior (μ0 = 3, n0 = 1); and m_c itself.
fn influences_by_hand(items: &[(f64, f64)]) -> (f64, Vec<f64>) {
    let m = |items: &[(f64, f64)]| {
        let n: f64 = items.iter().map(|(_, w)| w).sum();
        let sum: f64 = items.iter().map(|(x, w)| w * x).sum();
        (3.0 + sum) / (1.0 + n)
    };
    let all = m(items);
    let deltas = (0..items.len())
        .map(|e| {
            let others: Vec<(f64, f64)> = items
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != e)
                .map(|(_, item)| *item)
                .collect();
            all - m(&others)
        })
        .collect();
    (all, deltas)
}

#[tokio::test]
async fn explanations_what_ifs_and_impact_reports_score_the_calibrated_levels() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let staff = rubric_competencies(&mut c, "staff_engineer").await;
    // Two raters whose habits the calibration can see: both rate six people
    // on every staff competency, the lenient one a level higher.
    let mut items = Vec::new();
    for k in 0..6 {
        for competency in &staff {
            let truth = 3.0 + 0.2 * f64::from(k);
            for (rater, level) in [("mgr-lenient", truth + 1.0), ("mgr-strict", truth)] {
                items.push(rated(
                    &format!("cal-{k}"),
                    competency,
                    rater,
                    level,
                    &format!("cal-{k}-{competency}-{rater}"),
                ));
            }
        }
    }
    // The two cases: a person rated 4.5 by the lenient rater and 3.5
    // by the strict one, and a person rated by one calibrated rater only.
    items.push(rated("both", COMPETENCY, "mgr-lenient", 4.5, "both-1"));
    items.push(rated("both", COMPETENCY, "mgr-strict", 3.5, "both-2"));
    items.push(rated("one", COMPETENCY, "mgr-lenient", 4.5, "one-1"));
    // Five people only the lenient rater rated, on every competency.
    for k in 0..5 {
        for competency in &staff {
            items.push(rated(
                &format!("lenient-only-{k}"),
                competency,
                "mgr-lenient",
                4.0 + 0.1 * f64::from(k),
                &format!("lo-{k}-{competency}"),
            ));
        }
    }
    let stored: HashMap<String, Evidence> = ingest(&mut c, items)
        .await
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    let calibration = run(&mut c, None).await;
    set_calibration(&mut c, true).await;
    let leniency: HashMap<String, f64> = effects(&mut c, &calibration.id, "", 0)
        .await
        .into_iter()
        .map(|e| (e.rater_id, e.leniency))
        .collect();
    assert!(leniency["mgr-lenient"] > 0.2 && leniency["mgr-strict"] < -0.2);

    // Explanations, stored and dry run, against SPEC §4/§11 by hand on the
    // calibrated levels.
    for subject in ["both", "one"] {
        let assessment = assess_against(&mut c, subject, "staff_engineer", false).await;
        assert_eq!(assessment.calibration_id, calibration.id);
        let targets = [
            Target::AssessmentId(assessment.id.clone()),
            Target::DryRun(DryRunAssessment {
                subject_id: subject.into(),
                role_id: "staff_engineer".into(),
                rubric_version: 0,
                as_of: Some(timestamp(as_of())),
            }),
        ];
        for target in targets {
            let explanation = c
                .oversight
                .explain_assessment(ExplainAssessmentRequest {
                    target: Some(target),
                })
                .await
                .unwrap_or_else(|e| panic!("{subject}: {e:?}"))
                .into_inner()
                .explanation
                .unwrap();
            let explained = explanation
                .competencies
                .iter()
                .find(|k| k.competency_id == COMPETENCY)
                .unwrap();
            let mut by_hand: Vec<(String, f64, f64)> = stored
                .values()
                .filter(|e| e.subject_id == subject && e.competency_id == COMPETENCY)
                .map(|e| {
                    (
                        e.id.clone(),
                        e.level - leniency[&e.rater_id],
                        day_old_manager_weight(),
                    )
                })
                .collect();
            by_hand.sort_by(|a, b| a.0.cmp(&b.0));
            let levels: Vec<(f64, f64)> = by_hand.iter().map(|(_, x, w)| (*x, *w)).collect();
            let (m, deltas) = influences_by_hand(&levels);
            close(explained.estimated_level, m, "m_c");
            close(competency(&assessment).estimated_level, m, "assessed m_c");
            assert_eq!(explained.top_influences.len(), by_hand.len());
            for influence in &explained.top_influences {
                let at = by_hand
                    .iter()
                    .position(|(id, _, _)| *id == influence.evidence_id)
                    .unwrap();
                close(influence.level, by_hand[at].1, "x_e");
                close(influence.weight, by_hand[at].2, "w_e");
                close(influence.delta, deltas[at], "Δ_e");
            }
        }
    }

    // A what-if's hypothetical rating by a calibrated rater scores as the
    // same rating does once stored.
    let added = Evidence {
        observed_at: Some(timestamp(as_of())),
        ..rated("one", "technical_influence", "mgr-lenient", 5.0, "one-2")
    };
    let hypothetical = c
        .recommendation
        .what_if(WhatIfRequest {
            subject_id: "one".into(),
            current_role_id: ROLE.into(),
            as_of: Some(timestamp(as_of())),
            role_id: "staff_engineer".into(),
            added_evidence: vec![added.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    ingest(&mut c, vec![added]).await;
    let real = assess_against(&mut c, "one", "staff_engineer", true).await;
    let influence = |a: &Assessment| {
        let k = a
            .competencies
            .iter()
            .find(|k| k.competency_id == "technical_influence")
            .unwrap();
        (
            k.estimated_level,
            k.probability,
            k.contributions[0].rater_adjustment,
        )
    };
    assert_eq!(influence(&hypothetical), influence(&real));
    assert_eq!(influence(&real).2, leniency["mgr-lenient"]);
    assert_eq!(
        (hypothetical.readiness, hypothetical.band),
        (real.readiness, real.band)
    );

    // The impact report scores each labelled person as their stored
    // assessment does: the same READY count and mean readiness, which the
    // uncalibrated scores would not give.
    let population: Vec<String> = (0..5).map(|k| format!("lenient-only-{k}")).collect();
    let (mut ready, mut readiness) = (0, 0.0);
    for subject in &population {
        let a = assess_against(&mut c, subject, "staff_engineer", false).await;
        assert_eq!(a.calibration_id, calibration.id);
        ready += i64::from(a.band == ReadinessBand::Ready as i32);
        readiness += a.readiness / population.len() as f64;
    }
    let report = c
        .oversight
        .compute_impact_report(ComputeImpactReportRequest {
            role_id: "staff_engineer".into(),
            as_of: Some(timestamp(as_of())),
            labels: population
                .iter()
                .map(|s| GroupLabel {
                    subject_id: s.clone(),
                    group: "A".into(),
                })
                .collect(),
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(report.calibration_id, calibration.id);
    let figures = report.groups[0].figures.unwrap();
    assert_eq!(figures.ready, ready);
    close(figures.mean_readiness, readiness, "mean readiness");
    set_calibration(&mut c, false).await;
    let mut uncalibrated = 0.0;
    for subject in &population {
        uncalibrated += assess_against(&mut c, subject, "staff_engineer", true)
            .await
            .readiness
            / population.len() as f64;
    }
    assert!(
        (uncalibrated - readiness).abs() > 0.01,
        "calibration must matter here: {uncalibrated} vs {readiness}"
    );
}
