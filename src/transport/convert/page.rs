//! Pagination (AIP-158): page sizes, and page tokens that are opaque and
//! bound to the request that made them.
//!
//! A token is the key of the last row served, sealed (ChaCha20-Poly1305)
//! with the deployment's page-token key (migration 0017, shared by every
//! replica) together with its expiry. The sealing's associated data is a
//! digest of the listing, the caller's tenant and every field of the request
//! but its page size and token, so a token opens only for the same listing
//! with the same filters and tenant: anything else, a tampered token or an
//! expired one, is INVALID_ARGUMENT naming `page_token`. The page size may
//! change between pages.

use std::marker::PhantomData;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::storage::{StorageError, TenantId};
use crate::transport::AppState;
use crate::transport::error::ApiError;
use crate::transport::limits::MAX_PAGE_TOKEN_CHARS;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 1000;

/// A list request: its paging fields, and the rest, which its tokens are
/// bound to.
pub trait PagedRequest: Message + Clone {
    /// The listing, so that a token of one list method never pages another.
    const LISTING: &'static str;
    fn page_size(&self) -> i32;
    fn page_token(&self) -> &str;
    /// The request without its page size and token, encoded.
    fn filters(&self) -> Vec<u8> {
        let mut filters = self.clone();
        filters.clear_paging();
        filters.encode_to_vec()
    }
    fn clear_paging(&mut self);
}

macro_rules! paged {
    ($($request:ident),* $(,)?) => {$(
        impl PagedRequest for pb::$request {
            const LISTING: &'static str = stringify!($request);
            fn page_size(&self) -> i32 {
                self.page_size
            }
            fn page_token(&self) -> &str {
                &self.page_token
            }
            fn clear_paging(&mut self) {
                self.page_size = 0;
                self.page_token.clear();
            }
        }
    )*};
}

paged!(
    ListCompetenciesRequest,
    ListTracksRequest,
    ListRolesRequest,
    ListRubricsRequest,
    ListEvidenceRequest,
    ListSubjectsRequest,
    ListAssessmentsRequest,
    ListAuditEventsRequest,
    ListCalibrationsRequest,
    ListRaterEffectsRequest,
    ListDecisionsRequest,
);

/// Which page of a keyset listing a request asks for: its size, the sealed
/// key of the last row served before, and what the token must be bound to.
#[derive(Debug)]
pub struct Page<K> {
    size: i64,
    sealed: Option<Vec<u8>>,
    /// The listing and the request's filters, hashed; the tenant is added
    /// when the page is fetched.
    binding: Sha256,
    after: PhantomData<K>,
}

const NOT_OURS: &str = "is not a page token this server returned for this request: a token \
     works only with the request that returned it (same tenant and filters; the page size may change)";

impl<K: Serialize + DeserializeOwned> Page<K> {
    /// The page size and the token's form; whether the token opens for
    /// this request and tenant is checked by [`Page::fetch`].
    pub fn parse<R: PagedRequest>(request: &R) -> Result<Self, Violations> {
        let size = match i64::from(request.page_size()) {
            s if s < 0 => return Err(Violations::one("page_size", "must not be negative")),
            0 => DEFAULT_PAGE_SIZE,
            s if s > MAX_PAGE_SIZE => {
                return Err(Violations::one(
                    "page_size",
                    format!("must be at most {MAX_PAGE_SIZE}"),
                ));
            }
            s => s,
        };
        let token = request.page_token();
        let sealed = if token.is_empty() {
            None
        } else {
            Some(
                Some(token)
                    .filter(|t| t.len() <= MAX_PAGE_TOKEN_CHARS)
                    .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
                    .filter(|bytes| bytes.len() > NONCE_LEN)
                    .ok_or_else(|| Violations::one("page_token", NOT_OURS))?,
            )
        };
        let mut binding = Sha256::new();
        framed(&mut binding, R::LISTING.as_bytes());
        framed(&mut binding, &request.filters());
        Ok(Self {
            size,
            sealed,
            binding,
            after: PhantomData,
        })
    }

