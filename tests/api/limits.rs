//! Bounds on what a client sends: exactly at each bound is accepted, one
//! over is refused INVALID_ARGUMENT naming the field and the bound, and the
//! answer stays short whatever was sent.

use chrono::{TimeZone, Utc};
use ladder::proto::v1 as pb;
use ladder::proto::v1::EvidenceSource;
use ladder::transport::limits::{Limits, MAX_EVIDENCE_ITEM_BYTES};
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{Clients, TestServer, bad_fields, evidence};

fn item(external_id: &str) -> pb::Evidence {
    let observed = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    evidence(
        "emp-1",
        "system_design",
        3.0,
        EvidenceSource::Peer,
        observed,
        external_id,
    )
}

async fn ingest(clients: &mut Clients, items: Vec<pb::Evidence>) -> Result<i32, tonic::Status> {
    clients
        .assessment
        .batch_create_evidence(pb::BatchCreateEvidenceRequest { evidence: items })
        .await
        .map(|r| r.into_inner().created_count)
}

/// The one violation of a refusal, as (field, description).
fn violation(status: &tonic::Status) -> (String, String) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let found = status.get_details_bad_request().unwrap().field_violations;
    assert_eq!(found.len(), 1, "{found:?}");
    (found[0].field.clone(), found[0].description.clone())
}

#[tokio::test]
async fn every_evidence_string_is_accepted_at_its_bound_and_refused_over_it() {
    let server = TestServer::start().await;
    let mut clients = server.clients("tenant-a").await;
    // Characters of 4 bytes: the bounds count characters.
    type Edit = fn(&mut pb::Evidence, String);
    type Text = fn(usize) -> String;
    let cases: Vec<(&str, usize, Text, Edit)> = vec![
        (
            "subject_id",
            256,
            |n| "𝄞".repeat(n),
            |e, v| e.subject_id = v,
        ),
        ("rater_id", 256, |n| "𝄞".repeat(n), |e, v| e.rater_id = v),
        (
            "source_system",
            256,
            |n| "𝄞".repeat(n),
            |e, v| e.source_system = v,
        ),
        (
            "external_id",
            256,
            |n| "𝄞".repeat(n),
            |e, v| e.external_id = v,
        ),
        ("summary", 4000, |n| "𝄞".repeat(n), |e, v| e.summary = v),
        (
            "link",
            2048,
            |n| format!("https://example.com/{}", "a".repeat(n - 20)),
            |e, v| e.link = v,
        ),
    ];
    for (k, (field, bound, text, edit)) in cases.into_iter().enumerate() {
        let mut at = item(&format!("at-{k}"));
        edit(&mut at, text(bound));
        assert_eq!(
            ingest(&mut clients, vec![at]).await.unwrap(),
            1,
            "{field} at {bound}"
        );
        let mut over = item(&format!("over-{k}"));
        edit(&mut over, text(bound + 1));
        let err = ingest(&mut clients, vec![over]).await.unwrap_err();
        let (named, why) = violation(&err);
        assert_eq!(named, format!("evidence[0].{field}"));
        assert!(why.contains(&bound.to_string()), "{why}");
    }
    // Competency ids: snake_case, at most 64 characters.
    let mut long = item("long-competency");
    long.competency_id = "a".repeat(65);
    let (named, why) = violation(&ingest(&mut clients, vec![long]).await.unwrap_err());
    assert_eq!(named, "evidence[0].competency_id");
    assert!(why.contains("64"), "{why}");
    // Links are http(s) URLs.
    for bad in [
        "ftp://example.com/x",
        "https://",
        "javascript:alert(1)",
        "https://a b",
    ] {
        let mut e = item("bad-link");
        e.link = bad.into();
        let (named, _) = violation(&ingest(&mut clients, vec![e]).await.unwrap_err());
        assert_eq!(named, "evidence[0].link", "{bad}");
    }
    assert_eq!(server.count("evidence").await, 6);
}

