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

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, Discrete, DiscreteCDF};

use super::cluster::MeanCovariance;
use super::error::check_confidence;
use super::estimate::{delta_log, fieller};
use super::normal::z_quantile;
use super::score::CellCounts;
use super::{Interval, IntervalMethod, PairedCells, PairedMoments, StatsError};

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
    check_power(power)?;
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

/// The gate's retention rule, as the exact items-needed calculation
/// applies it to paired binary outcomes (see [`verdict_odds`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetentionRule {
    /// `min_retention`.
    pub threshold: f64,
    /// Confidence of the one-sided bounds.
    pub confidence: f64,
    /// Fewest teacher-correct items for retention to be measurable.
    pub min_teacher_correct: u64,
    /// The interval method the gate uses. The bootstrap methods are planned
    /// with Fieller's interval, their large-sample equivalent (a bootstrap
    /// cannot be evaluated on every possible table).
    pub method: IntervalMethod,
}

/// Probabilities of the four outcomes of one paired binary item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CellShares {
    /// Both right.
    pub both: f64,
    /// Teacher right, student wrong.
    pub teacher_only: f64,
    /// Student right, teacher wrong.
    pub student_only: f64,
    /// Both wrong.
    pub neither: f64,
}

impl CellShares {
    /// The table of `n` items nearest these shares: each cell rounded, the
    /// rest in `neither`.
    pub fn counts(&self, n: u64) -> PairedCells {
        let count = |share: f64| ((share * n as f64).round() as u64).min(n);
        let both = count(self.both);
        let teacher_only = count(self.teacher_only).min(n - both);
        let student_only = count(self.student_only).min(n - both - teacher_only);
        PairedCells {
            both,
            teacher_only,
            student_only,
            neither: n - both - teacher_only - student_only,
        }
    }

    /// The shares with teacher accuracy `p_t`, student accuracy `p_s` and
    /// discordance `d` (share of items exactly one model gets right).
    /// Errors as [`PairedMoments::from_binary_rates`].
    pub fn from_rates(
        teacher_accuracy: f64,
        student_accuracy: f64,
        discordance: f64,
    ) -> Result<Self, StatsError> {
        // Checks the ranges and the consistency of d.
        PairedMoments::from_binary_rates(teacher_accuracy, student_accuracy, discordance)?;
        let teacher_only = ((discordance + teacher_accuracy - student_accuracy) / 2.0).max(0.0);
        let student_only = ((discordance - teacher_accuracy + student_accuracy) / 2.0).max(0.0);
        let both = (teacher_accuracy - teacher_only).max(0.0);
        Ok(Self {
            both,
            teacher_only,
            student_only,
            neither: (1.0 - both - teacher_only - student_only).max(0.0),
        })
    }

    /// The observed shares of `cells`; `None` when there are no items.
    pub fn observed(cells: &PairedCells) -> Option<Self> {
        let n = cells.n();
        (n > 0).then(|| {
            let n = n as f64;
            Self {
                both: cells.both as f64 / n,
                teacher_only: cells.teacher_only as f64 / n,
                student_only: cells.student_only as f64 / n,
                neither: cells.neither as f64 / n,
            }
        })
    }
}

/// What the added items should achieve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// A PASS (planning a suite for a student expected to be good enough).
    Pass,
    /// A PASS or a FAIL: anything but INCONCLUSIVE (an inconclusive run).
    Decide,
}

/// Probabilities of the retention verdicts after the added items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VerdictOdds {
    /// Probability of PASS.
    pub pass: f64,
    /// Probability of FAIL.
    pub fail: f64,
}

impl VerdictOdds {
    /// The probability of reaching `goal`.
    pub fn of(&self, goal: Goal) -> f64 {
        match goal {
            Goal::Pass => self.pass,
            Goal::Decide => self.pass + self.fail,
        }
    }
}

/// Items to add for the gate to reach a goal with a wanted probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ItemsToAdd {
    /// Paired items to add to the current ones (at least 1).
    pub more: u64,
    /// The current items plus `more`.
    pub total: u64,
    /// The probability of reaching the goal with `more` added, computed
    /// exactly; `None` when the count came from the large-sample formula.
    pub probability: Option<f64>,
}

/// Pairs of (teacher only, student only) counts evaluated per call of
/// [`verdict_odds`] before it gives up (the large-sample formula is then
/// accurate; see [`items_to_add`]).
const MAX_PAIRS: usize = 40_000;

