//! The career framework: competencies, roles with their transitions, and the
//! versioned rubrics that say what each role expects.

mod document;
mod validate;

pub use document::{Document, FORMAT, RoleDocument, RubricDocument};
pub use validate::{
    FieldNames, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_TEXT_CHARS, check_id, validate_competency,
    validate_expectations, validate_role,
};

use serde::{Deserialize, Serialize};

use crate::domain::scoring::Expectation;

/// One of the five levels of a competency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelDescriptor {
    /// 1 (aware) to 5 (expert).
    pub level: u8,
    pub title: String,
    pub description: String,
    pub behaviours: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Competency {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Exactly five, levels 1..=5 in order.
    pub levels: Vec<LevelDescriptor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Track {
    IndividualContributor,
    Management,
    Product,
    Business,
}

impl Track {
    pub const ALL: [Track; 4] = [
        Track::IndividualContributor,
        Track::Management,
        Track::Product,
        Track::Business,
    ];

    /// The stable name used in storage and files.
    pub fn as_str(self) -> &'static str {
        match self {
            Track::IndividualContributor => "individual_contributor",
            Track::Management => "management",
            Track::Product => "product",
            Track::Business => "business",
        }
    }

    pub fn parse(s: &str) -> Option<Track> {
        Track::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    Promotion,
    Lateral,
}

impl TransitionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Promotion => "promotion",
            TransitionKind::Lateral => "lateral",
        }
    }

    pub fn parse(s: &str) -> Option<TransitionKind> {
        [TransitionKind::Promotion, TransitionKind::Lateral]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A move out of a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub to: String,
    pub kind: TransitionKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub track: Track,
    pub description: String,
    pub transitions: Vec<Transition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RubricState {
    Draft,
    Published,
    Superseded,
    Retired,
}

impl RubricState {
    pub fn as_str(self) -> &'static str {
        match self {
            RubricState::Draft => "draft",
            RubricState::Published => "published",
            RubricState::Superseded => "superseded",
            RubricState::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<RubricState> {
        [
            RubricState::Draft,
            RubricState::Published,
            RubricState::Superseded,
            RubricState::Retired,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What can be done to a rubric version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RubricAction {
    Edit,
    Delete,
    Publish,
    Retire,
}

impl RubricState {
    /// The state a version moves to under `action`, or why `action` is
    /// refused: published versions are immutable because assessments cite them.
    pub fn after(self, action: RubricAction) -> Result<RubricState, String> {
        use RubricAction::*;
        use RubricState::*;
        match (action, self) {
            (Edit | Delete, Draft) => Ok(Draft),
            (Publish, Draft) => Ok(Published),
            (Retire, Published | Superseded) => Ok(Retired),
            (Edit | Delete | Publish, _) => Err(format!(
                "the version is {}: only a draft can be edited, deleted or published; create a new draft instead",
                self.as_str()
            )),
            (Retire, Draft) => {
                Err("the version is a draft: delete it instead of retiring it".into())
            }
            (Retire, Retired) => Err("the version is already retired".into()),
        }
    }
}

/// The expectation of one competency in a rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RubricCompetency {
    /// `competency` in framework files, which name the competency it refers to.
    #[serde(rename = "competency")]
    pub competency_id: String,
    pub expected_level: u8,
    pub weight: f64,
    pub critical: bool,
    pub development_actions: Vec<String>,
}

/// One version of a role's rubric.
#[derive(Debug, Clone, PartialEq)]
pub struct Rubric {
    pub role_id: String,
    pub version: i32,
    pub state: RubricState,
    pub competencies: Vec<RubricCompetency>,
}

impl Rubric {
    /// What the scoring engine reads of this rubric.
    pub fn expectations(&self) -> Vec<Expectation> {
        self.competencies
            .iter()
            .map(|c| Expectation {
                competency_id: c.competency_id.clone(),
                expected_level: c.expected_level,
                weight: c.weight,
                critical: c.critical,
            })
            .collect()
    }

    pub fn competency(&self, id: &str) -> Option<&RubricCompetency> {
        self.competencies.iter().find(|c| c.competency_id == id)
    }
}

/// A tenant's roles and the rubrics recommendations score: every role with its
/// transitions, and the published version of each role's rubric.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub roles: Vec<Role>,
    pub rubrics: Vec<Rubric>,
}

impl Catalog {
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    pub fn rubric(&self, role_id: &str) -> Option<&Rubric> {
        self.rubrics.iter().find(|r| r.role_id == role_id)
    }
}
