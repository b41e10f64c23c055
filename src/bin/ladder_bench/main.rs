//! `ladder-bench`: Ladder against its physical limits, side by side, in one
//! table with pass/fail (docs/benchmarks.md).
//!
//! It starts a throwaway PostgreSQL cluster (or uses the server behind
//! `DATABASE_URL`, in a database `ladder_bench` it creates and drops), runs
//! the real server as a child process on a loopback port (so that its memory
//! can be read from `/proc`), loads evidence with binary COPY, and measures
//! every workload against a baseline measured in the same run: a raw gRPC
//! ping, PostgreSQL's own `pgbench` running the bare query, binary COPY. The
//! load comes from the generated tonic clients, closed loop, one HTTP/2
//! connection per concurrent caller.
//!
//! Exit status: 0 when every workload was measured, whether or not it met its
//! target; non-zero when something could not be measured.

mod child;
mod data;
mod engine;
mod engine_inputs;
mod floor;
mod load;
mod pgbench;
mod report;
mod workloads;

/// The cluster start, keys and token minting the API tests use too.
#[path = "../../../tests/shared/mod.rs"]
#[allow(dead_code)] // the tests' helpers the benchmark has no use for
mod shared;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::child::Server;

/// Anything that keeps the benchmark from measuring.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(
    name = "ladder-bench",
    about = "Measures Ladder against its physical limits and prints one table with pass/fail"
)]
struct Args {
    /// A short run (under three minutes on two cores): 100,000 rows ingested,
    /// 1,000,000 rows for the scale workload, 3 s per measurement.
    #[arg(long)]
    quick: bool,
    /// Also write the table as a JSON array of objects to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Concurrent callers (each on its own connection) for every workload
    /// and for pgbench's bare query.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Seconds each measurement lasts, after a warm-up [default: 3 with
    /// --quick, else 10].
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: Option<u64>,
    /// Run this `ladder` executable as the server instead of this program's
    /// own copy of the `ladder` command line.
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
}

/// How much data and time a run uses.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub concurrency: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// Rows in the table for the assessment workloads (and the scale baseline).
    pub small_rows: usize,
    /// Rows ingested through the service, and copied for its baseline.
    pub ingest_rows: usize,
    /// Rows in the table for the scale workload.
    pub scale_rows: usize,
    pub engine_warmup: Duration,
    pub engine_measure: Duration,
}

impl Plan {
    fn new(args: &Args) -> Self {
        let (ingest_rows, scale_rows, seconds) = if args.quick {
            (100_000, 1_000_000, 3)
        } else {
            (1_000_000, 10_000_000, 10)
        };
        let measure = Duration::from_secs(args.seconds.unwrap_or(seconds));
        Self {
            quick: args.quick,
            concurrency: args.concurrency.into(),
            warmup: (measure / 3).max(Duration::from_secs(1)),
            measure,
            small_rows: 100_000,
            ingest_rows,
            scale_rows,
            engine_warmup: Duration::from_millis(300),
            engine_measure: if args.quick {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(3)
            },
        }
    }
}

/// The database the benchmark creates (and drops) on a `DATABASE_URL` server.
const BENCH_DATABASE: &str = "ladder_bench";
const DROP_BENCH_DATABASE: &str = "DROP DATABASE IF EXISTS ladder_bench WITH (FORCE)";

/// The PostgreSQL server the benchmark runs on, and what to remove after it.
pub struct Database {
    /// The benchmark database as its owner, for the benchmark's own
    /// connections (loading data, the bare query's baseline).
    pub options: PgConnectOptions,
    /// The same as a URL, for pgbench.
    pub url: String,
    /// The benchmark database as the application role `ladder_app`, for the
    /// server: row-level security binds it as it binds a deployed server.
    pub app_url: String,
    server: PgConnectOptions,
    throwaway: Option<shared::Throwaway>,
}

