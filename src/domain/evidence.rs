//! Evidence: one observation about one person for one competency.

use chrono::{DateTime, Utc};
use uuid::Uuid;

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
