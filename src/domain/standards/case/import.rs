//! A CASE 1.1 package as a framework [`Document`]: Ladder's own packages
//! exactly, other tools' packages as their competencies, with a note for
//! everything that could not be mapped (docs/standards.md, "CASE in").

use std::collections::{HashMap, HashSet};

use serde_json::Value;

mod roles;
mod text;

use super::cycles::cycles;
use super::identity::{CaseItem, MAX_CASE_KEY_CHARS, free_id};
use super::model::{CfItem, CfLink, CfPackage, CfRubricCriterion};
use super::{CaseError, CaseNote, NoteKind, ext, extension};
use crate::domain::framework::{
    Competency, Document, FORMAT, ImportMode, LevelDescriptor, MAX_NAME_CHARS, MAX_TEXT_CHARS,
    is_valid_id,
};
use crate::domain::validation::Violations;
use text::{clean, shorten, slug};

/// What the package's `CFDocument` says about the framework.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseDocumentInfo {
    pub identifier: Option<String>,
    pub uri: Option<String>,
    pub title: Option<String>,
    pub creator: Option<String>,
    pub version: Option<String>,
    pub adoption_status: Option<String>,
    pub last_change: Option<String>,
}

/// The result of reading a package.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseImport {
    /// Accepted by `Document::validate`.
    pub document: Document,
    pub info: CaseDocumentInfo,
    /// One per object not mapped, or mapped by tolerating a deviation.
    pub notes: Vec<CaseNote>,
    /// The item each competency was read from, when it has an identifier or URI.
    pub items: Vec<CaseItem>,
}

/// Level titles of Ladder's scale, used for generic level descriptors.
const SCALE: [&str; 5] = ["Aware", "Practising", "Proficient", "Advanced", "Expert"];
const LEVELS: usize = 5;
/// Most behaviours, transitions or rubric entries one list may hold (as
/// `validate` allows).
const MAX_LIST: usize = 100;
/// A `fullStatement` at most this long, on one line, serves as a title.
const SHORT_STATEMENT: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Track,
    Role,
    Level,
    Behaviour,
    /// Anything else: a competency, or a grouping of competencies.
    Other,
}

fn kind_of(item: &CfItem) -> Kind {
    let name = item
        .item_type
        .as_deref()
        .or_else(|| item.item_type_uri.as_ref()?.title.as_deref())
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    match name.as_str() {
        "track" => Kind::Track,
        "role" => Kind::Role,
        "behaviour" | "behavior" => Kind::Behaviour,
        // "Level", "Proficiency Level", "Performance Level", but not the grade
        // or education levels K-12 frameworks group their standards by.
        n if n.contains("level") && !n.contains("grade") && !n.contains("education") => Kind::Level,
        _ => Kind::Other,
    }
}

fn is_competency_type(item: &CfItem) -> bool {
    let name = item.item_type.as_deref().unwrap_or_default().to_lowercase();
    ["competenc", "skill", "abilit", "capabilit"]
        .iter()
        .any(|k| name.contains(k))
}

/// Where an association end points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Item(usize),
    Document,
    Missing,
}

/// A child of an item: ordered by `sequenceNumber`, then by association order.
#[derive(Debug, Clone, Copy)]
struct Child {
    sequence: i64,
    order: usize,
    item: usize,
}

/// A level descriptor's source before it is read.
enum LevelSource {
    Items(Vec<usize>),
    Criterion(usize, usize),
}

struct Importer<'a> {
    package: &'a CfPackage,
    notes: Vec<CaseNote>,
    /// What makes the whole package refused, at its path in the package.
    refused: Violations,
    /// Lower-cased identifiers and URIs of the items.
    index: HashMap<String, usize>,
    document_keys: HashSet<String>,
    kinds: Vec<Kind>,
    /// Not imported: a duplicate identifier, or replaced by another item.
    dropped: Vec<bool>,
    children: Vec<Vec<Child>>,
    parents: Vec<Vec<usize>>,
    skill_levels: Vec<Vec<Child>>,
    /// `precedes` associations between two items: (association, origin, destination).
    precedes: Vec<(usize, usize, usize)>,
    /// Items read as a level or a behaviour.
    used: Vec<bool>,
}

