//! Opening the database and serving gRPC.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, TryStreamExt};
use sqlx::postgres::PgConnectOptions;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::app::coalesced_writes::CoalescedWrites;
use crate::app::embedded_pg::{self, EmbeddedConfig, EmbeddedError, EmbeddedPostgres};
use crate::app::error::AppError;
use crate::app::memory;
use crate::proto::v1::assessment_service_server::AssessmentServiceServer;
use crate::proto::v1::audit_service_server::AuditServiceServer;
use crate::proto::v1::calibration_service_server::CalibrationServiceServer;
use crate::proto::v1::framework_service_server::FrameworkServiceServer;
use crate::proto::v1::oversight_service_server::OversightServiceServer;
use crate::proto::v1::recommendation_service_server::RecommendationServiceServer;
use crate::proto::v1::rubric_service_server::RubricServiceServer;
use crate::proto::v1::subject_rights_service_server::SubjectRightsServiceServer;
use crate::proto::v1::xapi_service_server::XapiServiceServer;
use crate::storage::{self, Db, StorageError, database_role};
use crate::transport::admission::Admission;
use crate::transport::auth::{AuthLayer, Authenticator};
use crate::transport::{
    AppState, AssessmentApi, AuditApi, CalibrationApi, FrameworkApi, MAX_DOCUMENT_BYTES,
    MESSAGE_OVERHEAD, OversightApi, RecommendationApi, RubricApi, SubjectRightsApi, XapiApi,
};

/// The database the embedded cluster serves Ladder from.
pub const EMBEDDED_DATABASE: &str = "ladder";
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// How long, after the shutdown grace, the server may take to close its
/// connections to clients, and then again to close its pool: a database
/// that does not answer (a cancelled call's statement still running, a
/// frozen server) must not hold up the exit past what Kubernetes allows.
pub const STOP_MARGIN: Duration = Duration::from_secs(1);
/// The health service name for liveness probes: SERVING while the process
/// answers, whatever the database does (the other names follow it), so a
/// database outage takes pods out of the Service without restarting them.
pub const LIVENESS_SERVICE: &str = "liveness";
const SERVICE_NAMES: [&str; 10] = [
    "",
    "ladder.v1.RubricService",
    "ladder.v1.AssessmentService",
    "ladder.v1.RecommendationService",
    "ladder.v1.CalibrationService",
    "ladder.v1.FrameworkService",
    "ladder.v1.XapiService",
    "ladder.v1.OversightService",
    "ladder.v1.AuditService",
    "ladder.v1.SubjectRightsService",
];

/// Where the database is: a URL, or the embedded cluster under a data directory.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: Option<String>,
    pub embedded: EmbeddedConfig,
    pub max_connections: u32,
    /// How `url` reaches PostgreSQL.
    pub pooler: PoolerMode,
    /// PostgreSQL itself when `url` leads through a pooler.
    pub direct_url: Option<String>,
}

/// What stands between `--database-url` and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PoolerMode {
    /// Nothing, or a pooler in session mode: a client keeps its server
    /// connection for its whole session.
    Direct,
    /// A pooler in transaction mode: the server connection may change
    /// after every transaction.
    Transaction,
}

impl DatabaseConfig {
    /// Connects to `url` as this configuration says it is reached.
    async fn connect(&self, url: &str) -> Result<Db, AppError> {
        let db = Db::connect(parse_url(url)?, self.max_connections).await?;
        match (self.pooler, &self.direct_url) {
            (PoolerMode::Direct, _) => {
                if db.leads_through_transaction_pooler().await? {
                    db.close().await;
                    return Err(AppError::Config(format!(
                        "--database-url leads through a pooler in transaction mode: {}",
                        storage::BEHIND_A_POOLER
                    )));
                }
                Ok(db)
            }
            (PoolerMode::Transaction, Some(direct)) => {
                let direct = direct
                    .parse()
                    .map_err(|e| AppError::Config(format!("--database-direct-url: {e}")))?;
                Ok(db.behind_transaction_pooler(direct))
            }
            (PoolerMode::Transaction, None) => {
                db.close().await;
                Err(AppError::Config(
                    "--database-pooler transaction needs --database-direct-url \
                     (LADDER_DATABASE_DIRECT_URL): PostgreSQL itself, for migrations and \
                     the framework listener, which a transaction pooler cannot carry"
                        .into(),
                ))
            }
        }
    }

