//! The audit log: one row per write, in the write's transaction, naming
//! the actor, the method, what was written (a batch by its count and first
//! and last items, a subject only by a keyed hash), the request id and the
//! outcome; listed for admins with filters; never changed or deleted.

use std::collections::BTreeMap;

use chrono::Utc;
use ladder::proto::v1 as pb;
use ladder::proto::v1::EvidenceSource;
use prost_types::FieldMask;
use tonic::Code;

use crate::harness::{TestServer, evidence, timestamp};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn competency(id: &str) -> pb::Competency {
    pb::Competency {
        id: id.into(),
        name: format!("Name of {id}"),
        levels: (1..=5)
            .map(|level| pb::LevelDescriptor {
                level,
                title: format!("Level {level}"),
                description: "What this level looks like.".into(),
                behaviours: vec!["Does a visible thing.".into()],
            })
            .collect(),
        ..Default::default()
    }
}

fn role(id: &str) -> pb::Role {
    pb::Role {
        id: id.into(),
        name: format!("Name of {id}"),
        track_id: "individual_contributor".into(),
        seniority: 4,
        ..Default::default()
    }
}

fn rubric(role: &str, version: i32) -> pb::Rubric {
    pb::Rubric {
        role_id: role.into(),
        version,
        competencies: vec![pb::RubricCompetency {
            competency_id: "audited_skill".into(),
            expected_level: 3,
            weight: 1.0,
            critical: false,
            development_actions: vec![],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Every write method and how many rows the sequence below gives it.
const WRITES: [(&str, usize); 16] = [
    ("ladder.v1.RubricService/CreateCompetency", 2),
    ("ladder.v1.RubricService/UpdateCompetency", 1),
    ("ladder.v1.RubricService/DeleteCompetency", 1),
    ("ladder.v1.RubricService/CreateRole", 2),
    ("ladder.v1.RubricService/UpdateRole", 1),
    ("ladder.v1.RubricService/DeleteRole", 1),
    ("ladder.v1.RubricService/CreateRubric", 2),
    ("ladder.v1.RubricService/UpdateRubric", 1),
    ("ladder.v1.RubricService/DeleteRubric", 1),
    ("ladder.v1.RubricService/PublishRubric", 1),
    ("ladder.v1.RubricService/RetireRubric", 1),
    ("ladder.v1.AssessmentService/BatchCreateEvidence", 1),
    ("ladder.v1.AssessmentService/DeleteEvidence", 2),
    ("ladder.v1.AssessmentService/UpdateSubject", 1),
    ("ladder.v1.AssessmentService/UpdateScoringPolicy", 1),
    ("ladder.v1.AssessmentService/CreateAssessment", 1),
];

async fn all_events(
    c: &mut crate::harness::Clients,
    request: pb::ListAuditEventsRequest,
) -> Vec<pb::AuditEvent> {
    let mut events = Vec::new();
    let mut request = request;
    loop {
        let page = c
            .audit
            .list_audit_events(request.clone())
            .await
            .unwrap()
            .into_inner();
        events.extend(page.audit_events);
        if page.next_page_token.is_empty() {
            return events;
        }
        request.page_token = page.next_page_token;
    }
}

#[tokio::test]
async fn every_kind_of_write_appends_one_audit_row() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let r = &mut c.rubric;
    for id in ["audited_skill", "doomed_skill"] {
        r.create_competency(pb::CreateCompetencyRequest {
            competency: Some(competency(id)),
            request_id: String::new(),
        })
        .await
        .unwrap();
    }
    let mut renamed = competency("audited_skill");
    renamed.name = "Renamed".into();
    r.update_competency(pb::UpdateCompetencyRequest {
        competency: Some(renamed),
        update_mask: mask(&["name"]),
    })
    .await
    .unwrap();
    r.delete_competency(pb::DeleteCompetencyRequest {
        competency_id: "doomed_skill".into(),
        etag: String::new(),
    })
    .await
    .unwrap();
    for id in ["audited_role", "doomed_role"] {
        r.create_role(pb::CreateRoleRequest {
            role: Some(role(id)),
            request_id: String::new(),
        })
        .await
        .unwrap();
    }
    let mut described = role("audited_role");
    described.description = "Described".into();
    r.update_role(pb::UpdateRoleRequest {
        role: Some(described),
        update_mask: mask(&["description"]),
    })
    .await
    .unwrap();
    r.delete_role(pb::DeleteRoleRequest {
        role_id: "doomed_role".into(),
        etag: String::new(),
    })
    .await
    .unwrap();
    let mut versions = Vec::new();
    for _ in 0..2 {
        let created = r
            .create_rubric(pb::CreateRubricRequest {
                rubric: Some(rubric("audited_role", 0)),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .rubric
            .unwrap();
        versions.push(created.version);
    }
    r.update_rubric(pb::UpdateRubricRequest {
        rubric: Some(rubric("audited_role", versions[0])),
        update_mask: mask(&["competencies"]),
    })
    .await
    .unwrap();
    r.delete_rubric(pb::DeleteRubricRequest {
        role_id: "audited_role".into(),
        version: versions[0],
        etag: String::new(),
    })
    .await
    .unwrap();
    r.publish_rubric(pb::PublishRubricRequest {
        role_id: "audited_role".into(),
        version: versions[1],
        etag: String::new(),
    })
    .await
    .unwrap();
    r.retire_rubric(pb::RetireRubricRequest {
        role_id: "audited_role".into(),
        version: versions[1],
        etag: String::new(),
    })
    .await
    .unwrap();

    let a = &mut c.assessment;
    let items = (0..3)
        .map(|i| {
            evidence(
                "emp-1",
                "system_design",
                4.0,
                EvidenceSource::Peer,
                Utc::now() - chrono::Duration::days(1),
                &format!("audit-{i}"),
            )
        })
        .collect();
    let stored = a
        .batch_create_evidence(pb::BatchCreateEvidenceRequest { evidence: items })
        .await
        .unwrap()
        .into_inner()
        .evidence;
    a.delete_evidence(pb::DeleteEvidenceRequest {
        evidence_id: stored[1].id.clone(),
    })
    .await
    .unwrap();
    // A delete that fails is audited too, with its outcome.
    let missing = a
        .delete_evidence(pb::DeleteEvidenceRequest {
            evidence_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    a.update_subject(pb::UpdateSubjectRequest {
        subject: Some(pb::Subject {
            id: "emp-1".into(),
            current_role_id: "staff_engineer".into(),
            ..Default::default()
        }),
        allow_missing: true,
        ..Default::default()
    })
    .await
    .unwrap();
    a.update_scoring_policy(pb::UpdateScoringPolicyRequest {
        policy: Some(pb::ScoringPolicy {
            half_life_days: 90.0,
            ..Default::default()
        }),
        update_mask: mask(&["half_life_days"]),
    })
    .await
    .unwrap();
    let assessment = a
        .create_assessment(pb::CreateAssessmentRequest {
            subject_id: "emp-1".into(),
            role_id: "staff_engineer".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    // A dry run writes nothing, so it leaves no row; neither do reads.
    a.create_assessment(pb::CreateAssessmentRequest {
        subject_id: "emp-1".into(),
        role_id: "staff_engineer".into(),
        validate_only: true,
        ..Default::default()
    })
    .await
    .unwrap();

    let events = all_events(
        &mut c,
        pb::ListAuditEventsRequest {
            page_size: 2,
            ..Default::default()
        },
    )
    .await;
    let mut by_method: BTreeMap<&str, Vec<&pb::AuditEvent>> = BTreeMap::new();
    for e in &events {
        by_method.entry(e.method.as_str()).or_default().push(e);
        assert_eq!(e.actor, "test-user@tenant-a");
        assert!(!e.request_id.is_empty());
        assert!(!e.resource.contains("emp-1"), "{e:?}");
    }
    for (method, rows) in WRITES {
        assert_eq!(by_method.get(method).map_or(0, Vec::len), rows, "{method}");
    }
    assert_eq!(events.len(), WRITES.iter().map(|(_, n)| n).sum::<usize>());
    // Newest first.
    let seconds = |e: &pb::AuditEvent| {
        let t = e.time.unwrap();
        (t.seconds, t.nanos)
    };
    assert!(events.windows(2).all(|w| seconds(&w[0]) >= seconds(&w[1])));

    let batch = by_method["ladder.v1.AssessmentService/BatchCreateEvidence"][0];
    assert_eq!(batch.resource_count, 3);
    assert_eq!(batch.resource, format!("evidence/{}", stored[0].id));
    assert_eq!(batch.last_resource, format!("evidence/{}", stored[2].id));
    let subject = by_method["ladder.v1.AssessmentService/UpdateSubject"][0];
    assert!(subject.resource.starts_with("subjects/~"), "{subject:?}");
    let created = by_method["ladder.v1.AssessmentService/CreateAssessment"][0];
    assert_eq!(created.resource, format!("assessments/{}", assessment.id));
    let deletes = &by_method["ladder.v1.AssessmentService/DeleteEvidence"];
    let outcomes: Vec<&str> = deletes.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["NotFound", "Ok"]);
    assert_eq!(
        by_method["ladder.v1.RubricService/PublishRubric"][0].resource,
        format!("roles/audited_role/rubrics/{}", versions[1])
    );

    // Filters: by method, by actor, by time.
    let only = all_events(
        &mut c,
        pb::ListAuditEventsRequest {
            method: "ladder.v1.RubricService/CreateRole".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(only.len(), 2);
    let nobody = all_events(
        &mut c,
        pb::ListAuditEventsRequest {
            actor: "somebody-else".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(nobody.is_empty());
    let before = all_events(
        &mut c,
        pb::ListAuditEventsRequest {
            end_time: Some(timestamp(Utc::now() - chrono::Duration::hours(1))),
            ..Default::default()
        },
    )
    .await;
    assert!(before.is_empty());
    let since = all_events(
        &mut c,
        pb::ListAuditEventsRequest {
            start_time: events.last().unwrap().time,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(since.len(), events.len());
    // Another tenant's log is its own.
    let mut b = server.clients("tenant-b").await;
    assert!(all_events(&mut b, Default::default()).await.is_empty());
}

#[tokio::test]
async fn the_audit_log_cannot_be_changed_or_deleted() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    c.assessment
        .update_scoring_policy(pb::UpdateScoringPolicyRequest {
            policy: Some(pb::ScoringPolicy {
                half_life_days: 90.0,
                ..Default::default()
            }),
            update_mask: mask(&["half_life_days"]),
        })
        .await
        .unwrap();
    let mut app = server.app_connection().await;
    sqlx::query("SELECT set_config('ladder.tenant_id', 'tenant-a', false)")
        .execute(&mut app)
        .await
        .unwrap();
    for sql in [
        "UPDATE audit_log SET actor = 'someone'",
        "DELETE FROM audit_log",
    ] {
        let err = sqlx::query(sql).execute(&mut app).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
    // Not even the owner, short of disabling the trigger.
    for sql in [
        "UPDATE audit_log SET actor = 'someone'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql).execute(&server.pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(server.count("audit_log").await, 1);
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`, for checking the SQL.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A subject's audit name is HMAC-SHA256 of its id under the database's
/// own 32-byte key.
#[tokio::test]
async fn subjects_are_named_by_an_hmac_under_the_deployments_key() {
    let server = TestServer::start().await;
    let (inner_pad, hashed): (Vec<u8>, String) =
        sqlx::query_as("SELECT inner_pad, ladder_subject_hash('emp-1') FROM subject_hash_key")
            .fetch_one(&server.pool)
            .await
            .unwrap();
    let key: Vec<u8> = inner_pad.iter().map(|b| b ^ 0x36).collect();
    assert!(key[32..].iter().all(|&b| b == 0), "a 32-byte key");
    let expected: String = hmac_sha256(&key[..32], b"emp-1")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hashed, expected);
}

/// A dry run stores nothing, so when it fails there is no failed write to
/// audit (before, it also spent a second wait on that audit row); a stored
/// assessment that fails is audited with its outcome.
#[tokio::test]
async fn a_failed_dry_run_is_not_audited_and_a_failed_write_is() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    for validate_only in [true, false] {
        let err = c
            .assessment
            .create_assessment(pb::CreateAssessmentRequest {
                subject_id: "emp-1".into(),
                role_id: "no_such_role".into(),
                validate_only,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
    }
    let outcomes: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM audit_log \
         WHERE method = 'ladder.v1.AssessmentService/CreateAssessment'",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert_eq!(outcomes, ["NotFound"]);
}

/// An invalid request is no write: refused by its parse or by the body's
/// own checks (a NaN in the scoring policy), it leaves no audit row and
/// nothing else. A valid write that fails on the tenant's data (a stale
/// etag, an unknown id) is an attempt, and is audited with its outcome.
#[tokio::test]
async fn an_invalid_write_leaves_no_audit_row_and_a_failed_attempt_does() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let policy = |policy: pb::ScoringPolicy, path: &str| pb::UpdateScoringPolicyRequest {
        policy: Some(policy),
        update_mask: mask(&[path]),
    };
    // Found by the body, which merges the change into the stored policy.
    for request in [
        policy(
            pb::ScoringPolicy {
                half_life_days: f64::NAN,
                ..Default::default()
            },
            "half_life_days",
        ),
        policy(
            pb::ScoringPolicy {
                sigma: -1.0,
                ..Default::default()
            },
            "sigma",
        ),
    ] {
        let err = c
            .assessment
            .update_scoring_policy(request)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    // Found by the parse, or by the codec.
    let mut bad_role = role("Not-Snake");
    bad_role.seniority = 0;
    let err = c
        .rubric
        .create_role(pb::CreateRoleRequest {
            role: Some(bad_role),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let mut bad_evidence = evidence(
        "emp-1",
        "system_design",
        9.0,
        EvidenceSource::Peer,
        Utc::now(),
        "x1",
    );
    bad_evidence.summary = "NUL\0".into();
    let err = c
        .assessment
        .batch_create_evidence(pb::BatchCreateEvidenceRequest {
            evidence: vec![bad_evidence],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = c
        .assessment
        .delete_evidence(pb::DeleteEvidenceRequest {
            evidence_id: "not-a-uuid\n".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(all_events(&mut c, Default::default()).await.is_empty());
    assert_eq!(server.count("audit_log").await, 0);
    assert_eq!(server.count("scoring_policies").await, 0);
    assert_eq!(server.count("evidence").await, 0);

    // Valid requests that fail on what is stored are audited attempts.
    let stored = c
        .rubric
        .create_role(pb::CreateRoleRequest {
            role: Some(role("audited_role")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    let rename = |name: &str| pb::UpdateRoleRequest {
        role: Some(pb::Role {
            name: name.into(),
            ..stored.clone()
        }),
        update_mask: mask(&["name"]),
    };
    c.rubric.update_role(rename("Renamed")).await.unwrap();
    // The etag read before that rename is stale now.
    let err = c.rubric.update_role(rename("Again")).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    let err = c
        .assessment
        .delete_evidence(pb::DeleteEvidenceRequest {
            evidence_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let outcomes: Vec<(String, String)> = all_events(&mut c, Default::default())
        .await
        .into_iter()
        .rev()
        .map(|e| (e.method, e.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("ladder.v1.RubricService/CreateRole", "Ok"),
            ("ladder.v1.RubricService/UpdateRole", "Ok"),
            ("ladder.v1.RubricService/UpdateRole", "Aborted"),
            ("ladder.v1.AssessmentService/DeleteEvidence", "NotFound"),
        ]
        .map(|(m, o)| (m.to_string(), o.to_string()))
    );
}

/// The caller's `x-request-id` is recorded only when it is one line of
/// text: one with a tab (which metadata may carry) is replaced.
#[tokio::test]
async fn a_request_id_with_a_control_character_is_not_recorded() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    for (n, id) in ["retry-7", "retry\t8"].into_iter().enumerate() {
        let mut request = tonic::Request::new(pb::CreateRoleRequest {
            role: Some(role(&format!("role_{n}"))),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().unwrap());
        c.rubric.create_role(request).await.unwrap();
    }
    let ids: Vec<String> = all_events(&mut c, Default::default())
        .await
        .into_iter()
        .rev()
        .map(|e| e.request_id)
        .collect();
    assert_eq!(ids[0], "retry-7");
    assert!(uuid::Uuid::parse_str(&ids[1]).is_ok(), "{ids:?}");
}
