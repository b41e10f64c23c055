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
    let jwks =
        json!({ "keys": [issuer_jwk(json!({ "kid": "k1", "alg": "EdDSA", "use": "sig" }))] });
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

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn bearer(claims: serde_json::Value) -> Option<String> {
    Some(format!(
        "Bearer {}",
        harness::sign(harness::ISSUER_PRIVATE_KEY, claims)
    ))
}

/// RFC 8725's checks, each refused with UNAUTHENTICATED before any handler.
#[tokio::test]
async fn tokens_failing_rfc_8725_checks_are_unauthenticated() {
    let server = TestServer::start().await;
    let valid = claims(3600);
    let with = |key: &str, value: serde_json::Value| {
        let mut claims = valid.clone();
        claims[key] = value;
        claims
    };
    let without = |key: &str| {
        let mut claims = valid.clone();
        claims.as_object_mut().unwrap().remove(key);
        claims
    };
    // HS256 "signed" with the issuer's public key, which everyone has.
    let hs256_with_public_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &valid,
        &jsonwebtoken::EncodingKey::from_secret(harness::ISSUER_PUBLIC_KEY.as_bytes()),
    )
    .unwrap();
    let cases = [
        ("nbf in the future", bearer(with("nbf", json!(now() + 600)))),
        ("iat in the future", bearer(with("iat", json!(now() + 600)))),
        (
            "foreign audience",
            bearer(with("aud", json!("another-service"))),
        ),
        ("no audience", bearer(without("aud"))),
        (
            "hs256 with the public key",
            Some(format!("Bearer {hs256_with_public_key}")),
        ),
        (
            "tenant with a space",
            bearer(with("tenant", json!("tenant a"))),
        ),
        (
            "tenant with a slash",
            bearer(with("tenant", json!("../tenant-a"))),
        ),
        (
            "tenant too long",
            bearer(with("tenant", json!("t".repeat(64)))),
        ),
        ("tenant not a string", bearer(with("tenant", json!(42)))),
    ];
    for (name, authorization) in cases {
        let status = call_with(&server, authorization).await.unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{name}: {status:?}"
        );
    }
    // Within the leeway of a skewed clock, and with the longest tenant id.
    for (name, claims) in [
        ("nbf 30 s ahead", with("nbf", json!(now() + 30))),
        ("iat 30 s ahead", with("iat", json!(now() + 30))),
        ("63-character tenant", with("tenant", json!("t".repeat(63)))),
    ] {
        call_with(&server, bearer(claims))
            .await
            .unwrap_or_else(|s| panic!("{name}: {s:?}"));
    }
}

/// The issuer's Ed25519 public key as a JWK with `extra` members (an
/// Ed25519 SubjectPublicKeyInfo ends with the raw 32-byte key).
fn issuer_jwk(extra: serde_json::Value) -> serde_json::Value {
    let der: String = harness::ISSUER_PUBLIC_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .unwrap();
    let mut jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(&der[der.len() - 32..]) });
    for (k, v) in extra.as_object().unwrap() {
        jwk[k] = v.clone();
    }
    jwk
}

fn signed_with_kid(kid: &str) -> String {
    let key =
        jsonwebtoken::EncodingKey::from_ed_pem(harness::ISSUER_PRIVATE_KEY.as_bytes()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims(3600), &key).unwrap()
}

/// A JWK's `use`, `key_ops` and `alg` are honoured; symmetric keys are
/// refused unless allowed.
#[tokio::test]
async fn a_jwks_keys_are_used_only_as_they_say() {
    use ladder::transport::auth::{Authenticator, JwtVerifier};
    let jwks = json!({ "keys": [
        issuer_jwk(json!({ "kid": "sig", "use": "sig", "alg": "EdDSA" })),
        issuer_jwk(json!({ "kid": "enc", "use": "enc" })),
        issuer_jwk(json!({ "kid": "encrypt-only", "key_ops": ["encrypt"] })),
        issuer_jwk(json!({ "kid": "rsa-only", "alg": "RS256" })),
    ]});
    let verifier =
        JwtVerifier::from_jwks(jwks.to_string().as_bytes(), harness::jwt_settings()).unwrap();
    let server = TestServer::start_with(Authenticator::Jwt(verifier)).await;
    call_with(&server, Some(format!("Bearer {}", signed_with_kid("sig"))))
        .await
        .expect("a signature key for its algorithm");
    for kid in ["enc", "encrypt-only", "rsa-only", "not-in-the-set"] {
        let status = call_with(&server, Some(format!("Bearer {}", signed_with_kid(kid))))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{kid}");
    }
    let symmetric = json!({ "keys": [{ "kty": "oct", "kid": "h", "k": b64(b"shared secret") }] });
    let err = JwtVerifier::from_jwks(symmetric.to_string().as_bytes(), harness::jwt_settings())
        .unwrap_err();
    assert!(err.contains("symmetric"), "{err}");
    let mut allowed = harness::jwt_settings();
    allowed.allow_symmetric_keys = true;
    JwtVerifier::from_jwks(symmetric.to_string().as_bytes(), allowed).expect("allowed explicitly");
}

