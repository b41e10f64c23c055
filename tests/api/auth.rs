//! Calls without valid credentials get UNAUTHENTICATED and run nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ladder::proto::v1::ListEvidenceRequest;
use serde_json::json;

use crate::harness::{self, TestServer};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn call_with(
    server: &TestServer,
    authorization: Option<String>,
) -> Result<(), tonic::Status> {
    let mut clients = server.clients_with(authorization).await;
    clients
        .assessment
        .list_evidence(ListEvidenceRequest {
            subject_id: "s1".into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

fn claims(exp_offset: i64) -> serde_json::Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    json!({
        "sub": "u", "tenant": "tenant-a", "aud": harness::AUDIENCE, "scope": "evidence:read",
        "exp": now + exp_offset,
    })
}

#[tokio::test]
async fn bad_credentials_are_unauthenticated() {
    let server = TestServer::start().await;
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims(3600).to_string().as_bytes())
    );
    let no_exp = harness::sign(
        harness::ISSUER_PRIVATE_KEY,
        json!({ "sub": "u", "tenant": "tenant-a" }),
    );
    let cases = [
        ("no token", None),
        ("not bearer", Some(format!("Basic {}", b64(b"user:pass")))),
        ("garbage", Some("Bearer not.a.jwt".to_string())),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                harness::sign(harness::ISSUER_PRIVATE_KEY, claims(-600))
            )),
        ),
        (
            "other key",
            Some(format!(
                "Bearer {}",
                harness::sign(harness::OTHER_PRIVATE_KEY, claims(3600))
            )),
        ),
        ("alg none", Some(format!("Bearer {alg_none}"))),
        ("no exp", Some(format!("Bearer {no_exp}"))),
    ];
    for (name, authorization) in cases {
        let status = call_with(&server, authorization).await.unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{name}: {status:?}"
        );
    }
}

#[tokio::test]
async fn a_valid_token_gets_through_to_the_method() {
    let server = TestServer::start().await;
    call_with(
        &server,
        Some(format!("Bearer {}", harness::token("tenant-a"))),
    )
    .await
    .expect("a valid token is accepted");
}

#[tokio::test]
async fn a_token_without_the_tenant_claim_is_unauthenticated() {
    let server = TestServer::start().await;
    let token = harness::sign(
        harness::ISSUER_PRIVATE_KEY,
        json!({
            "sub": "u", "aud": harness::AUDIENCE,
            "exp": jsonwebtoken::get_current_timestamp() + 600,
        }),
    );
    let status = call_with(&server, Some(format!("Bearer {token}")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("tenant"), "{}", status.message());
}

/// Keys from a JWKS document, chosen by the token's `kid`.
#[tokio::test]
async fn tokens_are_verified_against_a_jwks_by_kid() {
    use ladder::transport::auth::{Authenticator, JwtVerifier};
    // An Ed25519 SubjectPublicKeyInfo ends with the raw 32-byte key.
    let der: String = harness::ISSUER_PUBLIC_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .unwrap();
    let jwks = json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA", "use": "sig",
        "x": b64(&der[der.len() - 32..]),
    }]});
    let verifier =
        JwtVerifier::from_jwks(jwks.to_string().as_bytes(), harness::jwt_settings()).unwrap();
    let server = TestServer::start_with(Authenticator::Jwt(verifier)).await;
    let signed = |kid: &str| {
        let key =
            jsonwebtoken::EncodingKey::from_ed_pem(harness::ISSUER_PRIVATE_KEY.as_bytes()).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims(3600), &key).unwrap()
    };
    call_with(&server, Some(format!("Bearer {}", signed("k1"))))
        .await
        .expect("the key with the token's kid verifies it");
    let status = call_with(&server, Some(format!("Bearer {}", signed("k2"))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}
