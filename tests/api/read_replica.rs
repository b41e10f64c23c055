//! A read replica (`--database-read-url`): a real hot standby made by the
//! harness with `pg_basebackup -R` from a primary of the test's own. Reads
//! go to it and writes to the primary; pausing the standby's replay
//! (`pg_wal_replay_pause()`) makes its answers visibly older, which shows
//! where each call read, and past the lag bound the replica is not used.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ladder::proto::v1 as pb;
use ladder::proto::v1::explain_assessment_request::Target;
use tonic::Code;

use crate::harness::{Clients, ReplicatedPair, TestServer, evidence, timestamp};

const SUBJECT: &str = "emp-7";

fn rating(key: &str, level: f64) -> pb::Evidence {
    evidence(
        SUBJECT,
        "system_design",
        level,
        pb::EvidenceSource::Manager,
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        key,
    )
}

/// Stores one rating; returns its id.
async fn ingest(c: &mut Clients, key: &str, level: f64) -> String {
    let stored = c
        .assessment
        .batch_create_evidence(pb::BatchCreateEvidenceRequest {
            evidence: vec![rating(key, level)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.created_count, 1);
    stored.evidence[0].id.clone()
}

fn assessment_request(validate_only: bool) -> pb::CreateAssessmentRequest {
    pb::CreateAssessmentRequest {
        subject_id: SUBJECT.into(),
        role_id: "staff_engineer".into(),
        as_of: Some(timestamp(
            Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
        )),
        validate_only,
        ..Default::default()
    }
}

async fn assess(c: &mut Clients, validate_only: bool) -> pb::Assessment {
    c.assessment
        .create_assessment(assessment_request(validate_only))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap()
}

/// The evidence an assessment cites.
fn cited(assessment: &pb::Assessment) -> BTreeSet<String> {
    assessment
        .competencies
        .iter()
        .flat_map(|c| c.contributions.iter().map(|k| k.evidence_id.clone()))
        .collect()
}

/// An assessment without what differs between two computations of it.
fn scored(mut assessment: pb::Assessment) -> pb::Assessment {
    assessment.id.clear();
    assessment.create_time = None;
    assessment
}

async fn evidence_count(c: &mut Clients) -> usize {
    c.assessment
        .list_evidence(pb::ListEvidenceRequest {
            subject_id: SUBJECT.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .evidence
        .len()
}

fn sample(server: &TestServer, series: &str) -> f64 {
    let metrics = server.state.metrics.encode();
    metrics
        .lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

/// Waits until the replica's `in_use` metric says `in_use`.
async fn wait_for_in_use(server: &TestServer, in_use: bool) {
    let wanted = f64::from(u8::from(in_use));
    for _ in 0..150 {
        if sample(server, "ladder_db_replica_in_use") == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replica's in_use did not become {in_use} within 15 s");
}

#[tokio::test]
async fn reads_go_to_the_replica_and_writes_and_provisioning_to_the_primary() {
    let pair = ReplicatedPair::start().await;
    let server = pair.server(Duration::from_secs(60)).await;
    let primary = pair.primary_server().await;
    assert_eq!(sample(&server, "ladder_db_replica_in_use"), 1.0);
    assert!(server.state.db.read_replica_in_use());

    // With replay paused the standby has no tenant yet: the tenant's first
    // call, a read, is provisioned on the primary and reads there.
    pair.pause_replay().await;
    let mut c = server.clients("tenant-r").await;
    let roles = c
        .rubric
        .list_roles(pb::ListRolesRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(roles.roles.iter().any(|r| r.id == "staff_engineer"));
    let kept = ingest(&mut c, "kept", 4.0).await;
    pair.resume_replay().await;

    // Caught up, a dry run on the replica equals one on the primary.
    let mut on_primary = primary.clients("tenant-r").await;
    let replica_dry_run = assess(&mut c, true).await;
    assert_eq!(cited(&replica_dry_run), BTreeSet::from([kept.clone()]));
    assert_eq!(
        scored(replica_dry_run),
        scored(assess(&mut on_primary, true).await)
    );

    // Replay paused again: a write goes to the primary and is read there
    // at once within its call (the stored assessment cites it) and by a
    // server without replica, while this server's reads come from the
    // standby, which has not replayed it.
    pair.pause_replay().await;
    let new = ingest(&mut c, "new", 2.0).await;
    let stored = assess(&mut c, false).await;
    assert_eq!(cited(&stored), BTreeSet::from([kept.clone(), new.clone()]));
    assert_eq!(evidence_count(&mut on_primary).await, 2);
    assert_eq!(
        cited(&assess(&mut c, true).await),
        BTreeSet::from([kept.clone()])
    );
    assert_eq!(evidence_count(&mut c).await, 1);
    let missing = c
        .assessment
        .get_evidence(pb::GetEvidenceRequest {
            evidence_id: new.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let missing = c
        .assessment
        .get_assessment(pb::GetAssessmentRequest {
            assessment_id: stored.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let explained = c
        .oversight
        .explain_assessment(pb::ExplainAssessmentRequest {
            target: Some(Target::AssessmentId(stored.id.clone())),
        })
        .await
        .unwrap_err();
    assert_eq!(explained.code(), Code::NotFound, "{explained:?}");
    // The standby's pool is the replica's, as pg_stat_activity shows there.
    let replica_connections: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
            .bind(ladder::storage::READ_REPLICA_APPLICATION_NAME)
            .fetch_one(&mut pair.standby_connection().await)
            .await
            .unwrap();
    assert!(replica_connections >= 1);
    let monitors: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
            .bind(ladder::storage::READ_REPLICA_LAG_MONITOR_APPLICATION_NAME)
            .fetch_one(&mut pair.standby_connection().await)
            .await
            .unwrap();
    assert_eq!(monitors, 1);
    assert_eq!(sample(&server, "ladder_db_replica_in_use"), 1.0);

    // Replayed, the replica's reads see the write.
    pair.resume_replay().await;
    assert_eq!(evidence_count(&mut c).await, 2);
    let caught_up = assess(&mut c, true).await;
    assert_eq!(cited(&caught_up), BTreeSet::from([kept, new]));
    assert_eq!(scored(caught_up), scored(stored));
    let stored_id = stored_id_of(&mut c).await;
    c.assessment
        .get_assessment(pb::GetAssessmentRequest {
            assessment_id: stored_id,
        })
        .await
        .unwrap();
}

/// The id of the subject's one stored assessment, listed (on the replica).
async fn stored_id_of(c: &mut Clients) -> String {
    let listed = c
        .assessment
        .list_assessments(pb::ListAssessmentsRequest {
            subject_id: SUBJECT.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assessments;
    assert_eq!(listed.len(), 1);
    listed[0].id.clone()
}

#[tokio::test]
async fn a_replica_past_its_lag_bound_or_unreachable_is_not_used() {
    let pair = ReplicatedPair::start().await;
    let server = pair.server(Duration::from_millis(1000)).await;
    let mut c = server.clients("tenant-l").await;
    ingest(&mut c, "first", 4.0).await;
    pair.wait_for_replay().await;
    wait_for_in_use(&server, true).await;
    assert_eq!(evidence_count(&mut c).await, 1);

    // Paused with a write to replay, its lag grows past the bound: reads
    // go to the primary and see the write.
    pair.pause_replay().await;
    ingest(&mut c, "second", 2.0).await;
    wait_for_in_use(&server, false).await;
    assert!(sample(&server, "ladder_db_replica_lag_seconds") > 1.0);
    assert!(!server.state.db.read_replica_in_use());
    assert_eq!(evidence_count(&mut c).await, 2);
    assert_eq!(cited(&assess(&mut c, true).await).len(), 2);

    // Caught up, it is used again.
    pair.resume_replay().await;
    wait_for_in_use(&server, true).await;
    assert_eq!(sample(&server, "ladder_db_replica_lag_seconds"), 0.0);
    assert_eq!(evidence_count(&mut c).await, 2);

    // Gone, it is not used, and reads go on from the primary.
    pair.stop_standby();
    wait_for_in_use(&server, false).await;
    assert_eq!(sample(&server, "ladder_db_replica_lag_seconds"), -1.0);
    assert_eq!(evidence_count(&mut c).await, 2);
    assert_eq!(cited(&assess(&mut c, true).await).len(), 2);

    // A server starting while it is gone starts, and reads from the primary.
    let started = pair.server(Duration::from_millis(1000)).await;
    assert_eq!(sample(&started, "ladder_db_replica_in_use"), 0.0);
    let mut c = started.clients("tenant-l").await;
    assert_eq!(evidence_count(&mut c).await, 2);
}

/// `ladder serve` with the replica from the environment, as the chart
/// passes it: it logs when it starts using the replica and when it stops.
#[tokio::test]
async fn serve_takes_the_replica_from_the_environment_and_logs_its_changes() {
    use std::io::{BufRead, BufReader};
    let pair = ReplicatedPair::start().await;
    let mut command = crate::cli::serve_url(&pair.app_url(false));
    command
        .env("LADDER_DATABASE_READ_URL", pair.app_url(true))
        .env("LADDER_DATABASE_READ_MAX_LAG_MS", "1500");
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let events: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let seen = std::sync::Arc::clone(&events);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str(&line) {
                seen.lock().unwrap().push(event);
            }
        }
    });
    let find = |message: &str| {
        events
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["message"] == message)
            .cloned()
    };
    let wait_for = async |message: &str| {
        for _ in 0..300 {
            if let Some(event) = find(message) {
                return event;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {message:?} within 15 s: {:?}", events.lock().unwrap());
    };
    let in_use = wait_for("read replica in use: reads go to it").await;
    assert_eq!(in_use["max_lag_seconds"], 1.5);
    wait_for("ladder listening").await;
    pair.stop_standby();
    wait_for("read replica cannot be reached: reads go to the primary").await;
    let _ = child.kill();
    let _ = child.wait();
}