    /// Refuses a pooler setting without a URL to go through it.
    fn check_embedded(&self) -> Result<(), AppError> {
        if self.pooler == PoolerMode::Transaction {
            return Err(AppError::Config(
                "--database-pooler transaction needs --database-url: the embedded \
                 PostgreSQL is reached directly"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// An open database and, for the embedded default, the cluster behind it.
#[derive(Debug)]
pub struct Database {
    pub db: Db,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Opens the database as the schema's owner, for `ladder migrate` and the
    /// framework commands: the embedded cluster's superuser, or whoever
    /// `--database-url` names.
    pub async fn open_as_owner(config: &DatabaseConfig) -> Result<Self, AppError> {
        if let Some(url) = &config.url {
            let db = config.connect(url).await?;
            return Ok(Self { db, embedded: None });
        }
        config.check_embedded()?;
        let (cluster, owner) = start_embedded(config).await?;
        let db = Db::connect(owner, config.max_connections).await?;
        Ok(Self {
            db,
            embedded: Some(cluster),
        })
    }

    /// Opens the database for serving, migrated first unless `migrate` is
    /// false. The embedded cluster is migrated by its superuser and served
    /// as the application role. With `--database-url` the service runs as
    /// the role the URL names, which must be unable to get around row-level
    /// security (no superuser, no BYPASSRLS, owns nothing) unless
    /// `allow_privileged`.
    pub async fn open_for_serving(
        config: &DatabaseConfig,
        migrate: bool,
        allow_privileged: bool,
    ) -> Result<Self, AppError> {
        let Some(url) = &config.url else {
            config.check_embedded()?;
            let (cluster, owner) = start_embedded(config).await?;
            if migrate {
                let owner = Db::connect(owner, 1).await?;
                let migrated = owner.migrate().await;
                owner.close().await;
                migrated?;
            }
            let app = embedded_app_options(&cluster)?;
            let db = Db::connect(app, config.max_connections).await?;
            return Ok(Self {
                db,
                embedded: Some(cluster),
            });
        };
        let db = config.connect(url).await?;
        let role = database_role::current(&db).await?;
        let reasons = role.reasons();
        if !reasons.is_empty() {
            if !allow_privileged {
                db.close().await;
                return Err(AppError::Config(format!(
                    "refusing to serve as the database role `{}`: {}. Connect as the \
                     application role (`{}`, see docs/security.md), or pass \
                     --allow-privileged-database-role to run without the database's \
                     tenant isolation",
                    role.name,
                    reasons.join("; "),
                    database_role::APP_ROLE,
                )));
            }
            tracing::warn!(
                role = %role.name,
                reasons = %reasons.join("; "),
                "INSECURE: serving as a privileged database role; row-level security does not bind it"
            );
        }
        if migrate && let Err(e) = db.migrate().await {
            db.close().await;
            return Err(AppError::Config(format!(
                "migrating as `{}` failed ({e}); run `ladder migrate` with the owner's URL and \
                 serve with --no-migrate",
                role.name
            )));
        }
        Ok(Self { db, embedded: None })
    }

    /// Adds the read replica at `url` (`--database-read-url`), with a pool
    /// of `max_connections` of its own, used while it lags at most
    /// `max_lag`.
    pub async fn with_read_replica(
        mut self,
        url: &str,
        max_connections: u32,
        max_lag: Duration,
    ) -> Result<Self, AppError> {
        let options = match url.parse() {
            Ok(options) => options,
            Err(e) => {
                self.db.close().await;
                return Err(AppError::Config(format!("--database-read-url: {e}")));
            }
        };
        self.db = self
            .db
            .with_read_replica(options, max_connections, max_lag)
            .await?;
        Ok(self)
    }

    /// Closes the pool, then stops the embedded cluster if there is one.
    /// Gives up on the pool's connections after [`STOP_MARGIN`]: one whose
    /// statement the database is still running (a cancelled call's, or any
    /// on a database that does not answer) would otherwise hold up the exit
    /// until the database answered.
    pub async fn close(self) -> Result<(), AppError> {
        if tokio::time::timeout(STOP_MARGIN, self.db.close())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?STOP_MARGIN,
                "the database did not let its connections close in time; leaving them"
            );
        }
        if let Some(cluster) = self.embedded {
            tokio::task::spawn_blocking(move || cluster.stop())
                .await
                .map_err(|source| AppError::Task {
                    context: "stopping PostgreSQL",
                    source,
                })??;
            tracing::info!("embedded PostgreSQL stopped");
        }
        Ok(())
    }
}

fn parse_url(url: &str) -> Result<PgConnectOptions, AppError> {
    url.parse()
        .map_err(|e| AppError::Config(format!("--database-url: {e}")))
}

/// Starts the embedded cluster and makes its database and application role
/// ready; returns the superuser's options on that database.
async fn start_embedded(
    config: &DatabaseConfig,
) -> Result<(EmbeddedPostgres, PgConnectOptions), AppError> {
    let embedded_config = config.embedded.clone();
    let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&embedded_config))
        .await
        .map_err(|source| AppError::Task {
            context: "starting PostgreSQL",
            source,
        })??;
    tracing::info!(data_dir = %config.embedded.data_dir.display(), "embedded PostgreSQL started");
    let server = embedded_options(&cluster)?;
    storage::ensure_database(&server, EMBEDDED_DATABASE).await?;
    database_role::ensure_app_role(&server, &cluster.app_password()?).await?;
    Ok((cluster, server.database(EMBEDDED_DATABASE)))
}

/// Connection options for a cluster's unix socket, as its superuser.
pub fn embedded_options(cluster: &EmbeddedPostgres) -> Result<PgConnectOptions, EmbeddedError> {
    Ok(PgConnectOptions::new()
        .socket(cluster.socket_dir())
        .port(embedded_pg::SOCKET_PORT)
        .username(embedded_pg::SUPERUSER)
        .password(&cluster.superuser_password()?))
}

/// Connection options for the cluster's Ladder database, as the
/// application role.
pub fn embedded_app_options(cluster: &EmbeddedPostgres) -> Result<PgConnectOptions, EmbeddedError> {
    Ok(PgConnectOptions::new()
        .socket(cluster.socket_dir())
        .port(embedded_pg::SOCKET_PORT)
        .username(database_role::APP_ROLE)
        .password(&cluster.app_password()?)
        .database(EMBEDDED_DATABASE))
}

/// The default embedded configuration for a data directory.
pub fn embedded_config(
    data_dir: PathBuf,
    bin_dir: Option<PathBuf>,
    system_user: String,
) -> EmbeddedConfig {
    EmbeddedConfig {
        data_dir,
        bin_dir,
        system_user,
        ephemeral: false,
    }
}

/// Serves the Ladder API, health and reflection on `listener` (over TLS when
/// `tls` is given) until `shutdown` resolves, then stops: health (and the
/// admin port's `/readyz`) turns NOT_SERVING at once while calls are still
/// served for `state.limits.shutdown_delay`, so that load balancers stop
/// sending any; then it drains: new calls are refused UNAVAILABLE, in-flight
/// calls get `state.limits.shutdown_grace` to finish, and whatever still
/// runs then is cancelled. Returns at most [`STOP_MARGIN`] after the grace.
pub async fn run(
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    state: AppState,
    auth: Authenticator,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AppError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    // A read-only database (a standby, a failover under way) is waited out
    // NOT_SERVING, as the monitor would once serving; any other failure
    // stops the start.
    let serving = match state.db.ping().await {
        Ok(()) => true,
        Err(err @ StorageError::ReadOnly(_)) => {
            tracing::warn!(error = %err, "not serving until the database takes writes");
            false
        }
        Err(err) => return Err(err.into()),
    };
    set_health(&reporter, serving_status(serving)).await;
    reporter
        .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
        .await;
    let following_framework_changes = state.db.watch_framework_changes().await?;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let limits = Arc::clone(&state.limits);
    let stopping = state.clone();
    let admission = Admission::new(Arc::clone(&limits), state.metrics.clone());
    let max_message = limits.max_message_bytes();
    let (stop_serving, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut builder = Server::builder();
    let plaintext = tls.is_none();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    // Nothing fails from here on before serving: the tasks are not left
    // running by an early return.
    let framework_changes = tokio::spawn(following_framework_changes);
    let monitor = tokio::spawn(watch_database(state.db.clone(), reporter.clone(), serving));
    let trimming = tokio::spawn(memory::trim_when_idle(admission.clone()));
    let router = builder
        .accept_http1(true)
        .max_concurrent_streams(Some(limits.max_concurrent_streams))
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(admission.clone())
        .layer(AuthLayer::new(auth))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            RubricServiceServer::new(RubricApi::new(state.clone()))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            AssessmentServiceServer::new(AssessmentApi::new(state.clone()))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            RecommendationServiceServer::new(RecommendationApi::new(state.clone()))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            AuditServiceServer::new(AuditApi::new(state.clone()))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            SubjectRightsServiceServer::new(SubjectRightsApi::new(state.clone()))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            OversightServiceServer::new(OversightApi::new(state.clone()))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            CalibrationServiceServer::new(CalibrationApi::new(state.clone()))
                .max_decoding_message_size(max_message),
        )
        // Whole framework documents and statement files are larger than
        // any other call.
        .add_service(
            FrameworkServiceServer::new(FrameworkApi::new(state.clone()))
                .max_decoding_message_size(MAX_DOCUMENT_BYTES + MESSAGE_OVERHEAD),
        )
        .add_service(
            XapiServiceServer::new(XapiApi::new(state))
                .max_decoding_message_size(MAX_DOCUMENT_BYTES + MESSAGE_OVERHEAD),
        );
    // TCP_NODELAY on every accepted connection: without it Nagle holds back
    // a small response until the client's delayed ACK, about 40 ms per call.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stopped = async {
        let _ = stopped.await;
    };
    let serving = if plaintext {
        router
            .serve_with_incoming_shutdown(incoming.map_ok(CoalescedWrites::new), stopped)
            .boxed()
    } else {
        router
            .serve_with_incoming_shutdown(incoming, stopped)
            .boxed()
    };
    tokio::pin!(serving);
    let result = tokio::select! {
        result = &mut serving => result,
        () = shutdown => {
            // Not ready from now on, whatever the database does.
            monitor.abort();
            stopping.begin_stopping();
            let delay = limits.shutdown_delay;
            if delay.is_zero() {
                // Without a delay, a client told NOT_SERVING must find new
                // calls refused already: draining starts before health says so.
                admission.refuse_new_calls();
            }
            set_health(&reporter, ServingStatus::NotServing).await;
            if !delay.is_zero() {
                tracing::info!(?delay, "not ready; serving calls until the delay ends");
                let delayed = tokio::select! {
                    result = &mut serving => Some(result),
                    () = tokio::time::sleep(delay) => None,
                };
                if let Some(result) = delayed {
                    framework_changes.abort();
                    trimming.abort();
                    return Ok(result?);
                }
            }
            // A draining server follows no more changes (and reconnects to
            // no database), so what it answers from here is read anew.
            framework_changes.abort();
            let grace = limits.shutdown_grace;
            let began = Instant::now();
            // The server keeps serving while it drains: health answers
            // NOT_SERVING and new calls are refused UNAVAILABLE.
            let drained = admission.drain(grace);
            tokio::pin!(drained);
            let ended = tokio::select! {
                result = &mut serving => Some(result),
                finished = &mut drained => {
                    if !finished {
                        tracing::warn!(?grace, "calls still running after the grace period are cancelled");
                        admission.cancel_all();
                    }
                    None
                }
            };
            match ended {
                Some(result) => result,
                None => {
                    let _ = stop_serving.send(());
                    // Connections to clients close within what is left of
                    // the grace, and the margin after it.
                    let left = grace.saturating_sub(began.elapsed()) + STOP_MARGIN;
                    tokio::time::timeout(left, &mut serving).await.unwrap_or(Ok(()))
                }
            }
        }
    };
    monitor.abort();
    framework_changes.abort();
    trimming.abort();
    Ok(result?)
}

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// SERVING only while the database answers, asked on a connection of its
/// own (`Db::ping`), so that a busy pool does not look like a dead database.
/// Each round also gives the pool back the connections kept for scoring
/// calls that have gone unused a while.
async fn watch_database(db: Db, reporter: HealthReporter, mut serving: bool) {
    loop {
        tokio::time::sleep(HEALTH_INTERVAL).await;
        db.release_idle_connections();
        let pinged = match tokio::time::timeout(HEALTH_INTERVAL, db.ping()).await {
            Ok(pinged) => pinged,
            Err(_) => Err(StorageError::Unavailable(format!(
                "no answer within {HEALTH_INTERVAL:?}"
            ))),
        };
        let up = pinged.is_ok();
        if up != serving {
            serving = up;
            match pinged {
                Ok(()) => tracing::warn!(database_up = up, "health changed"),
                Err(error) => tracing::warn!(database_up = up, %error, "health changed"),
            }
            set_health(&reporter, serving_status(up)).await;
        }
    }
}

fn serving_status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Resolves on SIGINT or SIGTERM. The SIGTERM handler is installed when this
/// is called, not when the future is first polled, so a SIGTERM that comes
/// right after the server says it listens drains it instead of killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutdown requested; draining in-flight calls");
    }
}
