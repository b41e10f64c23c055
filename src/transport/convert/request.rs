//! Field masks and etags of updates (AIP-134, AIP-154), and the checks of
//! required fields and ids every service shares.

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};
use prost_types::FieldMask;

use crate::domain::framework::check_id;
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::transport::convert::etag;
use crate::transport::error::ApiError;
use crate::transport::limits::{MAX_MASK_PATH_CHARS, MAX_REPEATED, check_count};

/// A resource an update request carries, by its full proto name: a mask
/// without paths stands for the fields it sets (AIP-134).
pub trait Resource: prost::Message + Sized {
    const FULL_NAME: &'static str;
}

macro_rules! resources {
    ($($message:ident),*) => {
        $(impl Resource for pb::$message {
            const FULL_NAME: &'static str = concat!("ladder.v1.", stringify!($message));
        })*
        /// Every resource an update names, for the test that finds them all.
        #[cfg(test)]
        const RESOURCES: &[&str] = &[$(concat!("ladder.v1.", stringify!($message))),*];
    };
}

resources!(Evidence, Subject, ScoringPolicy, Competency, Role, Rubric);

fn descriptor<R: Resource>() -> MessageDescriptor {
    crate::proto::descriptor_pool()
        .get_message_by_name(R::FULL_NAME)
        .expect("every Resource is a ladder.v1 message (tested)")
}

/// The paths among `allowed` that `message` sets to other than their
/// defaults; a message field whose own fields `allowed` names is read
/// field by field (`source_weights.peer`).
fn set_paths(message: &DynamicMessage, prefix: &str, allowed: &[&str], paths: &mut Vec<String>) {
    for (field, value) in message.fields() {
        let path = format!("{prefix}{}", field.name());
        let inner = format!("{path}.");
        match value {
            Value::Message(nested) if allowed.iter().any(|a| a.starts_with(&inner)) => {
                set_paths(nested, &inner, allowed, paths);
            }
            _ if allowed.contains(&path.as_str()) => paths.push(path),
            _ => {}
        }
    }
}

/// Whether `path` names a field of `message`, at any depth.
fn names_a_field(message: &MessageDescriptor, path: &str) -> bool {
    let (first, rest) = match path.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    };
    match (message.get_field_by_name(first), rest) {
        (Some(_), None) => true,
        (Some(field), Some(rest)) => match field.kind() {
            Kind::Message(inner) => names_a_field(&inner, rest),
            _ => false,
        },
        (None, _) => false,
    }
}

/// The fields an update changes, checked against the paths the resource
/// allows. Nested fields are named by dotted paths (`source_weights.peer`);
/// naming a message field covers every field under it.
#[derive(Debug)]
pub struct Mask(Vec<String>);

impl Mask {
    /// The paths of `mask`; when it is absent or empty, the allowed paths
    /// `resource` sets (AIP-134), so a field left at its default is left
    /// alone, and a request that sets nothing changes nothing. A path that is
    /// not allowed is refused naming `update_mask`.
    pub fn parse<R: Resource>(
        mask: Option<FieldMask>,
        resource: &R,
        allowed: &[impl AsRef<str>],
    ) -> Result<Mask, Violations> {
        let allowed: Vec<&str> = allowed.iter().map(AsRef::as_ref).collect();
        let paths = mask.map(|m| m.paths).unwrap_or_default();
        let message = descriptor::<R>();
        if paths.is_empty() {
            let mut set = Vec::new();
            // Encoded by prost, so always decodable along its own descriptor.
            if let Ok(dynamic) =
                DynamicMessage::decode(message, resource.encode_to_vec().as_slice())
            {
                set_paths(&dynamic, "", &allowed, &mut set);
            }
            return Ok(Mask(set));
        }
        let mut v = Violations::new();
        check_count(&mut v, "update_mask.paths", paths.len(), MAX_REPEATED);
        for path in &paths {
            if path.chars().count() > MAX_MASK_PATH_CHARS {
                v.add(
                    "update_mask",
                    format!("a path must be at most {MAX_MASK_PATH_CHARS} characters"),
                );
            } else if allowed.contains(&path.as_str()) {
                continue;
            } else if names_a_field(&message, path) {
                v.add(
                    "update_mask",
                    format!(
                        "{path:?} cannot be changed by an update; allowed: {}",
                        allowed.join(", ")
                    ),
                );
            } else {
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
    /// Refuses a bad mask (`update_mask`, see [`Mask::parse`]) and an etag
    /// this server did not make (`etag_field`), both at once.
    pub fn parse<R: Resource>(
        mask: Option<FieldMask>,
        resource: &R,
        allowed: &[impl AsRef<str>],
        etag: &str,
        etag_field: &str,
    ) -> Result<Update, Violations> {
        let mut v = Violations::new();
        let mask = Mask::parse(mask, resource, allowed)
            .map_err(|e| v.0.extend(e.0))
            .ok();
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

    fn policy() -> pb::ScoringPolicy {
        pb::ScoringPolicy::default()
    }

    #[test]
    fn every_resource_is_a_compiled_message() {
        for name in RESOURCES {
            assert!(
                crate::proto::descriptor_pool()
                    .get_message_by_name(name)
                    .is_some(),
                "{name}"
            );
        }
    }

    #[test]
    fn a_message_path_covers_its_fields_and_a_field_touches_its_message() {
        let whole = Mask::parse(mask(&["source_weights"]), &policy(), POLICY).unwrap();
        assert!(whole.covers("source_weights.peer"));
        assert!(!whole.covers("sigma"));
        let one = Mask::parse(mask(&["source_weights.peer"]), &policy(), POLICY).unwrap();
        assert!(one.covers("source_weights.peer"));
        assert!(!one.covers("source_weights.manager"));
        assert!(one.touches("source_weights"));
        assert!(!one.covers("source_weights_extra"));
    }

    #[test]
    fn without_a_mask_the_set_fields_are_the_paths() {
        let sent = pb::ScoringPolicy {
            sigma: 2.0,
            etag: "r3".into(),
            source_weights: Some(pb::SourceWeights {
                peer: 0.5,
                ..Default::default()
            }),
            ..Default::default()
        };
        let set = Mask::parse(None, &sent, POLICY).unwrap();
        assert_eq!(set.0, ["source_weights.peer", "sigma"]);
        let nothing = Mask::parse(mask(&[]), &pb::ScoringPolicy::default(), POLICY).unwrap();
        assert!(nothing.0.is_empty());
    }

    #[test]
    fn a_bad_mask_and_a_bad_etag_are_named_together() {
        let err =
            Update::parse(mask(&["salary"]), &policy(), POLICY, "nope", "policy.etag").unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["update_mask", "policy.etag"]);
        assert!(err.0[0].description.contains("unknown path"), "{err:?}");
        let err = Mask::parse(mask(&["etag"]), &policy(), POLICY).unwrap_err();
        assert!(
            err.0[0].description.contains("cannot be changed"),
            "{err:?}"
        );
    }
}
