//! Turning observations into the weighted samples of each rubric competency:
//! the only part of scoring whose cost grows with the amount of evidence.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::adjustments::RaterAdjustments;
use super::model;
use super::policy::ScoringPolicy;
use crate::domain::evidence::Observation;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: f64 = 86_400.0;
const NANOS_PER_DAY: f64 = 86_400e9;

/// An evidence id as a number, ordered as the `u128` it is. Two words
/// rather than a `u128`, whose 16-byte alignment would pad every [`Sample`]
/// from 40 bytes to 48: on 100,000 items the engine is bound by memory.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct EvidenceKey {
    high: u64,
    low: u64,
}

impl EvidenceKey {
    fn new(id: u128) -> Self {
        Self {
            high: (id >> 64) as u64,
            low: id as u64,
        }
    }

    fn get(self) -> u128 {
        (u128::from(self.high) << 64) | u128::from(self.low)
    }
}

/// One observation as a competency score uses it.
#[derive(Clone, Copy, Default)]
pub(crate) struct Sample {
    /// The evidence id: compared on every step of the sort.
    id: EvidenceKey,
    pub weight: f64,
    /// The level as scoring uses it: observed level − rater_adjustment.
    pub level: f64,
    pub rater_adjustment: f64,
}

impl Sample {
    pub fn evidence_id(&self) -> Uuid {
        Uuid::from_u128(self.id.get())
    }

    /// Sorts `samples` into a canonical order: by id, and equal ids (the same
    /// evidence passed twice) by weight and level. Summing in this order makes
    /// every bit of a score independent of the order the evidence arrived in.
    /// `scratch` is the radix sort's, shared by every group.
    fn sort_canonically(samples: &mut [Sample], scratch: &mut SortScratch) {
        // Evidence ids are UUIDv7, given at ingest, and evidence is mostly
        // ingested as it is observed: what the scoring statement reads
        // (along its index, in observation order, though SQL promises no
        // order) is usually in id order already, and one pass says so.
        // Strictly increasing ids leave no ties to order.
        if samples.windows(2).all(|pair| pair[0].id < pair[1].id) {
            return;
        }
        // Ties are rare, so they are ordered in a second step rather than with
        // a three-way comparison on every step of the main sort.
        sort_by_id(samples, scratch);
        for run in samples.chunk_by_mut(|a, b| a.id == b.id) {
            if run.len() > 1 {
                run.sort_unstable_by(|a, b| {
                    a.weight
                        .total_cmp(&b.weight)
                        .then(a.level.total_cmp(&b.level))
                });
            }
        }
    }
}

/// Below this many samples a comparison sort is as fast as distributing.
const SMALL_SORT: usize = 64;

/// The radix sort's buffers, shared by every group of one scoring call.
#[derive(Default)]
struct SortScratch {
    samples: Vec<Sample>,
    /// Per bucket: how many samples it gets, then where its next one goes
    /// (so, once all are placed, where it ends).
    buckets: Vec<u32>,
}

/// Sorts `samples` by id: one pass of an MSD radix sort, then a comparison
/// sort of each bucket. The samples are dealt into about as many buckets as
/// there are samples by the first bits in which their ids differ (ids spread
/// over time and randomness, as UUIDv7 are, leave most buckets with one or
/// two samples), and each bucket of more than two is comparison-sorted,
/// which also bounds the work on ids that cluster (O(n log n)).
/// Comparison-sorting the samples by their 128-bit keys was almost half of
/// scoring evidence whose ids come in no order (callgrind,
/// docs/benchmarks.md); this is one counting pass and one move.
fn sort_by_id(samples: &mut [Sample], scratch: &mut SortScratch) {
    if samples.len() <= SMALL_SORT || samples.len() > u32::MAX as usize {
        samples.sort_unstable_by_key(|s| s.id);
        return;
    }
    let first = samples[0].id.get();
    let differing = samples
        .iter()
        .fold(0, |bits, s| bits | (s.id.get() ^ first));
    if differing == 0 {
        return;
    }
    // The bucket is the `bits` bits from the highest one that differs
    // (fewer, at the bottom of the id): between half as many and as many
    // buckets as samples.
    let bits = (usize::BITS - 1 - samples.len().leading_zeros()).min(16);
    let shift = (128 - differing.leading_zeros()).saturating_sub(bits);
    let mask = (1usize << bits) - 1;
    let bucket = |id: u128| ((id >> shift) as usize) & mask;
    let buckets = &mut scratch.buckets;
    buckets.clear();
    buckets.resize(mask + 1, 0);
    for sample in samples.iter() {
        buckets[bucket(sample.id.get())] += 1;
    }
    let mut start = 0;
    for next in buckets.iter_mut() {
        let count = *next;
        *next = start;
        start += count;
    }
    scratch.samples.clear();
    scratch.samples.extend_from_slice(samples);
    for sample in &scratch.samples {
        let next = &mut buckets[bucket(sample.id.get())];
        samples[*next as usize] = *sample;
        *next += 1;
    }
    let mut start = 0;
    for &end in buckets.iter() {
        let end = end as usize;
        match end - start {
            0 | 1 => {}
            2 => {
                if samples[start].id > samples[start + 1].id {
                    samples.swap(start, start + 1);
                }
            }
            _ => samples[start..end].sort_unstable_by_key(|s| s.id),
        }
        start = end;
    }
}

