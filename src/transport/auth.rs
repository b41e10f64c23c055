//! Who is calling: one tower layer turns each call's credentials into a
//! [`Principal`] that handlers read from the request extensions. The tenant
//! always comes from the credentials, never from a request body.
//!
//! Tokens are checked as RFC 8725 asks: the algorithm must fit the key (and
//! a JWK's own `alg`, `use` and `key_ops`), so `none` and an HMAC made with
//! a public key fail; `exp` and `aud` are required (an audience may be
//! waived only explicitly, [`Audience::Any`]), `iss` when configured, and
//! `sub`, which the audit log records as the actor: one line of at most
//! [`MAX_SUBJECT_CHARS`] characters; `exp`,
//! `nbf` and `iat` allow [`LEEWAY_SECS`] of clock skew; symmetric keys are
//! refused unless configured; a JWKS file is read again when it changes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use futures::future::{BoxFuture, FutureExt};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, decode, decode_header};
use quick_cache::sync::Cache;
use serde_json::Value;
use tonic::Status;

use crate::storage::TenantId;
use crate::transport::error::ApiError;
use crate::transport::pipeline::Scope;

/// The caller of one RPC: who the token (or `--dev`) says it is. Cheap to
/// clone: every call gets a clone of one kept per token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(Arc<Caller>);

#[derive(Debug, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    /// The token's `sub`, for the audit log.
    pub subject: String,
    pub scopes: Vec<String>,
}

impl std::ops::Deref for Principal {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl Principal {
    pub fn new(tenant: TenantId, subject: String, scopes: Vec<String>) -> Self {
        Self(Arc::new(Caller {
            tenant,
            subject,
            scopes,
        }))
    }

    /// Whether the caller's token holds `scope`; `admin` holds them all.
    pub fn holds(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|held| held == scope.as_str() || held == Scope::Admin.as_str())
    }

    /// The principal a handler was called with, taken out of the request;
    /// the auth layer guarantees it.
    pub fn take<T>(request: &mut tonic::Request<T>) -> Result<Principal, Status> {
        request
            .extensions_mut()
            .remove::<Principal>()
            .ok_or_else(|| ApiError::Unauthenticated("no credentials".into()).into())
    }
}

/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 60;

/// The longest tenant id.
pub const MAX_TENANT_LEN: usize = 63;

/// Whether `tenant` is a tenant id: 1 to 63 ASCII letters, digits, `.`, `_`
/// and `-`, starting with a letter or digit.
pub fn is_tenant_id(tenant: &str) -> bool {
    let mut chars = tenant.chars();
    tenant.len() <= MAX_TENANT_LEN
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The longest `sub` a token may carry.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// Why a token's `sub` cannot name the caller in the audit log, if it
/// cannot: one line (a newline in it would forge a line of an exported log,
/// a NUL cannot be stored) of at most [`MAX_SUBJECT_CHARS`] characters.
/// The value itself is never quoted back.
fn subject_problem(subject: &str) -> Option<String> {
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        Some(format!("is longer than {MAX_SUBJECT_CHARS} characters"))
    } else if subject.chars().any(char::is_control) {
        Some("contains control characters (a line break, a NUL, ...)".into())
    } else {
        None
    }
}

/// The `aud` a token must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// This value, among the token's audiences.
    Required(String),
    /// Any or none: only when the operator said so (`--jwt-any-audience`).
    Any,
}

/// Where tenant and scopes are found in a token, and what it must say.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: Option<String>,
    pub audience: Audience,
    pub tenant_claim: String,
    pub scopes_claim: String,
    /// Accept symmetric (HMAC, `kty: oct`) keys from a JWKS.
    pub allow_symmetric_keys: bool,
}

#[derive(Clone)]
enum Keys {
    Single(Arc<DecodingKey>),
    Set(Arc<JwkSet>),
    File(Arc<JwksFile>),
}

/// How often a JWKS file is checked for changes, at most.
const JWKS_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A JWKS file and the keys last read from it.
struct JwksFile {
    path: PathBuf,
    allow_symmetric_keys: bool,
    loaded: Mutex<LoadedJwks>,
}