/// Maps a package to a framework. Ladder's packages map back to exactly the
/// framework they were written from; for others see docs/standards.md.
pub fn from_case(package: &CfPackage) -> Result<CaseImport, CaseError> {
    let mut im = Importer::new(package);
    im.read_associations();
    im.refuse_cycles();
    let (document, items) = im.build();
    if !im.refused.is_empty() {
        return Err(CaseError::Refused(im.refused));
    }
    let violations = document.validate();
    if !violations.is_empty() {
        return Err(CaseError::Invalid(violations));
    }
    let d = &package.document;
    Ok(CaseImport {
        document,
        info: CaseDocumentInfo {
            identifier: d.identifier.clone(),
            uri: d.uri.clone(),
            title: d.title.clone(),
            creator: d.creator.clone(),
            version: d.version.clone(),
            adoption_status: d.adoption_status.clone(),
            last_change: d.last_change_date_time.clone(),
        },
        notes: im.notes,
        items,
    })
}

fn key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A name and a description read from an item.
struct Texts {
    name: String,
    description: String,
}

impl<'a> Importer<'a> {
    fn new(package: &'a CfPackage) -> Self {
        let n = package.items.len();
        let mut im = Importer {
            package,
            notes: Vec::new(),
            refused: Violations::new(),
            index: HashMap::with_capacity(2 * n),
            document_keys: HashSet::new(),
            kinds: package.items.iter().map(kind_of).collect(),
            dropped: vec![false; n],
            children: vec![Vec::new(); n],
            parents: vec![Vec::new(); n],
            skill_levels: vec![Vec::new(); n],
            precedes: Vec::new(),
            used: vec![false; n],
        };
        let d = &package.document;
        for k in [&d.identifier, &d.uri].into_iter().flatten() {
            im.document_keys.insert(key(k));
        }
        for (i, item) in package.items.iter().enumerate() {
            let keys: Vec<String> = [&item.identifier, &item.uri]
                .into_iter()
                .flatten()
                .map(|k| key(k))
                .filter(|k| !k.is_empty())
                .collect();
            if let Some(&first) = keys.iter().find_map(|k| im.index.get(k)) {
                im.dropped[i] = true;
                im.refused.add(
                    format!("CFItems[{i}]"),
                    format!(
                        "{} has the identifier or uri of CFItems[{first}] ({}): identifiers name one item each",
                        im.item_name(i),
                        im.item_name(first)
                    ),
                );
                continue;
            }
            for (field, value) in [
                ("identifier", &item.identifier),
                ("uri", &item.uri),
                ("humanCodingScheme", &item.human_coding_scheme),
            ] {
                let chars = value.as_deref().map_or(0, |v| v.chars().count());
                if chars > MAX_CASE_KEY_CHARS {
                    // The field names the item: the value may be its name.
                    im.refused.add(
                        format!("CFItems[{i}].{field}"),
                        format!("must be at most {MAX_CASE_KEY_CHARS} characters, not {chars}"),
                    );
                }
            }
            for k in keys {
                im.index.insert(k, i);
            }
        }
        im
    }

    fn note(&mut self, identifier: String, kind: NoteKind, reason: impl Into<String>) {
        self.notes.push(CaseNote {
            identifier,
            kind,
            reason: reason.into(),
        });
    }

    /// The item as a refusal names it: its identifier (or URI, or position)
    /// and its human coding scheme, which is what people know it by.
    fn item_name(&self, i: usize) -> String {
        let label = self.item_label(i);
        match self.package.items[i]
            .human_coding_scheme
            .as_deref()
            .map(str::trim)
        {
            Some(code) if !code.is_empty() && code != label => format!("{label} ({code})"),
            _ => label,
        }
    }

