//! A reproducible world of people, raters and ratings for rater calibration
//! (SPEC §10): every subject has a true level per competency, every rater a
//! true leniency (some lenient, some severe), and each subject is rated by a
//! panel of raters drawn at random, so that panels overlap. Shared by
//! tests/calibration_simulation.rs (does calibration help?) and
//! benches/calibration.rs (how fast at a million ratings?).
//!
//! A rating is true level + the rater's leniency + noise, rounded to a half
//! level and clamped to [1, 5] as a rating form would; confidence is uniform
//! in [0.5, 1]. Nothing depends on a random-number crate: SplitMix64 and
//! Box–Muller make every figure reproducible from the seed.

/// The knobs of a simulated tenant.
pub struct Simulation {
    pub subjects: usize,
    pub competencies: usize,
    pub raters: usize,
    /// Raters per subject; each rates every competency of the subject once.
    pub panel: usize,
    /// Standard deviation of the true leniencies.
    pub leniency_sd: f64,
    /// Standard deviation of a rating's noise before rounding.
    pub noise_sd: f64,
    pub seed: u64,
}

pub struct SimulatedRating {
    pub subject: usize,
    pub competency: usize,
    pub rater: usize,
    pub level: f64,
    pub confidence: f64,
}

pub struct World {
    /// true_levels[subject][competency], in [1.5, 4.5].
    pub true_levels: Vec<Vec<f64>>,
    pub true_leniency: Vec<f64>,
    pub ratings: Vec<SimulatedRating>,
}

pub fn subject_id(subject: usize) -> String {
    format!("subject-{subject:06}")
}

pub fn competency_id(competency: usize) -> String {
    format!("competency-{competency:02}")
}

pub fn rater_id(rater: usize) -> String {
    format!("rater-{rater:05}")
}

impl Simulation {
    pub fn run(&self) -> World {
        let mut rng = SplitMix(self.seed);
        let true_leniency: Vec<f64> = (0..self.raters)
            .map(|_| self.leniency_sd * rng.normal())
            .collect();
        let true_levels: Vec<Vec<f64>> = (0..self.subjects)
            .map(|_| {
                (0..self.competencies)
                    .map(|_| 1.5 + 3.0 * rng.unit())
                    .collect()
            })
            .collect();
        let mut ratings = Vec::with_capacity(self.subjects * self.competencies * self.panel);
        let mut panel = Vec::with_capacity(self.panel);
        for (subject, levels) in true_levels.iter().enumerate() {
            panel.clear();
            while panel.len() < self.panel.min(self.raters) {
                let rater = (rng.next() % self.raters as u64) as usize;
                if !panel.contains(&rater) {
                    panel.push(rater);
                }
            }
            for (competency, level) in levels.iter().enumerate() {
                for &rater in &panel {
                    let observed = level + true_leniency[rater] + self.noise_sd * rng.normal();
                    ratings.push(SimulatedRating {
                        subject,
                        competency,
                        rater,
                        level: ((observed * 2.0).round() / 2.0).clamp(1.0, 5.0),
                        confidence: 0.5 + 0.5 * rng.unit(),
                    });
                }
            }
        }
        World {
            true_levels,
            true_leniency,
            ratings,
        }
    }
}

/// SplitMix64.
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

    /// Standard normal, by Box–Muller (one of the pair is dropped: simpler,
    /// and speed does not matter here).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}
