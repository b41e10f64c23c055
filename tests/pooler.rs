//! Ladder behind Debian's PgBouncer 1.18 in transaction mode, as platform
//! teams deploy PostgreSQL services (`--database-pooler transaction`): two
//! tenants at once over two server connections, calls with tiny deadlines
//! mixed in, framework writes among them. Every answer must equal the one
//! a server on the database itself gives, no call may meet another call's
//! timeout, and nothing may fail as INTERNAL.
//!
//! A test binary of its own: a server behind a transaction pooler makes
//! every statement of its process unnamed (`storage::traced`), which the
//! other tests' servers need not pay.

#[path = "api/harness.rs"]
#[allow(dead_code, unused_imports)] // the helpers only the api tests use
mod harness;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use harness::{Clients, Pooler, TestServer, evidence, timestamp};
use ladder::proto::v1 as pb;
use tonic::Code;

const TENANTS: [&str; 2] = ["tenant-a", "tenant-b"];
const SUBJECTS: usize = 4;

fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// Each tenant's people differ, so that an answer computed from the other
/// tenant's rows (or none) shows.
fn people(tenant: &str) -> Vec<pb::Evidence> {
    let base = if tenant == TENANTS[0] { 2.0 } else { 4.0 };
    let mut items = Vec::new();
    for s in 0..SUBJECTS {
        for (k, competency) in ["system_design", "technical_influence", "mentoring"]
            .into_iter()
            .enumerate()
        {
            for r in 0..3 {
                items.push(evidence(
                    &subject(s),
                    competency,
                    base + 0.25 * (s + k + r) as f64 % 1.0,
                    pb::EvidenceSource::Manager,
                    as_of() - chrono::Duration::days(30 * (r as i64 + 1)),
                    &format!("{tenant}-{s}-{competency}-{r}"),
                ));
            }
        }
    }
    items
}

fn subject(s: usize) -> String {
    format!("emp-{s}")
}

fn assessment_request(subject: &str, stored: bool) -> pb::CreateAssessmentRequest {
    pb::CreateAssessmentRequest {
        subject_id: subject.into(),
        role_id: "staff_engineer".into(),
        as_of: Some(timestamp(as_of())),
        validate_only: !stored,
        ..Default::default()
    }
}

/// A competency's id, estimate and probability (as bits) and status.
type CompetencyNumbers = (String, u64, u64, i32);

/// What must match between two servers' answers: band, readiness (as bits)
/// and every competency's numbers.
fn numbers(a: &pb::Assessment) -> (i32, u64, Vec<CompetencyNumbers>) {
    (
        a.band,
        a.readiness.to_bits(),
        a.competencies
            .iter()
            .map(|c| {
                (
                    c.competency_id.clone(),
                    c.estimated_level.to_bits(),
                    c.probability.to_bits(),
                    c.status,
                )
            })
            .collect(),
    )
}

