//! Evidence ingest and assessments through the API.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ladder::proto::v1::{
    BatchCreateEvidenceRequest, CreateAssessmentRequest, EvidenceSource, GetAssessmentRequest,
    GetEvidenceRequest, GetScoringPolicyRequest, ListAssessmentsRequest, ListEvidenceRequest,
    ScoringPolicy, UpdateScoringPolicyRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{TestServer, bad_fields, evidence, timestamp};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 9, 30, 0).unwrap()
}

fn batch(items: Vec<ladder::proto::v1::Evidence>) -> BatchCreateEvidenceRequest {
    BatchCreateEvidenceRequest { evidence: items }
}

#[tokio::test]
async fn a_batch_with_one_bad_item_writes_nothing_and_names_it() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let mut items: Vec<_> = (0..5)
        .map(|i| {
            evidence(
                "emp-1",
                "system_design",
                4.0,
                EvidenceSource::Manager,
                t0(),
                &format!("e{i}"),
            )
        })
        .collect();
    items[3].level = 7.0;
    items[4].competency_id = "juggling".into();
    let status = c
        .assessment
        .batch_create_evidence(batch(items))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields = bad_fields(&status);
    assert!(
        fields.contains(&"evidence[3].level".to_string()),
        "{fields:?}"
    );
    assert_eq!(server.count("evidence").await, 0);

    // The unknown competency is caught too, once the fields are right.
    let mut items: Vec<_> = (0..2)
        .map(|i| {
            evidence(
                "emp-1",
                "system_design",
                4.0,
                EvidenceSource::Manager,
                t0(),
                &format!("e{i}"),
            )
        })
        .collect();
    items[1].competency_id = "juggling".into();
    let status = c
        .assessment
        .batch_create_evidence(batch(items))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        vec!["evidence[1].competency_id".to_string()]
    );
    assert_eq!(server.count("evidence").await, 0);
}

#[tokio::test]
async fn personal_identifiers_are_refused() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let item = evidence(
        "jane.doe@example.com",
        "system_design",
        4.0,
        EvidenceSource::Peer,
        t0(),
        "x",
    );
    let status = c
        .assessment
        .batch_create_evidence(batch(vec![item]))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        vec!["evidence[0].subject_id".to_string()]
    );
    assert_eq!(server.count("evidence").await, 0);
}

#[tokio::test]
async fn a_retried_batch_writes_nothing_twice() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let items: Vec<_> = (0..5)
        .map(|i| {
            evidence(
                "emp-1",
                "mentoring",
                3.0 + f64::from(i) * 0.25,
                EvidenceSource::Peer,
                t0(),
                &format!("k{i}"),
            )
        })
        .collect();
    let first = c
        .assessment
        .batch_create_evidence(batch(items.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.created_count, 5);
    let again = c
        .assessment
        .batch_create_evidence(batch(items))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.created_count, 0);
    assert_eq!(
        again.evidence, first.evidence,
        "a retry returns the stored items"
    );
    assert_eq!(server.count("evidence").await, 5);
}

