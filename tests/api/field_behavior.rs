//! SPEC §6's first contract, read from the compiled descriptors so that a
//! new message, field or RPC is covered without touching this file: every
//! field of every Ladder message carries `google.api.field_behavior`, and
//! the real server enforces exactly what the annotations say. For every
//! RPC, a request is built from its descriptor with each REQUIRED field set
//! to a plausible value and every OPTIONAL one left out; then
//! - leaving the OPTIONAL fields out is never refused for their absence;
//! - taking out any one REQUIRED field is INVALID_ARGUMENT naming it by its
//!   path, and writes nothing (no row anywhere, no audit row);
//! - setting every OUTPUT_ONLY field is never refused, and changes nothing
//!   a client can see of a create.

use std::collections::BTreeMap;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, ReflectMessage, Value,
};
use tonic::Code;

use crate::fuzz::call_raw;
use crate::harness::{TestServer, bad_fields};
use ladder::transport::required::{HYPOTHETICAL, KEYED_UPDATES, behaviours};

const OPTIONAL: i32 = 1;
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;
const IMMUTABLE: i32 = 5;
const IDENTIFIER: i32 = 8;

/// Requirements a comment states for a group of OPTIONAL fields, which no
/// annotation can express: the group as a whole must not be left empty. (A
/// oneof is such a group too; the tests fill its first member.)
const GROUPS: &[(&str, &[&str])] =
    &[("ladder.v1.ListDecisionsRequest", &["subject_id", "role_id"])];

fn pool() -> DescriptorPool {
    DescriptorPool::decode(ladder::proto::FILE_DESCRIPTOR_SET).unwrap()
}

fn extension(pool: &DescriptorPool) -> ExtensionDescriptor {
    pool.get_extension_by_name("google.api.field_behavior")
        .expect("the descriptor set carries google.api.field_behavior")
}

fn ladder_methods(pool: &DescriptorPool) -> Vec<MethodDescriptor> {
    pool.services()
        .filter(|s| s.full_name().starts_with("ladder."))
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .collect()
}

#[test]
fn every_field_of_every_message_declares_its_behaviour() {
    let pool = pool();
    let ext = extension(&pool);
    let mut unannotated = Vec::new();
    let mut messages = 0;
    // Every message, whether a request reaches it or not: a new one is
    // caught before an RPC uses it.
    for message in pool
        .all_messages()
        .filter(|m| m.package_name().starts_with("ladder."))
    {
        messages += 1;
        for field in message.fields() {
            let b = behaviours(&ext, &field);
            let kinds = [REQUIRED, OPTIONAL, OUTPUT_ONLY, IDENTIFIER]
                .iter()
                .filter(|k| b.contains(k))
                .count();
            if kinds != 1 {
                unannotated.push(format!("{} {b:?}", field.full_name()));
            }
        }
    }
    assert!(messages > 50, "only {messages} ladder messages");
    assert!(
        unannotated.is_empty(),
        "fields without exactly one of REQUIRED, OPTIONAL, OUTPUT_ONLY, IDENTIFIER:\n{}",
        unannotated.join("\n")
    );
    // What requests reach outside Ladder's own messages are well-known
    // types, whose fields are part of their value.
    for method in ladder_methods(&pool) {
        let mut stack = vec![method.input()];
        let mut seen = std::collections::HashSet::new();
        while let Some(message) = stack.pop() {
            if !seen.insert(message.full_name().to_string()) {
                continue;
            }
            assert!(
                message.package_name().starts_with("ladder.")
                    || message.package_name() == "google.protobuf",
                "{} reaches {}",
                method.full_name(),
                message.full_name()
            );
            for field in message.fields() {
                if let Kind::Message(inner) = field.kind() {
                    stack.push(inner);
                }
            }
        }
    }
}

/// What a request's message is to the contract (as `transport::required`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Request,
    Updated,
    Keyed,
    Hypothetical,
}

/// A request for `method` with every field the contract requires set, and
/// the paths of what it requires and of the OPTIONAL fields it leaves out.
struct Built {
    message: DynamicMessage,
    required: Vec<String>,
    optional_absent: Vec<String>,
}

struct Builder<'a> {
    ext: &'a ExtensionDescriptor,
    built: Built,
}

