//! Who is calling: one tower layer turns each call's credentials into a
//! [`Principal`] that handlers read from the request extensions. The tenant
//! always comes from the credentials, never from a request body.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use quick_cache::sync::Cache;
use serde_json::Value;
use tonic::Status;

use crate::storage::TenantId;
use crate::transport::error::ApiError;
use crate::transport::pipeline::Scope;

/// The caller of one RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    /// The token's `sub`, for the audit log.
    pub subject: String,
    pub scopes: Vec<String>,
}

impl Principal {
    /// Whether the caller's token holds `scope`; `admin` holds them all.
    pub fn holds(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|held| held == scope.as_str() || held == Scope::Admin.as_str())
    }

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

/// How many verified tokens a server remembers.
const VERIFIED_TOKENS: usize = 10_000;

/// A token that passed every check, and when it expires.
#[derive(Clone)]
struct Verified {
    principal: Principal,
    exp: u64,
}

/// Verifies bearer JWTs against configured public keys.
#[derive(Clone)]
pub struct JwtVerifier {
    keys: Keys,
    settings: JwtSettings,
    /// Tokens already verified, by their exact text. Checking a signature
    /// costs more than the rest of a typical call, and a client sends the same
    /// token until it expires; the same bytes verify the same way, except for
    /// expiry, which is checked again on every use.
    verified: Arc<Cache<String, Verified>>,
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
        Ok(Self::with_keys(Keys::Single(Arc::new(key)), settings))
    }

    /// From a JWKS document; tokens pick their key by `kid`.
    pub fn from_jwks(json: &[u8], settings: JwtSettings) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS: {e}"))?;
        if set.keys.is_empty() {
            return Err("the JWKS holds no keys".into());
        }
        Ok(Self::with_keys(Keys::Set(Arc::new(set)), settings))
    }

    fn with_keys(keys: Keys, settings: JwtSettings) -> Self {
        Self {
            keys,
            settings,
            verified: Arc::new(Cache::new(VERIFIED_TOKENS)),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Principal, String> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(hit) = self.verified.get(token)
            && now < hit.exp
        {
            return Ok(hit.principal);
        }
        let claims = self.check(token)?;
        let principal = self.principal(&claims)?;
        if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
            self.verified.insert(
                token.to_string(),
                Verified {
                    principal: principal.clone(),
                    exp,
                },
            );
        }
        Ok(principal)
    }

    /// The claims of a token whose signature, algorithm, expiry, issuer and
    /// audience are all as configured.
    fn check(&self, token: &str) -> Result<Value, String> {
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
        decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("invalid token: {e}"))
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
                scopes: Scope::ALL.iter().map(|s| s.as_str().to_string()).collect(),
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

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
    use serde_json::json;

    use super::*;

    const PRIVATE_KEY: &str = include_str!("../../tests/keys/issuer.key.pem");
    const PUBLIC_KEY: &str = include_str!("../../tests/keys/issuer.pub.pem");

    fn verifier() -> JwtVerifier {
        let settings = JwtSettings {
            issuer: None,
            audience: None,
            tenant_claim: "tenant".into(),
            scopes_claim: "scope".into(),
        };
        JwtVerifier::from_pem(PUBLIC_KEY.as_bytes(), settings).unwrap()
    }

    fn token(exp: u64) -> String {
        let key = EncodingKey::from_ed_pem(PRIVATE_KEY.as_bytes()).unwrap();
        let claims = json!({"sub": "svc", "tenant": "t", "exp": exp});
        encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let verifier = verifier();
        let token = token(get_current_timestamp() + 3600);
        let first = verifier.verify(&token).unwrap();
        assert_eq!(first.tenant, TenantId("t".into()));
        assert!(verifier.verified.get(&token).is_some());
        assert_eq!(verifier.verify(&token).unwrap(), first);
    }

    #[test]
    fn a_remembered_token_past_its_expiry_is_checked_again_and_refused() {
        let verifier = verifier();
        // Expired beyond the clock-skew leeway the full check allows.
        let exp = get_current_timestamp() - 3600;
        let token = token(exp);
        assert!(verifier.verify(&token).is_err());
        verifier.verified.insert(
            token.clone(),
            Verified {
                principal: Principal {
                    tenant: TenantId("t".into()),
                    subject: "svc".into(),
                    scopes: Vec::new(),
                },
                exp,
            },
        );
        let err = verifier.verify(&token).unwrap_err();
        assert!(err.contains("Expired"), "{err}");
    }
}
