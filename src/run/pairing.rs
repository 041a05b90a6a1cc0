//! Item scores from a journal, and pairing them across models or runs by
//! suite and task id.
//!
//! An item's score is the mean of its samples' scores (one sample unless the
//! suite draws several), as in the run summary; an item with any failed
//! model call is marked errored. Latency and cost keep every sample.

use std::collections::BTreeMap;

use crate::model::LatencySource;
use crate::run::journal::JournalEntry;

/// (suite, task id): how items are matched across models and runs.
pub type ItemKey = (String, String);

/// One model's result on one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemScore {
    /// The task's category.
    pub category: String,
    /// Mean score over the item's samples, in [0, 1].
    pub score: f64,
    /// Whether any sample's model call failed.
    pub errored: bool,
    /// Dollars for all samples.
    pub cost: f64,
    /// Latency of each sample that has one, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Whether any of those latencies was measured earlier (a replayed
    /// transcript or a response cache), not in the run.
    pub recorded_latency: bool,
}

impl ItemScore {
    /// Whether the item counts as right for McNemar (every sample scored 1).
    pub fn right(&self) -> bool {
        self.score >= 1.0
    }
}

/// Every model's items in a journal: model name → item key → score.
pub fn item_scores(entries: &[JournalEntry]) -> BTreeMap<String, BTreeMap<ItemKey, ItemScore>> {
    let mut samples: BTreeMap<&str, BTreeMap<ItemKey, BTreeMap<u32, &JournalEntry>>> =
        BTreeMap::new();
    for e in entries {
        // A journal holds each sample once; the last line wins, as in the summary.
        samples
            .entry(e.model.as_str())
            .or_default()
            .entry((e.suite.clone(), e.task_id.clone()))
            .or_default()
            .insert(e.sample, e);
    }
    samples
        .into_iter()
        .map(|(model, items)| {
            let items = items
                .into_iter()
                .map(|(key, answers)| {
                    let answers: Vec<&JournalEntry> = answers.into_values().collect();
                    let n = answers.len().max(1) as f64;
                    let score = ItemScore {
                        category: answers
                            .first()
                            .map(|a| a.category.clone())
                            .unwrap_or_default(),
                        score: answers.iter().map(|a| a.score).sum::<f64>() / n,
                        errored: answers.iter().any(|a| a.error.is_some()),
                        cost: answers.iter().map(|a| a.cost).sum(),
                        latencies_ms: answers
                            .iter()
                            .filter_map(|a| a.latency.map(|l| l.total_ms))
                            .collect(),
                        recorded_latency: answers
                            .iter()
                            .any(|a| a.latency.is_some_and(|l| l.source != LatencySource::Live)),
                    };
                    (key, score)
                })
                .collect();
            (model.to_string(), items)
        })
        .collect()
}

/// The items of `suite` both maps hold, in key order, as pairs.
pub fn pairs<'a>(
    suite: &str,
    a: &'a BTreeMap<ItemKey, ItemScore>,
    b: &'a BTreeMap<ItemKey, ItemScore>,
) -> Vec<(&'a ItemKey, &'a ItemScore, &'a ItemScore)> {
    a.iter()
        .filter(|(k, _)| k.0 == suite)
        .filter_map(|(k, x)| b.get(k).map(|y| (k, x, y)))
        .collect()
}

/// How many items of `suite` a map holds.
pub fn count_in(suite: &str, items: &BTreeMap<ItemKey, ItemScore>) -> usize {
    items.keys().filter(|k| k.0 == suite).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::journal::Role;

    pub(crate) fn entry(model: &str, task: &str, sample: u32, score: f64) -> JournalEntry {
        JournalEntry {
            sample,
            output: Some("x".into()),
            score,
            cost: 0.5,
            ..JournalEntry::new(model, Role::Student, "s", task, "c")
        }
    }

    #[test]
    fn samples_average_and_pairs_match_by_suite_and_id() {
        let entries = vec![
            entry("a", "t1", 0, 1.0),
            entry("a", "t1", 1, 0.0),
            entry("a", "t2", 0, 1.0),
            entry("b", "t2", 0, 0.0),
            entry("b", "t3", 0, 1.0),
        ];
        let items = item_scores(&entries);
        let a = &items["a"];
        let t1 = &a[&("s".to_string(), "t1".to_string())];
        assert_eq!(t1.score, 0.5);
        assert_eq!(t1.cost, 1.0);
        assert!(!t1.right());
        let p = pairs("s", a, &items["b"]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0.1, "t2");
        assert_eq!((p[0].1.score, p[0].2.score), (1.0, 0.0));
        assert_eq!(count_in("s", a), 2);
        assert!(pairs("other", a, &items["b"]).is_empty());
    }
}
