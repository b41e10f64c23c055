//! Overload, deadlines and shutdown. Calls are made slow for real: a test
//! transaction holds a lock on the evidence table, so batch ingests wait
//! for it inside the database until the test lets go.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ladder::proto::v1 as pb;
use ladder::proto::v1::EvidenceSource;
use ladder::proto::v1::assessment_service_client::AssessmentServiceClient;
use ladder::transport::limits::Limits;
use sqlx::{Connection, PgConnection};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use crate::harness::{Bearer, TestServer, evidence, token};

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

fn batch(
    items: Vec<pb::Evidence>,
    timeout: Duration,
) -> tonic::Request<pb::BatchCreateEvidenceRequest> {
    let mut request = tonic::Request::new(pb::BatchCreateEvidenceRequest { evidence: items });
    request.set_timeout(timeout);
    request
}

/// A client on a connection of its own.
async fn client(server: &TestServer) -> AssessmentServiceClient<crate::harness::Authed> {
    let bearer = Bearer(Some(
        format!("Bearer {}", token("tenant-a")).parse().unwrap(),
    ));
    AssessmentServiceClient::with_interceptor(server.channel().await, bearer)
}

/// A transaction of the test's own holding the evidence table against
/// every insert (reads go on).
async fn lock_evidence(server: &TestServer) -> PgConnection {
    let options = server.pool.connect_options();
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE evidence IN EXCLUSIVE MODE")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

async fn release(mut conn: PgConnection) {
    sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// Backends of the server running an evidence insert.
async fn inserts_running(server: &TestServer) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
           AND state = 'active' AND query LIKE 'INSERT INTO evidence%'",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap()
}

/// Waits (polling) until `n` evidence inserts run in the database.
async fn until_inserts_running(server: &TestServer, n: usize) -> Vec<i32> {
    loop {
        let pids = inserts_running(server).await;
        if pids.len() >= n {
            return pids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn health(channel: tonic::transport::Channel) -> i32 {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status
}

/// 6(c): 200 clients at once against 32 slots. Every call succeeds or is
/// shed with RESOURCE_EXHAUSTED and a retry hint; shed calls retried until
/// they succeed leave every item stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_clients_against_thirty_two_slots_lose_and_duplicate_nothing() {
    let limits = Limits {
        max_in_flight: 32,
        ..Limits::for_pool(32)
    };
    let server = TestServer::start_limited(limits, 32).await;
    let mut first = client(&server).await;
    first
        .batch_create_evidence(batch(items("warm", 1), Duration::from_secs(30)))
        .await
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(client(&server).await);
    }
    // The first 32 admitted wait on the lock, so the other 168 are shed.
    let lock = lock_evidence(&server).await;
    let mut calls: FuturesUnordered<_> = clients
        .into_iter()
        .enumerate()
        .map(|(k, mut c)| async move {
            let tag = format!("client-{k}");
            let answer = c
                .batch_create_evidence(batch(items(&tag, 5), Duration::from_secs(60)))
                .await;
            (k, c, answer)
        })
        .collect();
    let mut shed = Vec::new();
    let mut succeeded = 0;
    let mut lock = Some(lock);
    while let Some((k, c, answer)) = calls.next().await {
        match answer {
            Ok(response) => {
                assert_eq!(response.into_inner().created_count, 5);
                succeeded += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                let retry = status.get_details_retry_info().expect("a retry hint");
                assert!(retry.retry_delay.is_some());
                shed.push((k, c));
            }
        }
        if shed.len() == 168
            && let Some(lock) = lock.take()
        {
            release(lock).await;
        }
    }
    assert_eq!(shed.len(), 168);
    assert_eq!(succeeded, 32);
    for (k, mut c) in shed {
        let tag = format!("client-{k}");
        loop {
            match c
                .batch_create_evidence(batch(items(&tag, 5), Duration::from_secs(60)))
                .await
            {
                Ok(_) => break,
                Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
            }
        }
    }
    assert_eq!(server.count("evidence").await, 1 + 200 * 5);
    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT (source_system, external_id)) FROM evidence")
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(distinct, 1 + 200 * 5);
}

/// A 250 ms deadline on an insert stuck behind a lock: DEADLINE_EXCEEDED,
/// and the insert is gone from the database soon after (its
/// `statement_timeout` ended it), nothing written. (The server answers
/// 50 ms before the caller's own timer would end the call with CANCELLED;
/// with a 50 ms deadline its head start is 10 ms, little on a loaded
/// machine.)
#[tokio::test]
async fn a_deadline_ends_the_call_and_its_statement() {
    let server = TestServer::start().await;
    let mut c = client(&server).await;
    c.batch_create_evidence(batch(items("warm", 1), Duration::from_secs(30)))
        .await
        .unwrap();
    let lock = lock_evidence(&server).await;
    let err = c
        .batch_create_evidence(batch(items("slow", 100), Duration::from_millis(250)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    // Gone shortly after, while the lock is still held.
    let mut polls = 0;
    while !inserts_running(&server).await.is_empty() {
        polls += 1;
        assert!(polls < 100, "the insert still runs in the database");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    release(lock).await;
    assert_eq!(server.count("evidence").await, 1);
}

/// A write past its deadline is answered DEADLINE_EXCEEDED at once, even
/// when its failure's audit row cannot be written yet (the audit log is
/// locked too), and the row is written once it can: the audit does not
/// wait for the caller, nor dies with the call.
#[tokio::test]
async fn a_write_past_its_deadline_is_answered_at_once_and_audited_later() {
    let server = TestServer::start().await;
    let mut c = client(&server).await;
    c.batch_create_evidence(batch(items("warm", 1), Duration::from_secs(30)))
        .await
        .unwrap();
    let mut lock = lock_evidence(&server).await;
    sqlx::raw_sql("LOCK TABLE audit_log IN EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let err = c
        .batch_create_evidence(batch(items("slow", 1), Duration::from_millis(250)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    // The call is over on both ends; its audit still waits for the lock.
    tokio::time::sleep(Duration::from_millis(300)).await;
    release(lock).await;
    const FAILED: &str = "SELECT count(*) FROM audit_log \
         WHERE method LIKE '%BatchCreateEvidence' AND outcome = 'DeadlineExceeded'";
    let mut polls = 0;
    while sqlx::query_scalar::<_, i64>(FAILED)
        .fetch_one(&server.pool)
        .await
        .unwrap()
        == 0
    {
        polls += 1;
        assert!(polls < 100, "the failed write was never audited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.count("evidence").await, 1);
}

/// Shutdown while a call runs: health NOT_SERVING at once, new calls
/// refused, the running call finishes.
#[tokio::test]
async fn shutdown_drains_the_running_call_and_refuses_new_ones() {
    let mut server = TestServer::start().await;
    let mut c = client(&server).await;
    c.batch_create_evidence(batch(items("warm", 1), Duration::from_secs(30)))
        .await
        .unwrap();
    let lock = lock_evidence(&server).await;
    let mut running = client(&server).await;
    let call = tokio::spawn(async move {
        running
            .batch_create_evidence(batch(items("drained", 3), Duration::from_secs(60)))
            .await
    });
    until_inserts_running(&server, 1).await;
    let channel = server.channel().await;
    server.begin_shutdown();
    while health(channel.clone()).await != ServingStatus::NotServing as i32 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = c
        .batch_create_evidence(batch(items("late", 1), Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    release(lock).await;
    let finished = call.await.unwrap().expect("the running call finishes");
    assert_eq!(finished.into_inner().created_count, 3);
    assert_eq!(server.count("evidence").await, 4);
}

/// Overlapping batches in different orders from several clients at once
/// neither deadlock nor duplicate: keys are locked in one order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_batches_from_many_clients_do_not_deadlock() {
    let server = TestServer::start().await;
    let mut warm = client(&server).await;
    warm.batch_create_evidence(batch(items("warm", 1), Duration::from_secs(30)))
        .await
        .unwrap();
    let shared = items("shared", 40);
    let mut calls = Vec::new();
    for k in 0..8 {
        let mut c = client(&server).await;
        let mut mine = shared.clone();
        // Every client its own order of the same keys.
        mine.rotate_left(k * 5);
        if k % 2 == 1 {
            mine.reverse();
        }
        calls.push(tokio::spawn(async move {
            c.batch_create_evidence(batch(mine, Duration::from_secs(60)))
                .await
        }));
    }
    let mut created = 0;
    for call in calls {
        created += call
            .await
            .unwrap()
            .expect("no deadlock")
            .into_inner()
            .created_count;
    }
    assert_eq!(created, 40);
    assert_eq!(server.count("evidence").await, 41);
}

/// A call still running when the grace period ends is cancelled: it
/// answers UNAVAILABLE, its transaction is rolled back, the server stops.
#[tokio::test]
async fn shutdown_cancels_what_outlasts_the_grace_period() {
    let limits = Limits {
        shutdown_grace: Duration::from_millis(300),
        ..Limits::for_pool(4)
    };
    let mut server = TestServer::start_limited(limits, 4).await;
    let mut c = client(&server).await;
    c.batch_create_evidence(batch(items("warm", 1), Duration::from_secs(30)))
        .await
        .unwrap();
    let lock = lock_evidence(&server).await;
    let call = tokio::spawn(async move {
        c.batch_create_evidence(batch(items("cut", 3), Duration::from_secs(60)))
            .await
    });
    until_inserts_running(&server, 1).await;
    server.begin_shutdown();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    release(lock).await;
    assert_eq!(server.count("evidence").await, 1);
}
