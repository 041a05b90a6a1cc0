//! Statistics behind the gate: accuracy intervals, paired retention, McNemar,
//! power (items needed), percentiles and pass@k.
//!
//! Everything here is plain Rust on slices, deterministic, and seeded where
//! random (the bootstrap uses [`rand_chacha::ChaCha8Rng`] seeded from a `u64`
//! and integer-only index sampling, so a seed gives the same numbers on every
//! platform). Invalid input returns a [`StatsError`]; nothing panics.
//!
//! | quantity | function | method |
//! |---|---|---|
//! | accuracy | [`accuracy`], [`wilson`], [`wilson_one_sided`] | Wilson score (binary), Student t (fractional) |
//! | retention | [`retention_estimate`] | [`IntervalMethod`]: score (default), Fieller, BCa, percentile bootstrap, delta method on log R; optionally clustered |
//! | retention (percentile) | [`paired_bootstrap_retention`] | paired percentile bootstrap |
//! | retention cross-check | [`delta_method_retention`] | delta method on log R |
//! | clustering | [`Clusters`], [`design_effect`] | cluster-robust variance, two-stage bootstrap |
//! | paired difference | [`mcnemar_exact`] | exact binomial test on discordant pairs |
//! | items needed | [`items_to_add`], [`verdict_odds`] | exact: the gate's own rule summed over every paired binary table |
//! | items needed (large samples, fractional scores) | [`items_needed`], [`additional_items_needed`] | one-sided z test on S - t*T |
//! | latency | [`percentile`], [`summarize`] | linear interpolation (numpy "linear") |
//! | pass@k | [`pass_at_k`] | unbiased estimator of Chen et al. (2021) |

mod bootstrap;
mod cluster;
mod delta;
mod error;
mod estimate;
mod mcnemar;
mod moments;
mod normal;
mod passk;
mod percentile;
mod power;
mod retention;
mod score;
mod wilson;

pub use bootstrap::{
    BootstrapEstimate, BootstrapOptions, DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED,
    MIN_RESAMPLES, paired_bootstrap_retention,
};
pub use cluster::{Clusters, design_effect};
pub use delta::{DeltaEstimate, delta_method_retention};
pub use error::StatsError;
pub use estimate::{IntervalMethod, retention_estimate};
pub use mcnemar::{McNemar, mcnemar_exact};
pub use moments::PairedMoments;
pub use passk::pass_at_k;
pub use percentile::{Summary, percentile, summarize};
pub use power::{
    CellShares, Goal, ItemsToAdd, RetentionRule, VerdictOdds, additional_items_needed,
    items_needed, items_to_add, items_to_add_on_table, verdict_odds,
};
pub use retention::{Retention, Unmeasurable, UnmeasurableReason};
pub use score::PairedCells;
pub use wilson::{Accuracy, AccuracyMethod, Interval, accuracy, wilson, wilson_one_sided};

/// Helpers shared by the statistics tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{BootstrapEstimate, Retention};

    /// Paired binary scores with the given cell counts (both right,
    /// teacher only, student only, neither).
    pub(crate) fn table(
        both: usize,
        t_only: usize,
        s_only: usize,
        neither: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut t = Vec::new();
        let mut s = Vec::new();
        for (count, tv, sv) in [
            (both, 1.0, 1.0),
            (t_only, 1.0, 0.0),
            (s_only, 0.0, 1.0),
            (neither, 0.0, 0.0),
        ] {
            t.extend(std::iter::repeat_n(tv, count));
            s.extend(std::iter::repeat_n(sv, count));
        }
        (t, s)
    }

    /// The estimate of a measurable retention; panics otherwise.
    pub(crate) fn measured(r: Retention<BootstrapEstimate>) -> BootstrapEstimate {
        match r {
            Retention::Measured(e) => e,
            Retention::Unmeasurable(u) => panic!("unmeasurable: {u:?}"),
        }
    }
}
