//! Fisher's exact test of a 2×2 table, two-sided, as SPEC §11 defines it.

/// Two tables whose probabilities differ by at most this relative amount count
/// as equally likely (R's `fisher.test` uses the same 1 + 1e-7), so that
/// rounding never decides whether a table as extreme as the observed one is
/// counted.
const RELATIVE_TOLERANCE: f64 = 1e-7;

/// The two-sided p-value of the table
///
/// ```text
///            READY   not READY
///   group      a         b
///   other      c         d
/// ```
///
/// the sum of the hypergeometric probabilities of every table with the same
/// margins whose probability is at most the observed one's (within
/// [`RELATIVE_TOLERANCE`]). Computed in log space through ln Γ, so that
/// thousands of subjects neither overflow the binomial coefficients nor lose
/// the small tail terms: each log-probability is accurate to about 1e-11.
pub fn fisher_exact_two_sided(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let row = a + b;
    let column = a + c;
    let total = a + b + c + d;
    // ln P(x) up to the constant −ln C(total, row), which cancels below.
    let log_weight = |x: u64| ln_choose(column, x) + ln_choose(total - column, row - x);
    let tables: Vec<f64> = (row.saturating_sub(total - column)..=row.min(column))
        .map(log_weight)
        .collect();
    let threshold = log_weight(a) + RELATIVE_TOLERANCE.ln_1p();
    // Relative to the most likely table, so that no term overflows and only
    // negligible ones underflow. Dividing by the sum over all tables instead of
    // C(total, row) makes a p-value that includes every table exactly 1.
    let most_likely = tables.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut included, mut all) = (0.0, 0.0);
    for &log_w in &tables {
        let relative = (log_w - most_likely).exp();
        all += relative;
        if log_w <= threshold {
            included += relative;
        }
    }
    included / all
}

/// ln C(n, k) for k ≤ n.
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

fn ln_factorial(n: u64) -> f64 {
    libm::lgamma(n as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tea_tasting() {
        // Fisher's lady tasting tea: 3 of 4 right, p = 34/70.
        let p = fisher_exact_two_sided(3, 1, 1, 3);
        assert!((p - 34.0 / 70.0).abs() < 1e-12, "{p}");
    }

    #[test]
    fn equal_rows_and_empty_columns_give_one() {
        assert_eq!(fisher_exact_two_sided(3, 2, 3, 2), 1.0);
        assert_eq!(fisher_exact_two_sided(0, 7, 0, 9), 1.0);
        assert_eq!(fisher_exact_two_sided(0, 0, 4, 5), 1.0);
    }

    #[test]
    fn extreme_table_is_one_over_the_number_of_arrangements() {
        // Two tables are as extreme as (5, 0 | 0, 5): itself and its mirror.
        let p = fisher_exact_two_sided(5, 0, 0, 5);
        assert!((p - 2.0 / 252.0).abs() < 1e-14, "{p}");
    }
}
