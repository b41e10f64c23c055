//! The objects only Ladder's own packages hold: tracks, roles with their
//! seniority, transitions between roles, and the roles' rubrics. Unlike the
//! competencies of other tools' packages, a bad value here refuses the
//! package (SPEC §9).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{Importer, Kind, MAX_LIST, Target};
use crate::domain::framework::{
    FieldNames, RoleDocument, RubricCompetency, RubricDocument, SENIORITY_RANGE, Track, Transition,
    TransitionKind, validate_expectations, validate_role,
};
use crate::domain::standards::case::model::CfRubricCriterion;
use crate::domain::standards::case::{NoteKind, ext, extension};

impl Importer<'_> {
    /// Track items, by item.
    pub(super) fn tracks(&mut self) -> Vec<(usize, Track)> {
        let mut taken = HashSet::new();
        let mut tracks = Vec::new();
        for i in 0..self.package.items.len() {
            if self.dropped[i] || self.kinds[i] != Kind::Track {
                continue;
            }
            let Some(texts) = self.texts(i, "track") else {
                continue;
            };
            let id = self.id_for(i, &texts.name, &mut taken);
            tracks.push((
                i,
                Track {
                    id,
                    name: texts.name,
                    description: texts.description,
                },
            ));
        }
        tracks
    }

    /// Role items with their seniority and track, by item; transitions and
    /// rubrics are added after.
    pub(super) fn roles(&mut self, tracks: &[(usize, Track)]) -> Vec<(usize, RoleDocument)> {
        let mut taken = HashSet::new();
        let mut roles = Vec::new();
        for i in 0..self.package.items.len() {
            if self.dropped[i] || self.kinds[i] != Kind::Role {
                continue;
            }
            let label = self.item_label(i);
            let item = &self.package.items[i];
            // A role item without Ladder's seniority is another tool's role,
            // which Ladder has no counterpart for; a seniority that is there
            // and wrong is a bad value.
            let Some(stated) = extension(item.extensions.as_ref(), ext::SENIORITY) else {
                self.note(
                    label,
                    NoteKind::Skipped,
                    format!(
                        "not a Ladder role: a role needs its seniority in extensions.{}",
                        ext::SENIORITY
                    ),
                );
                continue;
            };
            let seniority = stated
                .as_i64()
                .and_then(|s| i32::try_from(s).ok())
                .filter(|s| SENIORITY_RANGE.contains(s));
            let Some(seniority) = seniority else {
                self.refused.add(
                    format!("CFItems[{i}].extensions.{}", ext::SENIORITY),
                    format!(
                        "{}: must be a whole number from {} to {}, not {stated}",
                        self.item_name(i),
                        SENIORITY_RANGE.start(),
                        SENIORITY_RANGE.end()
                    ),
                );
                continue;
            };
            let track = self.parents[i]
                .iter()
                .find_map(|p| tracks.iter().find(|(t, _)| t == p))
                .map(|(_, t)| t.id.clone());
            let Some(track) = track else {
                self.refused.add(
                    format!("CFItems[{i}]"),
                    format!(
                        "{}: a role must be a child (isChildOf) of a Track item",
                        self.item_name(i)
                    ),
                );
                continue;
            };
            let Some(texts) = self.texts(i, "role") else {
                continue;
            };
            let id = self.id_for(i, &texts.name, &mut taken);
            let role = RoleDocument {
                id,
                name: texts.name,
                track,
                seniority,
                description: texts.description,
                transitions: Vec::new(),
                rubric: None,
            };
            let violations = validate_role(&role.role(), FieldNames::FILE);
            if !violations.is_empty() {
                self.refused.add(
                    format!("CFItems[{i}]"),
                    format!("{}: not a valid role: {violations}", self.item_name(i)),
                );
                continue;
            }
            roles.push((i, role));
        }
        roles
    }

    pub(super) fn transitions(&mut self, roles: &mut [(usize, RoleDocument)]) {
        let mut precedes = std::mem::take(&mut self.precedes);
        precedes.sort_by_key(|&(order, from, _)| {
            let sequence = self.package.associations[order]
                .sequence_number
                .unwrap_or(i64::MAX);
            (from, sequence, order)
        });
        for (order, from, to) in precedes {
            let a = &self.package.associations[order];
            let label = a
                .identifier
                .clone()
                .unwrap_or_else(|| format!("CFAssociations[{order}]"));
            let position = |item: usize| roles.iter().position(|(i, _)| *i == item);
            let (Some(f), Some(t)) = (position(from), position(to)) else {
                self.note(
                    label,
                    NoteKind::Skipped,
                    "the transition joins a role that was not imported",
                );
                continue;
            };
            let kind = extension(a.extensions.as_ref(), ext::TRANSITION)
                .and_then(Value::as_str)
                .and_then(TransitionKind::parse);
            let Some(kind) = kind else {
                self.refused.add(
                    format!("CFAssociations[{order}].extensions.{}", ext::TRANSITION),
                    format!(
                        "{label}: precedes between roles needs extensions.{}: promotion or lateral",
                        ext::TRANSITION
                    ),
                );
                continue;
            };
            let target = roles[t].1.id.clone();
            let target_seniority = roles[t].1.seniority;
            let role = &mut roles[f].1;
            let refusal = if f == t {
                Some("a role cannot transition to itself".to_string())
            } else if role.transitions.iter().any(|x| x.to == target) {
                Some(format!("a second transition to {target:?}"))
            } else if role.transitions.len() == MAX_LIST {
                Some(format!("a role has at most {MAX_LIST} transitions"))
            } else if kind == TransitionKind::Promotion && target_seniority <= role.seniority {
                Some(format!(
                    "a promotion must lead to a more senior role than {:?}",
                    role.id
                ))
            } else {
                None
            };
            match refusal {
                Some(why) => self.refused.add(
                    format!("CFAssociations[{order}]"),
                    format!("{label}: {why}"),
                ),
                None => role.transitions.push(Transition { to: target, kind }),
            }
        }
    }

    /// The rubrics of Ladder's roles (those with `extensions.ladder:role`);
    /// every criterion must map, or the package is refused: a rubric
    /// published without one of its entries would change what the role
    /// expects.
    pub(super) fn rubrics(
        &mut self,
        roles: &mut [(usize, RoleDocument)],
        competencies: &HashMap<usize, String>,
    ) {
        let package = self.package;
        for (r, rubric) in package.rubrics.iter().enumerate() {
            let at = format!("CFRubrics[{r}]");
            let label = rubric.identifier.clone().unwrap_or_else(|| at.clone());
            let Some(role_id) =
                extension(rubric.extensions.as_ref(), ext::ROLE).and_then(Value::as_str)
            else {
                self.note(
                    label,
                    NoteKind::Skipped,
                    format!(
                        "not a Ladder role's rubric (no extensions.{}): only criteria with five levels were read, as the level descriptors of their competencies",
                        ext::ROLE
                    ),
                );
                continue;
            };
            let Some(role) = roles.iter_mut().map(|(_, r)| r).find(|r| r.id == role_id) else {
                self.refused.add(
                    format!("{at}.extensions.{}", ext::ROLE),
                    format!("{label}: the role {role_id:?} is not a role of this package"),
                );
                continue;
            };
            if role.rubric.is_some() {
                self.refused.add(
                    format!("{at}.extensions.{}", ext::ROLE),
                    format!("{label}: a second rubric for the role {role_id:?}"),
                );
                continue;
            }
            let mut criteria: Vec<(usize, &CfRubricCriterion)> =
                rubric.criteria.iter().enumerate().collect();
            criteria.sort_by_key(|(_, c)| c.position.unwrap_or(i64::MAX));
            let mut expectations = Vec::new();
            let mut complete = true;
            for (k, c) in criteria {
                let at = format!("{at}.CFRubricCriteria[{k}]");
                let criterion_label = c.identifier.clone().unwrap_or_else(|| at.clone());
                let competency = match c.item.as_ref().map(|l| self.resolve(l)) {
                    Some(Target::Item(i)) => competencies.get(&i),
                    _ => None,
                };
                let Some(competency) = competency else {
                    self.refused.add(
                        format!("{at}.CFItemURI"),
                        format!("{criterion_label}: does not name a competency of this package"),
                    );
                    complete = false;
                    continue;
                };
                let named = format!("{criterion_label} (competency {competency:?})");
                let stated = extension(c.extensions.as_ref(), ext::EXPECTED_LEVEL);
                let expected = stated
                    .and_then(Value::as_u64)
                    .and_then(|l| u8::try_from(l).ok())
                    .filter(|l| (1..=5).contains(l));
                let Some(expected_level) = expected else {
                    let was = stated.map_or_else(|| "missing".to_string(), |v| format!("not {v}"));
                    self.refused.add(
                        format!("{at}.extensions.{}", ext::EXPECTED_LEVEL),
                        format!("{named}: must be a whole number 1-5 ({was})"),
                    );
                    complete = false;
                    continue;
                };
                let weight = match c.weight {
                    Some(w) => w,
                    None => {
                        self.note(
                            criterion_label.clone(),
                            NoteKind::Adjusted,
                            "no weight: 1 was used",
                        );
                        1.0
                    }
                };
                let development_actions =
                    extension(c.extensions.as_ref(), ext::DEVELOPMENT_ACTIONS)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                let expectation = RubricCompetency {
                    competency_id: competency.clone(),
                    expected_level,
                    weight,
                    critical: extension(c.extensions.as_ref(), ext::CRITICAL)
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    development_actions,
                };
                // Each entry on its own, so that a bad value is named at its
                // criterion (`weight`, `development_actions`).
                let found =
                    validate_expectations(std::slice::from_ref(&expectation), FieldNames::FILE);
                if !found.is_empty() {
                    for v in found.0 {
                        let field = v.field.strip_prefix("competencies[0].").unwrap_or(&v.field);
                        self.refused.add(
                            format!("{at}.{field}"),
                            format!("{named}: {}", v.description),
                        );
                    }
                    complete = false;
                    continue;
                }
                expectations.push(expectation);
            }
            if !complete {
                continue;
            }
            let violations = validate_expectations(&expectations, FieldNames::FILE);
            if !violations.is_empty() {
                self.refused.add(
                    format!("{at}.CFRubricCriteria"),
                    format!("{label}: the rubric of {role_id:?} is not valid: {violations}"),
                );
                continue;
            }
            role.rubric = Some(RubricDocument {
                competencies: expectations,
            });
        }
    }
}
