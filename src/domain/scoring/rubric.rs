//! What scoring reads from a rubric version: one expectation per competency.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde::{Deserialize, Serialize};

use super::policy::MAX_WEIGHT;
use crate::domain::validation::Violations;

/// The expectation of one role for one competency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    pub competency_id: String,
    /// E_c, a level in 1..=5.
    pub expected_level: u8,
    /// W_c, this competency's share of the role's readiness.
    pub weight: f64,
    /// A critical competency must be met (p_c ≥ 0.5) for the role to be READY.
    pub critical: bool,
}

/// Every violation, with field paths relative to the rubric
/// (`competencies[2].weight`).
pub fn validate_rubric(rubric: &[Expectation]) -> Result<(), Violations> {
    let mut violations = Violations::new();
    if rubric.is_empty() {
        violations.add("competencies", "a rubric needs at least one competency");
    }
    let mut first_index: HashMap<&str, usize> = HashMap::with_capacity(rubric.len());
    for (i, expectation) in rubric.iter().enumerate() {
        let field = |name: &str| format!("competencies[{i}].{name}");
        let id = expectation.competency_id.as_str();
        if id.is_empty() {
            violations.add(field("competency_id"), "must not be empty");
        } else {
            match first_index.entry(id) {
                Entry::Occupied(first) => violations.add(
                    field("competency_id"),
                    format!("duplicates competencies[{}]", first.get()),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        if !(1..=5).contains(&expectation.expected_level) {
            violations.add(field("expected_level"), "must be a level in [1, 5]");
        }
        let weight = expectation.weight;
        if !(weight.is_finite() && weight > 0.0 && weight <= MAX_WEIGHT) {
            violations.add(
                field("weight"),
                "must be greater than 0 and at most 1000000",
            );
        }
    }
    violations.into_result(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectation(id: &str, expected_level: u8, weight: f64) -> Expectation {
        Expectation {
            competency_id: id.into(),
            expected_level,
            weight,
            critical: false,
        }
    }

    fn fields(result: Result<(), Violations>) -> Vec<String> {
        result.unwrap_err().fields()
    }

    #[test]
    fn accepts_a_well_formed_rubric() {
        let rubric = [
            expectation("system_design", 4, 2.0),
            expectation("mentoring", 1, 0.5),
        ];
        assert_eq!(validate_rubric(&rubric), Ok(()));
    }

    #[test]
    fn needs_at_least_one_competency() {
        assert_eq!(fields(validate_rubric(&[])), ["competencies"]);
    }

    #[test]
    fn names_every_bad_field() {
        let rubric = [
            expectation("", 0, 1.0),
            expectation("a", 6, 0.0),
            expectation("b", 3, f64::NAN),
            expectation("a", 3, f64::INFINITY),
            expectation("c", 3, 1e7),
            expectation("a", 3, -1.0),
        ];
        let result = validate_rubric(&rubric);
        assert_eq!(
            fields(result.clone()),
            [
                "competencies[0].competency_id",
                "competencies[0].expected_level",
                "competencies[1].expected_level",
                "competencies[1].weight",
                "competencies[2].weight",
                "competencies[3].competency_id",
                "competencies[3].weight",
                "competencies[4].weight",
                "competencies[5].competency_id",
                "competencies[5].weight",
            ]
        );
        let duplicates: Vec<String> = result
            .unwrap_err()
            .0
            .into_iter()
            .filter(|v| {
                v.field.ends_with("competency_id") && v.field != "competencies[0].competency_id"
            })
            .map(|v| v.description)
            .collect();
        assert_eq!(
            duplicates,
            ["duplicates competencies[1]", "duplicates competencies[1]"]
        );
    }
}