#[tokio::test]
async fn batch_what_if_and_page_bounds_hold_exactly() {
    let limits = Limits {
        max_batch: 5,
        ..Limits::for_pool(4)
    };
    let server = TestServer::start_limited(limits, 4).await;
    let mut clients = server.clients("tenant-a").await;
    let batch = |n: usize, tag: &str| (0..n).map(|i| item(&format!("{tag}-{i}"))).collect();
    assert_eq!(ingest(&mut clients, batch(5, "five")).await.unwrap(), 5);
    let err = ingest(&mut clients, batch(6, "six")).await.unwrap_err();
    assert_eq!(
        violation(&err),
        ("evidence".into(), "must hold at most 5 entries".into())
    );

    let what_if = |added: usize, removed: usize| pb::WhatIfRequest {
        subject_id: "emp-1".into(),
        current_role_id: "senior_engineer".into(),
        added_evidence: (0..added)
            .map(|i| pb::Evidence {
                external_id: String::new(),
                source_system: String::new(),
                ..item(&i.to_string())
            })
            .collect(),
        removed_evidence_ids: (0..removed)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect(),
        ..Default::default()
    };
    clients
        .recommendation
        .what_if(what_if(100, 0))
        .await
        .expect("exactly at the bound of added evidence");
    // Exactly at the bound the request is valid; its made-up ids are then
    // evidence the subject does not have.
    let err = clients
        .recommendation
        .what_if(what_if(0, 1000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    for (request, field, bound) in [
        (what_if(101, 0), "added_evidence", 100),
        (what_if(0, 1001), "removed_evidence_ids", 1000),
    ] {
        let err = clients.recommendation.what_if(request).await.unwrap_err();
        assert_eq!(
            violation(&err),
            (field.into(), format!("must hold at most {bound} entries"))
        );
    }

    let list = |page_size| pb::ListEvidenceRequest {
        subject_id: "emp-1".into(),
        page_size,
        ..Default::default()
    };
    clients.assessment.list_evidence(list(1000)).await.unwrap();
    let err = clients
        .assessment
        .list_evidence(list(1001))
        .await
        .unwrap_err();
    assert_eq!(
        violation(&err),
        ("page_size".into(), "must be at most 1000".into())
    );
    let err = clients
        .assessment
        .list_evidence(pb::ListEvidenceRequest {
            page_token: "x".repeat(100_000),
            ..list(10)
        })
        .await
        .unwrap_err();
    assert_eq!(violation(&err).0, "page_token");
    assert!(err.message().len() < 200);
    // Ids echoed in answers are bounded first.
    let err = clients
        .rubric
        .get_role(pb::GetRoleRequest {
            role_id: "r".repeat(100_000),
        })
        .await
        .unwrap_err();
    assert_eq!(violation(&err).0, "role_id");
    assert!(err.message().len() < 200, "{}", err.message());
}

#[tokio::test]
async fn a_million_empty_items_are_refused_before_decoding_with_a_short_error() {
    let server = TestServer::start().await;
    let mut clients = server.clients("tenant-a").await;
    let err = ingest(&mut clients, vec![pb::Evidence::default(); 1_000_000])
        .await
        .unwrap_err();
    assert_eq!(
        violation(&err),
        ("evidence".into(), "must hold at most 1000 entries".into())
    );
    assert!(err.message().len() < 200, "{}", err.message());
    assert_eq!(server.count("evidence").await, 0);
}

#[tokio::test]
async fn a_full_batch_at_the_largest_texts_fits_and_a_byte_more_does_not() {
    let limits = Limits {
        max_batch: 3,
        ..Limits::for_pool(4)
    };
    let largest = limits.max_message_bytes();
    let server = TestServer::start_limited(limits, 4).await;
    let mut clients = server.clients("tenant-a").await;
    let full = |k: usize| pb::Evidence {
        subject_id: "𝄞".repeat(256),
        rater_id: "𝄞".repeat(256),
        source_system: "𝄞".repeat(256),
        external_id: format!("{}{k}", "𝄞".repeat(255)),
        summary: "𝄞".repeat(4000),
        link: format!("https://example.com/{}", "a".repeat(2048 - 20)),
        ..item("")
    };
    let batch: Vec<pb::Evidence> = (0..3).map(full).collect();
    let request = pb::BatchCreateEvidenceRequest {
        evidence: batch.clone(),
    };
    let size = prost::Message::encoded_len(&request);
    assert!(size <= largest && size > largest - 3 * MAX_EVIDENCE_ITEM_BYTES / 10);
    assert_eq!(ingest(&mut clients, batch.clone()).await.unwrap(), 3);
    // The ignored `id` field pads the message to one byte over the bound.
    let mut padded = batch;
    let pad = largest - size;
    padded[0].id = "x".repeat(pad - 2);
    let padded_size = prost::Message::encoded_len(&pb::BatchCreateEvidenceRequest {
        evidence: padded.clone(),
    });
    assert!(padded_size > largest, "{padded_size} vs {largest}");
    let err = ingest(&mut clients, padded).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
}

#[tokio::test]
async fn error_details_stop_at_a_hundred_violations_and_say_how_many_more() {
    let server = TestServer::start().await;
    let mut clients = server.clients("tenant-a").await;
    let bad: Vec<pb::Evidence> = (0..300)
        .map(|i| pb::Evidence {
            level: 9.0,
            summary: "\0".repeat(3000),
            ..item(&i.to_string())
        })
        .collect();
    let err = ingest(&mut clients, bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().len() <= 1024, "{}", err.message().len());
    let fields = bad_fields(&err);
    assert_eq!(fields.len(), 101);
    let last = err.get_details_bad_request().unwrap().field_violations[100].clone();
    assert_eq!(
        last.description,
        "500 more violations not listed (at most 100 are)"
    );
}

#[tokio::test]
async fn bytes_that_are_no_request_are_invalid_argument() {
    let server = TestServer::start().await;
    let err = crate::fuzz::call_raw(
        &server,
        "/ladder.v1.AssessmentService/BatchCreateEvidence",
        vec![0x0a, 0xff, 0xff, 0xff, 0x0f],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

/// The violation naming `field` in a refusal.
fn named(status: &tonic::Status, field: &str) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
    status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .find(|v| v.field == field)
        .unwrap_or_else(|| panic!("{field} not named: {status:?}"))
        .description
}

/// Ids are one line: a line break, a NUL or another control character in
/// any of them is INVALID_ARGUMENT naming it, as is one over its length,
/// and nothing is written or audited; free text may span lines.
#[tokio::test]
async fn ids_with_control_characters_or_too_long_are_refused_by_field() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let forged = "hris\n2026-01-01T00:00:00Z admin EraseSubject subjects/emp-2";
    let cases: Vec<(&str, pb::Evidence)> = vec![
        (
            "evidence[0].source_system",
            pb::Evidence {
                source_system: forged.into(),
                ..item("e1")
            },
        ),
        (
            "evidence[0].external_id",
            pb::Evidence {
                external_id: "e1\0".into(),
                ..item("")
            },
        ),
        (
            "evidence[0].rater_id",
            pb::Evidence {
                rater_id: "r\u{7}".into(),
                ..item("e1")
            },
        ),
        (
            "evidence[0].competency_id",
            pb::Evidence {
                competency_id: "system_design\r".into(),
                ..item("e1")
            },
        ),
        (
            "evidence[0].summary",
            pb::Evidence {
                summary: "clear\u{1b}[2J".into(),
                ..item("e1")
            },
        ),
    ];
    for (field, bad) in cases {
        let err = ingest(&mut c, vec![bad]).await.unwrap_err();
        // Where the field's own rules refuse it too (a competency id is
        // snake_case), theirs is the description.
        let why = named(&err, field);
        if field == "evidence[0].source_system" {
            assert_eq!(why, "must not contain control characters (it is one line)");
        }
    }
    let err = c
        .assessment
        .create_assessment(pb::CreateAssessmentRequest {
            subject_id: "emp-1".into(),
            role_id: "staff_engineer".into(),
            request_id: "retry\u{0}1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    named(&err, "request_id");
    let err = c
        .assessment
        .get_evidence(pb::GetEvidenceRequest {
            evidence_id: "x".repeat(257),
        })
        .await
        .unwrap_err();
    named(&err, "evidence_id");
    let err = c
        .assessment
        .update_subject(pb::UpdateSubjectRequest {
            subject: Some(pb::Subject {
                id: "emp\n1".into(),
                current_role_id: "staff_engineer".into(),
                ..Default::default()
            }),
            allow_missing: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    named(&err, "subject.id");
    let err = c
        .oversight
        .record_decision(pb::RecordDecisionRequest {
            assessment_id: uuid::Uuid::new_v4().to_string(),
            decided_by: "mgr\n7".into(),
            rationale: "fine\0".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    named(&err, "decided_by");
    named(&err, "rationale");
    let err = c
        .calibration
        .get_calibration(pb::GetCalibrationRequest {
            calibration_id: "c\u{85}".into(),
        })
        .await
        .unwrap_err();
    named(&err, "calibration_id");
    let err = c
        .audit
        .list_audit_events(pb::ListAuditEventsRequest {
            actor: "a".repeat(257),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(named(&err, "actor"), "must be at most 256 characters");
    assert_eq!(server.count("evidence").await, 0);
    assert_eq!(server.count("subjects").await, 0);
    assert_eq!(server.count("audit_log").await, 0);

    // Free text spans lines and tabs; the ids stay one line.
    let multiline = pb::Evidence {
        summary: "Led the design review.\r\n\tFollow-ups:\n- caching".into(),
        ..item("e1")
    };
    assert_eq!(ingest(&mut c, vec![multiline]).await.unwrap(), 1);
}

/// Every string field of every request, at any depth (the first item of
/// a list), read from the served descriptors: with a NUL, with a control
/// character it may not hold and one character over its bound, each is
/// INVALID_ARGUMENT naming it, before anything is read or written.
#[tokio::test]
async fn every_request_string_is_bounded_and_free_of_control_characters() {
    use ladder::transport::limits::string_bound;
    use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, Value};

    /// The string fields inside `message`, as (path, field chain).
    fn strings(
        message: &prost_reflect::MessageDescriptor,
        at: &str,
        chain: &[FieldDescriptor],
        out: &mut Vec<(String, Vec<FieldDescriptor>)>,
    ) {
        for field in message.fields() {
            if field.is_map() || chain.len() > 6 {
                continue;
            }
            let mut name = format!("{at}{}", field.name());
            if field.is_list() {
                name.push_str("[0]");
            }
            let mut chain = chain.to_vec();
            chain.push(field.clone());
            match field.kind() {
                Kind::String => out.push((name, chain)),
                Kind::Message(inner)
                    if !chain[..chain.len() - 1]
                        .iter()
                        .any(|f| matches!(f.kind(), Kind::Message(m) if m == inner)) =>
                {
                    strings(&inner, &format!("{name}."), &chain, out)
                }
                _ => {}
            }
        }
    }

    /// A message of `message` with only the chain's last field set.
    fn with(
        message: &prost_reflect::MessageDescriptor,
        chain: &[FieldDescriptor],
        text: &str,
    ) -> DynamicMessage {
        let mut out = DynamicMessage::new(message.clone());
        let (field, rest) = chain.split_first().unwrap();
        let value = match field.kind() {
            Kind::Message(inner) => Value::Message(with(&inner, rest, text)),
            _ => Value::String(text.to_string()),
        };
        let value = if field.is_list() {
            Value::List(vec![value])
        } else {
            value
        };
        out.set_field(field, value);
        out
    }

    let server = TestServer::start().await;
    let pool = DescriptorPool::decode(ladder::proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut checked = 0;
    for path in crate::fuzz::methods() {
        let (service, method) = path[1..].split_once('/').unwrap();
        let input = pool
            .get_service_by_name(service)
            .unwrap()
            .methods()
            .find(|m| m.name() == method)
            .unwrap()
            .input();
        let mut fields = Vec::new();
        strings(&input, "", &[], &mut fields);
        for (name, chain) in fields {
            let bound = string_bound(chain.last().unwrap().name());
            let control = if bound.free_text { "a\u{1b}b" } else { "a\nb" };
            for text in ["a\0b", control, &"x".repeat(bound.max_chars + 1)] {
                let body = prost::Message::encode_to_vec(&with(&input, &chain, text));
                let err = crate::fuzz::call_raw(&server, path, body)
                    .await
                    .unwrap_err();
                assert!(
                    err.code() == Code::InvalidArgument && bad_fields(&err).contains(&name),
                    "{path} {name} {:?}: {err:?}",
                    text.chars().take(8).collect::<String>()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "{checked}");
    // Refused before the tenant's framework was even provisioned.
    for table in ["roles", "evidence", "subjects", "audit_log"] {
        assert_eq!(server.count(table).await, 0, "{table}");
    }
}
