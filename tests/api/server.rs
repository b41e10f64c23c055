//! Health, reflection and the UNIMPLEMENTED answer.

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
