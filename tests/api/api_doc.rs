//! `docs/api.md` is the contract an integrator reads instead of the Rust,
//! so it is held to what the server runs: its table has one row per RPC of
//! the method table (`ladder::transport::methods`), which is itself held to
//! the compiled descriptors (`scopes.rs`), with that entry's scope and
//! exactly the request fields the protos' `google.api.field_behavior`
//! annotations make required, read here from the descriptors as the server
//! reads them (`transport::required`; `field_behavior.rs` checks the server
//! enforces them). A method added without its row, a row left behind, a
//! scope or a required field changed on one side only: each fails here.
//! The idempotency column's answers to repeats without a request id are
//! checked through the real server here too (request ids, page tokens and
//! subjects in `contracts.rs`, corrections and masks in `corrections.rs`).

use std::collections::BTreeMap;

use ladder::transport::methods;
use ladder::transport::required::{HYPOTHETICAL, KEYED_UPDATES, behaviours};
use prost_reflect::{ExtensionDescriptor, Kind, MessageDescriptor, MethodDescriptor};

use crate::harness::{self, TestServer};

const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;
const IMMUTABLE: i32 = 5;
const IDENTIFIER: i32 = 8;

/// The status codes the table may name (google.rpc.Code).
const CODES: &[&str] = &[
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "DEADLINE_EXCEEDED",
    "UNAVAILABLE",
];

/// One row of the RPC table, as written.
#[derive(Debug)]
struct Row {
    scope: String,
    /// Required whenever the message holding them is sent.
    always: Vec<String>,
    /// An update's fields required only when its `update_mask` names them.
    masked: Vec<String>,
    idempotency: String,
    errors: Vec<String>,
}

fn cell_paths(cell: &str) -> Vec<String> {
    cell.split(',')
        .map(|p| p.trim().trim_matches('`').to_string())
        .filter(|p| !p.is_empty() && p != "—")
        .collect()
}

/// The table's rows by RPC (`RubricService.GetRole`), and the RPCs written
/// more than once.
fn rows(doc: &str) -> (BTreeMap<String, Row>, Vec<String>) {
    let mut rows = BTreeMap::new();
    let mut repeated = Vec::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line
            .trim()
            .strip_prefix('|')
            .and_then(|l| l.strip_suffix('|'))
            .map(|l| l.split('|').map(str::trim).collect())
            .unwrap_or_default();
        let [rpc, scope, required, idempotency, errors] = cells[..] else {
            continue;
        };
        let rpc = rpc.trim_matches('`');
        let Some((service, method)) = rpc.split_once('.') else {
            continue;
        };
        if !service.ends_with("Service") || method.is_empty() {
            continue;
        }
        let (always, masked) = required
            .split_once("; if masked:")
            .unwrap_or((required, ""));
        let row = Row {
            scope: scope.trim_matches('`').to_string(),
            always: cell_paths(always),
            masked: cell_paths(masked),
            idempotency: idempotency.to_string(),
            errors: errors
                .split(',')
                .map(|c| c.trim().trim_matches('`').to_string())
                .filter(|c| !c.is_empty() && c != "—")
                .collect(),
        };
        if rows.insert(rpc.to_string(), row).is_some() {
            repeated.push(rpc.to_string());
        }
    }
    (rows, repeated)
}

/// What a message is to the request holding it, as `transport::required`
/// treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Request,
    Updated,
    Keyed,
    Hypothetical,
}

struct Walk<'a> {
    ext: &'a ExtensionDescriptor,
    always: Vec<String>,
    masked: Vec<String>,
    /// The messages being walked, outermost first: a message within itself
    /// is not followed again.
    stack: Vec<String>,
}

impl Walk<'_> {
    fn message(&mut self, descriptor: &MessageDescriptor, at: &str, role: Role) {
        if descriptor.package_name() == "google.protobuf"
            || self.stack.iter().any(|m| m == descriptor.full_name())
        {
            return;
        }
        self.stack.push(descriptor.full_name().to_string());
        let update = at.is_empty() && descriptor.get_field_by_name("update_mask").is_some();
        for field in descriptor.fields() {
            let b = behaviours(self.ext, &field);
            if b.contains(&OUTPUT_ONLY) {
                continue;
            }
            let path = if at.is_empty() {
                field.name().to_string()
            } else {
                format!("{at}.{}", field.name())
            };
            let required = b.contains(&REQUIRED);
            let immutable = b.contains(&IMMUTABLE);
            match role {
                Role::Request if required => self.always.push(path.clone()),
                Role::Hypothetical if required && !immutable => self.always.push(path.clone()),
                Role::Updated if b.contains(&IDENTIFIER) || (required && immutable) => {
                    self.always.push(path.clone());
                }
                Role::Updated | Role::Keyed if required && !immutable => {
                    self.masked.push(path.clone());
                }
                _ => {}
            }
            let Kind::Message(inner) = field.kind() else {
                continue;
            };
            let inner_role = if HYPOTHETICAL.contains(&field.full_name()) {
                Role::Hypothetical
            } else if update && field.name() != "update_mask" {
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
            let at = if field.is_list() {
                format!("{path}[]")
            } else {
                path
            };
            self.message(&inner, &at, inner_role);
        }
        self.stack.pop();
    }
}

/// The request fields the annotations make required of `method`: always
/// (when the message holding them is sent), and only when an update's mask
/// names them.
fn required_of(ext: &ExtensionDescriptor, method: &MethodDescriptor) -> (Vec<String>, Vec<String>) {
    let mut walk = Walk {
        ext,
        always: Vec::new(),
        masked: Vec::new(),
        stack: Vec::new(),
    };
    walk.message(&method.input(), "", Role::Request);
    (walk.always, walk.masked)
}

