//! The adverse-impact report of SPEC §11: READY rates per group of subjects,
//! compared with the group that fares best.
//!
//! The group labels are sensitive (they may encode sex, ethnicity, age): they
//! exist only in memory for the length of one report. What may be kept for
//! the audit log is [`LabelsAudit`]: counts and a digest.

use std::collections::{BTreeMap, HashMap, HashSet};

use sha2::{Digest, Sha256};

use super::fisher::fisher_exact_two_sided;
use crate::domain::evidence::opaque_id_violations;
use crate::domain::scoring::Band;
use crate::domain::validation::Violations;

/// Most labels in one report.
pub const MAX_LABELS: usize = 10_000;
/// Most distinct groups in one report.
pub const MAX_GROUPS: usize = 50;
/// Longest group label, in characters.
pub const MAX_GROUP_LEN: usize = 100;
/// Groups smaller than this show their size only: rates of a handful of people
/// say nothing and could single a person out.
pub const MIN_REPORTED_GROUP: u64 = 5;

/// One subject's group, as the caller passes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLabel {
    pub subject_id: String,
    pub group: String,
}

/// Every violation, as `labels[i].subject_id` and `labels[i].group`: at least
/// one and at most [`MAX_LABELS`] labels in at most [`MAX_GROUPS`] groups, each
/// subject an opaque id labelled once, each group 1 to [`MAX_GROUP_LEN`]
/// characters without control characters (which also keeps the digest's lines
/// unambiguous).
pub fn validate_labels(labels: &[GroupLabel]) -> Result<(), Violations> {
    let mut violations = Violations::new();
    if labels.is_empty() {
        violations.add("labels", "must hold at least one label");
    }
    if labels.len() > MAX_LABELS {
        violations.add("labels", format!("must hold at most {MAX_LABELS} labels"));
        // Checking each of a million labels would only make the answer huge.
        return violations.into_result(());
    }
    let mut first_of_subject: HashMap<&str, usize> = HashMap::with_capacity(labels.len());
    let mut groups: HashSet<&str> = HashSet::new();
    for (i, label) in labels.iter().enumerate() {
        let field = |name: &str| format!("labels[{i}].{name}");
        violations.extend_prefixed(
            &format!("labels[{i}]"),
            opaque_id_violations("subject_id", &label.subject_id, true),
        );
        if let Some(first) = first_of_subject.insert(&label.subject_id, i) {
            violations.add(
                field("subject_id"),
                format!("labels the subject of labels[{first}] again"),
            );
            first_of_subject.insert(&label.subject_id, first);
        }
        let length = label.group.chars().count();
        if length == 0 {
            violations.add(field("group"), "is required");
        } else if length > MAX_GROUP_LEN {
            violations.add(
                field("group"),
                format!("must be at most {MAX_GROUP_LEN} characters"),
            );
        } else if label.group.chars().any(char::is_control) {
            violations.add(field("group"), "must not contain control characters");
        }
        groups.insert(&label.group);
    }
    if groups.len() > MAX_GROUPS {
        violations.add("labels", format!("must name at most {MAX_GROUPS} groups"));
    }
    violations.into_result(())
}

/// What the audit record may keep of a set of labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelsAudit {
    pub label_count: usize,
    pub group_count: usize,
    /// Lower-case hex SHA-256 of the lines `subject<TAB>group<LF>` (every line
    /// ends with LF), sorted by their UTF-8 bytes: the same labels in any order
    /// give the same digest, and an auditor holding the labels can check it.
    pub labels_sha256: String,
}

pub fn labels_audit(labels: &[GroupLabel]) -> LabelsAudit {
    let mut lines: Vec<String> = labels
        .iter()
        .map(|label| format!("{}\t{}\n", label.subject_id, label.group))
        .collect();
    lines.sort_unstable();
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
    }
    let labels_sha256 = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let group_count = labels
        .iter()
        .map(|label| label.group.as_str())
        .collect::<HashSet<_>>()
        .len();
    LabelsAudit {
        label_count: labels.len(),
        group_count,
        labels_sha256,
    }
}

