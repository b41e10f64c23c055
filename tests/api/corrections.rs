//! Corrections of stored evidence (SPEC §6): a conflicting re-send names the
//! stored evidence and the fields that differ; `UpdateEvidence` corrects
//! with a mask and an etag, audited; an update without a mask changes the
//! fields the request sets (AIP-134), for every update of the API.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ladder::proto::v1 as pb;
use pb::EvidenceSource;
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{self, Clients, TestServer, bad_fields, evidence, timestamp};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 9, 30, 0).unwrap()
}

fn rating(key: &str) -> pb::Evidence {
    evidence("emp-1", "mentoring", 3.0, EvidenceSource::Peer, t0(), key)
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

async fn ingest(
    c: &mut Clients,
    items: Vec<pb::Evidence>,
) -> Result<pb::BatchCreateEvidenceResponse, tonic::Status> {
    c.assessment
        .batch_create_evidence(pb::BatchCreateEvidenceRequest { evidence: items })
        .await
        .map(|r| r.into_inner())
}

async fn get(c: &mut Clients, id: &str) -> pb::Evidence {
    c.assessment
        .get_evidence(pb::GetEvidenceRequest {
            evidence_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .evidence
        .unwrap()
}

async fn update(
    c: &mut Clients,
    evidence: pb::Evidence,
    paths: Option<&[&str]>,
) -> Result<pb::Evidence, tonic::Status> {
    c.assessment
        .update_evidence(pb::UpdateEvidenceRequest {
            evidence: Some(evidence),
            update_mask: paths.and_then(mask),
        })
        .await
        .map(|r| r.into_inner().evidence.unwrap())
}

/// The audit rows of `UpdateEvidence` calls.
async fn corrections_audited(server: &TestServer) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE method = 'ladder.v1.AssessmentService/UpdateEvidence'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap()
}

/// One field of an item changed in place.
type Change = fn(&mut pb::Evidence);

#[tokio::test]
async fn a_conflicting_resend_names_the_stored_evidence_and_each_field_that_differs() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let original = rating("k1");
    let stored = ingest(&mut c, vec![original.clone()])
        .await
        .unwrap()
        .evidence[0]
        .clone();

    // The same content again is "already present", as stored.
    let again = ingest(&mut c, vec![original.clone()]).await.unwrap();
    assert_eq!(again.created_count, 0);
    assert_eq!(again.evidence[0], stored);

    let changes: [(&str, Change); 9] = [
        ("subject_id", |e| e.subject_id = "emp-2".into()),
        ("competency_id", |e| {
            e.competency_id = "system_design".into()
        }),
        ("level", |e| e.level = 4.5),
        ("source", |e| e.source = EvidenceSource::Manager as i32),
        ("rater_id", |e| e.rater_id = "rater-2".into()),
        ("observed_at", |e| {
            e.observed_at = Some(timestamp(t0() + Duration::days(1)))
        }),
        ("confidence", |e| e.confidence = Some(0.5)),
        ("summary", |e| e.summary = "a second opinion".into()),
        ("link", |e| e.link = "https://example.com/review".into()),
    ];
    for (field, change) in changes {
        let mut changed = original.clone();
        change(&mut changed);
        let status = ingest(&mut c, vec![rating("fresh"), changed])
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::AlreadyExists, "{field}: {status:?}");
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "EVIDENCE_KEY_CONFLICT");
        let said = |key: &str| info.metadata.get(key).map(String::as_str);
        assert_eq!(said("index"), Some("1"), "{info:?}");
        assert_eq!(said("evidence_id"), Some(stored.id.as_str()), "{info:?}");
        assert_eq!(said("fields"), Some(field), "{info:?}");
        assert_eq!(said("conflicts"), Some("1"), "{info:?}");
        assert_eq!(
            said("evidence[1]"),
            Some(format!("{}: {field}", stored.id).as_str())
        );
        assert!(
            status.message().contains(&stored.id)
                && status.message().contains(&format!("different {field}"))
                && status.message().contains("evidence[1]"),
            "{status:?}"
        );
    }
    assert_eq!(
        server.count("evidence").await,
        1,
        "each batch wrote nothing"
    );
    assert_eq!(get(&mut c, &stored.id).await, stored);

    // Many conflicts: the first hundred are listed, and counted all.
    let many: Vec<pb::Evidence> = (0..101).map(|i| rating(&format!("m{i}"))).collect();
    ingest(&mut c, many.clone()).await.unwrap();
    let changed: Vec<pb::Evidence> = many
        .into_iter()
        .map(|e| pb::Evidence { level: 5.0, ..e })
        .collect();
    let status = ingest(&mut c, changed).await.unwrap_err();
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.metadata["conflicts"], "101");
    let listed = info
        .metadata
        .keys()
        .filter(|k| k.starts_with("evidence["))
        .count();
    assert_eq!(listed, 100);
}

