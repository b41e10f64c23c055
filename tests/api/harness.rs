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

impl Clients {
    /// Records `subject` as holding `role`, so that questions about it are
    /// about someone (a subject never recorded is NOT_FOUND).
    pub async fn record_subject(&mut self, subject: &str, role: &str) {
        self.assessment
            .update_subject(ladder::proto::v1::UpdateSubjectRequest {
                subject: Some(ladder::proto::v1::Subject {
                    id: subject.into(),
                    current_role_id: role.into(),
                    ..Default::default()
                }),
                allow_missing: true,
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// The published version of `role`'s rubric.
    pub async fn published_rubric(&mut self, role: &str) -> ladder::proto::v1::Rubric {
        self.rubric
            .get_rubric(ladder::proto::v1::GetRubricRequest {
                role_id: role.into(),
                version: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .rubric
            .unwrap()
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

    /// Ends every session of the test's database but the test's own, as a
    /// failover or a restart of PostgreSQL cuts them: the servers' pools,
    /// health probes and listeners must connect again.
    pub async fn end_app_sessions(&self) {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND usename <> current_user",
        )
        .execute(&self.pool)
        .await
        .unwrap();
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
            let apt = |args: &[&str]| {
                std::process::Command::new("apt-get")
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .expect("running apt-get to install pgbouncer")
                    .success()
            };
            let install = ["install", "-y", "--no-install-recommends", "pgbouncer"];
            // A fresh machine may not have the package lists yet.
            let installed = apt(&install) || (apt(&["update"]) && apt(&install));
            assert!(installed, "apt-get install pgbouncer failed");
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

impl TestServer {
    /// A server on `database` of a server of the test's own (not the
    /// shared cluster's): as the application role `app`, reading from
    /// `replica` when given (its options and lag bound); `owner` is the
    /// test's look behind the API. The database is left to its cluster.
    pub async fn on(
        database: &str,
        app: PgConnectOptions,
        owner: PgConnectOptions,
        replica: Option<(PgConnectOptions, std::time::Duration)>,
    ) -> Self {
        let mut db = Db::connect(app.database(database), 4)
            .await
            .expect("connecting to the primary");
        if let Some((options, max_lag)) = replica {
            db = db
                .with_read_replica(options.database(database), 4, max_lag)
                .await
                .expect("adding the read replica");
        }
        let state = AppState::new(db);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(owner.database(database))
            .await
            .expect("connecting to the primary as its owner");
        let running = shared::serve(state.clone(), shared::authenticator()).await;
        Self {
            addr: running.addr,
            pool,
            database: database.into(),
            owns_database: false,
            state,
            running,
        }
    }
}

/// A primary of the test's own and a hot standby streaming from it, made
/// as an operator makes one: `pg_basebackup -R` of the primary (which lets
/// its superuser replicate over its socket), started with `hot_standby` on
/// its own data directory, socket directory and port. The primary is an
/// embedded cluster like the shared one, with the database `ladder`
/// migrated and the application role; both stop with the value. (The
/// shared cluster is left alone: pausing a standby's replay must not touch
/// other tests.)
pub struct ReplicatedPair {
    primary: Option<ladder::app::embedded_pg::EmbeddedPostgres>,
    standby_dir: PathBuf,
    bin_dir: PathBuf,
    /// The primary's superuser.
    pub owner: PgConnectOptions,
    /// The primary as the application role.
    pub app: PgConnectOptions,
    app_password: String,
    _dir: tempfile::TempDir,
}

/// The database the pair's servers serve.
pub const REPLICATED_DATABASE: &str = "ladder";
const STANDBY_PORT: u16 = 5433;

/// `(uid, gid)` of `postgres` when the tests run as root (PostgreSQL
/// refuses to run as root), else none.
fn cluster_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    // SAFETY: getpwnam returns static storage or null; the ids are copied out at once.
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    assert!(!entry.is_null(), "no `postgres` user to run PostgreSQL as");
    Some(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

impl ReplicatedPair {
    pub async fn start() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = traversable_temp_dir();
        let primary_dir = dir.path().join("primary");
        let primary = tokio::task::spawn_blocking(move || {
            ladder::app::embedded_pg::EmbeddedPostgres::start(
                &ladder::app::embedded_pg::EmbeddedConfig::throwaway(primary_dir),
            )
        })
        .await
        .unwrap()
        .expect("starting the primary");
        let owner = ladder::app::server::embedded_options(&primary).unwrap();
        let password = primary.superuser_password().unwrap();
        // Replication connections of its superuser over the socket.
        let hba = primary.socket_dir().join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).unwrap();
        rules.push_str("local replication ladder scram-sha-256\n");
        std::fs::write(&hba, rules).unwrap();
        let mut conn = PgConnection::connect_with(&owner.clone().database("postgres"))
            .await
            .unwrap();
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        let app_password = primary.app_password().unwrap();
        let app = shared::app_role(&owner, &app_password).await;
        ladder::storage::ensure_database(&owner, REPLICATED_DATABASE)
            .await
            .unwrap();
        let db = Db::connect(owner.clone().database(REPLICATED_DATABASE), 2)
            .await
            .unwrap();
        db.migrate().await.expect("migrating the primary");
        db.close().await;

        let bin_dir = ladder::app::embedded_pg::find_bin_dir(None).unwrap();
        let standby_dir = dir.path().join("standby");
        std::fs::create_dir(&standby_dir).unwrap();
        std::fs::set_permissions(&standby_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        if let Some((uid, gid)) = cluster_user() {
            std::os::unix::fs::chown(&standby_dir, Some(uid), Some(gid)).unwrap();
        }
        let primary_conninfo = format!(
            "host={} port={} user={} password={password}",
            primary.socket_dir().display(),
            ladder::app::embedded_pg::SOCKET_PORT,
            ladder::app::embedded_pg::SUPERUSER,
        );
        let pair = Self {
            primary: Some(primary),
            standby_dir,
            bin_dir,
            owner,
            app,
            app_password,
            _dir: dir,
        };
        let standby = pair.standby_dir.display().to_string();
        pair.run(
            "pg_basebackup",
            &[
                "-D",
                &standby,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
                "-d",
                &primary_conninfo,
            ],
        );
        let conf = pair.standby_dir.join("postgresql.conf");
        let mut settings = std::fs::read_to_string(&conf).unwrap();
        settings.push_str(&format!(
            "\n# The standby's own\nport = {STANDBY_PORT}\nunix_socket_directories = '{standby}'\nhot_standby = on\n"
        ));
        std::fs::write(&conf, settings).unwrap();
        let log = pair.standby_dir.join("server.log").display().to_string();
        pair.run(
            "pg_ctl",
            &["-D", &standby, "-l", &log, "-w", "-t", "60", "start"],
        );
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&mut pair.standby_connection().await)
            .await
            .unwrap();
        assert!(in_recovery, "the standby is not in recovery");
        pair
    }

    /// Runs one of PostgreSQL's programs as the cluster's user.
    fn run(&self, program: &str, args: &[&str]) {
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new(self.bin_dir.join(program));
        command.args(args).current_dir("/");
        if let Some((uid, gid)) = cluster_user() {
            command.uid(uid).gid(gid);
        }
        let output = command.output().expect("running a PostgreSQL program");
        assert!(
            output.status.success(),
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A URL of the pair's database as the application role, on the
    /// standby or the primary, for running the `ladder` binary.
    pub fn app_url(&self, standby: bool) -> String {
        let options = if standby {
            self.standby_app()
        } else {
            self.app.clone()
        };
        format!(
            "postgres://{}:{}@localhost:{}/{REPLICATED_DATABASE}?host={}",
            options.get_username(),
            self.app_password,
            options.get_port(),
            options.get_socket().expect("a socket").display()
        )
    }

    /// The standby as the application role.
    pub fn standby_app(&self) -> PgConnectOptions {
        self.app
            .clone()
            .socket(&self.standby_dir)
            .port(STANDBY_PORT)
    }

    /// A connection to the standby as its superuser.
    pub async fn standby_connection(&self) -> PgConnection {
        let options = self
            .owner
            .clone()
            .socket(&self.standby_dir)
            .port(STANDBY_PORT)
            .database(REPLICATED_DATABASE);
        PgConnection::connect_with(&options)
            .await
            .expect("connecting to the standby")
    }

    /// Pauses the standby's replay (`pg_wal_replay_pause()`) and waits
    /// until it is paused.
    pub async fn pause_replay(&self) {
        let mut conn = self.standby_connection().await;
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut conn)
            .await
            .unwrap();
        for _ in 0..500 {
            let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            if state == "paused" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the standby's replay did not pause");
    }

    /// Resumes the standby's replay and waits until it has replayed
    /// everything the primary has written so far.
    pub async fn resume_replay(&self) {
        let mut conn = self.standby_connection().await;
        sqlx::query("SELECT pg_wal_replay_resume()")
            .execute(&mut conn)
            .await
            .unwrap();
        self.wait_for_replay().await;
    }

    /// Waits until the standby has replayed everything the primary has
    /// written so far.
    pub async fn wait_for_replay(&self) {
        let mut primary = PgConnection::connect_with(&self.owner.clone().database("postgres"))
            .await
            .unwrap();
        // The insert position, not the write position: with asynchronous
        // commits the last commit record may still be in WAL buffers, so the
        // standby can reach the write position without having replayed it.
        let written: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut primary)
            .await
            .unwrap();
        let mut standby = self.standby_connection().await;
        for _ in 0..1000 {
            let caught_up: bool =
                sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                    .bind(&written)
                    .fetch_one(&mut standby)
                    .await
                    .unwrap();
            if caught_up {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the standby did not replay up to {written} within 10 s");
    }

    /// Stops the standby (immediately: as a crash or a cut network).
    pub fn stop_standby(&self) {
        let standby = self.standby_dir.display().to_string();
        if self.standby_dir.join("postmaster.pid").exists() {
            self.run("pg_ctl", &["-D", &standby, "-m", "immediate", "-w", "stop"]);
        }
    }

    /// A server on the pair's primary, reading from the standby while it
    /// lags at most `max_lag`.
    pub async fn server(&self, max_lag: std::time::Duration) -> TestServer {
        TestServer::on(
            REPLICATED_DATABASE,
            self.app.clone(),
            self.owner.clone(),
            Some((self.standby_app(), max_lag)),
        )
        .await
    }

    /// A server on the pair's primary without a replica.
    pub async fn primary_server(&self) -> TestServer {
        TestServer::on(
            REPLICATED_DATABASE,
            self.app.clone(),
            self.owner.clone(),
            None,
        )
        .await
    }
}

impl Drop for ReplicatedPair {
    fn drop(&mut self) {
        self.stop_standby();
        if let Some(primary) = self.primary.take()
            && let Err(e) = primary.stop()
        {
            eprintln!("stopping the replicated pair's primary: {e}");
        }
    }
}

/// `ladder serve --dev` as a process on the test's database, every log line
/// it writes (at trace level) captured, stopped with SIGTERM when dropped.
pub struct LoggedServer {
    child: Option<std::process::Child>,
    addr: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl LoggedServer {
    pub fn start(database_url: &str) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(ladder_bin())
            .args([
                "serve",
                "--dev",
                "--no-migrate",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(["--database-url", database_url])
            .env("RUST_LOG", "trace")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let addr = loop {
            let line = lines
                .next()
                .expect("serve exited before listening")
                .unwrap();
            captured.lock().unwrap().push(line.clone());
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["fields"]["message"] == "ladder listening"
            {
                break event["fields"]["addr"].as_str().unwrap().to_string();
            }
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "ladder listening"
            {
                break event["addr"].as_str().unwrap().to_string();
            }
        };
        let sink = std::sync::Arc::clone(&captured);
        let reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child: Some(child),
            addr,
            lines: captured,
            reader: Some(reader),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and returns everything it logged. The wait runs off
    /// the test's runtime: the server drains its connections, and this
    /// test's own connection answers only while that runtime runs.
    /// What it has logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub async fn stop(mut self) -> Vec<String> {
        let (child, reader) = (self.child.take(), self.reader.take());
        tokio::task::spawn_blocking(move || terminate(child, reader))
            .await
            .unwrap();
        self.lines.lock().unwrap().clone()
    }
}

fn terminate(child: Option<std::process::Child>, reader: Option<std::thread::JoinHandle<()>>) {
    if let Some(mut child) = child {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap();
    }
    if let Some(reader) = reader {
        reader.join().unwrap();
    }
}

impl Drop for LoggedServer {
    /// A failing test does not leave its server running.
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
