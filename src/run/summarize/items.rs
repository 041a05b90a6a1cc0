//! Grouping: the journal's lines of the planned items, per model and item
//! (an item's samples together), and the scopes statistics are computed
//! on.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::SummarizeError;
use crate::run::journal::JournalEntry;
use crate::run::plan::Plan;
use crate::stats;
use crate::summary::{ALL, PassAtK, SuiteInfo};

/// A (suite, task id) key.
pub(super) type Key<'a> = (&'a str, &'a str);

/// Each model's items by key.
pub(super) type ByModel<'a> = BTreeMap<&'a str, HashMap<Key<'a>, Item<'a>>>;

/// A slice of the run statistics are computed on: a suite (or [`ALL`]),
/// an optional category, and the keys in it.
pub(super) struct Scope<'a> {
    pub suite: String,
    pub category: Option<String>,
    pub keys: Vec<Key<'a>>,
}

/// The (suite, task id) keys the plan asks, in order.
pub(super) fn planned(plan: &Plan) -> BTreeSet<Key<'_>> {
    plan.suites
        .iter()
        .flat_map(|s| s.items.iter().map(move |i| (s.name(), i.task.id.as_str())))
        .collect()
}

/// The samples each suite draws per item.
pub(super) fn samples(plan: &Plan) -> HashMap<&str, u32> {
    plan.suites.iter().map(|s| (s.name(), s.samples)).collect()
}

/// Each model's items: the journal lines of `planned` keys (a journal may
/// hold items of a larger limit) and of samples below the suite's count
/// (one for a suite not in `samples`), grouped by model and key. A journal
/// holds each sample once; if a sample appears twice, its last line counts.
pub(super) fn by_model<'a>(
    entries: &'a [JournalEntry],
    planned: &BTreeSet<Key<'_>>,
    samples: &HashMap<&str, u32>,
) -> ByModel<'a> {
    let mut by_sample: BTreeMap<&str, HashMap<Key, Vec<&JournalEntry>>> = BTreeMap::new();
    for e in entries {
        let wanted = samples.get(e.suite.as_str()).copied().unwrap_or(1);
        if e.sample < wanted && planned.contains(&(e.suite.as_str(), e.task_id.as_str())) {
            let answers = by_sample
                .entry(e.model.as_str())
                .or_default()
                .entry((e.suite.as_str(), e.task_id.as_str()))
                .or_default();
            answers.retain(|a| a.sample != e.sample);
            answers.push(e);
        }
    }
    by_sample
        .into_iter()
        .map(|(model, items)| {
            let items = items.into_iter().map(|(k, v)| (k, Item::of(v))).collect();
            (model, items)
        })
        .collect()
}

/// The plan's suites as the summary describes them.
pub(super) fn suite_infos(plan: &Plan) -> Vec<SuiteInfo> {
    plan.suites
        .iter()
        .map(|ps| {
            let categories: BTreeSet<&str> =
                ps.items.iter().map(|i| i.task.category.as_str()).collect();
            SuiteInfo {
                name: ps.name().to_string(),
                version: ps.suite.config.version.clone(),
                split: ps.split.clone(),
                items: ps.items.len(),
                categories: categories.iter().map(|c| c.to_string()).collect(),
            }
        })
        .collect()
}

/// The scopes of a run: each suite, each of its categories, and (with
/// several suites) [`ALL`] over `planned`.
pub(super) fn scopes<'a>(plan: &'a Plan, planned: &BTreeSet<Key<'a>>) -> Vec<Scope<'a>> {
    let mut scopes = Vec::new();
    for ps in &plan.suites {
        let keys: Vec<_> = ps
            .items
            .iter()
            .map(|i| (ps.name(), i.task.id.as_str()))
            .collect();
        scopes.push(Scope {
            suite: ps.name().to_string(),
            category: None,
            keys,
        });
        let mut cats: BTreeMap<&str, Vec<Key>> = BTreeMap::new();
        for i in &ps.items {
            cats.entry(i.task.category.as_str())
                .or_default()
                .push((ps.name(), i.task.id.as_str()));
        }
        for (c, keys) in cats {
            scopes.push(Scope {
                suite: ps.name().to_string(),
                category: Some(c.to_string()),
                keys,
            });
        }
    }
    if plan.suites.len() > 1 {
        scopes.push(Scope {
            suite: ALL.to_string(),
            category: None,
            keys: planned.iter().copied().collect(),
        });
    }
    scopes
}

