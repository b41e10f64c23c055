//! Field masks and etags of updates (AIP-134, AIP-154), and the checks of
//! required fields and ids every service shares.

use prost_types::FieldMask;

use crate::domain::framework::check_id;
use crate::domain::validation::Violations;
use crate::transport::convert::etag;
use crate::transport::error::ApiError;
use crate::transport::limits::{MAX_MASK_PATH_CHARS, MAX_REPEATED, check_count};

/// The fields an update changes, checked against the paths the resource
/// allows. Nested fields are named by dotted paths (`source_weights.peer`);
/// naming a message field covers every field under it.
#[derive(Debug)]
pub struct Mask(Vec<String>);

impl Mask {
    /// Every allowed path when the mask is absent or empty (a full replace,
    /// AIP-134); an unknown path is refused naming `update_mask`.
    pub fn parse(mask: Option<FieldMask>, allowed: &[impl AsRef<str>]) -> Result<Mask, Violations> {
        let paths = mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Ok(Mask::all(allowed));
        }
        let allowed: Vec<&str> = allowed.iter().map(AsRef::as_ref).collect();
        let mut v = Violations::new();
        check_count(&mut v, "update_mask.paths", paths.len(), MAX_REPEATED);
        for path in &paths {
            if path.chars().count() > MAX_MASK_PATH_CHARS {
                v.add(
                    "update_mask",
                    format!("a path must be at most {MAX_MASK_PATH_CHARS} characters"),
                );
            } else if !allowed.contains(&path.as_str()) {
                v.add(
                    "update_mask",
                    format!("unknown path {path:?}; allowed: {}", allowed.join(", ")),
                );
            }
        }
        v.into_result(Mask(paths))
    }

    /// All of `allowed`, for creates.
    pub fn all(allowed: &[impl AsRef<str>]) -> Mask {
        Mask(allowed.iter().map(|p| p.as_ref().to_string()).collect())
    }

    /// Whether the update sets `path`: it is named, or a message it is in.
    pub fn covers(&self, path: &str) -> bool {
        self.0.iter().any(|named| within(path, named))
    }

    /// Whether the update sets `path` or anything in it.
    pub fn touches(&self, path: &str) -> bool {
        self.0
            .iter()
            .any(|named| within(path, named) || within(named, path))
    }
}

/// `path` is `outer` or a field inside it.
fn within(path: &str, outer: &str) -> bool {
    path.strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// The protocol fields of an update request (AIP-134, AIP-154), parsed once:
/// which fields change, and the revision the client last read.
#[derive(Debug)]
pub struct Update {
    pub mask: Mask,
    /// `None` when the request carries no etag: the update applies to
    /// whatever is stored.
    pub expected: Option<i64>,
}

impl Update {
    /// Refuses an unknown mask path (`update_mask`) and an etag this server
    /// did not make (`etag_field`), both at once.
    pub fn parse(
        mask: Option<FieldMask>,
        allowed: &[impl AsRef<str>],
        etag: &str,
        etag_field: &str,
    ) -> Result<Update, Violations> {
        let mut v = Violations::new();
        let mask = Mask::parse(mask, allowed).map_err(|e| v.0.extend(e.0)).ok();
        let expected = etag::expected(etag, etag_field)
            .map_err(|e| v.0.extend(e.0))
            .ok();
        match (mask, expected) {
            (Some(mask), Some(expected)) if v.0.is_empty() => Ok(Update { mask, expected }),
            _ => Err(v),
        }
    }
}

/// A message field that must be set.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::field(field, "is required"))
}

/// The id of a competency or role: snake_case, at most 64 characters.
pub fn required_id(field: &str, id: String) -> Result<String, ApiError> {
    let mut v = Violations::new();
    check_id(&mut v, field, &id);
    Ok(v.into_result(id)?)
}

/// A role or competency id that may be left empty (`None`).
pub fn optional_id(field: &str, id: String) -> Result<Option<String>, ApiError> {
    if id.is_empty() {
        return Ok(None);
    }
    required_id(field, id).map(Some)
}

/// The violations of a nested message, named from the request (`role.name`).
pub fn nested<T>(prefix: &str, result: Result<T, Violations>) -> Result<T, ApiError> {
    result.map_err(|v| {
        let mut named = Violations::new();
        named.extend_prefixed(prefix, v);
        ApiError::InvalidArgument(named)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> Option<FieldMask> {
        Some(FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        })
    }

    const POLICY: &[&str] = &["sigma", "source_weights", "source_weights.peer"];

    #[test]
    fn a_message_path_covers_its_fields_and_a_field_touches_its_message() {
        let whole = Mask::parse(mask(&["source_weights"]), POLICY).unwrap();
        assert!(whole.covers("source_weights.peer"));
        assert!(!whole.covers("sigma"));
        let one = Mask::parse(mask(&["source_weights.peer"]), POLICY).unwrap();
        assert!(one.covers("source_weights.peer"));
        assert!(!one.covers("source_weights.manager"));
        assert!(one.touches("source_weights"));
        assert!(!one.covers("source_weights_extra"));
    }

    #[test]
    fn a_bad_mask_and_a_bad_etag_are_named_together() {
        let err = Update::parse(mask(&["salary"]), POLICY, "nope", "policy.etag").unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["update_mask", "policy.etag"]);
    }
}
