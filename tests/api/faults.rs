//! Faults of the database, for real: a backend killed in the middle of a
//! batch insert, and PostgreSQL stopped and started under a running server.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use ladder::app::embedded_pg::{EmbeddedConfig, EmbeddedPostgres};
use ladder::app::server;
use ladder::proto::v1 as pb;
use ladder::proto::v1::EvidenceSource;
use ladder::proto::v1::assessment_service_client::AssessmentServiceClient;
use ladder::storage::Db;
use ladder::transport::AppState;
use sqlx::{Connection, PgConnection};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{Bearer, TestServer, evidence, serve_state, token, traversable_temp_dir};

fn items(tag: &str, n: usize) -> Vec<pb::Evidence> {
    let observed = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            evidence(
                "emp-1",
                "system_design",
                3.0,
                EvidenceSource::Peer,
                observed,
                &format!("{tag}-{i}"),
            )
        })
        .collect()
}

async fn client(url: String) -> AssessmentServiceClient<crate::harness::Authed> {
    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer = Bearer(Some(
        format!("Bearer {}", token("tenant-a")).parse().unwrap(),
    ));
    AssessmentServiceClient::with_interceptor(channel, bearer)
}

/// A dry-run assessment of `emp-1` (the scoring path: a tenant connection,
/// kept for the next call when it succeeds).
async fn assess(
    c: &mut AssessmentServiceClient<crate::harness::Authed>,
) -> Result<pb::Assessment, tonic::Status> {
    c.create_assessment(pb::CreateAssessmentRequest {
        subject_id: "emp-1".into(),
        role_id: "staff_engineer".into(),
        validate_only: true,
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().assessment.expect("an assessment"))
}

async fn ingest(
    c: &mut AssessmentServiceClient<crate::harness::Authed>,
    items: Vec<pb::Evidence>,
) -> Result<i32, tonic::Status> {
    c.batch_create_evidence(pb::BatchCreateEvidenceRequest { evidence: items })
        .await
        .map(|r| r.into_inner().created_count)
}

/// 6(a): the backend serving a batch insert is terminated mid-transaction
/// (the insert waits on a lock the test holds): the call fails with a code
/// that says retry, and the retry stores each item exactly once.
#[tokio::test]
async fn a_backend_killed_mid_batch_fails_retryably_and_the_retry_stores_one_copy() {
    let server = TestServer::start().await;
    let mut c = client(server.url()).await;
    ingest(&mut c, items("warm", 1)).await.unwrap();
    let mut lock = PgConnection::connect_with(&server.pool.connect_options())
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE evidence IN EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let mut killed = client(server.url()).await;
    let call = tokio::spawn(async move { ingest(&mut killed, items("batch", 20)).await });
    let pid: i32 = loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
               AND state = 'active' AND query LIKE 'INSERT INTO evidence%'",
        )
        .fetch_optional(&server.pool)
        .await
        .unwrap();
        if let Some(pid) = pid {
            break pid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&server.pool)
        .await
        .unwrap();
    assert!(terminated);
    let err = call.await.unwrap().unwrap_err();
    assert!(
        matches!(err.code(), Code::Unavailable | Code::Aborted),
        "{err:?}"
    );
    sqlx::raw_sql("COMMIT").execute(&mut lock).await.unwrap();
    assert_eq!(server.count("evidence").await, 1);
    assert_eq!(ingest(&mut c, items("batch", 20)).await.unwrap(), 20);
    assert_eq!(ingest(&mut c, items("batch", 20)).await.unwrap(), 0);
    assert_eq!(server.count("evidence").await, 21);
}

async fn health(url: &str) -> Option<i32> {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .ok()?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .ok()?;
    Some(answer.into_inner().status)
}

