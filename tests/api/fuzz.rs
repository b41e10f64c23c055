//! Arbitrary bytes sent as the request of every Ladder method, through the
//! real server: the wire check, decoding, validation and conversion must
//! answer every one with a status (never a panic, never a hang), and the
//! server must keep serving.
//!
//! Runs a few cases per method with the suite; for a longer run:
//! `PROPTEST_CASES=5000 cargo test --test api fuzz -- --nocapture`.

use std::sync::OnceLock;

use proptest::prelude::*;
use prost::bytes::{Buf, BufMut};
use prost_reflect::DescriptorPool;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::TestServer;

/// Bytes in, bytes out: the request goes to the server exactly as generated.
#[derive(Debug, Default, Clone)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// One unary call of `path` with `body` as its request bytes.
pub async fn call_raw(
    server: &TestServer,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(body);
    let bearer = format!("Bearer {}", crate::harness::token("tenant-fuzz"));
    request
        .metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    grpc.unary(
        request,
        http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

/// Every Ladder method's path.
pub fn methods() -> &'static [&'static str] {
    static METHODS: OnceLock<Vec<&'static str>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let pool = DescriptorPool::decode(ladder::proto::FILE_DESCRIPTOR_SET).unwrap();
        pool.services()
            .flat_map(|s| {
                s.methods()
                    .map(|m| &*format!("/{}/{}", s.full_name(), m.name()).leak())
                    .collect::<Vec<_>>()
            })
            .collect()
    })
}

#[test]
fn arbitrary_bytes_as_every_request_get_an_answer() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start());
    let config = ProptestConfig {
        cases: ProptestConfig::default().cases.min(24),
        ..ProptestConfig::default()
    };
    // PROPTEST_CASES, when set, overrides the small default above.
    let config = match std::env::var("PROPTEST_CASES") {
        Ok(_) => ProptestConfig::default(),
        Err(_) => config,
    };
    proptest!(config, |(
        method in 0..methods().len(),
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::collection::vec(any::<u8>(), 0..4096),
        ],
    )| {
        let path = methods()[method];
        let answer = runtime.block_on(call_raw(&server, path, body));
        if let Err(status) = answer {
            // A fault of the server itself would be INTERNAL or UNKNOWN.
            prop_assert!(
                !matches!(status.code(), Code::Internal | Code::Unknown),
                "{path}: {status:?}"
            );
        }
    });
    // Still serving.
    let status = runtime.block_on(async {
        HealthClient::new(server.channel().await)
            .check(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner()
            .status
    });
    assert_eq!(status, 1);
    drop(server);
}
