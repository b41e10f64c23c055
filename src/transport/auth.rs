//! Who is calling: one tower layer turns each call's credentials into a
//! [`Principal`] that handlers read from the request extensions. The tenant
//! always comes from the credentials, never from a request body.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use tonic::Status;

use crate::storage::TenantId;
use crate::transport::error::ApiError;

/// The caller of one RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    /// The token's `sub`, for the audit log.
    pub subject: String,
    pub scopes: Vec<String>,
}

impl Principal {
    /// The principal a handler was called with; the auth layer guarantees it.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&Principal, Status> {
        request
            .extensions()
            .get::<Principal>()
            .ok_or_else(|| ApiError::Unauthenticated("no credentials".into()).into())
    }
}

/// Where tenant and scopes are found in a token, and what it must say.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub tenant_claim: String,
    pub scopes_claim: String,
}

#[derive(Clone)]
enum Keys {
    Single(Arc<DecodingKey>),
    Set(Arc<JwkSet>),
}

/// Verifies bearer JWTs against configured public keys.
#[derive(Clone)]
pub struct JwtVerifier {
    keys: Keys,
    settings: JwtSettings,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("settings", &self.settings)
            .finish()
    }
}

impl JwtVerifier {
    /// From a PEM public key (RSA, EC or Ed25519).
    pub fn from_pem(pem: &[u8], settings: JwtSettings) -> Result<Self, String> {
        let key = DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .map_err(|e| format!("not an RSA, EC or Ed25519 public key in PEM form: {e}"))?;
        Ok(Self {
            keys: Keys::Single(Arc::new(key)),
            settings,
        })
    }

    /// From a JWKS document; tokens pick their key by `kid`.
    pub fn from_jwks(json: &[u8], settings: JwtSettings) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS: {e}"))?;
        if set.keys.is_empty() {
            return Err("the JWKS holds no keys".into());
        }
        Ok(Self {
            keys: Keys::Set(Arc::new(set)),
            settings,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Principal, String> {
        // `alg: none` and unknown algorithms fail here: jsonwebtoken knows no such algorithm.
        let header = decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        let key = match &self.keys {
            Keys::Single(key) => Arc::clone(key),
            Keys::Set(set) => {
                let jwk = match &header.kid {
                    Some(kid) => set.find(kid),
                    None if set.keys.len() == 1 => set.keys.first(),
                    None => None,
                }
                .ok_or("no configured key matches the token's kid")?;
                Arc::new(DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWK: {e}"))?)
            }
        };
        let mut validation = Validation::new_for_family(key.family());
        if !validation.algorithms.contains(&header.alg) {
            return Err(format!("algorithm {:?} does not fit the key", header.alg));
        }
        validation.algorithms = vec![header.alg];
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        match &self.settings.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.settings.issuer {
            validation.set_issuer(&[iss]);
        }
        let claims = decode::<Value>(token, &key, &validation)
            .map_err(|e| format!("invalid token: {e}"))?
            .claims;
        self.principal(&claims)
    }

    fn principal(&self, claims: &Value) -> Result<Principal, String> {
        let tenant = claims
            .get(&self.settings.tenant_claim)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("the token has no `{}` claim", self.settings.tenant_claim))?;
        let scopes = match claims.get(&self.settings.scopes_claim) {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        Ok(Principal {
            tenant: TenantId(tenant.to_string()),
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            scopes,
        })
    }
}

/// How calls are authenticated.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// No credentials needed; every call acts for one fixed tenant. Insecure.
    Dev {
        tenant: TenantId,
    },
    Jwt(JwtVerifier),
}

/// The tenant `--dev` acts for.
pub const DEV_TENANT: &str = "dev";

impl Authenticator {
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, String> {
        match self {
            Authenticator::Dev { tenant } => Ok(Principal {
                tenant: tenant.clone(),
                subject: "dev".into(),
                scopes: vec!["*".into()],
            }),
            Authenticator::Jwt(verifier) => {
                let value = headers
                    .get(http::header::AUTHORIZATION)
                    .ok_or("missing authorization metadata (expected `Bearer <JWT>`)")?
                    .to_str()
                    .map_err(|_| "authorization metadata is not text")?;
                let token = value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .ok_or("authorization metadata is not `Bearer <JWT>`")?;
                verifier.verify(token.trim())
            }
        }
    }
}

/// Services that answer without credentials: probes and discovery.
fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

/// The tower layer that authenticates every call but health and reflection.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
}

impl AuthLayer {
    pub fn new(auth: Authenticator) -> Self {
        Self {
            auth: Arc::new(auth),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: Arc::clone(&self.auth),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S, B, RB> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if !is_public(request.uri().path()) {
            match self.auth.authenticate(request.headers()) {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                }
                Err(reason) => {
                    tracing::info!(path = request.uri().path(), %reason, "unauthenticated call");
                    let status: Status = ApiError::Unauthenticated(reason).into();
                    return futures::future::ready(Ok(status.into_http())).boxed();
                }
            }
        }
        // The clone that was polled ready serves this call; the fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        inner.call(request).boxed()
    }
}
