//! What the API tests (`tests/api/harness.rs`) and `ladder-bench`
//! (`src/bin/ladder_bench/`) share: the PostgreSQL server they run against (a
//! throwaway embedded cluster, or the one behind DATABASE_URL), the keys and
//! JWT settings of their servers, token minting, the server itself on a
//! loopback port, and the `TEST_LOG=1` switch that prints its logs.

use std::net::SocketAddr;
use std::path::Path;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ladder::app::embedded_pg::{EmbeddedConfig, EmbeddedPostgres};
use ladder::app::server;
use ladder::app::telemetry::{self, LogFormat};
use ladder::transport::AppState;
use ladder::transport::auth::{Audience, Authenticator, JwtSettings, JwtVerifier};
use sqlx::postgres::PgConnectOptions;

pub const ISSUER_PRIVATE_KEY: &str = include_str!("../keys/issuer.key.pem");
pub const ISSUER_PUBLIC_KEY: &str = include_str!("../keys/issuer.pub.pem");
pub const OTHER_PRIVATE_KEY: &str = include_str!("../keys/other.key.pem");

/// The audience the test servers require in every token.
pub const AUDIENCE: &str = "ladder-test";

/// How the servers read tokens: the tenant in `tenant`, scopes in `scope`.
pub fn jwt_settings() -> JwtSettings {
    JwtSettings {
        issuer: None,
        audience: Audience::Required(AUDIENCE.into()),
        tenant_claim: "tenant".into(),
        scopes_claim: "scope".into(),
        allow_symmetric_keys: false,
    }
}

/// Bearer JWTs signed with the issuer key, as the servers are set to take them.
pub fn authenticator() -> Authenticator {
    let verifier = JwtVerifier::from_pem(ISSUER_PUBLIC_KEY.as_bytes(), jwt_settings())
        .expect("the issuer public key");
    Authenticator::Jwt(verifier)
}

/// Signs arbitrary claims with an Ed25519 private key in PEM form.
pub fn sign(private_pem: &str, claims: serde_json::Value) -> String {
    let key = EncodingKey::from_ed_pem(private_pem.as_bytes()).expect("test key");
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).expect("signing")
}

/// A token for `tenant` with every scope (`admin`), valid for
/// `lifetime_secs`, from `sub`.
pub fn token(sub: &str, tenant: &str, lifetime_secs: u64) -> String {
    sign(
        ISSUER_PRIVATE_KEY,
        serde_json::json!({
            "sub": sub,
            "tenant": tenant,
            "aud": AUDIENCE,
            "scope": "admin",
            "exp": jsonwebtoken::get_current_timestamp() + lifetime_secs,
        }),
    )
}

/// A time as protobuf carries it.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// With `TEST_LOG=1`, the servers' logs go to stderr as text.
pub fn init_test_log() {
    if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
        telemetry::init(LogFormat::Text).expect("the test log");
    }
}

/// An embedded cluster in a temporary directory, removed with it.
pub struct Throwaway {
    cluster: EmbeddedPostgres,
    dir: tempfile::TempDir,
}

impl Throwaway {
    /// Stops the cluster and removes its directory.
    pub fn remove(self) {
        if let Err(e) = self.cluster.stop() {
            eprintln!("stopping the throwaway cluster: {e}");
        }
        drop(self.dir);
    }
}

/// A PostgreSQL server to run against.
pub struct PgServer {
    /// As its owner, a role that may create databases and roles.
    pub owner: PgConnectOptions,
    /// The owner's password (empty when DATABASE_URL carries it).
    pub owner_password: String,
    /// The password the application role gets.
    pub app_password: String,
}

