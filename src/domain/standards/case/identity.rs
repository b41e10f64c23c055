//! The CASE identity of a competency: the identifier, URI and human coding
//! scheme of the item it was imported from (SPEC §9). They are kept so that
//! the export gives the item back as it came, an xAPI statement naming the
//! item counts for the competency, and the next import of the package
//! updates the competency the item became, whatever its title is by then.

use std::collections::{HashMap, HashSet};

use crate::domain::framework::{Document, MAX_ID_CHARS};

/// Most characters of an identifier, URI or human coding scheme kept.
pub const MAX_CASE_KEY_CHARS: usize = 1024;

/// A competency and the CASE item it was imported from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseItem {
    pub competency_id: String,
    pub identifier: Option<String>,
    pub uri: Option<String>,
    pub human_coding_scheme: Option<String>,
}

impl CaseItem {
    /// What names the item across imports: its identifier, or its URI
    /// without one; compared without regard to case, as the import does.
    pub fn key(&self) -> Option<String> {
        self.identifier
            .as_deref()
            .or(self.uri.as_deref())
            .map(|k| k.trim().to_lowercase())
    }
}

/// Gives each competency of an imported package the id of the competency
/// its item already became (`known`, the tenant's), so that a renamed item
/// updates that competency; a new item whose derived id is held by another
/// item's competency gets a free one instead of taking it over. Rubric
/// entries and `items` follow the renames.
pub fn adopt_known_ids(document: &mut Document, items: &mut [CaseItem], known: &[CaseItem]) {
    let by_key: HashMap<String, &str> = known
        .iter()
        .filter_map(|k| Some((k.key()?, k.competency_id.as_str())))
        .collect();
    let held: HashSet<&str> = known.iter().map(|k| k.competency_id.as_str()).collect();
    let adopted: HashMap<&str, &str> = items
        .iter()
        .filter_map(|item| {
            let id = *by_key.get(&item.key()?)?;
            Some((item.competency_id.as_str(), id))
        })
        .collect();
    let mut taken: HashSet<String> = document
        .competencies
        .iter()
        .map(|c| c.id.clone())
        .chain(held.iter().map(|id| id.to_string()))
        .collect();
    let mut renames: HashMap<String, String> = HashMap::new();
    for c in &document.competencies {
        let new = match adopted.get(c.id.as_str()) {
            Some(id) => id.to_string(),
            // Held by the competency of another item (every adopted id is
            // a held one).
            None if held.contains(c.id.as_str()) => free_id(&c.id, &mut taken),
            None => continue,
        };
        if new != c.id {
            renames.insert(c.id.clone(), new);
        }
    }
    if renames.is_empty() {
        return;
    }
    let renamed = |id: &mut String| {
        if let Some(new) = renames.get(id.as_str()) {
            *id = new.clone();
        }
    };
    for c in &mut document.competencies {
        renamed(&mut c.id);
    }
    for role in &mut document.roles {
        for entry in role
            .rubric
            .iter_mut()
            .flat_map(|r| r.competencies.iter_mut())
        {
            renamed(&mut entry.competency_id);
        }
    }
    for item in items {
        renamed(&mut item.competency_id);
    }
}

/// `base`, or `base_2`, `base_3`, ... whichever is not taken yet.
pub(super) fn free_id(base: &str, taken: &mut HashSet<String>) -> String {
    let mut candidate = base.to_string();
    let mut n = 2;
    while taken.contains(&candidate) {
        let suffix = format!("_{n}");
        let room = MAX_ID_CHARS - suffix.len();
        let stem = base[..base.len().min(room)].trim_end_matches('_');
        candidate = format!("{stem}{suffix}");
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(competency_id: &str, identifier: &str) -> CaseItem {
        CaseItem {
            competency_id: competency_id.into(),
            identifier: Some(identifier.into()),
            ..CaseItem::default()
        }
    }

    fn document(ids: &[&str]) -> Document {
        let mut doc = Document::builtin().clone();
        let template = doc.competencies[0].clone();
        doc.roles.clear();
        doc.tracks.clear();
        doc.competencies = ids
            .iter()
            .map(|id| {
                let mut c = template.clone();
                c.id = id.to_string();
                c
            })
            .collect();
        doc
    }

    fn ids(doc: &Document) -> Vec<&str> {
        doc.competencies.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn free_ids_get_a_suffix() {
        let mut taken = HashSet::new();
        assert_eq!(free_id("writing", &mut taken), "writing");
        assert_eq!(free_id("writing", &mut taken), "writing_2");
        assert_eq!(free_id("writing", &mut taken), "writing_3");
        let long = "a".repeat(MAX_ID_CHARS);
        free_id(&long, &mut taken);
        let second = free_id(&long, &mut taken);
        assert!(crate::domain::framework::is_valid_id(&second), "{second}");
    }

    #[test]
    fn a_renamed_item_keeps_its_competency() {
        let mut doc = document(&["composition"]);
        let mut items = vec![item("composition", "X-1")];
        adopt_known_ids(&mut doc, &mut items, &[item("writing", "x-1")]);
        assert_eq!(ids(&doc), ["writing"]);
        assert_eq!(items[0].competency_id, "writing");
    }

    #[test]
    fn a_new_item_does_not_take_over_another_items_competency() {
        let mut doc = document(&["writing", "composition"]);
        let mut items = vec![item("writing", "new"), item("composition", "old")];
        adopt_known_ids(&mut doc, &mut items, &[item("writing", "old")]);
        assert_eq!(ids(&doc), ["writing_2", "writing"]);
        assert_eq!(items[0].competency_id, "writing_2");
    }
}
