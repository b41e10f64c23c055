//! End-to-end service benchmark: the real server over a loopback socket against
//! PostgreSQL doing the same work directly, measured in the same run.
//!
//! 1. ingest: `BatchCreateEvidence` (batches of 1,000, several client streams)
//!    against `COPY ... FROM STDIN` of the same rows into the same table;
//! 2. assessments per second (subjects with 50 evidence items) against the bare
//!    query that fetches those 50 rows, at the same concurrency;
//! 3. one `Recommend` over the whole built-in framework against one assessment
//!    of the same subject.
//!
//! It prints figures and asserts nothing about time. Settings (env vars):
//! `LADDER_BENCH_ROWS` (default 1,000,000), `LADDER_BENCH_STREAMS` (ingest
//! client streams, default 4), `LADDER_BENCH_CONCURRENCY` (callers for the
//! assessment comparison, default 4), `LADDER_BENCH_SECS` (seconds per rate
//! measurement, default 5), `DATABASE_URL` (use that server instead of a
//! throwaway embedded cluster).
//!
//! Run: `cargo bench --bench service`

use std::sync::LazyLock;

use ladder::domain::framework::Document;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use ladder::proto::v1 as pb;
use ladder::proto::v1::assessment_service_client::AssessmentServiceClient;
use ladder::proto::v1::recommendation_service_client::RecommendationServiceClient;
use ladder::storage::Db;
use ladder::transport::AppState;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The cluster start, keys, tokens and server start the API tests use too.
#[path = "../tests/shared/mod.rs"]
#[allow(dead_code)] // the tests' helpers the benchmark has no use for
mod shared;

const BATCH: usize = 1_000;
/// Evidence items per subject: the assessment comparison's subject size.
const PER_SUBJECT: usize = 50;
/// The tenant the server ingests into, and the one COPY loads directly.
const GRPC_TENANT: &str = "bench-grpc";
const COPY_TENANT: &str = "bench-copy";
/// The role assessed, and the current role recommendations start from.
const ROLE: &str = "staff_engineer";
const CURRENT_ROLE: &str = "senior_engineer";
/// The competencies of the built-in framework, cycled through per subject so
/// that every rubric sees evidence.
static COMPETENCIES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| Document::builtin().competency_ids());
const SOURCES: [(pb::EvidenceSource, &str); 6] = [
    (pb::EvidenceSource::Self_, "self"),
    (pb::EvidenceSource::Peer, "peer"),
    (pb::EvidenceSource::Manager, "manager"),
    (pb::EvidenceSource::DirectReport, "direct_report"),
    (pb::EvidenceSource::Artifact, "artifact"),
    (pb::EvidenceSource::Calibration, "calibration"),
];
/// The bare query that fetches a subject's evidence: the rows that
/// `storage::scoring_inputs` reads (as arrays, with the policy beside them).
const OBSERVATIONS: &str = "SELECT id, competency_id, level, source, confidence, observed_at FROM evidence \
     WHERE tenant_id = $1 AND subject_id = $2 AND observed_at <= $3";
const COPY_COLUMNS: &str = "tenant_id, id, subject_id, competency_id, level, source, rater_id, \
     observed_at, confidence, summary, link, source_system, external_id";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

struct Settings {
    rows: usize,
    streams: usize,
    concurrency: usize,
    duration: Duration,
}

impl Settings {
    fn from_env() -> Self {
        // Whole subjects only, so that every subject has exactly PER_SUBJECT items.
        let rows = env_usize("LADDER_BENCH_ROWS", 1_000_000).max(BATCH) / PER_SUBJECT * PER_SUBJECT;
        Self {
            rows,
            streams: env_usize("LADDER_BENCH_STREAMS", 4).max(1),
            concurrency: env_usize("LADDER_BENCH_CONCURRENCY", 4).max(1),
            duration: Duration::from_secs(env_usize("LADDER_BENCH_SECS", 5).max(1) as u64),
        }
    }

    fn subjects(&self) -> usize {
        self.rows / PER_SUBJECT
    }
}