struct LoadedJwks {
    set: Arc<JwkSet>,
    /// The file's modification time and length when it was read.
    version: (Option<SystemTime>, u64),
    checked: Instant,
}

fn file_version(path: &std::path::Path) -> std::io::Result<(Option<SystemTime>, u64)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.modified().ok(), meta.len()))
}

/// Parses a JWKS, refusing an empty one and symmetric keys unless allowed.
fn parse_jwks(json: &[u8], allow_symmetric_keys: bool) -> Result<JwkSet, String> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS: {e}"))?;
    if set.keys.is_empty() {
        return Err("the JWKS holds no keys".into());
    }
    if !allow_symmetric_keys
        && let Some(jwk) = set
            .keys
            .iter()
            .find(|k| matches!(k.algorithm, AlgorithmParameters::OctetKey(_)))
    {
        return Err(format!(
            "the JWKS holds a symmetric key ({}); symmetric keys are refused unless \
             --jwt-allow-symmetric-keys is given",
            jwk.common.key_id.as_deref().unwrap_or("no kid")
        ));
    }
    Ok(set)
}

impl JwksFile {
    fn read(path: PathBuf, allow_symmetric_keys: bool) -> Result<Self, String> {
        let version = file_version(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let set = parse_jwks(&json, allow_symmetric_keys)?;
        Ok(Self {
            path,
            allow_symmetric_keys,
            loaded: Mutex::new(LoadedJwks {
                set: Arc::new(set),
                version,
                checked: Instant::now(),
            }),
        })
    }

    /// The keys, read again first if the file changed since it was last
    /// checked (at most once a second); the flag says they were. A file that
    /// cannot be read or parsed (half written, say) leaves the keys as they
    /// were until it can.
    fn keys(&self) -> (Arc<JwkSet>, bool) {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if loaded.checked.elapsed() < JWKS_CHECK_INTERVAL {
            return (Arc::clone(&loaded.set), false);
        }
        loaded.checked = Instant::now();
        let version = match file_version(&self.path) {
            Ok(version) if version != loaded.version => version,
            _ => return (Arc::clone(&loaded.set), false),
        };
        let parsed = std::fs::read(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|json| parse_jwks(&json, self.allow_symmetric_keys));
        match parsed {
            Ok(set) => {
                tracing::info!(path = %self.path.display(), keys = set.keys.len(), "JWKS reloaded");
                loaded.set = Arc::new(set);
                loaded.version = version;
                (Arc::clone(&loaded.set), true)
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "JWKS not reloaded; keeping the keys read before");
                (Arc::clone(&loaded.set), false)
            }
        }
    }
}

