//! Clusters of items (a category, a template) and the variance of paired
//! means when items in a cluster are not independent.
//!
//! With items grouped into `G` clusters, the covariance of the means
//! `(T̄, S̄)` is estimated by the cluster-robust ("sandwich") estimator
//!
//! ```text
//! V = G / (G - 1) · (1 / n²) · Σ_g u_g u_gᵀ,   u_g = Σ_{i ∈ g} (x_i - x̄)
//! ```
//!
//! (Liang & Zeger 1986; the `G / (G - 1)` factor is the small-sample
//! correction statsmodels applies to `cov_type="cluster"` for a mean, and it
//! makes `V` equal the ordinary `s² / n` when every item is its own cluster).
//! Without clusters the same function returns the sample covariance
//! (`n - 1` denominator) over `n`. Miller (2024, "Adding Error Bars to
//! Evals", arXiv:2411.00640, §2.3) recommends exactly this for evals whose
//! questions come in groups.
//!
//! The design effect is the clustered variance of the linearised retention
//! `D̄ = S̄ - R̂ T̄` over its independent-items variance: how many times larger
//! the squared standard error is because items cluster (Kish 1965, "Survey
//! Sampling", §8.2). The bootstrap counterpart resamples clusters with
//! replacement, then items within each drawn cluster (a two-stage bootstrap,
//! Davison & Hinkley 1997, "Bootstrap Methods and their Application", §3.8).

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::StatsError;
use super::error::check_paired_scores;

/// Items grouped into clusters: item `i` belongs to exactly one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clusters {
    /// Item indices of each cluster, clusters in label order, items ascending.
    members: Vec<Vec<usize>>,
    /// Number of items.
    items: usize,
}

impl Clusters {
    /// Groups items by equal labels: `labels[i]` is item `i`'s cluster.
    pub fn from_labels<L: Ord>(labels: &[L]) -> Self {
        let mut groups: BTreeMap<&L, Vec<usize>> = BTreeMap::new();
        for (i, l) in labels.iter().enumerate() {
            groups.entry(l).or_default().push(i);
        }
        Self {
            members: groups.into_values().collect(),
            items: labels.len(),
        }
    }

    /// Number of clusters.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no clusters (no items).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of items.
    pub fn items(&self) -> usize {
        self.items
    }

    /// Item indices of each cluster.
    pub(crate) fn members(&self) -> &[Vec<usize>] {
        &self.members
    }

    /// Checks that the clusters cover exactly `n` items.
    pub(crate) fn check_items(&self, n: usize) -> Result<(), StatsError> {
        if self.items == n {
            Ok(())
        } else {
            Err(StatsError::ClusterLength {
                items: n,
                labels: self.items,
            })
        }
    }
}

/// Covariance matrix of the means `(T̄, S̄)`: `[var(T̄), var(S̄), cov(T̄, S̄)]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MeanCovariance {
    pub teacher: f64,
    pub student: f64,
    pub cross: f64,
}

impl MeanCovariance {
    /// `Var(S̄ - r T̄)`, the variance of the linearised ratio at `r`.
    pub fn linearised(&self, r: f64) -> f64 {
        (self.student + r * r * self.teacher - 2.0 * r * self.cross).max(0.0)
    }
}

/// Covariance of the paired means on checked, non-empty input: the sample
/// covariance over `n` without clusters, the cluster-robust estimator with
/// them (a single cluster has no between-cluster spread to estimate: the
/// ordinary estimator is used).
pub(crate) fn mean_covariance(
    teacher: &[f64],
    student: &[f64],
    clusters: Option<&Clusters>,
) -> MeanCovariance {
    let n = teacher.len() as f64;
    let tm = teacher.iter().sum::<f64>() / n;
    let sm = student.iter().sum::<f64>() / n;
    let mut acc = [0.0f64; 3];
    let mut add = |dt: f64, ds: f64| {
        acc[0] += dt * dt;
        acc[1] += ds * ds;
        acc[2] += dt * ds;
    };
    let scale = match clusters.filter(|c| c.len() > 1) {
        Some(c) => {
            for members in c.members() {
                let (mut ut, mut us) = (0.0, 0.0);
                for &i in members {
                    if let (Some(t), Some(s)) = (teacher.get(i), student.get(i)) {
                        ut += t - tm;
                        us += s - sm;
                    }
                }
                add(ut, us);
            }
            let g = c.len() as f64;
            g / (g - 1.0) / (n * n)
        }
        None => {
            for (t, s) in teacher.iter().zip(student) {
                add(t - tm, s - sm);
            }
            if teacher.len() > 1 {
                1.0 / ((n - 1.0) * n)
            } else {
                0.0
            }
        }
    };
    MeanCovariance {
        teacher: acc[0] * scale,
        student: acc[1] * scale,
        cross: acc[2] * scale,
    }
}

/// Design effect of clustering on retention: the cluster-robust variance of
/// `S̄ - R̂ T̄` over its variance with independent items.
///
/// `None` when it is undefined: fewer than two clusters, no items, a teacher
/// mean of 0, or no spread at all (the independent-items variance is 0).
/// Errors on mismatched lengths, scores outside [0, 1] or clusters that do
/// not cover the items.
pub fn design_effect(
    teacher: &[f64],
    student: &[f64],
    clusters: &Clusters,
) -> Result<Option<f64>, StatsError> {
    check_paired_scores(teacher, student)?;
    clusters.check_items(teacher.len())?;
    let t_sum: f64 = teacher.iter().sum();
    if clusters.len() < 2 || t_sum <= 0.0 {
        return Ok(None);
    }
    let r = student.iter().sum::<f64>() / t_sum;
    let iid = mean_covariance(teacher, student, None).linearised(r);
    let clustered = mean_covariance(teacher, student, Some(clusters)).linearised(r);
    Ok((iid > 0.0).then(|| clustered / iid))
}

