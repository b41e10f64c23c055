//! The career framework: competencies, roles with their transitions, and the
//! versioned rubrics that say what each role expects.

mod document;
mod shape;
mod source_map;
mod validate;

pub use document::{Document, FORMAT, ImportMode, RoleDocument, RubricDocument, closest};
pub use validate::{
    FieldNames, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_TEXT_CHARS, SENIORITY_RANGE, check_id,
    is_valid_id, validate_competency, validate_expectations, validate_role, validate_track,
};

use serde::{Deserialize, Serialize};

use crate::domain::scoring::{Expectation, RubricSet};

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

/// A family of roles people move along (individual contributor, management,
/// a job family of the tenant's own): part of a tenant's framework.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Track {
    pub id: String,
    pub name: String,
    pub description: String,
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
    /// The id of one of the tenant's tracks.
    pub track: String,
    /// Higher is more senior. A promotion leads to a more senior role; READY
    /// roles that no transition reaches are recommended only at or above the
    /// current role's seniority.
    pub seniority: i32,
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
    /// For a version that is or was published: each competency's name and
    /// level descriptors as they were at publication (empty for drafts and
    /// for versions published before Ladder kept them).
    pub published_texts: Vec<PublishedText>,
}

/// A competency's words as a rubric version was published with them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedText {
    pub competency_id: String,
    pub name: String,
    pub levels: Vec<LevelDescriptor>,
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

    pub fn published_text(&self, competency_id: &str) -> Option<&PublishedText> {
        self.published_texts
            .iter()
            .find(|t| t.competency_id == competency_id)
    }
}

/// A tenant's tracks, roles and the rubrics recommendations score: every role
/// with its transitions, and the published version of each role's rubric.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tracks: Vec<Track>,
    roles: Vec<Role>,
    rubrics: Vec<Rubric>,
    /// What the scoring engine reads of each rubric, in `rubrics`' order,
    /// prepared for scoring them all: once per catalog, which a server keeps
    /// while the framework is unchanged, rather than once per recommendation.
    rubric_set: RubricSet,
}

impl Catalog {
    pub fn new(tracks: Vec<Track>, roles: Vec<Role>, rubrics: Vec<Rubric>) -> Self {
        let rubric_set = RubricSet::new(rubrics.iter().map(Rubric::expectations).collect());
        Self {
            tracks,
            roles,
            rubrics,
            rubric_set,
        }
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    pub fn rubrics(&self) -> &[Rubric] {
        &self.rubrics
    }

    pub fn into_parts(self) -> (Vec<Track>, Vec<Role>, Vec<Rubric>) {
        (self.tracks, self.roles, self.rubrics)
    }

    /// [`Rubric::expectations`] of each of [`Catalog::rubrics`], in order,
    /// prepared for scoring them all.
    pub fn rubric_set(&self) -> &RubricSet {
        &self.rubric_set
    }

    /// This catalog with `role` too: a retired role someone still holds,
    /// read as it was so that recommendations can start from it.
    pub fn with_role(&self, role: Role) -> Catalog {
        let mut roles = self.roles.clone();
        roles.push(role);
        Catalog {
            tracks: self.tracks.clone(),
            roles,
            rubrics: self.rubrics.clone(),
            rubric_set: self.rubric_set.clone(),
        }
    }

    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    pub fn rubric(&self, role_id: &str) -> Option<&Rubric> {
        self.rubrics.iter().find(|r| r.role_id == role_id)
    }
}
