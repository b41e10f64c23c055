//! Competencies, roles and rubrics between `ladder.v1` and the domain.

use crate::domain::framework::{
    Competency, FieldNames, LevelDescriptor, Role, Rubric, RubricCompetency, RubricState, Track,
    Transition, TransitionKind, validate_competency, validate_expectations, validate_role,
};
use crate::domain::standards::case::CaseItem;
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::storage::stored::Stored;
use crate::transport::convert::etag;
use crate::transport::convert::request::Mask;
use crate::transport::convert::time::to_proto as timestamp;

/// How the API names the fields that framework files name differently.
pub const API_NAMES: FieldNames = FieldNames {
    rubric_competency: "competency_id",
    transition_target: "to_role_id",
    role_track: "track_id",
};

pub const COMPETENCY_PATHS: [&str; 3] = ["name", "description", "levels"];
pub const ROLE_PATHS: [&str; 5] = [
    "name",
    "track_id",
    "seniority",
    "description",
    "transitions",
];
pub const RUBRIC_PATHS: [&str; 1] = ["competencies"];

pub fn track_to_pb(t: Track) -> pb::Track {
    pb::Track {
        id: t.id,
        name: t.name,
        description: t.description,
    }
}

fn state_to_pb(s: RubricState) -> pb::RubricState {
    match s {
        RubricState::Draft => pb::RubricState::Draft,
        RubricState::Published => pb::RubricState::Published,
        RubricState::Superseded => pb::RubricState::Superseded,
        RubricState::Retired => pb::RubricState::Retired,
    }
}

/// `None` for UNSPECIFIED and for numbers the enum does not know.
pub fn state_from_pb(value: i32) -> Option<RubricState> {
    [
        RubricState::Draft,
        RubricState::Published,
        RubricState::Superseded,
        RubricState::Retired,
    ]
    .into_iter()
    .find(|s| state_to_pb(*s) as i32 == value)
}

fn kind_to_pb(k: TransitionKind) -> pb::TransitionKind {
    match k {
        TransitionKind::Promotion => pb::TransitionKind::Promotion,
        TransitionKind::Lateral => pb::TransitionKind::Lateral,
    }
}

fn kind_from_pb(value: i32) -> Option<TransitionKind> {
    [TransitionKind::Promotion, TransitionKind::Lateral]
        .into_iter()
        .find(|k| kind_to_pb(*k) as i32 == value)
}

/// A level or expected level outside u8 becomes 0, which validation refuses.
fn level_from_pb(value: i32) -> u8 {
    u8::try_from(value).unwrap_or(0)
}

pub fn competency_to_pb(s: Stored<Competency>) -> pb::Competency {
    pb::Competency {
        etag: etag::of(s.meta.revision),
        create_time: Some(timestamp(s.meta.create_time)),
        update_time: Some(timestamp(s.meta.update_time)),
        id: s.value.id,
        name: s.value.name,
        description: s.value.description,
        levels: levels_to_pb(s.value.levels),
        ..pb::Competency::default()
    }
}

/// Gives each competency of `competencies` that came from a CASE item that
/// item's identity (`items`, the competencies' own).
pub fn case_items_to_pb(competencies: &mut [pb::Competency], items: &[CaseItem]) {
    for c in competencies {
        if let Some(item) = items.iter().find(|i| i.competency_id == c.id) {
            c.case_identifier = item.identifier.clone().unwrap_or_default();
            c.case_uri = item.uri.clone().unwrap_or_default();
            c.case_human_coding_scheme = item.human_coding_scheme.clone().unwrap_or_default();
        }
    }
}

fn levels_to_pb(levels: Vec<LevelDescriptor>) -> Vec<pb::LevelDescriptor> {
    levels
        .into_iter()
        .map(|l| pb::LevelDescriptor {
            level: i32::from(l.level),
            title: l.title,
            description: l.description,
            behaviours: l.behaviours,
        })
        .collect()
}

pub fn role_to_pb(s: Stored<Role>) -> pb::Role {
    pb::Role {
        etag: etag::of(s.meta.revision),
        create_time: Some(timestamp(s.meta.create_time)),
        update_time: Some(timestamp(s.meta.update_time)),
        id: s.value.id,
        name: s.value.name,
        track_id: s.value.track,
        seniority: s.value.seniority,
        description: s.value.description,
        transitions: s
            .value
            .transitions
            .into_iter()
            .map(|t| pb::Transition {
                to_role_id: t.to,
                kind: kind_to_pb(t.kind) as i32,
            })
            .collect(),
    }
}

