//! Every workload and its baseline, in the order that lets one table grow
//! from 100,000 rows to the scale size: the per-call workloads on the small
//! table, then ingest, then the fill to the scale size and the scale
//! workload, then the engine in-process and the server's memory.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use ladder::proto::v1 as pb;
use ladder::proto::v1::assessment_service_client::AssessmentServiceClient;
use ladder::proto::v1::recommendation_service_client::RecommendationServiceClient;
use ladder::proto::v1::rubric_service_client::RubricServiceClient;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::child::Server;
use crate::data::{self, COPY_EVIDENCE, PER_SUBJECT, Population};
use crate::load::{self, Measured, alternating, closed_loop};
use crate::pgbench;
use crate::report::{Row, Target};
use crate::{Database, Failure, Plan, engine, engine_inputs, shared};

/// The tenant whose subjects are assessed (and whose table grows for the scale).
pub const BENCH: &str = "bench";
/// The tenants the ingest comparison loads the same rows into.
const INGEST_COPY: &str = "ingest-copy";
const INGEST_GRPC: &str = "ingest-grpc";
/// The role assessed, and the current role recommendations start from.
const ROLE: &str = "staff_engineer";
/// Turns each workload gets when it is measured alternating with its
/// baseline (GetRole and the ping, Recommend and the dry run).
const ALTERNATING_TURNS: u32 = 6;
const CURRENT_ROLE: &str = "senior_engineer";
const BATCH: usize = 1_000;
/// Rows per COPY message while streaming.
const COPY_CHUNK_ROWS: usize = 5_000;
/// Concurrent COPY streams that fill the table to the scale size.
const FILL_STREAMS: usize = 2;
/// A prime larger than any subject count: callers visit the subjects in a
/// scattered order, not table order.
const SCATTER: u64 = 1_000_003;
const VACUUM_EVIDENCE: &str = "VACUUM (ANALYZE) evidence";
const COUNT_EVIDENCE: &str = "SELECT count(*) FROM evidence";
const SERVER_VERSION: &str = "SELECT current_setting('server_version')";

/// A caller: the generated clients on one HTTP/2 connection, and its token.
#[derive(Clone)]
struct Client {
    health: HealthClient<Channel>,
    rubric: RubricServiceClient<Channel>,
    assessment: AssessmentServiceClient<Channel>,
    recommendation: RecommendationServiceClient<Channel>,
    auth: MetadataValue<Ascii>,
}

impl Client {
    async fn connect(addr: SocketAddr, tenant: &str) -> Result<Self, Failure> {
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        let token = shared::token(&format!("bench@{tenant}"), tenant, 24 * 3600);
        Ok(Self {
            health: HealthClient::new(channel.clone()),
            rubric: RubricServiceClient::new(channel.clone()),
            assessment: AssessmentServiceClient::new(channel.clone()),
            recommendation: RecommendationServiceClient::new(channel),
            auth: format!("Bearer {token}").parse()?,
        })
    }

    fn authed<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.auth.clone());
        request
    }
}

async fn callers(addr: SocketAddr, tenant: &str, count: usize) -> Result<Vec<Client>, Failure> {
    let mut callers = Vec::with_capacity(count);
    for _ in 0..count {
        callers.push(Client::connect(addr, tenant).await?);
    }
    Ok(callers)
}

/// The `n`-th subject to visit among `subjects`, scattered over them.
fn scattered(n: u64, subjects: usize) -> String {
    data::subject_id((n.wrapping_mul(SCATTER) % subjects as u64) as usize)
}

/// Progress on stderr, with the time since the start.
struct Progress(Instant);

impl Progress {
    fn say(&self, what: &str) {
        eprintln!("[{:>6.1} s] {what}", self.0.elapsed().as_secs_f64());
    }
}