/// Most items [`items_to_add`] searches up to.
const MAX_ITEMS: u64 = 100_000_000;

/// Width, in standard deviations, of the binomial ranges summed over; the
/// mass outside is below 1e-9.
const TAIL_SDS: f64 = 8.0;

/// The exact probabilities of the gate's retention verdicts when `more`
/// paired binary items, each with outcome probabilities `shares`, are added
/// to the `current` ones, under `rule`.
///
/// The verdict of a table is the gate's (`gate::decide`; a test in
/// `gate.rs` checks the two agree on every table of small suites): not
/// measurable (no item, or the teacher got none right) is INCONCLUSIVE; a
/// one-sided upper bound below the threshold is FAIL; fewer than
/// `min_teacher_correct` teacher-correct items is INCONCLUSIVE; a point
/// estimate below the threshold is FAIL; a lower bound at or above it is
/// PASS; else INCONCLUSIVE. The bounds are the rule's interval at its
/// confidence (the score interval: the score statistic at the threshold
/// against `±z_c`, which is the same comparison since the statistic
/// decreases in `θ`).
///
/// The added counts are multinomial; the sum runs over the teacher-only and
/// student-only counts within [`TAIL_SDS`] standard deviations, and, for
/// each pair, finds where the both-right count crosses each rule's limit by
/// bisection (each limit is monotone in that count: the sum equals the
/// gate's verdicts on every table of small suites, a unit test) and adds
/// binomial probabilities. `None` when more than
/// [`MAX_PAIRS`] pairs would be needed.
pub fn verdict_odds(
    rule: &RetentionRule,
    current: &PairedCells,
    shares: &CellShares,
    more: u64,
) -> Result<Option<VerdictOdds>, StatsError> {
    check_rule(rule)?;
    let total = shares.both + shares.teacher_only + shares.student_only + shares.neither;
    for (field, value) in [
        ("share of both right", shares.both),
        ("share of teacher only", shares.teacher_only),
        ("share of student only", shares.student_only),
        ("share of neither", shares.neither),
    ] {
        if !(0.0..=1.0).contains(&value) {
            return Err(StatsError::Parameter {
                field,
                expected: "a number in [0, 1]",
                value,
            });
        }
    }
    if (total - 1.0).abs() > 1e-9 {
        return Err(StatsError::Parameter {
            field: "sum of the cell shares",
            expected: "1",
            value: total,
        });
    }
    let judge = Judge::new(rule);
    let p10 = shares.teacher_only;
    let (lo10, hi10) = significant(more, p10);
    let p01 = conditional(shares.student_only, 1.0 - p10);
    let width01 = significant(more, p01);
    let pairs = (hi10 - lo10 + 1) as usize * (width01.1 - width01.0 + 1) as usize;
    if pairs > MAX_PAIRS {
        return Ok(None);
    }
    let q11 = conditional(shares.both, shares.both + shares.neither);
    let mut odds = VerdictOdds {
        pass: 0.0,
        fail: 0.0,
    };
    for x10 in lo10..=hi10 {
        let w10 = binomial_pmf(more, p10, x10);
        if w10 < 1e-15 {
            continue;
        }
        let rest = more - x10;
        let (lo01, hi01) = significant(rest, p01);
        for x01 in lo01..=hi01 {
            let w = w10 * binomial_pmf(rest, p01, x01);
            if w < 1e-15 {
                continue;
            }
            let m = rest - x01;
            let table = |x11: u64| CellCounts {
                both: (current.both + x11) as f64,
                teacher_only: (current.teacher_only + x10) as f64,
                student_only: (current.student_only + x01) as f64,
                neither: (current.neither + (m - x11)) as f64,
            };
            let (lo, hi) = significant(m, q11);
            let below = |v: u64| binomial_below(m, q11, v);
            // Smallest both-right count at which each limit holds.
            let measurable = first(lo, hi, |x| table(x).both + table(x).teacher_only > 0.0);
            let floor = first(lo, hi, |x| {
                table(x).both + table(x).teacher_only >= rule.min_teacher_correct as f64
            });
            // Unmeasurable tables (only possible at the smallest count)
            // count as "below" so that each search is monotone.
            let point_ok = first(lo, hi, |x| judge.point_at_or_above(&table(x)));
            let upper_ok = first(lo, hi, |x| judge.upper_at_or_above(&table(x)));
            let pass = first(lo, hi, |x| judge.lower_clears(&table(x))).max(floor);
            // FAIL: measurable with the upper bound below, or measurable,
            // above the floor and the point estimate below.
            let upper_fail = (measurable, upper_ok.max(measurable));
            let point_fail = (
                floor.max(upper_fail.1),
                point_ok.max(floor.max(upper_fail.1)),
            );
            odds.pass += w * (1.0 - below(pass));
            odds.fail += w * (below(upper_fail.1) - below(upper_fail.0));
            odds.fail += w * (below(point_fail.1) - below(point_fail.0));
        }
    }
    odds.pass = odds.pass.clamp(0.0, 1.0);
    odds.fail = odds.fail.clamp(0.0, 1.0 - odds.pass);
    Ok(Some(odds))
}

