//! Presence, as the protos' `google.api.field_behavior` annotations declare
//! it (SPEC §6, AIP-203): the annotations are the contract, and this module
//! is their one enforcement, so the two cannot drift apart. The pipeline
//! parses every request through [`parse`], after the scope check; a
//! handler's own `parse` keeps checking values (ranges, formats,
//! references).
//!
//! Read from the descriptors, for a request and every message set in it:
//! - a REQUIRED field that is absent (proto3: unset, an empty string or
//!   list, 0, an UNSPECIFIED enum) is INVALID_ARGUMENT, named by its path
//!   (`role.name`, `evidence[2].observed_at`);
//! - OPTIONAL fields may be absent; OUTPUT_ONLY fields are never looked at
//!   (AIP-203: the server ignores them in a request, without an error);
//! - in an update (a request with an `update_mask`), the resource's
//!   REQUIRED fields that are also IMMUTABLE name the resource and are
//!   always required; its other REQUIRED fields only when the mask names
//!   them (AIP-134: without a mask, the fields set are the update);
//!   IDENTIFIER fields are required there and ignored elsewhere (a create
//!   assigns them); a resource that may be named by its IDENTIFIER or by
//!   the caller's key ([`KEYED_UPDATES`]) needs neither, and the handler
//!   requires one of the two;
//! - items that are never stored ([`HYPOTHETICAL`]) need none of the
//!   IMMUTABLE fields that tie a stored item down.
//!
//! A message nested in another is checked only when it is present: its
//! REQUIRED fields are required of it, not of its parent.
//!
//! This runs in the pipeline, not in the codec that bounds a request's
//! bytes (`transport::wire`): the codec runs before the scope check, and a
//! caller without the method's scope learns nothing of its request, not
//! even what it lacks (SPEC §8). The price is one more encode and decode of
//! the request, as a `DynamicMessage`, for the methods that have a field
//! to require.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost_reflect::{
    DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    Value,
};

use crate::domain::validation::Violations;
use crate::transport::error::ApiError;

/// Repeated fields whose items are hypothetical (WhatIf's added evidence:
/// scored as if it existed, about the request's subject, never stored).
pub const HYPOTHETICAL: &[&str] = &["ladder.v1.WhatIfRequest.added_evidence"];

/// Resources an update may name by their IDENTIFIER or by the caller's key
/// (their REQUIRED and IMMUTABLE fields): `UpdateEvidence` corrects a rating
/// by its id or by (source_system, external_id), so neither is required on
/// its own, and the handler's `parse` requires one of the two.
pub const KEYED_UPDATES: &[&str] = &["ladder.v1.UpdateEvidenceRequest.evidence"];

/// `google.api.FieldBehavior` values this module acts on.
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;
const IMMUTABLE: i32 = 5;
const IDENTIFIER: i32 = 8;

/// Deeper nesting than any Ladder request has is not followed.
const MAX_DEPTH: usize = 16;

struct Descriptors {
    behaviour: ExtensionDescriptor,
    /// The input of every Ladder method whose request can hold a field
    /// [`check`] may require, by full method name (`ladder.v1.X/Y`).
    inputs: HashMap<String, MessageDescriptor>,
}

static DESCRIPTORS: LazyLock<Descriptors> = LazyLock::new(|| {
    let pool = crate::proto::descriptor_pool();
    let behaviour = pool
        .get_extension_by_name("google.api.field_behavior")
        .expect("google.api.field_behavior is compiled in");
    let inputs = pool
        .services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .filter(|m| can_require(&behaviour, &m.input(), 0))
        .map(|m| {
            (
                format!("{}/{}", m.parent_service().full_name(), m.name()),
                m.input(),
            )
        })
        .collect();
    Descriptors { behaviour, inputs }
});

/// The `google.api.field_behavior` values of a field.
pub fn behaviours(extension: &ExtensionDescriptor, field: &FieldDescriptor) -> Vec<i32> {
    match field.options().get_extension(extension).as_ref() {
        Value::List(values) => values.iter().filter_map(Value::as_enum_number).collect(),
        _ => Vec::new(),
    }
}

/// Whether a message, or one inside it, has a field that can be required.
fn can_require(extension: &ExtensionDescriptor, message: &MessageDescriptor, depth: usize) -> bool {
    depth < MAX_DEPTH
        && message.fields().any(|f| {
            let b = behaviours(extension, &f);
            !b.contains(&OUTPUT_ONLY)
                && (b.contains(&REQUIRED)
                    || b.contains(&IDENTIFIER)
                    || matches!(f.kind(), Kind::Message(inner) if can_require(extension, &inner, depth + 1)))
        })
}

