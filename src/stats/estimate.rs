//! Retention with a selectable interval method, optionally clustered.
//!
//! Four ways to put an interval on `R = mean(student) / mean(teacher)`:
//!
//! - [`IntervalMethod::Percentile`]: paired percentile bootstrap (quantiles
//!   of the resampled ratios; Efron & Tibshirani 1993, ch. 13).
//! - [`IntervalMethod::Bca`]: bias-corrected and accelerated bootstrap
//!   (Efron 1987, JASA 82; Efron & Tibshirani 1993, §14.3): the same
//!   resamples, quantile levels moved by the bias `z₀ = Φ⁻¹(share of
//!   resamples below R̂, ties counted half)` and the jackknife acceleration
//!   `a = Σ (θ̄ - θ₍ᵢ₎)³ / (6 [Σ (θ̄ - θ₍ᵢ₎)²]^{3/2})`: level
//!   `Φ(z₀ + (z₀ + z_α) / (1 - a (z₀ + z_α)))`. scipy's
//!   `stats.bootstrap(method="BCa")` computes the same quantities.
//! - [`IntervalMethod::DeltaLog`]: normal interval on `log R` with the
//!   delta-method standard error (see [`super::delta_method_retention`]).
//! - [`IntervalMethod::Fieller`]: Fieller's interval (Fieller 1954, J. R.
//!   Stat. Soc. B 16, 175-185): every `r` for which the z statistic of
//!   `S̄ - r T̄` is inside the normal quantiles. With the covariance `V` of
//!   the means, the ends solve
//!   `(T̄² - z² V_TT) r² - 2 (S̄ T̄ - z² V_ST) r + (S̄² - z² V_SS) = 0`.
//!   Its one-sided lower bound clears a threshold `t` exactly when the one-sided
//!   z test of `S̄ - t T̄ <= 0` rejects, the test the power calculation
//!   ([`super::items_needed`]) plans for. When `T̄² <= z² V_TT` (the teacher's
//!   own mean is not significantly above 0) the set is unbounded: the
//!   interval is reported as `[0, f64::MAX]`.
//!
//! - [`IntervalMethod::Score`]: the inverted score test of `p_S = θ p_T`
//!   with the variance under the null (module `score`; Nam & Blackwelder
//!   2002, Tang, Tang & Chan 2003) on the pass/fail cells, for fractional
//!   scores on their expected cells (`CellCounts::coupled`); for clustered
//!   items, the hull of that interval and Fieller's clustered one (either
//!   alone can be too narrow: the score interval ignores the clustering,
//!   and Fieller's collapses to a point when the two models agree on every
//!   item; a set holding both covers whenever either does).
//!
//! With [`Clusters`], the bootstrap methods resample clusters and then items
//! within them, and the analytic methods use the cluster-robust covariance
//! of the means (module `cluster`).
//!
//! Lower ends are never below 0: scores are non-negative, so `R >= 0`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::bootstrap::{MIN_RESAMPLES, iid_bootstrap_ratios};
use super::cluster::{Clusters, MeanCovariance, cluster_bootstrap_ratios, mean_covariance};
use super::error::{check_confidence, check_paired_scores};
use super::normal::{normal_cdf, z_quantile};
use super::percentile::linear_quantile;
use super::retention::{Retention, UnmeasurableReason, unmeasurable};
use super::score::CellCounts;
use super::{BootstrapEstimate, BootstrapOptions, Interval, PairedMoments, StatsError};

/// How the retention interval and one-sided lower bound are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalMethod {
    /// Paired percentile bootstrap.
    Percentile,
    /// Bias-corrected and accelerated paired bootstrap.
    Bca,
    /// Delta method on log R.
    DeltaLog,
    /// Fieller's interval for a ratio of paired means.
    Fieller,
    /// Score interval on the paired pass/fail cells (the null variance from
    /// the constrained maximum-likelihood cells); fractional scores on
    /// their expected cells (each pair as two pass/fail outcomes with those
    /// means, coupled to disagree least: conservative, and no collapse when
    /// the models agree everywhere); for clustered items, the hull of that
    /// and Fieller's clustered interval. The default: the calibration simulation (docs/calibration.md)
    /// shows it holds the nominal error rate where the others pass too
    /// often.
    #[default]
    Score,
}