    fn item_label(&self, i: usize) -> String {
        let item = &self.package.items[i];
        item.identifier
            .clone()
            .or_else(|| item.uri.clone())
            .unwrap_or_else(|| format!("CFItems[{i}]"))
    }

    /// Finds what a link names: by identifier, by URI, or by the identifier
    /// that ends a URI written against another base (a copied package).
    fn resolve(&self, link: &CfLink) -> Target {
        let mut keys = Vec::new();
        keys.extend(link.identifier.as_deref().map(key));
        if let Some(uri) = link.uri.as_deref() {
            keys.push(key(uri));
            keys.extend(uri.rsplit('/').next().map(key));
        }
        for k in &keys {
            if let Some(&i) = self.index.get(k) {
                return Target::Item(i);
            }
            if self.document_keys.contains(k) {
                return Target::Document;
            }
        }
        Target::Missing
    }

    fn read_associations(&mut self) {
        let package = self.package;
        for (order, a) in package.associations.iter().enumerate() {
            let label = a
                .identifier
                .clone()
                .or_else(|| a.uri.clone())
                .unwrap_or_else(|| format!("CFAssociations[{order}]"));
            let kind = a.association_type.as_deref().unwrap_or_default().trim();
            let (Some(origin), Some(destination)) = (&a.origin, &a.destination) else {
                self.refused.add(
                    format!("CFAssociations[{order}]"),
                    format!("{label}: an association needs originNodeURI and destinationNodeURI"),
                );
                continue;
            };
            let (origin, destination) = (self.resolve(origin), self.resolve(destination));
            let sequence = a.sequence_number.unwrap_or(i64::MAX);
            let lower = kind.to_lowercase();
            match (lower.as_str(), origin, destination) {
                ("ischildof" | "ispartof", Target::Item(child), destination) => {
                    if lower == "ispartof" {
                        self.note(
                            label.clone(),
                            NoteKind::Adjusted,
                            "isPartOf read as isChildOf (the item is placed under its destination)",
                        );
                    }
                    match destination {
                        Target::Item(parent) if parent != child => {
                            self.children[parent].push(Child {
                                sequence,
                                order,
                                item: child,
                            });
                            self.parents[child].push(parent);
                        }
                        Target::Item(_) => self.refused.add(
                            format!("CFAssociations[{order}]"),
                            format!(
                                "{label} makes {} its own parent ({kind}): an item cannot be its own parent",
                                self.item_name(child)
                            ),
                        ),
                        Target::Document => {}
                        Target::Missing => self.note(
                            label,
                            NoteKind::Adjusted,
                            "the parent is not in this package: the item is read as top-level",
                        ),
                    }
                }
                ("precedes", Target::Item(from), Target::Item(to))
                    if self.kinds[from] == Kind::Role && self.kinds[to] == Kind::Role =>
                {
                    self.precedes.push((order, from, to));
                }
                ("precedes", ..) => self.note(
                    label,
                    NoteKind::Skipped,
                    "precedes between items that are not roles: Ladder orders only role transitions",
                ),
                ("replacedby", Target::Item(old), Target::Item(new)) => {
                    if !self.dropped[old] {
                        self.dropped[old] = true;
                        let replacement = self.item_label(new);
                        self.note(
                            self.item_label(old),
                            NoteKind::Skipped,
                            format!("replaced by {replacement} (replacedBy): only the replacement is imported"),
                        );
                    }
                }
                ("replacedby", Target::Item(_), _) => self.note(
                    label,
                    NoteKind::Adjusted,
                    "replacedBy names a replacement outside this package: the replaced item is imported as it is",
                ),
                ("hasskilllevel", Target::Item(owner), Target::Item(level)) => {
                    self.skill_levels[owner].push(Child {
                        sequence,
                        order,
                        item: level,
                    });
                }
                ("ischildof" | "ispartof" | "replacedby" | "hasskilllevel", ..) => self.note(
                    label,
                    NoteKind::Skipped,
                    format!("{kind}: its origin or destination is not an item of this package"),
                ),
                ("exactmatchof" | "isrelatedto" | "ispeerof" | "exemplar" | "istranslationof", ..) => {
                    self.note(
                        label,
                        NoteKind::Skipped,
                        format!("{kind} has no counterpart in a Ladder framework"),
                    )
                }
                ("", ..) => self.note(label, NoteKind::Skipped, "the association has no associationType"),
                _ => self.note(
                    label,
                    NoteKind::Skipped,
                    format!("unknown associationType {kind:?}"),
                ),
            }
        }
        for list in self.children.iter_mut().chain(self.skill_levels.iter_mut()) {
            list.sort_by_key(|c| (c.sequence, c.order));
        }
    }

