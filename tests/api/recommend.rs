//! Recommendations and what-if through the API, over the built-in framework.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ladder::proto::v1::{
    BatchCreateEvidenceRequest, CompetencyStatus, CreateAssessmentRequest, Evidence,
    EvidenceSource, ReadinessBand, RecommendRequest, RecommendResponse, UpdateSubjectRequest,
    WhatIfRequest,
};
use tonic::Code;

use crate::harness::{Clients, TestServer, evidence, timestamp};

fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// `per` manager observations at exactly the expected level of every
/// competency of `role`'s published rubric, a week before `as_of()`.
async fn profile(c: &mut Clients, subject: &str, role: &str, per: usize) -> Vec<Evidence> {
    let rubric = c.published_rubric(role).await;
    let mut items = Vec::new();
    for rc in &rubric.competencies {
        for k in 0..per {
            items.push(evidence(
                subject,
                &rc.competency_id,
                f64::from(rc.expected_level),
                EvidenceSource::Manager,
                as_of() - Duration::days(7),
                &format!("{subject}-{role}-{}-{k}", rc.competency_id),
            ));
        }
    }
    items
}

async fn ingest(c: &mut Clients, items: Vec<Evidence>) {
    c.assessment
        .batch_create_evidence(BatchCreateEvidenceRequest { evidence: items })
        .await
        .unwrap();
}

async fn recommend(c: &mut Clients, subject: &str) -> RecommendResponse {
    c.recommendation
        .recommend(RecommendRequest {
            subject_id: subject.into(),
            current_role_id: "senior_engineer".into(),
            as_of: Some(timestamp(as_of())),
            max_recommendations: 100,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_staff_profile_gets_staff_engineer_first_and_ready() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let items = profile(&mut c, "emp-staff", "staff_engineer", 8).await;
    ingest(&mut c, items).await;
    let response = recommend(&mut c, "emp-staff").await;
    let top = &response.recommendations[0];
    assert_eq!(
        top.role_id,
        "staff_engineer",
        "{:#?}",
        response
            .recommendations
            .iter()
            .map(|r| (&r.role_id, r.readiness))
            .collect::<Vec<_>>()
    );
    assert_eq!(top.band, ReadinessBand::Ready as i32);
    assert_eq!(
        top.path,
        vec!["senior_engineer".to_string(), "staff_engineer".to_string()]
    );
    assert_eq!(top.steps, 1);
    assert!(!top.strengths.is_empty());
    // Deterministic across calls.
    assert_eq!(recommend(&mut c, "emp-staff").await, response);
}

#[tokio::test]
async fn a_people_manager_profile_fits_the_management_track_best() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let items = profile(&mut c, "emp-em", "engineering_manager", 8).await;
    ingest(&mut c, items).await;
    let response = recommend(&mut c, "emp-em").await;
    let best = response
        .track_fits
        .iter()
        .max_by(|a, b| a.fit.total_cmp(&b.fit))
        .unwrap();
    assert_eq!(best.track_id, "management", "{:?}", response.track_fits);
    assert_eq!(response.track_fits.len(), 4);
}

#[tokio::test]
async fn almost_no_evidence_gives_insufficient_evidence_and_a_plan() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    ingest(
        &mut c,
        vec![evidence(
            "emp-new",
            "mentoring",
            3.0,
            EvidenceSource::Self_,
            as_of() - Duration::days(3),
            "n1",
        )],
    )
    .await;
    let response = recommend(&mut c, "emp-new").await;
    assert!(!response.recommendations.is_empty());
    for r in &response.recommendations {
        assert_eq!(
            r.band,
            ReadinessBand::InsufficientEvidence as i32,
            "{}",
            r.role_id
        );
        assert!(!r.evidence_to_collect.is_empty(), "{}", r.role_id);
        assert!(!r.evidence_to_collect[0].sources.is_empty());
    }
}

