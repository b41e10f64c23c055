//! Field-level checks of competencies, roles and rubric expectations, shared
//! by the API and framework files. Fields are named relative to the checked
//! value (`levels[2].title`); callers prefix them with where the value sits.

use std::collections::HashSet;

use crate::domain::framework::{Competency, Role, RubricCompetency, Track};
use crate::domain::validation::Violations;

pub const MAX_ID_CHARS: usize = 64;
pub const MAX_NAME_CHARS: usize = 200;
/// Descriptions, behaviours and development actions.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Bounds on list lengths, so that one request or file cannot grow without limit.
const MAX_ITEMS: usize = 100;
const LEVELS: usize = 5;
/// Seniority levels a role may have: room for any real ladder, none for
/// numbers that only overflow.
pub const SENIORITY_RANGE: std::ops::RangeInclusive<i32> = 0..=1000;

/// The names of the fields that differ between framework files and the API.
#[derive(Debug, Clone, Copy)]
pub struct FieldNames {
    /// The competency a rubric expectation refers to.
    pub rubric_competency: &'static str,
    /// The role a transition leads to.
    pub transition_target: &'static str,
    /// The track a role belongs to.
    pub role_track: &'static str,
}

impl FieldNames {
    pub const FILE: FieldNames = FieldNames {
        rubric_competency: "competency",
        transition_target: "to",
        role_track: "track",
    };
}

fn is_snake_case(id: &str) -> bool {
    id.split('_').all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    }) && id.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Whether `id` is a valid id: snake_case, at most [`MAX_ID_CHARS`].
pub fn is_valid_id(id: &str) -> bool {
    id.chars().count() <= MAX_ID_CHARS && is_snake_case(id)
}

/// Checks an id: snake_case, at most [`MAX_ID_CHARS`].
pub fn check_id(v: &mut Violations, field: &str, id: &str) {
    if id.is_empty() {
        v.add(field, "must not be empty");
    } else if id.chars().count() > MAX_ID_CHARS {
        v.add(field, format!("must be at most {MAX_ID_CHARS} characters"));
    } else if !is_snake_case(id) {
        v.add(
            field,
            "must be snake_case: lowercase letters and digits in words joined by single underscores, starting with a letter",
        );
    }
}

fn check_text(v: &mut Violations, field: &str, text: &str, max: usize, required: bool) {
    if required && text.trim().is_empty() {
        v.add(field, "must not be empty");
    } else if text.chars().count() > max {
        v.add(field, format!("must be at most {max} characters"));
    }
}

fn check_list(v: &mut Violations, field: &str, items: &[String]) {
    if items.len() > MAX_ITEMS {
        v.add(field, format!("must have at most {MAX_ITEMS} entries"));
    }
    for (i, item) in items.iter().enumerate() {
        check_text(v, &format!("{field}[{i}]"), item, MAX_TEXT_CHARS, true);
    }
}

pub fn validate_track(t: &Track) -> Violations {
    let mut v = Violations::new();
    check_id(&mut v, "id", &t.id);
    check_text(&mut v, "name", &t.name, MAX_NAME_CHARS, true);
    check_text(&mut v, "description", &t.description, MAX_TEXT_CHARS, false);
    v
}

pub fn validate_competency(c: &Competency) -> Violations {
    let mut v = Violations::new();
    check_id(&mut v, "id", &c.id);
    check_text(&mut v, "name", &c.name, MAX_NAME_CHARS, true);
    check_text(&mut v, "description", &c.description, MAX_TEXT_CHARS, false);
    if c.levels.len() != LEVELS {
        v.add(
            "levels",
            format!(
                "must have exactly {LEVELS} entries, levels 1..5 in order (has {})",
                c.levels.len()
            ),
        );
    }
    for (j, level) in c.levels.iter().enumerate() {
        let at = format!("levels[{j}]");
        if usize::from(level.level) != j + 1 {
            v.add(format!("{at}.level"), format!("must be {}", j + 1));
        }
        check_text(
            &mut v,
            &format!("{at}.title"),
            &level.title,
            MAX_NAME_CHARS,
            true,
        );
        check_text(
            &mut v,
            &format!("{at}.description"),
            &level.description,
            MAX_TEXT_CHARS,
            false,
        );
        check_list(&mut v, &format!("{at}.behaviours"), &level.behaviours);
    }
    v
}

/// Checks a role on its own; whether its transitions lead to existing roles
/// depends on where it is stored and is checked there.
pub fn validate_role(r: &Role, names: FieldNames) -> Violations {
    let mut v = Violations::new();
    check_id(&mut v, "id", &r.id);
    check_text(&mut v, "name", &r.name, MAX_NAME_CHARS, true);
    check_id(&mut v, names.role_track, &r.track);
    if !SENIORITY_RANGE.contains(&r.seniority) {
        v.add(
            "seniority",
            format!(
                "must be a whole number from {} to {}",
                SENIORITY_RANGE.start(),
                SENIORITY_RANGE.end()
            ),
        );
    }
    check_text(&mut v, "description", &r.description, MAX_TEXT_CHARS, false);
    if r.transitions.len() > MAX_ITEMS {
        v.add(
            "transitions",
            format!("must have at most {MAX_ITEMS} entries"),
        );
    }
    let mut seen = HashSet::new();
    for (k, t) in r.transitions.iter().enumerate() {
        let field = format!("transitions[{k}].{}", names.transition_target);
        check_id(&mut v, &field, &t.to);
        if t.to == r.id {
            v.add(&field, "a role cannot transition to itself");
        } else if !seen.insert(t.to.as_str()) {
            v.add(&field, format!("duplicate transition to {:?}", t.to));
        }
    }
    v
}

/// Checks a rubric's expectations (fields `competencies[k]...`); whether the
/// competencies exist is checked where they are stored.
pub fn validate_expectations(items: &[RubricCompetency], names: FieldNames) -> Violations {
    let mut v = Violations::new();
    if items.is_empty() {
        v.add("competencies", "must have at least one entry");
    } else if items.len() > MAX_ITEMS {
        v.add(
            "competencies",
            format!("must have at most {MAX_ITEMS} entries"),
        );
    }
    let mut seen = HashSet::new();
    for (k, c) in items.iter().enumerate() {
        let at = format!("competencies[{k}]");
        let field = format!("{at}.{}", names.rubric_competency);
        check_id(&mut v, &field, &c.competency_id);
        if !seen.insert(c.competency_id.as_str()) {
            v.add(
                &field,
                format!("duplicate competency {:?}", c.competency_id),
            );
        }
        if !(1..=5).contains(&c.expected_level) {
            v.add(format!("{at}.expected_level"), "must be 1..5");
        }
        if !(c.weight.is_finite()
            && c.weight > 0.0
            && c.weight <= crate::domain::scoring::MAX_WEIGHT)
        {
            v.add(
                format!("{at}.weight"),
                format!(
                    "must be a number > 0 and at most {}",
                    crate::domain::scoring::MAX_WEIGHT
                ),
            );
        }
        check_list(
            &mut v,
            &format!("{at}.development_actions"),
            &c.development_actions,
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_ids() {
        for ok in ["a", "system_design", "l2_support", "x9"] {
            assert!(is_snake_case(ok), "{ok}");
        }
        for bad in ["", "_a", "a_", "a__b", "A", "9a", "a-b", "a b"] {
            assert!(!is_snake_case(bad), "{bad}");
        }
    }
}
