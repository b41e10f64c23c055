//! The scoring engine of SPEC §4: turns a subject's evidence, a rubric and a
//! scoring policy into per-competency estimates and a role readiness band.
//!
//! Everything here is pure computation — no I/O, no clocks (the caller passes
//! `as_of`) — so that a stored assessment can be reproduced bit for bit from its
//! inputs. The model is explained for non-engineers in `docs/scoring.md`.

mod adjustments;
mod engine;
mod model;
mod numeric;
mod observations;
mod planning;
mod policy;
mod rubric;
mod samples;
mod scores;

pub use adjustments::RaterAdjustments;
pub use engine::{
    ManyRubrics, RoleTotals, RubricSet, score, score_calibrated, score_calibrated_unchecked,
    score_unchecked,
};
pub use observations::validate_evidence;
pub use planning::{
    MAX_PLANNED_OBSERVATIONS, ProbabilityTarget, observations_for_min_evidence,
    observations_needed, observations_needed_for,
};
pub use policy::{MAX_CALIBRATION_WINDOW_DAYS, MAX_WEIGHT, ScoringPolicy, SourceWeights};
pub use rubric::{Expectation, validate_rubric};
pub use scores::{Band, CompetencyScore, CompetencyStatus, Contribution, RoleScore};