    /// Items that are their own ancestors cannot be placed: every item of
    /// each cycle is refused on its own (so that each is named in full
    /// however long the cycle), with the cycle in link order by the codes
    /// people know the items by.
    fn refuse_cycles(&mut self) {
        for cycle in cycles(&self.parents) {
            let mut codes: Vec<String> = cycle.iter().map(|&i| self.item_code(i)).collect();
            codes.push(codes[0].clone());
            let path = codes.join(" → ");
            for &i in &cycle {
                self.refused.add(
                    format!("CFItems[{i}]"),
                    format!(
                        "{}: isChildOf links make it its own ancestor, in the cycle {path}",
                        self.item_name(i)
                    ),
                );
            }
        }
    }

    /// The shortest name of an item: its human coding scheme, else its label.
    fn item_code(&self, i: usize) -> String {
        match self.package.items[i]
            .human_coding_scheme
            .as_deref()
            .map(str::trim)
        {
            Some(code) if !code.is_empty() => code.to_string(),
            _ => self.item_label(i),
        }
    }

    fn live_children(&self, i: usize) -> Vec<usize> {
        self.children[i]
            .iter()
            .map(|c| c.item)
            .filter(|&c| !self.dropped[c])
            .collect()
    }

    fn build(&mut self) -> (Document, Vec<CaseItem>) {
        let n = self.package.items.len();
        // Pass 1: the level structure of every item that may be a competency;
        // items read as levels (and their children, as behaviours) are then
        // not competencies themselves.
        let mut levels: Vec<Option<LevelSource>> = (0..n).map(|_| None).collect();
        let mut consumed = vec![false; n];
        let criteria = self.criteria_by_item();
        for (i, slot) in levels.iter_mut().enumerate() {
            if self.dropped[i] || self.kinds[i] != Kind::Other {
                continue;
            }
            let children = self.live_children(i);
            let typed: Vec<usize> = children
                .iter()
                .copied()
                .filter(|&c| self.kinds[c] == Kind::Level)
                .collect();
            let untyped_leaves = children.len() == LEVELS
                && is_competency_type(&self.package.items[i])
                && children.iter().all(|&c| {
                    self.kinds[c] == Kind::Other
                        && self.package.items[c].item_type.is_none()
                        && self.live_children(c).is_empty()
                });
            let skill: Vec<usize> = self.skill_levels[i].iter().map(|c| c.item).collect();
            let source = if typed.len() == LEVELS {
                Some(LevelSource::Items(typed))
            } else if untyped_leaves {
                self.note(
                    self.item_label(i),
                    NoteKind::Adjusted,
                    "its five child items, which have no CFItemType, are read as levels 1-5 in sequence order",
                );
                Some(LevelSource::Items(children))
            } else if skill.len() == LEVELS {
                Some(LevelSource::Items(skill))
            } else if let Some(&(r, c)) = criteria.get(&i) {
                Some(LevelSource::Criterion(r, c))
            } else {
                if !typed.is_empty() {
                    self.note(
                        self.item_label(i),
                        NoteKind::Adjusted,
                        format!(
                            "it has {} level items; Ladder needs exactly five, so they are not used",
                            typed.len()
                        ),
                    );
                }
                None
            };
            if let Some(LevelSource::Items(items)) = &source {
                for &level in items {
                    consumed[level] = true;
                    for behaviour in self.live_children(level) {
                        consumed[behaviour] = true;
                    }
                }
            }
            *slot = source;
        }

        // Pass 2: competencies in package order; an item with child items of
        // its own and no level structure is a grouping.
        let mut competency_ids: HashMap<usize, String> = HashMap::new();
        let mut items = Vec::new();
        let mut taken = HashSet::new();
        let mut competencies = Vec::new();
        for i in 0..n {
            if self.dropped[i] || self.kinds[i] != Kind::Other || consumed[i] {
                continue;
            }
            let grouped = self
                .live_children(i)
                .into_iter()
                .filter(|&c| self.kinds[c] == Kind::Other && !consumed[c])
                .count();
            if grouped > 0 && levels[i].is_none() {
                self.note(
                    self.item_label(i),
                    NoteKind::Skipped,
                    format!(
                        "groups {grouped} item{}: Ladder has no competency groups, so the items in it are imported on their own",
                        if grouped == 1 { "" } else { "s" }
                    ),
                );
                continue;
            }
            let Some(texts) = self.texts(i, "competency") else {
                continue;
            };
            let id = self.id_for(i, &texts.name, &mut taken);
            let item = &self.package.items[i];
            let kept = |v: &Option<String>| clean(v.as_deref()).map(|v| v.trim().to_string());
            if item.identifier.is_some() || item.uri.is_some() {
                items.push(CaseItem {
                    competency_id: id.clone(),
                    identifier: kept(&item.identifier),
                    uri: kept(&item.uri),
                    human_coding_scheme: kept(&item.human_coding_scheme),
                });
            }
            let levels = match levels[i].take() {
                Some(source) => self.read_levels(i, source),
                None => {
                    self.note(
                        self.item_label(i),
                        NoteKind::Adjusted,
                        "the package describes no levels for it (five level items, hasSkillLevel or a rubric criterion with five levels): five generic level descriptors were written",
                    );
                    generic_levels()
                }
            };
            competency_ids.insert(i, id.clone());
            competencies.push(Competency {
                id,
                name: texts.name,
                description: texts.description,
                levels,
            });
        }

        let tracks = self.tracks();
        let mut roles = self.roles(&tracks);
        self.transitions(&mut roles);
        self.rubrics(&mut roles, &competency_ids);
        self.unused_levels();

        let complete = extension(self.package.document.extensions.as_ref(), ext::MODE)
            .and_then(Value::as_str)
            == Some("complete");
        let document = Document {
            format: FORMAT.into(),
            mode: if complete {
                ImportMode::Complete
            } else {
                ImportMode::Merge
            },
            tracks: tracks.into_iter().map(|(_, t)| t).collect(),
            competencies,
            roles: roles.into_iter().map(|(_, r)| r).collect(),
        };
        (document, items)
    }

