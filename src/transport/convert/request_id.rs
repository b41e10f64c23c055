//! Request ids of creates (AIP-155): a retry with the same id and the same
//! request gets the first answer; the same id with another request is
//! ALREADY_EXISTS naming the fields that differ, never the answer to
//! another question.
//!
//! What a request asked is kept as a digest per field path (the request in
//! the proto3 JSON mapping, flattened: `role.name`, `as_of`), so that
//! storage can compare two requests and name what differs without holding
//! the request itself. Fields left at their defaults are absent, so a retry
//! that leaves `as_of` unset matches the first call that did too.

use std::collections::BTreeMap;

use prost::Message;
use prost_reflect::{DynamicMessage, SerializeOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::storage::RequestKey;

const MAX_REQUEST_ID_CHARS: usize = 200;

/// A create that carries a request id.
pub trait IdempotentRequest: Message + Sized {
    /// The message's full protobuf name.
    const NAME: &'static str;
    fn request_id(&self) -> &str;
}

macro_rules! idempotent {
    ($($request:ident),* $(,)?) => {$(
        impl IdempotentRequest for pb::$request {
            const NAME: &'static str = concat!("ladder.v1.", stringify!($request));
            fn request_id(&self) -> &str {
                &self.request_id
            }
        }
    )*};
}

idempotent!(
    CreateCompetencyRequest,
    CreateRoleRequest,
    CreateRubricRequest,
    CreateAssessmentRequest,
    RecordDecisionRequest,
);

/// The request's id and fields (`None` without an id); an id over
/// 200 characters or with a control character is refused naming `request_id`.
pub fn request_key(request: &impl IdempotentRequest) -> Result<Option<RequestKey>, Violations> {
    let id = request.request_id();
    if id.is_empty() {
        return Ok(None);
    }
    if id.chars().count() > MAX_REQUEST_ID_CHARS {
        return Err(Violations::one(
            "request_id",
            format!("must be at most {MAX_REQUEST_ID_CHARS} characters"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(Violations::one(
            "request_id",
            "must not contain control characters",
        ));
    }
    Ok(Some(RequestKey {
        id: id.to_string(),
        fields: field_digests(request),
    }))
}

/// A digest of every field the request sets but its request id, by path.
/// The message is this binary's own, re-read through its own descriptor:
/// none of the steps can fail for it (the test below runs every kind).
fn field_digests<R: IdempotentRequest>(request: &R) -> BTreeMap<String, String> {
    let descriptor = crate::proto::descriptor_pool()
        .get_message_by_name(R::NAME)
        .expect("an idempotent request's descriptor");
    let mut message = DynamicMessage::decode(descriptor, request.encode_to_vec().as_slice())
        .expect("a message re-read through its own descriptor");
    message.clear_field_by_name("request_id");
    let json = message
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new().use_proto_field_name(true),
        )
        .expect("a message as JSON");
    let mut digests = BTreeMap::new();
    flatten("", &json, &mut digests);
    digests
}

/// Objects are walked into (`policy.sigma`); anything else is a leaf,
/// digested from its JSON text (lists as a whole).
fn flatten(path: &str, value: &Value, digests: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(fields) => {
            for (name, value) in fields {
                let path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                flatten(&path, value, digests);
            }
        }
        leaf => {
            let digest = Sha256::digest(leaf.to_string().as_bytes());
            digests.insert(path.to_string(), hex(&digest[..12]));
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assessment(role_id: &str, request_id: &str) -> pb::CreateAssessmentRequest {
        pb::CreateAssessmentRequest {
            subject_id: "hr-5001".into(),
            role_id: role_id.into(),
            request_id: request_id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_same_request_under_any_id_has_the_same_fields_and_another_differs_by_name() {
        let first = request_key(&assessment("staff_engineer", "r-1"))
            .unwrap()
            .unwrap();
        let retry = request_key(&assessment("staff_engineer", "r-2"))
            .unwrap()
            .unwrap();
        assert_eq!(first.fields, retry.fields);
        assert_eq!(
            first.fields.keys().collect::<Vec<_>>(),
            ["role_id", "subject_id"]
        );
        let other = request_key(&assessment("engineering_manager", "r-1"))
            .unwrap()
            .unwrap();
        assert_eq!(first.differing(&other.fields), ["role_id"]);
    }

    #[test]
    fn nested_fields_are_named_by_their_paths() {
        let role = |name: &str| pb::CreateRoleRequest {
            role: Some(pb::Role {
                id: "staff_engineer".into(),
                name: name.into(),
                ..Default::default()
            }),
            request_id: "r".into(),
        };
        let first = request_key(&role("Staff Engineer")).unwrap().unwrap();
        let other = request_key(&role("Staff Engineer II")).unwrap().unwrap();
        assert_eq!(first.differing(&other.fields), ["role.name"]);
    }

    #[test]
    fn every_idempotent_request_has_its_descriptor() {
        fn digests<R: IdempotentRequest + Default>() {
            field_digests(&R::default());
        }
        digests::<pb::CreateCompetencyRequest>();
        digests::<pb::CreateRoleRequest>();
        digests::<pb::CreateRubricRequest>();
        digests::<pb::CreateAssessmentRequest>();
        digests::<pb::RecordDecisionRequest>();
    }

    #[test]
    fn an_absent_id_needs_nothing_and_a_bad_one_is_named() {
        assert!(
            request_key(&assessment("staff_engineer", ""))
                .unwrap()
                .is_none()
        );
        for bad in ["a\nb".to_string(), "x".repeat(201)] {
            let err = request_key(&assessment("staff_engineer", &bad)).unwrap_err();
            assert!(format!("{err:?}").contains("request_id"), "{err:?}");
        }
    }
}
