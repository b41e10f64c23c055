//! A subject's place in the organisation (SPEC §3): its org unit and its
//! manager.

use crate::domain::evidence::opaque_id_violations;
use crate::domain::validation::Violations;

/// Parts of an org unit path, at most.
pub const MAX_ORG_UNIT_PARTS: usize = 8;
/// Characters of one part, at most.
pub const MAX_ORG_UNIT_PART_CHARS: usize = 64;

/// An org unit is `/`-separated parts, 1 to 8 of them, each 1 to 64 of
/// `a-z`, `0-9`, `_` and `-`, starting with a letter or digit: the spelling
/// of team names in paths and URLs (snake_case or kebab-case). One spelling
/// per unit is what lets a prefix select a unit and everything below it.
pub fn org_unit_violations(field: &str, value: &str) -> Violations {
    let parts: Vec<&str> = value.split('/').collect();
    if parts.len() > MAX_ORG_UNIT_PARTS {
        return Violations::one(
            field,
            format!("must have at most {MAX_ORG_UNIT_PARTS} parts separated by '/'"),
        );
    }
    for part in parts {
        let why = if part.is_empty() {
            "must not have an empty part (a leading, trailing or doubled '/')".to_string()
        } else if part.chars().count() > MAX_ORG_UNIT_PART_CHARS {
            format!("a part must be at most {MAX_ORG_UNIT_PART_CHARS} characters")
        } else if !part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            || !part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            format!(
                "part {part:?} must be lower-case letters, digits, '_' and '-', \
                 starting with a letter or digit"
            )
        } else {
            continue;
        };
        return Violations::one(field, why);
    }
    Violations::new()
}

/// A manager id: an opaque subject id like any other, and never the
/// subject's own.
pub fn manager_violations(field: &str, subject_id: &str, manager_id: &str) -> Violations {
    let v = opaque_id_violations(field, manager_id, false);
    if v.is_empty() && manager_id == subject_id {
        return Violations::one(field, "must not be the subject itself");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str) -> bool {
        org_unit_violations("org_unit", value).is_empty()
    }

    #[test]
    fn org_units_are_up_to_eight_well_spelled_parts() {
        assert!(ok("engineering"));
        assert!(ok("engineering/platform/payments"));
        assert!(ok("a/b/c/d/e/f/g/h"));
        assert!(ok("site-reliability/team_2"));
        assert!(ok(&"x".repeat(64)));
        assert!(!ok("a/b/c/d/e/f/g/h/i"));
        assert!(!ok(""));
        assert!(!ok("engineering/"));
        assert!(!ok("/engineering"));
        assert!(!ok("engineering//platform"));
        assert!(!ok("Engineering"));
        assert!(!ok("engineering/plat form"));
        assert!(!ok("-platform"));
        assert!(!ok(&"x".repeat(65)));
    }

    #[test]
    fn a_subject_is_not_its_own_manager() {
        assert!(manager_violations("m", "emp-1", "emp-2").is_empty());
        assert!(!manager_violations("m", "emp-1", "emp-1").is_empty());
        assert!(!manager_violations("m", "emp-1", "a@b.c").is_empty());
    }
}
