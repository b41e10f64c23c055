//! Bounds checked on a request's bytes before they are decoded. prost
//! decodes a whole message into memory before any handler runs, and an
//! empty evidence item costs 2 bytes on the wire but some 300 in memory: a
//! message within the size limit could still ask for gigabytes. So the
//! codec of every Ladder service ([`BoundedCodec`], set in `build.rs`)
//! first walks the request's wire format along its descriptor and counts
//! every repeated field, at any depth, against [`Limits::max_entries`]; a
//! request over a bound is refused INVALID_ARGUMENT naming the field, and
//! nothing of it is decoded. A request that is not valid protobuf is
//! INVALID_ARGUMENT too (prost alone would say INTERNAL).
//!
//! The same walk holds every string field, at any depth, to its
//! [`string_bound`]: ids and names one line, free text without control
//! characters but line breaks and tabs, none with a NUL, each within its
//! length. That is the one check of every id a request carries, whichever
//! handler takes it, so no string with a line break can reach the audit
//! log or an export as an id, and no NUL reaches PostgreSQL (whose text
//! cannot hold one); handlers check what ids must look like beyond that.
//! An unfit string costs no memory, so such a request is still decoded and
//! parsed: the pipeline refuses it ([`refuse_unfit_strings`]) with
//! everything its parse finds too, as one answer, before the body runs.
//!
//! The admission layer ([`crate::transport::admission`]) tells the codec
//! which method a call is for, and with what limits, through a task-local:
//! the generated code makes codecs with `Default` and cannot pass them.
//! Clients use the same codec; without the task-local it checks nothing.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

use prost::Message;
use prost_reflect::{Kind, MessageDescriptor};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use crate::domain::validation::Violations;
use crate::transport::error::ApiError;
use crate::transport::limits::{Limits, string_bound, string_problem};

/// Deeper nesting than any Ladder request has is not followed.
const MAX_DEPTH: usize = 16;

/// What the codec of the call being served checks.
#[derive(Debug, Clone)]
pub struct WireCheck {
    input: MessageDescriptor,
    limits: Arc<Limits>,
}

tokio::task_local! {
    static CALL: WireCheck;
    /// The unfit strings the codec found in the call's request, for the
    /// pipeline.
    static UNFIT: RefCell<Violations>;
}

/// What one walk finds.
#[derive(Default)]
struct Found {
    /// Repeated fields over their bounds: the request is not decoded.
    counts: Violations,
    /// Strings over their bounds or with characters they may not hold.
    strings: Violations,
}

impl WireCheck {
    /// The check for a call to `path` (`/ladder.v1.RubricService/GetRole`);
    /// `None` for methods that are not Ladder's.
    pub fn for_path(path: &str, limits: Arc<Limits>) -> Option<Self> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        let input = crate::proto::descriptor_pool()
            .get_service_by_name(service)?
            .methods()
            .find(|m| m.name() == method)?
            .input();
        Some(Self { input, limits })
    }

    /// Runs `call` with this check applied by the codec.
    pub async fn scope<F: Future>(self, call: F) -> F::Output {
        CALL.scope(self, UNFIT.scope(RefCell::default(), call))
            .await
    }

    /// The violations of a request's bytes: `Err` (with its unfit strings
    /// too) when a repeated field is over its bound, so that it is not
    /// decoded; otherwise its unfit strings, which decoding can afford.
    pub fn check(&self, bytes: &[u8]) -> Result<Violations, ApiError> {
        let mut found = Found::default();
        scan(bytes, &self.input, "", &self.limits, 0, &mut found);
        if found.counts.is_empty() {
            return Ok(found.strings);
        }
        found.counts.0.extend(found.strings.0);
        Err(found.counts.into())
    }
}

/// `parsed` (what a handler's `parse` made of the call's request), unless
/// the codec found unfit strings in the request: then INVALID_ARGUMENT
/// naming those fields, after what `parse` found wrong with any other.
pub fn refuse_unfit_strings<T>(parsed: Result<T, ApiError>) -> Result<T, ApiError> {
    let unfit = UNFIT.try_with(RefCell::take).unwrap_or_default();
    if unfit.is_empty() {
        return parsed;
    }
    let mut all = match parsed {
        Err(ApiError::InvalidArgument(found)) => found,
        _ => Violations::new(),
    };
    for v in unfit.0 {
        if !all.0.iter().any(|named| named.field == v.field) {
            all.0.push(v);
        }
    }
    Err(all.into())
}

