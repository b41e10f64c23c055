//! A framework [`Document`] as a CASE 1.1 package.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::model::{
    CfAssociation, CfDefinitions, CfDocument, CfItem, CfItemType, CfLink, CfPackage, CfRubric,
    CfRubricCriterion, CfRubricCriterionLevel,
};
use super::{CaseItem, case_identifier, ext, item_type};
use crate::domain::framework::{Document, FORMAT, ImportMode};

/// The prefix of the URIs Ladder writes (`{base}/ims/case/v1p1/CFItems/{identifier}`).
pub const DEFAULT_BASE_URI: &str = "https://ladder.dev";

/// What a package says about itself and that a framework does not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseExport {
    /// Prefix of every `uri`: `{base_uri}/ims/case/v1p1/CFItems/{identifier}`.
    pub base_uri: String,
    pub title: String,
    pub creator: String,
    pub version: String,
    /// CASE's `adoptionStatus` (`Draft`, `Adopted`, `Deprecated`, ...).
    pub adoption_status: String,
    /// Written as every object's `lastChangeDateTime`: the time the framework
    /// last changed, so that an unchanged framework exports to the same bytes.
    pub last_change: DateTime<Utc>,
    /// The items competencies were imported from: such a competency is
    /// written with that item's identifier, URI and human coding scheme.
    pub items: Vec<CaseItem>,
}

impl CaseExport {
    /// Ladder's defaults for a framework last changed at `last_change`.
    pub fn new(last_change: DateTime<Utc>) -> CaseExport {
        CaseExport {
            base_uri: DEFAULT_BASE_URI.into(),
            title: "Ladder career framework".into(),
            creator: "Ladder".into(),
            version: "1".into(),
            adoption_status: "Adopted".into(),
            last_change,
            items: Vec::new(),
        }
    }
}

/// The package as pretty-printed JSON (keys in a fixed order, so the same
/// framework and options give the same bytes).
pub fn to_json(package: &CfPackage) -> String {
    serde_json::to_string_pretty(package).expect("a CASE package always serializes") + "\n"
}

/// One CASE object being written: its identifier, URI and title, for links.
struct Node {
    identifier: String,
    uri: String,
    title: String,
}

impl Node {
    fn link(&self) -> CfLink {
        CfLink {
            title: Some(self.title.clone()),
            identifier: Some(self.identifier.clone()),
            uri: Some(self.uri.clone()),
        }
    }
}

struct Writer<'a> {
    options: &'a CaseExport,
    changed: String,
    package: CfPackage,
}

impl Writer<'_> {
    fn node(&self, collection: &str, path: &str, title: &str) -> Node {
        let identifier = case_identifier(path).to_string();
        Node {
            uri: format!(
                "{}/ims/case/v1p1/{collection}/{identifier}",
                self.options.base_uri.trim_end_matches('/')
            ),
            identifier,
            title: title.to_string(),
        }
    }

    fn type_link(&self, name: &str) -> CfLink {
        self.node("CFItemTypes", &format!("item-type/{name}"), name)
            .link()
    }

    /// Adds an item: `name` as `abbreviatedStatement`, `description` as
    /// `fullStatement` (the name when the description is empty, which CASE
    /// does not allow).
    #[allow(clippy::too_many_arguments)]
    fn item(
        &mut self,
        path: &str,
        kind: &str,
        code: &str,
        name: Option<&str>,
        description: &str,
        enumeration: Option<String>,
        mut extensions: Map<String, Value>,
    ) -> Node {
        // The import reads a `fullStatement` equal to the name as "no
        // description"; the extension keeps the two cases where that is wrong.
        let full = if description.is_empty() || name == Some(description) {
            extensions.insert(ext::DESCRIPTION.into(), json!(description));
            name.unwrap_or(description)
        } else {
            description
        };
        let node = self.node("CFItems", path, name.unwrap_or(full));
        self.package.items.push(CfItem {
            identifier: Some(node.identifier.clone()),
            uri: Some(node.uri.clone()),
            full_statement: Some(full.to_string()),
            abbreviated_statement: name.map(str::to_string),
            item_type: Some(kind.to_string()),
            item_type_uri: Some(self.type_link(kind)),
            human_coding_scheme: Some(code.to_string()),
            list_enumeration: enumeration,
            last_change_date_time: Some(self.changed.clone()),
            extensions: (!extensions.is_empty()).then_some(Value::Object(extensions)),
        });
        node
    }

    /// Gives the item just written as `node` the identity of the CASE item
    /// it was imported from, as that item had it (a part it lacked stays
    /// absent, but for the URI, which links need).
    fn keep_identity(&mut self, node: Node, kept: &CaseItem) -> Node {
        let identifier = kept.identifier.clone().unwrap_or(node.identifier);
        let uri = kept.uri.clone().unwrap_or_else(|| {
            format!(
                "{}/ims/case/v1p1/CFItems/{identifier}",
                self.options.base_uri.trim_end_matches('/')
            )
        });
        if let Some(item) = self.package.items.last_mut() {
            item.identifier = Some(identifier.clone());
            item.uri = Some(uri.clone());
            item.human_coding_scheme = kept.human_coding_scheme.clone();
        }
        Node {
            identifier,
            uri,
            title: node.title,
        }
    }

    fn associate(
        &mut self,
        kind: &str,
        origin: &Node,
        destination: &Node,
        sequence: usize,
        extensions: Option<Value>,
    ) {
        let path = format!(
            "association/{kind}/{}/{}",
            origin.identifier, destination.identifier
        );
        let node = self.node("CFAssociations", &path, kind);
        self.package.associations.push(CfAssociation {
            identifier: Some(node.identifier),
            association_type: Some(kind.to_string()),
            sequence_number: Some(sequence as i64),
            uri: Some(node.uri),
            origin: Some(origin.link()),
            destination: Some(destination.link()),
            last_change_date_time: Some(self.changed.clone()),
            extensions,
        });
    }
}

