//! The scoring engine's inputs, shared by `ladder-bench` and `benches/scoring.rs`:
//! one rubric of the 16 competencies of the built-in framework and any number
//! of random evidence items (random sources, confidences and levels, ages up
//! to three years, spread evenly over the 16 competencies) as the service
//! reads them: in observation order, with ids that grow in that order, as
//! the UUIDv7 ids ingest gives evidence reported as it is observed do.
//! [`evidence_in_random_order`] is the worst case: ids in no order.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ladder::domain::evidence::{Observation, Source};
use ladder::domain::framework::Document;
use ladder::domain::scoring::Expectation;
use uuid::Uuid;

/// The competency ids of the built-in framework: a realistic 16-competency rubric.
static COMPETENCIES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| Document::builtin().competency_ids());

/// SplitMix64: reproducible inputs without a dependency on `rand`.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The time the evidence is scored at.
pub fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

pub fn rubric() -> Vec<Expectation> {
    COMPETENCIES
        .iter()
        .enumerate()
        .map(|(i, id)| Expectation {
            competency_id: id.to_string(),
            expected_level: (i % 5) as u8 + 1,
            weight: 1.0 + (i % 3) as f64,
            critical: i % 4 == 0,
        })
        .collect()
}

pub fn evidence(count: usize) -> Vec<Observation> {
    let mut drawn = evidence_in_random_order(count);
    drawn.sort_by_key(|observation| observation.observed_at);
    // Made anew in their order, as decoding the statement's rows makes them,
    // so that their strings lie in memory in that order too.
    drawn
        .iter()
        .enumerate()
        .map(|(ingested, observation)| Observation {
            id: Uuid::from_u64_pair(ingested as u64, observation.id.as_u64_pair().1),
            competency_id: observation.competency_id.clone(),
            ..*observation
        })
        .collect()
}

pub fn evidence_in_random_order(count: usize) -> Vec<Observation> {
    let mut rng = SplitMix(42);
    (0..count)
        .map(|_| Observation {
            id: Uuid::from_u64_pair(rng.next(), rng.next()),
            competency_id: COMPETENCIES[(rng.next() % COMPETENCIES.len() as u64) as usize]
                .to_string(),
            level: 1.0 + 4.0 * rng.unit(),
            source: Source::ALL[(rng.next() % 6) as usize],
            confidence: 0.1 + 0.9 * rng.unit(),
            // Up to three years old, to the microsecond.
            observed_at: as_of()
                - Duration::microseconds((rng.unit() * 3.0 * 365.0 * 86_400e6) as i64),
        })
        .collect()
}