// ---------------------------------------------------------------- the data

/// One generated evidence row; deterministic in its index.
struct Row {
    subject: String,
    competency: &'static str,
    level: f64,
    source: usize,
    rater: String,
    observed_at: DateTime<Utc>,
    confidence: f64,
    external_id: String,
}

fn subject(index: usize) -> String {
    format!("subject-{index:07}")
}

fn row(i: usize) -> Row {
    let base = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
    Row {
        subject: subject(i / PER_SUBJECT),
        competency: COMPETENCIES[i % COMPETENCIES.len()],
        level: 1.0 + ((i * 7) % 41) as f64 / 10.0,
        source: (i / COMPETENCIES.len()) % SOURCES.len(),
        rater: format!("rater-{}", i % 97),
        // Spread over three years, so decay weights differ.
        observed_at: base - chrono::Duration::minutes(((i * 7919) % (3 * 365 * 24 * 60)) as i64),
        confidence: 0.5 + (i % 6) as f64 / 10.0,
        external_id: format!("ev-{i:08}"),
    }
}

fn to_proto(r: &Row) -> pb::Evidence {
    pb::Evidence {
        subject_id: r.subject.clone(),
        competency_id: r.competency.into(),
        level: r.level,
        source: SOURCES[r.source].0 as i32,
        rater_id: r.rater.clone(),
        observed_at: Some(shared::timestamp(r.observed_at)),
        confidence: r.confidence,
        summary: "benchmark evidence".into(),
        source_system: "hris".into(),
        external_id: r.external_id.clone(),
        ..Default::default()
    }
}

/// The row as a line of COPY's text format (no value needs escaping).
fn copy_line(r: &Row, out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "{COPY_TENANT}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\tbenchmark evidence\t\thris\t{}",
        uuid::Uuid::now_v7(),
        r.subject,
        r.competency,
        r.level,
        SOURCES[r.source].1,
        r.rater,
        r.observed_at.to_rfc3339(),
        r.confidence,
        r.external_id,
    );
}

// ---------------------------------------------------------------- the setup

/// The PostgreSQL server behind the benchmark and whatever must be removed.
struct Cluster {
    server: PgConnectOptions,
    app_password: String,
    database: String,
    embedded: Option<shared::Throwaway>,
}

fn start_cluster() -> Cluster {
    let (pg, embedded) = shared::postgres_server("ladder-bench-");
    Cluster {
        server: pg.owner,
        app_password: pg.app_password,
        database: format!("ladder_bench_{}", std::process::id()),
        embedded,
    }
}

impl Cluster {
    fn options(&self) -> PgConnectOptions {
        self.server.clone().database(&self.database)
    }

    /// Drops the benchmark database, then stops and removes an embedded cluster.
    async fn remove(self) {
        if let Ok(mut conn) = PgConnection::connect_with(&self.server.database("postgres")).await {
            let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database);
            if let Err(e) = sqlx::query(&drop).execute(&mut conn).await {
                eprintln!("dropping {}: {e}", self.database);
            }
        }
        if let Some(embedded) = self.embedded {
            tokio::task::spawn_blocking(move || embedded.remove())
                .await
                .expect("stop task");
        }
    }
}

/// `Bearer <JWT>` for `tenant`, signed with the key the server trusts.
fn bearer(tenant: &str) -> MetadataValue<Ascii> {
    let token = shared::token(&format!("bench@{tenant}"), tenant, 24 * 3600);
    format!("Bearer {token}").parse().unwrap()
}

fn authed<T>(message: T, auth: &MetadataValue<Ascii>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", auth.clone());
    request
}

/// A client on its own HTTP/2 connection, as each worker of an HRIS would have.
#[derive(Clone)]
struct Client {
    health: HealthClient<Channel>,
    assessment: AssessmentServiceClient<Channel>,
    recommendation: RecommendationServiceClient<Channel>,
    auth: MetadataValue<Ascii>,
}

