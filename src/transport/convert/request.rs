//! Field masks (AIP-134), pagination (AIP-158) and request ids (AIP-155).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost_types::FieldMask;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::validation::Violations;
use crate::storage::StorageError;
use crate::transport::error::ApiError;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 1000;
const MAX_REQUEST_ID_CHARS: usize = 200;

/// The fields an update changes.
#[derive(Debug)]
pub struct Mask(Vec<String>);

impl Mask {
    /// Every allowed path when the mask is absent or empty (a full replace,
    /// AIP-134); an unknown path is refused naming `update_mask`.
    pub fn parse(mask: Option<FieldMask>, allowed: &[&str]) -> Result<Mask, ApiError> {
        let paths = mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Ok(Mask(allowed.iter().map(|p| p.to_string()).collect()));
        }
        let mut v = Violations::new();
        for path in &paths {
            if !allowed.contains(&path.as_str()) {
                v.add(
                    "update_mask",
                    format!("unknown path {path:?}; allowed: {}", allowed.join(", ")),
                );
            }
        }
        v.into_result(Mask(paths)).map_err(ApiError::from)
    }

    /// All of `allowed`, for creates.
    pub fn all(allowed: &[&str]) -> Mask {
        Mask(allowed.iter().map(|p| p.to_string()).collect())
    }

    pub fn has(&self, path: &str) -> bool {
        self.0.iter().any(|p| p == path)
    }
}

/// A message field that must be set.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::field(field, "is required"))
}

/// An id that must be given.
pub fn required_id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        Err(ApiError::field(field, "must not be empty"))
    } else {
        Ok(())
    }
}

pub fn check_request_id(v: &mut Violations, request_id: &str) {
    if request_id.chars().count() > MAX_REQUEST_ID_CHARS {
        v.add(
            "request_id",
            format!("must be at most {MAX_REQUEST_ID_CHARS} characters"),
        );
    }
}

/// The violations of a nested message, named from the request (`role.name`).
pub fn nested<T>(prefix: &str, result: Result<T, Violations>) -> Result<T, ApiError> {
    result.map_err(|v| {
        let mut named = Violations::new();
        named.extend_prefixed(prefix, v);
        ApiError::InvalidArgument(named)
    })
}

fn page_size(size: i32) -> Result<i64, ApiError> {
    match i64::from(size) {
        s if s < 0 => Err(ApiError::field("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        s => Ok(s.min(MAX_PAGE_SIZE)),
    }
}

fn decode_token<K: DeserializeOwned>(token: &str) -> Result<Option<K>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| ApiError::field("page_token", "is not a token this server returned"))
}

fn encode_token<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// One page of a keyset listing: `fetch(after, limit)` reads up to `limit`
/// rows after the key in the page token, in the listing's stable order; the
/// next page token holds the key of the page's last row.
pub async fn page<T, K: Serialize + DeserializeOwned>(
    requested_size: i32,
    page_token: &str,
    fetch: impl AsyncFnOnce(Option<K>, i64) -> Result<Vec<T>, StorageError>,
    key: impl Fn(&T) -> K,
) -> Result<(Vec<T>, String), ApiError> {
    let size = page_size(requested_size)?;
    let after = decode_token(page_token)?;
    // One more than asked tells whether another page follows.
    let mut items = fetch(after, size + 1).await?;
    let next = if items.len() as i64 > size {
        items.truncate(size as usize);
        items
            .last()
            .map(|last| encode_token(&key(last)))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok((items, next))
}