#[tokio::test]
async fn the_stored_current_role_is_used_and_its_absence_named() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    // Known from its evidence only: no stored role.
    ingest(
        &mut c,
        vec![evidence(
            "emp-2",
            "mentoring",
            3.0,
            EvidenceSource::Peer,
            as_of() - Duration::days(3),
            "e2",
        )],
    )
    .await;
    let request = RecommendRequest {
        subject_id: "emp-2".into(),
        ..Default::default()
    };
    let err = c
        .recommendation
        .recommend(request.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("current_role_id"),
        "{}",
        err.message()
    );
    let failure = tonic_types::StatusExt::get_details_precondition_failure(&err)
        .expect("a PreconditionFailure detail");
    assert_eq!(failure.violations[0].subject, "current_role_id");
    c.assessment
        .update_subject(UpdateSubjectRequest {
            subject: Some(ladder::proto::v1::Subject {
                id: "emp-2".into(),
                current_role_id: "engineering_manager".into(),
                ..Default::default()
            }),
            update_mask: None,
            allow_missing: true,
        })
        .await
        .unwrap();
    let response = c
        .recommendation
        .recommend(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.current_role_id, "engineering_manager");
    assert!(
        response
            .recommendations
            .iter()
            .any(|r| r.role_id == "senior_engineering_manager")
    );
}

/// The promised number of observations, added through what-if, lifts p_c to
/// the promised probability, and one fewer does not. What-if writes nothing.
#[tokio::test]
async fn what_if_confirms_the_observations_needed_and_writes_nothing() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let mut items = profile(&mut c, "emp-3", "staff_engineer", 2).await;
    items.truncate(items.len() / 2);
    ingest(&mut c, items).await;
    let response = recommend(&mut c, "emp-3").await;
    let rec = response
        .recommendations
        .iter()
        .find(|r| r.role_id == "staff_engineer")
        .unwrap();
    let wanted = rec
        .evidence_to_collect
        .first()
        .expect("something to collect");
    let expected_level = c
        .published_rubric("staff_engineer")
        .await
        .competencies
        .into_iter()
        .find(|x| x.competency_id == wanted.competency_id)
        .unwrap()
        .expected_level;
    let before = counts(&server).await;
    for plan in &wanted.sources {
        for (target, needed) in [
            (0.5, plan.observations_for_even_odds),
            (0.8, plan.observations_for_confidence),
        ] {
            let Some(needed) = needed else { continue };
            for (k, reaches) in [(needed, true), (needed - 1, false)] {
                if k < 0 {
                    continue;
                }
                let p = what_if_staff(
                    &mut c,
                    "emp-3",
                    &wanted.competency_id,
                    f64::from(expected_level),
                    plan.source,
                    k,
                )
                .await
                .probability;
                assert_eq!(
                    p >= target,
                    reaches,
                    "source {} k={k} target {target}: p={p}",
                    plan.source
                );
            }
        }
    }
    assert_eq!(counts(&server).await, before, "what-if wrote something");
}

async fn counts(server: &TestServer) -> (i64, i64, i64) {
    (
        server.count("evidence").await,
        server.count("assessments").await,
        server.count("subjects").await,
    )
}

/// For a competency with too little evidence, the promised number of
/// observations makes it scored, and one fewer leaves it unscored.
#[tokio::test]
async fn the_enough_evidence_figure_gets_a_competency_scored() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    c.record_subject("emp-empty", "senior_engineer").await;
    let response = recommend(&mut c, "emp-empty").await;
    let rec = response
        .recommendations
        .iter()
        .find(|r| r.role_id == "staff_engineer")
        .unwrap();
    let wanted = &rec.evidence_to_collect[0];
    let plan = wanted
        .sources
        .iter()
        .find(|p| {
            p.source == EvidenceSource::Peer as i32 || p.source == EvidenceSource::Manager as i32
        })
        .or(wanted.sources.first())
        .unwrap();
    let needed = plan.observations_for_enough_evidence.expect("reachable");
    assert!(needed > 0);
    for (k, scored) in [(needed, true), (needed - 1, false)] {
        let status = what_if_staff(
            &mut c,
            "emp-empty",
            &wanted.competency_id,
            4.0,
            plan.source,
            k,
        )
        .await
        .status;
        let insufficient = ladder::proto::v1::CompetencyStatus::InsufficientEvidence as i32;
        assert_eq!(status != insufficient, scored, "k={k}");
    }
}

