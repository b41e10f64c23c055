//! Numerical building blocks whose accuracy the scores depend on.

use std::f64::consts::FRAC_1_SQRT_2;

/// Φ, the standard normal CDF.
///
/// Written through `erfc` rather than `1 + erf` so that the lower tail keeps
/// its relative accuracy instead of cancelling to 0 (Φ(−8) ≈ 6.2e-16).
pub(crate) fn standard_normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z * FRAC_1_SQRT_2)
}

/// Σ of `terms` with Neumaier's compensation, so that sums of tens of thousands
/// of weights of very different sizes (fresh and decades-old evidence) stay
/// accurate to a few ulps instead of drifting with the number of terms.
pub(crate) fn compensated_sum(terms: impl IntoIterator<Item = f64>) -> f64 {
    let mut sum = CompensatedSum::default();
    for term in terms {
        sum.add(term);
    }
    sum.total()
}

/// [`compensated_sum`] a term at a time, so that one pass over the terms
/// of several sums can feed them all.
#[derive(Default)]
pub(crate) struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    pub fn add(&mut self, term: f64) {
        let next = self.sum + term;
        self.compensation += if self.sum.abs() >= term.abs() {
            (self.sum - next) + term
        } else {
            (term - next) + self.sum
        };
        self.sum = next;
    }

    pub fn total(&self) -> f64 {
        self.sum + self.compensation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} differs from {expected} by more than {tolerance}"
        );
    }

    #[test]
    fn normal_cdf_matches_reference_values() {
        // Reference values from R's pnorm / mpmath at 30 digits.
        assert_eq!(standard_normal_cdf(0.0), 0.5);
        assert_close(standard_normal_cdf(1.0), 0.841_344_746_068_542_9, 1e-15);
        assert_close(standard_normal_cdf(-1.0), 0.158_655_253_931_457_05, 1e-15);
        assert_close(standard_normal_cdf(1.959_963_984_540_054), 0.975, 1e-15);
        assert_close(standard_normal_cdf(-2.5), 0.006_209_665_325_776_132, 1e-15);
        let tail = standard_normal_cdf(-8.0);
        assert_close(tail / 6.220_960_574_271_785e-16, 1.0, 1e-12);
        assert_eq!(standard_normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(standard_normal_cdf(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn compensated_sum_recovers_what_naive_summation_loses() {
        let terms = [1.0, 1e100, 1.0, -1e100];
        assert_eq!(compensated_sum(terms), 2.0);
        let many = std::iter::repeat_n(0.1, 100_000);
        assert_close(compensated_sum(many), 10_000.0, 1e-10);
    }
}