/// The samples of each of a list of competencies, in the list's order, each
/// group in canonical order. Evidence observed after `as_of` or for
/// competencies outside the list is left out.
pub(crate) struct GroupedSamples {
    samples: Vec<Sample>,
    /// `ends[c]` is one past the last sample of competency c of the list.
    ends: Vec<usize>,
}

impl GroupedSamples {
    /// The samples of `competencies` (ids, none twice).
    pub fn collect(
        evidence: &[Observation],
        adjustments: &RaterAdjustments,
        competencies: &[&str],
        policy: &ScoringPolicy,
        as_of: DateTime<Utc>,
    ) -> Self {
        // Pass 1 finds each observation's competency and counts the groups, so
        // that pass 2 can write every sample straight into its place.
        let index = competency_index(competencies);
        let mut counts = vec![0; competencies.len()];
        let competency_of: Vec<Option<u32>> = evidence
            .iter()
            .map(|observation| {
                if observation.observed_at > as_of {
                    return None;
                }
                let competency = index.get(observation.competency_id.as_str()).copied();
                if let Some(c) = competency {
                    counts[c] += 1;
                }
                // A rubric's competencies are few: their positions fit in 32 bits.
                competency.map(|c| c as u32)
            })
            .collect();

        // Each group starts where the previous one ends; a cursor per group
        // then walks to the group's end.
        let mut next: Vec<usize> = counts
            .iter()
            .scan(0, |start, count| {
                let group_start = *start;
                *start += count;
                Some(group_start)
            })
            .collect();
        let now = Timestamp::from(as_of);
        let mut samples = vec![Sample::default(); counts.iter().sum()];
        for (observation, competency) in evidence.iter().zip(competency_of) {
            let Some(c) = competency.map(|c| c as usize) else {
                continue;
            };
            // Without calibration no lookup is paid for, and the level is
            // the observed one to the bit.
            let rater_adjustment = if adjustments.is_empty() {
                0.0
            } else {
                adjustments.of(observation.id)
            };
            samples[next[c]] = Sample {
                id: EvidenceKey::new(observation.id.as_u128()),
                weight: model::evidence_weight(
                    policy.source_weights.get(observation.source),
                    observation.confidence,
                    now.days_since(Timestamp::from(observation.observed_at)),
                    policy.half_life_days,
                ),
                level: observation.level - rater_adjustment,
                rater_adjustment,
            };
            next[c] += 1;
        }
        let mut grouped = Self {
            samples,
            ends: next,
        };
        let mut scratch = SortScratch::default();
        for c in 0..competencies.len() {
            let range = grouped.range(c);
            Sample::sort_canonically(&mut grouped.samples[range], &mut scratch);
        }
        grouped
    }

    /// The samples of rubric competency `c`.
    pub fn of(&self, c: usize) -> &[Sample] {
        &self.samples[self.range(c)]
    }

    fn range(&self, c: usize) -> std::ops::Range<usize> {
        let start = if c == 0 { 0 } else { self.ends[c - 1] };
        start..self.ends[c]
    }
}

/// A point in time as whole seconds and nanoseconds since the Unix epoch,
/// which makes ages cheap to compute and exact to the nanosecond.
#[derive(Clone, Copy)]
struct Timestamp {
    seconds: i64,
    nanos: i64,
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Self {
            seconds: at.timestamp(),
            nanos: i64::from(at.timestamp_subsec_nanos()),
        }
    }
}

impl Timestamp {
    /// Fractional days since a not later `earlier`, over chrono's whole range.
    fn days_since(self, earlier: Timestamp) -> f64 {
        let mut seconds = self.seconds - earlier.seconds;
        let mut nanos = self.nanos - earlier.nanos;
        // Borrow a second so that both parts are non-negative: their sum then
        // loses nothing to cancellation (1 s − 999 999 999 ns stays 1 ns).
        if nanos < 0 {
            seconds -= 1;
            nanos += NANOS_PER_SECOND;
        }
        seconds as f64 / SECONDS_PER_DAY + nanos as f64 / NANOS_PER_DAY
    }
}