    /// For each item, the first rubric criterion naming it that has five levels.
    fn criteria_by_item(&self) -> HashMap<usize, (usize, usize)> {
        let mut found = HashMap::new();
        for (r, rubric) in self.package.rubrics.iter().enumerate() {
            for (c, criterion) in rubric.criteria.iter().enumerate() {
                if criterion.levels.len() != LEVELS {
                    continue;
                }
                if let Some(Target::Item(i)) = criterion.item.as_ref().map(|l| self.resolve(l)) {
                    found.entry(i).or_insert((r, c));
                }
            }
        }
        found
    }

    /// The name and description of an item: `abbreviatedStatement` and
    /// `fullStatement`; without an abbreviated statement, a short full
    /// statement is the name, a long one gives the name its beginning.
    fn texts(&mut self, i: usize, what: &str) -> Option<Texts> {
        let item = &self.package.items[i];
        let full = clean(item.full_statement.as_deref());
        let abbreviated = clean(item.abbreviated_statement.as_deref());
        let stated = extension(item.extensions.as_ref(), ext::DESCRIPTION)
            .and_then(Value::as_str)
            .map(str::to_string);
        let label = self.item_label(i);
        // Names are trimmed: a blank at either end is never meant, and
        // would make two names that read the same differ.
        let name = match (&abbreviated, &full) {
            (Some(a), _) => a.trim().to_string(),
            (None, Some(f)) => f
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(f)
                .trim()
                .to_string(),
            // An item without any text holds no value to refuse: like
            // an object with no counterpart, it is a note.
            (None, None) => {
                self.note(
                    label,
                    NoteKind::Skipped,
                    format!("a {what} needs a name: the item has neither fullStatement nor abbreviatedStatement"),
                );
                return None;
            }
        };
        let description = match stated {
            Some(d) => d,
            None => full.filter(|f| f.trim() != name).unwrap_or_default(),
        };
        let short_name = shorten(&name, MAX_NAME_CHARS);
        if short_name != name {
            self.note(
                label.clone(),
                NoteKind::Adjusted,
                format!("the name was shortened to {MAX_NAME_CHARS} characters"),
            );
        }
        let short_description = shorten(&description, MAX_TEXT_CHARS);
        if short_description != description {
            self.note(
                label,
                NoteKind::Adjusted,
                format!("the description was shortened to {MAX_TEXT_CHARS} characters"),
            );
        }
        Some(Texts {
            name: short_name,
            description: short_description,
        })
    }

