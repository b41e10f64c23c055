//! The ratings of one calibration, interned as they stream in and put into a
//! canonical order before anything is summed, so that every bit of the
//! estimate is independent of the order the ratings arrived in.

use std::collections::HashMap;

use crate::domain::validation::Violations;

/// One rating as the estimator reads it: evidence with a rater.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rating<'a> {
    pub subject_id: &'a str,
    pub competency_id: &'a str,
    pub rater_id: &'a str,
    /// y_i, the observed level.
    pub level: f64,
    /// ω_i, in (0, 1].
    pub confidence: f64,
}

/// A growing set of ratings. Ids are interned on arrival, so a million
/// ratings cost a few compact rows rather than three strings each.
#[derive(Debug, Default)]
pub struct RatingSet {
    subjects: Interner,
    competencies: Interner,
    raters: Interner,
    rows: Vec<Row>,
}

impl RatingSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one rating, or refuses it with violations naming `subject_id`,
    /// `competency_id`, `rater_id`, `level` or `confidence`.
    pub fn push(&mut self, rating: Rating<'_>) -> Result<(), Violations> {
        let mut violations = Violations::new();
        for (field, id) in [
            ("subject_id", rating.subject_id),
            ("competency_id", rating.competency_id),
            ("rater_id", rating.rater_id),
        ] {
            if id.is_empty() {
                violations.add(field, "must not be empty");
            }
        }
        if !rating.level.is_finite() {
            violations.add("level", "must be a finite number");
        }
        if !(rating.confidence > 0.0 && rating.confidence <= 1.0) {
            violations.add("confidence", "must be in (0, 1]");
        }
        violations.into_result(())?;
        self.rows.push(Row {
            subject: self.subjects.intern(rating.subject_id),
            competency: self.competencies.intern(rating.competency_id),
            rater: self.raters.intern(rating.rater_id),
            level: rating.level,
            weight: rating.confidence,
        });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The ratings with every id renumbered by the rank of its name, sorted by
    /// (subject, competency, rater, level, weight): ratings of one cell are
    /// adjacent, and within it those of one rater.
    pub(super) fn into_canonical(self) -> Canonical {
        let subject_rank = self.subjects.ranks().1;
        let competency_rank = self.competencies.ranks().1;
        let (rater_ids, rater_rank) = self.raters.ranks();
        let mut rows = self.rows;
        for row in &mut rows {
            row.subject = subject_rank[row.subject as usize];
            row.competency = competency_rank[row.competency as usize];
            row.rater = rater_rank[row.rater as usize];
        }
        rows.sort_unstable_by(|a, b| {
            (a.subject, a.competency, a.rater)
                .cmp(&(b.subject, b.competency, b.rater))
                .then(a.level.total_cmp(&b.level))
                .then(a.weight.total_cmp(&b.weight))
        });
        Canonical {
            subjects: subject_rank.len(),
            rater_ids,
            rows,
        }
    }
}

/// One rating with interned ids.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row {
    pub subject: u32,
    pub competency: u32,
    pub rater: u32,
    pub level: f64,
    pub weight: f64,
}

impl Row {
    pub fn same_cell(&self, other: &Row) -> bool {
        (self.subject, self.competency) == (other.subject, other.competency)
    }
}

/// The ratings in canonical order; rater `r` is `rater_ids[r]`.
pub(super) struct Canonical {
    pub subjects: usize,
    pub rater_ids: Vec<String>,
    pub rows: Vec<Row>,
}

/// Name → number in order of first arrival.
#[derive(Debug, Default)]
struct Interner(HashMap<String, u32>);

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.0.get(name) {
            return id;
        }
        let id = u32::try_from(self.0.len()).expect("fewer than 2^32 distinct ids");
        self.0.insert(name.to_owned(), id);
        id
    }

    /// The names in sorted order, and for each arrival number the rank of its
    /// name in that order.
    fn ranks(self) -> (Vec<String>, Vec<u32>) {
        let mut named: Vec<(String, u32)> = self.0.into_iter().collect();
        named.sort_unstable();
        let mut rank = vec![0; named.len()];
        for (position, (_, id)) in named.iter().enumerate() {
            rank[*id as usize] = position as u32;
        }
        (named.into_iter().map(|(name, _)| name).collect(), rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating<'a>(subject_id: &'a str, rater_id: &'a str, level: f64) -> Rating<'a> {
        Rating {
            subject_id,
            competency_id: "c",
            rater_id,
            level,
            confidence: 1.0,
        }
    }

    #[test]
    fn names_every_bad_field() {
        let mut set = RatingSet::new();
        let fields: Vec<String> = set
            .push(Rating {
                subject_id: "",
                competency_id: "",
                rater_id: "",
                level: f64::NAN,
                confidence: 0.0,
            })
            .unwrap_err()
            .fields();
        assert_eq!(
            fields,
            [
                "subject_id",
                "competency_id",
                "rater_id",
                "level",
                "confidence"
            ]
        );
        assert!(set.is_empty());
    }

    #[test]
    fn canonical_order_renumbers_by_name() {
        let mut set = RatingSet::new();
        for r in [
            rating("s2", "zed", 3.0),
            rating("s1", "zed", 4.0),
            rating("s1", "amy", 2.0),
            rating("s1", "amy", 1.0),
        ] {
            set.push(r).unwrap();
        }
        let canonical = set.into_canonical();
        assert_eq!(canonical.rater_ids, ["amy", "zed"]);
        assert_eq!(canonical.subjects, 2);
        let rows: Vec<(u32, u32, f64)> = canonical
            .rows
            .iter()
            .map(|r| (r.subject, r.rater, r.level))
            .collect();
        assert_eq!(rows, [(0, 0, 1.0), (0, 0, 2.0), (0, 1, 4.0), (1, 1, 3.0)]);
    }
}
