//! Power analysis: how many paired items a retention gate needs.
//!
//! The gate passes when the one-sided lower confidence bound of
//! `R = μ_S / μ_T` is at least the threshold `t`. Because `μ_T > 0`,
//! `R > t ⟺ δ = μ_S - t μ_T > 0`, a statement about the mean of the per-item
//! differences `D = S - t T` (the linearisation behind Fieller's interval for
//! a ratio, Fieller 1954, J. R. Stat. Soc. B 16). On the same items,
//!
//! ```text
//! σ_D² = Var(S) + t² Var(T) - 2 t Cov(S, T)
//! ```
//!
//! and the lower bound clears `t` when the one-sided z test of `δ <= 0` at
//! level `1 - c` rejects. With `D̄ ~ N(δ, σ_D² / n)` its power is
//! `Φ(δ √n / σ_D - z_c)`; setting that to the wanted power `1 - β` gives the
//! standard one-sample sample size for a one-sided (non-inferiority) test
//! (Chow, Shao & Wang, "Sample Size Calculations in Clinical Research",
//! 2nd ed. 2008, §3.1; the same as
//! `statsmodels.stats.power.NormalIndPower().solve_power(effect_size=δ/σ_D,
//! alpha=1-c, power=1-β, ratio=0, alternative="larger")`):
//!
//! ```text
//! n = ⌈ (z_c + z_{1-β})² σ_D² / δ² ⌉
//! ```
//!
//! The variance is the one under the alternative, as the gate's bound is
//! computed from the observed spread (not a null-hypothesis variance). For
//! binary scores at `t = 1`, `σ_D² = ψ - δ²` with `ψ` the discordance rate.

use super::error::check_confidence;
use super::normal::z_quantile;
use super::{PairedMoments, StatsError};

/// Number of paired items needed for the one-sided lower bound of R at
/// `confidence` to clear `threshold` with probability `power` (e.g. 0.8),
/// if the true per-item moments are `moments`. At least 1.
///
/// `None` when the assumed retention `μ_S / μ_T` does not exceed the
/// threshold (no number of items makes such a gate pass; it tends to FAIL)
/// or the count does not fit in a `u64`.
///
/// Errors on a confidence or power outside (0, 1), a threshold that is not
/// finite and positive, non-finite moments, or a teacher mean that is not
/// positive.
pub fn items_needed(
    moments: &PairedMoments,
    threshold: f64,
    confidence: f64,
    power: f64,
) -> Result<Option<u64>, StatsError> {
    check_confidence(confidence)?;
    if !(power > 0.0 && power < 1.0) {
        return Err(StatsError::Parameter {
            field: "power",
            expected: "strictly between 0 and 1",
            value: power,
        });
    }
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(StatsError::Threshold { value: threshold });
    }
    for (field, value) in [
        ("student mean", moments.student_mean),
        ("teacher variance", moments.teacher_var),
        ("student variance", moments.student_var),
        ("covariance", moments.covariance),
    ] {
        if !value.is_finite() {
            return Err(StatsError::Parameter {
                field,
                expected: "a finite number",
                value,
            });
        }
    }
    if !(moments.teacher_mean.is_finite() && moments.teacher_mean > 0.0) {
        return Err(StatsError::Parameter {
            field: "teacher mean",
            expected: "a finite number > 0",
            value: moments.teacher_mean,
        });
    }
    let delta = moments.student_mean - threshold * moments.teacher_mean;
    if delta <= 0.0 {
        return Ok(None);
    }
    let var_d = (moments.student_var + threshold * threshold * moments.teacher_var
        - 2.0 * threshold * moments.covariance)
        .max(0.0);
    let z = (z_quantile(confidence) + z_quantile(power)).max(0.0);
    let n = (z * z * var_d / (delta * delta)).ceil().max(1.0);
    // u64::MAX as f64 rounds up to 2^64, which itself does not fit.
    if n.is_finite() && n < u64::MAX as f64 {
        Ok(Some(n as u64))
    } else {
        Ok(None)
    }
}

/// Items to add to the `current` paired items for the gate to decide, from
/// the observed moments: `items_needed(..) - current`, and at least 1 (when
/// an INCONCLUSIVE sample already has as many items as the formula asks,
/// the formula's normal approximation was optimistic and more items are
/// still needed). `None` as for [`items_needed`].
pub fn additional_items_needed(
    moments: &PairedMoments,
    threshold: f64,
    confidence: f64,
    power: f64,
    current: u64,
) -> Result<Option<u64>, StatsError> {
    Ok(items_needed(moments, threshold, confidence, power)?
        .map(|total| total.saturating_sub(current).max(1)))
}

#[cfg(test)]
mod tests {
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::stats::{BootstrapOptions, paired_bootstrap_retention};

