//! The `ladder` command line: every option is also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::app::admin;
use crate::app::client::{self, ServerArgs, report};
use crate::app::embedded_pg;
use crate::app::error::AppError;
use crate::app::framework_cmd::{self, FrameworkArgs};
use crate::app::memory;
use crate::app::server::{self, Database, DatabaseConfig};
use crate::app::telemetry::{self, LogFormat};
use crate::app::tls::ServerTlsArgs;
use crate::proto::v1 as pb;
use crate::storage::TenantId;
use crate::transport::AppState;
use crate::transport::auth::{Audience, Authenticator, DEV_TENANT, JwtSettings, JwtVerifier};
use crate::transport::limits::{self, Limits};

#[derive(Debug, Parser)]
#[command(
    name = "ladder",
    version,
    about = "Scores competency evidence against role rubrics and recommends career moves"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: json lines (for log collectors) or text (for people).
    #[arg(
        long,
        env = "LADDER_LOG_FORMAT",
        value_enum,
        default_value = "json",
        global = true
    )]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server (on the embedded PostgreSQL unless a database URL is given).
    Serve(Box<ServeArgs>),
    /// Apply the database migrations and exit; safe to run again.
    Migrate(DatabaseArgs),
    /// Export, import or initialise a tenant's career framework (YAML).
    Framework(FrameworkArgs),
    #[command(flatten)]
    Client(ClientCommand),
}

/// Commands that call a running server.
#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Evidence commands against a running server.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Assess a subject against a role on a running server and print the result.
    Assess(AssessArgs),
    /// Recommend next roles for a subject from a running server.
    Recommend(RecommendArgs),
    /// Score hypothetical evidence without storing anything.
    Whatif(WhatIfArgs),
    /// Estimate every rater's leniency from the tenant's evidence (an admin
    /// call), store it as the tenant's latest calibration, and print the most
    /// lenient and most severe raters.
    Calibrate(CalibrateArgs),
    #[command(flatten)]
    Oversight(client::oversight::OversightCommand),
    /// Subject commands against a running server.
    #[command(subcommand)]
    Subject(SubjectCommand),
}

