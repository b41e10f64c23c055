//! The `ladder` command line: every option is also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::app::client::{self, ServerArgs, report};
use crate::app::embedded_pg;
use crate::app::error::AppError;
use crate::app::framework_cmd::{self, FrameworkArgs};
use crate::app::server::{self, Database, DatabaseConfig};
use crate::app::telemetry::{self, LogFormat};
use crate::proto::v1 as pb;
use crate::storage::TenantId;
use crate::transport::AppState;
use crate::transport::auth::{Audience, Authenticator, DEV_TENANT, JwtSettings, JwtVerifier};

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
    Serve(ServeArgs),
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
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Import a CSV (with header) or JSON Lines file in batches; rejected rows
    /// go to an error file, and a re-run after an interruption adds nothing twice.
    Import {
        /// The file: `.csv`, or `.jsonl` / `.ndjson` for JSON Lines.
        file: PathBuf,
        /// Where rejected rows go (line, reason) [default: FILE.errors.csv].
        #[arg(long)]
        errors: Option<PathBuf>,
        /// Rows per request (the server accepts up to 1000 by default).
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        #[command(flatten)]
        server: ServerArgs,
    },
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
    /// Also draw a radar chart (SVG) of the top recommendation: estimated
    /// against expected level per competency.
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
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address to serve gRPC (and gRPC-Web) on; use 0.0.0.0:50051 to accept
    /// connections from other machines.
    #[arg(long, env = "LADDER_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Do not apply migrations at start (run `ladder migrate` separately, as
    /// the owner role).
    #[arg(long, env = "LADDER_NO_MIGRATE")]
    no_migrate: bool,
    /// INSECURE: serve even when --database-url's role is a superuser, has
    /// BYPASSRLS or owns tables, which row-level security does not bind.
    #[arg(long, env = "LADDER_ALLOW_PRIVILEGED_DATABASE_ROLE")]
    allow_privileged_database_role: bool,
    /// Largest number of evidence items in one BatchCreateEvidence call.
    #[arg(long, env = "LADDER_MAX_BATCH", default_value_t = crate::transport::DEFAULT_MAX_BATCH)]
    max_batch: usize,
    /// INSECURE: accept calls without credentials, all acting for tenant "dev".
    #[arg(long, env = "LADDER_DEV")]
    dev: bool,
    #[command(flatten)]
    jwt: JwtArgs,
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
            (None, true) => Ok(Authenticator::Dev {
                tenant: TenantId(DEV_TENANT.into()),
            }),
            (None, false) => Err(AppError::Config(
                "no way to authenticate callers: configure --jwt-public-key FILE or --jwt-jwks FILE \
                 (LADDER_JWT_PUBLIC_KEY / LADDER_JWT_JWKS), or pass --dev to run WITHOUT \
                 authentication for local development"
                    .into(),
            )),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
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
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ladder failed");
            eprintln!("ladder: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), AppError> {
    match command {
        Command::Serve(args) => serve(args).await,
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
        confidence: 1.0,
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
        ClientCommand::Evidence(EvidenceCommand::Import {
            file,
            errors,
            batch_size,
            server,
        }) => {
            let mut clients = server.connect().await?;
            client::evidence_import::run(&mut clients, &file, errors, batch_size).await?;
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
            print(
                s.json
                    .then(|| report::to_json(&assessment, "ladder.v1.Assessment")),
                || report::assessment(&assessment),
            )?;
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
                    ..Default::default()
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
                client::chart::radar(&assessment, path)?;
                eprintln!("chart of {} written to {}", top.role_id, path.display());
            }
        }
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
                    ..Default::default()
                })
                .await
                .map_err(client::call_failed)?
                .into_inner();
            print(
                s.json
                    .then(|| report::to_json(&response, "ladder.v1.WhatIfResponse")),
                || {
                    let mut out = response
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
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), AppError> {
    // Refuse before touching the database: a misconfigured server must not start.
    let auth = args.authenticator()?;
    if let Authenticator::Dev { tenant } = &auth {
        eprintln!(
            "\n*** ladder is running in --dev mode: NO AUTHENTICATION, every call acts for tenant \
             \"{}\". Never expose this server. ***\n",
            tenant.0
        );
        tracing::warn!(tenant = %tenant.0, "INSECURE: --dev mode, no authentication");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| AppError::Io {
            context: format!("binding {}", args.listen),
            source,
        })?;
    let database = Database::open_for_serving(
        &args.database.config(),
        !args.no_migrate,
        args.allow_privileged_database_role,
    )
    .await?;
    let served = async {
        let addr = listener.local_addr().map_err(|source| AppError::Io {
            context: "reading the bound address".into(),
            source,
        })?;
        let shutdown = server::shutdown_signal();
        tracing::info!(%addr, "ladder listening");
        let state = AppState::new(database.db.clone()).with_max_batch(args.max_batch);
        server::run(listener, state, auth, shutdown).await
    }
    .await;
    // Stop the embedded cluster even when serving failed.
    let closed = database.close().await;
    served.and(closed)
}
