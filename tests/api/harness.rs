//! The one shared test harness: a throwaway PostgreSQL cluster for the whole
//! test binary (or the server behind DATABASE_URL), a fresh database per test
//! cloned from a template migrated once, and the real server on an ephemeral
//! port, reached through the generated clients with minted tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

pub use ladder::app::client::{Authed, Bearer};
use ladder::proto::v1::assessment_service_client::AssessmentServiceClient;
use ladder::proto::v1::audit_service_client::AuditServiceClient;
use ladder::proto::v1::calibration_service_client::CalibrationServiceClient;
use ladder::proto::v1::oversight_service_client::OversightServiceClient;
use ladder::proto::v1::recommendation_service_client::RecommendationServiceClient;
use ladder::proto::v1::rubric_service_client::RubricServiceClient;
use ladder::proto::v1::subject_rights_service_client::SubjectRightsServiceClient;
use ladder::storage::Db;
use ladder::transport::AppState;
use ladder::transport::auth::Authenticator;
use ladder::transport::limits::Limits;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tonic::transport::Channel;

#[path = "../shared/mod.rs"]
#[allow(dead_code)] // the benchmark's helpers the tests have no use for
mod shared;

pub use shared::{
    AUDIENCE, ISSUER_PRIVATE_KEY, ISSUER_PUBLIC_KEY, OTHER_PRIVATE_KEY, jwt_settings, sign,
    timestamp,
};
pub use shared::{authenticator, serve as serve_state};

/// The PostgreSQL server the tests use and the migrated template they clone.
struct Cluster {
    /// As the owner (the superuser of the embedded cluster): migrations,
    /// databases, and the tests' own look behind the API.
    server: PgConnectOptions,
    owner_password: String,
    /// As the application role, which the test servers run as.
    app: PgConnectOptions,
    app_password: String,
    template: String,
}

/// The embedded cluster, stopped and removed when the test binary exits.
static EMBEDDED: Mutex<Option<shared::Throwaway>> = Mutex::new(None);
static CLUSTER: OnceLock<Cluster> = OnceLock::new();

extern "C" fn stop_embedded() {
    if let Ok(mut guard) = EMBEDDED.lock()
        && let Some(cluster) = guard.take()
    {
        cluster.remove();
    }
}

/// Runs `f` to completion on a runtime of its own, outside any test's runtime.
fn on_own_runtime<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    })
    .join()
    .expect("harness thread panicked")
}

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let (pg, embedded) = shared::postgres_server("ladder-test-");
        let (server, owner_password, app_password) = (pg.owner, pg.owner_password, pg.app_password);
        if let Some(embedded) = embedded {
            *EMBEDDED.lock().unwrap() = Some(embedded);
            // SAFETY: registers a plain extern "C" function; it runs once at exit.
            unsafe { libc::atexit(stop_embedded) };
        }
        let template = format!("ladder_template_{}", std::process::id());
        let (srv, tpl) = (server.clone(), template.clone());
        let password = app_password.clone();
        let app = on_own_runtime(async move {
            let app = shared::app_role(&srv, &password).await;
            ladder::storage::ensure_database(&srv, &tpl)
                .await
                .expect("template database");
            let db = Db::connect(srv.database(&tpl), 2)
                .await
                .expect("template connect");
            db.migrate().await.expect("migrating the template");
            db.close().await;
            app
        });
        Cluster {
            server,
            owner_password,
            app,
            app_password,
            template,
        }
    })
}

/// A token for `tenant`, valid for an hour, signed with the key the test servers trust.
pub fn token(tenant: &str) -> String {
    shared::token(&format!("test-user@{tenant}"), tenant, 3600)
}

/// The clients, all acting for one tenant.
pub struct Clients {
    pub rubric: RubricServiceClient<Authed>,
    pub assessment: AssessmentServiceClient<Authed>,
    pub recommendation: RecommendationServiceClient<Authed>,
    pub calibration: CalibrationServiceClient<Authed>,
    pub audit: AuditServiceClient<Authed>,
    pub subject_rights: SubjectRightsServiceClient<Authed>,
    pub oversight: OversightServiceClient<Authed>,
}