    /// The Ladder id of an item: its `humanCodingScheme` when that is a valid
    /// id not taken yet, otherwise one derived from its name.
    fn id_for(&mut self, i: usize, name: &str, taken: &mut HashSet<String>) -> String {
        let item = &self.package.items[i];
        if let Some(code) = item.human_coding_scheme.as_deref()
            && is_valid_id(code)
            && !taken.contains(code)
        {
            taken.insert(code.to_string());
            return code.to_string();
        }
        let base = slug(name).unwrap_or_else(|| {
            let tag: String = self
                .item_label(i)
                .chars()
                .filter(char::is_ascii_hexdigit)
                .take(8)
                .collect();
            format!("item_{}", tag.to_lowercase())
        });
        free_id(&base, taken)
    }

    fn read_levels(&mut self, owner: usize, source: LevelSource) -> Vec<LevelDescriptor> {
        match source {
            LevelSource::Items(items) => items
                .into_iter()
                .zip(1u8..)
                .map(|(item, level)| self.level_from_item(item, level))
                .collect(),
            LevelSource::Criterion(r, c) => {
                let criterion: &CfRubricCriterion = &self.package.rubrics[r].criteria[c];
                let mut order: Vec<usize> = (0..criterion.levels.len()).collect();
                let scores: Vec<Option<f64>> = criterion.levels.iter().map(|l| l.score).collect();
                let distinct_scores = scores.iter().all(Option::is_some) && {
                    let mut s: Vec<f64> = scores.iter().flatten().copied().collect();
                    s.sort_by(f64::total_cmp);
                    s.windows(2).all(|w| w[0] != w[1])
                };
                if distinct_scores {
                    order.sort_by(|&a, &b| {
                        scores[a]
                            .unwrap_or(0.0)
                            .total_cmp(&scores[b].unwrap_or(0.0))
                    });
                } else {
                    order.sort_by_key(|&k| criterion.levels[k].position.unwrap_or(i64::MAX));
                }
                self.note(
                    self.item_label(owner),
                    NoteKind::Adjusted,
                    format!(
                        "levels read from the five CFRubricCriterionLevels of rubric criterion {}, lowest score first",
                        criterion.identifier.as_deref().unwrap_or("(no identifier)")
                    ),
                );
                order
                    .into_iter()
                    .zip(1u8..)
                    .map(|(k, level)| {
                        let l = &criterion.levels[k];
                        let title = clean(l.quality.as_deref())
                            .map(|t| shorten(&t, MAX_NAME_CHARS))
                            .unwrap_or_else(|| SCALE[usize::from(level) - 1].to_string());
                        let description = clean(l.description.as_deref())
                            .or_else(|| clean(l.feedback.as_deref()))
                            .map(|d| shorten(&d, MAX_TEXT_CHARS))
                            .unwrap_or_default();
                        LevelDescriptor {
                            level,
                            title,
                            description,
                            behaviours: Vec::new(),
                        }
                    })
                    .collect()
            }
        }
    }