pub async fn run(
    plan: &Plan,
    database: &Database,
    server: &Server,
    scratch: &Path,
) -> Result<Vec<Row>, Failure> {
    let progress = Progress(Instant::now());
    let version: String = {
        let mut conn = PgConnection::connect_with(&database.options).await?;
        sqlx::query_scalar(SERVER_VERSION)
            .fetch_one(&mut conn)
            .await?
    };
    println!(
        "ladder-bench ({}): {} CPUs, load average {}, PostgreSQL {version}, {} callers, {} s per measurement after {} s warm-up",
        if plan.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        plan.concurrency,
        plan.measure.as_secs(),
        plan.warmup.as_secs(),
    );
    println!(
        "data: {} evidence rows ({} subjects x {PER_SUBJECT}) for the per-call workloads; ingest {} rows; scale {} rows",
        plan.small_rows,
        plan.small_rows / PER_SUBJECT,
        plan.ingest_rows,
        plan.scale_rows
    );
    let mut rows = Vec::new();
    let engine_rows = engine_rows(plan, &progress)?;

    // Idle at start: migrated, listening, nothing asked of it yet.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let idle_at_start = server.memory()?;
    progress.say(&format!(
        "server pid {} idle: RSS {:.1} MiB",
        server.pid(),
        idle_at_start.rss_mib
    ));

    for tenant in [BENCH, INGEST_COPY, INGEST_GRPC] {
        provision(server.addr, tenant).await?;
    }
    // Observation times count back from an hour ago: never in the future.
    let newest = Utc::now() - chrono::Duration::hours(1);
    let small = Population {
        tenant: BENCH,
        first: 0,
        subjects: plan.small_rows / PER_SUBJECT,
        newest,
    };
    let copied = copy_streams(&database.options, small, 1).await?;
    vacuum(&database.options).await?;
    progress.say(&format!("loaded {copied} rows by binary COPY"));

    let callers = callers(server.addr, BENCH, plan.concurrency).await?;

    // ---- unary GetRole against a raw gRPC ping, in alternating turns
    let (ping, get_role) = alternating(
        &callers,
        plan.warmup,
        plan.measure,
        ALTERNATING_TURNS,
        |mut c: Client, _| async move {
            c.health.check(HealthCheckRequest::default()).await?;
            Ok(())
        },
        |mut c: Client, _| async move {
            let request = c.authed(pb::GetRoleRequest {
                role_id: ROLE.into(),
            });
            c.rubric.get_role(request).await?;
            Ok(())
        },
    )
    .await?;
    progress.say(&format!("raw gRPC ping: {:.0}/s", ping.per_second()));
    progress.say(&format!("GetRole: {:.0}/s", get_role.per_second()));
    rows.push(Row::measured(
        "unary GetRole",
        &get_role,
        "raw gRPC ping (health check)",
        Some(ping.per_second()),
        get_role.per_second() / ping.per_second(),
        Target::AtLeast(0.7, "x"),
    ));

    // ---- assessments against the forward-only ceiling
    let pgbench_bin = pgbench::find();
    let pgbench_rate = |file: &str, sql: &str, database_url: &str, seconds| {
        pgbench::rate(
            &pgbench::Run {
                pgbench: &pgbench_bin,
                script: &scratch.join(file),
                database_url,
                tenant: BENCH,
                subjects: data::subject_range(small.subjects),
                clients: plan.concurrency,
                duration: seconds,
            },
            sql,
        )
    };
    let bare_query = |seconds| {
        pgbench_rate(
            "bare_query.sql",
            &pgbench::bare_query_script(),
            &database.url,
            seconds,
        )
    };
    bare_query(plan.warmup)?;
    let bare = bare_query(plan.measure)?;
    let ceiling = 1.0 / (1.0 / ping.per_second() + 1.0 / bare);
    progress.say(&format!(
        "bare query (pgbench -M prepared): {bare:.0}/s; ceiling 1/(1/ping + 1/bare): {ceiling:.0}/s"
    ));
    // Not a row (it has no target): what PostgreSQL alone makes of the
    // statement the service runs, and so the best an assessment could do.
    let statement = pgbench_rate(
        "scoring_statement.sql",
        &pgbench::scoring_statement(),
        &database.app_url,
        plan.measure,
    )?;
    let bound = 1.0 / (1.0 / ping.per_second() + 1.0 / statement);
    progress.say(&format!(
        "the scoring statement alone (pgbench -M prepared, as ladder_app): {statement:.0}/s; \
         with the ping 1/(1/ping + 1/statement): {bound:.0}/s, {:.2}x the ceiling",
        bound / ceiling
    ));
    stack_alone(
        plan,
        database,
        &callers,
        small.subjects,
        ceiling,
        scratch,
        &progress,
    )
    .await?;
    let ceiling_text = format!(
        "ceiling 1/(1/ping + 1/bare query), ping {:.0}/s, pgbench {bare:.0}/s",
        ping.per_second()
    );
    let dry = assessments(&callers, plan, small.subjects, true).await?;
    progress.say(&format!("dry-run assessments: {:.0}/s", dry.per_second()));
    rows.push(Row::measured(
        "assess, dry run, 50 items",
        &dry,
        ceiling_text.clone(),
        Some(ceiling),
        dry.per_second() / ceiling,
        Target::AtLeast(0.6, "x"),
    ));
    let stored = assessments(&callers, plan, small.subjects, false).await?;
    progress.say(&format!("stored assessments: {:.0}/s", stored.per_second()));
    rows.push(Row::measured(
        "assess, stored, 50 items",
        &stored,
        ceiling_text,
        Some(ceiling),
        stored.per_second() / ceiling,
        Target::AtLeast(0.4, "x"),
    ));

    // ---- recommend against one dry-run assessment, in alternating turns
    let subjects = small.subjects;
    let (dry_alongside, recommend) = alternating(
        &callers,
        plan.warmup,
        plan.measure,
        ALTERNATING_TURNS,
        move |c: Client, n| assess(c, n, subjects, true),
        move |c: Client, n| recommend(c, n, subjects),
    )
    .await?;
    progress.say(&format!(
        "Recommend: {:.0}/s (dry-run assessments in the turns between: {:.0}/s)",
        recommend.per_second(),
        dry_alongside.per_second()
    ));
    rows.push(Row::measured(
        "recommend, all built-in rubrics (p50 latency)",
        &recommend,
        "one dry-run assessment, p50 latency",
        Some(dry_alongside.per_second()),
        recommend.latency_ms(0.5) / dry_alongside.latency_ms(0.5),
        Target::AtMost(2.0, "x"),
    ));

    // ---- ingest against binary COPY of the same rows
    let ingest_copy = Population {
        tenant: INGEST_COPY,
        first: 0,
        subjects: plan.ingest_rows / PER_SUBJECT,
        newest,
    };
    let copy_rate = timed_copy(&database.options, ingest_copy).await?;
    progress.say(&format!(
        "binary COPY of {} rows: {copy_rate:.0} rows/s",
        ingest_copy.rows()
    ));
    let ingest = grpc_ingest(
        server.addr,
        Population {
            tenant: INGEST_GRPC,
            ..ingest_copy
        },
        plan.concurrency,
    )
    .await?;
    progress.say(&format!(
        "BatchCreateEvidence of {} rows: {:.0} rows/s",
        ingest.operations,
        ingest.per_second()
    ));
    rows.push(Row::measured(
        format!(
            "ingest {} rows, batches of {BATCH} (ops = rows; latency per batch)",
            ingest.operations
        ),
        &ingest,
        "binary COPY of the same rows, one stream",
        Some(copy_rate),
        ingest.per_second() / copy_rate,
        Target::AtLeast(0.8, "x"),
    ));

    // ---- scale: the same assessment with the table at the scale size
    let present: i64 = {
        let mut conn = PgConnection::connect_with(&database.options).await?;
        sqlx::query_scalar(COUNT_EVIDENCE)
            .fetch_one(&mut conn)
            .await?
    };
    let fill = Population {
        tenant: BENCH,
        first: small.subjects,
        subjects: plan.scale_rows.saturating_sub(present as usize) / PER_SUBJECT,
        newest,
    };
    let started = Instant::now();
    let filled = copy_streams(&database.options, fill, FILL_STREAMS).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    vacuum(&database.options).await?;
    let total = present as u64 + filled;
    progress.say(&format!(
        "filled to {total} rows: {filled} rows by binary COPY in {fill_secs:.1} s ({:.0} rows/s, {FILL_STREAMS} streams), vacuumed in {:.1} s",
        filled as f64 / fill_secs,
        started.elapsed().as_secs_f64() - fill_secs
    ));
    let all_subjects = small.subjects + fill.subjects;
    let scale = assessments(&callers, plan, all_subjects, true).await?;
    progress.say(&format!(
        "dry-run assessments over {all_subjects} subjects: {:.0}/s",
        scale.per_second()
    ));
    rows.push(Row::measured(
        format!("scale: assess p50, {total} rows"),
        &scale,
        format!("assess p50, {} rows", plan.small_rows),
        Some(dry.per_second()),
        scale.latency_ms(0.5) / dry.latency_ms(0.5),
        Target::AtMost(1.2, "x"),
    ));

    // ---- the server's memory
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let after = server.memory()?;
    rows.push(Row::figure(
        "server memory: idle RSS at start (MiB)",
        idle_at_start.rss_mib,
        Target::AtMost(30.0, " MiB"),
    ));
    rows.push(Row::figure(
        "server memory: idle RSS after the run (MiB)",
        after.rss_mib,
        Target::AtMost(30.0, " MiB"),
    ));
    rows.push(Row::figure(
        "server memory: peak RSS, VmHWM (MiB)",
        after.peak_mib,
        Target::AtMost(100.0, " MiB"),
    ));

    rows.extend(engine_rows);
    progress.say("done");
    Ok(rows)
}

