//! Timestamps: PostgreSQL keeps microseconds, so incoming times are cut to
//! microseconds before use and what is stored compares equal to what was used.

use chrono::{DateTime, Datelike, Utc};
use prost_types::Timestamp;

use crate::domain::validation::Violations;
use crate::storage::stored::microseconds;

pub fn to_proto(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// The range of years accepted: what google.protobuf.Timestamp allows, which
/// PostgreSQL can store too.
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

pub fn from_proto(t: &Timestamp, field: &str) -> Result<DateTime<Utc>, Violations> {
    u32::try_from(t.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
        .filter(|t| YEARS.contains(&t.year()))
        .map(microseconds)
        .ok_or_else(|| {
            Violations::one(
                field,
                "is not a valid timestamp between the years 1 and 9999",
            )
        })
}

/// An optional timestamp; `None` when absent.
pub fn optional(t: Option<&Timestamp>, field: &str) -> Result<Option<DateTime<Utc>>, Violations> {
    t.map(|t| from_proto(t, field)).transpose()
}

/// `as_of` of a request: now when absent.
pub fn as_of(t: Option<&Timestamp>) -> Result<DateTime<Utc>, Violations> {
    Ok(optional(t, "as_of")?.unwrap_or_else(|| microseconds(Utc::now())))
}
