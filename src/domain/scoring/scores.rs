//! The results of scoring, stored as JSON snapshots in assessments: every
//! number of SPEC §4 and the evidence that produced it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The score of one subject against one rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleScore {
    /// One entry per rubric competency, in rubric order.
    pub competencies: Vec<CompetencyScore>,
    /// Σ W_c·p_c / Σ W_c.
    pub readiness: f64,
    /// Σ W_c·p_c over the competencies with enough evidence / Σ W_c: the part
    /// of the readiness the evidence supports rather than the prior (SPEC §5).
    /// Snapshots stored before it existed read as 0.
    #[serde(default)]
    pub supported_readiness: f64,
    /// Share of rubric weight whose competencies have enough evidence.
    pub coverage: f64,
    pub band: Band,
}

/// The posterior estimate of one competency and the evidence behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetencyScore {
    pub competency_id: String,
    /// E_c, copied from the rubric.
    pub expected_level: u8,
    /// W_c, copied from the rubric.
    pub weight: f64,
    pub critical: bool,
    /// n_c = Σ w_e, the effective amount of evidence.
    pub n: f64,
    /// Σ w_e·x_e, exactly as the engine summed it. Recovering it from `m` and
    /// `n` would cost the last bits, and planning (which extends these sums by
    /// hypothetical observations) must see the very numbers the engine saw to
    /// agree with it at the boundary of a target.
    pub weighted_level_sum: f64,
    /// m_c, the estimated level.
    pub m: f64,
    /// sd_c, the posterior standard deviation of the level.
    pub sd: f64,
    /// p_c, the probability that the level meets the bar E_c − 0.5.
    pub p: f64,
    /// gap_c = max(0, E_c − 0.5 − m_c).
    pub gap: f64,
    /// Weighted standard deviation of the observed levels (0 without evidence).
    pub disagreement: f64,
    pub status: CompetencyStatus,
    /// Whether the sources disagree by more than one level.
    pub conflicting: bool,
    /// Every observation counted for this competency, ordered by evidence id
    /// (then weight) so that the output does not depend on input order.
    pub contributions: Vec<Contribution>,
}

/// One observation's weight w_e in a competency score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub evidence_id: Uuid,
    pub weight: f64,
    /// The rater's leniency b_r subtracted from the observation's level under
    /// rater calibration (SPEC §10): it entered as x_e − b_r. 0 without one;
    /// snapshots stored before calibration existed read as 0.
    #[serde(default)]
    pub rater_adjustment: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompetencyStatus {
    InsufficientEvidence,
    Below,
    Meets,
    Exceeds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Band {
    InsufficientEvidence,
    NotYet,
    Developing,
    Ready,
}

impl Band {
    pub const ALL: [Band; 4] = [
        Band::InsufficientEvidence,
        Band::NotYet,
        Band::Developing,
        Band::Ready,
    ];

    /// How the band is stored and read by people: `insufficient_evidence`.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::InsufficientEvidence => "insufficient_evidence",
            Band::NotYet => "not_yet",
            Band::Developing => "developing",
            Band::Ready => "ready",
        }
    }

    pub fn parse(s: &str) -> Option<Band> {
        Band::ALL.into_iter().find(|band| band.as_str() == s)
    }
}
