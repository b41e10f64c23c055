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

/// A subject, the role they hold now and their place in the organisation
/// (see `domain::subject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub id: String,
    pub current_role_id: Option<String>,
    /// A path of whole parts, `engineering/platform/payments`.
    pub org_unit: Option<String>,
    /// Another subject's id.
    pub manager_id: Option<String>,
}

impl Subject {
    /// A subject with nothing recorded but its id.
    pub fn bare(id: String) -> Self {
        Self {
            id,
            current_role_id: None,
            org_unit: None,
            manager_id: None,
        }
    }
}