    fn level_from_item(&mut self, i: usize, level: u8) -> LevelDescriptor {
        self.used[i] = true;
        let item = &self.package.items[i];
        let abbreviated = clean(item.abbreviated_statement.as_deref());
        let full = clean(item.full_statement.as_deref());
        let stated = extension(item.extensions.as_ref(), ext::DESCRIPTION)
            .and_then(Value::as_str)
            .map(str::to_string);
        let is_short = |s: &String| s.chars().count() <= SHORT_STATEMENT && !s.contains('\n');
        let (title, description) = match (abbreviated, full) {
            (Some(a), f) => {
                let a = a.trim().to_string();
                let d = stated.unwrap_or_else(|| f.filter(|f| f.trim() != a).unwrap_or_default());
                (a, d)
            }
            (None, Some(f)) if is_short(&f) => (f.trim().to_string(), stated.unwrap_or_default()),
            (None, f) => (
                SCALE[usize::from(level) - 1].to_string(),
                stated.or(f).unwrap_or_default(),
            ),
        };
        let mut behaviours = Vec::new();
        for b in self.live_children(i) {
            self.used[b] = true;
            let item = &self.package.items[b];
            let text = clean(item.full_statement.as_deref())
                .or_else(|| clean(item.abbreviated_statement.as_deref()));
            let nested = self.live_children(b).len();
            if nested > 0 {
                self.note(
                    self.item_label(b),
                    NoteKind::Skipped,
                    format!("{nested} items nested under a behaviour are not mapped: a level holds a flat list of behaviours"),
                );
            }
            match text {
                Some(_) if behaviours.len() == MAX_LIST => self.refused.add(
                    format!("CFItems[{b}]"),
                    format!(
                        "{}: a level holds at most {MAX_LIST} behaviours",
                        self.item_name(b)
                    ),
                ),
                Some(t) => behaviours.push(shorten(&t, MAX_TEXT_CHARS)),
                None => self.refused.add(
                    format!("CFItems[{b}]"),
                    format!(
                        "{}: a behaviour needs its text in fullStatement",
                        self.item_name(b)
                    ),
                ),
            }
        }
        LevelDescriptor {
            level,
            title: shorten(&title, MAX_NAME_CHARS),
            description: shorten(&description, MAX_TEXT_CHARS),
            behaviours,
        }
    }

    /// Level and behaviour items that no competency took.
    fn unused_levels(&mut self) {
        for i in 0..self.package.items.len() {
            let reason = match self.kinds[i] {
                Kind::Level => {
                    "a level item that is not one of exactly five levels of a competency"
                }
                Kind::Behaviour => "a behaviour item that is not under a level of a competency",
                _ => continue,
            };
            if !self.used[i] && !self.dropped[i] {
                self.note(self.item_label(i), NoteKind::Skipped, reason);
            }
        }
    }
}

fn generic_levels() -> Vec<LevelDescriptor> {
    SCALE
        .iter()
        .zip(1u8..)
        .map(|(title, level)| LevelDescriptor {
            level,
            title: title.to_string(),
            description: format!(
                "Generic level {level} of 5, written by the CASE import: the source framework does not describe levels for this competency."
            ),
            behaviours: Vec::new(),
        })
        .collect()
}
