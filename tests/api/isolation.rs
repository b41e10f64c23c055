//! Tenant isolation held by the database itself: row-level security on
//! every tenant table, an application role that cannot get around it, and
//! connections that carry nothing from one call to the next, cancelled
//! calls included.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ladder::proto::v1::{
    BatchCreateEvidenceRequest, CreateAssessmentRequest, DeleteEvidenceRequest, EvidenceSource,
    GetAssessmentRequest, GetEvidenceRequest, GetSubjectRequest, ListEvidenceRequest, Subject,
    UpdateSubjectRequest,
};
use sqlx::{Connection, Row};
use tonic::Code;

use crate::harness::{TestServer, evidence};

fn observed() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 9, 30, 0).unwrap()
}

fn one(subject: &str, external_id: &str) -> BatchCreateEvidenceRequest {
    BatchCreateEvidenceRequest {
        evidence: vec![evidence(
            subject,
            "system_design",
            4.0,
            EvidenceSource::Manager,
            observed(),
            external_id,
        )],
    }
}

fn assess(subject: &str) -> CreateAssessmentRequest {
    CreateAssessmentRequest {
        subject_id: subject.into(),
        role_id: "staff_engineer".into(),
        ..Default::default()
    }
}

/// Every table's rows, all tenants together, as the owner sees them.
async fn snapshot(server: &TestServer) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for table in ["evidence", "assessments", "subjects"] {
        counts.push((table.to_string(), server.count(table).await));
    }
    counts
}