/// The key of `set` that may verify a token with `header`: the one its
/// `kid` names (or the only one), meant for signatures, for the token's
/// algorithm.
fn key_for(set: &JwkSet, header: &Header) -> Result<DecodingKey, String> {
    let jwk: &Jwk = match &header.kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
    .ok_or("no configured key matches the token's kid")?;
    if let Some(usage) = &jwk.common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err("the token's key is not meant for signatures (`use`)".into());
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("the token's key is not meant for verifying (`key_ops`)".into());
    }
    if let Some(alg) = jwk.common.key_algorithm
        && alg.to_string().parse::<Algorithm>().ok() != Some(header.alg)
    {
        return Err(format!(
            "the token's algorithm {:?} is not its key's ({alg})",
            header.alg
        ));
    }
    DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWK: {e}"))
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
        let set = parse_jwks(json, settings.allow_symmetric_keys)?;
        Ok(Self::with_keys(Keys::Set(Arc::new(set)), settings))
    }

    /// From a JWKS file, read again whenever it changes (key rotation
    /// without a restart).
    pub fn from_jwks_file(path: PathBuf, settings: JwtSettings) -> Result<Self, String> {
        let file = JwksFile::read(path, settings.allow_symmetric_keys)?;
        Ok(Self::with_keys(Keys::File(Arc::new(file)), settings))
    }

    fn with_keys(keys: Keys, settings: JwtSettings) -> Self {
        Self {
            keys,
            settings,
            verified: Arc::new(Cache::new(VERIFIED_TOKENS)),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Principal, String> {
        if let Keys::File(file) = &self.keys
            && file.keys().1
        {
            // A key may have been withdrawn: verify every token again.
            self.verified.clear();
        }
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

    /// The claims of a token whose signature, algorithm, times, issuer and
    /// audience are all as configured.
    fn check(&self, token: &str) -> Result<Value, String> {
        // `alg: none` and unknown algorithms fail here: jsonwebtoken knows no such algorithm.
        let header = decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        let key = match &self.keys {
            Keys::Single(key) => Arc::clone(key),
            Keys::Set(set) => Arc::new(key_for(set, &header)?),
            Keys::File(file) => Arc::new(key_for(&file.keys().0, &header)?),
        };
        // Only the algorithms of the key's family: an HMAC "signed" with a
        // public key, or an RSA token for an EC key, fails here.
        let mut validation = Validation::new_for_family(key.family());
        if !validation.algorithms.contains(&header.alg) {
            return Err(format!("algorithm {:?} does not fit the key", header.alg));
        }
        validation.algorithms = vec![header.alg];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.settings.audience {
            Audience::Required(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            Audience::Any => validation.validate_aud = false,
        }
        if let Some(iss) = &self.settings.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let claims = decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("invalid token: {e}"))?;
        if let Some(iat) = claims.get("iat") {
            let now = jsonwebtoken::get_current_timestamp();
            match iat.as_f64() {
                Some(iat) if iat <= (now + LEEWAY_SECS) as f64 => {}
                Some(_) => return Err("invalid token: issued in the future (`iat`)".into()),
                None => return Err("invalid token: `iat` is not a number".into()),
            }
        }
        Ok(claims)
    }

    fn principal(&self, claims: &Value) -> Result<Principal, String> {
        let claim = &self.settings.tenant_claim;
        let tenant = claims
            .get(claim)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("the token has no `{claim}` claim"))?;
        if !is_tenant_id(tenant) {
            return Err(format!(
                "the token's `{claim}` is not a tenant id (1 to {MAX_TENANT_LEN} ASCII letters, \
                 digits, `.`, `_` or `-`, starting with a letter or digit)"
            ));
        }
        let scopes = match claims.get(&self.settings.scopes_claim) {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(
                "the token has no `sub` claim (a non-empty string naming the caller, \
                 which the audit log records)",
            )?;
        if let Some(problem) = subject_problem(subject) {
            return Err(format!("the token's `sub` {problem}"));
        }
        Ok(Principal::new(
            TenantId(tenant.to_string()),
            subject.to_string(),
            scopes,
        ))
    }
}

/// How calls are authenticated.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// No credentials needed; every call acts as `caller`, for one fixed
    /// tenant with every scope ([`Authenticator::dev`]). Insecure.
    Dev {
        caller: Principal,
    },
    Jwt(JwtVerifier),
}

/// The tenant `--dev` acts for.
pub const DEV_TENANT: &str = "dev";

impl Authenticator {
    /// `--dev`: every call acts for `tenant` with every scope.
    pub fn dev(tenant: TenantId) -> Self {
        Authenticator::Dev {
            caller: Principal::new(
                tenant,
                "dev".into(),
                Scope::ALL.iter().map(|s| s.as_str().to_string()).collect(),
            ),
        }
    }

    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, String> {
        match self {
            Authenticator::Dev { caller } => Ok(caller.clone()),
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
            audience: Audience::Any,
            tenant_claim: "tenant".into(),
            scopes_claim: "scope".into(),
            allow_symmetric_keys: false,
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
                principal: Principal::new(TenantId("t".into()), "svc".into(), Vec::new()),
                exp,
            },
        );
        let err = verifier.verify(&token).unwrap_err();
        assert!(err.contains("Expired"), "{err}");
    }
}
