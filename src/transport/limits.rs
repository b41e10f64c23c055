//! How much one client may ask of a server, in one call and all together:
//! the bounds on request contents that are not the domain's own field rules
//! (those live beside the types: `domain::evidence`, `domain::framework`),
//! the message size they imply, the in-flight limit, the stream limit,
//! deadlines, the blocking pool for CPU-heavy work, and the shutdown delay
//! and grace period. Every bound is in the README's table and in
//! `docs/operations.md` ("Limits and failure behaviour").

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::domain::evidence::{MAX_ID_LEN, MAX_LINK_LEN, MAX_TEXT_LEN};
use crate::domain::framework::MAX_ID_CHARS;
use crate::transport::error::ApiError;

/// Default largest number of evidence items in one `BatchCreateEvidence`.
pub const DEFAULT_MAX_BATCH: usize = 1000;
/// Largest number of hypothetical items in one `WhatIf`.
pub const MAX_WHAT_IF_ADDED: usize = 100;
/// Largest number of evidence ids one `WhatIf` leaves out.
pub const MAX_WHAT_IF_REMOVED: usize = 1000;
/// Largest number of entries of any other repeated field of a request
/// (field mask paths, levels, behaviours, transitions, rubric
/// competencies, development actions).
pub const MAX_REPEATED: usize = 100;
/// Longest field mask path.
pub const MAX_MASK_PATH_CHARS: usize = 100;
/// Longest page token (the server's own tokens are far shorter).
pub const MAX_PAGE_TOKEN_CHARS: usize = 512;
/// Longest string of a request that is neither free text, a link nor a
/// page token: every id (subjects, raters, evidence keys, evidence,
/// assessment, decision and calibration ids, request ids, etags) and every
/// name. The domain holds many to less (competency and role ids 64
/// characters, names 200, request ids 200).
pub const MAX_STRING_CHARS: usize = MAX_ID_LEN;
/// Longest free text (the domain holds most to less: descriptions 2000).
pub const MAX_FREE_TEXT_CHARS: usize = MAX_TEXT_LEN;
/// The request fields, by name in any message, that hold prose: summaries,
/// descriptions, rationales, reasons, behaviours and development actions.
/// Only they may hold line breaks and tabs.
const FREE_TEXT_FIELDS: [&str; 6] = [
    "summary",
    "description",
    "rationale",
    "reason",
    "behaviours",
    "development_actions",
];

/// The most bytes one evidence item at its largest allowed texts takes on
/// the wire: four opaque ids and the summary of up to 4 bytes a character,
/// the competency id and the ASCII link, and 64 bytes for the numbers, the
/// timestamp and the field tags and lengths.
pub const MAX_EVIDENCE_ITEM_BYTES: usize =
    4 * 4 * MAX_ID_LEN + MAX_ID_CHARS + 4 * MAX_TEXT_LEN + MAX_LINK_LEN + 64;
/// What a request may carry besides its evidence items.
const MESSAGE_SLACK_BYTES: usize = 4096;

/// Default cap on calls a server works on at once, as a multiple of its
/// database connections: enough to keep every connection busy while as many
/// calls again parse, score or wait briefly for one.
pub const IN_FLIGHT_PER_CONNECTION: usize = 2;
/// Default cap on concurrent HTTP/2 streams on one connection.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 128;
/// The deadline of a call whose client sends none.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// How long in-flight calls may run after SIGTERM (and the delay) before
/// they are cancelled.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// How long a server keeps serving new calls after SIGTERM while its health
/// already says NOT_SERVING: none by default (the chart sets one).
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::ZERO;
/// How long a page token is accepted: long enough to page through any
/// listing at a person's or a nightly job's pace.
pub const DEFAULT_PAGE_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest wait for a pooled connection, whatever the deadline.
pub const MAX_ACQUIRE_WAIT: Duration = Duration::from_secs(5);
/// What a shed call is told to wait before retrying.
pub const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The bounds and capacities one server enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest number of evidence items, or of subject updates, in one batch.
    pub max_batch: usize,
    /// Calls worked on at once; the rest are shed with RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// The deadline of a call without `grpc-timeout`.
    pub default_deadline: Duration,
    /// After a shutdown signal, how long new calls are still served while
    /// health says NOT_SERVING (so load balancers stop routing here first).
    pub shutdown_delay: Duration,
    /// After the delay, how long in-flight calls may finish.
    pub shutdown_grace: Duration,
    /// CPU-heavy computations (scoring every rubric) run at once on the
    /// blocking pool.
    pub max_cpu_tasks: usize,
    /// How long a page token (AIP-158) is accepted after it was returned.
    pub page_token_lifetime: Duration,
}

