//! Evidence: one observation about one person for one competency.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::validation::Violations;

/// Who produced an observation; each source carries its own weight in the
/// scoring policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    SelfReview,
    Peer,
    Manager,
    DirectReport,
    Artifact,
    Calibration,
}

impl Source {
    pub const ALL: [Source; 6] = [
        Source::SelfReview,
        Source::Peer,
        Source::Manager,
        Source::DirectReport,
        Source::Artifact,
        Source::Calibration,
    ];

    /// The stable lower-case name used in storage, files and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::SelfReview => "self",
            Source::Peer => "peer",
            Source::Manager => "manager",
            Source::DirectReport => "direct_report",
            Source::Artifact => "artifact",
            Source::Calibration => "calibration",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|src| src.as_str() == s)
    }
}

/// The part of a piece of evidence that scoring reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub id: Uuid,
    pub competency_id: String,
    /// Observed level, a number in [1, 5].
    pub level: f64,
    pub source: Source,
    /// In (0, 1].
    pub confidence: f64,
    pub observed_at: DateTime<Utc>,
}

/// Longest subject, rater, source-system or external id.
pub const MAX_ID_LEN: usize = 256;
/// Longest summary.
pub const MAX_TEXT_LEN: usize = 4000;
/// The confidence of evidence that does not state one.
pub const DEFAULT_CONFIDENCE: f64 = 1.0;
/// How far past the server's clock an observation may be dated: clocks
/// differ, and a rating typed in one time zone may carry tomorrow's date.
pub const FUTURE_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// Longest link: an http(s) URL, ASCII (RFC 3986; other characters
/// percent-encoded).
pub const MAX_LINK_LEN: usize = 2048;

/// A piece of evidence as the caller sends it and as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub id: Uuid,
    /// Opaque HRIS id; never a name or an e-mail address.
    pub subject_id: String,
    pub competency_id: String,
    pub level: f64,
    pub source: Source,
    pub rater_id: String,
    /// Microsecond precision, as PostgreSQL stores it, so that what comes back
    /// compares equal to what was sent.
    pub observed_at: DateTime<Utc>,
    pub confidence: f64,
    pub summary: String,
    pub link: String,
    pub source_system: String,
    pub external_id: String,
}

impl Evidence {
    /// What scoring reads of it.
    pub fn observation(&self) -> Observation {
        Observation {
            id: self.id,
            competency_id: self.competency_id.clone(),
            level: self.level,
            source: self.source,
            confidence: self.confidence,
            observed_at: self.observed_at,
        }
    }

    /// Same observation, ignoring the server-assigned id: a re-sent item with
    /// the same key and the same content is the same evidence.
    pub fn same_content(&self, other: &Evidence) -> bool {
        self.differing_fields(other).is_empty()
    }

