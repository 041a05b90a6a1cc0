//! Quantiles of the standard normal and Student t distributions.

use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::function::erf::{erfc, erfc_inv};

use super::StatsError;

/// The `p` quantile of the standard normal distribution, `p` in (0, 1).
///
/// `Φ⁻¹(p) = -√2 · erfc⁻¹(2p)`, the identity statrs' `Normal::inverse_cdf`
/// uses; callers pass only validated `p` in (0, 1).
pub(crate) fn z_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

/// The standard normal distribution function `Φ(x) = erfc(-x / √2) / 2`.
pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The `p` quantile of Student's t distribution with `df` degrees of freedom.
pub(crate) fn t_quantile(p: f64, df: f64) -> Result<f64, StatsError> {
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|e| StatsError::Distribution {
        distribution: "Student t",
        detail: e.to_string(),
    })?;
    Ok(dist.inverse_cdf(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_scipy() {
        // scipy 1.17.1 `scipy.stats.norm.cdf(x)`.
        let cases = [
            (0.0, 0.5),
            (1.6448536269514722, 0.95),
            (-1.959963984540054, 0.025),
            (-3.0, 0.0013498980316300933),
            (0.3, 0.6179114221889526),
        ];
        for (x, p) in cases {
            // statrs' erfc is accurate to about 1e-12 near the 95% point.
            assert!(
                (normal_cdf(x) - p).abs() < 1e-11,
                "x={x}: {}",
                normal_cdf(x)
            );
        }
    }

    #[test]
    fn z_quantiles_match_scipy() {
        // scipy 1.17.1 `scipy.stats.norm.ppf(p)`.
        let cases = [
            (0.5, 0.0),
            (0.8, 0.8416212335729143),
            (0.9, 1.2815515655446004),
            (0.95, 1.6448536269514722),
            (0.975, 1.959963984540054),
            (0.99, 2.3263478740408408),
            (0.995, 2.5758293035489004),
            (0.001, -3.090232306167813),
        ];
        for (p, z) in cases {
            assert!(
                (z_quantile(p) - z).abs() < 1e-12,
                "p={p}: {} vs {z}",
                z_quantile(p)
            );
        }
    }
}