/// A real server on an ephemeral port over a fresh database.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The test's own database as its owner (which row-level security does
    /// not bind), for checking what the API wrote behind its back.
    pub pool: sqlx::PgPool,
    database: String,
    /// Replicas share their first server's database and leave it to it.
    owns_database: bool,
    /// What the server serves from (its metrics among it).
    pub state: AppState,
    running: shared::Running,
}

impl TestServer {
    /// A server trusting the issuer key's PEM.
    pub async fn start() -> Self {
        Self::start_with(shared::authenticator()).await
    }

    pub async fn start_with(auth: Authenticator) -> Self {
        Self::start_configured(auth, None).await
    }

    /// A server whose pool holds at most `connections` connections.
    pub async fn start_with_connections(connections: u32) -> Self {
        Self::start_configured(
            shared::authenticator(),
            Some((Limits::for_pool(connections), connections)),
        )
        .await
    }

    /// A server with these limits, on a pool of `pool_size` connections.
    pub async fn start_limited(limits: Limits, pool_size: u32) -> Self {
        Self::start_configured(shared::authenticator(), Some((limits, pool_size))).await
    }

    async fn start_configured(auth: Authenticator, limited: Option<(Limits, u32)>) -> Self {
        let cluster = cluster();
        let database = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect_with(&cluster.server.clone().database("postgres"))
            .await
            .expect("connecting to the test cluster");
        sqlx::query(&format!(
            "CREATE DATABASE \"{database}\" TEMPLATE \"{}\"",
            cluster.template
        ))
        .execute(&mut conn)
        .await
        .expect("creating the test database");
        conn.close().await.ok();
        Self::serve(database, auth, true, limited, None).await
    }

    /// A second server on this server's database, as another replica behind
    /// the same load balancer: the same data, its own in-memory state.
    pub async fn replica(&self) -> Self {
        Self::serve(
            self.database.clone(),
            shared::authenticator(),
            false,
            None,
            None,
        )
        .await
    }

    /// A second server on this server's database that reaches it through
    /// `pooler` (`--database-pooler transaction`), with the database itself
    /// as its direct URL, and a pool of `pool_size` connections.
    #[allow(dead_code)] // for tests/pooler.rs, a test binary of its own
    pub async fn behind(&self, pooler: &Pooler, pool_size: u32) -> Self {
        Self::serve(
            self.database.clone(),
            shared::authenticator(),
            false,
            Some((Limits::for_pool(pool_size), pool_size)),
            Some(pooler),
        )
        .await
    }