    /// The fields (by their API names) in which `other` says something else,
    /// ignoring the server-assigned id.
    pub fn differing_fields(&self, other: &Evidence) -> Vec<&'static str> {
        let Evidence {
            id: _,
            subject_id,
            competency_id,
            level,
            source,
            rater_id,
            observed_at,
            confidence,
            summary,
            link,
            source_system,
            external_id,
        } = other;
        [
            ("subject_id", self.subject_id == *subject_id),
            ("competency_id", self.competency_id == *competency_id),
            ("level", self.level == *level),
            ("source", self.source == *source),
            ("rater_id", self.rater_id == *rater_id),
            ("observed_at", self.observed_at == *observed_at),
            ("confidence", self.confidence == *confidence),
            ("summary", self.summary == *summary),
            ("link", self.link == *link),
            ("source_system", self.source_system == *source_system),
            ("external_id", self.external_id == *external_id),
        ]
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(field, _)| field)
        .collect()
    }

    /// This evidence with the corrected fields of `correction` replaced.
    pub fn corrected(mut self, correction: &Correction) -> Evidence {
        let c = correction.clone();
        self.level = c.level.unwrap_or(self.level);
        self.source = c.source.unwrap_or(self.source);
        self.rater_id = c.rater_id.unwrap_or(self.rater_id);
        self.observed_at = c.observed_at.unwrap_or(self.observed_at);
        self.confidence = c.confidence.unwrap_or(self.confidence);
        self.summary = c.summary.unwrap_or(self.summary);
        self.link = c.link.unwrap_or(self.link);
        self
    }

    /// Checks every field; `require_key` is false for hypothetical evidence.
    pub fn validate(&self, require_key: bool) -> Violations {
        let mut v = Violations::new();
        v.0.extend(opaque_id_violations("subject_id", &self.subject_id, true).0);
        v.0.extend(opaque_id_violations("rater_id", &self.rater_id, false).0);
        crate::domain::framework::check_id(&mut v, "competency_id", &self.competency_id);
        if !(self.level.is_finite() && (1.0..=5.0).contains(&self.level)) {
            v.add("level", "must be a number in [1, 5]");
        }
        if !(self.confidence.is_finite() && self.confidence > 0.0 && self.confidence <= 1.0) {
            v.add("confidence", "must be in (0, 1]");
        }
        for (field, value) in [
            ("competency_id", &self.competency_id),
            ("summary", &self.summary),
            ("link", &self.link),
            ("source_system", &self.source_system),
            ("external_id", &self.external_id),
        ] {
            // PostgreSQL text cannot hold a NUL byte.
            if value.contains('\0') {
                v.add(field, "must not contain NUL characters");
            }
        }
        if self.summary.chars().count() > MAX_TEXT_LEN {
            v.add(
                "summary",
                format!("must be at most {MAX_TEXT_LEN} characters"),
            );
        }
        if let Some(problem) = link_problem(&self.link) {
            v.add("link", problem);
        }
        for (field, value) in [
            ("source_system", &self.source_system),
            ("external_id", &self.external_id),
        ] {
            if require_key && value.is_empty() {
                v.add(
                    field,
                    "is required: (source_system, external_id) makes ingest idempotent",
                );
            } else if value.chars().count() > MAX_ID_LEN {
                v.add(field, format!("must be at most {MAX_ID_LEN} characters"));
            }
        }
        v
    }
}

impl Evidence {
    /// Refuses an observation dated more than [`FUTURE_TOLERANCE`] after `now`.
    pub fn validate_date(&self, now: chrono::DateTime<chrono::Utc>) -> Violations {
        let mut v = Violations::new();
        if self.observed_at > now + FUTURE_TOLERANCE {
            v.add(
                "observed_at",
                "must not be more than a day after the server's clock: an observation cannot come from the future",
            );
        }
        v
    }
}

/// A correction of stored evidence: the fields it replaces (`Some`). The
/// subject, the competency and the caller's key say which observation it
/// is, so they are never corrected: a different one is other evidence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Correction {
    pub level: Option<f64>,
    pub source: Option<Source>,
    pub rater_id: Option<String>,
    pub observed_at: Option<DateTime<Utc>>,
    pub confidence: Option<f64>,
    pub summary: Option<String>,
    pub link: Option<String>,
}

impl Correction {
    /// The violations of the corrected fields, named as in [`Evidence::validate`].
    /// Every field is checked on its own, so the correction applied to any
    /// valid evidence is refused for exactly the corrected fields' problems:
    /// it can be checked before the stored evidence is read.
    pub fn validate(&self, now: DateTime<Utc>) -> Violations {
        let valid = Evidence {
            id: Uuid::nil(),
            subject_id: "s".into(),
            competency_id: "c".into(),
            level: 3.0,
            source: Source::Peer,
            rater_id: String::new(),
            observed_at: now,
            confidence: DEFAULT_CONFIDENCE,
            summary: String::new(),
            link: String::new(),
            source_system: "s".into(),
            external_id: "e".into(),
        }
        .corrected(self);
        let mut v = valid.validate(true);
        v.0.extend(valid.validate_date(now).0);
        v
    }
}

