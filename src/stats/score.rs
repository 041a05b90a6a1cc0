//! Score interval for the ratio of paired binary proportions (and, on
//! their expected pass/fail cells, of paired scores in [0, 1]:
//! [`CellCounts::coupled`]).
//!
//! With cell counts `x11` (both right), `x10` (teacher only), `x01`
//! (student only), `x00` and a candidate retention `θ`, the per-item
//! difference `D = S - θ T` takes the values `1 - θ`, `-θ`, `1`, `0`. The
//! null hypothesis `p_S = θ p_T` is `E[D] = 0`, and its score statistic is
//!
//! ```text
//! Z(θ) = √n · D̄ / √Ṽ(θ),   Ṽ(θ) = Σ p̃_ij d_ij²
//! ```
//!
//! with `p̃` the multinomial maximum-likelihood cell probabilities *under the
//! null* (Nam & Blackwelder 2002, Stat. Med. 21, 689-699; Tang, Tang & Chan
//! 2003, Stat. Med. 22, 1217-1233). Unlike the Wald/Fieller variance, which
//! is 0-ish when no discordant pair happens to be observed, `Ṽ` puts the
//! mass the null needs on the empty discordant cell, so a lucky small sample
//! does not pass. The lower bound at confidence `c` is the `θ` below `R̂`
//! with `Z(θ) = z_c`, the two-sided ends solve `Z(θ) = ±z_{(1+c)/2}`, found
//! by bisection (`Z` decreases in `θ`).
//!
//! The constrained MLE: maximising `Σ x_ij log p_ij` subject to
//! `Σ p_ij = 1` and `Σ p_ij d_ij = 0` gives `p_ij = x_ij / (n + λ d_ij)`
//! with `λ` the root of `Σ x_ij d_ij / (n + λ d_ij) = 0` (Owen 2001,
//! "Empirical Likelihood", §2.9), as long as every cell keeps
//! `n + λ d_ij >= 0`. When the root lies beyond the bound set by an
//! *empty* cell `k`, the maximum is at that bound, `λ = -n / d_k`, and cell
//! `k` takes the remaining probability (the Karush-Kuhn-Tucker condition of
//! the empty cell becomes active).

use serde::{Deserialize, Serialize};

use super::Interval;

/// Counts of the four outcomes of paired binary (pass/fail) items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairedCells {
    /// Items both models got right.
    pub both: u64,
    /// Items only the teacher got right.
    pub teacher_only: u64,
    /// Items only the student got right.
    pub student_only: u64,
    /// Items both models got wrong.
    pub neither: u64,
}

impl PairedCells {
    /// Number of items.
    pub fn n(&self) -> u64 {
        self.both + self.teacher_only + self.student_only + self.neither
    }

    /// Items the teacher got right.
    pub fn teacher_correct(&self) -> u64 {
        self.both + self.teacher_only
    }

    /// Share of items exactly one model got right (0 with no items).
    pub fn discordance(&self) -> f64 {
        (self.teacher_only + self.student_only) as f64 / self.n().max(1) as f64
    }
}

impl From<PairedCells> for CellCounts {
    fn from(c: PairedCells) -> Self {
        CellCounts {
            both: c.both as f64,
            teacher_only: c.teacher_only as f64,
            student_only: c.student_only as f64,
            neither: c.neither as f64,
        }
    }
}

/// Paired binary cell counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CellCounts {
    pub both: f64,
    pub teacher_only: f64,
    pub student_only: f64,
    pub neither: f64,
}

impl CellCounts {
    /// Counts of binary paired scores; `None` if any score is not 0 or 1.
    pub fn of(teacher: &[f64], student: &[f64]) -> Option<Self> {
        let mut c = [0.0f64; 4];
        for (&t, &s) in teacher.iter().zip(student) {
            let cell = match (t, s) {
                (1.0, 1.0) => 0,
                (1.0, 0.0) => 1,
                (0.0, 1.0) => 2,
                (0.0, 0.0) => 3,
                _ => return None,
            };
            c[cell] += 1.0;
        }
        Some(Self {
            both: c[0],
            teacher_only: c[1],
            student_only: c[2],
            neither: c[3],
        })
    }

    /// The expected cells of paired scores in [0, 1], each pair read as two
    /// pass/fail outcomes with those means, coupled to disagree as little
    /// as they can: `min(t, s)` both, `t - min(t, s)` teacher only,
    /// `s - min(t, s)` student only, `1 - max(t, s)` neither. Binary scores
    /// give their own counts ([`CellCounts::of`]). Fractional scores
    /// (partial credit, the mean of several samples) give the pass/fail
    /// table with the same means, whose per-item differences vary at least
    /// as much as theirs (Jensen), so the score interval on it is
    /// conservative, and does not collapse when the two models agree on
    /// every item as an interval from the sample variance does. `None` if a
    /// score is outside [0, 1].
    pub fn coupled(teacher: &[f64], student: &[f64]) -> Option<Self> {
        let mut c = Self {
            both: 0.0,
            teacher_only: 0.0,
            student_only: 0.0,
            neither: 0.0,
        };
        for (&t, &s) in teacher.iter().zip(student) {
            if !((0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&s)) {
                return None;
            }
            let (low, high) = (t.min(s), t.max(s));
            c.both += low;
            c.teacher_only += t - low;
            c.student_only += s - low;
            c.neither += 1.0 - high;
        }
        Some(c)
    }