/// The scoring engine in-process, on one core, first of all: nothing else the
/// benchmark starts (PostgreSQL's checkpoints and vacuum after the big
/// loads) runs beside it yet.
fn engine_rows(plan: &Plan, progress: &Progress) -> Result<Vec<Row>, Failure> {
    let mut rows = Vec::new();
    progress.say("scoring engine in-process");
    // Every size in id order, and the worst case at the largest (every
    // competency's evidence sorted into id order), in alternating turns.
    let largest = *engine::SIZES.last().expect("engine sizes");
    let mut cases: Vec<(usize, engine::Inputs)> = engine::SIZES
        .iter()
        .map(|&size| (size, engine_inputs::evidence as engine::Inputs))
        .collect();
    cases.push((largest, engine_inputs::evidence_in_random_order));
    let mut measured = engine::measure(plan.engine_warmup, plan.engine_measure, &cases)?;
    let worst = measured.pop().expect("the worst case");
    // Items per second against the 25 M/s target.
    let rate = |workload: String, m: &Measured| {
        Row::measured(
            workload,
            m,
            "-",
            None,
            m.per_second() / 1e6,
            Target::AtLeast(25.0, " M/s"),
        )
    };
    let first_rate = measured[0].per_second();
    for (size, m) in engine::SIZES.iter().zip(&measured) {
        rows.push(rate(
            format!("scoring engine, {size} items, one core (ops = items)"),
            m,
        ));
    }
    let last = measured.last().expect("engine sizes");
    rows.push(Row::measured(
        format!("scoring engine, linear: items/s at {largest} vs 1000 items"),
        last,
        "items/s at 1000 items",
        Some(first_rate),
        last.per_second() / first_rate,
        Target::AtLeast(0.8, "x"),
    ));
    rows.push(rate(
        format!("scoring engine, {largest} items with ids in random order, one core"),
        &worst,
    ));
    Ok(rows)
}

