//! Subjects with org data (SPEC §3): org units and managers set one at a
//! time or in batches, listings by org unit, manager and role, assessments
//! listed across subjects, and `ladder subject import`.

use std::process::Command;

use chrono::{Duration, Utc};
use ladder::proto::v1 as pb;
use ladder::proto::v1::EvidenceSource;
use tonic::Code;

use crate::harness::{Clients, TestServer, bad_fields, evidence, ladder_bin, token};

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

/// An update of `id`'s org unit and manager (creating it if need be).
fn placed(id: &str, org_unit: &str, manager_id: &str) -> pb::UpdateSubjectRequest {
    pb::UpdateSubjectRequest {
        subject: Some(pb::Subject {
            id: id.into(),
            org_unit: org_unit.into(),
            manager_id: manager_id.into(),
            ..Default::default()
        }),
        update_mask: mask(&["org_unit", "manager_id"]),
        allow_missing: true,
    }
}

/// `placed` with a current role too.
fn placed_as(id: &str, org_unit: &str, manager_id: &str, role: &str) -> pb::UpdateSubjectRequest {
    let mut request = placed(id, org_unit, manager_id);
    if let Some(s) = request.subject.as_mut() {
        s.current_role_id = role.into();
    }
    request.update_mask = mask(&["current_role_id", "org_unit", "manager_id"]);
    request
}

