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