/// Parses `request` to `method` (`ladder.v1.RubricService/CreateRole`)
/// with `parse` once its required fields are all there. A request that
/// lacks some is INVALID_ARGUMENT naming every one, and with them what
/// `parse` says of the fields present, so one answer still names every
/// bad field.
pub fn parse<Req: prost::Message, Input>(
    method: &str,
    request: Req,
    parse: impl FnOnce(Req) -> Result<Input, ApiError>,
) -> Result<Input, ApiError> {
    let missing = match check(method, &request) {
        Ok(()) => return parse(request),
        Err(ApiError::InvalidArgument(missing)) => missing,
        Err(other) => return Err(other),
    };
    let found = match parse(request) {
        Err(ApiError::InvalidArgument(found)) => found,
        _ => Violations::new(),
    };
    // In the order `parse` names fields, each missing field named once.
    let inside = |field: &str, missing: &str| {
        field
            .strip_prefix(missing)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    };
    let mut left = missing.0;
    let mut named = Vec::new();
    let mut all = Violations::new();
    for v in found.0 {
        if let Some(i) = left.iter().position(|m| inside(&v.field, &m.field)) {
            let m = left.remove(i);
            named.push(m.field.clone());
            // What `parse` says of the field itself says more (the values
            // it takes); of a field inside it, less.
            all.0.push(if v.field == m.field { v } else { m });
        } else if !named.iter().any(|m| inside(&v.field, m)) {
            all.0.push(v);
        }
    }
    all.0.extend(left);
    Err(ApiError::InvalidArgument(all))
}

/// Refuses `request` to `method` with INVALID_ARGUMENT naming every
/// required field it lacks.
fn check(method: &str, request: &impl prost::Message) -> Result<(), ApiError> {
    let descriptors = &*DESCRIPTORS;
    let Some(input) = descriptors.inputs.get(method) else {
        return Ok(());
    };
    let message = DynamicMessage::decode(input.clone(), request.encode_to_vec().as_slice())
        .map_err(|e| ApiError::Malformed(e.to_string()))?;
    let mask = update_mask(&message);
    let mut v = Violations::new();
    Walk {
        extension: &descriptors.behaviour,
        mask: mask.as_ref(),
        v: &mut v,
    }
    .message(&message, "", Role::Request, 0);
    Ok(v.into_result(())?)
}

/// An update's mask paths: `None` for a request that is no update.
fn update_mask(request: &DynamicMessage) -> Option<Vec<String>> {
    let field = request.descriptor().get_field_by_name("update_mask")?;
    if !matches!(field.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask") {
        return None;
    }
    let mask = request.get_field(&field);
    let paths = mask
        .as_message()
        .and_then(|m| m.get_field_by_name("paths"))
        .and_then(|paths| paths.as_list().map(<[Value]>::to_vec))
        .unwrap_or_default();
    Some(
        paths
            .iter()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect(),
    )
}

/// What a message is to the request it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The request, or a message inside it.
    Request,
    /// The resource of an update: its fields are subject to the mask.
    Updated,
    /// The resource of an update named by its id or its key ([`KEYED_UPDATES`]).
    Keyed,
    /// An item that is never stored.
    Hypothetical,
}

struct Walk<'a> {
    extension: &'a ExtensionDescriptor,
    mask: Option<&'a Vec<String>>,
    v: &'a mut Violations,
}