async fn client(addr: SocketAddr, tenant: &str) -> Client {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connecting to the server");
    Client {
        health: HealthClient::new(channel.clone()),
        assessment: AssessmentServiceClient::new(channel.clone()),
        recommendation: RecommendationServiceClient::new(channel),
        auth: bearer(tenant),
    }
}

/// A tenant's first authenticated call loads the built-in framework into it.
async fn prepare_tenant(addr: SocketAddr, tenant: &str) {
    let mut c = client(addr, tenant).await;
    c.assessment
        .get_scoring_policy(authed(pb::GetScoringPolicyRequest {}, &c.auth))
        .await
        .expect("first call of the tenant");
}

// ---------------------------------------------------------------- measuring

/// Runs `op(i)` for i = 0, 1, ... from `concurrency` tasks until `duration`
/// has passed (after a short warm-up) and returns operations per second.
async fn rate<F, Fut>(concurrency: usize, duration: Duration, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    run_for(concurrency, duration / 5, op.clone()).await;
    let start = Instant::now();
    let done = run_for(concurrency, duration, op).await;
    done as f64 / start.elapsed().as_secs_f64()
}

async fn run_for<F, Fut>(concurrency: usize, duration: Duration, op: Arc<F>) -> usize
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, op) = (next.clone(), op.clone());
            tokio::spawn(async move {
                let mut done = 0;
                while Instant::now() < deadline {
                    op(next.fetch_add(1, Ordering::Relaxed)).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("benchmark task");
    }
    total
}

fn print_rate(what: &str, per_second: f64) {
    println!("  {what:<58} {per_second:>12.0} /s");
}

// ---------------------------------------------------------------- 1. ingest

/// PostgreSQL's own bulk path: one COPY of every row into the same table,
/// under a tenant of its own. Returns rows per second.
async fn copy_rate(options: &PgConnectOptions, rows: usize) -> f64 {
    // Built before timing, as the gRPC batches are.
    let mut text = String::with_capacity(rows * 160);
    for i in 0..rows {
        copy_line(&row(i), &mut text);
    }
    let mut conn = PgConnection::connect_with(options).await.unwrap();
    let start = Instant::now();
    let mut copy = conn
        .copy_in_raw(&format!("COPY evidence ({COPY_COLUMNS}) FROM STDIN"))
        .await
        .expect("COPY");
    for chunk in text.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await.expect("COPY data");
    }
    let copied = copy.finish().await.expect("COPY end");
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(copied as usize, rows, "COPY loaded every row");
    conn.close().await.ok();
    rows as f64 / elapsed
}