/// A tenant's first authenticated call loads the built-in framework into it.
async fn provision(addr: SocketAddr, tenant: &str) -> Result<(), Failure> {
    let c = Client::connect(addr, tenant).await?;
    let mut assessment = c.assessment.clone();
    assessment
        .get_scoring_policy(c.authed(pb::GetScoringPolicyRequest {}))
        .await?;
    Ok(())
}

/// `CreateAssessment` of scattered subjects among the first `subjects`.
async fn assessments(
    callers: &[Client],
    plan: &Plan,
    subjects: usize,
    validate_only: bool,
) -> Result<Measured, Failure> {
    closed_loop(callers, plan.warmup, plan.measure, move |c: Client, n| {
        assess(c, n, subjects, validate_only)
    })
    .await
}

/// The `n`th assessment call of a workload: `validate_only` for a dry run.
async fn assess(
    mut c: Client,
    n: u64,
    subjects: usize,
    validate_only: bool,
) -> Result<(), Failure> {
    let request = c.authed(pb::CreateAssessmentRequest {
        subject_id: scattered(n, subjects),
        role_id: ROLE.into(),
        validate_only,
        ..Default::default()
    });
    let answer = c.assessment.create_assessment(request).await?.into_inner();
    if answer.assessment.is_none() {
        return Err("CreateAssessment answered no assessment".into());
    }
    Ok(())
}