#[tokio::test]
async fn a_conflicting_resend_is_rejected_and_the_stored_item_is_unchanged() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let original = evidence("emp-1", "mentoring", 3.0, EvidenceSource::Peer, t0(), "k1");
    let stored = c
        .assessment
        .batch_create_evidence(batch(vec![original.clone()]))
        .await
        .unwrap()
        .into_inner();
    let mut changed = original.clone();
    changed.level = 4.5;
    let fresh = evidence("emp-1", "mentoring", 3.0, EvidenceSource::Peer, t0(), "k2");
    let status = c
        .assessment
        .batch_create_evidence(batch(vec![fresh, changed]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert!(info.metadata.contains_key("evidence[1]"), "{info:?}");
    assert_eq!(
        server.count("evidence").await,
        1,
        "the batch is all or nothing"
    );
    let got = c
        .assessment
        .get_evidence(GetEvidenceRequest {
            evidence_id: stored.evidence[0].id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .evidence
        .unwrap();
    assert_eq!(got.level, 3.0);
}

#[tokio::test]
async fn list_evidence_pages_through_everything_in_a_stable_order() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let items: Vec<_> = (0..7)
        .map(|i| {
            evidence(
                "emp-1",
                "mentoring",
                3.0,
                EvidenceSource::Peer,
                t0() + Duration::days(i),
                &format!("p{i}"),
            )
        })
        .collect();
    c.assessment
        .batch_create_evidence(batch(items))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .assessment
            .list_evidence(ListEvidenceRequest {
                subject_id: "emp-1".into(),
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.evidence.len() <= 3);
        seen.extend(page.evidence.into_iter().map(|e| e.external_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, (0..7).map(|i| format!("p{i}")).collect::<Vec<_>>());
    let status = c
        .assessment
        .list_evidence(ListEvidenceRequest {
            subject_id: "emp-1".into(),
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), vec!["page_token".to_string()]);
}

/// One manager observation at level 4, observed at `as_of`, full confidence:
/// w = 1, n = 1, m = (1·3 + 1·4) / 2 = 3.5, sd = 1/√2, and against an expected
/// level of 4 (bar 3.5) p = Φ(0) = 0.5 exactly; gap 0; status MEETS.
#[tokio::test]
async fn an_assessment_carries_every_number_and_is_a_stable_snapshot() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let as_of = t0() + Duration::days(30);
    let early = evidence(
        "emp-7",
        "system_design",
        4.0,
        EvidenceSource::Manager,
        as_of,
        "sd-1",
    );
    let late = evidence(
        "emp-7",
        "system_design",
        1.0,
        EvidenceSource::Manager,
        as_of + Duration::days(1),
        "sd-2",
    );
    let stored = c
        .assessment
        .batch_create_evidence(batch(vec![early, late]))
        .await
        .unwrap()
        .into_inner();
    let request = CreateAssessmentRequest {
        subject_id: "emp-7".into(),
        role_id: "staff_engineer".into(),
        as_of: Some(timestamp(as_of)),
        ..Default::default()
    };
    let created = c
        .assessment
        .create_assessment(request.clone())
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    let sd = created
        .competencies
        .iter()
        .find(|x| x.competency_id == "system_design")
        .unwrap();
    assert_eq!(sd.expected_level, 4);
    assert!((sd.effective_evidence - 1.0).abs() < 1e-12);
    assert!((sd.estimated_level - 3.5).abs() < 1e-12);
    assert!((sd.standard_deviation - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
    assert!((sd.probability - 0.5).abs() < 1e-12);
    assert_eq!(sd.gap, 0.0);
    // The later observation is after as_of and left out.
    assert_eq!(sd.contributions.len(), 1);
    assert_eq!(sd.contributions[0].evidence_id, stored.evidence[0].id);

    // New evidence and a new policy change nothing in the stored snapshot.
    c.assessment
        .batch_create_evidence(batch(vec![evidence(
            "emp-7",
            "system_design",
            5.0,
            EvidenceSource::Calibration,
            t0(),
            "sd-3",
        )]))
        .await
        .unwrap();
    c.assessment
        .update_scoring_policy(UpdateScoringPolicyRequest {
            policy: Some(ScoringPolicy {
                sigma: 0.5,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["sigma".into()],
            }),
        })
        .await
        .unwrap();
    let later = c
        .assessment
        .get_assessment(GetAssessmentRequest {
            assessment_id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(later, created);
    let rescored = c
        .assessment
        .create_assessment(request)
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_ne!(rescored.competencies, created.competencies);
    assert_eq!(rescored.policy.unwrap().sigma, 0.5);

    let listed = c
        .assessment
        .list_assessments(ListAssessmentsRequest {
            subject_id: "emp-7".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = listed.assessments.iter().map(|a| a.id.clone()).collect();
    assert_eq!(ids, vec![rescored.id, created.id], "newest first");
}

#[tokio::test]
async fn validate_only_and_request_id_do_not_write_twice() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    c.record_subject("emp-9", "senior_engineer").await;
    let request = CreateAssessmentRequest {
        subject_id: "emp-9".into(),
        role_id: "staff_engineer".into(),
        validate_only: true,
        ..Default::default()
    };
    c.assessment
        .create_assessment(request.clone())
        .await
        .unwrap();
    assert_eq!(server.count("assessments").await, 0);
    let retried = CreateAssessmentRequest {
        validate_only: false,
        request_id: "req-1".into(),
        ..request
    };
    let first = c
        .assessment
        .create_assessment(retried.clone())
        .await
        .unwrap()
        .into_inner();
    let second = c
        .assessment
        .create_assessment(retried)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    assert_eq!(server.count("assessments").await, 1);
}

#[tokio::test]
async fn the_scoring_policy_is_validated_and_guarded_by_its_etag() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let policy = c
        .assessment
        .get_scoring_policy(GetScoringPolicyRequest {})
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(policy.half_life_days, 365.0);
    assert_eq!(policy.source_weights.unwrap().calibration, 1.5);
    let bad = c
        .assessment
        .update_scoring_policy(UpdateScoringPolicyRequest {
            policy: Some(ScoringPolicy {
                sigma: -1.0,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["sigma".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&bad), vec!["policy.sigma".to_string()]);
    assert_eq!(server.count("scoring_policies").await, 0);
    let updated = c
        .assessment
        .update_scoring_policy(UpdateScoringPolicyRequest {
            policy: Some(ScoringPolicy {
                half_life_days: 180.0,
                etag: policy.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["half_life_days".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(updated.half_life_days, 180.0);
    assert_eq!(
        updated.sigma, 1.0,
        "fields outside the mask keep their values"
    );
    let stale = c
        .assessment
        .update_scoring_policy(UpdateScoringPolicyRequest {
            policy: Some(ScoringPolicy {
                half_life_days: 90.0,
                etag: policy.etag,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["half_life_days".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
}

#[tokio::test]
async fn two_tenants_never_see_each_other() {
    let server = TestServer::start().await;
    let mut a = server.clients("tenant-a").await;
    let mut b = server.clients("tenant-b").await;
    let stored = a
        .assessment
        .batch_create_evidence(batch(vec![evidence(
            "emp-1",
            "system_design",
            5.0,
            EvidenceSource::Manager,
            t0(),
            "x1",
        )]))
        .await
        .unwrap()
        .into_inner();
    let assessment = a
        .assessment
        .create_assessment(CreateAssessmentRequest {
            subject_id: "emp-1".into(),
            role_id: "staff_engineer".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    let listed = b
        .assessment
        .list_evidence(ListEvidenceRequest {
            subject_id: "emp-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.evidence.is_empty());
    let err = b
        .assessment
        .get_evidence(GetEvidenceRequest {
            evidence_id: stored.evidence[0].id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = b
        .assessment
        .get_assessment(GetAssessmentRequest {
            assessment_id: assessment.id,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let assess_emp_1 = CreateAssessmentRequest {
        subject_id: "emp-1".into(),
        role_id: "staff_engineer".into(),
        ..Default::default()
    };
    // tenant-a's subject is no one to tenant-b until tenant-b records it.
    let err = b
        .assessment
        .create_assessment(assess_emp_1.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    b.record_subject("emp-1", "senior_engineer").await;
    let theirs = b
        .assessment
        .create_assessment(assess_emp_1)
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert!(
        theirs
            .competencies
            .iter()
            .all(|c| c.contributions.is_empty())
    );
    let listed = b
        .assessment
        .list_assessments(ListAssessmentsRequest {
            subject_id: "emp-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.assessments.len(),
        1,
        "only tenant-b's own assessment"
    );
    assert_eq!(listed.assessments[0].id, theirs.id);
    // The same key in another tenant is another tenant's evidence.
    let same_key = b
        .assessment
        .batch_create_evidence(batch(vec![evidence(
            "emp-1",
            "system_design",
            2.0,
            EvidenceSource::Manager,
            t0(),
            "x1",
        )]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same_key.created_count, 1);
}

#[tokio::test]
async fn values_postgresql_cannot_hold_are_refused_by_field() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let mut nul = evidence("emp-1", "mentoring", 3.0, EvidenceSource::Peer, t0(), "n1");
    nul.summary = "before\0after".into();
    let mut far = evidence("emp-1", "mentoring", 3.0, EvidenceSource::Peer, t0(), "n2");
    far.observed_at = Some(prost_types::Timestamp {
        seconds: 400_000_000_000,
        nanos: 0,
    });
    let status = c
        .assessment
        .batch_create_evidence(batch(vec![nul, far]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(fields, ["evidence[0].summary", "evidence[1].observed_at"]);
    assert_eq!(server.count("evidence").await, 0);
}

#[tokio::test]
async fn masking_source_weights_without_sending_them_is_refused() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let status = c
        .assessment
        .update_scoring_policy(UpdateScoringPolicyRequest {
            policy: Some(ScoringPolicy::default()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["source_weights".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        vec!["policy.source_weights".to_string()]
    );
    assert_eq!(server.count("scoring_policies").await, 0);
}

#[tokio::test]
async fn evidence_from_the_future_is_refused_and_confidence_defaults_to_one() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let now = Utc::now();
    let mut late = evidence(
        "emp-1",
        "mentoring",
        4.0,
        EvidenceSource::Peer,
        now + Duration::days(2),
        "late",
    );
    late.confidence = None;
    let status = c
        .assessment
        .batch_create_evidence(batch(vec![late]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["evidence[0].observed_at"]);
    assert_eq!(server.count("evidence").await, 0);

    // Half a day ahead is a clock or a time zone, not the future.
    let mut soon = evidence(
        "emp-1",
        "mentoring",
        4.0,
        EvidenceSource::Peer,
        now + Duration::hours(12),
        "soon",
    );
    soon.confidence = None;
    let stored = c
        .assessment
        .batch_create_evidence(batch(vec![soon]))
        .await
        .unwrap()
        .into_inner()
        .evidence;
    assert_eq!(stored[0].confidence, Some(1.0));
}

#[tokio::test]
async fn a_subject_with_evidence_exists_and_can_be_given_a_role() {
    use ladder::proto::v1::{GetSubjectRequest, Subject, UpdateSubjectRequest};
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let item = evidence("emp-7", "mentoring", 4.0, EvidenceSource::Peer, t0(), "k7");
    c.assessment
        .batch_create_evidence(batch(vec![item]))
        .await
        .unwrap();

    let subject = c
        .assessment
        .get_subject(GetSubjectRequest {
            subject_id: "emp-7".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert_eq!(
        (subject.id.as_str(), subject.current_role_id.as_str()),
        ("emp-7", "")
    );
    let nobody = c
        .assessment
        .get_subject(GetSubjectRequest {
            subject_id: "emp-none".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(nobody.code(), Code::NotFound);

    let update = |id: &str, etag: String| UpdateSubjectRequest {
        subject: Some(Subject {
            id: id.into(),
            current_role_id: "staff_engineer".into(),
            etag,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["current_role_id".into()],
        }),
        allow_missing: false,
    };
    let updated = c
        .assessment
        .update_subject(update("emp-7", subject.etag.clone()))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert_eq!(updated.current_role_id, "staff_engineer");
    // The etag read before the subject had a row is stale now.
    let stale = c
        .assessment
        .update_subject(update("emp-7", subject.etag))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let missing = c
        .assessment
        .update_subject(update("emp-none", String::new()))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn what_if_without_evidence_it_names_is_not_found() {
    use ladder::proto::v1::WhatIfRequest;
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let item = evidence("emp-1", "mentoring", 4.0, EvidenceSource::Peer, t0(), "k1");
    c.assessment
        .batch_create_evidence(batch(vec![item]))
        .await
        .unwrap();
    let status = c
        .recommendation
        .what_if(WhatIfRequest {
            subject_id: "emp-1".into(),
            current_role_id: "senior_engineer".into(),
            removed_evidence_ids: vec![uuid::Uuid::new_v4().to_string()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}