    pub fn n(&self) -> f64 {
        self.both + self.teacher_only + self.student_only + self.neither
    }

    /// The whole counts (the cells of binary scores are whole numbers).
    pub fn whole(&self) -> PairedCells {
        PairedCells {
            both: self.both as u64,
            teacher_only: self.teacher_only as u64,
            student_only: self.student_only as u64,
            neither: self.neither as u64,
        }
    }

    /// `(count, d)` of the four cells at `θ`.
    fn cells(&self, theta: f64) -> [(f64, f64); 4] {
        [
            (self.both, 1.0 - theta),
            (self.teacher_only, -theta),
            (self.student_only, 1.0),
            (self.neither, 0.0),
        ]
    }

    /// The score statistic `Z(θ)` (±infinity when the null variance is 0).
    pub fn score(&self, theta: f64) -> f64 {
        let n = self.n();
        let cells = self.cells(theta);
        let mean_d = cells.iter().map(|(x, d)| x * d).sum::<f64>() / n;
        let var = null_variance(&cells, n);
        if var > 0.0 {
            n.sqrt() * mean_d / var.sqrt()
        } else if mean_d > 0.0 {
            f64::INFINITY
        } else if mean_d < 0.0 {
            f64::NEG_INFINITY
        } else {
            0.0
        }
    }

