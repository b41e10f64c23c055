//! Human oversight through the API (SPEC §11): explanations of stored and
//! dry-run assessments against the domain's numbers, decision records and
//! their rules, the oversight report's counts, the adverse-impact report on
//! subjects whose bands are known by construction, and labels that reach
//! neither the database nor the logs.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ladder::domain::evidence::Observation;
use ladder::domain::oversight;
use ladder::domain::scoring::{self, Expectation, ScoringPolicy};
use ladder::proto::v1::explain_assessment_request::Target;
use ladder::proto::v1::oversight_service_client::OversightServiceClient;
use ladder::proto::v1::{
    Assessment, BatchCreateEvidenceRequest, CompetencyOverride, ComputeImpactReportRequest,
    CreateAssessmentRequest, DecisionOutcome, DryRunAssessment, Evidence, EvidenceSource,
    ExplainAssessmentRequest, Explanation, GetCompetencyRequest, GetOversightReportRequest,
    GetRoleRequest, GroupLabel, ListDecisionsRequest, ReadinessBand, RecordDecisionRequest, Rubric,
    TimePeriod,
};
use ladder::transport::convert::assessment::source_from_proto;
use tonic::Code;
use uuid::Uuid;

use crate::harness::{
    Authed, Bearer, Clients, LoggedServer, TestServer, bad_fields, evidence, ladder_bin, timestamp,
};

const ROLE: &str = "staff_engineer";

fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

async fn oversight_client(server: &TestServer, tenant: &str) -> OversightServiceClient<Authed> {
    server.clients(tenant).await.oversight
}

async fn rubric(c: &mut Clients) -> Rubric {
    c.published_rubric(ROLE).await
}

async fn ingest(c: &mut Clients, items: Vec<Evidence>) -> Vec<Evidence> {
    let mut stored = Vec::new();
    for chunk in items.chunks(1000) {
        stored.extend(
            c.assessment
                .batch_create_evidence(BatchCreateEvidenceRequest {
                    evidence: chunk.to_vec(),
                })
                .await
                .unwrap()
                .into_inner()
                .evidence,
        );
    }
    stored
}

/// `per` manager observations at exactly the expected level of every rubric
/// competency, a week before `as_of()`: enough for READY with 8.
fn ready_profile(rubric: &Rubric, subject: &str, per: usize) -> Vec<Evidence> {
    let mut items = Vec::new();
    for rc in &rubric.competencies {
        for k in 0..per {
            items.push(evidence(
                subject,
                &rc.competency_id,
                f64::from(rc.expected_level),
                EvidenceSource::Manager,
                as_of() - Duration::days(7),
                &format!("{subject}-{}-{k}", rc.competency_id),
            ));
        }
    }
    items
}

/// Evidence of mixed levels, sources and ages on the first three rubric
/// competencies: a DEVELOPING-or-worse profile with distinct influences.
fn mixed_profile(rubric: &Rubric, subject: &str) -> Vec<Evidence> {
    let sources = [
        EvidenceSource::Peer,
        EvidenceSource::Manager,
        EvidenceSource::Self_,
        EvidenceSource::Artifact,
    ];
    let mut items = Vec::new();
    for (i, rc) in rubric.competencies.iter().take(3).enumerate() {
        for k in 0..4 {
            let mut item = evidence(
                subject,
                &rc.competency_id,
                1.0 + ((i * 7 + k * 3) % 9) as f64 / 2.0,
                sources[(i + k) % sources.len()],
                as_of() - Duration::days(30 + 97 * (i * 4 + k) as i64),
                &format!("{subject}-mixed-{i}-{k}"),
            );
            item.confidence = Some(0.5 + 0.125 * k as f64);
            items.push(item);
        }
    }
    items
}

