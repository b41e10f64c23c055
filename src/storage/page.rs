//! Opaque page tokens for keyset pagination: the key of the last row served,
//! as base64 of JSON, so clients cannot depend on its shape.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::storage::StorageError;

/// Default and largest page size (AIP-158).
pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 1000;

/// The page size to use; `None` when the request's value is negative.
pub fn page_size(requested: i32) -> Option<i64> {
    match requested {
        n if n < 0 => None,
        0 => Some(DEFAULT_PAGE_SIZE),
        n => Some(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

pub fn encode<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).expect("page keys serialize"))
}

/// `Ok(None)` for the first page; a token this server did not make is refused.
pub fn decode<K: DeserializeOwned>(token: &str) -> Result<Option<K>, StorageError> {
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .map(Some)
        .ok_or(StorageError::InvalidPageToken)
}

/// Cuts the extra row a query fetched (it asks for `page_size + 1`) and makes
/// the token of the next page from the last row served, if there is one.
pub fn split<T, K: Serialize>(
    mut rows: Vec<T>,
    page_size: i64,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, String) {
    let size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if rows.len() <= size {
        return (rows, String::new());
    }
    rows.truncate(size);
    let next = rows.last().map(|row| encode(&key(row))).unwrap_or_default();
    (rows, next)
}
