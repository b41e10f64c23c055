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
/// Longest tenant id a token may carry.
pub const MAX_TENANT_CHARS: usize = 128;

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

/// The tenant a token names: 1 to [`MAX_TENANT_CHARS`] characters, no
/// control characters.
pub fn valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.chars().count() <= MAX_TENANT_CHARS
        && !tenant.chars().any(char::is_control)
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

    #[test]
    fn tenants_are_short_printable_ids() {
        assert!(valid_tenant("acme"));
        assert!(!valid_tenant(""));
        assert!(!valid_tenant("a\nb"));
        assert!(valid_tenant(&"t".repeat(MAX_TENANT_CHARS)));
        assert!(!valid_tenant(&"t".repeat(MAX_TENANT_CHARS + 1)));
    }
}