/// Whether a message (or one inside it) has a repeated or a string field:
/// whether the walk has anything to check in it.
fn holds_checked(message: &MessageDescriptor, depth: usize) -> bool {
    depth < MAX_DEPTH
        && message.fields().any(|f| {
            f.is_list()
                || match f.kind() {
                    Kind::String => true,
                    Kind::Message(inner) => holds_checked(&inner, depth + 1),
                    _ => false,
                }
        })
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    prost::encoding::decode_varint(bytes).ok()
}

/// Counts the repeated fields of one message's bytes and checks its
/// strings, and those of the messages inside it. Malformed bytes end the
/// walk: decoding reports them.
fn scan(
    mut bytes: &[u8],
    message: &MessageDescriptor,
    path: &str,
    limits: &Limits,
    depth: usize,
    found: &mut Found,
) {
    let mut counts: Vec<(u32, usize)> = Vec::new();
    while !bytes.is_empty() {
        let Some(key) = read_varint(&mut bytes) else {
            return;
        };
        let (number, wire_type) = ((key >> 3) as u32, key & 7);
        let value = match wire_type {
            0 => match read_varint(&mut bytes) {
                Some(_) => continue,
                None => return,
            },
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                if bytes.len() < width {
                    return;
                }
                bytes = &bytes[width..];
                continue;
            }
            2 => {
                let Some(len) = read_varint(&mut bytes)
                    .and_then(|l| usize::try_from(l).ok())
                    .filter(|&l| l <= bytes.len())
                else {
                    return;
                };
                let (value, rest) = bytes.split_at(len);
                bytes = rest;
                value
            }
            _ => return,
        };
        let Some(field) = message.get_field(number) else {
            continue;
        };
        let name = if path.is_empty() {
            field.name().to_string()
        } else {
            format!("{path}.{}", field.name())
        };
        let inner = match field.kind() {
            Kind::Message(inner) if holds_checked(&inner, depth + 1) => Some(inner),
            _ => None,
        };
        let string = field.kind() == Kind::String;
        if field.is_list() {
            let count = match counts.iter_mut().find(|(n, _)| *n == number) {
                Some((_, count)) => count,
                None => {
                    counts.push((number, 0));
                    &mut counts.last_mut().expect("just pushed").1
                }
            };
            *count += 1;
            let max = limits.max_entries(field.full_name());
            if *count == max + 1 {
                found
                    .counts
                    .add(&name, format!("must hold at most {max} entries"));
            }
            if *count > max {
                continue;
            }
            if string || inner.is_some() {
                let at = format!("{name}[{}]", *count - 1);
                check_value(value, field.name(), inner, &at, limits, depth, found);
            }
        } else if string || inner.is_some() {
            check_value(value, field.name(), inner, &name, limits, depth, found);
        }
    }
}

/// Checks the value named `at` of a string field or of a message field
/// (`inner`) that holds something to check: a string against the bound of
/// its field `name`, a message by walking it.
fn check_value(
    value: &[u8],
    name: &str,
    inner: Option<MessageDescriptor>,
    at: &str,
    limits: &Limits,
    depth: usize,
    found: &mut Found,
) {
    if let Some(inner) = inner {
        scan(value, &inner, at, limits, depth + 1, found);
    } else if let Ok(text) = std::str::from_utf8(value)
        && let Some(problem) = string_problem(text, string_bound(name))
    {
        found.strings.add(at, problem);
    }
}

/// prost's codec, with the request checked on its bytes first (see the
/// module documentation). Named by `build.rs` for every generated service
/// and client.
#[derive(Debug, Clone)]
pub struct BoundedCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for BoundedCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for BoundedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = BoundedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoundedDecoder(self.0.decoder(), PhantomData)
    }
}

/// The decoder of [`BoundedCodec`].
#[derive(Debug)]
pub struct BoundedDecoder<U>(ProstDecoder<U>, PhantomData<U>);