/// The row `docs/api.md` should start with for `method`.
fn expected_row(rpc: &str, scope: &str, always: &[String], masked: &[String]) -> String {
    let list = |paths: &[String]| {
        paths
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut required = if always.is_empty() {
        "—".to_string()
    } else {
        list(always)
    };
    if !masked.is_empty() {
        required = format!("{required}; if masked: {}", list(masked));
    }
    format!("| `{rpc}` | `{scope}` | {required} |")
}

#[test]
fn the_api_doc_lists_every_rpc_once_with_its_scope_and_required_fields() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .expect("docs/api.md");
    let (mut rows, repeated) = rows(&doc);
    assert!(repeated.is_empty(), "listed more than once: {repeated:?}");
    let pool = ladder::proto::descriptor_pool();
    let ext = pool
        .get_extension_by_name("google.api.field_behavior")
        .expect("field_behavior is compiled in");
    let mut wrong = Vec::new();
    for method in methods::ALL {
        let rpc = method
            .name
            .trim_start_matches("ladder.v1.")
            .replace('/', ".");
        let descriptor = pool
            .get_service_by_name(method.service())
            .and_then(|s| s.methods().find(|m| m.name() == method.short_name()))
            .unwrap_or_else(|| panic!("{}: not in the descriptors", method.name));
        let (always, masked) = required_of(&ext, &descriptor);
        let scope = method.scope.as_str();
        let expected = expected_row(&rpc, scope, &always, &masked);
        let Some(row) = rows.remove(&rpc) else {
            wrong.push(format!("missing: {expected}"));
            continue;
        };
        if row.scope != scope || row.always != always || row.masked != masked {
            wrong.push(format!("should start {expected}; it has {row:?}"));
        }
        // A method that writes nothing is safe to repeat, and the doc says
        // so first; a write says what makes a repeat safe, or that none is.
        let safe = row.idempotency.starts_with("safe");
        if safe == method.writes || row.idempotency.is_empty() {
            wrong.push(format!(
                "{rpc}: idempotency {:?} for a method that {}",
                row.idempotency,
                if method.writes {
                    "writes"
                } else {
                    "only reads"
                }
            ));
        }
        if let Some(unknown) = row.errors.iter().find(|c| !CODES.contains(&c.as_str())) {
            wrong.push(format!("{rpc}: unknown status code {unknown:?}"));
        }
        let requires = !always.is_empty() || !masked.is_empty();
        if requires && !row.errors.iter().any(|c| c == "INVALID_ARGUMENT") {
            wrong.push(format!(
                "{rpc}: has required fields but no INVALID_ARGUMENT"
            ));
        }
    }
    for rpc in rows.keys() {
        wrong.push(format!("{rpc}: no such RPC in the method table"));
    }
    assert!(
        wrong.is_empty(),
        "docs/api.md disagrees with the server:\n{}",
        wrong.join("\n")
    );
}

/// What the idempotency column says of writes that have no request id:
/// each create makes another, a delete repeated finds nothing, a state
/// change repeated is no longer allowed, and a re-sent evidence batch is
/// "already present".
#[tokio::test]
async fn a_repeated_write_answers_as_the_api_doc_says() {
    use ladder::proto::v1 as pb;
    use tonic::Code;

    let server = TestServer::start().await;
    let mut c = server.clients("tenant-a").await;
    let role = "staff_engineer";
    let draft = || pb::CreateRubricRequest {
        rubric: Some(pb::Rubric {
            role_id: role.into(),
            competencies: vec![pb::RubricCompetency {
                competency_id: "system_design".into(),
                expected_level: 4,
                weight: 1.0,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let version =
        |r: tonic::Response<pb::CreateRubricResponse>| r.into_inner().rubric.unwrap().version;
    let first = version(c.rubric.create_rubric(draft()).await.unwrap());
    let second = version(c.rubric.create_rubric(draft()).await.unwrap());
    assert_eq!(second, first + 1, "each create makes a new draft version");

    let publish = pb::PublishRubricRequest {
        role_id: role.into(),
        version: first,
        etag: String::new(),
    };
    c.rubric.publish_rubric(publish.clone()).await.unwrap();
    let again = c.rubric.publish_rubric(publish).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");

    let retire = pb::RetireRubricRequest {
        role_id: role.into(),
        version: first,
        etag: String::new(),
    };
    c.rubric.retire_rubric(retire.clone()).await.unwrap();
    let again = c.rubric.retire_rubric(retire).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");

    let delete = pb::DeleteRubricRequest {
        role_id: role.into(),
        version: second,
        etag: String::new(),
    };
    c.rubric.delete_rubric(delete.clone()).await.unwrap();
    let again = c.rubric.delete_rubric(delete).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound, "{again:?}");

    let item = harness::evidence(
        "hr-1",
        "system_design",
        4.0,
        pb::EvidenceSource::Manager,
        chrono::Utc::now() - chrono::Duration::days(1),
        "e-1",
    );
    let batch = pb::BatchCreateEvidenceRequest {
        evidence: vec![item],
    };
    let stored = c
        .assessment
        .batch_create_evidence(batch.clone())
        .await
        .unwrap()
        .into_inner();
    let resent = c
        .assessment
        .batch_create_evidence(batch)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resent.created_count, 0, "already present");
    assert_eq!(resent.evidence, stored.evidence);
    assert_eq!(server.count("evidence").await, 1);
    let delete = pb::DeleteEvidenceRequest {
        evidence_id: stored.evidence[0].id.clone(),
    };
    c.assessment.delete_evidence(delete.clone()).await.unwrap();
    let again = c.assessment.delete_evidence(delete).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound, "{again:?}");
}