/// One item of one model: its samples (one unless the suite draws several).
pub(super) struct Item<'a> {
    /// Mean score over the samples: with binary scores, the unbiased pass@1.
    pub score: f64,
    /// Whether any sample's last model call failed: the item has no answer
    /// (it scores 0, and a teacher's is left out of the pairs).
    pub errored: bool,
    /// Whether any sample's model call ever failed, earlier attempts asked
    /// again included (counted as an error in the error rate).
    pub ever_errored: bool,
    /// Samples scoring 1.
    pub correct: u64,
    /// The journal lines, one per sample.
    pub answers: Vec<&'a JournalEntry>,
}

impl<'a> Item<'a> {
    pub fn of(mut answers: Vec<&'a JournalEntry>) -> Self {
        answers.sort_by_key(|a| a.sample);
        let n = answers.len().max(1) as f64;
        Item {
            score: answers.iter().map(|a| a.score).sum::<f64>() / n,
            errored: answers.iter().any(|a| a.error.is_some()),
            ever_errored: answers.iter().any(|a| a.ever_errored()),
            correct: answers.iter().filter(|a| a.score >= 1.0).count() as u64,
            answers,
        }
    }

    pub fn cost(&self) -> f64 {
        self.answers.iter().map(|a| a.cost).sum()
    }
}

/// Items with at least two samples and the mean of their sample variances
/// (`k - 1` denominator); `None` when no item has two samples.
pub(super) fn sample_variance(items: &[&Item]) -> Option<(usize, f64)> {
    let variances: Vec<f64> = items
        .iter()
        .filter(|i| i.answers.len() >= 2)
        .map(|i| {
            let k = i.answers.len() as f64;
            let mean = i.answers.iter().map(|a| a.score).sum::<f64>() / k;
            i.answers
                .iter()
                .map(|a| (a.score - mean) * (a.score - mean))
                .sum::<f64>()
                / (k - 1.0)
        })
        .collect();
    (!variances.is_empty()).then(|| {
        (
            variances.len(),
            variances.iter().sum::<f64>() / variances.len() as f64,
        )
    })
}

/// The `k` values reported (with the number of samples itself).
const PASS_AT: [u64; 7] = [1, 2, 5, 10, 20, 50, 100];