/// The PostgreSQL server to run against: DATABASE_URL when set, else a
/// throwaway cluster under `/tmp/<prefix>…` (after removing those left by
/// killed runs with the same prefix).
pub fn postgres_server(prefix: &str) -> (PgServer, Option<Throwaway>) {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let server = PgServer {
            owner: url.parse().expect("DATABASE_URL is not a PostgreSQL URL"),
            owner_password: String::new(),
            app_password: uuid::Uuid::new_v4().simple().to_string(),
        };
        return (server, None);
    }
    remove_abandoned_clusters(prefix);
    // Under /tmp and world-traversable: as root the cluster runs as `postgres`,
    // which must reach the data directory.
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("temp dir");
    let cluster = EmbeddedPostgres::start(&EmbeddedConfig::throwaway(dir.path().join("data")))
        .expect("starting the throwaway PostgreSQL cluster");
    let server = PgServer {
        owner: server::embedded_options(&cluster).expect("the superuser's password"),
        owner_password: cluster
            .superuser_password()
            .expect("the superuser's password"),
        app_password: cluster
            .app_password()
            .expect("the application role's password"),
    };
    (server, Some(Throwaway { cluster, dir }))
}

/// Makes the application role `ladder_app` log in with `password` on the
/// server behind `owner`, and returns `owner`'s options as that role.
pub async fn app_role(owner: &PgConnectOptions, password: &str) -> PgConnectOptions {
    ladder::storage::database_role::ensure_app_role(owner, password)
        .await
        .expect("creating the application role");
    owner
        .clone()
        .username(ladder::storage::database_role::APP_ROLE)
        .password(password)
}

/// Removes the clusters of earlier runs that were killed before they could
/// remove their own: a cluster's `ladder.lock` is free once the process
/// that used it is gone, and its postmaster is then nobody's.
fn remove_abandoned_clusters(prefix: &str) {
    use std::os::fd::AsRawFd;
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for dir in entries.flatten().map(|e| e.path()) {
        let ours = dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(prefix));
        let lock_path = dir.join("data/ladder.lock");
        // A process starting up right now creates its lock file before it
        // takes the lock: young clusters are left alone, and never locked.
        let old = std::fs::metadata(&lock_path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default().as_secs() >= 60);
        if !ours || !old {
            continue;
        }
        let Ok(lock) = std::fs::File::open(&lock_path) else {
            continue;
        };
        // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        stop_postmaster(&dir.join("data/pgdata"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Stops the postmaster of `pgdata` if one still runs there. The pid file may
/// outlive its process and the pid be someone else's by now, so the process
/// is signalled only if it works in that very directory.
fn stop_postmaster(pgdata: &Path) {
    let Some(pid) = std::fs::read_to_string(pgdata.join("postmaster.pid"))
        .ok()
        .and_then(|pid| pid.lines().next()?.trim().parse::<libc::pid_t>().ok())
        .filter(|&pid| pid > 1)
    else {
        return;
    };
    let runs_here = |pid: libc::pid_t| {
        std::fs::read_link(format!("/proc/{pid}/cwd"))
            .is_ok_and(|cwd| std::fs::canonicalize(pgdata).is_ok_and(|dir| cwd == dir))
    };
    if !runs_here(pid) {
        return;
    }
    // SIGQUIT: immediate shutdown; the data is thrown away anyway.
    // SAFETY: signals a process by pid; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    for _ in 0..50 {
        if !runs_here(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The real server, in-process on a loopback port.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Serves `state` on an ephemeral loopback port until stopped; returns once
/// the server answers its health check, so that a test never ends while the
/// server is still starting (a connection it was opening would stay halfway
/// through authentication and hold up dropping the test's database).
pub async fn serve(state: AppState, auth: Authenticator) -> Running {
    init_test_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = server::run(listener, None, state, auth, shutdown).await {
            eprintln!("server failed: {e}");
        }
    });
    wait_until_serving(addr).await;
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

async fn wait_until_serving(addr: SocketAddr) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
    for _ in 0..1000 {
        if let Ok(channel) = endpoint.connect().await {
            let answer = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await;
            if answer.is_ok_and(|a| a.into_inner().status == ServingStatus::Serving as i32) {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the server on {addr} did not start serving within 10 s");
}

impl Running {
    /// Tells the server to drain and stop, without waiting for it.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        self.signal_stop();
        self.task.await.expect("server task");
    }
}