impl IntervalMethod {
    /// Every method, in documentation order.
    pub const ALL: [IntervalMethod; 5] = [
        IntervalMethod::Percentile,
        IntervalMethod::Bca,
        IntervalMethod::DeltaLog,
        IntervalMethod::Fieller,
        IntervalMethod::Score,
    ];

    /// The name used in `gate.toml` and reports.
    pub fn name(self) -> &'static str {
        match self {
            IntervalMethod::Percentile => "percentile",
            IntervalMethod::Bca => "bca",
            IntervalMethod::DeltaLog => "delta_log",
            IntervalMethod::Fieller => "fieller",
            IntervalMethod::Score => "score",
        }
    }

    /// Whether the method draws bootstrap resamples.
    pub fn resamples(self) -> bool {
        matches!(self, IntervalMethod::Percentile | IntervalMethod::Bca)
    }
}

impl fmt::Display for IntervalMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IntervalMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IntervalMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown interval method {s:?} (expected percentile, bca, delta_log, fieller or score)"
                )
            })
    }
}

/// Retention `mean(student) / mean(teacher)` with the interval and
/// one-sided lower bound of `method` at `opts.confidence`.
///
/// `clusters`, when given, must cover every item; with at least two
/// clusters the uncertainty is clustered (see the module docs). The
/// bootstrap methods use `opts.resamples` and `opts.seed`; the analytic ones
/// draw nothing (`resamples` and `undefined_resamples` are 0 and
/// `standard_error` is the delta-method standard error of R).
///
/// Errors as [`super::paired_bootstrap_retention`], and when the clusters
/// do not cover the items. Unmeasurable for no items, a teacher mean of 0,
/// or (bootstrap) no resample with a teacher mean above 0.
pub fn retention_estimate(
    teacher: &[f64],
    student: &[f64],
    clusters: Option<&Clusters>,
    method: IntervalMethod,
    opts: &BootstrapOptions,
) -> Result<Retention<BootstrapEstimate>, StatsError> {
    check_confidence(opts.confidence)?;
    check_paired_scores(teacher, student)?;
    if let Some(c) = clusters {
        c.check_items(teacher.len())?;
    }
    if method.resamples() && opts.resamples < MIN_RESAMPLES {
        return Err(StatsError::TooFewResamples {
            min: MIN_RESAMPLES,
            got: opts.resamples,
        });
    }
    if u32::try_from(teacher.len()).is_err() {
        return Err(StatsError::Parameter {
            field: "number of paired items",
            expected: "at most 4294967295",
            value: teacher.len() as f64,
        });
    }
    if teacher.is_empty() {
        return Ok(Retention::Unmeasurable(unmeasurable(
            UnmeasurableReason::NoItems,
            teacher,
            student,
        )));
    }
    let teacher_sum: f64 = teacher.iter().sum();
    if teacher_sum == 0.0 {
        return Ok(Retention::Unmeasurable(unmeasurable(
            UnmeasurableReason::TeacherScoredZero,
            teacher,
            student,
        )));
    }
    let student_sum: f64 = student.iter().sum();
    let nf = teacher.len() as f64;
    let point = student_sum / teacher_sum;
    let clusters = clusters.filter(|c| c.len() > 1);
    let cells = CellCounts::of(teacher, student);
    let c = opts.confidence;
    let bounds = if method.resamples() {
        let ratios = match clusters {
            Some(cl) => cluster_bootstrap_ratios(teacher, student, cl, opts.resamples, opts.seed),
            None => iid_bootstrap_ratios(teacher, student, opts),
        };
        if ratios.is_empty() {
            return Ok(Retention::Unmeasurable(unmeasurable(
                UnmeasurableReason::AllResamplesUndefined,
                teacher,
                student,
            )));
        }
        let level: Box<dyn Fn(f64) -> f64> = if method == IntervalMethod::Bca {
            let z0 = bias_correction(&ratios, point);
            let a = acceleration(teacher, student, clusters);
            Box::new(move |alpha| bca_level(z0, a, alpha))
        } else {
            Box::new(|alpha| alpha)
        };
        let q = |alpha: f64| linear_quantile(&ratios, level(alpha));
        Bounds {
            interval: Interval {
                lower: q((1.0 - c) / 2.0),
                upper: q((1.0 + c) / 2.0),
            },
            lower_bound: q(1.0 - c),
            upper_bound: q(c),
            standard_error: sample_sd(&ratios),
            resamples: opts.resamples,
            undefined_resamples: opts.resamples - ratios.len() as u32,
            expected_discordance: None,
        }
    } else {
        let cov = mean_covariance(teacher, student, clusters);
        let means = (teacher_sum / nf, student_sum / nf);
        let (z2, z1) = (z_quantile((1.0 + c) / 2.0), z_quantile(c));
        // The score interval on the pass/fail cells (expected cells for
        // fractional scores); for clustered items, the hull of that and
        // Fieller's clustered interval.
        let score_cells = (method == IntervalMethod::Score)
            .then(|| cells.or_else(|| CellCounts::coupled(teacher, student)))
            .flatten();
        let (two, one) = match (method, score_cells) {
            (IntervalMethod::DeltaLog, _) => {
                (delta_log(means, &cov, z2), delta_log(means, &cov, z1))
            }
            (IntervalMethod::Score, Some(cells)) if clusters.is_none() => cells.interval(z2, z1),
            (IntervalMethod::Score, Some(cells)) => {
                let (score_two, score_one) = cells.interval(z2, z1);
                (
                    score_two.hull(&fieller(means, &cov, z2)),
                    score_one.hull(&fieller(means, &cov, z1)),
                )
            }
            _ => (fieller(means, &cov, z2), fieller(means, &cov, z1)),
        };
        let expected_discordance = score_cells
            .filter(|_| cells.is_none())
            .map(|c| (c.teacher_only + c.student_only) / nf);
        Bounds {
            interval: two,
            lower_bound: one.lower,
            upper_bound: one.upper,
            standard_error: cov.linearised(point).sqrt() / means.0,
            resamples: 0,
            undefined_resamples: 0,
            expected_discordance,
        }
    };
    Ok(Retention::Measured(BootstrapEstimate {
        n: teacher.len() as u64,
        teacher_mean: teacher_sum / nf,
        student_mean: student_sum / nf,
        teacher_correct: teacher_sum,
        point,
        confidence: c,
        interval: bounds.interval,
        lower_bound: bounds.lower_bound,
        upper_bound: bounds.upper_bound,
        standard_error: bounds.standard_error,
        resamples: bounds.resamples,
        undefined_resamples: bounds.undefined_resamples,
        seed: opts.seed,
        moments: PairedMoments::from_checked(teacher, student),
        method,
        clusters: clusters.map(|c| c.len() as u64),
        cells: cells.map(|c| c.whole()),
        expected_discordance: bounds.expected_discordance,
    }))
}

