//! Merging shard runs (`run --shard i/N`) into one run.
//!
//! Shards are refused unless they all come from the same config (by content
//! hash), measured the same models (same fingerprints in their
//! `summary.json`), were split the same number of ways, and together are
//! every shard exactly once. The merged journal holds every planned (model,
//! task, sample) exactly once, each from the shard the item belongs to, in
//! the order an unsharded run journals them; so its summary equals that of
//! the unsharded run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::run::execute::RunManifest;
use crate::run::journal::{self, JournalEntry, WorkKey};
use crate::run::plan::Plan;
use crate::run::shard::Shard;
use crate::summary::{ModelInfo, Summary};

/// One finished shard run, as read from its directory.
#[derive(Debug, Clone)]
pub struct ShardRun {
    /// The run directory.
    pub dir: PathBuf,
    /// Its `run.json`.
    pub manifest: RunManifest,
    /// The shard it is (from `run.json`).
    pub shard: Shard,
    /// Its journal.
    pub entries: Vec<JournalEntry>,
    /// The models as its `summary.json` describes them.
    pub models: Vec<ModelInfo>,
}

/// Why shards cannot be merged (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No run directory was given.
    #[error("merge needs at least one shard run directory")]
    NoShards,
    /// A file of a run directory could not be read.
    #[error("{}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A run directory is not a shard.
    #[error("{}: not a shard run (run.json has no shard; runs made with `run --shard i/N` are)", dir.display())]
    NotAShard {
        /// The run directory.
        dir: PathBuf,
    },
    /// Two shards disagree on something that must be equal.
    #[error("{} and {} {what}: {first} vs {second}", first_dir.display(), second_dir.display())]
    Mismatch {
        /// The first shard's directory.
        first_dir: PathBuf,
        /// The other shard's directory.
        second_dir: PathBuf,
        /// What differs, e.g. "were made with different configs".
        what: String,
        /// The first shard's value.
        first: String,
        /// The other shard's value.
        second: String,
    },
    /// The same shard was given twice.
    #[error("shard {shard} is given twice: {} and {}", first.display(), second.display())]
    Overlap {
        /// The shard.
        shard: Shard,
        /// Its first directory.
        first: PathBuf,
        /// Its second directory.
        second: PathBuf,
    },
    /// Some shards are missing.
    #[error("shards missing: {} (of {count}); merge needs every shard", missing.iter().map(|i| format!("{i}/{count}")).collect::<Vec<_>>().join(", "))]
    Missing {
        /// The missing shard indices.
        missing: Vec<u32>,
        /// The shard count.
        count: u32,
    },
    /// A shard's journal does not hold what its shard should.
    #[error("{}: {message}", dir.display())]
    Journal {
        /// The shard's run directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The config given is not the one the shards ran.
    #[error(
        "{} is not the config the shards ran (its content differs from their config_sha256)",
        config.display()
    )]
    ConfigDiffers {
        /// The config.
        config: PathBuf,
    },
    /// The merged run's directory already holds a journal.
    #[error("{} already holds a journal; merge into a new directory", dir.display())]
    JournalExists {
        /// The directory.
        dir: PathBuf,
    },
}