impl Limits {
    /// The defaults for a server with `max_connections` database connections.
    pub fn for_pool(max_connections: u32) -> Self {
        Self {
            max_batch: DEFAULT_MAX_BATCH,
            max_in_flight: IN_FLIGHT_PER_CONNECTION * max_connections.max(1) as usize,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            default_deadline: DEFAULT_DEADLINE,
            shutdown_delay: DEFAULT_SHUTDOWN_DELAY,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_cpu_tasks: std::thread::available_parallelism().map_or(2, |n| n.get()),
            page_token_lifetime: DEFAULT_PAGE_TOKEN_LIFETIME,
        }
    }

    /// The largest request message: a full batch at the largest texts.
    pub fn max_message_bytes(&self) -> usize {
        self.max_batch * MAX_EVIDENCE_ITEM_BYTES + MESSAGE_SLACK_BYTES
    }

    /// The bound of a repeated field of a request message, by its full
    /// protobuf name (`ladder.v1.WhatIfRequest.added_evidence`).
    pub fn max_entries(&self, field: &str) -> usize {
        match field {
            "ladder.v1.BatchCreateEvidenceRequest.evidence" => self.max_batch,
            "ladder.v1.BatchUpdateSubjectsRequest.requests" => self.max_batch,
            "ladder.v1.WhatIfRequest.added_evidence" => MAX_WHAT_IF_ADDED,
            "ladder.v1.WhatIfRequest.removed_evidence_ids" => MAX_WHAT_IF_REMOVED,
            "ladder.v1.ComputeImpactReportRequest.labels" => crate::domain::oversight::MAX_LABELS,
            _ => MAX_REPEATED,
        }
    }
}

/// What one string field of a request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StringBound {
    pub max_chars: usize,
    /// Free text: line breaks (`\n`, `\r`) and tabs are allowed; no other
    /// control character is, in any string (a NUL cannot even be stored).
    pub free_text: bool,
}

/// The bound of a request's string field named `field` (its name in its
/// message, `summary`), whatever message holds it: ids and names are one
/// line of at most [`MAX_STRING_CHARS`], free text ([`FREE_TEXT_FIELDS`])
/// may span lines up to [`MAX_FREE_TEXT_CHARS`].
pub fn string_bound(field: &str) -> StringBound {
    let line = |max_chars| StringBound {
        max_chars,
        free_text: false,
    };
    match field {
        _ if FREE_TEXT_FIELDS.contains(&field) => StringBound {
            max_chars: MAX_FREE_TEXT_CHARS,
            free_text: true,
        },
        "link" => line(MAX_LINK_LEN),
        "page_token" => line(MAX_PAGE_TOKEN_CHARS),
        _ => line(MAX_STRING_CHARS),
    }
}

/// Why `text`, a string of a request with `bound`, is refused, if it is.
pub fn string_problem(text: &str, bound: StringBound) -> Option<String> {
    let allowed = |c: char| bound.free_text && matches!(c, '\n' | '\r' | '\t');
    if text.len() > bound.max_chars && text.chars().count() > bound.max_chars {
        Some(format!("must be at most {} characters", bound.max_chars))
    } else if text.contains('\0') {
        Some("must not contain NUL characters".into())
    } else if text.chars().any(|c| c.is_control() && !allowed(c)) {
        Some(if bound.free_text {
            "must not contain control characters other than line breaks and tabs".into()
        } else {
            "must not contain control characters (it is one line)".into()
        })
    } else {
        None
    }
}