    #[test]
    fn matches_statsmodels_one_sample_power() {
        // (p_t, p_s, discordance, threshold, confidence, power, n) with n from statsmodels 0.15.0
        // `NormalIndPower().solve_power(effect_size=δ/σ_D, alpha=1-c, power=pw, ratio=0,
        // alternative="larger")`, δ and σ_D from the binary moments
        // (tests/reference/stats_reference.py). We return its ceiling.
        let cases = [
            (0.9, 0.88, 0.06, 0.95, 0.95, 0.8, 570.0317787921412),
            (0.8, 0.8, 0.1, 0.95, 0.95, 0.8, 368.6349749610371),
            (0.7, 0.69, 0.2, 0.9, 0.99, 0.9, 659.5248772321711),
            (0.5, 0.55, 0.3, 1.0, 0.95, 0.8, 735.7243106103226_f64),
        ];
        for (pt, ps, d, t, c, pw, n) in cases {
            let m = PairedMoments::from_binary_rates(pt, ps, d).unwrap();
            let got = items_needed(&m, t, c, pw).unwrap();
            assert_eq!(got, Some(n.ceil() as u64), "{pt} {ps} {d} {t} {c} {pw}");
        }
    }

    #[test]
    fn no_sample_size_when_retention_does_not_exceed_threshold() {
        let m = PairedMoments::from_binary_rates(0.8, 0.76, 0.1).unwrap();
        assert_eq!(items_needed(&m, 0.95, 0.95, 0.8).unwrap(), None); // R = 0.95 exactly
        assert_eq!(items_needed(&m, 0.96, 0.95, 0.8).unwrap(), None);
        assert!(items_needed(&m, 0.94, 0.95, 0.8).unwrap().is_some());
    }

    #[test]
    fn additional_items_subtracts_current_and_is_at_least_one() {
        let m = PairedMoments::from_binary_rates(0.9, 0.88, 0.06).unwrap();
        let total = items_needed(&m, 0.95, 0.95, 0.8).unwrap().unwrap();
        assert_eq!(total, 571);
        assert_eq!(
            additional_items_needed(&m, 0.95, 0.95, 0.8, 200).unwrap(),
            Some(371)
        );
        assert_eq!(
            additional_items_needed(&m, 0.95, 0.95, 0.8, 1000).unwrap(),
            Some(1)
        );
    }

    #[test]
    fn invalid_parameters_are_errors() {
        let m = PairedMoments::from_binary_rates(0.9, 0.88, 0.06).unwrap();
        assert!(matches!(
            items_needed(&m, 0.95, 0.95, 1.0),
            Err(StatsError::Parameter { field: "power", .. })
        ));
        assert!(matches!(
            items_needed(&m, 0.0, 0.95, 0.8),
            Err(StatsError::Threshold { .. })
        ));
        assert!(matches!(
            items_needed(&m, 0.95, 1.5, 0.8),
            Err(StatsError::Confidence { .. })
        ));
        assert!(matches!(
            PairedMoments::from_binary_rates(0.9, 0.5, 0.1),
            Err(StatsError::Parameter {
                field: "discordance",
                ..
            })
        ));
    }

    /// Draws `n` paired binary outcomes with cell probabilities
    /// (both, teacher only, student only) and the rest neither.
    fn simulate(
        rng: &mut ChaCha8Rng,
        n: usize,
        p11: f64,
        p10: f64,
        p01: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut t = Vec::with_capacity(n);
        let mut s = Vec::with_capacity(n);
        for _ in 0..n {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let (tv, sv) = if u < p11 {
                (1.0, 1.0)
            } else if u < p11 + p10 {
                (1.0, 0.0)
            } else if u < p11 + p10 + p01 {
                (0.0, 1.0)
            } else {
                (0.0, 0.0)
            };
            t.push(tv);
            s.push(sv);
        }
        (t, s)
    }

    /// Share of simulated samples of `n` items whose bootstrap lower bound clears `t`.
    fn simulated_power(n: usize, sims: u64, t: f64) -> f64 {
        // p_t = 0.9, p_s = 0.88, discordance 0.06: p10 = 0.04, p01 = 0.02, p11 = 0.86.
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let mut passes = 0;
        for sim in 0..sims {
            let (teacher, student) = simulate(&mut rng, n, 0.86, 0.04, 0.02);
            let opts = BootstrapOptions {
                resamples: 1000,
                seed: sim,
                confidence: 0.95,
            };
            let retention = paired_bootstrap_retention(&teacher, &student, &opts).unwrap();
            if retention.measured().is_some_and(|e| e.lower_bound >= t) {
                passes += 1;
            }
        }
        passes as f64 / sims as f64
    }

    #[test]
    fn simulated_power_of_the_bootstrap_gate_matches_the_formula() {
        let m = PairedMoments::from_binary_rates(0.9, 0.88, 0.06).unwrap();
        let n = items_needed(&m, 0.95, 0.95, 0.8).unwrap().unwrap() as usize;
        let sims = 300;
        // Binomial standard error of the estimated power is about 0.023.
        let at_n = simulated_power(n, sims, 0.95);
        assert!((at_n - 0.8).abs() < 0.08, "power at n = {n}: {at_n}");
        // A quarter of the items: Φ((z_.95 + z_.8)/2 - z_.95) = Φ(-0.4016) ≈ 0.344.
        let at_quarter = simulated_power(n / 4, sims, 0.95);
        assert!(
            (at_quarter - 0.344).abs() < 0.09,
            "power at n/4: {at_quarter}"
        );
    }
}
