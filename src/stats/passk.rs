//! The unbiased pass@k estimator of Chen et al. (2021), "Evaluating Large
//! Language Models Trained on Code", arXiv:2107.03374, §2.1.

use super::StatsError;

/// Unbiased estimate of pass@k from `n` samples of which `c` are correct:
/// `1 - C(n - c, k) / C(n, k)`.
///
/// Computed as `1 - ∏_{i = n-c+1}^{n} (1 - k / i)`, the numerically stable
/// product form given in the paper (no large binomial coefficients). It is 1
/// when `n - c < k` (every draw of k samples contains a correct one).
///
/// Errors unless `c <= n` and `1 <= k <= n`.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> Result<f64, StatsError> {
    if c > n || k == 0 || k > n {
        return Err(StatsError::PassAtK { n, c, k });
    }
    if n - c < k {
        return Ok(1.0);
    }
    let kf = k as f64;
    let all_wrong: f64 = (n - c + 1..=n).map(|i| 1.0 - kf / i as f64).product();
    Ok(1.0 - all_wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_exact_rational_reference() {
        // (n, c, k, pass@k) from `1 - Fraction(comb(n - c, k), comb(n, k))` in Python
        // (exact rational arithmetic, tests/reference/stats_reference.py).
        let cases = [
            (200, 13, 1, 0.065),
            (200, 13, 10, 0.49755111473060615),
            (200, 13, 100, 0.9999194971988055),
            (10, 3, 5, 0.9166666666666666),
            (5, 0, 1, 0.0),
            (20, 19, 2, 1.0),
            (1000, 1, 500, 0.5),
        ];
        for (n, c, k, want) in cases {
            let got = pass_at_k(n, c, k).unwrap();
            assert!(
                (got - want).abs() < 1e-12,
                "pass@{k} n={n} c={c}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn pass_at_1_is_the_fraction_correct() {
        // Textbook identity: with k = 1 the estimator is c / n.
        for (n, c) in [(7, 3), (100, 42), (1, 1), (1, 0)] {
            assert!((pass_at_k(n, c, 1).unwrap() - c as f64 / n as f64).abs() < 1e-15);
        }
    }

    #[test]
    fn invalid_arguments_are_errors() {
        for (n, c, k) in [(5, 6, 1), (5, 2, 0), (5, 2, 6)] {
            assert_eq!(pass_at_k(n, c, k), Err(StatsError::PassAtK { n, c, k }));
        }
    }
}