#[tokio::test]
async fn update_evidence_corrects_the_masked_fields_with_a_new_etag_and_is_audited() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let stored = ingest(&mut c, vec![rating("k1")]).await.unwrap().evidence[0].clone();
    assert_eq!(stored.etag, get(&mut c, &stored.id).await.etag);
    assert!(!stored.etag.is_empty());

    let corrected = update(
        &mut c,
        pb::Evidence {
            id: stored.id.clone(),
            etag: stored.etag.clone(),
            level: 4.5,
            summary: "rated on the wrong scale".into(),
            // Not in the mask: left as stored.
            rater_id: "someone-else".into(),
            ..Default::default()
        },
        Some(&["level", "summary"]),
    )
    .await
    .unwrap();
    assert_ne!(corrected.etag, stored.etag);
    assert_eq!(
        corrected,
        pb::Evidence {
            level: 4.5,
            summary: "rated on the wrong scale".into(),
            etag: corrected.etag.clone(),
            ..stored.clone()
        }
    );
    assert_eq!(get(&mut c, &stored.id).await, corrected);
    assert_eq!(corrections_audited(&server).await, 1);
    let events = c
        .audit
        .list_audit_events(pb::ListAuditEventsRequest {
            method: "ladder.v1.AssessmentService/UpdateEvidence".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert_eq!(events[0].resource, format!("evidence/{}", stored.id));
    assert_eq!(events[0].outcome, "Ok");

    // Without a mask, by the caller's key: only what the request sets
    // changes (AIP-134); the rater, summary and level stay.
    let by_key = update(
        &mut c,
        pb::Evidence {
            source_system: "hris".into(),
            external_id: "k1".into(),
            confidence: Some(0.5),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        by_key,
        pb::Evidence {
            confidence: Some(0.5),
            etag: by_key.etag.clone(),
            ..corrected.clone()
        }
    );
    assert_ne!(by_key.etag, corrected.etag);
    assert_eq!(corrections_audited(&server).await, 2);

    // A masked field that is not sent is cleared.
    let cleared = update(
        &mut c,
        pb::Evidence {
            id: stored.id.clone(),
            ..Default::default()
        },
        Some(&["summary"]),
    )
    .await
    .unwrap();
    assert_eq!(cleared.summary, "");
    assert_eq!(cleared.level, 4.5);
}

#[tokio::test]
async fn a_stale_etag_is_aborted_and_changes_nothing() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let stored = ingest(&mut c, vec![rating("k1")]).await.unwrap().evidence[0].clone();
    let first = pb::Evidence {
        id: stored.id.clone(),
        etag: stored.etag.clone(),
        level: 4.0,
        ..Default::default()
    };
    let now = update(&mut c, first.clone(), Some(&["level"]))
        .await
        .unwrap();
    let status = update(
        &mut c,
        pb::Evidence {
            level: 2.0,
            ..first
        },
        Some(&["level"]),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(get(&mut c, &stored.id).await, now);
}

#[tokio::test]
async fn the_key_subject_and_id_cannot_be_corrected_and_nothing_is_written() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let stored = ingest(&mut c, vec![rating("k1")]).await.unwrap().evidence[0].clone();
    for path in [
        "id",
        "subject_id",
        "competency_id",
        "source_system",
        "external_id",
        "etag",
        "salary",
    ] {
        let status = update(
            &mut c,
            pb::Evidence {
                id: stored.id.clone(),
                subject_id: "emp-2".into(),
                external_id: "k2".into(),
                level: 3.0,
                ..Default::default()
            },
            Some(&["level", path]),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
        assert!(
            bad_fields(&status).contains(&"update_mask".to_string()),
            "{path}: {status:?}"
        );
        assert!(
            status.message().contains(&format!("{path:?}")),
            "{status:?}"
        );
    }
    // Without a mask, a request that sets nothing changes nothing (AIP-134).
    let unchanged = update(
        &mut c,
        pb::Evidence {
            id: stored.id.clone(),
            etag: stored.etag.clone(),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(unchanged, stored);
    assert_eq!(get(&mut c, &stored.id).await, stored);
    // Only that call, which wrote nothing, is in the audit log: the refused
    // ones are not.
    assert_eq!(corrections_audited(&server).await, 1);
}

#[tokio::test]
async fn an_invalid_correction_names_each_field_and_writes_nothing_not_even_an_audit_row() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let stored = ingest(&mut c, vec![rating("k1")]).await.unwrap().evidence[0].clone();
    let status = update(
        &mut c,
        pb::Evidence {
            id: stored.id.clone(),
            level: 9.0,
            confidence: Some(0.0),
            link: "ftp://example.com".into(),
            rater_id: "someone@example.com".into(),
            observed_at: Some(timestamp(Utc::now() + Duration::days(3))),
            ..Default::default()
        },
        Some(&[
            "level",
            "confidence",
            "link",
            "rater_id",
            "observed_at",
            "source",
        ]),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "evidence.confidence",
            "evidence.level",
            "evidence.link",
            "evidence.observed_at",
            "evidence.rater_id",
            "evidence.source",
        ]
    );
    for (evidence, field) in [
        (
            pb::Evidence {
                etag: "nope".into(),
                level: 4.0,
                id: stored.id.clone(),
                ..Default::default()
            },
            "evidence.etag",
        ),
        (
            pb::Evidence {
                id: "not-a-uuid".into(),
                level: 4.0,
                ..Default::default()
            },
            "evidence.id",
        ),
        (
            pb::Evidence {
                level: 4.0,
                ..Default::default()
            },
            "evidence.id",
        ),
    ] {
        let status = update(&mut c, evidence, None).await.unwrap_err();
        assert_eq!(bad_fields(&status), [field], "{status:?}");
    }
    assert_eq!(get(&mut c, &stored.id).await, stored);
    assert_eq!(corrections_audited(&server).await, 0);
}

#[tokio::test]
async fn another_tenants_evidence_is_not_found_by_id_or_by_key() {
    let server = TestServer::start().await;
    let mut a = server.clients("tenant-a").await;
    let mut b = server.clients("tenant-b").await;
    let stored = ingest(&mut a, vec![rating("k1")]).await.unwrap().evidence[0].clone();
    for target in [
        pb::Evidence {
            id: stored.id.clone(),
            level: 1.0,
            ..Default::default()
        },
        pb::Evidence {
            source_system: "hris".into(),
            external_id: "k1".into(),
            level: 1.0,
            ..Default::default()
        },
    ] {
        let status = update(&mut b, target, Some(&["level"])).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    assert_eq!(get(&mut a, &stored.id).await, stored);
}

#[tokio::test]
async fn a_token_that_may_only_read_evidence_cannot_correct_it() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let stored = ingest(&mut c, vec![rating("k1")]).await.unwrap().evidence[0].clone();
    let reader = harness::sign(
        harness::ISSUER_PRIVATE_KEY,
        json!({
            "sub": "reader",
            "tenant": "tenant-a",
            "aud": harness::AUDIENCE,
            "scope": "evidence:read",
            "exp": jsonwebtoken::get_current_timestamp() + 600,
        }),
    );
    let mut r = server.clients_with(Some(format!("Bearer {reader}"))).await;
    assert_eq!(get(&mut r, &stored.id).await, stored);
    let status = update(
        &mut r,
        pb::Evidence {
            id: stored.id.clone(),
            level: 5.0,
            ..Default::default()
        },
        Some(&["level"]),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("evidence:write"), "{status:?}");
    assert_eq!(get(&mut c, &stored.id).await, stored);
}

#[tokio::test]
async fn every_update_without_a_mask_changes_only_the_fields_it_sets() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let policy = c
        .assessment
        .get_scoring_policy(pb::GetScoringPolicyRequest {})
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    let set_sigma = |sigma: f64, peer: f64| pb::UpdateScoringPolicyRequest {
        policy: Some(pb::ScoringPolicy {
            sigma,
            source_weights: Some(pb::SourceWeights {
                peer,
                ..Default::default()
            }),
            ..Default::default()
        }),
        update_mask: None,
    };
    let changed = c
        .assessment
        .update_scoring_policy(set_sigma(1.5, 0.25))
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    let weights = policy.source_weights.unwrap();
    assert_eq!(
        changed,
        pb::ScoringPolicy {
            sigma: 1.5,
            source_weights: Some(pb::SourceWeights {
                peer: 0.25,
                ..weights
            }),
            etag: changed.etag.clone(),
            ..policy.clone()
        }
    );
    // A policy update that names and sets nothing changes no value (it is
    // written as it was, under a new etag).
    let unchanged = c
        .assessment
        .update_scoring_policy(pb::UpdateScoringPolicyRequest {
            policy: Some(pb::ScoringPolicy::default()),
            update_mask: mask(&[]),
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(
        unchanged,
        pb::ScoringPolicy {
            etag: unchanged.etag.clone(),
            ..changed.clone()
        }
    );

    // A competency: the name changes, the levels stay.
    let competency = c
        .rubric
        .get_competency(pb::GetCompetencyRequest {
            competency_id: "mentoring".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .competency
        .unwrap();
    let renamed = c
        .rubric
        .update_competency(pb::UpdateCompetencyRequest {
            competency: Some(pb::Competency {
                id: competency.id.clone(),
                name: "Mentoring and coaching".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .competency
        .unwrap();
    assert_eq!(renamed.name, "Mentoring and coaching");
    assert_eq!(
        (&renamed.description, &renamed.levels),
        (&competency.description, &competency.levels)
    );

    // A role: the description changes, the name and seniority stay.
    let role = c
        .rubric
        .get_role(pb::GetRoleRequest {
            role_id: "staff_engineer".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    let described = c
        .rubric
        .update_role(pb::UpdateRoleRequest {
            role: Some(pb::Role {
                id: role.id.clone(),
                description: "Sets technical direction across teams.".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!(
        described.description,
        "Sets technical direction across teams."
    );
    assert_eq!(
        (&described.name, described.seniority, &described.track_id),
        (&role.name, role.seniority, &role.track_id)
    );
}