    async fn serve(
        database: String,
        auth: Authenticator,
        owns_database: bool,
        limited: Option<(Limits, u32)>,
        pooler: Option<&Pooler>,
    ) -> Self {
        let options = cluster().server.clone().database(&database);
        let pool_size = limited.as_ref().map_or(8, |(_, size)| *size);
        // The server runs as the application role, so every test goes
        // through row-level security.
        let direct = cluster().app.clone().database(&database);
        let db = match pooler {
            None => Db::connect(direct, pool_size).await,
            Some(pooler) => Db::connect(pooler.app_options(&database), pool_size)
                .await
                .map(|db| db.behind_transaction_pooler(direct)),
        }
        .expect("connecting to the test database");
        let state = match limited {
            Some((limits, _)) => AppState::with_limits(db, limits),
            None => AppState::new(db),
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .expect("connecting to the test database");
        let running = shared::serve(state.clone(), auth).await;
        Self {
            addr: running.addr,
            pool,
            database,
            owns_database,
            state,
            running,
        }
    }

    /// Starts the server's admin HTTP port (/metrics, /livez, /readyz) on
    /// an ephemeral loopback port; it runs until the test ends.
    pub async fn admin(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(ladder::app::admin::serve(listener, self.state.clone()));
        addr
    }

    /// Sends the server its shutdown signal, as SIGTERM would.
    pub fn begin_shutdown(&mut self) {
        self.running.signal_stop();
    }

    /// A connection to the test's database as the application role, the
    /// role the servers run as.
    pub async fn app_connection(&self) -> PgConnection {
        PgConnection::connect_with(&cluster().app.clone().database(&self.database))
            .await
            .expect("connecting as the application role")
    }

    /// A pool of the test's database as the application role, as a server has.
    pub async fn app_db(&self, connections: u32) -> Db {
        Db::connect(cluster().app.clone().database(&self.database), connections)
            .await
            .expect("connecting as the application role")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .expect("connecting to the test server")
    }

    /// Clients carrying a valid token for `tenant`.
    pub async fn clients(&self, tenant: &str) -> Clients {
        self.clients_with(Some(format!("Bearer {}", token(tenant))))
            .await
    }

    /// Clients sending exactly this `authorization` value (or none).
    pub async fn clients_with(&self, authorization: Option<String>) -> Clients {
        let bearer = Bearer(authorization.map(|a| a.parse().expect("ascii header")));
        Clients::on(self.channel().await, bearer)
    }
}

impl Clients {
    /// Every client over `channel`, each sending `bearer`.
    pub fn on(channel: Channel, bearer: Bearer) -> Self {
        Self {
            rubric: RubricServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            assessment: AssessmentServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            recommendation: RecommendationServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            calibration: CalibrationServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            audit: AuditServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            subject_rights: SubjectRightsServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            oversight: OversightServiceClient::with_interceptor(channel, bearer),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.running.signal_stop();
        if !self.owns_database {
            return;
        }
        let (server, database) = (cluster().server.clone(), self.database.clone());
        // No waiting for the pools to close: their connections belong to the
        // test's runtime, which this drop blocks. FORCE ends them instead.
        on_own_runtime(async move {
            if let Ok(mut conn) = PgConnection::connect_with(&server.database("postgres")).await {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                ))
                .execute(&mut conn)
                .await;
            }
        });
    }
}

/// The `ladder` binary built for these tests.
pub fn ladder_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ladder"))
}

impl TestServer {
    /// A URL for the test's database, for running the `ladder` binary against it.
    pub fn database_url(&self) -> String {
        database_url(&self.database)
    }

    /// The name of the test's database.
    #[allow(dead_code)] // for tests/pooler.rs, a test binary of its own
    pub fn database(&self) -> &str {
        &self.database
    }

    /// A URL for the test's database as the application role.
    pub fn app_database_url(&self) -> String {
        let app = &cluster().app;
        let password = &cluster().app_password;
        match app.get_socket() {
            Some(socket) => format!(
                "postgres://{}:{password}@localhost:{}/{}?host={}",
                app.get_username(),
                app.get_port(),
                self.database,
                socket.display()
            ),
            None => format!(
                "postgres://{}:{password}@{}:{}/{}",
                app.get_username(),
                app.get_host(),
                app.get_port(),
                self.database
            ),
        }
    }
}

/// Where a client reaches the test's PostgreSQL server.
pub enum PgAddress {
    Unix(PathBuf),
    Tcp(String),
}

impl TestServer {
    /// Where the test's PostgreSQL server listens (for a proxy in front of it).
    pub fn postgres_address(&self) -> PgAddress {
        let app = &cluster().app;
        match app.get_socket() {
            Some(dir) => PgAddress::Unix(dir.join(format!(".s.PGSQL.{}", app.get_port()))),
            None => PgAddress::Tcp(format!("{}:{}", app.get_host(), app.get_port())),
        }
    }

    /// A URL for the test's database as the application role, through a
    /// TCP proxy at `proxy` (which forwards to [`Self::postgres_address`]).
    pub fn app_database_url_via(&self, proxy: SocketAddr) -> String {
        format!(
            "postgres://{}:{}@{proxy}/{}?sslmode=disable",
            cluster().app.get_username(),
            cluster().app_password,
            self.database
        )
    }
}

fn database_url(database: &str) -> String {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let (base, query) = url
            .split_once('?')
            .map_or((url.as_str(), None), |(b, q)| (b, Some(q)));
        let (server, _) = base
            .rsplit_once('/')
            .expect("DATABASE_URL has a database path");
        return match query {
            Some(q) => format!("{server}/{database}?{q}"),
            None => format!("{server}/{database}"),
        };
    }
    let options = &cluster().server;
    let socket = options
        .get_socket()
        .expect("the embedded cluster listens on a socket");
    format!(
        "postgres://{}:{}@localhost:{}/{database}?host={}",
        options.get_username(),
        cluster().owner_password,
        options.get_port(),
        socket.display()
    )
}