/// [`items_to_add`] for scores that are not one unclustered pass/fail
/// table but were judged on one (fractional scores on their expected
/// cells, clustered items as if unclustered): the table of `n` items with
/// these means and discordance (cells rounded to counts), added items
/// drawn as pass/fail outcomes at its rates, to be decided (PASS or FAIL).
/// An estimate (`probability: None`): pass/fail outcomes vary more than
/// fractional scores (conservative), clustering is left out.
pub fn items_to_add_on_table(
    rule: &RetentionRule,
    n: u64,
    teacher_mean: f64,
    student_mean: f64,
    discordance: f64,
    power: f64,
) -> Result<Option<ItemsToAdd>, StatsError> {
    let shares = CellShares::from_rates(teacher_mean, student_mean, discordance)?;
    let more = items_to_add(rule, &shares.counts(n), &shares, power, Goal::Decide)?;
    Ok(more.map(|m| ItemsToAdd {
        probability: None,
        ..m
    }))
}

/// The fewest paired items to add to `current` for the gate under `rule` to
/// reach `goal` with probability at least `power`, if each added item has
/// outcome probabilities `shares` (for a run: its observed shares).
///
/// Searched by doubling and then bisection over [`verdict_odds`], so the
/// probability at the returned count is computed exactly (the gate's
/// probability is not exactly monotone in the number of items: small
/// suites have few possible tables, so one more item can lower it a
/// little). When the exact sum would be too large (suites of many thousands
/// of items with many disagreements), the large-sample formula on
/// `S - t T` gives the count (`probability: None`): [`items_needed`] for a
/// PASS, or, when the student's share is below `t` times the teacher's, the
/// items for the point estimate to fall below `t` with probability
/// `power`; at least the items for the teacher's expected correct count to
/// reach the floor.
///
/// `None` when no count up to 10^8 reaches the goal (for [`Goal::Pass`]:
/// the shares' retention does not exceed the threshold).
pub fn items_to_add(
    rule: &RetentionRule,
    current: &PairedCells,
    shares: &CellShares,
    power: f64,
    goal: Goal,
) -> Result<Option<ItemsToAdd>, StatsError> {
    check_power(power)?;
    check_rule(rule)?;
    let (pt, ps) = (
        shares.both + shares.teacher_only,
        shares.both + shares.student_only,
    );
    let delta = ps - rule.threshold * pt;
    if pt <= 0.0 || (goal == Goal::Pass && delta <= 0.0) {
        return Ok(None);
    }
    let n = current.n();
    let reaches = |k: u64| -> Result<Option<(bool, f64)>, StatsError> {
        Ok(verdict_odds(rule, current, shares, k)?.map(|o| {
            let p = o.of(goal);
            (p >= power, p)
        }))
    };
    let found = |k: u64, p: f64| ItemsToAdd {
        more: k,
        total: n + k,
        probability: Some(p),
    };
    // Doubling: the first power of two that reaches the goal.
    let mut hi = 1;
    let mut last_miss = 0;
    let (mut hi_p, mut exact) = (0.0, true);
    loop {
        match reaches(hi)? {
            None => {
                exact = false;
                break;
            }
            Some((true, p)) => {
                hi_p = p;
                break;
            }
            Some((false, _)) => {
                last_miss = hi;
                if hi >= MAX_ITEMS {
                    return Ok(None);
                }
                hi = (hi * 2).min(MAX_ITEMS);
            }
        }
    }
    if !exact {
        return Ok(large_sample_items(rule, shares, power, delta)
            .map(|total| total.saturating_sub(n).max(1).max(last_miss + 1))
            .map(|more| ItemsToAdd {
                more,
                total: n + more,
                probability: None,
            }));
    }
    // Bisection between a miss and a hit.
    let mut lo = last_miss;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match reaches(mid)? {
            Some((true, p)) => {
                hi = mid;
                hi_p = p;
            }
            _ => lo = mid,
        }
    }
    Ok(Some(found(hi, hi_p)))
}