/// Why a link is refused, if it is: an empty one is absent; otherwise an
/// absolute http(s) URL of printable ASCII, at most [`MAX_LINK_LEN`].
fn link_problem(link: &str) -> Option<String> {
    if link.is_empty() {
        None
    } else if link.len() > MAX_LINK_LEN {
        Some(format!("must be at most {MAX_LINK_LEN} characters"))
    } else if !link.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be a URL of printable ASCII without spaces (percent-encode the rest)".into())
    } else {
        let rest = link
            .strip_prefix("https://")
            .or_else(|| link.strip_prefix("http://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => None,
            _ => Some("must be an http:// or https:// URL with a host".into()),
        }
    }
}

/// Subjects and raters are opaque HRIS ids: an e-mail address is personal
/// data Ladder refuses to hold.
pub fn opaque_id_violations(field: &str, value: &str, required: bool) -> Violations {
    let mut v = Violations::new();
    if value.is_empty() {
        if required {
            v.add(field, "is required");
        }
    } else if value.chars().count() > MAX_ID_LEN {
        v.add(field, format!("must be at most {MAX_ID_LEN} characters"));
    } else if value.contains('@') {
        v.add(field, "must be an opaque id, not an e-mail address");
    } else if value.chars().any(char::is_control) {
        v.add(field, "must not contain control characters");
    }
    v
}

/// Validates a batch, naming each bad item as `evidence[i].field`, and refuses
/// two items with the same key but different content. `None` stands for an
/// item the caller could not even parse (already reported), so that indices
/// stay those of the request.
pub fn validate_batch(
    items: &[Option<Evidence>],
    max_items: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Violations> {
    let mut v = Violations::new();
    if items.is_empty() {
        v.add("evidence", "must hold at least one item");
    }
    if items.len() > max_items {
        v.add("evidence", format!("must hold at most {max_items} entries"));
        return Err(v);
    }
    let mut seen: HashMap<(&str, &str), (usize, &Evidence)> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let Some(item) = item else { continue };
        v.extend_prefixed(&format!("evidence[{i}]"), item.validate(true));
        v.extend_prefixed(&format!("evidence[{i}]"), item.validate_date(now));
        let key = (item.source_system.as_str(), item.external_id.as_str());
        match seen.get(&key) {
            Some((first, earlier)) if !earlier.same_content(item) => v.add(
                format!("evidence[{i}].external_id"),
                format!("repeats the key of evidence[{first}] with different content"),
            ),
            Some(_) => {}
            None => {
                seen.insert(key, (i, item));
            }
        }
    }
    v.into_result(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating() -> Evidence {
        Evidence {
            id: Uuid::now_v7(),
            subject_id: "emp-1".into(),
            competency_id: "mentoring".into(),
            level: 3.0,
            source: Source::Peer,
            rater_id: "r-1".into(),
            observed_at: DateTime::from_timestamp(1_767_000_000, 0).unwrap(),
            confidence: 1.0,
            summary: String::new(),
            link: String::new(),
            source_system: "hris".into(),
            external_id: "k-1".into(),
        }
    }

    #[test]
    fn a_resend_differs_in_the_fields_it_changes_never_in_its_id() {
        let stored = rating();
        let resent = Evidence {
            id: Uuid::now_v7(),
            level: 4.0,
            summary: "again".into(),
            ..stored.clone()
        };
        assert_eq!(stored.differing_fields(&resent), ["level", "summary"]);
        assert!(stored.same_content(&Evidence {
            id: Uuid::now_v7(),
            ..stored.clone()
        }));
    }

    #[test]
    fn a_correction_is_refused_for_exactly_its_own_bad_fields() {
        let now = Utc::now();
        let bad = Correction {
            level: Some(7.0),
            link: Some("ftp://x".into()),
            ..Correction::default()
        };
        let fields: Vec<String> = bad.validate(now).fields();
        assert_eq!(fields, ["level", "link"]);
        let good = Correction {
            level: Some(4.5),
            ..Correction::default()
        };
        assert!(good.validate(now).is_empty());
        assert_eq!(rating().corrected(&good).level, 4.5);
    }
}