/// Keys rotate by rewriting the JWKS file; the server reads it again
/// without a restart, and a withdrawn key stops verifying, even tokens it
/// verified before.
#[tokio::test]
async fn a_rewritten_jwks_file_takes_effect_without_a_restart() {
    use ladder::transport::auth::{Authenticator, JwtVerifier};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let write = |kid: &str| {
        let jwks = json!({ "keys": [issuer_jwk(json!({ "kid": kid, "use": "sig" }))] });
        std::fs::write(&path, jwks.to_string()).unwrap();
    };
    write("old");
    let verifier = JwtVerifier::from_jwks_file(path.clone(), harness::jwt_settings()).unwrap();
    let server = TestServer::start_with(Authenticator::Jwt(verifier)).await;
    let (old, new) = (signed_with_kid("old"), signed_with_kid("new"));
    call_with(&server, Some(format!("Bearer {old}")))
        .await
        .expect("the old key");
    write("new");
    // The file is looked at again at most once a second.
    let mut accepted = false;
    for _ in 0..50 {
        if call_with(&server, Some(format!("Bearer {new}")))
            .await
            .is_ok()
        {
            accepted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(accepted, "the new key was never read");
    let status = call_with(&server, Some(format!("Bearer {old}")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

/// A write (a new role) with a token of `claims` (admin scope added).
async fn write_with(
    server: &TestServer,
    mut claims: serde_json::Value,
) -> Result<(), tonic::Status> {
    claims["scope"] = json!("admin");
    let mut clients = server.clients_with(bearer(claims)).await;
    clients
        .rubric
        .create_role(ladder::proto::v1::CreateRoleRequest {
            role: Some(ladder::proto::v1::Role {
                id: "auth_probe".into(),
                name: "Auth probe".into(),
                track_id: "individual_contributor".into(),
                seniority: 2,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// The audit log records every write's `sub` as its actor: a token without
/// one, or with one that is not a short line of text, writes nothing, and
/// its caller is told why (never the database's own encoding error).
#[tokio::test]
async fn a_token_without_a_usable_sub_is_unauthenticated_and_writes_nothing() {
    let server = TestServer::start().await;
    let valid = claims(3600);
    let with_sub = |sub: serde_json::Value| {
        let mut claims = valid.clone();
        claims["sub"] = sub;
        claims
    };
    let mut without_sub = valid.clone();
    without_sub.as_object_mut().unwrap().remove("sub");
    let cases = [
        ("no sub", without_sub, "no `sub` claim"),
        ("empty sub", with_sub(json!("")), "no `sub` claim"),
        ("sub not a string", with_sub(json!(42)), "no `sub` claim"),
        (
            "sub with a newline",
            with_sub(json!("alice\n2026-01-01 admin EraseSubject")),
            "control characters",
        ),
        (
            "sub with a NUL",
            with_sub(json!("alice\0")),
            "control characters",
        ),
        (
            "sub with a C1 control",
            with_sub(json!("alice\u{85}bob")),
            "control characters",
        ),
        (
            "sub of 5,000 characters",
            with_sub(json!("u".repeat(5000))),
            "longer than 200 characters",
        ),
    ];
    for (name, claims, says) in cases {
        let status = write_with(&server, claims).await.unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{name}: {status:?}"
        );
        assert!(
            status.message().contains("`sub`") && status.message().contains(says),
            "{name}: {}",
            status.message()
        );
    }
    assert_eq!(server.count("audit_log").await, 0);
    assert_eq!(server.count("roles").await, 0);

    // The longest `sub`, in characters of 4 bytes, is recorded as it is.
    let longest = "𝄞".repeat(200);
    write_with(&server, with_sub(json!(longest)))
        .await
        .expect("a 200-character sub");
    let actors: Vec<String> = sqlx::query_scalar("SELECT actor FROM audit_log")
        .fetch_all(&server.pool)
        .await
        .unwrap();
    assert_eq!(actors, [longest]);
}

/// The tenant claim is a tenant id: control characters, NULs and overlong
/// values are refused before anything runs.
#[tokio::test]
async fn a_tenant_claim_with_control_characters_or_too_long_is_unauthenticated() {
    let server = TestServer::start().await;
    for (name, tenant) in [
        ("newline", "tenant-a\ntenant-b"),
        ("NUL", "tenant-a\0"),
        ("tab", "tenant-a\t"),
        ("5,000 characters", &"t".repeat(5000)),
        ("empty", ""),
    ] {
        let mut claims = claims(3600);
        claims["tenant"] = json!(tenant);
        let status = write_with(&server, claims).await.unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{name}: {status:?}"
        );
        assert!(
            status.message().contains("`tenant`"),
            "{name}: {}",
            status.message()
        );
    }
    assert_eq!(server.count("audit_log").await, 0);
}

/// `--dev` needs no token and records its writes as actor `dev`.
#[tokio::test]
async fn dev_mode_needs_no_token_and_audits_as_dev() {
    use ladder::storage::TenantId;
    use ladder::transport::auth::{Authenticator, DEV_TENANT};
    let server = TestServer::start_with(Authenticator::dev(TenantId(DEV_TENANT.into()))).await;
    write_with_no_token(&server).await;
    let actors: Vec<(String, String)> = sqlx::query_as("SELECT tenant_id, actor FROM audit_log")
        .fetch_all(&server.pool)
        .await
        .unwrap();
    assert_eq!(actors, [(DEV_TENANT.to_string(), "dev".to_string())]);
}

async fn write_with_no_token(server: &TestServer) {
    let mut clients = server.clients_with(None).await;
    clients
        .rubric
        .create_role(ladder::proto::v1::CreateRoleRequest {
            role: Some(ladder::proto::v1::Role {
                id: "dev_probe".into(),
                name: "Dev probe".into(),
                track_id: "individual_contributor".into(),
                seniority: 2,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("a write in dev mode");
}