async fn create_assessment(c: &mut Clients, subject: &str) -> Assessment {
    c.assessment
        .create_assessment(CreateAssessmentRequest {
            subject_id: subject.into(),
            role_id: ROLE.into(),
            as_of: Some(timestamp(as_of())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap()
}

/// The domain's explanation and summary of scoring `stored` evidence against
/// `rubric` with the default policy, and the names the API tells it with.
async fn domain_explanation(
    c: &mut Clients,
    rubric: &Rubric,
    stored: &[Evidence],
) -> (oversight::Explanation, String) {
    let observations: Vec<Observation> = stored
        .iter()
        .map(|e| Observation {
            id: e.id.parse().unwrap(),
            competency_id: e.competency_id.clone(),
            level: e.level,
            source: source_from_proto(e.source).unwrap(),
            confidence: e.confidence.unwrap_or(1.0),
            observed_at: DateTime::from_timestamp(
                e.observed_at.unwrap().seconds,
                e.observed_at.unwrap().nanos as u32,
            )
            .unwrap(),
        })
        .collect();
    let expectations: Vec<Expectation> = rubric
        .competencies
        .iter()
        .map(|rc| Expectation {
            competency_id: rc.competency_id.clone(),
            expected_level: rc.expected_level as u8,
            weight: rc.weight,
            critical: rc.critical,
        })
        .collect();
    let policy = ScoringPolicy::default();
    let score = scoring::score(&observations, &expectations, &policy, as_of()).unwrap();
    let explanation = oversight::explain(&score, &policy, &observations).unwrap();
    let mut names = HashMap::new();
    for rc in &rubric.competencies {
        let competency = c
            .rubric
            .get_competency(GetCompetencyRequest {
                competency_id: rc.competency_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .competency
            .unwrap();
        names.insert(competency.id, competency.name);
    }
    let role_name = c
        .rubric
        .get_role(GetRoleRequest {
            role_id: ROLE.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap()
        .name;
    let summary = oversight::summary(&explanation, &role_name, &names);
    (explanation, summary)
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-12,
        "{what}: {actual} against {expected}"
    );
}

fn assert_explains(api: &Explanation, domain: &oversight::Explanation, summary: &str) {
    assert_eq!(api.band, domain_band(domain.band) as i32);
    assert_close(api.readiness, domain.readiness, "readiness");
    assert_close(api.coverage, domain.coverage, "coverage");
    assert_eq!(api.competencies.len(), domain.competencies.len());
    for (a, d) in api.competencies.iter().zip(&domain.competencies) {
        assert_eq!(a.competency_id, d.competency_id);
        assert_eq!(a.critical, d.critical);
        let what = |field: &str| format!("{}.{field}", d.competency_id);
        assert_close(a.estimated_level, d.estimate, &what("estimate"));
        assert_close(a.bar, d.bar, &what("bar"));
        assert_close(a.probability, d.p, &what("p"));
        assert_close(a.interval_lower, d.interval.lower, &what("lower"));
        assert_close(a.interval_upper, d.interval.upper, &what("upper"));
        assert_close(a.prior_share, d.prior_share, &what("prior_share"));
        assert_eq!(a.evidence_count as usize, d.evidence_count);
        assert_eq!(a.top_influences.len(), d.top_influences.len());
        for (ai, di) in a.top_influences.iter().zip(&d.top_influences) {
            assert_eq!(ai.evidence_id, di.evidence_id.to_string());
            assert_close(ai.delta, di.delta, &what("delta"));
            assert_close(ai.weight, di.weight, &what("weight"));
            assert_close(ai.level, di.level, &what("level"));
        }
    }
    let deciding: Vec<(&str, f64)> = api
        .deciding_competencies
        .iter()
        .map(|d| (d.competency_id.as_str(), d.shortfall))
        .collect();
    let expected: Vec<(&str, f64)> = domain
        .deciding
        .iter()
        .map(|d| (d.competency_id.as_str(), d.shortfall))
        .collect();
    assert_eq!(deciding, expected);
    assert_eq!(api.summary, summary);
}

fn domain_band(band: scoring::Band) -> ReadinessBand {
    match band {
        scoring::Band::InsufficientEvidence => ReadinessBand::InsufficientEvidence,
        scoring::Band::NotYet => ReadinessBand::NotYet,
        scoring::Band::Developing => ReadinessBand::Developing,
        scoring::Band::Ready => ReadinessBand::Ready,
    }
}

async fn explain(
    o: &mut OversightServiceClient<Authed>,
    target: Target,
) -> Result<Explanation, tonic::Status> {
    Ok(o.explain_assessment(ExplainAssessmentRequest {
        target: Some(target),
    })
    .await?
    .into_inner()
    .explanation
    .unwrap())
}

#[tokio::test]
async fn explanations_of_stored_and_dry_run_assessments_are_the_domains() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let mut o = oversight_client(&server, "tenant-a").await;
    let rubric = rubric(&mut c).await;
    let stored = ingest(&mut c, mixed_profile(&rubric, "emp-mixed")).await;
    let (domain, summary) = domain_explanation(&mut c, &rubric, &stored).await;
    assert!(
        domain
            .competencies
            .iter()
            .any(|c| c.top_influences.len() == 3),
        "the case must show three influences somewhere"
    );

    let assessment = create_assessment(&mut c, "emp-mixed").await;
    let of_stored = explain(&mut o, Target::AssessmentId(assessment.id.clone()))
        .await
        .unwrap();
    assert_eq!(of_stored.assessment_id, assessment.id);
    assert_eq!(of_stored.role_id, ROLE);
    assert!(!of_stored.role_name.is_empty());
    assert_explains(&of_stored, &domain, &summary);

    let dry_run = explain(
        &mut o,
        Target::DryRun(DryRunAssessment {
            subject_id: "emp-mixed".into(),
            role_id: ROLE.into(),
            rubric_version: 0,
            as_of: Some(timestamp(as_of())),
        }),
    )
    .await
    .unwrap();
    assert_eq!(dry_run.assessment_id, "");
    assert_explains(&dry_run, &domain, &summary);
    assert_eq!(
        server.count("assessments").await,
        1,
        "a dry run stores nothing"
    );

    // Another tenant's assessment is not found, nor is an unknown one.
    let mut other = oversight_client(&server, "tenant-b").await;
    let err = explain(&mut other, Target::AssessmentId(assessment.id.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = explain(&mut o, Target::AssessmentId(Uuid::now_v7().to_string()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = o
        .explain_assessment(ExplainAssessmentRequest { target: None })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["assessment_id"]);
    let err = explain(
        &mut o,
        Target::DryRun(DryRunAssessment {
            subject_id: "a@b.example".into(),
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(bad_fields(&err), ["dry_run.subject_id", "dry_run.role_id"]);
}

fn decision(
    assessment: &Assessment,
    outcome: DecisionOutcome,
    rationale: &str,
) -> RecordDecisionRequest {
    RecordDecisionRequest {
        assessment_id: assessment.id.clone(),
        outcome: outcome as i32,
        decided_by: "committee-7".into(),
        rationale: rationale.into(),
        ..Default::default()
    }
}

const RATIONALE: &str = "Led the platform migration; peers confirm.";

#[tokio::test]
async fn a_departing_outcome_needs_a_rationale_and_nothing_is_written_without() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let mut o = oversight_client(&server, "tenant-a").await;
    let rubric = rubric(&mut c).await;
    ingest(&mut c, mixed_profile(&rubric, "emp-1")).await;
    let assessment = create_assessment(&mut c, "emp-1").await;
    assert_ne!(assessment.band, ReadinessBand::Ready as i32);

    let err = o
        .record_decision(decision(
            &assessment,
            DecisionOutcome::Advance,
            "  too short  ",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), ["rationale"]);
    let mut bad = decision(&assessment, DecisionOutcome::Unspecified, "");
    bad.decided_by = "boss@example.com".into();
    bad.overrides = vec![CompetencyOverride {
        competency_id: "not_in_rubric".into(),
        level: 9,
        // A missing reason would be refused as a missing required field,
        // before these checks of the values run.
        reason: "sees it otherwise".into(),
        assessed_estimate: 0.0,
    }];
    let err = o.record_decision(bad.clone()).await.unwrap_err();
    assert_eq!(bad_fields(&err), ["outcome"]);
    bad.outcome = DecisionOutcome::Hold as i32;
    let err = o.record_decision(bad).await.unwrap_err();
    assert_eq!(
        bad_fields(&err),
        [
            "decided_by",
            "overrides[0].competency_id",
            "overrides[0].level"
        ]
    );
    assert_eq!(server.count("decisions").await, 0);

    // With the rationale it is recorded, copying the band it departs from.
    let recorded = o
        .record_decision(decision(&assessment, DecisionOutcome::Advance, RATIONALE))
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();
    assert_eq!(recorded.band, assessment.band);
    assert_eq!(recorded.subject_id, "emp-1");
    assert_eq!(server.count("decisions").await, 1);

    // Another tenant cannot decide on it.
    let mut other = oversight_client(&server, "tenant-b").await;
    let err = other
        .record_decision(decision(&assessment, DecisionOutcome::Hold, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn decisions_are_appended_never_changed() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let mut o = oversight_client(&server, "tenant-a").await;
    let rubric = rubric(&mut c).await;
    ingest(&mut c, mixed_profile(&rubric, "emp-1")).await;
    let assessment = create_assessment(&mut c, "emp-1").await;

    let mut first = decision(&assessment, DecisionOutcome::Hold, "");
    first.request_id = "req-1".into();
    let held = o.record_decision(first.clone()).await.unwrap().into_inner();
    // A retry returns the first record and writes nothing.
    let retried = o.record_decision(first).await.unwrap().into_inner();
    assert_eq!(retried, held);
    let advanced = o
        .record_decision(decision(&assessment, DecisionOutcome::Advance, RATIONALE))
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();

    let listed = o
        .list_decisions(ListDecisionsRequest {
            subject_id: "emp-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let outcomes: Vec<i32> = listed.decisions.iter().map(|d| d.outcome).collect();
    assert_eq!(
        outcomes,
        [
            DecisionOutcome::Advance as i32,
            DecisionOutcome::Hold as i32
        ],
        "newest first, the earlier one kept as it was"
    );
    assert_eq!(listed.decisions[0], advanced);
    assert_eq!(Some(&listed.decisions[1]), held.decision.as_ref());

    // Paged by one, by role, the same two.
    let page = o
        .list_decisions(ListDecisionsRequest {
            role_id: ROLE.into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.decisions, listed.decisions[..1]);
    let rest = o
        .list_decisions(ListDecisionsRequest {
            role_id: ROLE.into(),
            page_size: 1,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.decisions, listed.decisions[1..]);
    let err = o
        .list_decisions(ListDecisionsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["subject_id"]);

    // The database itself refuses to edit a record.
    let edit = sqlx::query("UPDATE decisions SET rationale = 'rewritten history'")
        .execute(&server.pool)
        .await
        .unwrap_err();
    let code = edit.as_database_error().and_then(|e| e.code()).unwrap();
    assert_eq!(code, "23000", "{edit}");
    assert_eq!(server.count("decisions").await, 2);
}

fn at(o: &CompetencyOverride) -> (String, i32) {
    (o.competency_id.clone(), o.level)
}

#[tokio::test]
async fn the_oversight_report_counts_the_decisions_in_force() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let mut o = oversight_client(&server, "tenant-a").await;
    let rubric = rubric(&mut c).await;
    ingest(&mut c, mixed_profile(&rubric, "emp-1")).await;
    ingest(&mut c, ready_profile(&rubric, "emp-2", 8)).await;
    c.record_subject("emp-3", "senior_engineer").await;
    let developing = create_assessment(&mut c, "emp-1").await;
    let ready = create_assessment(&mut c, "emp-2").await;
    let undecided = create_assessment(&mut c, "emp-3").await;
    assert_eq!(ready.band, ReadinessBand::Ready as i32);
    assert_ne!(developing.band, ReadinessBand::Ready as i32);

    let start = Utc::now() - Duration::hours(1);
    // emp-1: HOLD agrees, then superseded by an ADVANCE that departs.
    o.record_decision(decision(&developing, DecisionOutcome::Hold, ""))
        .await
        .unwrap();
    o.record_decision(decision(&developing, DecisionOutcome::Advance, RATIONALE))
        .await
        .unwrap();
    // emp-2: ADVANCE agrees, with three overrides of competencies assessed
    // at level 4: 8 manager observations at 4 a week old, each of weight
    // w = 0.5^(7/365), and the prior 3 give m = (3 + 32w) / (1 + 8w) ≈ 3.89.
    let mut advance = decision(&ready, DecisionOutcome::Advance, "");
    let four: Vec<&str> = rubric
        .competencies
        .iter()
        .filter(|rc| rc.expected_level == 4)
        .map(|rc| rc.competency_id.as_str())
        .take(3)
        .collect();
    assert_eq!(four.len(), 3, "the staff rubric expects level 4 of several");
    advance.overrides = [5, 2, 4]
        .iter()
        .zip(&four)
        .map(|(level, id)| CompetencyOverride {
            competency_id: id.to_string(),
            level: *level,
            reason: "seen in the design reviews".into(),
            assessed_estimate: 0.0,
        })
        .collect();
    let recorded = o
        .record_decision(advance)
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();
    assert_eq!(
        recorded.overrides.iter().map(at).collect::<Vec<_>>(),
        [
            (four[0].to_string(), 5),
            (four[1].to_string(), 2),
            (four[2].to_string(), 4)
        ]
    );
    let w = 0.5f64.powf(7.0 / 365.0);
    let estimate = (3.0 + 32.0 * w) / (1.0 + 8.0 * w);
    for o in &recorded.overrides {
        assert!((o.assessed_estimate - estimate).abs() < 1e-12, "{o:?}");
    }
    // emp-3: no evidence, DEFER takes no side.
    o.record_decision(decision(&undecided, DecisionOutcome::Defer, ""))
        .await
        .unwrap();
    let end = Utc::now() + Duration::hours(1);

    let report = |start: DateTime<Utc>, end: DateTime<Utc>| GetOversightReportRequest {
        role_id: ROLE.into(),
        period: Some(TimePeriod {
            start: Some(timestamp(start)),
            end: Some(timestamp(end)),
        }),
    };
    let r = o
        .get_oversight_report(report(start, end))
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(
        (r.decisions, r.superseded, r.advance, r.hold, r.defer),
        (3, 1, 2, 0, 1)
    );
    assert_eq!((r.agreed, r.departed, r.agreement_rate), (1, 1, Some(0.5)));
    assert_eq!(
        (r.overrides_above, r.overrides_below, r.overrides_same),
        (1, 1, 1)
    );

    let before = o
        .get_oversight_report(report(start - Duration::days(30), start))
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!((before.decisions, before.agreement_rate), (0, None));
    let err = o
        .get_oversight_report(report(end, start))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["period.end"]);
}

fn label(subject: &str, group: &str) -> GroupLabel {
    GroupLabel {
        subject_id: subject.into(),
        group: group.into(),
    }
}

/// 10 subjects in group A of whom 8 are READY, 10 in B of whom 4 are, 3 in
/// a small group C (1 READY); the others have no evidence at all.
fn impact_case() -> (Vec<(String, bool)>, Vec<GroupLabel>) {
    let mut subjects = Vec::new();
    let mut labels = Vec::new();
    for (group, size, ready) in [("A", 10, 8), ("B", 10, 4), ("C", 3, 1)] {
        for i in 0..size {
            let subject = format!("emp-{group}{i}");
            subjects.push((subject.clone(), i < ready));
            labels.push(label(&subject, group));
        }
    }
    (subjects, labels)
}

async fn readiness_of(c: &mut Clients, subject: &str) -> f64 {
    c.assessment
        .create_assessment(CreateAssessmentRequest {
            subject_id: subject.into(),
            role_id: ROLE.into(),
            as_of: Some(timestamp(as_of())),
            validate_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap()
        .readiness
}

#[tokio::test]
async fn the_impact_report_matches_its_construction_and_the_reference() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let mut o = oversight_client(&server, "tenant-a").await;
    let rubric = rubric(&mut c).await;
    let (subjects, labels) = impact_case();
    let mut items = Vec::new();
    for (subject, ready) in &subjects {
        if *ready {
            items.extend(ready_profile(&rubric, subject, 8));
        }
    }
    ingest(&mut c, items).await;
    c.record_subject("emp-A9", "senior_engineer").await;
    let ready_readiness = readiness_of(&mut c, "emp-A0").await;
    let empty_readiness = readiness_of(&mut c, "emp-A9").await;

    let report = o
        .compute_impact_report(ComputeImpactReportRequest {
            role_id: ROLE.into(),
            as_of: Some(timestamp(as_of())),
            labels: labels.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(report.reference_group, "A");
    assert_eq!((report.label_count, report.group_count), (23, 3));
    let domain_labels: Vec<oversight::GroupLabel> = labels
        .iter()
        .map(|l| oversight::GroupLabel {
            subject_id: l.subject_id.clone(),
            group: l.group.clone(),
        })
        .collect();
    assert_eq!(
        report.labels_sha256,
        oversight::labels_audit(&domain_labels).labels_sha256
    );
    let groups: Vec<(&str, i64)> = report
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.n))
        .collect();
    assert_eq!(groups, [("A", 10), ("B", 10), ("C", 3)]);
    let a = report.groups[0].figures.unwrap();
    let b = report.groups[1].figures.unwrap();
    assert_eq!(
        report.groups[2].figures, None,
        "a group under 5 shows its count only"
    );
    assert_eq!((a.ready, a.rate, a.impact_ratio), (8, 0.8, Some(1.0)));
    assert_eq!((b.ready, b.rate, b.impact_ratio), (4, 0.4, Some(0.5)));
    assert!(!a.below_four_fifths && b.below_four_fifths);
    assert_eq!(a.fisher_p, 1.0);
    // tests/data/oversight_reference.py: fisher_two_sided(4, 6, 8, 2).
    let reference_p = 0.1698023338890212;
    assert!(
        (b.fisher_p - reference_p).abs() <= 1e-9 * reference_p,
        "{}",
        b.fisher_p
    );
    let mean = |ready: f64, empty: f64| (ready * ready_readiness + empty * empty_readiness) / 10.0;
    assert!((a.mean_readiness - mean(8.0, 2.0)).abs() < 1e-12);
    assert!((b.mean_readiness - mean(4.0, 6.0)).abs() < 1e-12);
}

#[tokio::test]
async fn impact_labels_are_bounded_and_the_role_must_exist() {
    let server = TestServer::start().await;
    let mut o = oversight_client(&server, "tenant-a").await;
    let request = |labels: Vec<GroupLabel>| ComputeImpactReportRequest {
        role_id: ROLE.into(),
        as_of: None,
        labels,
    };
    let too_many: Vec<GroupLabel> = (0..10_001).map(|i| label(&format!("s{i}"), "A")).collect();
    let err = o
        .compute_impact_report(request(too_many))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), ["labels"]);
    let groups: Vec<GroupLabel> = (0..51)
        .map(|i| label(&format!("s{i}"), &format!("g{i}")))
        .collect();
    let err = o.compute_impact_report(request(groups)).await.unwrap_err();
    assert_eq!(bad_fields(&err), ["labels"]);
    let twice = vec![label("s1", "A"), label("s1", "B")];
    let err = o.compute_impact_report(request(twice)).await.unwrap_err();
    assert_eq!(bad_fields(&err), ["labels[1].subject_id"]);
    let err = o
        .compute_impact_report(request(Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["labels"]);
    let err = o
        .compute_impact_report(ComputeImpactReportRequest {
            role_id: String::new(),
            ..request(vec![label("s1", "A")])
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["role_id"]);
    let err = o
        .compute_impact_report(ComputeImpactReportRequest {
            role_id: "no_such_role".into(),
            ..request(vec![label("s1", "A")])
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Exactly the bound is served.
    let most: Vec<GroupLabel> = (0..10_000)
        .map(|i| label(&format!("s{i}"), &format!("g{}", i % 50)))
        .collect();
    let report = o
        .compute_impact_report(request(most))
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!((report.label_count, report.group_count), (10_000, 50));
    assert!(report.groups.iter().all(|g| g.n == 200));
}

/// Runs a `ladder` client command against `server`; its stdout on success.
fn ladder(server: &LoggedServer, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(ladder_bin())
        .args(args)
        .args(["--server", &server.url()])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Rows anywhere in the database whose text holds `needle`, by table.
async fn rows_holding(pool: &sqlx::PgPool, needle: &str) -> Vec<(String, i64)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "decisions"), "{tables:?}");
    let mut found = Vec::new();
    for table in tables {
        // A whole row as text holds every column's value.
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{table}\" AS r WHERE strpos(r::text, $1) > 0"
        ))
        .bind(needle)
        .fetch_one(pool)
        .await
        .unwrap();
        if count > 0 {
            found.push((table, count));
        }
    }
    found
}

#[tokio::test]
async fn the_cli_commands_run_and_labels_reach_no_table_and_no_log() {
    let test_server = TestServer::start().await;
    let server = LoggedServer::start(&test_server.app_database_url());
    let channel = tonic::transport::Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = Clients::on(channel, Bearer(None));
    let rubric = rubric(&mut c).await;
    let mut items = Vec::new();
    for i in 0..5 {
        items.extend(ready_profile(&rubric, &format!("emp-cli-{i}"), 8));
    }
    items.extend(mixed_profile(&rubric, "emp-cli-5"));
    ingest(&mut c, items).await;
    let assessment = create_assessment(&mut c, "emp-cli-0").await;
    assert_eq!(assessment.band, ReadinessBand::Ready as i32);

    let explained = ladder(&server, &["explain", "--assessment", &assessment.id]).unwrap();
    assert!(
        explained.contains(&format!("assessment {}", assessment.id)),
        "{explained}"
    );
    assert!(
        explained.contains("80% interval") && explained.contains("Ready for"),
        "{explained}"
    );
    let dry_run = ladder(
        &server,
        &[
            "explain",
            "--subject",
            "emp-cli-5",
            "--role",
            ROLE,
            "--as-of",
            "2026-06-01T12:00:00Z",
        ],
    )
    .unwrap();
    assert!(dry_run.contains("dry run, not stored"), "{dry_run}");

    // HOLD on READY departs from the band: without a rationale it is refused.
    let refused = ladder(
        &server,
        &[
            "decide",
            "--assessment",
            &assessment.id,
            "--outcome",
            "hold",
            "--by",
            "committee-7",
        ],
    )
    .unwrap_err();
    assert!(
        refused.contains("INVALID_ARGUMENT: rationale:"),
        "{refused}"
    );
    let competency = &rubric.competencies[0].competency_id;
    let decided = ladder(
        &server,
        &[
            "decide",
            "--assessment",
            &assessment.id,
            "--outcome",
            "hold",
            "--by",
            "committee-7",
            "--rationale",
            "Moves to a new team next quarter; revisit then.",
            "--override",
            &format!("{competency}:3:the last project slipped: twice"),
        ],
    )
    .unwrap();
    assert!(
        decided.contains("HOLD") && decided.contains("band READY"),
        "{decided}"
    );
    assert!(
        decided.contains("the last project slipped: twice"),
        "{decided}"
    );

    let (from, to) = (
        (Utc::now() - Duration::hours(1)).to_rfc3339(),
        (Utc::now() + Duration::hours(1)).to_rfc3339(),
    );
    let report = ladder(
        &server,
        &["oversight", "--role", ROLE, "--from", &from, "--to", &to],
    )
    .unwrap();
    for line in [
        "decisions in force      1",
        "departed from band      1",
        "overrides below         1",
    ] {
        assert!(report.contains(line), "{line:?} missing from\n{report}");
    }

    // A label no table or log may ever hold.
    let secret = "Zq-orchid-7731-label";
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    let mut csv = String::from("subject_id,group\n");
    for i in 0..5 {
        csv.push_str(&format!("emp-cli-{i},{secret}\n"));
    }
    csv.push_str("emp-cli-5,other\n");
    std::fs::write(&labels, csv).unwrap();
    let impact = ladder(
        &server,
        &[
            "impact",
            "--role",
            ROLE,
            "--labels",
            labels.to_str().unwrap(),
            "--as-of",
            "2026-06-01T12:00:00Z",
        ],
    )
    .unwrap();
    assert!(
        impact.contains(&format!("reference group: {secret}")),
        "{impact}"
    );
    assert!(impact.contains("(fewer than 5: count only)"), "{impact}");
    assert!(impact.contains("6 labels in 2 groups"), "{impact}");

    let log = server.stop().await;
    // The audit row keeps the counts and the labels' digest, no label.
    let audited: String = sqlx::query_scalar(
        "SELECT resource FROM audit_log WHERE method = 'ladder.v1.OversightService/ComputeImpactReport'",
    )
    .fetch_one(&test_server.pool)
    .await
    .unwrap();
    assert!(audited.contains("labels=6&groups=2&sha256="), "{audited}");
    let leaks: Vec<&String> = log.iter().filter(|line| line.contains(secret)).collect();
    assert!(leaks.is_empty(), "the label reached the log: {leaks:?}");
    assert_eq!(rows_holding(&test_server.pool, secret).await, []);
    // The search does find what is stored.
    assert_eq!(
        rows_holding(&test_server.pool, "Moves to a new team").await,
        [("decisions".to_string(), 1)]
    );
}