/// Not a row (it has no target): the stack alone ([`crate::floor`]), a
/// server that runs the bare query per call on sqlx connections kept
/// between calls (as the real server keeps its scoring connections) and
/// does nothing else, measured in alternating turns with dry-run assessments:
/// what any service on this stack could reach, against the ceiling, and how
/// much of that the service's own work leaves.
async fn stack_alone(
    plan: &Plan,
    database: &Database,
    callers: &[Client],
    subjects: usize,
    ceiling: f64,
    scratch: &Path,
    progress: &Progress,
) -> Result<(), Failure> {
    let server = Server::start_stack_alone(&database.url, scratch.join("stack_alone.log")).await?;
    let mut pairs = Vec::with_capacity(callers.len());
    for caller in callers {
        let channel = Channel::from_shared(format!("http://{}", server.addr))?
            .connect()
            .await?;
        pairs.push((caller.clone(), HealthClient::new(channel)));
    }
    let (dry, alone) = alternating(
        &pairs,
        plan.warmup,
        plan.measure,
        ALTERNATING_TURNS,
        move |(c, _): (Client, _), n| assess(c, n, subjects, true),
        move |(_, mut bare): (_, HealthClient<Channel>), n| async move {
            let request = HealthCheckRequest {
                service: scattered(n, subjects),
            };
            let status = bare.check(request).await?.into_inner().status;
            if status != ServingStatus::Serving as i32 {
                return Err("the stack-alone server found no evidence".into());
            }
            Ok(())
        },
    )
    .await?;
    server.stop();
    progress.say(&format!(
        "the stack alone (tonic + sqlx connections kept between calls, the bare query per call, nothing else): {:.0}/s, \
         {:.2}x the ceiling; dry-run assessments in the turns between: {:.0}/s, {:.2}x the stack alone",
        alone.per_second(),
        alone.per_second() / ceiling,
        dry.per_second(),
        dry.per_second() / alone.per_second(),
    ));
    Ok(())
}

/// The `n`th Recommend call of a workload.
async fn recommend(mut c: Client, n: u64, subjects: usize) -> Result<(), Failure> {
    let request = c.authed(pb::RecommendRequest {
        subject_id: scattered(n, subjects),
        current_role_id: CURRENT_ROLE.into(),
        ..Default::default()
    });
    let answer = c.recommendation.recommend(request).await?.into_inner();
    if answer.recommendations.is_empty() {
        return Err("Recommend answered no recommendation".into());
    }
    Ok(())
}

/// A population loaded by `streams` concurrent binary COPY streams, each
/// generating its rows while it sends them. Returns the rows copied.
async fn copy_streams(
    options: &PgConnectOptions,
    population: Population,
    streams: usize,
) -> Result<u64, Failure> {
    let rows = population.rows();
    let per_stream = rows.div_ceil(streams.max(1));
    let tasks: Vec<_> = (0..rows)
        .step_by(per_stream.max(1))
        .map(|start| {
            let options = options.clone();
            let range = start..(start + per_stream).min(rows);
            tokio::spawn(async move { copy_range(&options, population, range).await })
        })
        .collect();
    let mut copied = 0;
    for task in tasks {
        copied += task.await??;
    }
    Ok(copied)
}