impl<U: Message + Default> Decoder for BoundedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        use prost::bytes::Buf;
        let Ok(check) = CALL.try_with(WireCheck::clone) else {
            return self.0.decode(buf);
        };
        let unfit = check.check(buf.chunk())?;
        if !unfit.is_empty() {
            // Set with CALL: the admission layer scopes both.
            let _ = UNFIT.try_with(|found| found.borrow_mut().0.extend(unfit.0));
        }
        U::decode(buf)
            .map(Some)
            .map_err(|e| ApiError::Malformed(e.to_string()).into())
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1 as pb;

    fn check(path: &str, max_batch: usize, message: &impl Message) -> Result<Violations, ApiError> {
        let limits = Limits {
            max_batch,
            ..Limits::for_pool(1)
        };
        WireCheck::for_path(path, Arc::new(limits))
            .expect("a ladder method")
            .check(&message.encode_to_vec())
    }

    /// The fields a request is refused for before it is decoded.
    fn fields(result: Result<Violations, ApiError>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(ApiError::InvalidArgument(v)) => v.0.into_iter().map(|v| v.field).collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    /// The unfit strings of a request that may be decoded.
    fn unfit(result: Result<Violations, ApiError>) -> Vec<(String, String)> {
        let v = result.expect("a request within its counts");
        v.0.into_iter().map(|v| (v.field, v.description)).collect()
    }

    #[test]
    fn strings_are_named_by_their_path_and_do_not_stop_decoding() {
        let path = "/ladder.v1.AssessmentService/BatchCreateEvidence";
        let request = |summary: &str| pb::BatchCreateEvidenceRequest {
            evidence: vec![
                pb::Evidence {
                    subject_id: "emp-1".into(),
                    summary: summary.into(),
                    ..Default::default()
                },
                pb::Evidence {
                    subject_id: "emp\n1".into(),
                    external_id: "x".repeat(257),
                    ..Default::default()
                },
            ],
        };
        assert_eq!(
            unfit(check(path, 3, &request("two\nlines"))),
            [
                (
                    "evidence[1].subject_id".to_string(),
                    "must not contain control characters (it is one line)".to_string()
                ),
                (
                    "evidence[1].external_id".to_string(),
                    "must be at most 256 characters".to_string()
                ),
            ]
        );
        assert_eq!(
            unfit(check(path, 3, &request("nul\0")))[0],
            (
                "evidence[0].summary".to_string(),
                "must not contain NUL characters".to_string()
            )
        );
        // Over a count the request is refused at once, naming the strings
        // of the items within the count too.
        assert_eq!(
            fields(check(path, 1, &request("nul\0"))),
            ["evidence", "evidence[0].summary"]
        );
        let request = pb::UpdateRoleRequest {
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into(), "na\u{1b}me".into()],
            }),
            ..Default::default()
        };
        let path = "/ladder.v1.RubricService/UpdateRole";
        assert_eq!(unfit(check(path, 1, &request))[0].0, "update_mask.paths[1]");
    }

    #[test]
    fn a_batch_is_counted_before_it_is_decoded() {
        let path = "/ladder.v1.AssessmentService/BatchCreateEvidence";
        let batch = |n| pb::BatchCreateEvidenceRequest {
            evidence: vec![pb::Evidence::default(); n],
        };
        assert!(fields(check(path, 3, &batch(3))).is_empty());
        assert_eq!(fields(check(path, 3, &batch(4))), ["evidence"]);
    }

    #[test]
    fn nested_lists_are_named_with_their_item() {
        let path = "/ladder.v1.RubricService/CreateRubric";
        let actions = |n| pb::RubricCompetency {
            development_actions: vec![String::new(); n],
            ..Default::default()
        };
        let request = pb::CreateRubricRequest {
            rubric: Some(pb::Rubric {
                competencies: vec![actions(100), actions(101)],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            fields(check(path, 1, &request)),
            ["rubric.competencies[1].development_actions"]
        );
    }

    #[test]
    fn what_if_lists_and_field_masks_have_bounds() {
        let request = pb::WhatIfRequest {
            added_evidence: vec![pb::Evidence::default(); 101],
            removed_evidence_ids: vec![String::new(); 1001],
            ..Default::default()
        };
        let path = "/ladder.v1.RecommendationService/WhatIf";
        assert_eq!(
            fields(check(path, 1, &request)),
            ["added_evidence", "removed_evidence_ids"]
        );
        let request = pb::UpdateRoleRequest {
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into(); 101],
            }),
            ..Default::default()
        };
        let path = "/ladder.v1.RubricService/UpdateRole";
        assert_eq!(fields(check(path, 1, &request)), ["update_mask.paths"]);
    }
}