/// Competency id → position, looked up once per observation. SipHash would
/// cost as much as all the arithmetic of an observation; its protection
/// against crafted collisions is not needed because the keys come from
/// rubrics, so a crafted id can only lengthen its own lookup.
fn competency_index<'a>(
    competencies: &[&'a str],
) -> HashMap<&'a str, usize, BuildHasherDefault<EndsHasher>> {
    competencies
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect()
}

/// Hashes a string by its length and its first and last eight bytes, mixed
/// the FxHash way: constant cost whatever the id's length. The map still
/// compares whole ids, so ids alike at both ends merely share a bucket.
#[derive(Default)]
struct EndsHasher(u64);

impl EndsHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for EndsHasher {
    fn write(&mut self, bytes: &[u8]) {
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        if bytes.len() >= 8 {
            self.mix(word(0));
            self.mix(word(bytes.len() - 8));
        } else {
            let mut short = [0; 8];
            short[..bytes.len()].copy_from_slice(bytes);
            self.mix(u64::from_le_bytes(short));
        }
        self.mix(bytes.len() as u64);
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        // The table indexes by the low bits; fold the well-mixed high bits in.
        self.0 ^ (self.0 >> 32)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::evidence::Source;

    fn at(seconds_before: i64, nanos_before: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
            - Duration::seconds(seconds_before)
            - Duration::nanoseconds(nanos_before)
    }

    #[test]
    fn ages_keep_nanoseconds_across_millennia() {
        let now = Timestamp::from(at(0, 0));
        assert_eq!(now.days_since(Timestamp::from(at(43_200, 0))), 0.5);
        assert_eq!(
            now.days_since(Timestamp::from(at(0, 1))),
            1.0 / NANOS_PER_DAY
        );
        assert_eq!(
            now.days_since(Timestamp::from(at(1, -999_999_999))),
            1.0 / NANOS_PER_DAY
        );
        assert!(now.days_since(Timestamp::from(DateTime::<Utc>::MIN_UTC)) > 9.5e7);
    }

    #[test]
    fn groups_by_competency_in_id_order() {
        let competencies = ["system_design", "a_much_longer_competency_identifier", "c"];
        let observation = |id: u128, competency: &str, seconds_before: i64| Observation {
            id: Uuid::from_u128(id),
            competency_id: competency.into(),
            level: 3.0,
            source: Source::Manager,
            confidence: 1.0,
            observed_at: at(seconds_before, 0),
        };
        let evidence = [
            observation(9, "c", 0),
            observation(7, "system_design", 0),
            observation(3, "not_in_rubric", 0),
            observation(5, "c", 0),
            observation(4, "system_design", -1),
            observation(2, "system_design", 0),
        ];
        let grouped = GroupedSamples::collect(
            &evidence,
            &RaterAdjustments::default(),
            &competencies,
            &ScoringPolicy::default(),
            at(0, 0),
        );
        let ids = |c| grouped.of(c).iter().map(|s| s.id.get()).collect::<Vec<_>>();
        assert_eq!((ids(0), ids(1), ids(2)), (vec![2, 7], vec![], vec![5, 9]));
    }

    proptest::proptest! {
        /// Ids sorted as a comparison sort sorts them, whatever their
        /// spread: one prefix for all, clusters, duplicates, any order.
        #[test]
        fn the_radix_sort_orders_ids_as_a_comparison_sort_does(
            prefix in proptest::prelude::any::<u128>(),
            low_bits in 0u32..=128,
            ids in proptest::collection::vec(proptest::prelude::any::<u128>(), 0..3000),
            repeats in 0usize..50,
        ) {
            let mask = if low_bits == 128 { u128::MAX } else { (1u128 << low_bits) - 1 };
            let mut samples: Vec<Sample> = ids
                .iter()
                .chain(ids.iter().take(repeats))
                .map(|id| Sample {
                    id: EvidenceKey::new((prefix & !mask) | (id & mask)),
                    ..Sample::default()
                })
                .collect();
            let mut expected: Vec<u128> = samples.iter().map(|s| s.id.get()).collect();
            expected.sort_unstable();
            sort_by_id(&mut samples, &mut SortScratch::default());
            let sorted: Vec<u128> = samples.iter().map(|s| s.id.get()).collect();
            proptest::prop_assert_eq!(sorted, expected);
        }
    }

    #[test]
    fn ids_alike_at_both_ends_stay_apart() {
        let index = competency_index(&["abcdefgh_x_12345678", "abcdefgh_y_12345678"]);
        assert_eq!(index.get("abcdefgh_x_12345678"), Some(&0));
        assert_eq!(index.get("abcdefgh_y_12345678"), Some(&1));
        assert_eq!(index.get("abcdefgh_z_12345678"), None);
    }
}