#[tokio::test]
async fn another_tenants_ids_are_not_found_and_nothing_of_theirs_changes() {
    let server = TestServer::start().await;
    let mut a = server.clients("tenant-a").await;
    let mut b = server.clients("tenant-b").await;
    let stored = a
        .assessment
        .batch_create_evidence(one("emp-1", "x1"))
        .await
        .unwrap()
        .into_inner()
        .evidence
        .remove(0);
    a.record_subject("emp-1", "senior_engineer").await;
    let assessment = a
        .assessment
        .create_assessment(assess("emp-1"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    let before = snapshot(&server).await;

    let codes = [
        b.assessment
            .get_evidence(GetEvidenceRequest {
                evidence_id: stored.id.clone(),
            })
            .await
            .map(|_| ()),
        b.assessment
            .delete_evidence(DeleteEvidenceRequest {
                evidence_id: stored.id.clone(),
            })
            .await
            .map(|_| ()),
        b.assessment
            .get_assessment(GetAssessmentRequest {
                assessment_id: assessment.id.clone(),
            })
            .await
            .map(|_| ()),
        b.assessment
            .get_subject(GetSubjectRequest {
                subject_id: "emp-1".into(),
            })
            .await
            .map(|_| ()),
        b.assessment
            .update_subject(UpdateSubjectRequest {
                subject: Some(Subject {
                    id: "emp-1".into(),
                    current_role_id: "staff_engineer".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    ];
    for (i, result) in codes.into_iter().enumerate() {
        assert_eq!(result.unwrap_err().code(), Code::NotFound, "call {i}");
    }
    assert_eq!(snapshot(&server).await, before);
    let subject = a
        .assessment
        .get_subject(GetSubjectRequest {
            subject_id: "emp-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert_eq!(subject.current_role_id, "senior_engineer");
    a.assessment
        .get_evidence(GetEvidenceRequest {
            evidence_id: stored.id,
        })
        .await
        .expect("tenant-a's evidence is still there");
}

#[tokio::test]
async fn the_catalog_forces_row_security_on_every_tenant_table_and_the_app_role_cannot_bypass_it() {
    let server = TestServer::start().await;
    let tables: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity \
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid \
         WHERE c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace \
           AND a.attname = 'tenant_id' AND NOT a.attisdropped ORDER BY 1",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert!(tables.len() >= 12, "{tables:?}");
    for (table, enabled, forced) in &tables {
        assert!(
            *enabled && *forced,
            "{table}: row-level security enabled and forced"
        );
        let policies: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_policies WHERE tablename = $1 \
             AND qual LIKE '%ladder.tenant_id%' AND with_check LIKE '%ladder.tenant_id%'",
        )
        .bind(table)
        .fetch_one(&server.pool)
        .await
        .unwrap();
        assert_eq!(policies, 1, "{table}: one policy keyed by ladder.tenant_id");
    }
    let (superuser, bypass, owned, audit_update, audit_delete): (bool, bool, i64, bool, bool) =
        sqlx::query_as(
            "SELECT r.rolsuper, r.rolbypassrls, \
             (SELECT count(*) FROM pg_class WHERE relowner = r.oid), \
             has_table_privilege(r.rolname, 'audit_log', 'UPDATE'), \
             has_table_privilege(r.rolname, 'audit_log', 'DELETE') \
             FROM pg_roles r WHERE r.rolname = 'ladder_app'",
        )
        .fetch_one(&server.pool)
        .await
        .unwrap();
    assert!(!superuser, "ladder_app is no superuser");
    assert!(!bypass, "ladder_app has no BYPASSRLS");
    assert_eq!(owned, 0, "ladder_app owns nothing");
    assert!(
        !audit_update && !audit_delete,
        "ladder_app cannot change the audit log"
    );
    let sessions: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT usename::text FROM pg_stat_activity \
         WHERE datname = current_database() AND usename <> current_user",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert!(
        sessions.iter().all(|u| u == "ladder_app"),
        "the server connects as ladder_app only: {sessions:?}"
    );
    assert!(!sessions.is_empty());
}

#[tokio::test]
async fn the_app_role_without_a_tenant_sees_and_writes_nothing() {
    let server = TestServer::start().await;
    let mut a = server.clients("tenant-a").await;
    a.assessment
        .batch_create_evidence(one("emp-1", "x1"))
        .await
        .unwrap();
    assert!(server.count("evidence").await > 0);
    let mut app = server.app_connection().await;
    for table in [
        "evidence",
        "competencies",
        "roles",
        "tenants",
        "scoring_policies",
    ] {
        let seen: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut app)
            .await
            .unwrap();
        assert_eq!(seen, 0, "{table} without a tenant");
    }
    let refused =
        sqlx::query("INSERT INTO subjects (tenant_id, id) VALUES ('tenant-a', 'sneaked-in')")
            .execute(&mut app)
            .await
            .unwrap_err();
    assert!(
        refused.to_string().contains("row-level security"),
        "{refused}"
    );
    // With a tenant, that tenant's rows only.
    sqlx::query("SELECT set_config('ladder.tenant_id', 'tenant-b', false)")
        .execute(&mut app)
        .await
        .unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM evidence")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(seen, 0, "tenant-b sees none of tenant-a's evidence");
    sqlx::query("SELECT set_config('ladder.tenant_id', 'tenant-a', false)")
        .execute(&mut app)
        .await
        .unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM evidence")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(seen, 1);
    app.close().await.unwrap();
}

/// Sets a deadline on a request.
fn within<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    request
}

/// A pool of one connection, hundreds of tenant-a calls cancelled at every
/// point of their work by deadlines of 0.1 to 3 ms (one in ten may finish) (while the connection is
/// taken, the transaction opened, the tenant set, a statement runs),
/// interleaved with tenant-b's reads and assessments on that same
/// connection: tenant-b never sees a row of tenant-a's, every write
/// tenant-a was told succeeded is stored, and no backend is left idle in a
/// transaction.
#[tokio::test]
async fn cancelled_calls_leave_no_transaction_and_no_tenant_on_the_connection() {
    const CALLS: u64 = 300;
    let server = TestServer::start_with_connections(1).await;
    let mut a = server.clients("tenant-a").await;
    let mut b = server.clients("tenant-b").await;
    // Provision both tenants first, so that cancellations hit the calls.
    a.assessment
        .batch_create_evidence(one("emp-a", "seed"))
        .await
        .unwrap();
    b.assessment
        .list_evidence(ListEvidenceRequest {
            subject_id: "emp-a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // tenant-b's own emp-a, with no evidence: its assessments must stay empty.
    b.record_subject("emp-a", "senior_engineer").await;

    let tenant_a = tokio::spawn(async move {
        let mut evidence_ids = BTreeSet::new();
        let mut assessment_ids = BTreeSet::new();
        for i in 0..CALLS {
            // Every tenth call has time to finish, so that some writes are
            // acknowledged; the rest are cut short somewhere.
            let deadline = if i % 10 == 9 {
                Duration::from_secs(5)
            } else {
                Duration::from_micros(100 + (i * 37 % 30) * 100)
            };
            match i % 3 {
                0 => {
                    if let Ok(r) = a
                        .assessment
                        .batch_create_evidence(within(one("emp-a", &format!("a-{i}")), deadline))
                        .await
                    {
                        evidence_ids.extend(r.into_inner().evidence.into_iter().map(|e| e.id));
                    }
                }
                1 => {
                    let mut request = assess("emp-a");
                    request.request_id = format!("req-{i}");
                    if let Ok(r) = a
                        .assessment
                        .create_assessment(within(request, deadline))
                        .await
                    {
                        assessment_ids.insert(r.into_inner().assessment.unwrap().id);
                    }
                }
                _ => {
                    if let Ok(r) = a
                        .assessment
                        .create_assessment(within(assess("emp-a"), deadline))
                        .await
                    {
                        assessment_ids.insert(r.into_inner().assessment.unwrap().id);
                    }
                }
            }
        }
        (a, evidence_ids, assessment_ids)
    });
    for i in 0..CALLS / 3 {
        let listed = b
            .assessment
            .list_evidence(ListEvidenceRequest {
                subject_id: "emp-a".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            listed.evidence.is_empty(),
            "call {i}: tenant-b saw {listed:?}"
        );
        let scored = b
            .assessment
            .create_assessment(assess("emp-a"))
            .await
            .unwrap()
            .into_inner()
            .assessment
            .unwrap();
        assert!(
            scored
                .competencies
                .iter()
                .all(|c| c.contributions.is_empty()),
            "call {i}: tenant-b's assessment used tenant-a's evidence"
        );
    }
    let (mut a, evidence_ids, assessment_ids) = tenant_a.await.unwrap();

    // One more call each, through the one connection: by then whatever the
    // cancelled calls left has been cleared or closed.
    a.assessment
        .create_assessment(assess("emp-a"))
        .await
        .unwrap();
    b.assessment
        .create_assessment(assess("emp-a"))
        .await
        .unwrap();
    for id in &evidence_ids {
        let stored: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM evidence WHERE tenant_id = 'tenant-a' AND id = $1::uuid",
        )
        .bind(id)
        .fetch_one(&server.pool)
        .await
        .unwrap();
        assert_eq!(stored, 1, "acknowledged evidence {id}");
    }
    for id in &assessment_ids {
        let stored: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM assessments WHERE tenant_id = 'tenant-a' AND id = $1::uuid",
        )
        .bind(id)
        .fetch_one(&server.pool)
        .await
        .unwrap();
        assert_eq!(stored, 1, "acknowledged assessment {id}");
    }
    assert!(!evidence_ids.is_empty() && !assessment_ids.is_empty());
    let idle_in_transaction: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(idle_in_transaction, 0);
    let b_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM evidence WHERE tenant_id = 'tenant-b'")
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(b_rows, 0);
    eprintln!(
        "{} of {CALLS} tenant-a calls acknowledged ({} evidence, {} assessments)",
        evidence_ids.len() + assessment_ids.len(),
        evidence_ids.len(),
        assessment_ids.len()
    );
}

/// Whether the connection is outside any transaction (as a simple query,
/// whose implicit transaction starts at the statement's timestamp), the
/// tenant its session carries (`None` or empty: none), and its
/// `statement_timeout` and `lock_timeout` as their defaults or not.
const CONNECTION_STATE: &str = "SELECT transaction_timestamp() = statement_timestamp(), \
     current_setting('ladder.tenant_id', true), \
     (SELECT setting = reset_val FROM pg_settings WHERE name = 'statement_timeout'), \
     (SELECT setting = reset_val FROM pg_settings WHERE name = 'lock_timeout')";

/// What [`CONNECTION_STATE`] finds on a connection, as the next user of its
/// session (another call, or another client behind a transaction pooler)
/// would find it.
#[derive(Debug, PartialEq)]
struct SessionState {
    outside_transaction: bool,
    tenant: Option<String>,
    default_statement_timeout: bool,
    default_lock_timeout: bool,
}

impl SessionState {
    /// Outside any transaction, no tenant, default timeouts.
    fn clean() -> Self {
        Self {
            outside_transaction: true,
            tenant: None,
            default_statement_timeout: true,
            default_lock_timeout: true,
        }
    }
}

async fn session_state(conn: &mut sqlx::PgConnection) -> SessionState {
    let row = sqlx::raw_sql(CONNECTION_STATE)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let tenant: Option<String> = row.get(1);
    SessionState {
        outside_transaction: row.get(0),
        tenant: tenant.filter(|t| !t.is_empty()),
        default_statement_timeout: row.get(2),
        default_lock_timeout: row.get(3),
    }
}

/// The storage layer on its own, cancelled at every point of opening a
/// transaction or a tenant connection and of the tenant connection's
/// statements (timeouts swept in 2 µs steps): the pool's one connection
/// never comes back inside a transaction, nor carrying a tenant or a
/// timeout of the cancelled call.
#[tokio::test]
async fn cancelling_begin_or_checkout_at_any_point_never_pools_a_transaction_or_a_tenant() {
    use ladder::storage::{TenantId, scoring_inputs};
    let server = TestServer::start().await;
    let db = server.app_db(1).await;
    let (a, b) = (TenantId("tenant-a".into()), TenantId("tenant-b".into()));
    for step in 0..300u64 {
        let cut = Duration::from_micros(step * 2);
        match step % 3 {
            0 => {
                let _ = tokio::time::timeout(cut, db.begin(&a)).await;
            }
            1 => {
                let _ = tokio::time::timeout(cut, async {
                    let mut conn = db.connection(&a, Duration::from_millis(50)).await?;
                    conn.begin().await?.commit().await?;
                    Ok::<_, ladder::storage::StorageError>(())
                })
                .await;
            }
            _ => {
                let _ = tokio::time::timeout(cut, async {
                    let mut conn = db.connection(&a, Duration::from_millis(50)).await?;
                    scoring_inputs::read(&mut conn, &a, "emp-a", Utc::now()).await?;
                    db.finished(conn);
                    Ok::<_, ladder::storage::StorageError>(())
                })
                .await;
            }
        }
        let mut conn = db.connection(&b, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            session_state(conn.raw()).await,
            SessionState::clean(),
            "step {step}"
        );
    }
    // A tenant connection used to the end goes back to the pool (and is
    // not closed): the next call gets the same backend.
    let mut pids = Vec::new();
    for _ in 0..2 {
        let mut conn = db.connection(&b, Duration::from_secs(5)).await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn.raw())
            .await
            .unwrap();
        pids.push(pid);
    }
    assert_eq!(pids[0], pids[1]);
    db.close().await;
}

/// A tenant connection whose call finished is kept for the next scoring
/// call of any tenant: the same backend, carrying nothing of the last call.
/// It never holds the pool: with a pool of one connection, a transaction
/// still gets it, so does a call already waiting when another finishes with
/// it, and closing the pool does not wait for it.
#[tokio::test]
async fn kept_tenant_connections_serve_the_next_call_without_starving_the_pool() {
    use ladder::storage::TenantId;
    let server = TestServer::start().await;
    let db = server.app_db(1).await;
    let (a, b) = (TenantId("tenant-a".into()), TenantId("tenant-b".into()));
    let budget = Duration::from_secs(5);
    let mut pids = Vec::new();
    for tenant in [&a, &b] {
        let mut conn = db.connection(tenant, budget).await.unwrap();
        assert_eq!(conn.tenant(), tenant);
        assert_eq!(session_state(conn.raw()).await, SessionState::clean());
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn.raw())
            .await
            .unwrap();
        pids.push(pid);
        db.finished(conn);
    }
    assert_eq!(pids[0], pids[1], "the second call got the kept connection");

    // The pool's only connection is kept: a transaction gets it anyway.
    let mut tx = tokio::time::timeout(Duration::from_secs(3), db.begin(&a))
        .await
        .expect("a transaction does not wait for a kept connection")
        .unwrap();
    let setting: String = sqlx::query_scalar("SELECT current_setting('ladder.tenant_id')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(setting, "tenant-a");
    tx.commit().await.unwrap();

    // A call waiting for the pool gets the connection another call
    // finishes with, rather than the connection being kept from it.
    let conn = db.connection(&a, budget).await.unwrap();
    let waiting = tokio::spawn({
        let (db, b) = (db.clone(), b.clone());
        async move {
            db.connection(&b, budget)
                .await
                .map(|conn| db.finished(conn))
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    db.finished(conn);
    tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("the waiting call gets the finished connection")
        .unwrap()
        .unwrap();

    tokio::time::timeout(Duration::from_secs(3), db.close())
        .await
        .expect("closing the pool does not wait for a kept connection");
}

/// What a tenant connection's statements set lasts as long as their
/// transaction: the scoring read sets the tenant (and its lock timeout) for
/// itself, a transaction on the connection sets the tenant and the call's
/// remaining time for itself, and after either the session carries neither,
/// whether the connection is kept for the next call or given back to the
/// pool, with a long deadline or a tiny one.
#[tokio::test]
async fn a_tenant_connection_s_settings_last_only_their_transaction() {
    use ladder::storage::{TenantId, scoring_inputs};
    let server = TestServer::start().await;
    let mut clients = server.clients("tenant-a").await;
    clients
        .assessment
        .batch_create_evidence(one("emp-a", "seed"))
        .await
        .unwrap();
    let db = server.app_db(1).await;
    let a = TenantId("tenant-a".into());
    for budget in [Duration::from_secs(5), Duration::from_millis(200)] {
        let mut conn = db.connection(&a, budget).await.unwrap();
        let inputs = scoring_inputs::read(&mut conn, &a, "emp-a", Utc::now())
            .await
            .unwrap();
        assert_eq!(
            inputs.observations.len(),
            1,
            "the read saw its tenant's row"
        );
        assert_eq!(session_state(conn.raw()).await, SessionState::clean());

        let mut tx = conn.begin().await.unwrap();
        let row = sqlx::query(
            "SELECT current_setting('ladder.tenant_id'), \
                    setting::int8 FROM pg_settings WHERE name = 'statement_timeout'",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let (tenant, timeout): (String, i64) = (row.get(0), row.get(1));
        assert_eq!(tenant, "tenant-a");
        assert!(
            timeout > 0 && timeout <= budget.as_millis() as i64,
            "{timeout} ms for {budget:?}"
        );
        tx.commit().await.unwrap();
        assert_eq!(session_state(conn.raw()).await, SessionState::clean());
        db.finished(conn); // kept

        let mut conn = db.connection(&a, budget).await.unwrap();
        assert_eq!(session_state(conn.raw()).await, SessionState::clean());
        drop(conn); // as a failed call does: checked, then pooled
        let mut tx = db.begin(&a).await.unwrap();
        sqlx::raw_sql("COMMIT").execute(&mut *tx).await.unwrap();
        assert_eq!(session_state(&mut tx).await, SessionState::clean());
        sqlx::raw_sql("BEGIN").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    db.close().await;
}

/// A server on one connection serves tenant-a's dry runs, stored
/// assessments and explanations with deadlines from 5 s down to a few
/// milliseconds; between calls its one backend carries no tenant and no
/// timeout of any of them, as the next client of a transaction pooler would
/// find it. (Before, a kept connection's session carried the last call's
/// tenant and `statement_timeout` from one call to the next.)
#[tokio::test]
async fn no_call_leaves_a_tenant_or_a_timeout_on_the_server_s_connections() {
    use ladder::proto::v1::ExplainAssessmentRequest;
    use ladder::proto::v1::explain_assessment_request::Target;
    use ladder::proto::v1::oversight_service_client::OversightServiceClient;
    use ladder::storage::TenantId;
    let server = TestServer::start_with_connections(1).await;
    let mut a = server.clients("tenant-a").await;
    let mut oversight = OversightServiceClient::with_interceptor(
        server.channel().await,
        crate::harness::Bearer(Some(
            format!("Bearer {}", crate::harness::token("tenant-a"))
                .parse()
                .unwrap(),
        )),
    );
    a.assessment
        .batch_create_evidence(one("emp-a", "seed"))
        .await
        .unwrap();
    let db = &server.state.db;
    let mut backends = BTreeSet::new();
    for (i, deadline) in [5_000u64, 2_000, 300, 20, 5, 1_500, 2]
        .into_iter()
        .map(Duration::from_millis)
        .enumerate()
    {
        let mut dry_run = assess("emp-a");
        dry_run.validate_only = true;
        let _ = a
            .assessment
            .create_assessment(within(dry_run, deadline))
            .await;
        let stored = a
            .assessment
            .create_assessment(within(assess("emp-a"), deadline))
            .await;
        let mut request = assess("emp-a");
        request.request_id = format!("req-{i}");
        let _ = a
            .assessment
            .create_assessment(within(request, deadline))
            .await;
        if let Ok(stored) = stored {
            let id = stored.into_inner().assessment.unwrap().id;
            let _ = oversight
                .explain_assessment(within(
                    ExplainAssessmentRequest {
                        target: Some(Target::AssessmentId(id)),
                    },
                    deadline,
                ))
                .await;
        }
        // The server's own connection, as the next call (of another
        // tenant) takes it, before it runs anything.
        let mut conn = tokio::time::timeout(
            Duration::from_secs(5),
            db.connection(&TenantId("tenant-b".into()), Duration::from_secs(5)),
        )
        .await
        .expect("the server's one connection came back")
        .unwrap();
        assert_eq!(
            session_state(conn.raw()).await,
            SessionState::clean(),
            "after tenant-a's calls with {deadline:?}"
        );
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn.raw())
            .await
            .unwrap();
        backends.insert(pid);
        db.finished(conn);
    }
    assert!(!backends.is_empty());
}
