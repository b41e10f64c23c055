//! SPEC §6's contracts an integrator relies on, each through its unhappy
//! path: request ids answer only their own request (AIP-155), page tokens
//! work only for the request and tenant that got them and only for a while
//! (AIP-158), and a subject never recorded is NOT_FOUND.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ladder::proto::v1 as pb;
use ladder::transport::limits::Limits;
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{Clients, TestServer, bad_fields, evidence, timestamp};

/// The fields an ALREADY_EXISTS for a reused request id names.
fn reused_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "REQUEST_ID_REUSED");
    let metadata: HashMap<String, String> = info.metadata.into_iter().collect();
    metadata["fields"].split(',').map(str::to_string).collect()
}

async fn ingest(c: &mut Clients, subject: &str, competency: &str, external_id: &str) {
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    c.assessment
        .batch_create_evidence(pb::BatchCreateEvidenceRequest {
            evidence: vec![evidence(
                subject,
                competency,
                4.0,
                pb::EvidenceSource::Manager,
                at,
                external_id,
            )],
        })
        .await
        .unwrap();
}

fn assessment_request(subject: &str, role: &str) -> pb::CreateAssessmentRequest {
    pb::CreateAssessmentRequest {
        subject_id: subject.into(),
        role_id: role.into(),
        request_id: "assess-1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_reused_request_id_with_another_assessment_request_names_each_field_that_differs() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    for subject in ["hr-5001", "hr-5002"] {
        ingest(&mut c, subject, "system_design", &format!("{subject}-1")).await;
    }
    let first = c
        .assessment
        .create_assessment(assessment_request("hr-5001", "staff_engineer"))
        .await
        .unwrap()
        .into_inner();
    // The same request again, later (as_of unset both times): the first answer.
    let retry = c
        .assessment
        .create_assessment(assessment_request("hr-5001", "staff_engineer"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first);
    let stored = server.count("assessments").await;
    let as_of = Some(timestamp(
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
    ));
    let others: [(&str, pb::CreateAssessmentRequest); 4] = [
        (
            "role_id",
            assessment_request("hr-5001", "engineering_manager"),
        ),
        (
            "subject_id",
            assessment_request("hr-5002", "staff_engineer"),
        ),
        (
            "as_of",
            pb::CreateAssessmentRequest {
                as_of,
                ..assessment_request("hr-5001", "staff_engineer")
            },
        ),
        (
            "rubric_version",
            pb::CreateAssessmentRequest {
                rubric_version: 1,
                ..assessment_request("hr-5001", "staff_engineer")
            },
        ),
    ];
    for (field, request) in others {
        let err = c.assessment.create_assessment(request).await.unwrap_err();
        assert_eq!(reused_fields(&err), [field], "{err:?}");
    }
    let err = c
        .assessment
        .create_assessment(pb::CreateAssessmentRequest {
            as_of,
            ..assessment_request("hr-5002", "engineering_manager")
        })
        .await
        .unwrap_err();
    assert_eq!(reused_fields(&err), ["as_of", "role_id", "subject_id"]);
    assert_eq!(server.count("assessments").await, stored, "nothing written");

    // Request ids are the caller's per tenant: another tenant's use is its own.
    let mut other = server.clients("tenant-b").await;
    ingest(&mut other, "hr-5001", "system_design", "b-1").await;
    let theirs = other
        .assessment
        .create_assessment(assessment_request("hr-5001", "engineering_manager"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(theirs.assessment.unwrap().role_id, "engineering_manager");
}

#[tokio::test]
async fn a_reused_request_id_on_framework_creates_and_decisions_names_the_differing_field() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let competency = |name: &str| pb::CreateCompetencyRequest {
        competency: Some(pb::Competency {
            id: "negotiation".into(),
            name: name.into(),
            description: "Reaches agreements".into(),
            levels: (1..=5)
                .map(|level| pb::LevelDescriptor {
                    level,
                    title: format!("Level {level}"),
                    description: "What this level looks like.".into(),
                    behaviours: vec!["Does a visible thing.".into()],
                })
                .collect(),
            ..Default::default()
        }),
        request_id: "competency-1".into(),
    };
    c.rubric
        .create_competency(competency("Negotiation"))
        .await
        .unwrap();
    let err = c
        .rubric
        .create_competency(competency("Negotiating"))
        .await
        .unwrap_err();
    assert_eq!(reused_fields(&err), ["competency.name"]);

    let role = |name: &str| pb::CreateRoleRequest {
        role: Some(pb::Role {
            id: "deal_desk_lead".into(),
            name: name.into(),
            track_id: "business".into(),
            seniority: 500,
            ..Default::default()
        }),
        request_id: "role-1".into(),
    };
    c.rubric.create_role(role("Deal desk lead")).await.unwrap();
    let err = c
        .rubric
        .create_role(role("Deal desk head"))
        .await
        .unwrap_err();
    assert_eq!(reused_fields(&err), ["role.name"]);

    let rubric = |level: i32| pb::CreateRubricRequest {
        rubric: Some(pb::Rubric {
            role_id: "deal_desk_lead".into(),
            competencies: vec![pb::RubricCompetency {
                competency_id: "negotiation".into(),
                expected_level: level,
                weight: 1.0,
                development_actions: vec!["Practise it.".into()],
                ..Default::default()
            }],
            ..Default::default()
        }),
        request_id: "rubric-1".into(),
    };
    c.rubric.create_rubric(rubric(3)).await.unwrap();
    let err = c.rubric.create_rubric(rubric(4)).await.unwrap_err();
    assert_eq!(reused_fields(&err), ["rubric.competencies"]);

    ingest(&mut c, "hr-5001", "system_design", "e-1").await;
    let assessment = c
        .assessment
        .create_assessment(assessment_request("hr-5001", "staff_engineer"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    let decision = |outcome: pb::DecisionOutcome| pb::RecordDecisionRequest {
        assessment_id: assessment.id.clone(),
        outcome: outcome as i32,
        decided_by: "committee-7".into(),
        rationale: "Led the platform migration; peers confirm.".into(),
        request_id: "decision-1".into(),
        ..Default::default()
    };
    let first = c
        .oversight
        .record_decision(decision(pb::DecisionOutcome::Hold))
        .await
        .unwrap()
        .into_inner();
    let retry = c
        .oversight
        .record_decision(decision(pb::DecisionOutcome::Hold))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first);
    let err = c
        .oversight
        .record_decision(decision(pb::DecisionOutcome::Advance))
        .await
        .unwrap_err();
    assert_eq!(reused_fields(&err), ["outcome"]);
    assert_eq!(server.count("decisions").await, 1);
}

/// Lists `subject`'s evidence one item a page, returning the first page's
/// token.
async fn first_token(c: &mut Clients, request: pb::ListEvidenceRequest) -> String {
    let page = c
        .assessment
        .list_evidence(pb::ListEvidenceRequest {
            page_size: 1,
            ..request
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.evidence.len(), 1);
    assert!(!page.next_page_token.is_empty());
    page.next_page_token
}

fn evidence_of(subject: &str) -> pb::ListEvidenceRequest {
    pb::ListEvidenceRequest {
        subject_id: subject.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_page_token_works_only_with_the_filters_and_tenant_that_got_it() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    for subject in ["hr-5001", "hr-5002"] {
        for (i, competency) in ["system_design", "system_design", "mentoring"]
            .iter()
            .enumerate()
        {
            ingest(&mut c, subject, competency, &format!("{subject}-{i}")).await;
        }
    }
    let token = first_token(&mut c, evidence_of("hr-5001")).await;
    // The token reads no row key, and with its own request it pages on,
    // at another page size too.
    assert!(!token.contains("hr-5001") && !token.contains("system_design"));
    let rest = c
        .assessment
        .list_evidence(pb::ListEvidenceRequest {
            page_size: 10,
            page_token: token.clone(),
            ..evidence_of("hr-5001")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.evidence.len(), 2);
    assert!(rest.evidence.iter().all(|e| e.subject_id == "hr-5001"));

    let after = Some(timestamp(
        Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap(),
    ));
    let before = Some(timestamp(
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
    ));
    let replays = [
        evidence_of("hr-5002"),
        pb::ListEvidenceRequest {
            competency_id: "system_design".into(),
            ..evidence_of("hr-5001")
        },
        pb::ListEvidenceRequest {
            observed_after: after,
            ..evidence_of("hr-5001")
        },
        pb::ListEvidenceRequest {
            observed_before: before,
            ..evidence_of("hr-5001")
        },
    ];
    for replay in replays {
        let err = c
            .assessment
            .list_evidence(pb::ListEvidenceRequest {
                page_token: token.clone(),
                ..replay.clone()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{replay:?}");
        assert_eq!(bad_fields(&err), ["page_token"]);
    }

    // Another tenant, the same request and token.
    let mut other = server.clients("tenant-b").await;
    ingest(&mut other, "hr-5001", "system_design", "b-1").await;
    let err = other
        .assessment
        .list_evidence(pb::ListEvidenceRequest {
            page_token: token.clone(),
            ..evidence_of("hr-5001")
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["page_token"]);

    // One listing's token does not page another's.
    let err = c
        .assessment
        .list_assessments(pb::ListAssessmentsRequest {
            subject_id: "hr-5001".into(),
            page_token: token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["page_token"]);
}

#[tokio::test]
async fn framework_listings_refuse_tampered_and_forged_tokens() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let roles = c
        .rubric
        .list_roles(pb::ListRolesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut tampered = roles.next_page_token.into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    // What tokens used to be: base64 JSON of the last row's key.
    let forged = "WyJhcmNoaXRlY3QiLDFd".to_string();
    for token in [tampered, forged] {
        let errors = [
            c.rubric
                .list_roles(pb::ListRolesRequest {
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            c.rubric
                .list_rubrics(pb::ListRubricsRequest {
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            c.rubric
                .list_competencies(pb::ListCompetenciesRequest {
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            c.rubric
                .list_tracks(pb::ListTracksRequest {
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
        ];
        for err in errors {
            assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
            assert_eq!(bad_fields(&err), ["page_token"]);
        }
    }
}

#[tokio::test]
async fn a_page_token_expires() {
    let limits = Limits {
        page_token_lifetime: Duration::from_secs(1),
        ..Limits::for_pool(4)
    };
    let server = TestServer::start_limited(limits, 4).await;
    let mut c = server.clients("tenant-a").await;
    for i in 0..2 {
        ingest(&mut c, "hr-5001", "system_design", &format!("e-{i}")).await;
    }
    let token = first_token(&mut c, evidence_of("hr-5001")).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = c
        .assessment
        .list_evidence(pb::ListEvidenceRequest {
            page_token: token,
            ..evidence_of("hr-5001")
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["page_token"]);
    assert!(err.message().contains("expired"), "{err:?}");
}

#[tokio::test]
async fn a_subject_never_recorded_is_not_found_for_every_question_about_it() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    ingest(&mut c, "hr-5001", "system_design", "e-1").await;
    let typo = "hr-50001";
    let assess = c
        .assessment
        .create_assessment(pb::CreateAssessmentRequest {
            subject_id: typo.into(),
            role_id: "staff_engineer".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let dry_run = c
        .assessment
        .create_assessment(pb::CreateAssessmentRequest {
            subject_id: typo.into(),
            role_id: "staff_engineer".into(),
            validate_only: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    let recommend = c
        .recommendation
        .recommend(pb::RecommendRequest {
            subject_id: typo.into(),
            current_role_id: "senior_engineer".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let what_if = c
        .recommendation
        .what_if(pb::WhatIfRequest {
            subject_id: typo.into(),
            current_role_id: "senior_engineer".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let explain = c
        .oversight
        .explain_assessment(pb::ExplainAssessmentRequest {
            target: Some(pb::explain_assessment_request::Target::DryRun(
                pb::DryRunAssessment {
                    subject_id: typo.into(),
                    role_id: "staff_engineer".into(),
                    ..Default::default()
                },
            )),
        })
        .await
        .unwrap_err();
    for err in [assess, dry_run, recommend, what_if, explain] {
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        assert!(err.message().contains(typo), "{err:?}");
    }
    assert_eq!(server.count("assessments").await, 0, "nothing stored");

    // Another tenant's subject is never this tenant's.
    let mut other = server.clients("tenant-b").await;
    let err = other
        .assessment
        .create_assessment(assessment_request("hr-5001", "staff_engineer"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // A subject known only by its stored role is recorded.
    c.record_subject("hr-6001", "senior_engineer").await;
    let scored = c
        .assessment
        .create_assessment(assessment_request("hr-6001", "staff_engineer"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(scored.band, pb::ReadinessBand::InsufficientEvidence as i32);

    // Export and erase stay idempotent: empty and OK.
    let exported = c
        .subject_rights
        .export_subject_data(pb::ExportSubjectDataRequest {
            subject_id: typo.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let exported = exported.subject_data.unwrap_or_default();
    assert!(exported.evidence.is_empty() && exported.assessments.is_empty());
    c.subject_rights
        .erase_subject(pb::EraseSubjectRequest {
            subject_id: typo.into(),
        })
        .await
        .unwrap();
}
