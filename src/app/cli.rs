//! The `ladder` command line: every option is also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::app::embedded_pg;
use crate::app::error::AppError;
use crate::app::framework_cmd::{self, FrameworkArgs};
use crate::app::server::{self, Database, DatabaseConfig};
use crate::app::telemetry::{self, LogFormat};
use crate::storage::TenantId;
use crate::transport::AppState;
use crate::transport::auth::{Authenticator, DEV_TENANT, JwtSettings, JwtVerifier};

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
    /// Do not apply migrations at start (run `ladder migrate` separately).
    #[arg(long, env = "LADDER_NO_MIGRATE")]
    no_migrate: bool,
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
    /// JWKS file with the keys that sign access tokens (chosen by `kid`).
    #[arg(long, env = "LADDER_JWT_JWKS")]
    jwt_jwks: Option<PathBuf>,
    /// Required `iss` claim, when set.
    #[arg(long, env = "LADDER_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Required `aud` claim, when set.
    #[arg(long, env = "LADDER_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
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
        let settings = JwtSettings {
            issuer: jwt.jwt_issuer.clone(),
            audience: jwt.jwt_audience.clone(),
            tenant_claim: jwt.jwt_tenant_claim.clone(),
            scopes_claim: jwt.jwt_scopes_claim.clone(),
        };
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| AppError::Io {
                context: format!("reading {}", path.display()),
                source,
            })
        };
        let verifier = match (&jwt.jwt_public_key, &jwt.jwt_jwks) {
            (Some(pem), _) => Some(JwtVerifier::from_pem(&read(pem)?, settings)),
            (None, Some(jwks)) => Some(JwtVerifier::from_jwks(&read(jwks)?, settings)),
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
            let database = Database::open(&args.config()).await?;
            let migrated = database.db.migrate().await;
            database.close().await?;
            migrated?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Framework(args) => framework_cmd::run(args).await,
    }
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
    let database = Database::open(&args.database.config()).await?;
    let served = async {
        if !args.no_migrate {
            database.db.migrate().await?;
        }
        let addr = listener.local_addr().map_err(|source| AppError::Io {
            context: "reading the bound address".into(),
            source,
        })?;
        tracing::info!(%addr, "ladder listening");
        let state = AppState::new(database.db.clone());
        server::run(listener, state, auth, server::shutdown_signal()).await
    }
    .await;
    // Stop the embedded cluster even when serving failed.
    let closed = database.close().await;
    served.and(closed)
}
