//! `ladder serve` as a process: the embedded cluster's lifecycle and the
//! refusals that must happen before anything starts.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{TestServer, ladder_bin, traversable_temp_dir};

fn serve(data_dir: &Path) -> Command {
    let mut cmd = Command::new(ladder_bin());
    cmd.args([
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--data-dir",
    ])
    .arg(data_dir)
    .env_remove("DATABASE_URL")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

/// A running `ladder serve`, stopped with SIGTERM when dropped (a failing
/// test must not leave its PostgreSQL behind).
pub(crate) struct Serving(Option<Child>);

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            terminate(child);
        }
    }
}

/// `ladder serve --dev` on the database behind `url`, not migrating it.
pub(crate) fn serve_url(url: &str) -> Command {
    let mut cmd = Command::new(ladder_bin());
    cmd.args([
        "serve",
        "--dev",
        "--no-migrate",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--database-url",
        url,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

/// Starts `ladder serve` and waits for its "listening" log line.
fn start_serving(data_dir: &Path) -> (Serving, String) {
    start(serve(data_dir))
}

pub(crate) fn start(mut command: Command) -> (Serving, String) {
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("serve exited before listening: {:?}", child.wait()))
            .unwrap();
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && event["message"] == "ladder listening"
        {
            break event["addr"].as_str().unwrap().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Serving(Some(child)), addr)
}

fn terminate(mut child: Child) {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    if !std::thread::panicking() {
        assert!(status.success(), "serve exited with {status}");
    }
}

async fn health(addr: &str) -> i32 {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

fn embedded_options(data_dir: &Path, user: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .socket(data_dir.join("pgdata"))
        .port(ladder::app::embedded_pg::SOCKET_PORT)
        .username(user)
        .database("ladder")
}

/// A connection as the cluster's superuser, with the password kept in the
/// data directory.
async fn embedded_connection(data_dir: &Path) -> PgConnection {
    let password = std::fs::read_to_string(data_dir.join("superuser.password")).unwrap();
    let options =
        embedded_options(data_dir, ladder::app::embedded_pg::SUPERUSER).password(&password);
    PgConnection::connect_with(&options).await.unwrap()
}

#[tokio::test]
async fn serve_creates_reuses_and_guards_its_embedded_cluster() {
    let tmp = traversable_temp_dir();
    let data_dir = tmp.path().join("data");

    let (first, addr) = start_serving(&data_dir);
    assert_eq!(health(&addr).await, ServingStatus::Serving as i32);
    the_cluster_takes_passwords_only(&data_dir).await;
    let mut conn = embedded_connection(&data_dir).await;
    sqlx::raw_sql("CREATE TABLE restart_marker (x int); INSERT INTO restart_marker VALUES (42)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    // A second instance on the same directory fails at once, saying why.
    let second = serve(&data_dir).output().unwrap();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(message.contains("already in use"), "{message}");

    drop(first);
    assert!(
        !data_dir.join("pgdata/postmaster.pid").exists(),
        "PostgreSQL still running"
    );

    // Started again, it reuses the same cluster and data.
    let (again, addr) = start_serving(&data_dir);
    assert_eq!(health(&addr).await, ServingStatus::Serving as i32);
    let mut conn = embedded_connection(&data_dir).await;
    let marker: i32 = sqlx::query_scalar("SELECT x FROM restart_marker")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(marker, 42);
    conn.close().await.unwrap();
    drop(again);
    assert!(
        !data_dir.join("pgdata/postmaster.pid").exists(),
        "PostgreSQL still running"
    );
}

/// Reaching the socket is not enough: every role needs its password, the
/// passwords are readable by their owner only, and the server is connected
/// as the application role, which is no superuser and cannot bypass
/// row-level security.
async fn the_cluster_takes_passwords_only(data_dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for role in [ladder::app::embedded_pg::SUPERUSER, "ladder_app"] {
        let err = PgConnection::connect_with(&embedded_options(data_dir, role))
            .await
            .expect_err(role);
        assert!(err.to_string().contains("password"), "{role}: {err}");
    }
    for file in ["superuser.password", "app.password"] {
        let mode = std::fs::metadata(data_dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let mut conn = embedded_connection(data_dir).await;
    let (superuser, bypass, served): (bool, bool, i64) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls, \
         (SELECT count(*) FROM pg_stat_activity WHERE usename = 'ladder_app') \
         FROM pg_roles WHERE rolname = 'ladder_app'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!superuser && !bypass);
    assert!(served > 0, "the server is connected as ladder_app");
    conn.close().await.unwrap();
}

#[test]
fn serve_without_postgresql_says_how_to_install_it() {
    let tmp = traversable_temp_dir();
    let empty = tmp.path().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let out = serve(&tmp.path().join("data"))
        .arg("--pg-bin-dir")
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("apt-get install postgresql"), "{message}");
}

#[test]
fn serve_without_keys_and_without_dev_refuses_to_start() {
    let out = Command::new(ladder_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
        .env_remove("LADDER_DEV")
        .env_remove("LADDER_JWT_PUBLIC_KEY")
        .env_remove("LADDER_JWT_JWKS")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("--jwt-public-key") && message.contains("--dev"),
        "{message}"
    );
}

#[test]
fn serve_without_a_jwt_audience_refuses_to_start() {
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/issuer.pub.pem");
    let out = Command::new(ladder_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
        .args(["--jwt-public-key", key])
        .env_remove("LADDER_DEV")
        .env_remove("LADDER_JWT_AUDIENCE")
        .env_remove("LADDER_JWT_ANY_AUDIENCE")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("--jwt-audience") && message.contains("--jwt-any-audience"),
        "{message}"
    );
}

/// With --database-url, `serve` refuses a role that row-level security does
/// not bind, saying why, unless told to run anyway; the application role
/// serves.
#[tokio::test]
async fn serve_refuses_a_privileged_database_role() {
    let server = TestServer::start().await;
    let out = serve_url(&server.database_url()).output().unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("superuser") && message.contains("--allow-privileged-database-role"),
        "{message}"
    );
    let mut anyway = serve_url(&server.database_url());
    anyway.arg("--allow-privileged-database-role");
    let (privileged, addr) = start(anyway);
    assert_eq!(health(&addr).await, ServingStatus::Serving as i32);
    stop(privileged).await;
    let (app, addr) = start(serve_url(&server.app_database_url()));
    assert_eq!(health(&addr).await, ServingStatus::Serving as i32);
    stop(app).await;
}

/// Stops a server while this runtime keeps running, so that the health
/// client's connection can close and the server's drain end.
pub(crate) async fn stop(serving: Serving) {
    tokio::task::spawn_blocking(move || drop(serving))
        .await
        .unwrap();
}