/// Runs CPU-heavy work on tokio's blocking pool, at most `max_cpu_tasks`
/// at once, so that scoring every rubric for many callers cannot occupy the
/// runtime's workers (which must keep accepting, shedding and answering).
#[derive(Debug, Clone)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
}

impl CpuPool {
    pub fn new(max_tasks: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_tasks.max(1))),
        }
    }

    /// `work`'s answer, computed off the runtime's workers.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::ShuttingDown)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::Internal(format!("a computation failed: {e}")))
    }
}

/// When a call must have answered: its arrival plus the caller's
/// `grpc-timeout`, or the server's default deadline.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

/// Longest head start the server takes on a deadline. tonic's own timer
/// (on both ends) ends a call at exactly its `grpc-timeout` with CANCELLED
/// and no further word; answering a little earlier lets the caller hear
/// DEADLINE_EXCEEDED instead.
const MAX_HEAD_START: Duration = Duration::from_millis(50);

impl Deadline {
    /// The deadline of a call that arrived at `arrival` with these headers.
    pub fn of(headers: &http::HeaderMap, arrival: Instant, default: Duration) -> Self {
        let budget = headers
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .unwrap_or(default);
        let head_start = (budget / 5).min(MAX_HEAD_START);
        Self {
            at: arrival + budget - head_start,
            budget,
        }
    }

    /// The time left.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The whole budget, for telling the caller what ran out.
    pub fn budget(&self) -> Duration {
        self.budget
    }
}

/// A `grpc-timeout` value: at most 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit_at = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at_checked(unit_at)?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// At most `max` entries, or a violation naming `field` and the bound.
pub fn check_count(
    v: &mut crate::domain::validation::Violations,
    field: &str,
    len: usize,
    max: usize,
) {
    if len > max {
        v.add(field, format!("must hold at most {max} entries"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_bound_holds_a_full_batch_and_little_more() {
        let limits = Limits::for_pool(16);
        assert_eq!(limits.max_in_flight, 32);
        assert_eq!(MAX_EVIDENCE_ITEM_BYTES, 22_272);
        assert_eq!(limits.max_message_bytes(), 22_276_096);
        assert_eq!(
            limits.max_entries("ladder.v1.BatchCreateEvidenceRequest.evidence"),
            1000
        );
        assert_eq!(limits.max_entries("google.protobuf.FieldMask.paths"), 100);
    }

    #[test]
    fn ids_are_one_line_and_free_text_may_span_lines() {
        let id = string_bound("subject_id");
        let text = string_bound("summary");
        assert_eq!(string_problem("emp-1", id), None);
        assert_eq!(string_problem(&"é".repeat(MAX_STRING_CHARS), id), None);
        assert!(
            string_problem(&"é".repeat(MAX_STRING_CHARS + 1), id)
                .unwrap()
                .contains("256")
        );
        assert!(string_problem("a\nb", id).is_some());
        assert!(string_problem("a\u{85}b", id).is_some());
        assert_eq!(string_problem("line one\r\n\tline two", text), None);
        assert!(string_problem("a\u{1b}[2J", text).is_some());
        assert_eq!(
            string_problem("a\0b", text).as_deref(),
            Some("must not contain NUL characters")
        );
        assert_eq!(string_bound("page_token").max_chars, MAX_PAGE_TOKEN_CHARS);
        assert_eq!(string_bound("link").max_chars, MAX_LINK_LEN);
    }

    #[test]
    fn grpc_timeouts_are_read_as_the_protocol_writes_them() {
        assert_eq!(parse_grpc_timeout("50m"), Some(Duration::from_millis(50)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        for bad in ["", "m", "123456789m", "5x", "-5m", "é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
        let mut headers = http::HeaderMap::new();
        let now = Instant::now();
        let default = Deadline::of(&headers, now, Duration::from_secs(30));
        assert_eq!(default.budget(), Duration::from_secs(30));
        headers.insert("grpc-timeout", "100m".parse().unwrap());
        let given = Deadline::of(&headers, now, Duration::from_secs(30));
        assert_eq!(given.budget(), Duration::from_millis(100));
        assert_eq!(given.at - now, Duration::from_millis(80));
    }
}