impl Walk<'_> {
    fn required(&self, field: &FieldDescriptor, role: Role) -> bool {
        let b = behaviours(self.extension, field);
        let required = b.contains(&REQUIRED);
        match role {
            Role::Request => required,
            Role::Hypothetical => required && !b.contains(&IMMUTABLE),
            Role::Updated => {
                b.contains(&IDENTIFIER)
                    || (required
                        && (b.contains(&IMMUTABLE)
                            || self.mask.is_some_and(|m| names(m, field.name()))))
            }
            Role::Keyed => {
                required
                    && !b.contains(&IMMUTABLE)
                    && self.mask.is_some_and(|m| names(m, field.name()))
            }
        }
    }

    fn message(&mut self, message: &DynamicMessage, at: &str, role: Role, depth: usize) {
        if depth >= MAX_DEPTH {
            return;
        }
        for field in message.descriptor().fields() {
            if behaviours(self.extension, &field).contains(&OUTPUT_ONLY) {
                continue;
            }
            let path = if at.is_empty() {
                field.name().to_string()
            } else {
                format!("{at}.{}", field.name())
            };
            if !message.has_field(&field) {
                if self.required(&field, role) {
                    self.v.add(&path, "is required");
                }
                continue;
            }
            let inner = if HYPOTHETICAL.contains(&field.full_name()) {
                Role::Hypothetical
            } else if depth == 0 && self.mask.is_some() && field.name() != "update_mask" {
                if KEYED_UPDATES.contains(&field.full_name()) {
                    Role::Keyed
                } else {
                    Role::Updated
                }
            } else if role == Role::Hypothetical {
                Role::Hypothetical
            } else {
                Role::Request
            };
            match message.get_field(&field).as_ref() {
                Value::Message(m) => self.message(m, &path, inner, depth + 1),
                Value::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Value::Message(m) = item {
                            self.message(m, &format!("{path}[{i}]"), inner, depth + 1);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Whether an update mask names `field` or a field inside it.
fn names(mask: &[String], field: &str) -> bool {
    mask.iter().any(|path| {
        path == field
            || path
                .strip_prefix(field)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1 as pb;

    fn missing(method: &str, request: &impl prost::Message) -> Vec<String> {
        match check(&format!("ladder.v1.{method}"), request) {
            Ok(()) => Vec::new(),
            Err(ApiError::InvalidArgument(v)) => v.0.into_iter().map(|v| v.field).collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_create_needs_its_resource_and_the_resource_its_required_fields() {
        let create = "RubricService/CreateRole";
        assert_eq!(missing(create, &pb::CreateRoleRequest::default()), ["role"]);
        let request = pb::CreateRoleRequest {
            role: Some(pb::Role {
                transitions: vec![pb::Transition::default()],
                // Output only: ignored.
                create_time: Some(prost_types::Timestamp::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            missing(create, &request),
            [
                "role.id",
                "role.name",
                "role.track_id",
                "role.transitions[0].to_role_id",
                "role.transitions[0].kind"
            ]
        );
    }

    #[test]
    fn an_update_needs_what_names_the_resource_and_what_its_mask_names() {
        let update = |version, paths: &[&str]| pb::UpdateRubricRequest {
            rubric: Some(pb::Rubric {
                role_id: "staff_engineer".into(),
                version,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        };
        let method = "RubricService/UpdateRubric";
        assert_eq!(missing(method, &update(0, &[])), ["rubric.version"]);
        assert!(missing(method, &update(2, &[])).is_empty());
        assert_eq!(
            missing(method, &update(2, &["competencies"])),
            ["rubric.competencies"]
        );
        // A create ignores the identifier the server assigns.
        let create = pb::CreateRubricRequest {
            rubric: update(0, &[]).rubric,
            ..Default::default()
        };
        assert_eq!(
            missing("RubricService/CreateRubric", &create),
            ["rubric.competencies"]
        );
        let policy = pb::UpdateScoringPolicyRequest {
            policy: Some(pb::ScoringPolicy::default()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["source_weights.peer".into(), "min_evidence".into()],
            }),
        };
        assert_eq!(
            missing("AssessmentService/UpdateScoringPolicy", &policy),
            ["policy.source_weights"]
        );
    }

    #[test]
    fn hypothetical_evidence_needs_no_key_and_no_subject() {
        let request = pb::WhatIfRequest {
            subject_id: "hr-1".into(),
            added_evidence: vec![pb::Evidence::default()],
            ..Default::default()
        };
        assert_eq!(
            missing("RecommendationService/WhatIf", &request),
            [
                "added_evidence[0].competency_id",
                "added_evidence[0].level",
                "added_evidence[0].source",
                "added_evidence[0].observed_at"
            ]
        );
        let batch = pb::BatchCreateEvidenceRequest {
            evidence: request.added_evidence,
        };
        assert_eq!(
            missing("AssessmentService/BatchCreateEvidence", &batch),
            [
                "evidence[0].subject_id",
                "evidence[0].competency_id",
                "evidence[0].level",
                "evidence[0].source",
                "evidence[0].observed_at",
                "evidence[0].source_system",
                "evidence[0].external_id"
            ]
        );
    }

    #[test]
    fn one_answer_names_the_missing_fields_and_what_parse_finds_in_order() {
        let request = pb::CreateRoleRequest {
            role: Some(pb::Role {
                id: "Bad-Id".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let found = |_| -> Result<(), ApiError> {
            let mut v = Violations::new();
            v.add("role.id", "must be snake_case");
            v.add("role.name", "must not be empty");
            v.add("role.name", "must be shorter");
            v.add("role.track_id.x", "must be a track");
            v.add("role.seniority", "must be 0..1000");
            Err(v.into())
        };
        let Err(ApiError::InvalidArgument(v)) =
            parse("ladder.v1.RubricService/CreateRole", request, found)
        else {
            panic!("refused");
        };
        let named: Vec<_> =
            v.0.iter()
                .map(|v| (v.field.as_str(), v.description.as_str()))
                .collect();
        assert_eq!(
            named,
            [
                ("role.id", "must be snake_case"),
                ("role.name", "must not be empty"),
                ("role.track_id", "is required"),
                ("role.seniority", "must be 0..1000")
            ]
        );
    }

    #[test]
    fn a_request_without_required_fields_is_not_decoded_again() {
        assert!(
            !DESCRIPTORS
                .inputs
                .contains_key("ladder.v1.AuditService/ListAuditEvents")
        );
        assert!(
            DESCRIPTORS
                .inputs
                .contains_key("ladder.v1.AssessmentService/ListEvidence")
        );
    }
}
