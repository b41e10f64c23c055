//! Human oversight of the scores (SPEC §11): explanations of an assessment,
//! records of the decisions people take on them with the oversight report
//! over those, and the adverse-impact report across groups of subjects.
//! What these give an organisation is described in `docs/oversight.md`.

mod decisions;
mod explain;
mod fisher;
mod impact;

pub use decisions::{
    Agreement, Decision, DecisionInput, MAX_OVERRIDE_REASON_LEN, MAX_OVERRIDES, MAX_RATIONALE_LEN,
    MIN_DEPARTING_RATIONALE, Outcome, Override, OverrideInput, OversightReport, Period,
    oversight_report, record_decision,
};
pub use explain::{
    CREDIBLE_80_Z, CompetencyExplanation, CredibleInterval, DecidingCompetency, DecidingReason,
    ExplainError, Explanation, FURTHER_DECIDING, Influence, TOP_INFLUENCES, explain, influences,
    summary,
};
pub use fisher::fisher_exact_two_sided;
pub use impact::{
    GroupFigures, GroupImpact, GroupLabel, ImpactReport, LabelledOutcome, LabelsAudit,
    MAX_GROUP_LEN, MAX_GROUPS, MAX_LABELS, MIN_REPORTED_GROUP, impact_report, labels_audit,
    validate_labels,
};