    /// The page's rows, read on `conn` by `fetch(conn, after, limit)` in the
    /// listing's stable order after the row the token names, and the token
    /// of the next page (empty after the last), bound to this request and
    /// `tenant`.
    pub async fn fetch<T>(
        self,
        state: &AppState,
        tenant: &TenantId,
        conn: &mut PgConnection,
        fetch: impl AsyncFnOnce(&mut PgConnection, Option<K>, i64) -> Result<Vec<T>, StorageError>,
        key: impl Fn(&T) -> K,
    ) -> Result<(Vec<T>, String), ApiError> {
        let mut binding = self.binding;
        framed(&mut binding, tenant.0.as_bytes());
        let binding: [u8; 32] = binding.finalize().into();
        let after = match self.sealed {
            None => None,
            Some(mut sealed) => {
                let sealing = Sealing::of(state, conn).await?;
                Some(sealing.open(&binding, &mut sealed, now_secs())?)
            }
        };
        // One more than asked tells whether another page follows.
        let mut items = fetch(conn, after, self.size + 1).await?;
        let next = if items.len() as i64 > self.size {
            items.truncate(self.size as usize);
            match items.last() {
                Some(last) => {
                    let lifetime = state.limits.page_token_lifetime.as_secs();
                    let expires = now_secs().saturating_add(lifetime);
                    Sealing::of(state, conn)
                        .await?
                        .seal(&binding, expires, &key(last))?
                }
                None => String::new(),
            }
        } else {
            String::new()
        };
        Ok((items, next))
    }
}

/// Adds `bytes` to `digest` with its length first, so that no two
/// sequences of parts hash alike.
fn framed(digest: &mut Sha256, bytes: &[u8]) {
    digest.update((bytes.len() as u64).to_be_bytes());
    digest.update(bytes);
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seals and opens tokens: `nonce || ChaCha20-Poly1305(expiry || key)`,
/// with the request's binding as associated data.
struct Sealing(LessSafeKey);

impl Sealing {
    /// With the deployment's key, read on `conn` the first time.
    async fn of(state: &AppState, conn: &mut PgConnection) -> Result<Self, ApiError> {
        Ok(Self::new(state.db.page_token_key(conn).await?))
    }

    fn new(key: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 32-byte ChaCha20 key");
        Self(LessSafeKey::new(key))
    }

    fn seal(
        &self,
        binding: &[u8; 32],
        expires: u64,
        key: &impl Serialize,
    ) -> Result<String, ApiError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ApiError::Internal("no randomness for a page token".into()))?;
        let mut text = expires.to_be_bytes().to_vec();
        serde_json::to_writer(&mut text, key)
            .map_err(|e| ApiError::Internal(format!("page key: {e}")))?;
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding),
                &mut text,
            )
            .map_err(|_| ApiError::Internal("sealing a page token".into()))?;
        let mut token = nonce.to_vec();
        token.extend_from_slice(&text);
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    fn open<K: DeserializeOwned>(
        &self,
        binding: &[u8; 32],
        sealed: &mut [u8],
        now: u64,
    ) -> Result<K, ApiError> {
        let (nonce, text) = sealed.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| not_ours())?;
        let text = self
            .0
            .open_in_place(nonce, Aad::from(binding), text)
            .map_err(|_| not_ours())?;
        let (expires, key) = text.split_at_checked(8).ok_or_else(not_ours)?;
        let expires = u64::from_be_bytes(expires.try_into().map_err(|_| not_ours())?);
        if expires < now {
            return Err(ApiError::field(
                "page_token",
                "has expired: list again from the first page",
            ));
        }
        serde_json::from_slice(key).map_err(|_| not_ours())
    }
}

fn not_ours() -> ApiError {
    ApiError::field("page_token", NOT_OURS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BINDING: [u8; 32] = [7; 32];

    #[test]
    fn a_token_opens_for_its_binding_only_until_it_expires() {
        let sealing = Sealing::new(&[1; 32]);
        let token = sealing.seal(&BINDING, 100, &("architect", 1)).unwrap();
        let mut sealed = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert!(!token.contains("architect"));
        let key: (String, i32) = sealing.open(&BINDING, &mut sealed.clone(), 100).unwrap();
        assert_eq!(key, ("architect".to_string(), 1));
        assert!(
            sealing
                .open::<(String, i32)>(&[8; 32], &mut sealed.clone(), 100)
                .is_err()
        );
        assert!(
            sealing
                .open::<(String, i32)>(&BINDING, &mut sealed.clone(), 101)
                .is_err()
        );
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(
            sealing
                .open::<(String, i32)>(&BINDING, &mut sealed, 100)
                .is_err()
        );
    }

    #[test]
    fn page_sizes_are_bounded_and_a_malformed_token_is_refused() {
        let request = |page_size, page_token: &str| pb::ListRolesRequest {
            page_size,
            page_token: page_token.into(),
            ..Default::default()
        };
        assert_eq!(
            Page::<String>::parse(&request(0, "")).unwrap().size,
            DEFAULT_PAGE_SIZE
        );
        for (size, token, field) in [
            (-1, "", "page_size"),
            (1001, "", "page_size"),
            (5, "!!", "page_token"),
        ] {
            let err = Page::<String>::parse(&request(size, token)).unwrap_err();
            assert_eq!(err.0[0].field, field);
        }
    }
}
