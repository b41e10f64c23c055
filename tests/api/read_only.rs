//! A database that turns read-only under the server (a standby promoted the
//! other way, `default_transaction_read_only` set during a failover): reads
//! go on, a known tenant's first call on a new server writes nothing, and
//! writes are UNAVAILABLE with the reason, never INTERNAL.

use chrono::{TimeZone, Utc};
use ladder::proto::v1 as pb;
use tonic::Code;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use tonic_types::StatusExt;

use crate::harness::{Clients, LoggedServer, TestServer, evidence};
use crate::observability::get;

fn rating(key: &str) -> pb::Evidence {
    evidence(
        "emp-1",
        "system_design",
        4.0,
        pb::EvidenceSource::Manager,
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        key,
    )
}

async fn ingest(c: &mut Clients, key: &str) -> Result<i32, tonic::Status> {
    c.assessment
        .batch_create_evidence(pb::BatchCreateEvidenceRequest {
            evidence: vec![rating(key)],
        })
        .await
        .map(|r| r.into_inner().created_count)
}

async fn reads(c: &mut Clients) -> Result<(), tonic::Status> {
    c.rubric
        .get_role(pb::GetRoleRequest {
            role_id: "staff_engineer".into(),
        })
        .await?;
    c.assessment
        .list_evidence(pb::ListEvidenceRequest {
            subject_id: "emp-1".into(),
            ..Default::default()
        })
        .await?;
    let assessment = c
        .assessment
        .create_assessment(pb::CreateAssessmentRequest {
            subject_id: "emp-1".into(),
            role_id: "staff_engineer".into(),
            validate_only: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(assessment.competencies.len(), 9);
    Ok(())
}

/// Makes the test's database read-only (or writable again) for every new
/// session and ends the server's sessions, as a failover does.
async fn set_read_only(server: &TestServer, read_only: bool) {
    let setting = if read_only {
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', \
             current_database()); END $$"
    } else {
        // This session may have started read-only too.
        "BEGIN READ WRITE; \
         DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET default_transaction_read_only', \
             current_database()); END $$; \
         COMMIT"
    };
    sqlx::raw_sql(setting).execute(&server.pool).await.unwrap();
    server.end_app_sessions().await;
}

async fn health(server: &TestServer) -> i32 {
    HealthClient::new(server.channel().await)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test]
async fn a_read_only_database_serves_reads_and_refuses_writes_as_unavailable() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let mut c = server.clients("tenant-a").await;
    assert_eq!(ingest(&mut c, "before").await.unwrap(), 1);
    // Another replica (a restarted pod, say) that has served nobody yet.
    let fresh = server.replica().await;
    set_read_only(&server, true).await;

    // Out of the Service: not ready at once, NOT_SERVING by the next check.
    assert_eq!(get(admin, "/readyz").await.0, 503);
    until_health(&server, ServingStatus::NotServing).await;

    // Calls that still reach it: the first may meet a connection the
    // failover cut; after it, reads work and writes say why they cannot.
    let _ = reads(&mut c).await;
    reads(&mut c).await.unwrap();
    let refused = ingest(&mut c, "after").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("read-only"), "{refused:?}");
    assert_eq!(
        refused.get_details_error_info().map(|i| i.reason),
        Some("DATABASE_READ_ONLY".to_string())
    );

    // The fresh replica serves the tenant it has never seen without
    // registering it again.
    let mut c = fresh.clients("tenant-a").await;
    let _ = reads(&mut c).await;
    reads(&mut c).await.unwrap();
    assert_eq!(server.count("evidence").await, 1);

    // Writable again: back in the Service by itself, and writes work.
    set_read_only(&server, false).await;
    until_health(&server, ServingStatus::Serving).await;
    assert_eq!(get(admin, "/readyz").await.0, 200);
    let mut c = server.clients("tenant-a").await;
    let _ = ingest(&mut c, "again").await;
    ingest(&mut c, "again").await.unwrap();
    assert_eq!(server.count("evidence").await, 2);
}

/// Waits (up to 20 s: the monitor checks every 5 s) for `status`.
async fn until_health(server: &TestServer, status: ServingStatus) {
    let mut seen = health(server).await;
    for _ in 0..100 {
        if seen == status as i32 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        seen = health(server).await;
    }
    assert_eq!(seen, status as i32);
}

/// A pod started while its database is read-only (a standby, a failover
/// under way) does not exit: it serves NOT_SERVING, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_on_a_read_only_database_waits_not_serving() {
    let server = TestServer::start().await;
    set_read_only(&server, true).await;
    let started = LoggedServer::start(&server.app_database_url());
    let channel = tonic::transport::Channel::from_shared(started.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::NotServing as i32);
    let log = started.stop().await;
    assert!(
        log.iter()
            .any(|l| l.contains("not serving until the database takes writes")),
        "{}",
        log.join("\n")
    );
}
