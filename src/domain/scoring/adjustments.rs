//! What rater calibration (SPEC §10) changes in scoring: each evidence item
//! whose rater has an estimated leniency b_r enters §4 with level x_e − b_r.

use std::collections::HashMap;

use uuid::Uuid;

use super::policy::MAX_WEIGHT;
use crate::domain::validation::Violations;

/// Evidence id → the leniency b_r of the item's rater, subtracted from its
/// level. Keyed by evidence rather than by rater because scoring reads
/// [`Observation`](crate::domain::evidence::Observation)s, which do not carry
/// the rater; `calibration::RaterEffects::adjustments` builds it from the
/// (evidence id, rater id) pairs. Empty (the default) scores exactly as
/// without calibration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaterAdjustments(HashMap<Uuid, f64>);

impl RaterAdjustments {
    /// Records that evidence `evidence_id` was given by a rater of leniency `b_r`.
    pub fn insert(&mut self, evidence_id: Uuid, leniency: f64) {
        self.0.insert(evidence_id, leniency);
    }

    /// Every (evidence id, leniency) pair, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (Uuid, f64)> + '_ {
        self.0.iter().map(|(&id, &leniency)| (id, leniency))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The leniency to subtract from the level of `evidence_id`; 0 when its
    /// rater has none.
    pub fn of(&self, evidence_id: Uuid) -> f64 {
        self.0.get(&evidence_id).copied().unwrap_or(0.0)
    }

    /// Every adjustment must be finite and, like weights, at most
    /// [`MAX_WEIGHT`] in size, so that adjusted levels keep the sums of §4
    /// far from overflow. Fields are named `rater_adjustments[<evidence id>]`,
    /// in id order.
    pub fn validate(&self) -> Result<(), Violations> {
        let mut bad: Vec<Uuid> = self
            .0
            .iter()
            .filter(|(_, leniency)| !(leniency.is_finite() && leniency.abs() <= MAX_WEIGHT))
            .map(|(&id, _)| id)
            .collect();
        bad.sort_unstable();
        let mut violations = Violations::new();
        for id in bad {
            violations.add(
                format!("rater_adjustments[{id}]"),
                "must be a finite number in [-1000000, 1000000]",
            );
        }
        violations.into_result(())
    }
}

impl FromIterator<(Uuid, f64)> for RaterAdjustments {
    fn from_iter<I: IntoIterator<Item = (Uuid, f64)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_evidence_is_not_adjusted_and_bad_values_are_named_in_id_order() {
        let adjustments: RaterAdjustments = [
            (Uuid::from_u128(2), f64::NAN),
            (Uuid::from_u128(1), -2e6),
            (Uuid::from_u128(3), -0.25),
        ]
        .into_iter()
        .collect();
        assert_eq!(adjustments.of(Uuid::from_u128(3)), -0.25);
        assert_eq!(adjustments.of(Uuid::from_u128(4)), 0.0);
        let fields: Vec<String> = adjustments.validate().unwrap_err().fields();
        assert_eq!(
            fields,
            [
                format!("rater_adjustments[{}]", Uuid::from_u128(1)),
                format!("rater_adjustments[{}]", Uuid::from_u128(2)),
            ]
        );
        assert_eq!(RaterAdjustments::default().validate(), Ok(()));
    }
}