/// `k` hypothetical observations of `competency` at `level` from `source`,
/// made at `as_of()`, scored by what-if against Staff Engineer: the
/// competency's numbers.
async fn what_if_staff(
    c: &mut Clients,
    subject: &str,
    competency: &str,
    level: f64,
    source: i32,
    k: i32,
) -> ladder::proto::v1::CompetencyAssessment {
    let source = EvidenceSource::try_from(source).unwrap();
    let added: Vec<Evidence> = (0..k)
        .map(|i| {
            let mut e = evidence(
                subject,
                competency,
                level,
                source,
                as_of(),
                &format!("w{i}"),
            );
            // Hypothetical evidence needs no key.
            e.source_system.clear();
            e.external_id.clear();
            e
        })
        .collect();
    c.recommendation
        .what_if(WhatIfRequest {
            subject_id: subject.into(),
            current_role_id: "senior_engineer".into(),
            as_of: Some(timestamp(as_of())),
            added_evidence: added,
            role_id: "staff_engineer".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap()
        .competencies
        .into_iter()
        .find(|x| x.competency_id == competency)
        .unwrap()
}

/// The first trial's strong Staff candidate: twelve recent ratings of 4 and 5
/// on system design and technical influence, nothing else. Roles that mostly
/// expect level 3 used to rank first on the prior alone.
#[tokio::test]
async fn evidence_on_design_and_influence_puts_staff_above_what_it_does_not_support() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let mut items = Vec::new();
    for (k, competency) in ["system_design", "technical_influence"]
        .iter()
        .cycle()
        .take(12)
        .enumerate()
    {
        let (level, source) = if k % 3 == 0 {
            (5.0, EvidenceSource::Peer)
        } else {
            (4.0, EvidenceSource::Manager)
        };
        items.push(evidence(
            "emp-strong",
            competency,
            level,
            source,
            as_of() - Duration::days(10 + k as i64 * 20),
            &format!("strong-{k}"),
        ));
    }
    ingest(&mut c, items).await;
    let response = recommend(&mut c, "emp-strong").await;
    let ranked: Vec<(&str, f64, f64)> = response
        .recommendations
        .iter()
        .map(|r| (r.role_id.as_str(), r.supported_readiness, r.readiness))
        .collect();
    let position = |role: &str| ranked.iter().position(|r| r.0 == role).unwrap();
    let staff = position("staff_engineer");
    let staff_support = ranked[staff].1;
    assert!(staff_support > 0.0, "{ranked:#?}");
    // Every role above Staff Engineer has at least as much support from the
    // evidence, and the roles the prior used to carry are below it.
    for above in &ranked[..staff] {
        assert!(above.1 >= staff_support, "{ranked:#?}");
    }
    for prior_only in ["specialist", "solutions_engineer", "sales_engineer"] {
        assert!(position(prior_only) > staff, "{ranked:#?}");
    }
    assert!(staff <= 1, "{ranked:#?}");
    // The evidence points along the individual contributor track.
    let best = response
        .track_fits
        .iter()
        .max_by(|a, b| a.fit.total_cmp(&b.fit))
        .unwrap();
    assert_eq!(best.track_id, "individual_contributor");
    assert!(best.fit > 0.0);
}

/// The second trial: with no evidence every role sits at the prior, so
/// nothing is supported and candidates come in step order.
#[tokio::test]
async fn without_evidence_candidates_come_in_step_order_and_nothing_is_supported() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    c.record_subject("emp-nobody", "senior_engineer").await;
    let response = recommend(&mut c, "emp-nobody").await;
    assert!(!response.recommendations.is_empty());
    for r in &response.recommendations {
        assert_eq!(r.supported_readiness, 0.0, "{}", r.role_id);
        assert_ne!(r.band, ReadinessBand::Ready as i32);
        assert!(
            r.steps >= 1,
            "only transitions offer candidates: {}",
            r.role_id
        );
    }
    let steps: Vec<i32> = response.recommendations.iter().map(|r| r.steps).collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
    assert_eq!(steps[0], 1);
    for fit in &response.track_fits {
        assert_eq!((fit.fit, fit.best_role_id.as_str()), (0.0, ""), "{fit:?}");
    }
}