#[derive(Debug, Subcommand)]
enum SubjectCommand {
    /// Set the role a subject holds now (used by `recommend` when no role is
    /// given): one subject, or every row of a CSV file with the columns
    /// subject_id and current_role_id (e.g. examples/demo/subjects.csv).
    SetRole {
        /// The subject's opaque HRIS id.
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        subject: Option<String>,
        /// The role id.
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        role: Option<String>,
        /// A CSV file of subject_id,current_role_id rows.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Set subjects' current role, org unit and manager from a CSV file with
    /// a subject_id column and any of current_role_id, org_unit, manager_id
    /// (other columns are ignored; an empty cell clears the field), creating
    /// subjects as needed; rejected rows are printed with their line and
    /// reason, and the rest are stored. Running it again changes nothing.
    Import {
        /// The CSV file (with a header), e.g. examples/demo/subjects.csv.
        file: PathBuf,
        /// Rows per request (the server accepts up to 1000 by default).
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// List subjects as CSV (subject_id,current_role_id,org_unit,manager_id),
    /// those known only from evidence included when no filter is given.
    List {
        /// Only this org unit and the units below it (whole parts:
        /// engineering/platform does not select engineering/platformx).
        #[arg(long)]
        org_unit: Option<String>,
        /// Only the direct reports of this subject.
        #[arg(long)]
        manager: Option<String>,
        /// With --manager: everyone below the manager, at any depth.
        #[arg(long, requires = "manager")]
        indirect: bool,
        /// Only subjects whose current role is this one.
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        server: client::ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Import a CSV (with header) or JSON Lines file of evidence, or a file of
    /// xAPI statements, in batches; the first rejected rows are printed, and
    /// all of them written to --errors FILE when given (xAPI: each
    /// statement's outcome is printed), and a re-run after an interruption
    /// adds nothing twice.
    Import {
        /// The file: `.csv`, or `.jsonl` / `.ndjson` / `.json` for JSON Lines,
        /// or xAPI statements with --format xapi.
        file: PathBuf,
        /// csv, jsonl (evidence rows) or xapi (xAPI 1.0.3 / 2.0 statements:
        /// a JSON array, an LRS answer or JSON Lines) [default: csv or jsonl
        /// by the file's extension].
        #[arg(long, value_enum)]
        format: Option<EvidenceFormat>,
        /// xAPI: actors must be accounts of this homePage (the HRIS);
        /// accounts of other systems are rejected.
        #[arg(long)]
        account_home_page: Option<String>,
        /// Write every rejected row (line, field, reason) to this CSV file;
        /// without it, the first ones are printed.
        #[arg(long)]
        errors: Option<PathBuf>,
        /// Rows per request (the server accepts up to 1000 by default).
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// Move every observed_at by the same whole number of days so that the
        /// file's latest one falls on today (UTC), e.g. for the demo organisation.
        #[arg(long)]
        shift_dates_to_today: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Correct stored evidence from a CSV file (one UpdateEvidence per row):
    /// each row names the evidence by evidence_id, or by source_system and
    /// external_id, and gives new values in any of the columns level,
    /// source, rater_id, observed_at, confidence, summary, link (an empty
    /// cell keeps the stored value); an etag column refuses a row whose
    /// evidence changed since it was read.
    Correct {
        /// The CSV file of corrections, with a header.
        file: PathBuf,
        /// Write every rejected row (line, field, reason) to this CSV file;
        /// without it, the first ones are printed.
        #[arg(long)]
        errors: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// What `ladder evidence import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EvidenceFormat {
    Csv,
    Jsonl,
    Xapi,
}

/// Who to assess, against what, and when.
#[derive(Debug, Args)]
struct SubjectArgs {
    /// The subject's opaque HRIS id.
    #[arg(long)]
    subject: String,
    /// Score as of this time (RFC 3339) [default: now].
    #[arg(long)]
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// Print JSON (the proto3 JSON mapping) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
struct AssessArgs {
    #[command(flatten)]
    subject: SubjectArgs,
    /// The role to assess against (its latest published rubric unless --version).
    #[arg(long)]
    role: String,
    /// A specific rubric version.
    #[arg(long, default_value_t = 0)]
    version: i32,
    /// Compute and print without storing the assessment.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct RecommendArgs {
    #[command(flatten)]
    subject: SubjectArgs,
    /// The subject's current role [default: the stored one].
    #[arg(long)]
    role: Option<String>,
    /// Show at most this many recommendations [default: the server's, 10].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    max: Option<u16>,
    /// Also draw a radar chart (SVG) of the top recommendation: estimated
    /// level with its 80% interval against the expected level per competency.
    #[arg(long)]
    chart: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct WhatIfArgs {
    #[command(flatten)]
    subject: SubjectArgs,
    /// The subject's current role [default: the stored one].
    #[arg(long)]
    role: Option<String>,
    /// Hypothetical evidence, COMPETENCY:LEVEL:SOURCE (observed at --as-of,
    /// full confidence); repeat for more.
    #[arg(long = "add", value_name = "COMPETENCY:LEVEL:SOURCE")]
    added: Vec<String>,
    /// Stored evidence ids to leave out; repeat for more.
    #[arg(long = "remove", value_name = "EVIDENCE_ID")]
    removed: Vec<String>,
    /// Also print the assessment against this role.
    #[arg(long)]
    assess_role: Option<String>,
    /// Show at most this many recommendations [default: the server's, 10].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    max: Option<u16>,
}

#[derive(Debug, Args)]
struct CalibrateArgs {
    /// End of the window (RFC 3339) [default: now].
    #[arg(long)]
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// Days of evidence before --as-of to read [default: the policy's, 730].
    #[arg(long)]
    window_days: Option<i32>,
    /// Prior strength λ, in units of rating weight [default: the policy's, 5].
    #[arg(long)]
    prior_strength: Option<f64>,
    /// Raters shown per list.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print JSON (the calibration and every rater effect) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Where the database is.
#[derive(Debug, Args)]
pub(crate) struct DatabaseArgs {
    /// PostgreSQL URL (postgres://user:pass@host/db). Without it, a private
    /// PostgreSQL cluster is run from the machine's installation under --data-dir.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Data directory of the embedded cluster [default: /var/lib/ladder as root,
    /// else $XDG_DATA_HOME/ladder or ~/.local/share/ladder]. When running as
    /// root, --pg-user must be able to traverse every directory above it.
    #[arg(long, env = "LADDER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Directory holding initdb, pg_ctl and postgres [default: search PATH,
    /// `pg_config --bindir` and /usr/lib/postgresql/*/bin].
    #[arg(long, env = "LADDER_PG_BIN_DIR")]
    pg_bin_dir: Option<PathBuf>,
    /// Account the embedded cluster runs as when ladder runs as root
    /// (PostgreSQL refuses to run as root).
    #[arg(long, env = "LADDER_PG_USER", default_value = "postgres")]
    pg_user: String,
    /// Largest number of database connections.
    #[arg(long, env = "LADDER_DB_MAX_CONNECTIONS", default_value_t = 16)]
    db_max_connections: u32,
    /// How --database-url reaches PostgreSQL: `direct`, or `transaction`
    /// through a pooler in transaction mode (PgBouncer, or any that hands
    /// server connections between clients at each transaction's end):
    /// every statement is then prepared unnamed and run in a transaction,
    /// and --database-direct-url serves migrations and the framework
    /// listener.
    #[arg(
        long,
        env = "LADDER_DATABASE_POOLER",
        value_enum,
        default_value = "direct"
    )]
    database_pooler: server::PoolerMode,
    /// PostgreSQL itself, bypassing the pooler of --database-url (required
    /// with --database-pooler transaction): for migrations, which hold an
    /// advisory lock, and the framework listener's LISTEN, which live on a
    /// session.
    #[arg(long, env = "LADDER_DATABASE_DIRECT_URL")]
    database_direct_url: Option<String>,
}

impl DatabaseArgs {
    pub(crate) fn config(&self) -> DatabaseConfig {
        DatabaseConfig {
            url: self.database_url.clone(),
            embedded: server::embedded_config(
                self.data_dir
                    .clone()
                    .unwrap_or_else(embedded_pg::default_data_dir),
                self.pg_bin_dir.clone(),
                self.pg_user.clone(),
            ),
            max_connections: self.db_max_connections,
            pooler: self.database_pooler,
            direct_url: self.database_direct_url.clone(),
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    read_replica: ReadReplicaArgs,
    /// Address to serve gRPC (and gRPC-Web) on; use 0.0.0.0:50051 to accept
    /// connections from other machines.
    #[arg(long, env = "LADDER_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Address of the admin HTTP port (/metrics, /livez, /readyz), e.g.
    /// 0.0.0.0:9090 [default: none, no admin port].
    #[arg(long, env = "LADDER_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Do not apply migrations at start (run `ladder migrate` separately, as
    /// the owner role).
    #[arg(long, env = "LADDER_NO_MIGRATE")]
    no_migrate: bool,
    /// INSECURE: serve even when --database-url's role is a superuser, has
    /// BYPASSRLS or owns tables, which row-level security does not bind.
    #[arg(long, env = "LADDER_ALLOW_PRIVILEGED_DATABASE_ROLE")]
    allow_privileged_database_role: bool,
    #[command(flatten)]
    limits: LimitArgs,
    /// INSECURE: accept calls without credentials, all acting for tenant "dev".
    #[arg(long, env = "LADDER_DEV")]
    dev: bool,
    #[command(flatten)]
    jwt: JwtArgs,
    #[command(flatten)]
    tls: ServerTlsArgs,
}

/// Where reads may go (see docs/operations.md, "Read replicas").
#[derive(Debug, Args)]
struct ReadReplicaArgs {
    /// PostgreSQL URL of a hot standby of --database-url (a read replica):
    /// dry-run assessments, recommendations, what-ifs, gets and lists read
    /// there while it lags at most --database-read-max-lag-ms; writes stay on
    /// the primary [default: none, everything on the primary].
    #[arg(long, env = "LADDER_DATABASE_READ_URL")]
    database_read_url: Option<String>,
    /// Most replay lag of the read replica, in milliseconds, before reads go
    /// to the primary instead (until it catches up).
    #[arg(long, env = "LADDER_DATABASE_READ_MAX_LAG_MS", default_value_t = 5000)]
    database_read_max_lag_ms: u64,
}

/// What one server takes on (see docs/operations.md, "Limits and failure behaviour").
#[derive(Debug, Args)]
struct LimitArgs {
    /// Largest number of evidence items in one BatchCreateEvidence call; the
    /// largest request message is sized from it.
    #[arg(long, env = "LADDER_MAX_BATCH", default_value_t = limits::DEFAULT_MAX_BATCH)]
    max_batch: usize,
    /// Calls worked on at once; more are refused with RESOURCE_EXHAUSTED
    /// [default: 2 x --db-max-connections].
    #[arg(long, env = "LADDER_MAX_IN_FLIGHT")]
    max_in_flight: Option<usize>,
    /// Concurrent HTTP/2 streams per client connection.
    #[arg(long, env = "LADDER_MAX_CONCURRENT_STREAMS", default_value_t = limits::DEFAULT_MAX_CONCURRENT_STREAMS)]
    max_concurrent_streams: u32,
    /// Deadline of a call whose client sends no grpc-timeout, in milliseconds.
    #[arg(long, env = "LADDER_DEFAULT_DEADLINE_MS", default_value_t = limits::DEFAULT_DEADLINE.as_millis() as u64)]
    default_deadline_ms: u64,
    /// After SIGTERM or SIGINT, how long health says NOT_SERVING while new
    /// calls are still served (for load balancers to stop sending any),
    /// in milliseconds.
    #[arg(long, env = "LADDER_SHUTDOWN_DELAY_MS", default_value_t = limits::DEFAULT_SHUTDOWN_DELAY.as_millis() as u64)]
    shutdown_delay_ms: u64,
    /// After that delay, how long in-flight calls may finish before they are
    /// cancelled, in milliseconds; the process exits at most a few seconds
    /// later.
    #[arg(long, env = "LADDER_SHUTDOWN_GRACE_MS", default_value_t = limits::DEFAULT_SHUTDOWN_GRACE.as_millis() as u64)]
    shutdown_grace_ms: u64,
    /// CPU-heavy computations (recommendations, what-ifs) run at once
    /// [default: the number of CPUs].
    #[arg(long, env = "LADDER_MAX_CPU_TASKS")]
    max_cpu_tasks: Option<usize>,
    /// How long a page token is accepted after it was returned, in seconds.
    #[arg(long, env = "LADDER_PAGE_TOKEN_LIFETIME_SECS", default_value_t = limits::DEFAULT_PAGE_TOKEN_LIFETIME.as_secs())]
    page_token_lifetime_secs: u64,
}

impl LimitArgs {
    fn limits(&self, db_max_connections: u32) -> Limits {
        let defaults = Limits::for_pool(db_max_connections);
        Limits {
            max_batch: self.max_batch,
            max_in_flight: self.max_in_flight.unwrap_or(defaults.max_in_flight),
            max_concurrent_streams: self.max_concurrent_streams,
            default_deadline: Duration::from_millis(self.default_deadline_ms),
            shutdown_delay: Duration::from_millis(self.shutdown_delay_ms),
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
            max_cpu_tasks: self.max_cpu_tasks.unwrap_or(defaults.max_cpu_tasks),
            page_token_lifetime: Duration::from_secs(self.page_token_lifetime_secs),
        }
    }
}

/// How bearer JWTs are verified.
#[derive(Debug, Args)]
struct JwtArgs {
    /// PEM public key (RSA, EC or Ed25519) that signs access tokens.
    #[arg(long, env = "LADDER_JWT_PUBLIC_KEY", conflicts_with = "jwt_jwks")]
    jwt_public_key: Option<PathBuf>,
    /// JWKS file with the keys that sign access tokens (chosen by `kid`);
    /// read again when it changes, so keys rotate without a restart.
    #[arg(long, env = "LADDER_JWT_JWKS")]
    jwt_jwks: Option<PathBuf>,
    /// Required `iss` claim, when set.
    #[arg(long, env = "LADDER_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// The `aud` every token must carry (this service's name at the issuer).
    /// Required unless --jwt-any-audience.
    #[arg(long, env = "LADDER_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// INSECURE: accept tokens whatever their audience, including tokens the
    /// issuer made for other services.
    #[arg(long, env = "LADDER_JWT_ANY_AUDIENCE", conflicts_with = "jwt_audience")]
    jwt_any_audience: bool,
    /// Accept symmetric (HMAC, `kty: oct`) keys in the JWKS; anyone holding
    /// such a key can mint tokens.
    #[arg(long, env = "LADDER_JWT_ALLOW_SYMMETRIC_KEYS")]
    jwt_allow_symmetric_keys: bool,
    /// Claim that holds the caller's tenant.
    #[arg(long, env = "LADDER_JWT_TENANT_CLAIM", default_value = "tenant")]
    jwt_tenant_claim: String,
    /// Claim that holds the caller's scopes (space-separated string or array).
    #[arg(long, env = "LADDER_JWT_SCOPES_CLAIM", default_value = "scope")]
    jwt_scopes_claim: String,
}

impl ServeArgs {
    fn authenticator(&self) -> Result<Authenticator, AppError> {
        let jwt = &self.jwt;
        let keyed = jwt.jwt_public_key.is_some() || jwt.jwt_jwks.is_some();
        let audience = match (&jwt.jwt_audience, jwt.jwt_any_audience) {
            (Some(aud), _) => Audience::Required(aud.clone()),
            (None, true) => Audience::Any,
            (None, false) if keyed => {
                return Err(AppError::Config(
                    "no JWT audience: set --jwt-audience NAME (LADDER_JWT_AUDIENCE) to the `aud` \
                     the issuer puts in tokens for this service, or pass --jwt-any-audience to \
                     accept tokens made for any service (INSECURE)"
                        .into(),
                ));
            }
            (None, false) => Audience::Any,
        };
        if keyed && audience == Audience::Any {
            eprintln!(
                "\n*** --jwt-any-audience: ladder accepts tokens the issuer made for ANY service. ***\n"
            );
            tracing::warn!("INSECURE: --jwt-any-audience, token audiences are not checked");
        }
        let settings = JwtSettings {
            issuer: jwt.jwt_issuer.clone(),
            audience,
            tenant_claim: jwt.jwt_tenant_claim.clone(),
            scopes_claim: jwt.jwt_scopes_claim.clone(),
            allow_symmetric_keys: jwt.jwt_allow_symmetric_keys,
        };
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| AppError::Io {
                context: format!("reading {}", path.display()),
                source,
            })
        };
        let verifier = match (&jwt.jwt_public_key, &jwt.jwt_jwks) {
            (Some(pem), _) => Some(JwtVerifier::from_pem(&read(pem)?, settings)),
            (None, Some(jwks)) => Some(JwtVerifier::from_jwks_file(jwks.clone(), settings)),
            (None, None) => None,
        };
        match (verifier, self.dev) {
            (Some(Err(e)), _) => Err(AppError::Config(format!("JWT key: {e}"))),
            (Some(Ok(_)), true) => Err(AppError::Config(
                "--dev and JWT keys exclude each other: drop --dev to require tokens".into(),
            )),
            (Some(Ok(verifier)), false) => Ok(Authenticator::Jwt(verifier)),
            (None, true) => Ok(Authenticator::dev(TenantId(DEV_TENANT.into()))),
            (None, false) => Err(AppError::Config(
                "no way to authenticate callers: configure --jwt-public-key FILE or --jwt-jwks FILE \
                 (LADDER_JWT_PUBLIC_KEY / LADDER_JWT_JWKS), or pass --dev to run WITHOUT \
                 authentication for local development"
                    .into(),
            )),
        }
    }
}

/// How long the exit waits for tasks still running on the blocking pool.
const RUNTIME_STOP_TIMEOUT: Duration = Duration::from_millis(500);

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        end_quietly_on_a_closed_pipe();
    }
    memory::limit_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ladder: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Inside the runtime: the trace exporter's connection runs on it.
    let telemetry = match runtime.block_on(async { telemetry::init(cli.log_format) }) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            // Printed once, for the person who ran the command; not logged too.
            eprintln!("ladder: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command));
    if let Err(e) = &result {
        // Printed once, for the person who ran the command; not logged too.
        eprintln!("ladder: {e}");
    }
    // The runtime's workers still run the exporter while this blocks.
    telemetry.shutdown();
    // Whatever still runs (a DNS lookup or a computation of a cancelled
    // call on the blocking pool) is not waited for long.
    runtime.shutdown_timeout(RUNTIME_STOP_TIMEOUT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// A command whose output is cut short (`ladder recommend --json | head`)
/// ends as a Unix command does, by SIGPIPE (status 141 in a shell), rather
/// than panicking in `println!`: Rust ignores SIGPIPE for every program,
/// which turns a closed pipe into an error `print!` cannot return. The
/// server keeps ignoring it: a client that goes away must not end it.
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: restores the default disposition of one signal at start, before
    // any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

async fn run(command: Command) -> Result<(), AppError> {
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(args) => {
            let database = Database::open_as_owner(&args.config()).await?;
            let migrated = database.db.migrate().await;
            database.close().await?;
            migrated?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Framework(args) => framework_cmd::run(args).await,
        Command::Client(client) => client_command(client).await,
    }
}

fn timestamp(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<prost_types::Timestamp> {
    t.map(crate::transport::convert::time::to_proto)
}

/// `COMPETENCY:LEVEL:SOURCE` as hypothetical evidence.
fn hypothetical(
    spec: &str,
    as_of: Option<prost_types::Timestamp>,
) -> Result<pb::Evidence, AppError> {
    let bad = || {
        AppError::Config(format!(
            "--add {spec:?}: expected COMPETENCY:LEVEL:SOURCE, e.g. system_design:4:manager"
        ))
    };
    let mut parts = spec.split(':');
    let (Some(competency), Some(level), Some(source), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let source = crate::domain::evidence::Source::parse(source).ok_or_else(bad)?;
    Ok(pb::Evidence {
        competency_id: competency.to_string(),
        level: level.parse().map_err(|_| bad())?,
        source: crate::transport::convert::assessment::source_to_proto(source) as i32,
        observed_at: as_of.or_else(|| timestamp(Some(chrono::Utc::now()))),
        ..Default::default()
    })
}

fn print(
    json: Option<Result<String, AppError>>,
    text: impl FnOnce() -> String,
) -> Result<(), AppError> {
    match json {
        Some(json) => println!("{}", json?),
        None => print!("{}", text()),
    }
    Ok(())
}

/// One `CreateAssessment` call and the assessment it answers with.
async fn assess(
    clients: &mut client::Clients,
    request: pb::CreateAssessmentRequest,
) -> Result<pb::Assessment, AppError> {
    Ok(clients
        .assessment
        .create_assessment(request)
        .await
        .map_err(client::call_failed)?
        .into_inner()
        .assessment
        .unwrap_or_default())
}

async fn client_command(command: ClientCommand) -> Result<(), AppError> {
    match command {
        ClientCommand::Subject(SubjectCommand::SetRole {
            subject,
            role,
            file,
            server,
        }) => {
            let mut clients = server.connect().await?;
            match (file, subject, role) {
                (Some(file), _, _) => {
                    let count = client::subjects::set_roles_from_file(&mut clients, &file).await?;
                    println!("set the current role of {count} subject(s)");
                }
                (None, Some(subject), Some(role)) => {
                    client::subjects::set_role(&mut clients, &subject, &role).await?;
                    println!("{subject} now holds {role}");
                }
                _ => unreachable!("clap requires --file or both --subject and --role"),
            }
        }
        ClientCommand::Subject(SubjectCommand::Import {
            file,
            batch_size,
            server,
        }) => {
            let mut clients = server.connect().await?;
            client::subjects::import(&mut clients, &file, batch_size).await?;
        }
        ClientCommand::Subject(SubjectCommand::List {
            org_unit,
            manager,
            indirect,
            role,
            server,
        }) => {
            let mut clients = server.connect().await?;
            let filter = client::subjects::ListArgs {
                org_unit,
                manager,
                indirect,
                role,
            };
            client::subjects::list(&mut clients, &filter).await?;
        }
        ClientCommand::Evidence(EvidenceCommand::Import {
            file,
            format,
            account_home_page,
            errors,
            batch_size,
            shift_dates_to_today,
            server,
        }) => {
            let mut clients = server.connect().await?;
            if format == Some(EvidenceFormat::Xapi) {
                client::xapi_import::run(&mut clients, &file, batch_size, account_home_page)
                    .await?;
                return Ok(());
            }
            let json_lines = match format {
                Some(format) => format == EvidenceFormat::Jsonl,
                None => client::evidence_import::is_jsonl(&file),
            };
            client::evidence_import::run(
                &mut clients,
                &file,
                client::evidence_import::Options {
                    errors,
                    batch_size,
                    json_lines,
                    shift_dates_to_today,
                },
            )
            .await?;
        }
        ClientCommand::Evidence(EvidenceCommand::Correct {
            file,
            errors,
            server,
        }) => {
            let mut clients = server.connect().await?;
            client::evidence_correct::run(&mut clients, &file, errors).await?;
        }
        ClientCommand::Assess(args) => {
            let s = &args.subject;
            let mut clients = s.server.connect().await?;
            let assessment = assess(
                &mut clients,
                pb::CreateAssessmentRequest {
                    subject_id: s.subject.clone(),
                    role_id: args.role.clone(),
                    rubric_version: args.version,
                    as_of: timestamp(s.as_of),
                    validate_only: args.dry_run,
                    ..Default::default()
                },
            )
            .await?;
            let stored = if args.dry_run {
                "dry run: computed, not stored".to_string()
            } else {
                format!("stored as assessment {}", assessment.id)
            };
            print(
                s.json
                    .then(|| report::to_json(&assessment, "ladder.v1.Assessment")),
                || format!("{}\n{stored}\n", report::assessment(&assessment)),
            )?;
            if s.json {
                eprintln!("{stored}");
            }
        }
        ClientCommand::Recommend(args) => {
            let s = &args.subject;
            let mut clients = s.server.connect().await?;
            let response = clients
                .recommendation
                .recommend(pb::RecommendRequest {
                    subject_id: s.subject.clone(),
                    current_role_id: args.role.clone().unwrap_or_default(),
                    as_of: timestamp(s.as_of),
                    max_recommendations: args.max.map_or(0, i32::from),
                })
                .await
                .map_err(client::call_failed)?
                .into_inner();
            print(
                s.json
                    .then(|| report::to_json(&response, "ladder.v1.RecommendResponse")),
                || report::recommendations(&response),
            )?;
            if let (Some(path), Some(top)) = (&args.chart, response.recommendations.first()) {
                let assessment = assess(
                    &mut clients,
                    pb::CreateAssessmentRequest {
                        subject_id: s.subject.clone(),
                        role_id: top.role_id.clone(),
                        as_of: response.as_of,
                        validate_only: true,
                        ..Default::default()
                    },
                )
                .await?;
                client::chart::radar(&assessment, &top.role_name, path)?;
                eprintln!("chart of {} written to {}", top.role_id, path.display());
            }
        }
        ClientCommand::Oversight(command) => client::oversight::run(command).await?,
        ClientCommand::Whatif(args) => {
            let s = &args.subject;
            let as_of = timestamp(s.as_of);
            let added = args
                .added
                .iter()
                .map(|spec| hypothetical(spec, as_of))
                .collect::<Result<Vec<_>, _>>()?;
            let mut clients = s.server.connect().await?;
            let response = clients
                .recommendation
                .what_if(pb::WhatIfRequest {
                    subject_id: s.subject.clone(),
                    current_role_id: args.role.clone().unwrap_or_default(),
                    as_of,
                    added_evidence: added,
                    removed_evidence_ids: args.removed.clone(),
                    role_id: args.assess_role.clone().unwrap_or_default(),
                    max_recommendations: args.max.map_or(0, i32::from),
                })
                .await
                .map_err(client::call_failed)?
                .into_inner();
            let hypothetical = format!(
                "HYPOTHETICAL: scored as if {} piece(s) of evidence were added and {} left out; \
                 nothing was stored",
                args.added.len(),
                args.removed.len()
            );
            print(
                s.json
                    .then(|| report::to_json(&response, "ladder.v1.WhatIfResponse")),
                || {
                    let mut out = format!("{hypothetical}\n\n");
                    out += &response
                        .assessment
                        .as_ref()
                        .map(report::assessment)
                        .unwrap_or_default();
                    out.push_str(&report::recommendations(
                        &response.recommendations.clone().unwrap_or_default(),
                    ));
                    out
                },
            )?;
            if s.json {
                eprintln!("{hypothetical}");
            }
        }
        ClientCommand::Calibrate(args) => {
            let mut clients = args.server.connect().await?;
            let calibration = client::calibration::run(
                &mut clients,
                pb::RunCalibrationRequest {
                    as_of: timestamp(args.as_of),
                    window_days: args.window_days,
                    rater_prior_strength: args.prior_strength,
                },
            )
            .await?;
            let effects = client::calibration::effects(&mut clients, &calibration.id).await?;
            let listed = pb::ListRaterEffectsResponse {
                rater_effects: effects,
                next_page_token: String::new(),
            };
            print(
                args.json.then(|| {
                    // One document: the calibration and every effect, by rater id.
                    let parse = |text: String| {
                        serde_json::from_str::<serde_json::Value>(&text)
                            .map_err(|e| AppError::Config(e.to_string()))
                    };
                    let mut document =
                        parse(report::to_json(&calibration, "ladder.v1.Calibration")?)?;
                    let effects = parse(report::to_json(
                        &listed,
                        "ladder.v1.ListRaterEffectsResponse",
                    )?)?;
                    document["raterEffects"] = effects["raterEffects"].clone();
                    serde_json::to_string_pretty(&document)
                        .map_err(|e| AppError::Config(e.to_string()))
                }),
                || client::calibration::report(&calibration, &listed.rater_effects, args.top),
            )?;
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), AppError> {
    // Refuse before touching the database: a misconfigured server must not start.
    let auth = args.authenticator()?;
    let tls = args.tls.server_config()?;
    if let Authenticator::Dev { caller } = &auth {
        eprintln!(
            "\n*** ladder is running in --dev mode: NO AUTHENTICATION, every call acts for tenant \
             \"{}\". Never expose this server. ***\n",
            caller.tenant.0
        );
        tracing::warn!(tenant = %caller.tenant.0, "INSECURE: --dev mode, no authentication");
    }
    let listener = bind(args.listen).await?;
    let admin_listener = match args.admin_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let config = args.database.config();
    if args.read_replica.database_read_url.is_some() && config.url.is_none() {
        return Err(AppError::Config(
            "--database-read-url needs --database-url: the read replica is a standby of that \
             database (the embedded cluster has none)"
                .into(),
        ));
    }
    let mut database = Database::open_for_serving(
        &config,
        !args.no_migrate,
        args.allow_privileged_database_role,
    )
    .await?;
    if let Some(url) = &args.read_replica.database_read_url {
        database = database
            .with_read_replica(
                url,
                config.max_connections,
                Duration::from_millis(args.read_replica.database_read_max_lag_ms),
            )
            .await?;
    }
    let served = async {
        let addr = listener.local_addr().map_err(|source| AppError::Io {
            context: "reading the bound address".into(),
            source,
        })?;
        let shutdown = server::shutdown_signal();
        tracing::info!(%addr, "ladder listening");
        let limits = args.limits.limits(args.database.db_max_connections);
        let state = AppState::with_limits(database.db.clone(), limits);
        let admin = admin_listener.map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "admin port listening");
            }
            tokio::spawn(admin::serve(listener, state.clone()))
        });
        let served = server::run(listener, tls, state, auth, shutdown).await;
        if let Some(admin) = admin {
            admin.abort();
        }
        served
    }
    .await;
    // Stop the embedded cluster even when serving failed.
    let closed = database.close().await;
    served.and(closed)
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, AppError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Io {
            context: format!("binding {addr}"),
            source,
        })
}