/// A temporary directory the unprivileged cluster user can traverse.
pub fn traversable_temp_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("ladder-cli-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A piece of evidence for `subject` with the caller's key `external_id`.
pub fn evidence(
    subject: &str,
    competency: &str,
    level: f64,
    source: ladder::proto::v1::EvidenceSource,
    observed_at: chrono::DateTime<chrono::Utc>,
    external_id: &str,
) -> ladder::proto::v1::Evidence {
    ladder::proto::v1::Evidence {
        subject_id: subject.into(),
        competency_id: competency.into(),
        level,
        source: source as i32,
        rater_id: "rater-1".into(),
        observed_at: Some(timestamp(observed_at)),
        confidence: Some(1.0),
        source_system: "hris".into(),
        external_id: external_id.into(),
        ..Default::default()
    }
}

/// The field names of a status's `google.rpc.BadRequest` detail.
pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

impl TestServer {
    /// Counts the rows of `table`, all tenants together.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .expect("counting rows")
    }
}

/// Debian's PgBouncer (1.18: no prepared statements across server
/// connections) in transaction mode in front of the test cluster, as a
/// platform team puts a pooler in front of PostgreSQL. It is installed with
/// apt when missing (as PostgreSQL is expected to be), runs as the
/// cluster's user when the tests run as root, and stops with the value.
pub struct Pooler {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

#[allow(dead_code)] // for tests/pooler.rs, a test binary of its own
impl Pooler {
    /// A pooler handing out at most `server_connections` server connections
    /// per database and user, whatever the number of clients.
    pub fn start(server_connections: u32) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let binary = pooler_binary();
        let server = &cluster().server;
        let host = server.get_socket().map_or_else(
            || server.get_host().to_string(),
            |dir| dir.display().to_string(),
        );
        let dir = traversable_temp_dir();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let app = &cluster().app;
        std::fs::write(
            dir.path().join("userlist.txt"),
            format!(
                "\"{}\" \"{}\"\n",
                app.get_username(),
                cluster().app_password
            ),
        )
        .unwrap();
        let port = free_port();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={host} port={}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {d}/userlist.txt\n\
                 pool_mode = transaction\ndefault_pool_size = {server_connections}\n\
                 max_client_conn = 500\nignore_startup_parameters = extra_float_digits\n\
                 server_reset_query =\nlogfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\n",
                server.get_port()
            ),
        )
        .unwrap();
        for file in ["userlist.txt", "pgbouncer.ini"] {
            std::fs::set_permissions(
                dir.path().join(file),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        let mut command = std::process::Command::new(binary);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            command.args(["-u", "postgres"]);
        }
        // Stopped by `Drop`, also when it never comes up.
        let pooler = Self {
            child: command
                .arg(dir.path().join("pgbouncer.ini"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("starting pgbouncer"),
            port,
            _dir: dir,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return pooler;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("pgbouncer did not listen on {port} within 5 s");
    }

    /// A URL for `database` as the application role through the pooler.
    pub fn app_url(&self, database: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{database}?sslmode=disable",
            cluster().app.get_username(),
            cluster().app_password,
            self.port
        )
    }

    /// The application role's options for `database` through the pooler.
    pub fn app_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username(cluster().app.get_username())
            .password(&cluster().app_password)
            .database(database)
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `pgbouncer` binary, installed from Debian's packages on first use.
fn pooler_binary() -> PathBuf {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let found = || {
                ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
                    .map(PathBuf::from)
                    .into_iter()
                    .find(|p| p.exists())
            };
            if let Some(path) = found() {
                return path;
            }
            let status = std::process::Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "pgbouncer"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .expect("running apt-get to install pgbouncer");
            assert!(status.success(), "apt-get install pgbouncer failed");
            found().expect("pgbouncer installed")
        })
        .clone()
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