fn is_update(input: &MessageDescriptor) -> bool {
    input.get_field_by_name("update_mask").is_some()
}

fn requires(b: &[i32], role: Role) -> bool {
    match role {
        Role::Request => b.contains(&REQUIRED),
        Role::Hypothetical => b.contains(&REQUIRED) && !b.contains(&IMMUTABLE),
        Role::Updated => b.contains(&REQUIRED) || b.contains(&IDENTIFIER),
        // Named by its id or its key, which the handler requires one of.
        Role::Keyed => b.contains(&REQUIRED) && !b.contains(&IMMUTABLE),
    }
}

/// A value the server can take for a field of its kind, or at least one it
/// refuses for what it is, not for its absence.
fn scalar(field: &FieldDescriptor) -> Value {
    match field.kind() {
        Kind::String => {
            let uuid = ["evidence_id", "assessment_id", "calibration_id"];
            if uuid.contains(&field.name()) || field.name() == "removed_evidence_ids" {
                Value::String("0190e0b4-3c1d-7000-8000-000000000001".into())
            } else {
                Value::String("staff_engineer".into())
            }
        }
        Kind::Bytes => Value::Bytes(b"{}".to_vec().into()),
        Kind::Bool => Value::Bool(true),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(1),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(1),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(1),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(1),
        Kind::Double => Value::F64(1.0),
        Kind::Float => Value::F32(1.0),
        Kind::Enum(_) => Value::EnumNumber(1),
        Kind::Message(_) => unreachable!("messages are built"),
    }
}

impl Builder<'_> {
    fn message(&mut self, descriptor: &MessageDescriptor, at: &str, role: Role) -> DynamicMessage {
        let mut message = DynamicMessage::new(descriptor.clone());
        if descriptor.full_name() == "google.protobuf.Timestamp" {
            let yesterday = jsonwebtoken::get_current_timestamp() as i64 - 86_400;
            message.set_field_by_name("seconds", Value::I64(yesterday));
            return message;
        }
        if descriptor.package_name() == "google.protobuf" {
            return message;
        }
        for field in descriptor.fields() {
            let b = behaviours(self.ext, &field);
            let path = if at.is_empty() {
                field.name().to_string()
            } else {
                format!("{at}.{}", field.name())
            };
            let first_of_oneof = field
                .containing_oneof()
                .is_some_and(|o| !o.is_synthetic() && o.fields().next().as_ref() == Some(&field));
            if requires(&b, role) {
                self.built.required.push(path.clone());
            } else if role == Role::Keyed && b.contains(&IDENTIFIER) {
                // Set, to name the resource, though not required by itself.
            } else if b.contains(&OPTIONAL) && !first_of_oneof {
                self.built.optional_absent.push(path);
                continue;
            } else if !first_of_oneof {
                continue;
            }
            let inner = if HYPOTHETICAL.contains(&field.full_name()) {
                Role::Hypothetical
            } else if at.is_empty() && is_update(descriptor) {
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
            let item = |this: &mut Self, at: &str| match field.kind() {
                Kind::Message(m) => Value::Message(this.message(&m, at, inner)),
                _ => scalar(&field),
            };
            let value = if field.is_list() {
                Value::List(vec![item(self, &format!("{path}[0]"))])
            } else {
                item(self, &path)
            };
            message.set_field(&field, value);
        }
        message
    }
}

fn build(ext: &ExtensionDescriptor, method: &MethodDescriptor) -> Built {
    let mut builder = Builder {
        ext,
        built: Built {
            message: DynamicMessage::new(method.input()),
            required: Vec::new(),
            optional_absent: Vec::new(),
        },
    };
    builder.built.message = builder.message(&method.input(), "", Role::Request);
    builder.built
}

/// Takes the field at `path` (`role.transitions[0].kind`) out of `message`.
fn clear(message: &mut DynamicMessage, path: &str) {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let (name, index) = match head.split_once('[') {
        Some((name, i)) => (
            name,
            Some(i.trim_end_matches(']').parse::<usize>().unwrap()),
        ),
        None => (head, None),
    };
    let Some(rest) = rest else {
        message.clear_field_by_name(name);
        return;
    };
    let value = message.get_field_by_name_mut(name).unwrap();
    let inner = match (value, index) {
        (Value::List(items), Some(i)) => items[i].as_message_mut().unwrap(),
        (Value::Message(m), None) => m,
        (other, _) => panic!("{path}: {other:?}"),
    };
    clear(inner, rest);
}