/// The large-sample total count for [`items_to_add`].
fn large_sample_items(
    rule: &RetentionRule,
    shares: &CellShares,
    power: f64,
    delta: f64,
) -> Option<u64> {
    let pt = shares.both + shares.teacher_only;
    let floor = (rule.min_teacher_correct as f64 / pt).ceil();
    let t = rule.threshold;
    let cells = [
        (shares.both, 1.0 - t),
        (shares.teacher_only, -t),
        (shares.student_only, 1.0),
    ];
    let var = cells.iter().map(|(p, d)| p * d * d).sum::<f64>() - delta * delta;
    let z = if delta > 0.0 {
        z_quantile(rule.confidence) + z_quantile(power)
    } else if delta < 0.0 {
        z_quantile(power)
    } else {
        return None;
    }
    .max(0.0);
    let n = (z * z * var.max(0.0) / (delta * delta))
        .ceil()
        .max(floor)
        .max(1.0);
    (n.is_finite() && n < MAX_ITEMS as f64).then_some(n as u64)
}

/// The rule's limits on one table of counts.
struct Judge {
    threshold: f64,
    z: f64,
    method: IntervalMethod,
}

impl Judge {
    fn new(rule: &RetentionRule) -> Self {
        Self {
            threshold: rule.threshold,
            z: z_quantile(rule.confidence),
            method: rule.method,
        }
    }

    /// Measurable and `point >= t`, computed as the gate does (`R̂ = S / T`).
    fn point_at_or_above(&self, c: &CellCounts) -> bool {
        let t = c.both + c.teacher_only;
        t > 0.0 && (c.both + c.student_only) / t >= self.threshold
    }

    /// The one-sided bounds of a measurable table (teacher total above 0).
    fn bounds(&self, c: &CellCounts) -> Interval {
        let n = c.n();
        let (tsum, ssum) = (c.both + c.teacher_only, c.both + c.student_only);
        let means = (tsum / n, ssum / n);
        // The sample covariance of the means (`n - 1` denominator over `n`),
        // as `cluster::mean_covariance` computes it from the items.
        let scale = if n > 1.0 { 1.0 / ((n - 1.0) * n) } else { 0.0 };
        let cov = MeanCovariance {
            teacher: (tsum - tsum * tsum / n) * scale,
            student: (ssum - ssum * ssum / n) * scale,
            cross: (c.both - tsum * ssum / n) * scale,
        };
        match self.method {
            IntervalMethod::DeltaLog => delta_log(means, &cov, self.z),
            _ => fieller(means, &cov, self.z),
        }
    }

    /// The one-sided lower bound is at or above the threshold.
    fn lower_clears(&self, c: &CellCounts) -> bool {
        if c.both + c.teacher_only <= 0.0 {
            return false;
        }
        match self.method {
            IntervalMethod::Score => c.score(self.threshold) >= self.z,
            _ => self.bounds(c).lower >= self.threshold,
        }
    }

    /// Measurable and the one-sided upper bound at or above the threshold
    /// (the gate FAILs a measurable table whose upper bound is below).
    fn upper_at_or_above(&self, c: &CellCounts) -> bool {
        if c.both + c.teacher_only <= 0.0 {
            return false;
        }
        match self.method {
            IntervalMethod::Score => c.score(self.threshold) >= -self.z,
            _ => self.bounds(c).upper >= self.threshold,
        }
    }
}

/// The smallest `x` in `lo..=hi` with `holds(x)`, for a `holds` that is
/// false and then true; `lo` when it holds everywhere, `hi + 1` when
/// nowhere. Below `lo` and above `hi` the binomial mass is negligible.
fn first(lo: u64, hi: u64, holds: impl Fn(u64) -> bool) -> u64 {
    if holds(lo) {
        return lo;
    }
    if !holds(hi) {
        return hi + 1;
    }
    let (mut miss, mut hit) = (lo, hi);
    while hit - miss > 1 {
        let mid = miss + (hit - miss) / 2;
        if holds(mid) {
            hit = mid;
        } else {
            miss = mid;
        }
    }
    hit
}