const JUNIOR_LADDER: &str = r#"
format: ladder.framework/v1
tracks:
  - id: engineering
    name: Engineering
    description: From junior to staff.
competencies:
  - id: coding
    name: Coding
    description: Writing code.
    levels: &levels
      - { level: 1, title: Aware, description: "", behaviours: [Reads code] }
      - { level: 2, title: Practising, description: "", behaviours: [Writes code] }
      - { level: 3, title: Proficient, description: "", behaviours: [Owns code] }
      - { level: 4, title: Advanced, description: "", behaviours: [Leads code] }
      - { level: 5, title: Expert, description: "", behaviours: [Shapes code] }
  - id: teamwork
    name: Teamwork
    description: Working with others.
    levels: *levels
roles:
  - id: junior
    name: Junior Engineer
    track: engineering
    seniority: 1
    description: ""
    transitions: [{ to: engineer, kind: promotion }]
    rubric:
      competencies:
        - { competency: coding, expected_level: 1, weight: 1, critical: false, development_actions: [] }
        - { competency: teamwork, expected_level: 1, weight: 1, critical: false, development_actions: [] }
  - id: engineer
    name: Engineer
    track: engineering
    seniority: 2
    description: ""
    transitions: [{ to: senior, kind: promotion }]
    rubric:
      competencies:
        - { competency: coding, expected_level: 2, weight: 1, critical: false, development_actions: [] }
        - { competency: teamwork, expected_level: 2, weight: 1, critical: false, development_actions: [] }
  - id: senior
    name: Senior Engineer
    track: engineering
    seniority: 3
    description: ""
    transitions:
      - { to: staff, kind: promotion }
      - { to: support, kind: lateral }
    rubric:
      competencies:
        - { competency: coding, expected_level: 3, weight: 1, critical: false, development_actions: [] }
        - { competency: teamwork, expected_level: 3, weight: 1, critical: false, development_actions: [] }
  - id: support
    name: Support Engineer
    track: engineering
    seniority: 2
    description: ""
    transitions: []
    rubric:
      competencies:
        - { competency: coding, expected_level: 2, weight: 1, critical: false, development_actions: [] }
        - { competency: teamwork, expected_level: 2, weight: 1, critical: false, development_actions: [] }
  - id: tech_lead
    name: Tech Lead
    track: engineering
    seniority: 3
    description: ""
    transitions: []
    rubric:
      competencies:
        - { competency: coding, expected_level: 3, weight: 1, critical: false, development_actions: [] }
        - { competency: teamwork, expected_level: 3, weight: 1, critical: false, development_actions: [] }
  - id: staff
    name: Staff Engineer
    track: engineering
    seniority: 4
    description: ""
    transitions: []
    rubric:
      competencies:
        - { competency: coding, expected_level: 5, weight: 1, critical: true, development_actions: [] }
        - { competency: teamwork, expected_level: 5, weight: 1, critical: true, development_actions: [] }
"#;