/// Every table's row count, all tenants together.
async fn rows(server: &TestServer) -> BTreeMap<String, i64> {
    const COUNTS: &str = "SELECT table_name::text, \
         (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I', table_name), false, true, '')))[1]::text::bigint \
         FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'";
    sqlx::query_as::<_, (String, i64)>(COUNTS)
        .fetch_all(&server.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

fn path_of(method: &MethodDescriptor) -> &'static str {
    format!("/{}/{}", method.parent_service().full_name(), method.name()).leak()
}

/// Whether a refusal names `path` or a field inside it.
fn names(fields: &[String], path: &str) -> bool {
    fields.iter().any(|f| {
        f == path
            || f.strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

#[tokio::test]
async fn each_required_field_left_out_is_refused_by_name_and_writes_nothing() {
    let server = TestServer::start().await;
    let pool = pool();
    let ext = extension(&pool);
    let mut checked = 0;
    for method in ladder_methods(&pool) {
        let built = build(&ext, &method);
        let before = rows(&server).await;
        for path in &built.required {
            let mut request = built.message.clone();
            clear(&mut request, path);
            // In an update, a REQUIRED field that may change is required
            // when the mask names it.
            if let (true, Some((_, field))) = (is_update(&method.input()), path.split_once('.'))
                && !field.contains(['.', '['])
            {
                let mut mask = DynamicMessage::new(
                    pool.get_message_by_name("google.protobuf.FieldMask")
                        .unwrap(),
                );
                mask.set_field_by_name("paths", Value::List(vec![Value::String(field.into())]));
                request.set_field_by_name("update_mask", Value::Message(mask));
            }
            let status = call_raw(&server, path_of(&method), request.encode_to_vec())
                .await
                .expect_err(&format!("{} without {path}", method.full_name()));
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{} without {path}: {status:?}",
                method.full_name()
            );
            assert!(
                bad_fields(&status).contains(path),
                "{} without {path}: {:?}",
                method.full_name(),
                bad_fields(&status)
            );
            checked += 1;
        }
        assert_eq!(
            rows(&server).await,
            before,
            "{}: a refused request wrote something",
            method.full_name()
        );
    }
    assert!(checked > 80, "only {checked} required fields");
}

#[tokio::test]
async fn optional_fields_left_out_are_never_refused_for_their_absence() {
    let server = TestServer::start().await;
    let pool = pool();
    let ext = extension(&pool);
    for method in ladder_methods(&pool) {
        let mut built = build(&ext, &method);
        for (message, group) in GROUPS {
            if method.input().full_name() == *message {
                // Satisfy the group with its first member, and leave the
                // rest out.
                let field = method.input().get_field_by_name(group[0]).unwrap();
                built.message.set_field(&field, scalar(&field));
                built.optional_absent.retain(|p| p != group[0]);
            }
        }
        let Err(status) = call_raw(&server, path_of(&method), built.message.encode_to_vec()).await
        else {
            continue;
        };
        let fields = bad_fields(&status);
        for absent in &built.optional_absent {
            assert!(
                !names(&fields, absent),
                "{} refused for leaving out OPTIONAL {absent}: {status:?}",
                method.full_name()
            );
        }
    }
}

/// Sets every OUTPUT_ONLY field of `message` and of the messages set in it;
/// returns their paths.
fn set_output_only(
    ext: &ExtensionDescriptor,
    message: &mut DynamicMessage,
    at: &str,
) -> Vec<String> {
    let mut set = Vec::new();
    for field in message.descriptor().fields() {
        let path = if at.is_empty() {
            field.name().to_string()
        } else {
            format!("{at}.{}", field.name())
        };
        if behaviours(ext, &field).contains(&OUTPUT_ONLY) {
            let value = match field.kind() {
                Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
                    let mut t = DynamicMessage::new(m);
                    // 2001-09-09: nothing a server would stamp now.
                    t.set_field_by_name("seconds", Value::I64(1_000_000_000));
                    Value::Message(t)
                }
                Kind::Message(m) => Value::Message(DynamicMessage::new(m)),
                Kind::String => Value::String("set-by-the-client".into()),
                _ => scalar(&field),
            };
            let value = if field.is_list() {
                Value::List(vec![value])
            } else {
                value
            };
            message.set_field(&field, value);
            set.push(path);
        } else if message.has_field(&field) {
            match message.get_field_mut(&field) {
                Value::Message(m) => set.extend(set_output_only(ext, m, &path)),
                Value::List(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        if let Value::Message(m) = item {
                            set.extend(set_output_only(ext, m, &format!("{path}[{i}]")));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    set
}

#[tokio::test]
async fn output_only_fields_in_a_request_are_ignored() {
    let server = TestServer::start().await;
    let pool = pool();
    let ext = extension(&pool);
    let mut covered = 0;
    for method in ladder_methods(&pool) {
        let built = build(&ext, &method);
        let mut request = built.message.clone();
        let set = set_output_only(&ext, &mut request, "");
        if set.is_empty() {
            continue;
        }
        covered += 1;
        let path = path_of(&method);
        let with = call_raw(&server, path, request.encode_to_vec()).await;
        if let Err(status) = &with {
            let fields = bad_fields(status);
            for output in &set {
                assert!(
                    !names(&fields, output),
                    "{} refused for OUTPUT_ONLY {output}: {status:?}",
                    method.full_name()
                );
            }
            if status.code() == Code::InvalidArgument {
                // Refused for what the request without them is refused for.
                let without = call_raw(&server, path, built.message.encode_to_vec())
                    .await
                    .expect_err(method.full_name());
                assert_eq!(fields, bad_fields(&without), "{}", method.full_name());
            }
        }
    }
    assert!(
        covered >= 8,
        "only {covered} requests reach OUTPUT_ONLY fields"
    );
}

#[tokio::test]
async fn a_create_keeps_what_the_server_assigns() {
    use ladder::proto::v1::{Competency, CreateCompetencyRequest, LevelDescriptor};
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-output-only").await;
    let long_ago = prost_types::Timestamp {
        seconds: 1_000_000_000,
        nanos: 0,
    };
    let created = c
        .rubric
        .create_competency(CreateCompetencyRequest {
            competency: Some(Competency {
                id: "negotiation".into(),
                name: "Negotiation".into(),
                levels: (1..=5)
                    .map(|level| LevelDescriptor {
                        level,
                        title: format!("Level {level}"),
                        ..Default::default()
                    })
                    .collect(),
                create_time: Some(long_ago),
                update_time: Some(long_ago),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("output-only fields do not refuse a create")
        .into_inner()
        .competency
        .unwrap();
    let year_2020 = 1_577_836_800;
    assert!(created.create_time.unwrap().seconds > year_2020);
    assert!(created.update_time.unwrap().seconds > year_2020);
}

#[tokio::test]
async fn a_missing_field_is_named_in_the_words_of_its_check() {
    use ladder::proto::v1::framework_service_client::FrameworkServiceClient;
    use ladder::proto::v1::{ImportFrameworkRequest, Role};
    use tonic_types::StatusExt;
    let server = TestServer::start().await;
    let mut c = server.clients("tenant-words").await;
    let mut framework = FrameworkServiceClient::with_interceptor(
        server.channel().await,
        crate::harness::Bearer(Some(
            format!("Bearer {}", crate::harness::token("tenant-words"))
                .parse()
                .unwrap(),
        )),
    );
    let status = framework
        .import_framework(ImportFrameworkRequest::default())
        .await
        .unwrap_err();
    let violations = status.get_details_bad_request().unwrap().field_violations;
    let described: Vec<_> = violations
        .iter()
        .map(|v| (v.field.as_str(), v.description.as_str()))
        .collect();
    assert_eq!(
        described,
        [
            (
                "format",
                "is required: FRAMEWORK_FORMAT_YAML or FRAMEWORK_FORMAT_CASE"
            ),
            ("document", "is required")
        ]
    );
    // Missing fields and bad values in one answer.
    let status = c
        .rubric
        .create_role(ladder::proto::v1::CreateRoleRequest {
            role: Some(Role {
                id: "Not-Snake".into(),
                seniority: 5000,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["role.id", "role.name", "role.track_id", "role.seniority"]
    );
    assert_eq!(server.count("roles").await, 0);
}