/// The service's path: every row through `BatchCreateEvidence` in batches of
/// 1,000, the batches dealt round-robin to `streams` concurrent clients.
async fn grpc_ingest_rate(addr: SocketAddr, rows: usize, streams: usize) -> f64 {
    let mut per_stream: Vec<Vec<pb::BatchCreateEvidenceRequest>> = vec![Vec::new(); streams];
    for (b, start) in (0..rows).step_by(BATCH).enumerate() {
        let evidence = (start..(start + BATCH).min(rows))
            .map(|i| to_proto(&row(i)))
            .collect();
        per_stream[b % streams].push(pb::BatchCreateEvidenceRequest { evidence });
    }
    let mut clients = Vec::with_capacity(streams);
    for _ in 0..streams {
        clients.push(client(addr, GRPC_TENANT).await);
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(per_stream)
        .map(|(mut c, batches)| {
            tokio::spawn(async move {
                let mut created = 0;
                for batch in batches {
                    let response = c
                        .assessment
                        .batch_create_evidence(authed(batch, &c.auth))
                        .await
                        .expect("BatchCreateEvidence");
                    created += response.into_inner().created_count as usize;
                }
                created
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        created += t.await.expect("ingest stream");
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(created, rows, "the server created every row");
    rows as f64 / elapsed
}

async fn bench_ingest(settings: &Settings, options: &PgConnectOptions, addr: SocketAddr) {
    println!(
        "\n1. ingest of {} evidence rows (batches of {BATCH}, {} gRPC client streams)",
        settings.rows, settings.streams
    );
    // COPY first: it then loads into the smaller table, which only flatters the baseline.
    let copy = copy_rate(options, settings.rows).await;
    print_rate("COPY evidence FROM STDIN (one connection)", copy);
    let grpc = grpc_ingest_rate(addr, settings.rows, settings.streams).await;
    print_rate("BatchCreateEvidence over gRPC", grpc);
    println!("  ratio gRPC / COPY: {:.2} (target >= 0.5)", grpc / copy);
}

// ------------------------------------------------- 2. assessments per second

fn assess_request(
    index: usize,
    subjects: usize,
    validate_only: bool,
) -> pb::CreateAssessmentRequest {
    pb::CreateAssessmentRequest {
        subject_id: subject(index % subjects),
        role_id: ROLE.into(),
        validate_only,
        ..Default::default()
    }
}

/// Calls per second of `call` from `concurrency` clients, each on its own
/// connection; `call` gets the call's index and a client to make it with.
async fn grpc_rate<F, Fut>(addr: SocketAddr, settings: &Settings, call: F) -> f64
where
    F: Fn(usize, Client) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut clients = Vec::with_capacity(settings.concurrency);
    for _ in 0..settings.concurrency {
        clients.push(client(addr, GRPC_TENANT).await);
    }
    let next_client = AtomicUsize::new(0);
    rate(settings.concurrency, settings.duration, move |i| {
        let n = next_client.fetch_add(1, Ordering::Relaxed) % clients.len();
        call(i, clients[n].clone())
    })
    .await
}

/// CreateAssessment calls per second, cycling through the subjects.
async fn assess_rate(addr: SocketAddr, settings: &Settings, validate_only: bool) -> f64 {
    let subjects = settings.subjects();
    grpc_rate(addr, settings, move |i, mut c| async move {
        let request = assess_request(i, subjects, validate_only);
        let a = c
            .assessment
            .create_assessment(authed(request, &c.auth))
            .await
            .expect("CreateAssessment")
            .into_inner();
        assert!(a.assessment.is_some());
    })
    .await
}

/// The cheapest call the server answers (the health check: no token, no
/// database), for the cost of a gRPC exchange alone.
async fn ping_rate(addr: SocketAddr, settings: &Settings) -> f64 {
    grpc_rate(addr, settings, |_, mut c| async move {
        c.health
            .check(HealthCheckRequest::default())
            .await
            .expect("health check");
    })
    .await
}

/// The bare query that fetches a subject's evidence, on a pool as large as
/// the number of callers.
async fn fetch_rate(pool: PgPool, settings: &Settings) -> f64 {
    let subjects = settings.subjects();
    rate(settings.concurrency, settings.duration, move |i| {
        let pool = pool.clone();
        async move {
            let rows: Vec<(uuid::Uuid, String, f64, String, f64, DateTime<Utc>)> =
                sqlx::query_as(OBSERVATIONS)
                    .bind(GRPC_TENANT)
                    .bind(subject(i % subjects))
                    .bind(Utc::now())
                    .fetch_all(&pool)
                    .await
                    .expect("evidence query");
            assert_eq!(rows.len(), PER_SUBJECT);
        }
    })
    .await
}

async fn bench_assessments(settings: &Settings, options: &PgConnectOptions, addr: SocketAddr) {
    println!(
        "\n2. assessments of subjects with {PER_SUBJECT} evidence items ({} concurrent callers, {} s each)",
        settings.concurrency,
        settings.duration.as_secs()
    );
    // No ping before each query: the baseline is the bare query alone.
    let pool = PgPoolOptions::new()
        .max_connections(settings.concurrency as u32)
        .test_before_acquire(false)
        .connect_with(options.clone())
        .await
        .unwrap();
    let fetch = fetch_rate(pool.clone(), settings).await;
    pool.close().await;
    print_rate("bare SQL: fetch one subject's 50 evidence rows", fetch);
    let ping = ping_rate(addr, settings).await;
    print_rate("raw gRPC ping (health check, no token, no database)", ping);
    let dry = assess_rate(addr, settings, true).await;
    print_rate("CreateAssessment, validate_only (scored, not stored)", dry);
    let stored = assess_rate(addr, settings, false).await;
    print_rate("CreateAssessment, stored", stored);
    println!(
        "  ratio validate_only / SQL: {:.2}, stored / SQL: {:.2} (target >= 0.5)",
        dry / fetch,
        stored / fetch
    );
    // On shared cores the costs of one exchange and one query add up: a
    // service doing nothing but forwarding the query over gRPC would reach
    // this rate, and this share of the bare query's.
    let ceiling = 1.0 / (1.0 / ping + 1.0 / fetch);
    println!(
        "  ceiling 1/(1/ping + 1/SQL): {ceiling:.0} /s = {:.2} of SQL; validate_only reaches {:.2} of it",
        ceiling / fetch,
        dry / ceiling
    );
}

// ------------------------------------------- 3. recommendation vs assessment

/// Mean latency of one call made by one client at a time.
async fn latency<F, Fut>(duration: Duration, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    Duration::from_secs_f64(1.0 / rate(1, duration, op).await)
}

async fn bench_recommend(settings: &Settings, addr: SocketAddr) {
    println!(
        "\n3. Recommend (all {} built-in rubrics) against one CreateAssessment (validate_only) of the same subject, one caller",
        24
    );
    let c = client(addr, GRPC_TENANT).await;
    let subjects = settings.subjects();
    let assessing = c.clone();
    let assessment = latency(settings.duration, move |i| {
        let mut c = assessing.clone();
        async move {
            c.assessment
                .create_assessment(authed(assess_request(i, subjects, true), &c.auth))
                .await
                .expect("CreateAssessment");
        }
    })
    .await;
    let recommendation = latency(settings.duration, move |i| {
        let mut c = c.clone();
        async move {
            let request = pb::RecommendRequest {
                subject_id: subject(i % subjects),
                current_role_id: CURRENT_ROLE.into(),
                ..Default::default()
            };
            let r = c
                .recommendation
                .recommend(authed(request, &c.auth))
                .await
                .expect("Recommend")
                .into_inner();
            assert!(!r.recommendations.is_empty());
        }
    })
    .await;
    println!(
        "  {:<58} {:>12.1?}",
        "CreateAssessment (validate_only), mean latency", assessment
    );
    println!(
        "  {:<58} {:>12.1?}",
        "Recommend, mean latency", recommendation
    );
    println!(
        "  ratio Recommend / CreateAssessment: {:.2} (target <= 3)",
        recommendation.as_secs_f64() / assessment.as_secs_f64()
    );
}

// ---------------------------------------------------------------- main

async fn bench(settings: Settings) {
    let cluster = start_cluster();
    ladder::storage::ensure_database(&cluster.server, &cluster.database)
        .await
        .expect("benchmark database");
    let owner = Db::connect(cluster.options(), 1).await.expect("connecting");
    owner.migrate().await.expect("migrating");
    owner.close().await;
    // The server runs as the application role, under row-level security.
    let app = shared::app_role(&cluster.server, &cluster.app_password).await;
    let db = Db::connect(app.database(&cluster.database), 16)
        .await
        .expect("connecting as the application role");
    let server = shared::serve(AppState::new(db.clone()), shared::authenticator()).await;
    prepare_tenant(server.addr, GRPC_TENANT).await;
    prepare_tenant(server.addr, COPY_TENANT).await;

    bench_ingest(&settings, &cluster.options(), server.addr).await;
    bench_assessments(&settings, &cluster.options(), server.addr).await;
    bench_recommend(&settings, server.addr).await;

    server.stop().await;
    db.close().await;
    cluster.remove().await;
}

fn main() {
    let settings = Settings::from_env();
    println!(
        "ladder service benchmark: {} rows, {} subjects, {} CPUs",
        settings.rows,
        settings.subjects(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench(settings));
}