async fn copy_range(
    options: &PgConnectOptions,
    population: Population,
    range: Range<usize>,
) -> Result<u64, Failure> {
    let mut conn = PgConnection::connect_with(options).await?;
    let mut copy = conn.copy_in_raw(COPY_EVIDENCE).await?;
    let mut chunk = Vec::new();
    data::copy_header(&mut chunk);
    for start in range.clone().step_by(COPY_CHUNK_ROWS) {
        population.copy_rows(start..(start + COPY_CHUNK_ROWS).min(range.end), &mut chunk);
        copy.send(std::mem::take(&mut chunk)).await?;
    }
    data::copy_trailer(&mut chunk);
    copy.send(chunk).await?;
    let copied = copy.finish().await?;
    conn.close().await?;
    Ok(copied)
}

/// The ingest baseline: the population's rows, encoded before timing, in one
/// binary COPY on one connection. Returns rows per second.
async fn timed_copy(options: &PgConnectOptions, population: Population) -> Result<f64, Failure> {
    let mut encoded = Vec::new();
    data::copy_header(&mut encoded);
    population.copy_rows(0..population.rows(), &mut encoded);
    data::copy_trailer(&mut encoded);
    let mut conn = PgConnection::connect_with(options).await?;
    let started = Instant::now();
    let mut copy = conn.copy_in_raw(COPY_EVIDENCE).await?;
    for chunk in encoded.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let copied = copy.finish().await?;
    let rate = copied as f64 / started.elapsed().as_secs_f64();
    conn.close().await?;
    if copied as usize != population.rows() {
        return Err(format!("COPY loaded {copied} of {} rows", population.rows()).into());
    }
    Ok(rate)
}

/// The population through `BatchCreateEvidence` in batches of 1,000 (built
/// before timing), dealt round-robin to `streams` callers on their own
/// connections. Operations are rows; the latency is that of a batch.
async fn grpc_ingest(
    addr: SocketAddr,
    population: Population,
    streams: usize,
) -> Result<Measured, Failure> {
    let rows = population.rows();
    let mut per_stream: Vec<Vec<pb::BatchCreateEvidenceRequest>> = vec![Vec::new(); streams];
    for (n, start) in (0..rows).step_by(BATCH).enumerate() {
        per_stream[n % streams].push(population.batch(start..(start + BATCH).min(rows)));
    }
    let callers = callers(addr, population.tenant, streams).await?;
    let started = Instant::now();
    let tasks: Vec<_> = callers
        .into_iter()
        .zip(per_stream)
        .map(|(c, batches)| {
            tokio::spawn(async move {
                let mut assessment = c.assessment.clone();
                let mut latency = load::histogram();
                let mut created = 0u64;
                for batch in batches {
                    let sent = Instant::now();
                    let answer = assessment
                        .batch_create_evidence(c.authed(batch))
                        .await?
                        .into_inner();
                    load::record(&mut latency, sent);
                    created += answer.created_count as u64;
                }
                Ok::<_, Failure>((created, latency))
            })
        })
        .collect();
    let mut created = 0;
    let mut latency = load::histogram();
    for task in tasks {
        let (stream_created, stream_latency) = task.await??;
        created += stream_created;
        latency.add(stream_latency)?;
    }
    let elapsed = started.elapsed();
    if created as usize != rows {
        return Err(format!("the server created {created} of {rows} rows").into());
    }
    Ok(Measured {
        operations: created,
        elapsed,
        latency,
    })
}

/// As autovacuum would after a bulk load, but before measuring rather than
/// during: visibility map, hint bits and planner statistics.
async fn vacuum(options: &PgConnectOptions) -> Result<(), Failure> {
    let mut conn = PgConnection::connect_with(options).await?;
    sqlx::raw_sql(VACUUM_EVIDENCE).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}
