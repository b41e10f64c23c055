//! Health, reflection, the UNIMPLEMENTED answer, and how `ladder serve`
//! stops: the delay after SIGTERM, and an exit bounded by the grace.

use ladder::proto::v1::assessment_service_client::AssessmentServiceClient as AssessmentClient;
use ladder::proto::v1::rubric_service_client::RubricServiceClient as RubricClient;
use ladder::proto::v1::{ListRolesRequest, ListRolesResponse};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::harness::TestServer;

#[tokio::test]
async fn health_reports_serving_without_credentials() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in [
        "",
        "ladder.v1.RubricService",
        "ladder.v1.AssessmentService",
        "ladder.v1.RecommendationService",
        "ladder.v1.OversightService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_the_ladder_services_and_health() {
    let server = TestServer::start().await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "ladder.v1.RubricService",
        "ladder.v1.AssessmentService",
        "ladder.v1.RecommendationService",
        "ladder.v1.OversightService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

/// A method the server does not have answers UNIMPLEMENTED, not a crash.
#[tokio::test]
async fn an_unknown_method_answers_unimplemented() {
    let server = TestServer::start().await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(ListRolesRequest::default());
    let bearer = format!("Bearer {}", crate::harness::token("tenant-a"));
    request
        .metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    let err = grpc
        .unary(
            request,
            http::uri::PathAndQuery::from_static("/ladder.v1.RubricService/NoSuchMethod"),
            tonic_prost::ProstCodec::<ListRolesRequest, ListRolesResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");
}

/// A gRPC-Web call (HTTP/1.1, as a browser makes it) on the same port.
#[tokio::test]
async fn grpc_web_is_accepted_on_the_same_port() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // One gRPC-Web data frame: flag 0, length 0, an empty HealthCheckRequest.
    let frame = [0u8, 0, 0, 0, 0];
    let head = format!(
        "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        frame.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&frame).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("application/grpc-web"), "{text}");
    // The answer's data frame: flag 0, length 2, status SERVING (field 1 = 1).
    let serving = [0u8, 0, 0, 0, 2, 0x08, 0x01];
    assert!(
        response.windows(serving.len()).any(|w| w == serving),
        "{text}"
    );
    assert!(text.contains("grpc-status:0"), "{text}");
}

/// `ladder serve` as Kubernetes runs it, its stderr kept line by line.
struct Process {
    child: std::process::Child,
    addr: String,
    admin: Option<std::net::SocketAddr>,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `command` (made by `serve_url`) and waits until it listens,
    /// and with `--admin-listen` until its admin port does too.
    fn start(mut command: std::process::Command, admin: bool) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut addr, mut admin_addr) = (None, None);
        while addr.is_none() || (admin && admin_addr.is_none()) {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("serve exited before listening: {:?}", child.wait()))
                .unwrap();
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let at = event["addr"].as_str().map(String::from);
            match event["message"].as_str() {
                Some("ladder listening") => addr = at,
                Some("admin port listening") => admin_addr = at.and_then(|a| a.parse().ok()),
                _ => {}
            }
        }
        let kept: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
        let keeping = std::sync::Arc::clone(&kept);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keeping.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            addr: addr.unwrap(),
            admin: admin_addr,
            lines: kept,
        }
    }

    async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    fn terminate(&self) -> std::time::Instant {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        std::time::Instant::now()
    }

    /// Waits up to `limit` for the process to exit.
    async fn exit(self, limit: std::time::Duration) -> (std::process::ExitStatus, Vec<String>) {
        let Self {
            mut child, lines, ..
        } = self;
        let waited = tokio::task::spawn_blocking(move || {
            let until = std::time::Instant::now() + limit;
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    return Some(status);
                }
                if std::time::Instant::now() > until {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
        .await
        .unwrap();
        let lines = lines.lock().unwrap().clone();
        let status = waited.unwrap_or_else(|| {
            panic!("serve did not exit within {limit:?}:\n{}", lines.join("\n"))
        });
        (status, lines)
    }
}

async fn health_of(channel: tonic::transport::Channel) -> i32 {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status
}

/// `GET /readyz` on the admin port: its status code.
async fn readyz(admin: std::net::SocketAddr) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: ladder\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line")
}