/// What differs between the methods.
struct Bounds {
    interval: Interval,
    lower_bound: f64,
    upper_bound: f64,
    standard_error: f64,
    resamples: u32,
    undefined_resamples: u32,
    /// See [`BootstrapEstimate::expected_discordance`].
    expected_discordance: Option<f64>,
}

/// Standard deviation (`m - 1` denominator) of the resampled ratios.
fn sample_sd(ratios: &[f64]) -> f64 {
    let m = ratios.len() as f64;
    if ratios.len() < 2 {
        return 0.0;
    }
    let mean = ratios.iter().sum::<f64>() / m;
    (ratios.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (m - 1.0)).sqrt()
}

/// `z₀ = Φ⁻¹(p)`, `p` the share of sorted `ratios` below `point` with ties
/// counted half, kept within half a resample of 0 and 1.
fn bias_correction(ratios: &[f64], point: f64) -> f64 {
    let m = ratios.len() as f64;
    let below = ratios.partition_point(|&r| r < point) as f64;
    let at_or_below = ratios.partition_point(|&r| r <= point) as f64;
    let p = ((below + at_or_below) / 2.0 / m).clamp(0.5 / m, 1.0 - 0.5 / m);
    z_quantile(p)
}

/// Jackknife acceleration, leaving out one item (or one cluster) at a time.
fn acceleration(teacher: &[f64], student: &[f64], clusters: Option<&Clusters>) -> f64 {
    let units: Vec<(f64, f64)> = match clusters {
        Some(c) => c
            .members()
            .iter()
            .map(|m| {
                m.iter().fold((0.0, 0.0), |(t, s), &i| {
                    (
                        t + teacher.get(i).copied().unwrap_or(0.0),
                        s + student.get(i).copied().unwrap_or(0.0),
                    )
                })
            })
            .collect(),
        None => teacher
            .iter()
            .copied()
            .zip(student.iter().copied())
            .collect(),
    };
    let (t_sum, s_sum) = units
        .iter()
        .fold((0.0, 0.0), |(t, s), (ti, si)| (t + ti, s + si));
    let leave_out: Vec<f64> = units
        .iter()
        .filter(|(ti, _)| t_sum - ti > 0.0)
        .map(|(ti, si)| (s_sum - si) / (t_sum - ti))
        .collect();
    if leave_out.len() < 2 {
        return 0.0;
    }
    let mean = leave_out.iter().sum::<f64>() / leave_out.len() as f64;
    let (mut num, mut den) = (0.0, 0.0);
    for th in &leave_out {
        let d = mean - th;
        num += d * d * d;
        den += d * d;
    }
    if den > 0.0 {
        num / (6.0 * den.powf(1.5))
    } else {
        0.0
    }
}

