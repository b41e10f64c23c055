//! Field-level validation errors shared by every part of the domain.
//!
//! A violation names the offending field with a path (`evidence[17].level`,
//! `roles[3].rubric.competencies[2].expected_level`) so that the transport layer
//! can turn it into a `google.rpc.BadRequest` field violation without knowing
//! which part of the domain produced it.

use std::fmt;

/// One offending field and why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// Every violation found in one input; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// A single violation, for the common case of one bad field.
    pub fn one(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = Self::new();
        v.add(field, description);
        v
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Adds the violations of a nested input, prefixing their fields with `prefix`
    /// (`evidence[3]` + `level` gives `evidence[3].level`).
    pub fn extend_prefixed(&mut self, prefix: &str, other: Violations) {
        for v in other.0 {
            let field = if prefix.is_empty() {
                v.field
            } else if v.field.is_empty() {
                prefix.to_string()
            } else if v.field.starts_with('[') {
                format!("{prefix}{}", v.field)
            } else {
                format!("{prefix}.{}", v.field)
            };
            self.0.push(FieldViolation {
                field,
                description: v.description,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields named, in the order they were found.
    pub fn fields(&self) -> Vec<String> {
        self.0.iter().map(|v| v.field.clone()).collect()
    }

    /// `Ok(value)` when nothing was found, the violations otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, Violations> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_nested_fields() {
        let mut outer = Violations::new();
        outer.extend_prefixed("evidence[3]", Violations::one("level", "must be in [1, 5]"));
        outer.extend_prefixed("items", Violations::one("[2]", "bad"));
        assert_eq!(outer.0[0].field, "evidence[3].level");
        assert_eq!(outer.0[1].field, "items[2]");
        assert_eq!(
            outer.to_string(),
            "evidence[3].level: must be in [1, 5]; items[2]: bad"
        );
    }
}