/// One labelled subject's assessment against the role.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledOutcome {
    pub group: String,
    pub band: Band,
    pub readiness: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImpactReport {
    /// The group with the highest READY rate among those with at least
    /// [`MIN_REPORTED_GROUP`] members; equal rates go to the larger group, then
    /// to the group whose label sorts first. `None` when no group is that large.
    pub reference_group: Option<String>,
    /// Every group, ordered by label.
    pub groups: Vec<GroupImpact>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupImpact {
    pub group: String,
    pub n: u64,
    /// `None` for a group under [`MIN_REPORTED_GROUP`] members.
    pub figures: Option<GroupFigures>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupFigures {
    pub ready: u64,
    /// ready / n.
    pub rate: f64,
    pub mean_readiness: f64,
    /// rate / reference rate; `None` when the reference rate is 0 (no group
    /// has anyone READY, so there is nothing to compare).
    pub impact_ratio: Option<f64>,
    /// Impact ratio below 0.8, decided on the exact counts
    /// (5·ready·n_ref < 4·ready_ref·n) so that a ratio of exactly 0.8 is
    /// never flagged by rounding.
    pub below_four_fifths: bool,
    /// Two-sided Fisher exact p-value of (ready, n − ready) against the
    /// reference group's; for the reference group itself its table against
    /// itself, which is 1.
    pub fisher_p: f64,
}

/// The report over `outcomes`, one per labelled subject.
pub fn impact_report(outcomes: &[LabelledOutcome]) -> ImpactReport {
    #[derive(Default)]
    struct Tally {
        n: u64,
        ready: u64,
        readiness: Vec<f64>,
    }
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for outcome in outcomes {
        let tally = tallies.entry(&outcome.group).or_default();
        tally.n += 1;
        tally.ready += u64::from(outcome.band == Band::Ready);
        tally.readiness.push(outcome.readiness);
    }

    // Rates compared as fractions (ready_a·n_b against ready_b·n_a), so that
    // 1/3 and 2/6 are the same rate. The map iterates in label order and only
    // a strictly better group replaces the current one, which leaves equal
    // groups to the label that sorts first.
    let mut reference: Option<(&str, &Tally)> = None;
    for (&group, tally) in tallies.iter().filter(|(_, t)| t.n >= MIN_REPORTED_GROUP) {
        let better = match reference {
            None => true,
            Some((_, best)) => {
                let (this_rate, best_rate) = (tally.ready * best.n, best.ready * tally.n);
                this_rate > best_rate || (this_rate == best_rate && tally.n > best.n)
            }
        };
        if better {
            reference = Some((group, tally));
        }
    }

    let groups = tallies
        .iter()
        .map(|(&group, tally)| GroupImpact {
            group: group.to_string(),
            n: tally.n,
            figures: reference
                .filter(|_| tally.n >= MIN_REPORTED_GROUP)
                .map(|(_, best)| {
                    figures(tally.n, tally.ready, &tally.readiness, best.n, best.ready)
                }),
        })
        .collect();
    ImpactReport {
        reference_group: reference.map(|(group, _)| group.to_string()),
        groups,
    }
}

fn figures(n: u64, ready: u64, readiness: &[f64], n_ref: u64, ready_ref: u64) -> GroupFigures {
    // Summed in sorted order, so that the labels' order cannot change a bit.
    let mut readiness = readiness.to_vec();
    readiness.sort_unstable_by(f64::total_cmp);
    GroupFigures {
        ready,
        rate: ready as f64 / n as f64,
        mean_readiness: readiness.iter().sum::<f64>() / n as f64,
        impact_ratio: (ready_ref > 0).then(|| (ready * n_ref) as f64 / (ready_ref * n) as f64),
        below_four_fifths: 5 * ready * n_ref < 4 * ready_ref * n,
        fisher_p: fisher_exact_two_sided(ready, n - ready, ready_ref, n_ref - ready_ref),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(subject_id: &str, group: &str) -> GroupLabel {
        GroupLabel {
            subject_id: subject_id.into(),
            group: group.into(),
        }
    }

    fn fields(labels: &[GroupLabel]) -> Vec<String> {
        validate_labels(labels).unwrap_err().fields()
    }

    #[test]
    fn each_subject_once_in_a_bounded_group() {
        assert_eq!(
            validate_labels(&[label("s1", "A"), label("s2", "A")]),
            Ok(())
        );
        assert_eq!(
            fields(&[
                label("s1", "A"),
                label("s1", "B"),
                label("", "A"),
                label("s3@example.com", ""),
                label("s4", &"g".repeat(MAX_GROUP_LEN + 1)),
                label("s5", "tab\tinside"),
            ]),
            [
                "labels[1].subject_id",
                "labels[2].subject_id",
                "labels[3].subject_id",
                "labels[3].group",
                "labels[4].group",
                "labels[5].group",
            ]
        );
        assert_eq!(fields(&[]), ["labels"]);
    }

    #[test]
    fn bounds_labels_and_groups() {
        let many: Vec<GroupLabel> = (0..=MAX_LABELS)
            .map(|i| label(&format!("s{i}"), "A"))
            .collect();
        assert_eq!(fields(&many), ["labels"]);
        assert_eq!(validate_labels(&many[..MAX_LABELS]), Ok(()));
        let groups: Vec<GroupLabel> = (0..=MAX_GROUPS)
            .map(|i| label(&format!("s{i}"), &format!("g{i}")))
            .collect();
        assert_eq!(fields(&groups), ["labels"]);
        assert_eq!(validate_labels(&groups[..MAX_GROUPS]), Ok(()));
    }

    #[test]
    fn audit_keeps_counts_and_an_order_free_digest() {
        let labels = [label("s2", "B"), label("s1", "A"), label("s3", "A")];
        let mut reordered = labels.clone();
        reordered.reverse();
        let audit = labels_audit(&labels);
        assert_eq!((audit.label_count, audit.group_count), (3, 2));
        assert_eq!(audit.labels_sha256.len(), 64);
        assert_eq!(labels_audit(&reordered), audit);
        assert_ne!(
            labels_audit(&labels[..2]).labels_sha256,
            audit.labels_sha256
        );
    }

    #[test]
    fn small_groups_show_their_count_only() {
        let outcome = |group: &str, band| LabelledOutcome {
            group: group.into(),
            band,
            readiness: 0.5,
        };
        let mut outcomes = vec![outcome("tiny", Band::Ready); 4];
        outcomes.extend(vec![outcome("big", Band::Developing); 5]);
        let report = impact_report(&outcomes);
        assert_eq!(report.reference_group.as_deref(), Some("big"));
        let tiny = &report.groups[1];
        assert_eq!(
            (tiny.group.as_str(), tiny.n, &tiny.figures),
            ("tiny", 4, &None)
        );
    }
}
