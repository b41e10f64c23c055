//! A stored, reproducible snapshot of scoring one subject against one rubric.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::scoring::{RoleScore, ScoringPolicy};

#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub id: Uuid,
    pub subject_id: String,
    pub role_id: String,
    pub rubric_version: i32,
    pub as_of: DateTime<Utc>,
    /// The policy in force when it was computed.
    pub policy: ScoringPolicy,
    /// Every number of SPEC §4 with the contributing evidence.
    pub score: RoleScore,
    /// The calibration whose rater leniencies were removed before scoring
    /// (SPEC §10); `None` when none was.
    pub calibration_id: Option<Uuid>,
    pub create_time: DateTime<Utc>,
}

/// A subject and the role they hold now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub id: String,
    pub current_role_id: Option<String>,
}