/// pass@k (unbiased estimator, mean over items) for every `k` in
/// [`PASS_AT`] up to the fewest samples any item has, and for that number;
/// empty when items have one sample.
pub(super) fn pass_at_k(items: &[&Item]) -> Result<Vec<PassAtK>, SummarizeError> {
    let Some(fewest) = items.iter().map(|i| i.answers.len() as u64).min() else {
        return Ok(Vec::new());
    };
    if fewest < 2 {
        return Ok(Vec::new());
    }
    let mut ks: Vec<u64> = PASS_AT.iter().copied().filter(|&k| k < fewest).collect();
    ks.push(fewest);
    ks.into_iter()
        .map(|k| {
            let mut total = 0.0;
            for item in items {
                total += stats::pass_at_k(item.answers.len() as u64, item.correct, k)?;
            }
            Ok(PassAtK {
                k,
                value: total / items.len() as f64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::journal::Role;

    fn entry(model: &str, suite: &str, task: &str, sample: u32, score: f64) -> JournalEntry {
        JournalEntry {
            sample,
            output: Some("x".into()),
            score,
            cost: 0.25,
            ..JournalEntry::new(model, Role::Student, suite, task, "c")
        }
    }

    #[test]
    fn only_planned_items_and_samples_are_grouped_and_a_repeated_sample_keeps_its_last_line() {
        let entries = vec![
            entry("a", "s", "t1", 0, 0.0),
            entry("a", "s", "t1", 1, 1.0),
            entry("a", "s", "t1", 0, 1.0), // the same sample again: this line counts
            entry("a", "s", "t1", 2, 1.0), // beyond the suite's 2 samples
            entry("a", "s", "t9", 0, 1.0), // not planned (a larger limit)
            entry("a", "other", "t1", 0, 1.0), // another suite, one sample
            entry("b", "s", "t1", 0, 0.0),
        ];
        let planned: BTreeSet<Key> = [("s", "t1"), ("other", "t1")].into_iter().collect();
        let samples: HashMap<&str, u32> = [("s", 2)].into_iter().collect();
        let grouped = by_model(&entries, &planned, &samples);
        assert_eq!(grouped.keys().copied().collect::<Vec<_>>(), ["a", "b"]);
        let a = &grouped["a"];
        assert_eq!(a.len(), 2);
        let t1 = &a[&("s", "t1")];
        assert_eq!(t1.answers.len(), 2);
        assert_eq!(t1.score, 1.0);
        assert_eq!(t1.correct, 2);
        assert_eq!(t1.cost(), 0.5);
        assert_eq!(a[&("other", "t1")].answers.len(), 1);
        assert_eq!(grouped["b"][&("s", "t1")].score, 0.0);
    }

    #[test]
    fn an_item_scores_the_mean_of_its_samples_and_remembers_failed_calls() {
        let failed = JournalEntry {
            error: Some("timeout".into()),
            output: None,
            ..entry("a", "s", "t", 1, 0.0)
        };
        let right = entry("a", "s", "t", 0, 1.0);
        let item = Item::of(vec![&failed, &right]);
        assert_eq!(item.answers[0].sample, 0, "samples in order");
        assert_eq!(item.score, 0.5);
        assert!(item.errored && item.ever_errored);
        assert_eq!(item.correct, 1);
    }

    /// pass@k against the closed form 1 - C(n - c, k) / C(n, k), and the
    /// sample variance against a hand computation.
    #[test]
    fn pass_at_k_and_sample_variance_over_items() {
        let e: Vec<JournalEntry> = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0]
            .iter()
            .enumerate()
            .map(|(i, &s)| entry("a", "s", if i < 4 { "t1" } else { "t2" }, i as u32 % 4, s))
            .collect();
        let t1 = Item::of(e[..4].iter().collect());
        let t2 = Item::of(e[4..].iter().collect());
        let got = pass_at_k(&[&t1, &t2]).unwrap();
        // n = 4 per item, c = 1 and 3: pass@1 = (1/4 + 3/4) / 2; pass@2 =
        // ((1 - 3/6) + (1 - 0/6)) / 2; pass@4 = 1.
        let want = [(1, 0.5), (2, 0.75), (4, 1.0)];
        assert_eq!(got.len(), want.len());
        for (p, (k, v)) in got.iter().zip(want) {
            assert_eq!(p.k, k);
            assert!((p.value - v).abs() < 1e-12, "pass@{k} = {}", p.value);
        }
        // Each item's variance with k - 1 = 3: (1 * 0.75^2 + 3 * 0.25^2) / 3 = 0.25.
        let (n, v) = sample_variance(&[&t1, &t2]).unwrap();
        assert_eq!(n, 2);
        assert!((v - 0.25).abs() < 1e-12, "{v}");
        let single = Item::of(vec![&e[0]]);
        assert!(pass_at_k(&[&single]).unwrap().is_empty());
        assert_eq!(sample_variance(&[&single]), None);
    }
}