/// A framework with junior levels: a strong senior is READY for every junior
/// role, yet only a transition can offer a step down.
#[tokio::test]
async fn junior_roles_are_never_recommended_unless_a_transition_offers_them() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ladder.yaml");
    std::fs::write(&file, JUNIOR_LADDER).unwrap();
    let out = std::process::Command::new(crate::harness::ladder_bin())
        .args(["framework", "import", file.to_str().unwrap()])
        .args(["--direct", "--tenant", "juniors", "--log-format", "text"])
        .args(["--database-url", &server.database_url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = server.clients("juniors").await;
    let mut items = Vec::new();
    for k in 0..10 {
        for competency in ["coding", "teamwork"] {
            items.push(evidence(
                "emp-senior",
                competency,
                3.0,
                EvidenceSource::Manager,
                as_of() - Duration::days(5 + k),
                &format!("{competency}-{k}"),
            ));
        }
    }
    ingest(&mut c, items).await;
    let response = c
        .recommendation
        .recommend(RecommendRequest {
            subject_id: "emp-senior".into(),
            current_role_id: "senior".into(),
            as_of: Some(timestamp(as_of())),
            max_recommendations: 100,
        })
        .await
        .unwrap()
        .into_inner();
    let roles: Vec<(&str, i32)> = response
        .recommendations
        .iter()
        .map(|r| (r.role_id.as_str(), r.band))
        .collect();
    // READY elsewhere at the same level, offered by a lateral transition, and
    // the promotion; never junior or engineer, though READY for both.
    let ids: Vec<&str> = roles.iter().map(|r| r.0).collect();
    assert!(ids.contains(&"tech_lead"), "{roles:?}");
    assert!(ids.contains(&"support"), "{roles:?}");
    assert!(ids.contains(&"staff"), "{roles:?}");
    assert!(
        !ids.contains(&"junior") && !ids.contains(&"engineer"),
        "{roles:?}"
    );
    assert_eq!(response.track_fits.len(), 1);
    assert_eq!(response.track_fits[0].track_id, "engineering");
}

/// The status of `competency` in `subject`'s dry-run assessment against
/// Staff Engineer as of `at`.
async fn staff_status(
    c: &mut Clients,
    subject: &str,
    competency: &str,
    at: DateTime<Utc>,
) -> CompetencyStatus {
    let assessment = c
        .assessment
        .create_assessment(CreateAssessmentRequest {
            subject_id: subject.into(),
            role_id: "staff_engineer".into(),
            as_of: Some(timestamp(at)),
            validate_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    let k = assessment
        .competencies
        .iter()
        .find(|k| k.competency_id == competency)
        .unwrap();
    CompetencyStatus::try_from(k.status).unwrap()
}

/// An HRIS sending what a review cycle yields, one manager rating per
/// competency: with the default policy (min_evidence 0.5) it counts from
/// the day it is given until it is a half-life old.
#[tokio::test]
async fn one_manager_rating_per_review_cycle_is_scored_for_a_year() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let given = as_of() - Duration::days(2);
    ingest(
        &mut c,
        vec![evidence(
            "emp-cycle",
            "system_design",
            4.0,
            EvidenceSource::Manager,
            given,
            "cycle-2026-h1",
        )],
    )
    .await;
    for (at, scored) in [
        (as_of(), true),
        (given + Duration::days(364), true),
        (given + Duration::days(366), false),
    ] {
        let status = staff_status(&mut c, "emp-cycle", "system_design", at).await;
        assert_eq!(
            status != CompetencyStatus::InsufficientEvidence,
            scored,
            "as of {at}: {status:?}"
        );
    }
}

/// The plan's "1 → scored" for a manager holds the day after the rating is
/// given, not only at the instant it is made.
#[tokio::test]
async fn one_observation_to_be_scored_means_one_the_day_after() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    c.record_subject("emp-plan", "senior_engineer").await;
    let response = recommend(&mut c, "emp-plan").await;
    let staff = response
        .recommendations
        .iter()
        .find(|r| r.role_id == "staff_engineer")
        .unwrap();
    for wanted in &staff.evidence_to_collect {
        let manager = wanted
            .sources
            .iter()
            .find(|p| p.source == EvidenceSource::Manager as i32)
            .unwrap();
        assert_eq!(manager.observations_for_enough_evidence, Some(1));
    }
    let competency = &staff.evidence_to_collect[0].competency_id;
    ingest(
        &mut c,
        vec![evidence(
            "emp-plan",
            competency,
            3.0,
            EvidenceSource::Manager,
            as_of(),
            "plan-1",
        )],
    )
    .await;
    let next_day = as_of() + Duration::days(1);
    assert_ne!(
        staff_status(&mut c, "emp-plan", competency, next_day).await,
        CompetencyStatus::InsufficientEvidence
    );
}