/// The package of `doc`: tracks, competencies (each with its five levels and
/// their behaviours as child items) and roles as `CFItem`s linked by
/// `isChildOf`, transitions as `precedes`, and each role's rubric as a
/// `CFRubric`. The mapping is in docs/standards.md.
pub fn to_case(doc: &Document, options: &CaseExport) -> CfPackage {
    let changed = options
        .last_change
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut w = Writer {
        options,
        changed: changed.clone(),
        package: CfPackage::default(),
    };
    let root = w.node("CFDocuments", "document", &options.title);
    let mut doc_extensions = Map::new();
    doc_extensions.insert(ext::FORMAT.into(), json!(FORMAT));
    if doc.mode == ImportMode::Complete {
        doc_extensions.insert(ext::MODE.into(), json!("complete"));
    }
    w.package.document = CfDocument {
        identifier: Some(root.identifier.clone()),
        uri: Some(root.uri.clone()),
        case_version: Some("1.1".into()),
        creator: Some(options.creator.clone()),
        title: Some(options.title.clone()),
        last_change_date_time: Some(changed.clone()),
        description: None,
        version: Some(options.version.clone()),
        adoption_status: Some(options.adoption_status.clone()),
        extensions: Some(Value::Object(doc_extensions)),
    };

    let mut tracks = std::collections::HashMap::new();
    for (i, t) in doc.tracks.iter().enumerate() {
        let node = w.item(
            &format!("track/{}", t.id),
            item_type::TRACK,
            &t.id,
            Some(&t.name),
            &t.description,
            None,
            Map::new(),
        );
        w.associate("isChildOf", &node, &root, i + 1, None);
        tracks.insert(t.id.as_str(), node);
    }

    let kept: std::collections::HashMap<&str, &CaseItem> = options
        .items
        .iter()
        .map(|k| (k.competency_id.as_str(), k))
        .collect();
    let mut competencies = std::collections::HashMap::new();
    for (i, c) in doc.competencies.iter().enumerate() {
        let path = format!("competency/{}", c.id);
        let mut node = w.item(
            &path,
            item_type::COMPETENCY,
            &c.id,
            Some(&c.name),
            &c.description,
            None,
            Map::new(),
        );
        if let Some(kept) = kept.get(c.id.as_str()) {
            node = w.keep_identity(node, kept);
        }
        w.associate("isChildOf", &node, &root, i + 1, None);
        for level in &c.levels {
            let level_path = format!("{path}/level/{}", level.level);
            let level_node = w.item(
                &level_path,
                item_type::LEVEL,
                &format!("{}.{}", c.id, level.level),
                Some(&level.title),
                &level.description,
                Some(level.level.to_string()),
                Map::new(),
            );
            w.associate(
                "isChildOf",
                &level_node,
                &node,
                usize::from(level.level),
                None,
            );
            for (k, behaviour) in level.behaviours.iter().enumerate() {
                let behaviour_node = w.item(
                    &format!("{level_path}/behaviour/{}", k + 1),
                    item_type::BEHAVIOUR,
                    &format!("{}.{}.{}", c.id, level.level, k + 1),
                    None,
                    behaviour,
                    Some((k + 1).to_string()),
                    Map::new(),
                );
                w.associate("isChildOf", &behaviour_node, &level_node, k + 1, None);
            }
        }
        competencies.insert(c.id.as_str(), node);
    }

    let mut roles = std::collections::HashMap::new();
    for (i, r) in doc.roles.iter().enumerate() {
        let mut extensions = Map::new();
        extensions.insert(ext::SENIORITY.into(), json!(r.seniority));
        let node = w.item(
            &format!("role/{}", r.id),
            item_type::ROLE,
            &r.id,
            Some(&r.name),
            &r.description,
            None,
            extensions,
        );
        if let Some(track) = tracks.get(r.track.as_str()) {
            w.associate("isChildOf", &node, track, i + 1, None);
        }
        roles.insert(r.id.as_str(), node);
    }
    for r in &doc.roles {
        for (k, t) in r.transitions.iter().enumerate() {
            if let (Some(from), Some(to)) = (roles.get(r.id.as_str()), roles.get(t.to.as_str())) {
                let extensions = json!({ ext::TRANSITION: t.kind.as_str() });
                w.associate("precedes", from, to, k + 1, Some(extensions));
            }
        }
    }

    for r in &doc.roles {
        let Some(rubric) = &r.rubric else { continue };
        let rubric_path = format!("rubric/{}", r.id);
        let rubric_node = w.node("CFRubrics", &rubric_path, &r.name);
        let mut criteria = Vec::new();
        for (k, e) in rubric.competencies.iter().enumerate() {
            let criterion_path = format!("{rubric_path}/criterion/{}", e.competency_id);
            let criterion_node = w.node("CFRubricCriteria", &criterion_path, &e.competency_id);
            let competency = doc.competencies.iter().find(|c| c.id == e.competency_id);
            let levels = competency
                .map(|c| c.levels.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|level| {
                    let level_node = w.node(
                        "CFRubricCriterionLevels",
                        &format!("{criterion_path}/level/{}", level.level),
                        &level.title,
                    );
                    CfRubricCriterionLevel {
                        identifier: Some(level_node.identifier),
                        uri: Some(level_node.uri),
                        description: Some(level.description.clone()),
                        quality: Some(level.title.clone()),
                        score: Some(f64::from(level.level)),
                        feedback: None,
                        position: Some(i64::from(level.level)),
                        rubric_criterion_id: Some(criterion_node.identifier.clone()),
                        last_change_date_time: Some(changed.clone()),
                        extensions: None,
                    }
                })
                .collect();
            criteria.push(CfRubricCriterion {
                identifier: Some(criterion_node.identifier.clone()),
                uri: Some(criterion_node.uri),
                category: competency.map(|c| c.name.clone()),
                description: None,
                item: competencies.get(e.competency_id.as_str()).map(Node::link),
                weight: Some(e.weight),
                position: Some(k as i64 + 1),
                rubric_id: Some(rubric_node.identifier.clone()),
                last_change_date_time: Some(changed.clone()),
                levels,
                extensions: Some(json!({
                    ext::EXPECTED_LEVEL: e.expected_level,
                    ext::CRITICAL: e.critical,
                    ext::DEVELOPMENT_ACTIONS: e.development_actions,
                })),
            });
        }
        w.package.rubrics.push(CfRubric {
            identifier: Some(rubric_node.identifier),
            uri: Some(rubric_node.uri),
            title: Some(format!("{} rubric", r.name)),
            description: None,
            last_change_date_time: Some(changed.clone()),
            criteria,
            extensions: Some(json!({ ext::ROLE: r.id })),
        });
    }

    let item_types = item_type::ALL
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let node = w.node("CFItemTypes", &format!("item-type/{name}"), name);
            CfItemType {
                identifier: Some(node.identifier),
                uri: Some(node.uri),
                title: Some(name.to_string()),
                description: Some(format!(
                    "A {} of a Ladder career framework.",
                    name.to_lowercase()
                )),
                hierarchy_code: Some((i + 1).to_string()),
                last_change_date_time: Some(changed.clone()),
            }
        })
        .collect();
    w.package.definitions = Some(CfDefinitions { item_types });
    w.package
}