/// `a / b`, or 0 when `b` is 0.
fn conditional(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The values of `Binomial(n, p)` within [`TAIL_SDS`] standard deviations
/// (plus 3) of the mean, clipped to `0..=n`.
fn significant(n: u64, p: f64) -> (u64, u64) {
    let nf = n as f64;
    let mean = nf * p;
    let reach = TAIL_SDS * (nf * p * (1.0 - p)).sqrt() + 3.0;
    let lo = (mean - reach).floor().max(0.0) as u64;
    let hi = ((mean + reach).ceil().min(nf) as u64).max(lo);
    (lo, hi)
}

fn binomial_pmf(n: u64, p: f64, x: u64) -> f64 {
    Binomial::new(p, n).map_or(0.0, |b| b.pmf(x))
}

/// `P(X < v)` for `X ~ Binomial(n, p)`.
fn binomial_below(n: u64, p: f64, v: u64) -> f64 {
    if v == 0 || (p >= 1.0 && v <= n) {
        0.0
    } else if v > n || p <= 0.0 {
        1.0
    } else {
        Binomial::new(p, n).map_or(0.0, |b| b.cdf(v - 1))
    }
}

fn check_power(power: f64) -> Result<(), StatsError> {
    if power > 0.0 && power < 1.0 {
        Ok(())
    } else {
        Err(StatsError::Parameter {
            field: "power",
            expected: "strictly between 0 and 1",
            value: power,
        })
    }
}

fn check_rule(rule: &RetentionRule) -> Result<(), StatsError> {
    check_confidence(rule.confidence)?;
    if !(rule.threshold.is_finite() && rule.threshold > 0.0) {
        return Err(StatsError::Threshold {
            value: rule.threshold,
        });
    }
    Ok(())
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

    #[test]
    fn items_to_add_is_the_first_count_reaching_the_power() {
        // No disagreement, teacher accuracy 0.8, R = 1, threshold 0.95: the
        // score bound clears 0.95 once a >= z² · 0.95 / 0.05 = 51.4 items
        // are right for both (module score), so PASS at n is
        // P(Binomial(n, 0.8) >= 52), and the smallest n with 80% is 68
        // (exact rational sums with Python's `math.comb` and `fractions`, a
        // throwaway script: 0.7451078138227907 at 67, 0.8123812489209455 at
        // 68). The normal approximation of the z test says 2.
        let rule = RetentionRule {
            threshold: 0.95,
            confidence: 0.95,
            min_teacher_correct: 10,
            method: IntervalMethod::Score,
        };
        let shares = CellShares::from_rates(0.8, 0.8, 0.0).unwrap();
        let plan = items_to_add(&rule, &PairedCells::default(), &shares, 0.8, Goal::Pass)
            .unwrap()
            .unwrap();
        assert_eq!((plan.more, plan.total), (68, 68), "{plan:?}");
        let p = plan.probability.unwrap();
        assert!((p - SF_51_68).abs() < 1e-9, "{p}");
        let before = verdict_odds(&rule, &PairedCells::default(), &shares, 67)
            .unwrap()
            .unwrap();
        assert!((before.pass - SF_51_67).abs() < 1e-9, "{before:?}");
        let m = PairedMoments::from_binary_rates(0.8, 0.8, 0.0).unwrap();
        assert_eq!(items_needed(&m, 0.95, 0.95, 0.8).unwrap(), Some(2));
        // From 30 such items already seen, 24 right: the count is of items
        // to ADD (28 more right are needed, 35 more items on average).
        let current = PairedCells {
            both: 24,
            teacher_only: 0,
            student_only: 0,
            neither: 6,
        };
        let more = items_to_add(&rule, &current, &shares, 0.8, Goal::Pass)
            .unwrap()
            .unwrap();
        assert_eq!(more.total, current.n() + more.more);
        assert!(more.more < 68 && more.more >= 28, "{more:?}");
        // A retention at or below the threshold never plans a PASS.
        let at = CellShares::from_rates(0.8, 0.76, 0.04).unwrap();
        assert_eq!(
            items_to_add(&rule, &PairedCells::default(), &at, 0.8, Goal::Pass).unwrap(),
            None
        );
    }
    const SF_51_67: f64 = 0.7451078138227907;
    const SF_51_68: f64 = 0.8123812489209455;

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