pub fn rubric_to_pb(s: Stored<Rubric>) -> pb::Rubric {
    let mut texts = s.value.published_texts;
    pb::Rubric {
        etag: etag::of(s.meta.revision),
        create_time: Some(timestamp(s.meta.create_time)),
        update_time: Some(timestamp(s.meta.update_time)),
        publish_time: s.meta.publish_time.map(timestamp),
        role_id: s.value.role_id,
        version: s.value.version,
        state: state_to_pb(s.value.state) as i32,
        competencies: s
            .value
            .competencies
            .into_iter()
            .map(|c| {
                let published = texts
                    .iter()
                    .position(|t| t.competency_id == c.competency_id)
                    .map(|i| texts.swap_remove(i));
                let (published_name, published_levels) =
                    published.map_or_else(Default::default, |t| (t.name, levels_to_pb(t.levels)));
                pb::RubricCompetency {
                    competency_id: c.competency_id,
                    expected_level: i32::from(c.expected_level),
                    weight: c.weight,
                    critical: c.critical,
                    development_actions: c.development_actions,
                    published_name,
                    published_levels,
                }
            })
            .collect(),
    }
}

/// A new competency, with nothing but its id.
pub fn blank_competency(id: &str) -> Competency {
    Competency {
        id: id.to_string(),
        name: String::new(),
        description: String::new(),
        levels: Vec::new(),
    }
}

/// `base` with the masked fields of `input`, validated.
pub fn merge_competency(
    mut base: Competency,
    input: pb::Competency,
    mask: &Mask,
) -> Result<Competency, Violations> {
    if mask.covers("name") {
        base.name = input.name;
    }
    if mask.covers("description") {
        base.description = input.description;
    }
    if mask.covers("levels") {
        base.levels = input
            .levels
            .into_iter()
            .map(|l| LevelDescriptor {
                level: level_from_pb(l.level),
                title: l.title,
                description: l.description,
                behaviours: l.behaviours,
            })
            .collect();
    }
    validate_competency(&base).into_result(base)
}

/// A new role, with nothing but its id; its track is set by the merge.
pub fn blank_role(id: &str) -> Role {
    Role {
        id: id.to_string(),
        name: String::new(),
        track: String::new(),
        seniority: 0,
        description: String::new(),
        transitions: Vec::new(),
    }
}

/// `base` with the masked fields of `input`, validated (not whether the
/// transitions lead to existing roles).
pub fn merge_role(mut base: Role, input: pb::Role, mask: &Mask) -> Result<Role, Violations> {
    let mut v = Violations::new();
    if mask.covers("name") {
        base.name = input.name;
    }
    if mask.covers("description") {
        base.description = input.description;
    }
    if mask.covers("track_id") {
        base.track = input.track_id;
    }
    if mask.covers("seniority") {
        base.seniority = input.seniority;
    }
    if mask.covers("transitions") {
        base.transitions = Vec::with_capacity(input.transitions.len());
        for (k, t) in input.transitions.into_iter().enumerate() {
            match kind_from_pb(t.kind) {
                Some(kind) => base.transitions.push(Transition {
                    to: t.to_role_id,
                    kind,
                }),
                None => v.add(
                    format!("transitions[{k}].kind"),
                    "must be PROMOTION or LATERAL",
                ),
            }
        }
    }
    v.0.extend(validate_role(&base, API_NAMES).0);
    v.into_result(base)
}

/// A rubric's expectations, validated (not whether the competencies exist).
pub fn expectations_from_pb(
    items: Vec<pb::RubricCompetency>,
) -> Result<Vec<RubricCompetency>, Violations> {
    let items: Vec<RubricCompetency> = items
        .into_iter()
        .map(|c| RubricCompetency {
            competency_id: c.competency_id,
            expected_level: level_from_pb(c.expected_level),
            weight: c.weight,
            critical: c.critical,
            development_actions: c.development_actions,
        })
        .collect();
    validate_expectations(&items, API_NAMES).into_result(items)
}