/// Reads a shard run directory: `run.json`, `summary.json`, `results.jsonl`.
pub fn read_shard(dir: &Path) -> Result<ShardRun, MergeError> {
    let manifest: RunManifest = read_json(&dir.join("run.json"))?;
    let Some(shard) = manifest.shard else {
        return Err(MergeError::NotAShard {
            dir: dir.to_path_buf(),
        });
    };
    let summary: Summary = read_json(&dir.join("summary.json"))?;
    let journal_path = dir.join("results.jsonl");
    let entries = journal::read(&journal_path).map_err(|p| MergeError::Read {
        path: journal_path,
        message: p.to_string(),
    })?;
    Ok(ShardRun {
        dir: dir.to_path_buf(),
        manifest,
        shard,
        entries,
        models: summary.models,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, MergeError> {
    let text = std::fs::read_to_string(path).map_err(|e| MergeError::Read {
        path: path.to_path_buf(),
        message: format!("{e} (is this a finished run directory?)"),
    })?;
    serde_json::from_str(&text).map_err(|e| MergeError::Read {
        path: path.to_path_buf(),
        message: format!("malformed: {e}"),
    })
}

/// Checks that `shards` are every shard of one run exactly once, made with
/// the same config and models. Returns the manifest of the merged run.
pub fn check_shards(shards: &[ShardRun]) -> Result<RunManifest, MergeError> {
    let first = shards.first().ok_or(MergeError::NoShards)?;
    let mismatch = |other: &ShardRun, what: &str, a: String, b: String| MergeError::Mismatch {
        first_dir: first.dir.clone(),
        second_dir: other.dir.clone(),
        what: what.to_string(),
        first: a,
        second: b,
    };
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for s in shards {
        if s.manifest.config_sha256 != first.manifest.config_sha256 {
            return Err(mismatch(
                s,
                "were made with different configs (config_sha256)",
                first.manifest.config_sha256.clone(),
                s.manifest.config_sha256.clone(),
            ));
        }
        if s.shard.count != first.shard.count {
            return Err(mismatch(
                s,
                "split the run a different number of ways",
                first.shard.to_string(),
                s.shard.to_string(),
            ));
        }
        if let Some(m) = model_difference(&first.models, &s.models) {
            return Err(mismatch(s, "measured different models", m.0, m.1));
        }
        if let Some(prev) = seen.insert(s.shard.index, &s.dir) {
            return Err(MergeError::Overlap {
                shard: s.shard,
                first: prev.to_path_buf(),
                second: s.dir.clone(),
            });
        }
    }
    let count = first.shard.count;
    let missing: Vec<u32> = (1..=count).filter(|i| !seen.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }
    Ok(RunManifest {
        shard: None,
        ..first.manifest.clone()
    })
}

/// The first model (name, backend or fingerprint) two shards disagree on.
fn model_difference(a: &[ModelInfo], b: &[ModelInfo]) -> Option<(String, String)> {
    let describe = |m: Option<&ModelInfo>| {
        m.map_or("(none)".to_string(), |m| {
            format!("{} {} (model id {})", m.name, m.fingerprint, m.model_id)
        })
    };
    let n = a.len().max(b.len());
    (0..n).find_map(|i| {
        let (x, y) = (a.get(i), b.get(i));
        let same = match (x, y) {
            (Some(x), Some(y)) => {
                x.name == y.name
                    && x.fingerprint == y.fingerprint
                    && x.backend == y.backend
                    && x.model_id == y.model_id
            }
            _ => false,
        };
        (!same).then(|| (describe(x), describe(y)))
    })
}

/// The merged journal of checked shards under the unsharded `plan`: every
/// planned (model, task, sample) exactly once, from the shard that owns the
/// item, in the order an unsharded run writes them (models teacher first,
/// then suites in plan order, each suite's items and samples in
/// [`asking_order`](crate::run::plan::PlannedSuite::asking_order)).
pub fn merge_entries(plan: &Plan, shards: &[ShardRun]) -> Result<Vec<JournalEntry>, MergeError> {
    let mut by_key: HashMap<WorkKey, (JournalEntry, &Path)> = HashMap::new();
    for s in shards {
        let journal_error = |message: String| MergeError::Journal {
            dir: s.dir.clone(),
            message,
        };
        for e in &s.entries {
            if !s.shard.contains(&e.suite, &e.task_id) {
                return Err(journal_error(format!(
                    "its journal holds {}/{} of model {}, which belongs to shard {}/{}",
                    e.suite,
                    e.task_id,
                    e.model,
                    crate::run::shard::shard_of(&e.suite, &e.task_id, s.shard.count),
                    s.shard.count
                )));
            }
            // A journal holds each unit once; a repeated line replaces the earlier one.
            by_key.insert(e.work_key(), (e.clone(), &s.dir));
        }
    }
    let mut merged = Vec::with_capacity(by_key.len());
    let mut missing: BTreeSet<(u32, String)> = BTreeSet::new();
    for spec in plan.config.models() {
        for suite in &plan.suites {
            for (item, sample) in suite.asking_order(spec) {
                let key = WorkKey {
                    model: spec.name.clone(),
                    suite: suite.name().to_string(),
                    task_id: item.task.id.clone(),
                    sample,
                };
                match by_key.remove(&key) {
                    Some((entry, _)) => merged.push(entry),
                    None => {
                        let owner = crate::run::shard::shard_of(
                            suite.name(),
                            &item.task.id,
                            shards.first().map_or(1, |s| s.shard.count),
                        );
                        missing.insert((
                            owner,
                            format!(
                                "{} {}/{} sample {sample}",
                                spec.name, key.suite, key.task_id
                            ),
                        ));
                    }
                }
            }
        }
    }
    if let Some((owner, what)) = missing.iter().next() {
        let dir = shards
            .iter()
            .find(|s| s.shard.index == *owner)
            .map_or_else(PathBuf::new, |s| s.dir.clone());
        return Err(MergeError::Journal {
            dir,
            message: format!(
                "shard {owner} is incomplete: {} planned result(s) missing, first {what}; \
                 finish it by running the shard again (it resumes)",
                missing.iter().filter(|(o, _)| o == owner).count()
            ),
        });
    }
    if let Some((key, (_, dir))) = by_key.iter().next() {
        return Err(MergeError::Journal {
            dir: dir.to_path_buf(),
            message: format!(
                "its journal holds {} {}/{} sample {}, which the config does not plan",
                key.model, key.suite, key.task_id, key.sample
            ),
        });
    }
    Ok(merged)
}
