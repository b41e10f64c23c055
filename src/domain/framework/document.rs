//! Framework files (`format: ladder.framework/v1`): what `ladder framework
//! export` writes, `import` reads, and the built-in framework is written in.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::domain::framework::validate::{
    FieldNames, validate_competency, validate_expectations, validate_role,
};
use crate::domain::framework::{Competency, Role, RubricCompetency, Track, Transition};
use crate::domain::validation::Violations;

pub const FORMAT: &str = "ladder.framework/v1";

const BUILTIN_YAML: &str = include_str!("../../../framework/builtin.yaml");

const EXPORT_HEADER: &str = "# Ladder career framework, written by `ladder framework export`.\n\
     # Format: ladder.framework/v1 (docs/framework.md); `ladder framework import FILE` reads it.\n";

/// A whole framework: competencies, and roles each with its rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    pub competencies: Vec<Competency>,
    pub roles: Vec<RoleDocument>,
}

/// A role as a file holds it: the role and the expectations of its current
/// published rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDocument {
    pub id: String,
    pub name: String,
    pub track: Track,
    pub description: String,
    pub transitions: Vec<Transition>,
    /// Absent for a role without a published rubric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rubric: Option<RubricDocument>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RubricDocument {
    pub competencies: Vec<RubricCompetency>,
}

impl RoleDocument {
    pub fn new(role: Role, rubric: Option<Vec<RubricCompetency>>) -> Self {
        Self {
            id: role.id,
            name: role.name,
            track: role.track,
            description: role.description,
            transitions: role.transitions,
            rubric: rubric.map(|competencies| RubricDocument { competencies }),
        }
    }

    pub fn role(&self) -> Role {
        Role {
            id: self.id.clone(),
            name: self.name.clone(),
            track: self.track,
            description: self.description.clone(),
            transitions: self.transitions.clone(),
        }
    }
}

/// The serde error's `path: message` split into a field violation.
fn parse_error(err: &serde_yaml_ng::Error) -> Violations {
    let message = err.to_string();
    match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => Violations::one(path, rest),
        _ => Violations::one("", message),
    }
}

impl Document {
    /// Parses and validates a framework file; every problem names its YAML path.
    pub fn from_yaml(text: &str) -> Result<Document, Violations> {
        let doc: Document = serde_yaml_ng::from_str(text).map_err(|e| parse_error(&e))?;
        doc.validate().into_result(doc)
    }

    pub fn to_yaml(&self) -> Result<String, serde_yaml_ng::Error> {
        Ok(format!(
            "{EXPORT_HEADER}{}",
            serde_yaml_ng::to_string(self)?
        ))
    }

    /// The framework every new tenant starts with (`framework/builtin.yaml`).
    pub fn builtin() -> &'static Document {
        static BUILTIN: OnceLock<Document> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Document::from_yaml(BUILTIN_YAML)
                .unwrap_or_else(|v| panic!("framework/builtin.yaml is invalid: {v}"))
        })
    }

    /// The ids of the file's competencies, in file order.
    pub fn competency_ids(&self) -> Vec<&str> {
        self.competencies.iter().map(|c| c.id.as_str()).collect()
    }

    /// Every problem of the file, each with its YAML path. A file is
    /// self-contained: transitions and rubrics refer to roles and competencies
    /// defined in it.
    pub fn validate(&self) -> Violations {
        let mut v = Violations::new();
        if self.format != FORMAT {
            v.add("format", format!("must be {FORMAT}"));
        }
        let mut competencies = HashSet::new();
        for (i, c) in self.competencies.iter().enumerate() {
            let at = format!("competencies[{i}]");
            v.extend_prefixed(&at, validate_competency(c));
            if !competencies.insert(c.id.as_str()) {
                v.add(
                    format!("{at}.id"),
                    format!("duplicate competency id {:?}", c.id),
                );
            }
        }
        let mut roles = HashSet::new();
        for (i, r) in self.roles.iter().enumerate() {
            if !roles.insert(r.id.as_str()) {
                v.add(
                    format!("roles[{i}].id"),
                    format!("duplicate role id {:?}", r.id),
                );
            }
        }
        for (i, r) in self.roles.iter().enumerate() {
            let at = format!("roles[{i}]");
            v.extend_prefixed(&at, validate_role(&r.role(), FieldNames::FILE));
            for (k, t) in r.transitions.iter().enumerate() {
                if !roles.contains(t.to.as_str()) {
                    v.add(
                        format!("{at}.transitions[{k}].to"),
                        format!("unknown role {:?}: not defined in this file", t.to),
                    );
                }
            }
            let Some(rubric) = &r.rubric else { continue };
            let at = format!("{at}.rubric");
            v.extend_prefixed(
                &at,
                validate_expectations(&rubric.competencies, FieldNames::FILE),
            );
            for (k, c) in rubric.competencies.iter().enumerate() {
                if !competencies.contains(c.competency_id.as_str()) {
                    v.add(
                        format!("{at}.competencies[{k}].competency"),
                        format!(
                            "unknown competency {:?}: not defined in this file",
                            c.competency_id
                        ),
                    );
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_framework_is_valid_and_complete() {
        let doc = Document::builtin();
        assert_eq!(doc.competencies.len(), 16);
        assert_eq!(doc.roles.len(), 24);
        assert!(doc.roles.iter().all(|r| r.rubric.is_some()));
    }

    #[test]
    fn export_parses_back_to_the_same_document() {
        let doc = Document::builtin();
        let text = doc.to_yaml().unwrap();
        assert_eq!(&Document::from_yaml(&text).unwrap(), doc);
    }

    #[test]
    fn errors_name_their_yaml_path() {
        let mut doc = Document::builtin().clone();
        doc.roles[3].rubric.as_mut().unwrap().competencies[2].expected_level = 7;
        doc.roles[1].transitions[0].to = "nobody".into();
        doc.competencies[0].levels.pop();
        let fields: Vec<String> = doc.validate().0.into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "competencies[0].levels",
                "roles[1].transitions[0].to",
                "roles[3].rubric.competencies[2].expected_level"
            ]
        );
    }

    #[test]
    fn type_errors_name_their_yaml_path() {
        let text = BUILTIN_YAML.replacen("expected_level: 3", "expected_level: high", 1);
        let err = Document::from_yaml(&text).unwrap_err();
        assert_eq!(
            err.0[0].field,
            "roles[0].rubric.competencies[0].expected_level"
        );
    }
}