impl Database {
    async fn open() -> Result<Self, Failure> {
        let (server, throwaway) =
            tokio::task::spawn_blocking(|| shared::postgres_server("ladder-bench-")).await?;
        let app = shared::app_role(&server.owner, &server.app_password).await;
        let (url, app_url) = match std::env::var("DATABASE_URL") {
            Ok(url) => {
                let url = with_database(&url, BENCH_DATABASE);
                let app_url = with_credentials(&url, app.get_username(), &server.app_password);
                (url, app_url)
            }
            Err(_) => (
                socket_url(&server.owner, &server.owner_password, BENCH_DATABASE)?,
                socket_url(&app, &server.app_password, BENCH_DATABASE)?,
            ),
        };
        let server = server.owner;
        let database = Self {
            options: server.clone().database(BENCH_DATABASE),
            url,
            app_url,
            server,
            throwaway,
        };
        database.drop_bench_database().await?;
        ladder::storage::ensure_database(&database.server, BENCH_DATABASE).await?;
        // The server runs as the application role, which cannot migrate.
        let owner = ladder::storage::Db::connect(database.options.clone(), 1).await?;
        owner.migrate().await?;
        owner.close().await;
        Ok(database)
    }

    async fn drop_bench_database(&self) -> Result<(), Failure> {
        let mut conn =
            PgConnection::connect_with(&self.server.clone().database("postgres")).await?;
        sqlx::raw_sql(DROP_BENCH_DATABASE)
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }

    /// Drops the benchmark database, or stops and removes the throwaway cluster.
    async fn remove(mut self) {
        match self.throwaway.take() {
            Some(throwaway) => {
                let _ = tokio::task::spawn_blocking(move || throwaway.remove()).await;
            }
            None => {
                if let Err(e) = self.drop_bench_database().await {
                    eprintln!("dropping {BENCH_DATABASE}: {e}");
                }
            }
        }
    }
}

/// `url` with its database (the path) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    match query {
        Some(query) => format!("{}/{database}?{query}", &base[..path]),
        None => format!("{}/{database}", &base[..path]),
    }
}

/// `url` logging in as `user` with `password` instead of its own credentials.
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let host = url[authority..]
        .find('@')
        .map_or(authority, |at| authority + at + 1);
    format!("{}{user}:{password}@{}", &url[..authority], &url[host..])
}

/// A URL for a cluster reached over its unix socket: the socket directory,
/// percent-encoded, as the host (libpq and sqlx both read it so).
fn socket_url(
    server: &PgConnectOptions,
    password: &str,
    database: &str,
) -> Result<String, Failure> {
    let socket = server
        .get_socket()
        .ok_or("the throwaway cluster has no socket directory")?;
    let mut host = String::new();
    for byte in socket.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                host.push(byte as char)
            }
            _ => host.push_str(&format!("%{byte:02X}")),
        }
    }
    // The password is hex (generated at cluster creation): no escaping needed.
    Ok(format!(
        "postgres://{}:{password}@{host}:{}/{database}",
        server.get_username(),
        server.get_port()
    ))
}

async fn bench(args: &Args, plan: &Plan) -> Result<Vec<report::Row>, Failure> {
    let scratch = tempfile::Builder::new()
        .prefix("ladder-bench-files-")
        .tempdir()?;
    let public_key = scratch.path().join("issuer.pub.pem");
    std::fs::write(&public_key, shared::ISSUER_PUBLIC_KEY)?;
    let database = Database::open().await?;
    let server = Server::start(
        args.server_bin.as_deref(),
        &database.app_url,
        &public_key,
        scratch.path().join("server.log"),
    )
    .await;
    let result = match server {
        Ok(server) => {
            let rows = workloads::run(plan, &database, &server, scratch.path()).await;
            server.stop();
            rows
        }
        Err(e) => Err(e),
    };
    database.remove().await;
    result
}

fn main() -> ExitCode {
    if std::env::var_os(child::RUN_SERVER).is_some() {
        return ladder::app::cli::main();
    }
    if std::env::var_os(floor::RUN_FLOOR).is_some() {
        return floor::main();
    }
    let args = Args::parse();
    let plan = Plan::new(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ladder-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rows = match runtime.block_on(bench(&args, &plan)) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("ladder-bench: could not measure: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n{}", report::table(&rows));
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&rows)
            .map_err(Failure::from)
            .and_then(|json| Ok(std::fs::write(path, json + "\n")?));
        if let Err(e) = written {
            eprintln!("ladder-bench: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