/// The BCa quantile level for the nominal level `alpha`.
fn bca_level(z0: f64, a: f64, alpha: f64) -> f64 {
    let w = z0 + z_quantile(alpha);
    let denom = 1.0 - a * w;
    if denom <= 0.0 {
        return if w > 0.0 { 1.0 } else { 0.0 };
    }
    normal_cdf(z0 + w / denom).clamp(0.0, 1.0)
}

/// Normal interval on log R with quantile `z`: `exp(log R̂ ± z se)`. A
/// student mean of 0 has no logarithm: the interval is `[0, 0]`.
pub(crate) fn delta_log((tm, sm): (f64, f64), cov: &MeanCovariance, z: f64) -> Interval {
    if sm <= 0.0 {
        return Interval {
            lower: 0.0,
            upper: 0.0,
        };
    }
    let var =
        (cov.student / (sm * sm) + cov.teacher / (tm * tm) - 2.0 * cov.cross / (sm * tm)).max(0.0);
    let (log_r, se) = (sm.ln() - tm.ln(), var.sqrt());
    Interval {
        lower: (log_r - z * se).exp(),
        upper: (log_r + z * se).exp(),
    }
}

/// Fieller's interval with quantile `z` (`[0, f64::MAX]` when unbounded).
pub(crate) fn fieller((tm, sm): (f64, f64), cov: &MeanCovariance, z: f64) -> Interval {
    let z2 = z * z;
    let a = tm * tm - z2 * cov.teacher;
    let b = sm * tm - z2 * cov.cross;
    let c = sm * sm - z2 * cov.student;
    let disc = b * b - a * c;
    if !(a > 0.0 && disc >= 0.0) {
        return Interval {
            lower: 0.0,
            upper: f64::MAX,
        };
    }
    let root = disc.sqrt();
    Interval {
        lower: ((b - root) / a).max(0.0),
        upper: ((b + root) / a).max(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_support::{measured, table};

    fn estimate(t: &[f64], s: &[f64], m: IntervalMethod, c: f64) -> BootstrapEstimate {
        let opts = BootstrapOptions {
            confidence: c,
            ..BootstrapOptions::default()
        };
        measured(retention_estimate(t, s, None, m, &opts).unwrap())
    }

    #[test]
    fn fieller_matches_an_independent_test_inversion() {
        // tests/reference/calibration_reference.py: the ends found by scipy
        // `optimize.brentq` on z(r) = (s̄ - r t̄) / sqrt(Var(s - r t) / n) = ±z
        // (sample variances, ddof=1), not by the quadratic formula.
        let cases = [
            ((300, 40, 25, 135), 0.95, FIELLER_A),
            ((40, 9, 2, 9), 0.95, FIELLER_B),
            ((300, 40, 25, 135), 0.9, FIELLER_C),
        ];
        for ((a, b, c, d), conf, (lo, hi, lb)) in cases {
            let (t, s) = table(a, b, c, d);
            let e = estimate(&t, &s, IntervalMethod::Fieller, conf);
            assert!((e.interval.lower - lo).abs() < 1e-9, "{e:?}");
            assert!((e.interval.upper - hi).abs() < 1e-9, "{e:?}");
            assert!((e.lower_bound - lb).abs() < 1e-9, "{e:?}");
            assert_eq!((e.resamples, e.method), (0, IntervalMethod::Fieller));
        }
    }
    const FIELLER_A: (f64, f64, f64) = (0.9111431029775265, 1.002292516536498, 0.9182450827124526);
    const FIELLER_B: (f64, f64, f64) = (0.735628176188806, 0.9852623115760728, 0.7549486919711828);
    const FIELLER_C: (f64, f64, f64) = (0.9182450827124526, 0.9946951854961796, 0.9264729349647177);

    #[test]
    fn one_sided_upper_bound_is_the_same_method_at_the_same_confidence() {
        // A one-sided bound at c is the end of the two-sided interval at
        // 2c - 1, by every method (same quantile, same resamples).
        let (t, s) = table(40, 9, 2, 9);
        for m in IntervalMethod::ALL {
            let one = estimate(&t, &s, m, 0.95);
            let two = estimate(&t, &s, m, 0.9);
            assert!(
                (one.upper_bound - two.interval.upper).abs() < 1e-12,
                "{m}: {one:?} {two:?}"
            );
            assert!((one.lower_bound - two.interval.lower).abs() < 1e-12, "{m}");
            assert!(one.lower_bound <= one.point && one.point <= one.upper_bound);
        }
        // Independent values: the two-sided ends at 0.90 of
        // tests/reference/calibration_reference.py (scipy brentq inversions).
        let (t, s) = table(15, 0, 0, 35);
        let e = estimate(&t, &s, IntervalMethod::Score, 0.95);
        assert!((e.upper_bound - 1.1803695630897049).abs() < 1e-6, "{e:?}");
        let (t, s) = table(300, 40, 25, 135);
        let e = estimate(&t, &s, IntervalMethod::Fieller, 0.95);
        assert!((e.upper_bound - FIELLER_C.1).abs() < 1e-9, "{e:?}");
        // The counts are kept for pass/fail scores only.
        assert_eq!(e.cells.map(|c| c.n()), Some(500));
        let frac = estimate(&[1.0, 0.5], &[1.0, 0.5], IntervalMethod::Fieller, 0.95);
        assert_eq!(frac.cells, None);
    }

    /// Fractional scores the student reproduces item for item: Fieller's
    /// sample variance is 0 and its bound collapses to 1; the score interval
    /// on the expected cells (both = Σ t, no discordance) has the closed
    /// form θ = a / (a + z²) (the constrained MLE puts `(1 - θ) a / n` on
    /// the empty teacher-only cell, and `Z(θ)² = (1 - θ) a / θ`), as binary
    /// scores with `a` items both right do.
    #[test]
    fn identical_fractional_scores_do_not_collapse_the_score_bound() {
        let t: Vec<f64> = (0..60).map(|i| [0.0, 0.2, 0.5, 1.0][i % 4]).collect();
        let a: f64 = t.iter().sum();
        let z = crate::stats::normal::z_quantile(0.95);
        let fieller = estimate(&t, &t, IntervalMethod::Fieller, 0.95);
        assert_eq!(fieller.lower_bound, 1.0);
        let score = estimate(&t, &t, IntervalMethod::Score, 0.95);
        assert_eq!(score.point, 1.0);
        let want = a / (a + z * z);
        assert!(
            (score.lower_bound - want).abs() < 1e-9,
            "{score:?} vs {want}"
        );
        // The same means as pass/fail items: 25.5 both right is not a count,
        // but 26 both right and 34 neither gives the same closed form.
        let (tb, sb) = table(26, 0, 0, 34);
        let binary = estimate(&tb, &sb, IntervalMethod::Score, 0.95);
        assert!((binary.lower_bound - 26.0 / (26.0 + z * z)).abs() < 1e-9);
    }

    /// The score bound on fractional scores against an independent
    /// inversion: tests/reference/calibration_reference.py ("fractional
    /// scores": the expected cells computed there, the constrained MLE by
    /// Nelder-Mead, the crossing by scipy's brentq).
    #[test]
    fn fractional_score_bound_matches_the_reference() {
        let t: Vec<f64> = (0..80).map(|i| ((i * 7) % 5) as f64 / 4.0).collect();
        let s: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, &t)| match i {
                i if i % 9 == 0 => (t - 0.5).max(0.0),
                i if i % 13 == 0 => (t + 0.25).min(1.0),
                _ => t,
            })
            .collect();
        let e = estimate(&t, &s, IntervalMethod::Score, 0.95);
        assert!((e.point - 0.95625).abs() < 1e-12, "{e:?}");
        assert!((e.lower_bound - 0.8523213911491551).abs() < 1e-6, "{e:?}");
    }

    /// Expected cells: binary scores give their counts; a fractional pair
    /// splits its mass over the cells with the means kept.
    #[test]
    fn coupled_cells_keep_the_means() {
        let (t, s) = table(30, 4, 3, 13);
        assert_eq!(CellCounts::coupled(&t, &s), CellCounts::of(&t, &s));
        let c = CellCounts::coupled(&[0.75, 0.25, 1.0], &[0.5, 0.5, 0.0]).unwrap();
        assert_eq!(
            (c.both, c.teacher_only, c.student_only, c.neither),
            (0.75, 1.25, 0.25, 0.75)
        );
        assert_eq!(c.both + c.teacher_only, 2.0);
        assert_eq!(c.both + c.student_only, 1.0);
        assert_eq!(CellCounts::coupled(&[1.5], &[1.0]), None);
    }

    #[test]
    fn delta_log_agrees_with_the_cross_check() {
        let (t, s) = table(300, 40, 25, 135);
        let e = estimate(&t, &s, IntervalMethod::DeltaLog, 0.95);
        // numpy reference of src/stats/delta.rs (tests/reference/stats_reference.py).
        assert!(
            (e.interval.lower - 0.9114631151184919).abs() < 1e-12,
            "{e:?}"
        );
        assert!(
            (e.interval.upper - 1.0024663176255637).abs() < 1e-12,
            "{e:?}"
        );
        assert!((e.lower_bound - 0.9184627328898735).abs() < 1e-12, "{e:?}");
        // se(R) = R · se(log R) = 0.9558823529411764 · 0.024277852507220955.
        assert!((e.standard_error - 0.9558823529411764 * 0.024277852507220955).abs() < 1e-12);
    }

    #[test]
    fn bca_matches_scipy_bootstrap() {
        // scipy 1.17.1 `stats.bootstrap((t, s), lambda t, s, axis: s.mean(axis) / t.mean(axis),
        // paired=True, vectorized=True, method="BCa", n_resamples=200_000,
        // confidence_level=c, random_state=1)` (tests/reference/calibration_reference.py);
        // the one-sided bound at 0.95 is the two-sided lower end at 0.90.
        // Monte Carlo error of our 10,000 resamples: about 0.001 at these tails.
        let (t, s) = table(40, 9, 2, 9);
        let e = estimate(&t, &s, IntervalMethod::Bca, 0.95);
        let tol = 0.006;
        assert!((e.interval.lower - BCA_95.0).abs() < tol, "{e:?}");
        assert!((e.interval.upper - BCA_95.1).abs() < tol, "{e:?}");
        assert!((e.lower_bound - BCA_90_LOWER).abs() < tol, "{e:?}");
        // Same resamples as the percentile interval, other quantiles.
        let p = estimate(&t, &s, IntervalMethod::Percentile, 0.95);
        assert_eq!(p.standard_error, e.standard_error);
        assert_ne!(p.lower_bound, e.lower_bound);
    }
    const BCA_95: (f64, f64) = (0.7234042553191489, 0.9777777777777777);
    const BCA_90_LOWER: f64 = 0.7450980392156863;

    #[test]
    fn percentile_is_the_existing_bootstrap() {
        let (t, s) = table(300, 40, 25, 135);
        let e = estimate(&t, &s, IntervalMethod::Percentile, 0.95);
        let old = measured(
            super::super::paired_bootstrap_retention(&t, &s, &BootstrapOptions::default()).unwrap(),
        );
        assert_eq!(e, old);
    }

    #[test]
    fn identical_models_give_one_for_every_method_but_score() {
        let (t, _) = table(70, 0, 0, 30);
        for m in IntervalMethod::ALL {
            let e = estimate(&t, &t, m, 0.95);
            assert_eq!(e.point, 1.0, "{m}");
            if m == IntervalMethod::Score {
                // No discordant pair seen is not proof of none: the null puts
                // mass on them, so the score interval keeps a width.
                assert!(e.lower_bound > 0.9 && e.lower_bound < 1.0, "{e:?}");
                assert!(e.interval.lower < e.lower_bound && e.interval.upper > 1.0);
            } else {
                assert!((e.lower_bound - 1.0).abs() < 1e-12, "{m}: {e:?}");
                assert!((e.interval.upper - 1.0).abs() < 1e-12, "{m}: {e:?}");
            }
        }
    }

    /// Clustered items under the score interval: the hull of the score
    /// interval and Fieller's clustered one. A student copying the teacher
    /// (no discordant item) keeps the score bound a / (a + z^2), where
    /// Fieller's alone collapsed to 1; strongly clustered discordance keeps
    /// Fieller's wider clustered bound.
    #[test]
    fn clustered_score_interval_holds_both_the_score_and_fieller_intervals() {
        let opts = BootstrapOptions::default();
        let z = crate::stats::normal::z_quantile(0.95);
        let (t, s) = table(26, 0, 0, 34);
        let labels: Vec<usize> = (0..t.len()).map(|i| i % 6).collect();
        let cl = Clusters::from_labels(&labels);
        let fieller = measured(
            retention_estimate(&t, &s, Some(&cl), IntervalMethod::Fieller, &opts).unwrap(),
        );
        assert_eq!(fieller.lower_bound, 1.0, "{fieller:?}");
        let e =
            measured(retention_estimate(&t, &s, Some(&cl), IntervalMethod::Score, &opts).unwrap());
        assert!(
            (e.lower_bound - 26.0 / (26.0 + z * z)).abs() < 1e-9,
            "{e:?}"
        );
        assert_eq!(e.clusters, Some(6));

        let (t, s) = table(60, 12, 4, 24);
        let labels: Vec<usize> = (0..t.len()).map(|i| i / 10).collect();
        let cl = Clusters::from_labels(&labels);
        let of = |m, c| measured(retention_estimate(&t, &s, c, m, &opts).unwrap());
        let (score, fieller) = (
            of(IntervalMethod::Score, None),
            of(IntervalMethod::Fieller, Some(&cl)),
        );
        let hull = of(IntervalMethod::Score, Some(&cl));
        assert!(
            fieller.lower_bound < score.lower_bound,
            "{fieller:?} {score:?}"
        );
        assert_eq!(hull.lower_bound, fieller.lower_bound);
        assert_eq!(hull.upper_bound, fieller.upper_bound.max(score.upper_bound));
        assert_eq!(
            hull.interval,
            Interval {
                lower: fieller.interval.lower.min(score.interval.lower),
                upper: fieller.interval.upper.max(score.interval.upper),
            }
        );
    }

    #[test]
    fn clustered_analytic_interval_uses_the_cluster_robust_variance() {
        let (t, s) = table(60, 12, 4, 24);
        // 10 clusters of 10 consecutive items: the cells are sorted, so
        // clusters are homogeneous and the design effect is large.
        let labels: Vec<usize> = (0..t.len()).map(|i| i / 10).collect();
        let cl = Clusters::from_labels(&labels);
        let opts = BootstrapOptions::default();
        let plain =
            measured(retention_estimate(&t, &s, None, IntervalMethod::Fieller, &opts).unwrap());
        let clustered = measured(
            retention_estimate(&t, &s, Some(&cl), IntervalMethod::Fieller, &opts).unwrap(),
        );
        assert_eq!(clustered.clusters, Some(10));
        assert_eq!(plain.clusters, None);
        assert!(
            clustered.lower_bound < plain.lower_bound,
            "{clustered:?} {plain:?}"
        );
        let deff = super::super::design_effect(&t, &s, &cl).unwrap().unwrap();
        let se_ratio = clustered.standard_error / plain.standard_error;
        assert!(
            (se_ratio * se_ratio - deff).abs() < 1e-9,
            "{se_ratio} {deff}"
        );
        // A bootstrap with clusters draws clusters.
        let b = measured(
            retention_estimate(&t, &s, Some(&cl), IntervalMethod::Percentile, &opts).unwrap(),
        );
        let bp =
            measured(retention_estimate(&t, &s, None, IntervalMethod::Percentile, &opts).unwrap());
        assert!(b.standard_error > 1.5 * bp.standard_error, "{b:?} {bp:?}");
    }

    #[test]
    fn method_names_round_trip() {
        for m in IntervalMethod::ALL {
            assert_eq!(m.name().parse::<IntervalMethod>(), Ok(m));
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert!("wald".parse::<IntervalMethod>().is_err());
        assert_eq!(IntervalMethod::default(), IntervalMethod::Score);
    }

    #[test]
    fn errors_and_unmeasurable() {
        let opts = BootstrapOptions::default();
        let cl = Clusters::from_labels(&[0, 1]);
        assert!(matches!(
            retention_estimate(&[1.0], &[1.0], Some(&cl), IntervalMethod::Fieller, &opts),
            Err(StatsError::ClusterLength { .. })
        ));
        let few = BootstrapOptions {
            resamples: 10,
            ..opts
        };
        assert!(retention_estimate(&[1.0], &[1.0], None, IntervalMethod::Fieller, &few).is_ok());
        assert!(matches!(
            retention_estimate(&[1.0], &[1.0], None, IntervalMethod::Bca, &few),
            Err(StatsError::TooFewResamples { .. })
        ));
        let r = retention_estimate(
            &[0.0, 0.0],
            &[1.0, 0.0],
            None,
            IntervalMethod::DeltaLog,
            &opts,
        )
        .unwrap();
        assert!(
            matches!(r, Retention::Unmeasurable(u) if u.reason == UnmeasurableReason::TeacherScoredZero)
        );
        // A student that scored 0: R = 0, and every method's bound is 0.
        let (t, s) = (vec![1.0; 20], vec![0.0; 20]);
        for m in IntervalMethod::ALL {
            let e = estimate(&t, &s, m, 0.95);
            assert_eq!((e.point, e.lower_bound), (0.0, 0.0), "{m}");
        }
    }
}