async fn until_health(url: &str, status: ServingStatus) {
    while health(url).await != Some(status as i32) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// 6(b): PostgreSQL (a cluster of this test's own) stops and starts again
/// under a running server: NOT_SERVING and UNAVAILABLE meanwhile, then
/// SERVING, and the first call after the restart succeeds, without
/// restarting the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarting_under_the_server_is_survived() {
    let dir = traversable_temp_dir();
    let config = EmbeddedConfig::throwaway(dir.path().join("data"));
    let start = {
        let config = config.clone();
        move || {
            let config = config.clone();
            tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&config).unwrap())
        }
    };
    let cluster = start().await.unwrap();
    let options = server::embedded_options(&cluster).unwrap();
    ladder::storage::ensure_database(&options, "ladder")
        .await
        .unwrap();
    let db = Db::connect(options.database("ladder"), 4).await.unwrap();
    db.migrate().await.unwrap();
    let running = serve_state(AppState::new(db), crate::harness::authenticator()).await;
    let url = format!("http://{}", running.addr);
    let mut c = client(url.clone()).await;
    // Several pooled connections, all to die with the cluster.
    let calls = (0..4).map(|k| {
        let url = url.clone();
        async move {
            let mut c = client(url).await;
            ingest(&mut c, items(&format!("before-{k}"), 2)).await
        }
    });
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.unwrap(), 2);
    }
    // Scoring calls at once: their connections are kept out of the pool
    // for the next ones, and die with the cluster too.
    let scoring = (0..4).map(|_| {
        let url = url.clone();
        async move { assess(&mut client(url).await).await }
    });
    for answer in futures::future::join_all(scoring).await {
        answer.unwrap();
    }

    tokio::task::spawn_blocking(move || cluster.stop().unwrap())
        .await
        .unwrap();
    until_health(&url, ServingStatus::NotServing).await;
    let err = ingest(&mut c, items("during", 2)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    let cluster = start().await.unwrap();
    until_health(&url, ServingStatus::Serving).await;
    // The first scoring call after the restart does not fail on a kept
    // connection that died.
    assess(&mut c).await.unwrap();
    assert_eq!(ingest(&mut c, items("after", 2)).await.unwrap(), 2);
    for k in 0..4 {
        assert_eq!(
            ingest(&mut c, items(&format!("again-{k}"), 1))
                .await
                .unwrap(),
            1
        );
    }
    running.stop().await;
    tokio::task::spawn_blocking(move || cluster.stop().unwrap())
        .await
        .unwrap();
}

/// PostgreSQL refusing new connections (here: its per-database connection
/// limit, SQLSTATE 53300 as for `max_connections`): calls answer
/// UNAVAILABLE, and the log says PostgreSQL's own reason, not only that the
/// pool timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_logged_with_postgresql_s_reason() {
    let test_server = TestServer::start().await;
    let server = crate::harness::LoggedServer::start(&test_server.app_database_url());
    let mut c = client_without_token(server.url()).await;
    c.update_subject(pb::UpdateSubjectRequest {
        subject: Some(pb::Subject {
            id: "emp-1".into(),
            current_role_id: "senior_engineer".into(),
            ..Default::default()
        }),
        allow_missing: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assess(&mut c).await.unwrap();
    sqlx::raw_sql(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I WITH CONNECTION LIMIT 0', \
             current_database()); END $$",
    )
    .execute(&test_server.pool)
    .await
    .unwrap();
    test_server.end_app_sessions().await;
    // The first call may meet a connection the termination cut; the next
    // ones find none that opens.
    let _ = assess(&mut c).await;
    for _ in 0..2 {
        let refused = assess(&mut c).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    }
    let mut explained = false;
    for _ in 0..100 {
        explained = server
            .lines()
            .iter()
            .any(|l| l.contains("cannot open a database connection") && l.contains("53300"));
        if explained {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = server.stop().await;
    assert!(explained, "no reason logged:\n{}", log.join("\n"));
}

/// A client of a `--dev` server, which takes calls without a token.
async fn client_without_token(url: String) -> AssessmentServiceClient<crate::harness::Authed> {
    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    AssessmentServiceClient::with_interceptor(channel, Bearer(None))
}
