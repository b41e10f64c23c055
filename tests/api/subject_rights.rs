//! A subject's rights: everything stored about them exported as one
//! document, or erased in one transaction that leaves an audit row naming
//! them only by a keyed hash.

use chrono::Utc;
use ladder::proto::v1 as pb;
use ladder::proto::v1::EvidenceSource;

use crate::harness::{Clients, TestServer, evidence};

fn items(subject: &str, keys: &[&str]) -> pb::BatchCreateEvidenceRequest {
    pb::BatchCreateEvidenceRequest {
        evidence: keys
            .iter()
            .map(|key| {
                evidence(
                    subject,
                    "system_design",
                    4.0,
                    EvidenceSource::Manager,
                    Utc::now() - chrono::Duration::days(3),
                    key,
                )
            })
            .collect(),
    }
}

fn assessment_for(subject: &str, request_id: &str) -> pb::CreateAssessmentRequest {
    pb::CreateAssessmentRequest {
        subject_id: subject.into(),
        role_id: "staff_engineer".into(),
        request_id: request_id.into(),
        ..Default::default()
    }
}

async fn export(c: &mut Clients, subject: &str) -> pb::SubjectData {
    c.subject_rights
        .export_subject_data(pb::ExportSubjectDataRequest {
            subject_id: subject.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .subject_data
        .unwrap()
}

async fn erase(c: &mut Clients, subject: &str) -> pb::EraseSubjectResponse {
    c.subject_rights
        .erase_subject(pb::EraseSubjectRequest {
            subject_id: subject.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Rows anywhere in the database that mention `text`, as the owner sees them.
async fn mentions(server: &TestServer, text: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM evidence WHERE subject_id = $1) \
              + (SELECT count(*) FROM assessments WHERE subject_id = $1) \
              + (SELECT count(*) FROM subjects WHERE id = $1) \
              + (SELECT count(*) FROM audit_log \
                 WHERE strpos(resource || last_resource, $1) > 0)",
    )
    .bind(text)
    .fetch_one(&server.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn export_erase_export_returns_nothing_and_keys_can_be_ingested_again() {
    let server = TestServer::start().await;
    let mut a = server.clients("tenant-a").await;
    a.assessment
        .batch_create_evidence(items("emp-1", &["k1", "k2"]))
        .await
        .unwrap();
    a.assessment
        .batch_create_evidence(items("emp-2", &["k3"]))
        .await
        .unwrap();
    a.record_subject("emp-1", "senior_engineer").await;
    let first = a
        .assessment
        .create_assessment(assessment_for("emp-1", "req-1"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();

    let mut decide = {
        use ladder::proto::v1::oversight_service_client::OversightServiceClient;
        let bearer = crate::harness::Bearer(Some(
            format!("Bearer {}", crate::harness::token("tenant-a"))
                .parse()
                .expect("ascii"),
        ));
        OversightServiceClient::with_interceptor(server.channel().await, bearer)
    };
    let decision = decide
        .record_decision(pb::RecordDecisionRequest {
            assessment_id: first.id.clone(),
            outcome: pb::DecisionOutcome::Defer as i32,
            decided_by: "committee-1".into(),
            rationale: "Waiting for the next review cycle".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();

    let exported = export(&mut a, "emp-1").await;
    assert_eq!(exported.decisions.len(), 1);
    assert_eq!(exported.decisions[0].id, decision.id);
    assert_eq!(exported.subject_id, "emp-1");
    assert_eq!(exported.current_role_id, "senior_engineer");
    assert_eq!(exported.evidence.len(), 2);
    assert!(exported.evidence.iter().all(|e| e.subject_id == "emp-1"));
    assert_eq!(exported.assessments.len(), 1);
    assert_eq!(exported.assessments[0].id, first.id);

    // Another tenant's erasure of the same id touches nothing of tenant-a's.
    let mut b = server.clients("tenant-b").await;
    let nothing = erase(&mut b, "emp-1").await;
    assert_eq!(
        (nothing.evidence_deleted, nothing.assessments_deleted),
        (0, 0)
    );
    assert!(!nothing.subject_deleted);
    assert_eq!(export(&mut a, "emp-1").await.evidence.len(), 2);

    let erased = erase(&mut a, "emp-1").await;
    assert_eq!(erased.evidence_deleted, 2);
    assert_eq!(erased.assessments_deleted, 1);
    assert_eq!(erased.decisions_deleted, 1);
    assert!(erased.subject_deleted);

    let after = export(&mut a, "emp-1").await;
    assert!(after.evidence.is_empty() && after.assessments.is_empty());
    assert!(after.decisions.is_empty());
    assert!(after.current_role_id.is_empty());
    assert_eq!(mentions(&server, "emp-1").await, 0, "nothing names emp-1");
    assert_eq!(export(&mut a, "emp-2").await.evidence.len(), 1);

    let audited = a
        .audit
        .list_audit_events(pb::ListAuditEventsRequest {
            method: "ladder.v1.SubjectRightsService/EraseSubject".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert_eq!(audited.len(), 1, "tenant-a's erasure only");
    assert!(audited[0].resource.starts_with("subjects/~"));
    assert_eq!(audited[0].resource_count, 5);

    // The erased subject's keys are free: the same evidence is new again,
    // and the request id of the erased assessment makes a new one.
    let again = a
        .assessment
        .batch_create_evidence(items("emp-1", &["k1", "k2"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.created_count, 2);
    let second = a
        .assessment
        .create_assessment(assessment_for("emp-1", "req-1"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_ne!(second.id, first.id);
}