async fn get(c: &mut Clients, id: &str) -> pb::Subject {
    c.assessment
        .get_subject(pb::GetSubjectRequest {
            subject_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap()
}

async fn batch(
    c: &mut Clients,
    requests: Vec<pb::UpdateSubjectRequest>,
) -> Result<Vec<pb::Subject>, tonic::Status> {
    c.assessment
        .batch_update_subjects(pb::BatchUpdateSubjectsRequest { requests })
        .await
        .map(|r| r.into_inner().subjects)
}

async fn list(c: &mut Clients, request: pb::ListSubjectsRequest) -> Vec<String> {
    c.assessment
        .list_subjects(request)
        .await
        .unwrap()
        .into_inner()
        .subjects
        .into_iter()
        .map(|s| s.id)
        .collect()
}

/// Every stored (org_unit, manager_id) of the tenant's subjects, by id.
async fn stored(server: &TestServer) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as("SELECT id, org_unit, manager_id FROM subjects ORDER BY tenant_id, id")
        .fetch_all(&server.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn org_unit_and_manager_are_set_by_mask_and_cleared_by_an_empty_value() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let made = c
        .assessment
        .update_subject(placed_as(
            "emp-1",
            "engineering/platform/payments",
            "emp-9",
            "senior_engineer",
        ))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert_eq!(made.org_unit, "engineering/platform/payments");
    assert_eq!(made.manager_id, "emp-9");
    assert_eq!(get(&mut c, "emp-1").await, made);

    // Only the masked field changes; an empty value clears it.
    let moved = c
        .assessment
        .update_subject(pb::UpdateSubjectRequest {
            subject: Some(pb::Subject {
                id: "emp-1".into(),
                org_unit: String::new(),
                manager_id: "ignored-not-masked".into(),
                etag: made.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["org_unit"]),
            allow_missing: false,
        })
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert_eq!(
        (
            moved.org_unit.as_str(),
            moved.manager_id.as_str(),
            moved.current_role_id.as_str()
        ),
        ("", "emp-9", "senior_engineer")
    );
    assert_ne!(moved.etag, made.etag);
    // The etag read before the change is stale.
    let stale = c
        .assessment
        .update_subject(pb::UpdateSubjectRequest {
            subject: Some(pb::Subject {
                id: "emp-1".into(),
                org_unit: "sales".into(),
                etag: made.etag,
                ..Default::default()
            }),
            update_mask: mask(&["org_unit"]),
            allow_missing: false,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(get(&mut c, "emp-1").await.org_unit, "");
}

#[tokio::test]
async fn a_bad_org_unit_or_manager_is_refused_naming_the_field_and_writes_nothing() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let long_part = format!("engineering/{}", "x".repeat(65));
    for bad in [
        "a/b/c/d/e/f/g/h/i",
        "engineering//platform",
        "engineering/",
        "/engineering",
        "Engineering/Platform",
        "engineering/plat form",
        "engineering/_platform",
        &long_part,
    ] {
        let status = c
            .assessment
            .update_subject(placed("emp-1", bad, ""))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(bad_fields(&status), ["subject.org_unit"], "{bad}");
    }
    // Eight parts is the most.
    c.assessment
        .update_subject(placed("emp-2", "a/b/c/d/e/f/g/h", ""))
        .await
        .unwrap();
    for (manager, why) in [("emp-1", "itself"), ("boss@example.com", "e-mail")] {
        let status = c
            .assessment
            .update_subject(placed("emp-1", "", manager))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{why}");
        assert_eq!(bad_fields(&status), ["subject.manager_id"], "{why}");
    }
    let ids: Vec<String> = stored(&server).await.into_iter().map(|r| r.0).collect();
    assert_eq!(ids, ["emp-2"], "only the valid update wrote");
}

#[tokio::test]
async fn a_manager_chain_that_would_form_a_cycle_is_refused() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    // a reports to b, b to c.
    batch(
        &mut c,
        vec![
            placed("a", "eng", "b"),
            placed("b", "eng", "c"),
            placed("c", "eng", ""),
        ],
    )
    .await
    .unwrap();
    let before = stored(&server).await;
    let status = c
        .assessment
        .update_subject(placed("c", "eng", "a"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["subject.manager_id"]);
    // Two requests of one batch that make a cycle between them.
    let status = batch(
        &mut c,
        vec![placed("x", "eng", "y"), placed("y", "eng", "x")],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&status),
        [
            "requests[0].subject.manager_id",
            "requests[1].subject.manager_id"
        ]
    );
    assert_eq!(stored(&server).await, before, "nothing written");
    // Moving the top of the chain under someone outside it is fine.
    c.assessment
        .update_subject(placed("c", "eng", "d"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_batch_is_validated_whole_and_names_each_bad_request() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let status = batch(
        &mut c,
        vec![
            placed("emp-1", "engineering", ""),
            placed("emp-2", "engineering//platform", ""),
            placed("emp-3", "engineering", "emp-3"),
            placed("emp-1", "sales", ""),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&status),
        [
            "requests[1].subject.org_unit",
            "requests[2].subject.manager_id",
            "requests[3].subject.id"
        ]
    );
    // A role the tenant lacks is found once the batch parses.
    let status = batch(
        &mut c,
        vec![
            placed_as("emp-1", "engineering", "", "senior_engineer"),
            placed_as("emp-2", "engineering", "", "astronaut"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["requests[1].subject.current_role_id"]);
    // Without allow_missing, an unknown subject fails the whole batch.
    let mut missing = placed("emp-404", "engineering", "");
    missing.allow_missing = false;
    let status = batch(&mut c, vec![placed("emp-1", "engineering", ""), missing])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let empty = batch(&mut c, vec![]).await.unwrap_err();
    assert_eq!(bad_fields(&empty), ["requests"]);
    assert!(stored(&server).await.is_empty(), "nothing written");
}

#[tokio::test]
async fn a_batch_holds_at_most_1000_requests() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let requests = |n: usize| -> Vec<pb::UpdateSubjectRequest> {
        (0..n)
            .map(|i| placed(&format!("emp-{i}"), "engineering", ""))
            .collect()
    };
    let status = batch(&mut c, requests(1001)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["requests"]);
    assert_eq!(server.count("subjects").await, 0);
    assert_eq!(batch(&mut c, requests(1000)).await.unwrap().len(), 1000);
    assert_eq!(server.count("subjects").await, 1000);
}

#[tokio::test]
async fn a_re_sent_batch_succeeds_changes_nothing_and_is_audited_once_per_call() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let requests = vec![
        placed_as("emp-1", "engineering", "", "engineering_manager"),
        placed_as("emp-2", "engineering/platform", "emp-1", "senior_engineer"),
        placed_as("emp-3", "engineering/platform", "emp-1", "staff_engineer"),
    ];
    let audited = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM audit_log WHERE method = 'ladder.v1.AssessmentService/BatchUpdateSubjects'",
        )
        .fetch_one(&server.pool)
        .await
        .unwrap()
    };
    let first = batch(&mut c, requests.clone()).await.unwrap();
    assert_eq!(audited().await, 1);
    let again = batch(&mut c, requests).await.unwrap();
    assert_eq!(again, first, "same subjects, same etags: nothing changed");
    assert_eq!(audited().await, 2, "one audit row per call");
    let revisions: Vec<i64> = sqlx::query_scalar("SELECT revision FROM subjects ORDER BY id")
        .fetch_all(&server.pool)
        .await
        .unwrap();
    assert_eq!(revisions, [1, 1, 1]);

    // With the etag it was read at, a re-send that found its change made
    // is stale (AIP-154).
    let mut moved = placed("emp-2", "engineering/product", "emp-1");
    if let Some(s) = moved.subject.as_mut() {
        s.etag = first[1].etag.clone();
    }
    batch(&mut c, vec![moved.clone()]).await.unwrap();
    let stale = batch(&mut c, vec![moved]).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_halves_of_a_cycle_cannot_both_succeed() {
    let server = TestServer::start().await;
    let mut a = server.clients("tenant-a").await;
    let mut b = server.clients("tenant-a").await;
    for _ in 0..5 {
        sqlx::query("DELETE FROM subjects")
            .execute(&server.pool)
            .await
            .unwrap();
        let (x, y) = tokio::join!(
            a.assessment.update_subject(placed("x", "eng", "y")),
            b.assessment.update_subject(placed("y", "eng", "x")),
        );
        assert_eq!(
            [x.is_ok(), y.is_ok()].iter().filter(|ok| **ok).count(),
            1,
            "{x:?} {y:?}"
        );
    }
}

/// A small organisation: m0 heads engineering; m1 (engineering/platform)
/// reports to m0; e1 and e3 to m1; e4 to e1; e2 sits in
/// engineering/platformx under m0; emp-ev is known only from evidence.
async fn organisation(c: &mut Clients) {
    batch(
        c,
        vec![
            placed_as("m0", "engineering", "", "engineering_manager"),
            placed_as("m1", "engineering/platform", "m0", "engineering_manager"),
            placed_as(
                "e1",
                "engineering/platform/payments",
                "m1",
                "senior_engineer",
            ),
            placed_as("e2", "engineering/platformx", "m0", "staff_engineer"),
            placed_as("e3", "engineering/platform", "m1", "senior_engineer"),
            placed_as(
                "e4",
                "engineering/platform/payments/core",
                "e1",
                "senior_engineer",
            ),
        ],
    )
    .await
    .unwrap();
    c.assessment
        .batch_create_evidence(pb::BatchCreateEvidenceRequest {
            evidence: vec![evidence(
                "emp-ev",
                "mentoring",
                3.0,
                EvidenceSource::Peer,
                Utc::now() - Duration::days(3),
                "k1",
            )],
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn list_subjects_filters_by_org_unit_prefix_manager_subtree_and_role() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    organisation(&mut c).await;
    let request =
        |org_unit: &str, manager_id: &str, indirect: bool, role: &str| pb::ListSubjectsRequest {
            org_unit: org_unit.into(),
            manager_id: manager_id.into(),
            include_indirect_reports: indirect,
            current_role_id: role.into(),
            ..Default::default()
        };
    for (filter, expected) in [
        (
            request("", "", false, ""),
            &["e1", "e2", "e3", "e4", "emp-ev", "m0", "m1"][..],
        ),
        // Whole parts: engineering/platformx is not below engineering/platform.
        (
            request("engineering/platform", "", false, ""),
            &["e1", "e3", "e4", "m1"],
        ),
        (
            request("engineering/platform/payments", "", false, ""),
            &["e1", "e4"],
        ),
        (request("engineering/plat", "", false, ""), &[]),
        (request("", "m1", false, ""), &["e1", "e3"]),
        (request("", "m1", true, ""), &["e1", "e3", "e4"]),
        (request("", "m0", true, ""), &["e1", "e2", "e3", "e4", "m1"]),
        (request("", "e4", true, ""), &[]),
        (
            request("", "", false, "senior_engineer"),
            &["e1", "e3", "e4"],
        ),
        (
            request("engineering/platform", "m0", true, "senior_engineer"),
            &["e1", "e3", "e4"],
        ),
        (request("engineering", "m0", false, ""), &["e2", "m1"]),
    ] {
        let what = format!("{filter:?}");
        assert_eq!(list(&mut c, filter).await, expected, "{what}");
    }
    for (bad, field) in [
        (request("engineering/", "", false, ""), "org_unit"),
        (request("", "", true, ""), "include_indirect_reports"),
        (request("", "a@b.c", false, ""), "manager_id"),
        (request("", "", false, "Not A Role"), "current_role_id"),
    ] {
        let status = c.assessment.list_subjects(bad).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&status), [field]);
    }
}

#[tokio::test]
async fn list_subjects_pages_through_every_subject_once() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    organisation(&mut c).await;
    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = c
            .assessment
            .list_subjects(pb::ListSubjectsRequest {
                page_size: 3,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.subjects.len() <= 3);
        seen.extend(page.subjects.into_iter().map(|s| s.id));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["e1", "e2", "e3", "e4", "emp-ev", "m0", "m1"]);
    // The evidence-only subject reads like the others, with nothing recorded.
    let first = c
        .assessment
        .list_subjects(pb::ListSubjectsRequest {
            page_size: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ev = c
        .assessment
        .list_subjects(pb::ListSubjectsRequest {
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subjects;
    assert_eq!(ev[0].id, "emp-ev");
    assert_eq!((ev[0].org_unit.as_str(), ev[0].etag.as_str()), ("", "r0"));
}

#[tokio::test]
async fn another_tenant_sees_and_changes_none_of_them() {
    let server = TestServer::start().await;
    let mut a = server.clients("tenant-a").await;
    organisation(&mut a).await;
    let mut b = server.clients("tenant-b").await;
    assert!(
        list(&mut b, pb::ListSubjectsRequest::default())
            .await
            .is_empty()
    );
    let subtree = pb::ListSubjectsRequest {
        manager_id: "m0".into(),
        include_indirect_reports: true,
        ..Default::default()
    };
    assert!(list(&mut b, subtree).await.is_empty());
    let mut theirs = placed("m1", "sales", "");
    theirs.allow_missing = false;
    let status = b.assessment.update_subject(theirs).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(get(&mut a, "m1").await.org_unit, "engineering/platform");
}

#[tokio::test]
async fn list_assessments_spans_subjects_and_filters_by_role_subject_and_time() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let observed = Utc::now() - Duration::days(10);
    c.assessment
        .batch_create_evidence(pb::BatchCreateEvidenceRequest {
            evidence: vec![
                evidence(
                    "emp-1",
                    "mentoring",
                    4.0,
                    EvidenceSource::Peer,
                    observed,
                    "k1",
                ),
                evidence(
                    "emp-2",
                    "mentoring",
                    3.0,
                    EvidenceSource::Peer,
                    observed,
                    "k2",
                ),
            ],
        })
        .await
        .unwrap();
    let mut created = Vec::new();
    for (subject, role) in [
        ("emp-1", "staff_engineer"),
        ("emp-2", "staff_engineer"),
        ("emp-1", "senior_engineer"),
    ] {
        let a = c
            .assessment
            .create_assessment(pb::CreateAssessmentRequest {
                subject_id: subject.into(),
                role_id: role.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .assessment
            .unwrap();
        created.push(a);
    }
    let ids = |list: Vec<pb::Assessment>| list.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let newest_first: Vec<String> = created.iter().rev().map(|a| a.id.clone()).collect();
    let listed = |req: pb::ListAssessmentsRequest| {
        let mut c = c.assessment.clone();
        async move {
            ids(c
                .list_assessments(req)
                .await
                .unwrap()
                .into_inner()
                .assessments)
        }
    };
    assert_eq!(listed(Default::default()).await, newest_first);
    let staff = pb::ListAssessmentsRequest {
        role_id: "staff_engineer".into(),
        ..Default::default()
    };
    assert_eq!(
        listed(staff.clone()).await,
        [created[1].id.clone(), created[0].id.clone()]
    );
    assert_eq!(
        listed(pb::ListAssessmentsRequest {
            subject_id: "emp-1".into(),
            ..staff.clone()
        })
        .await,
        [created[0].id.clone()]
    );
    let second = created[1].create_time.unwrap();
    assert_eq!(
        listed(pb::ListAssessmentsRequest {
            created_after: Some(second),
            ..Default::default()
        })
        .await,
        [created[2].id.clone(), created[1].id.clone()],
        "created_after is inclusive"
    );
    assert_eq!(
        listed(pb::ListAssessmentsRequest {
            created_before: Some(second),
            ..Default::default()
        })
        .await,
        [created[0].id.clone()],
        "created_before is exclusive"
    );
    // Across subjects, page by page.
    let first = c
        .assessment
        .list_assessments(pb::ListAssessmentsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rest = c
        .assessment
        .list_assessments(pb::ListAssessmentsRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rest.next_page_token.is_empty());
    assert_eq!(
        [ids(first.assessments), ids(rest.assessments)].concat(),
        newest_first
    );
    for (bad, field) in [
        (
            pb::ListAssessmentsRequest {
                role_id: "Staff Engineer".into(),
                ..Default::default()
            },
            "role_id",
        ),
        (
            pb::ListAssessmentsRequest {
                created_after: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..Default::default()
            },
            "created_after",
        ),
    ] {
        let status = c.assessment.list_assessments(bad).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&status), [field]);
    }
    // Another tenant lists none of them.
    let mut b = server.clients("tenant-b").await;
    assert!(
        b.assessment
            .list_assessments(pb::ListAssessmentsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .assessments
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn subject_import_stores_good_rows_and_reports_each_rejected_one_by_line() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.csv");
    std::fs::write(
        &file,
        "subject_id,current_role_id,org_unit,manager_id,notes\n\
         emp-1,engineering_manager,engineering,,head\n\
         emp-2,senior_engineer,engineering/platform,emp-1,\n\
         emp-3,senior_engineer,engineering//platform,emp-1,bad unit\n\
         emp-4,astronaut,engineering/platform,emp-1,bad role\n\
         emp-5,staff_engineer,engineering/platform,emp-5,own manager\n\
         emp-6,senior_engineer,engineering/platform/payments,emp-2,\n",
    )
    .unwrap();
    let import = || {
        Command::new(ladder_bin())
            .args(["subject", "import"])
            .arg(&file)
            .args(["--batch-size", "2"])
            .args(["--server", &server.url(), "--token", &token("tenant-a")])
            .output()
            .unwrap()
    };
    let out = import();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("3 subject(s) updated, 3 rejected"), "{said}");
    for line in [
        "line 4: subject.org_unit:",
        "line 5: subject.current_role_id: unknown role \"astronaut\"",
        "line 6: subject.manager_id: must not be the subject itself",
    ] {
        assert!(said.contains(line), "{line} in {said}");
    }
    let rows = stored(&server).await;
    let expected = [
        ("emp-1", Some("engineering"), None),
        ("emp-2", Some("engineering/platform"), Some("emp-1")),
        (
            "emp-6",
            Some("engineering/platform/payments"),
            Some("emp-2"),
        ),
    ]
    .map(|(id, org, manager)| {
        (
            id.to_string(),
            org.map(str::to_string),
            manager.map(str::to_string),
        )
    });
    assert_eq!(rows, expected);

    // Fixed, and sent again: the good rows change nothing.
    let fixed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("engineering//platform", "engineering/platform")
        .replace("astronaut", "senior_engineer")
        .replace(
            "emp-5,staff_engineer,engineering/platform,emp-5",
            "emp-5,staff_engineer,engineering/platform,emp-1",
        );
    std::fs::write(&file, fixed).unwrap();
    let out = import();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("6 subject(s) updated, 0 rejected"), "{said}");
    let revisions: Vec<i64> = sqlx::query_scalar("SELECT revision FROM subjects ORDER BY id")
        .fetch_all(&server.pool)
        .await
        .unwrap();
    assert_eq!(
        revisions, [1; 6],
        "rows stored before were left as they were"
    );

    // A column the file lacks is left as stored.
    let partial = dir.path().join("moves.csv");
    std::fs::write(
        &partial,
        "subject_id,org_unit\nemp-4,engineering/platform/payments\n",
    )
    .unwrap();
    let out = Command::new(ladder_bin())
        .args(["subject", "import"])
        .arg(&partial)
        .args(["--server", &server.url(), "--token", &token("tenant-a")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new(ladder_bin())
        .args(["subject", "list", "--manager", "emp-1", "--indirect"])
        .args(["--server", &server.url(), "--token", &token("tenant-a")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "subject_id,current_role_id,org_unit,manager_id\n\
         emp-2,senior_engineer,engineering/platform,emp-1\n\
         emp-3,senior_engineer,engineering/platform,emp-1\n\
         emp-4,senior_engineer,engineering/platform/payments,emp-1\n\
         emp-5,staff_engineer,engineering/platform,emp-1\n\
         emp-6,senior_engineer,engineering/platform/payments,emp-2\n"
    );
}

#[tokio::test]
async fn export_has_the_org_unit_and_manager_and_erasure_removes_them_everywhere() {
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    organisation(&mut c).await;
    let export = |id: &str| pb::ExportSubjectDataRequest {
        subject_id: id.into(),
    };
    let data = c
        .subject_rights
        .export_subject_data(export("m1"))
        .await
        .unwrap()
        .into_inner()
        .subject_data
        .unwrap();
    assert_eq!(
        (data.org_unit.as_str(), data.manager_id.as_str()),
        ("engineering/platform", "m0")
    );
    c.subject_rights
        .erase_subject(pb::EraseSubjectRequest {
            subject_id: "m1".into(),
        })
        .await
        .unwrap();
    // m1's id as the manager of e1 and e3 is about m1: it goes too.
    let rows = stored(&server).await;
    assert!(
        rows.iter()
            .all(|(id, _, manager)| id != "m1" && manager.as_deref() != Some("m1")),
        "{rows:?}"
    );
    let by_m1 = pb::ListSubjectsRequest {
        manager_id: "m1".into(),
        ..Default::default()
    };
    assert!(list(&mut c, by_m1).await.is_empty());
    assert_eq!(
        get(&mut c, "e1").await.org_unit,
        "engineering/platform/payments"
    );
}