/// What a mixed stream of calls through the pooler got.
#[derive(Debug, Default)]
struct Tally {
    exact: usize,
    wrong: Vec<String>,
    /// Calls with time enough that ran out of it anyway.
    foreign_timeouts: Vec<String>,
    internal: Vec<String>,
    /// Calls with a tiny deadline that did not finish in it (as they may).
    cut_short: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_transaction_pooler_every_answer_is_exact_and_no_timeout_is_foreign() {
    let direct = TestServer::start().await;
    let pooler = Pooler::start(2);
    let pooled = direct.behind(&pooler, 8).await;

    // The reference answers, from the server on the database itself.
    let mut expected = std::collections::HashMap::new();
    for tenant in TENANTS {
        let mut c = pooled.clients(tenant).await;
        let created = c
            .assessment
            .batch_create_evidence(pb::BatchCreateEvidenceRequest {
                evidence: people(tenant),
            })
            .await
            .unwrap()
            .into_inner()
            .created_count;
        assert_eq!(created as usize, SUBJECTS * 9);
        let mut d = direct.clients(tenant).await;
        for s in 0..SUBJECTS {
            let answer = d
                .assessment
                .create_assessment(assessment_request(&subject(s), false))
                .await
                .unwrap()
                .into_inner()
                .assessment
                .unwrap();
            expected.insert((tenant, subject(s)), numbers(&answer));
        }
    }

    let mut tasks = Vec::new();
    for worker in 0..8usize {
        let tenant = TENANTS[worker % 2];
        let mut c: Clients = pooled.clients(tenant).await;
        let expected = expected.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            for i in 0..30usize {
                let who = subject((worker + i) % SUBJECTS);
                let tiny = i % 3 == 0;
                let stored = i % 5 == 1;
                let mut request = tonic::Request::new(assessment_request(&who, stored));
                request.set_timeout(if tiny {
                    Duration::from_millis(1 + (i % 4) as u64)
                } else {
                    Duration::from_secs(30)
                });
                let what = format!("{tenant} {who} stored={stored} tiny={tiny}");
                match c.assessment.create_assessment(request).await {
                    Ok(answer) => {
                        let answer = answer.into_inner().assessment.unwrap();
                        if numbers(&answer) == expected[&(tenant, who)] {
                            tally.exact += 1;
                        } else {
                            tally.wrong.push(what);
                        }
                    }
                    Err(status) if status.code() == Code::Internal => {
                        tally.internal.push(format!("{what}: {status:?}"));
                    }
                    Err(_) if tiny => tally.cut_short += 1,
                    Err(status) if status.code() == Code::DeadlineExceeded => {
                        tally.foreign_timeouts.push(format!("{what}: {status:?}"));
                    }
                    Err(status) => tally.wrong.push(format!("{what}: {status:?}")),
                }
            }
            tally
        }));
    }
    // Framework writes among the calls: a role created through the pooler
    // is there for the next read.
    let mut admin = pooled.clients(TENANTS[0]).await;
    for k in 0..5 {
        let id = format!("pooled_role_{k}");
        admin
            .rubric
            .create_role(pb::CreateRoleRequest {
                role: Some(pb::Role {
                    id: id.clone(),
                    name: format!("Pooled role {k}"),
                    track_id: "individual_contributor".into(),
                    seniority: 5,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("creating {id}: {e:?}"));
        admin
            .rubric
            .get_role(pb::GetRoleRequest { role_id: id })
            .await
            .unwrap();
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.unwrap();
        total.exact += tally.exact;
        total.cut_short += tally.cut_short;
        total.wrong.extend(tally.wrong);
        total.foreign_timeouts.extend(tally.foreign_timeouts);
        total.internal.extend(tally.internal);
    }
    assert!(total.wrong.is_empty(), "wrong answers: {:?}", total.wrong);
    assert!(
        total.foreign_timeouts.is_empty(),
        "timeouts of calls with time enough: {:?}",
        total.foreign_timeouts
    );
    assert!(total.internal.is_empty(), "INTERNAL: {:?}", total.internal);
    assert!(total.exact >= 8 * 20, "{total:?}");

    // Every assessment stored through the pooler is its subject's.
    let stored: Vec<(String, String, f64)> =
        sqlx::query_as("SELECT tenant_id, subject_id, readiness FROM assessments")
            .fetch_all(&direct.pool)
            .await
            .unwrap();
    assert!(stored.len() > SUBJECTS * TENANTS.len());
    for (tenant, subject, readiness) in stored {
        let tenant = TENANTS.into_iter().find(|t| *t == tenant).unwrap();
        assert_eq!(readiness.to_bits(), expected[&(tenant, subject)].1);
    }

    // A framework change made on another server reaches this one through
    // its listener, which holds its session on the database itself.
    let mut other = direct.clients(TENANTS[1]).await;
    let mut pooled_b = pooled.clients(TENANTS[1]).await;
    let role = |id: &str| pb::GetRoleRequest { role_id: id.into() };
    pooled_b
        .rubric
        .get_role(role("staff_engineer"))
        .await
        .unwrap();
    other
        .rubric
        .update_role(pb::UpdateRoleRequest {
            role: Some(pb::Role {
                id: "staff_engineer".into(),
                name: "Staff Engineer (renamed)".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await
        .unwrap();
    let mut seen = String::new();
    for _ in 0..100 {
        seen = pooled_b
            .rubric
            .get_role(role("staff_engineer"))
            .await
            .unwrap()
            .into_inner()
            .role
            .unwrap()
            .name;
        if seen.ends_with("(renamed)") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, "Staff Engineer (renamed)");
}

/// `ladder serve` with these arguments: its exit status and what it wrote
/// until it exited, or `None` and what it wrote until it said it listens
/// (then it is stopped).
fn serve(args: &[&str]) -> (Option<i32>, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(harness::ladder_bin())
        .args(["serve", "--dev", "--no-migrate", "--listen", "127.0.0.1:0"])
        .args(["--log-format", "text"])
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("ladder listening") {
            let _ = child.kill();
            let _ = child.wait();
            return (None, said);
        }
    }
    (child.wait().unwrap().code(), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_behind_a_transaction_pooler_without_the_setting_fails_naming_it() {
    let direct = TestServer::start().await;
    let pooler = Pooler::start(2);
    let url = pooler.app_url(direct.database());

    let (status, said) = tokio::task::spawn_blocking(move || serve(&["--database-url", &url]))
        .await
        .unwrap();
    assert_eq!(status, Some(1), "{said}");
    assert!(said.contains("--database-pooler transaction"), "{said}");
    assert!(said.contains("--database-direct-url"), "{said}");

    let url = pooler.app_url(direct.database());
    let (status, said) = tokio::task::spawn_blocking(move || {
        serve(&["--database-url", &url, "--database-pooler", "transaction"])
    })
    .await
    .unwrap();
    assert_eq!(status, Some(1), "{said}");
    assert!(said.contains("needs --database-direct-url"), "{said}");

    // The same URL with the setting and the database itself beside it serves.
    let (url, direct_url) = (pooler.app_url(direct.database()), direct.app_database_url());
    let (status, said) = tokio::task::spawn_blocking(move || {
        serve(&[
            "--database-url",
            &url,
            "--database-pooler",
            "transaction",
            "--database-direct-url",
            &direct_url,
        ])
    })
    .await
    .unwrap();
    assert_eq!(status, None, "it should have kept serving: {said}");
    assert!(said.contains("ladder listening"), "{said}");
}