    /// The `θ` where `Z` crosses `z`, searched on the side of `R̂` that `z`
    /// points to: below for `z > 0` (a lower end, at least 0), above for
    /// `z < 0` (an upper end, `f64::MAX` when `Z` never gets that low).
    fn crossing(&self, z: f64, point: f64) -> f64 {
        let (mut lo, mut hi) = if z > 0.0 {
            if self.score(0.0) <= z {
                return 0.0;
            }
            (0.0, point)
        } else {
            let mut hi = point.max(1e-9) * 2.0;
            while self.score(hi) > z {
                hi *= 2.0;
                if hi > 1e12 {
                    return f64::MAX;
                }
            }
            (point, hi)
        };
        // Z(lo) > z >= Z(hi): 200 halvings reach adjacent floats.
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            if self.score(mid) > z {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// The two-sided interval with quantile `z2` and the one-sided bounds
    /// (lower, upper) with quantile `z1` (both quantiles positive).
    pub fn interval(&self, z2: f64, z1: f64) -> (Interval, Interval) {
        let t = self.both + self.teacher_only;
        let point = (self.both + self.student_only) / t;
        (
            Interval {
                lower: self.crossing(z2, point),
                upper: self.crossing(-z2, point),
            },
            Interval {
                lower: self.crossing(z1, point),
                upper: self.crossing(-z1, point),
            },
        )
    }
}

/// `Σ p̃ d²` under the constrained MLE of the module docs.
fn null_variance(cells: &[(f64, f64); 4], n: f64) -> f64 {
    // λ must keep n + λ d >= 0 on every cell: λ in [lo, hi].
    let mut lo = f64::NEG_INFINITY;
    let mut hi = f64::INFINITY;
    let (mut lo_cell, mut hi_cell) = (None, None);
    for (k, &(_, d)) in cells.iter().enumerate() {
        if d > 0.0 && -n / d > lo {
            lo = -n / d;
            lo_cell = Some(k);
        } else if d < 0.0 && n / -d < hi {
            hi = n / -d;
            hi_cell = Some(k);
        }
    }
    let g = |lambda: f64| {
        cells
            .iter()
            .filter(|(x, _)| *x > 0.0)
            .map(|(x, d)| x * d / (n + lambda * d))
            .sum::<f64>()
    };
    let empty = |k: Option<usize>| k.and_then(|k| cells.get(k)).is_some_and(|(x, _)| *x == 0.0);
    // g decreases; an observed cell at a bound sends g to ±infinity there.
    let lambda = if empty(hi_cell) && g(hi) >= 0.0 {
        hi
    } else if empty(lo_cell) && g(lo) <= 0.0 {
        lo
    } else {
        let (mut a, mut b) = (lo, hi);
        // Unbounded sides (all d of one sign) cannot occur with d = -θ < 0
        // and d = 1 > 0 present; keep finite brackets anyway.
        if !a.is_finite() {
            a = -1e300;
        }
        if !b.is_finite() {
            b = 1e300;
        }
        for _ in 0..200 {
            let mid = 0.5 * (a + b);
            if mid <= a || mid >= b {
                break;
            }
            if g(mid) > 0.0 {
                a = mid;
            } else {
                b = mid;
            }
        }
        0.5 * (a + b)
    };
    let mut used = 0.0;
    let mut var = 0.0;
    for &(x, d) in cells {
        if x > 0.0 {
            let p = x / (n + lambda * d);
            used += p;
            var += p * d * d;
        }
    }
    // An empty cell at the active bound takes what is left.
    let rest = (1.0 - used).max(0.0);
    if rest > 0.0 {
        let bound_cell = if lambda == hi {
            hi_cell
        } else if lambda == lo {
            lo_cell
        } else {
            None
        };
        if let Some(&(_, d)) = bound_cell.and_then(|k| cells.get(k)) {
            var += rest * d * d;
        }
    }
    var
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cell counts (both, teacher only, student only, neither).
    type Table = (f64, f64, f64, f64);

    fn counts(both: f64, teacher_only: f64, student_only: f64, neither: f64) -> CellCounts {
        CellCounts {
            both,
            teacher_only,
            student_only,
            neither,
        }
    }

    #[test]
    fn constrained_mle_matches_a_numerical_maximisation() {
        // scipy 1.17.1: `optimize.minimize(..., method="Nelder-Mead")` of the
        // multinomial log-likelihood over (p11, p10) with p01 = θ p10 + (θ-1) p11
        // (tests/reference/calibration_reference.py), then Σ p d².
        for (c, theta, var) in NULL_VARIANCE_REF {
            let cc = counts(c.0, c.1, c.2, c.3);
            let got = null_variance(&cc.cells(theta), cc.n());
            assert!((got - var).abs() < 1e-7, "{c:?} θ={theta}: {got} vs {var}");
        }
    }
    const NULL_VARIANCE_REF: [(Table, f64, f64); 6] = [
        ((15.0, 3.0, 0.0, 32.0), 0.95, 0.04199999816380423),
        ((15.0, 0.0, 0.0, 35.0), 0.95, 0.014250000010932221),
        ((300.0, 40.0, 25.0, 135.0), 0.9, 0.13209940518824695),
        ((40.0, 9.0, 2.0, 9.0), 0.95, 0.15866073635937097),
        ((40.0, 9.0, 2.0, 9.0), 1.1, 0.25465428292018855),
        ((12.0, 1.0, 4.0, 33.0), 0.8, 0.11200000081618193),
    ];

    #[test]
    fn interval_matches_an_independent_score_inversion() {
        // tests/reference/calibration_reference.py: brentq on the score statistic
        // with the numerically maximised constrained likelihood.
        for (c, conf, lo, hi, lb) in SCORE_INTERVAL_REF {
            let cc = counts(c.0, c.1, c.2, c.3);
            let z2 = crate::stats::normal::z_quantile((1.0 + conf) / 2.0);
            let z1 = crate::stats::normal::z_quantile(conf);
            let (i, b) = cc.interval(z2, z1);
            assert!((i.lower - lo).abs() < 1e-6, "{c:?}: {i:?}");
            assert!((i.upper - hi).abs() < 1e-6, "{c:?}: {i:?}");
            assert!((b.lower - lb).abs() < 1e-6, "{c:?}: {b:?}");
        }
    }
    const SCORE_INTERVAL_REF: [(Table, f64, f64, f64, f64); 3] = [
        (
            (300.0, 40.0, 25.0, 135.0),
            0.95,
            0.9094099160639116,
            1.002480132655695,
            0.9171149389183083,
        ),
        (
            (40.0, 9.0, 2.0, 9.0),
            0.95,
            0.7193127246946592,
            0.9870400740310303,
            0.7434432719308691,
        ),
        (
            (15.0, 0.0, 0.0, 35.0),
            0.9,
            0.8471922941806207,
            1.1803695630897049,
            0.9013136970689088,
        ),
    ];

    #[test]
    fn one_sided_bounds_are_the_two_sided_ends_at_twice_the_tail() {
        // SCORE_INTERVAL_REF's third row is two-sided at 0.90: its ends are
        // the one-sided bounds at 0.95.
        let (c, _, lo, hi, _) = SCORE_INTERVAL_REF[2];
        let cc = counts(c.0, c.1, c.2, c.3);
        let z = crate::stats::normal::z_quantile(0.95);
        let (_, one) = cc.interval(1.96, z);
        assert!((one.lower - lo).abs() < 1e-6, "{one:?}");
        assert!((one.upper - hi).abs() < 1e-6, "{one:?}");
        // Teacher right on 7 of 8, student on none: the upper bound is far
        // below 0.95, and at it the score statistic is -z.
        let worse = counts(0.0, 7.0, 0.0, 1.0);
        let (_, one) = worse.interval(1.96, z);
        assert!(one.upper > 0.0 && one.upper < 0.5, "{one:?}");
        assert!((worse.score(one.upper) + z).abs() < 1e-9, "{one:?}");
    }

    #[test]
    fn no_discordant_pairs_do_not_give_a_bound_of_one() {
        // 15 of 15 teacher-right items kept in 50: the Wald/Fieller bound is 1,
        // the score bound is well below (the null puts mass on "teacher only").
        let (_, b) = counts(15.0, 0.0, 0.0, 35.0).interval(1.96, 1.6448536269514722);
        assert!(b.lower < 0.95 && b.lower > 0.7, "{b:?}");
    }
}