/// `--shutdown-delay-ms`: after SIGTERM health says NOT_SERVING and
/// `/readyz` 503 at once, while calls, on old and new connections, are
/// still served until the delay ends; then the server drains and exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_the_delay_keeps_serving_calls_while_health_says_not_serving() {
    use std::time::Duration;
    let server = TestServer::start().await;
    let mut command = crate::cli::serve_url(&server.app_database_url());
    command.args([
        "--shutdown-delay-ms",
        "3000",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let process = Process::start(command, true);
    let admin = process.admin.unwrap();
    let channel = process.channel().await;
    let mut rubric = RubricClient::new(channel.clone());
    rubric
        .list_roles(ListRolesRequest::default())
        .await
        .unwrap();
    assert_eq!(
        health_of(channel.clone()).await,
        ServingStatus::Serving as i32
    );
    assert_eq!(readyz(admin).await, 200);

    let signalled = process.terminate();
    let mut polls = 0;
    while health_of(channel.clone()).await != ServingStatus::NotServing as i32 {
        polls += 1;
        assert!(polls < 100, "health still SERVING 1 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(readyz(admin).await, 503);
    // Calls are served: on the connection a client already has, and on a new one.
    rubric
        .list_roles(ListRolesRequest::default())
        .await
        .expect("a call during the delay is served");
    let mut fresh = RubricClient::new(process.channel().await);
    fresh
        .list_roles(ListRolesRequest::default())
        .await
        .expect("a call on a new connection during the delay is served");
    assert!(
        signalled.elapsed() < Duration::from_millis(2500),
        "the checks above took the whole delay ({:?})",
        signalled.elapsed()
    );
    let (status, lines) = process.exit(Duration::from_secs(20)).await;
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "serve exited with {status}:\n{}",
        lines.join("\n")
    );
    assert!(
        took >= Duration::from_millis(3000),
        "exited {took:?} after SIGTERM, before the delay ended"
    );
}

/// A TCP proxy in front of PostgreSQL that can freeze: while frozen it
/// forwards nothing either way, as a database server that has stopped
/// (or a network path that drops everything) looks to its clients.
#[derive(Clone)]
struct FreezableProxy {
    frozen: tokio::sync::watch::Sender<bool>,
}

impl FreezableProxy {
    async fn start(upstream: crate::harness::PgAddress) -> (Self, std::net::SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Self {
            frozen: tokio::sync::watch::Sender::new(false),
        };
        let upstream = std::sync::Arc::new(upstream);
        let frozen = proxy.frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = std::sync::Arc::clone(&upstream);
                let frozen = frozen.clone();
                tokio::spawn(async move {
                    let (client_read, client_write) = client.into_split();
                    match &*upstream {
                        crate::harness::PgAddress::Unix(path) => {
                            let server = tokio::net::UnixStream::connect(path).await.unwrap();
                            let (server_read, server_write) = server.into_split();
                            tokio::join!(
                                Self::pump(client_read, server_write, frozen.subscribe()),
                                Self::pump(server_read, client_write, frozen.subscribe()),
                            );
                        }
                        crate::harness::PgAddress::Tcp(at) => {
                            let server = tokio::net::TcpStream::connect(at).await.unwrap();
                            let (server_read, server_write) = server.into_split();
                            tokio::join!(
                                Self::pump(client_read, server_write, frozen.subscribe()),
                                Self::pump(server_read, client_write, frozen.subscribe()),
                            );
                        }
                    }
                });
            }
        });
        (proxy, addr)
    }

    /// Copies `from` to `to`, holding every chunk while frozen.
    async fn pump(
        mut from: impl tokio::io::AsyncRead + Unpin,
        mut to: impl tokio::io::AsyncWrite + Unpin,
        mut frozen: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = vec![0u8; 64 << 10];
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if frozen.wait_for(|frozen| !*frozen).await.is_err() {
                break;
            }
            if to.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

/// The exit is bounded by the grace: with the database frozen under a
/// running call (a proxy in front of it stops forwarding anything), the call
/// is cancelled at the grace and the process exits a few seconds later,
/// instead of waiting for the database to let its connections go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_exits_soon_after_the_grace_even_if_the_database_is_frozen() {
    use std::time::Duration;
    let server = TestServer::start().await;
    let (proxy, at) = FreezableProxy::start(server.postgres_address()).await;
    let mut command = crate::cli::serve_url(&server.app_database_url_via(at));
    command.args(["--shutdown-grace-ms", "1000"]);
    let process = Process::start(command, false);
    let mut rubric = RubricClient::new(process.channel().await);
    rubric
        .list_roles(ListRolesRequest::default())
        .await
        .unwrap();
    proxy.freeze(true);
    let mut assessment = AssessmentClient::new(process.channel().await);
    let call = tokio::spawn(async move {
        let observed = chrono::Utc::now() - chrono::Duration::days(1);
        let mut request = tonic::Request::new(ladder::proto::v1::BatchCreateEvidenceRequest {
            evidence: vec![crate::harness::evidence(
                "emp-1",
                "system_design",
                3.0,
                ladder::proto::v1::EvidenceSource::Peer,
                observed,
                "frozen",
            )],
        });
        request.set_timeout(Duration::from_secs(120));
        assessment.batch_create_evidence(request).await
    });
    // The call is in the database (or waiting for it) by now.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = process.terminate();
    let (status, lines) = process.exit(Duration::from_secs(40)).await;
    let took = signalled.elapsed();
    proxy.freeze(false);
    let log = lines.join("\n");
    assert!(status.success(), "serve exited with {status}:\n{log}");
    // The grace (1 s), then at most 1 s to close the clients' connections,
    // 1 s to close the pool, 2 s to flush traces, 0.5 s for the runtime.
    assert!(
        took < Duration::from_millis(1000 + 4500 + 500),
        "exited {took:?} after SIGTERM:\n{log}"
    );
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
}