/// Sorted defined ratios of a two-stage cluster bootstrap: each resample
/// draws `G` clusters with replacement, then, within each drawn cluster of
/// `m` items, `m` items with replacement. Deterministic for a seed
/// (ChaCha8, `Rng::random_range`).
pub(crate) fn cluster_bootstrap_ratios(
    teacher: &[f64],
    student: &[f64],
    clusters: &Clusters,
    resamples: u32,
    seed: u64,
) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let members = clusters.members();
    let g = members.len();
    let mut ratios = Vec::with_capacity(resamples as usize);
    if g == 0 {
        return ratios;
    }
    for _ in 0..resamples {
        let (mut t, mut s) = (0.0, 0.0);
        for _ in 0..g {
            let Some(cluster) = members.get(rng.random_range(0..g)) else {
                continue;
            };
            let m = cluster.len();
            for _ in 0..m {
                let item = cluster.get(rng.random_range(0..m)).copied().unwrap_or(0);
                if let (Some(ti), Some(si)) = (teacher.get(item), student.get(item)) {
                    t += ti;
                    s += si;
                }
            }
        }
        if t > 0.0 {
            ratios.push(s / t);
        }
    }
    ratios.sort_unstable_by(f64::total_cmp);
    ratios
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 12 items in 4 clusters of unequal size, fractional and binary scores.
    fn data() -> (Vec<f64>, Vec<f64>, Vec<&'static str>) {
        let t = vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.5, 1.0];
        let s = vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5, 0.75];
        let g = vec!["a", "a", "a", "b", "b", "b", "b", "c", "c", "d", "d", "d"];
        (t, s, g)
    }

    #[test]
    fn design_effect_matches_statsmodels_cluster_robust_ols() {
        // statsmodels 0.15.0: D = s - R̂ t, R̂ = sum(s) / sum(t);
        // `sm.OLS(D, ones).fit(cov_type="cluster", cov_kwds={"groups": g}).bse[0] ** 2`
        // over `sm.OLS(D, ones).fit().bse[0] ** 2` (tests/reference/calibration_reference.py).
        let (t, s, g) = data();
        let c = Clusters::from_labels(&g);
        assert_eq!((c.len(), c.items()), (4, 12));
        let deff = design_effect(&t, &s, &c).unwrap().unwrap();
        assert!((deff - DEFF_REF).abs() < 1e-12, "{deff}");
        let r = s.iter().sum::<f64>() / t.iter().sum::<f64>();
        let v = mean_covariance(&t, &s, Some(&c)).linearised(r);
        assert!((v - CLUSTER_VAR_REF).abs() < 1e-14, "{v}");
    }
    const DEFF_REF: f64 = 1.663424348656167;
    const CLUSTER_VAR_REF: f64 = 0.036796744841727576;

    #[test]
    fn singleton_clusters_have_design_effect_one() {
        let (t, s, _) = data();
        let ids: Vec<usize> = (0..t.len()).collect();
        let deff = design_effect(&t, &s, &Clusters::from_labels(&ids))
            .unwrap()
            .unwrap();
        assert!((deff - 1.0).abs() < 1e-12, "{deff}");
    }

    #[test]
    fn undefined_cases_and_errors() {
        let (t, s, _) = data();
        let one = Clusters::from_labels(&vec![0; t.len()]);
        assert_eq!(design_effect(&t, &s, &one).unwrap(), None);
        let short = Clusters::from_labels(&[0, 1]);
        assert!(matches!(
            design_effect(&t, &s, &short),
            Err(StatsError::ClusterLength {
                items: 12,
                labels: 2
            })
        ));
        let same = vec![1.0; 4];
        assert_eq!(
            design_effect(&same, &same, &Clusters::from_labels(&[0, 0, 1, 1])).unwrap(),
            None
        );
    }

    #[test]
    fn cluster_bootstrap_is_seeded_and_wider_when_clusters_are_homogeneous() {
        // 20 clusters of 10 items; within a cluster both models score alike,
        // so clustering inflates the spread of the ratio.
        let mut t = Vec::new();
        let mut s = Vec::new();
        let mut g = Vec::new();
        for c in 0..20 {
            for i in 0..10 {
                t.push(if c % 4 == 0 { 0.0 } else { 1.0 });
                s.push(if c % 5 == 0 || (c % 4 == 0 && i < 3) {
                    0.0
                } else {
                    1.0
                });
                g.push(c);
            }
        }
        let c = Clusters::from_labels(&g);
        let a = cluster_bootstrap_ratios(&t, &s, &c, 2000, 1);
        assert_eq!(a, cluster_bootstrap_ratios(&t, &s, &c, 2000, 1));
        let iid = Clusters::from_labels(&(0..t.len()).collect::<Vec<_>>());
        let b = cluster_bootstrap_ratios(&t, &s, &iid, 2000, 1);
        let sd = |x: &[f64]| {
            let m = x.iter().sum::<f64>() / x.len() as f64;
            (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
        };
        assert!(sd(&a) > 2.0 * sd(&b), "{} vs {}", sd(&a), sd(&b));
        // The bootstrap variance of the ratio is close to the cluster-robust
        // delta-method variance R̂-scaled: Var(R̂) ≈ Var(S̄ - R̂ T̄) / T̄².
        let r = s.iter().sum::<f64>() / t.iter().sum::<f64>();
        let tm = t.iter().sum::<f64>() / t.len() as f64;
        let v = mean_covariance(&t, &s, Some(&c)).linearised(r) / (tm * tm);
        assert!(
            (sd(&a) / v.sqrt() - 1.0).abs() < 0.25,
            "{} vs {}",
            sd(&a),
            v.sqrt()
        );
    }
}
