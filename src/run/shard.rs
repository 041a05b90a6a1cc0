//! Sharding a run: `--shard i/N` keeps the items whose shard number is `i`.
//!
//! An item's shard is decided by its identity, never by its position: the
//! first eight bytes of SHA-256(`suite name`, a 0 byte, `task id`), read as
//! a big-endian `u64`, modulo `N`, plus one. Adding, removing or reordering
//! items in a suite file therefore moves no other item to another shard, and
//! every machine computes the same split. Shards are numbered from 1 to `N`
//! (as `--shard 1/4` ... `--shard 4/4`); every item is in exactly one.
//! Shards are only roughly equal in size (a hash, not a deal of cards).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::run::plan::Plan;

/// One slice of a run: shard `index` of `count` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// Which shard, from 1 to `count`.
    pub index: u32,
    /// How many shards the run is split into (at least 1).
    pub count: u32,
}

/// A `--shard` value that is not `i/N` with `1 <= i <= N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard {given:?}: {why} (expected i/N with 1 <= i <= N, e.g. 2/8)")]
pub struct ShardParseError {
    /// The text given.
    pub given: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl FromStr for Shard {
    type Err = ShardParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ShardParseError {
            given: s.to_string(),
            why,
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(|| err("no '/'"))?;
        let index: u32 = i.trim().parse().map_err(|_| err("i is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| err("N is not a number"))?;
        Shard::new(index, count).ok_or_else(|| err("i is out of range"))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Why a scheduler's shard index could not be used
/// (`--shard-index-from VAR --shard-count N`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardIndexError {
    /// The variable is not set.
    #[error("--shard-index-from {var}: the variable is not set in this job's environment")]
    Unset {
        /// The variable's name.
        var: String,
    },
    /// Its value is not a whole number, or is out of range.
    #[error(
        "--shard-index-from {var}: {var}={value:?} {why} (--shard-count {count}, \
         --shard-base {base}: expected {base} to {})",
        *base as u64 + *count as u64 - 1
    )]
    Invalid {
        /// The variable's name.
        var: String,
        /// Its value.
        value: String,
        /// What is wrong.
        why: &'static str,
        /// The shard count given.
        count: u32,
        /// The index of the first shard.
        base: u32,
    },
}

impl Shard {
    /// The shard a scheduler's index names: `value` of the variable `var`
    /// (`None`: unset), where the first shard is `base` (0 for Kubernetes'
    /// `JOB_COMPLETION_INDEX` and GitHub's `strategy.job-index`; Slurm's
    /// `SLURM_ARRAY_TASK_ID` starts where the `--array` range does).
    pub fn from_scheduler(
        var: &str,
        value: Option<&str>,
        base: u32,
        count: u32,
    ) -> Result<Self, ShardIndexError> {
        let value = value.ok_or_else(|| ShardIndexError::Unset {
            var: var.to_string(),
        })?;
        let invalid = |why| ShardIndexError::Invalid {
            var: var.to_string(),
            value: value.to_string(),
            why,
            count,
            base,
        };
        if count == 0 {
            return Err(invalid("cannot name a shard of 0"));
        }
        let index: u64 = value
            .trim()
            .parse()
            .map_err(|_| invalid("is not a whole number"))?;
        let first = index
            .checked_sub(u64::from(base))
            .ok_or_else(|| invalid("is below the first shard"))?;
        u32::try_from(first + 1)
            .ok()
            .and_then(|i| Shard::new(i, count))
            .ok_or_else(|| invalid("is past the last shard"))
    }

    /// Shard `index` of `count`, or `None` unless `1 <= index <= count`.
    pub fn new(index: u32, count: u32) -> Option<Self> {
        (index >= 1 && index <= count).then_some(Self { index, count })
    }

    /// Whether the item `task_id` of `suite` belongs to this shard.
    pub fn contains(&self, suite: &str, task_id: &str) -> bool {
        shard_of(suite, task_id, self.count) == self.index
    }

    /// The name of the shard's run directory inside the run's: `shard-2-of-8`.
    pub fn dir_name(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// The plan restricted to this shard's items (suites keep their place
    /// even when none of their items is in the shard).
    pub fn apply(&self, mut plan: Plan) -> Plan {
        for suite in &mut plan.suites {
            let name = suite.name().to_string();
            suite.items.retain(|i| self.contains(&name, &i.task.id));
        }
        plan
    }
}

/// The shard (1 to `count`) an item belongs to when a run is split `count`
/// ways; `count = 0` is treated as 1.
pub fn shard_of(suite: &str, task_id: &str, count: u32) -> u32 {
    let mut h = Sha256::new();
    h.update(suite.as_bytes());
    h.update([0u8]);
    h.update(task_id.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedulers_index_names_a_shard_from_its_base() {
        let shard = |value: Option<&str>, base| Shard::from_scheduler("IDX", value, base, 4);
        // Kubernetes and GitHub: 0-based.
        assert_eq!(shard(Some("0"), 0), Ok(Shard { index: 1, count: 4 }));
        assert_eq!(shard(Some("3"), 0), Ok(Shard { index: 4, count: 4 }));
        // Slurm --array=1-4, and a range that starts at 10.
        assert_eq!(shard(Some("1"), 1), Ok(Shard { index: 1, count: 4 }));
        assert_eq!(shard(Some("13"), 10), Ok(Shard { index: 4, count: 4 }));
        let message = |r: Result<Shard, ShardIndexError>| r.unwrap_err().to_string();
        assert_eq!(
            message(shard(None, 0)),
            "--shard-index-from IDX: the variable is not set in this job's environment"
        );
        assert_eq!(
            message(shard(Some("4"), 0)),
            "--shard-index-from IDX: IDX=\"4\" is past the last shard (--shard-count 4, \
             --shard-base 0: expected 0 to 3)"
        );
        assert!(message(shard(Some("0"), 1)).contains("is below the first shard"));
        assert!(message(shard(Some("two"), 0)).contains("is not a whole number"));
        assert!(message(Shard::from_scheduler("IDX", Some("0"), 0, 0)).contains("of 0"));
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard { index: 2, count: 8 }));
        assert_eq!(
            " 1 / 1 ".parse::<Shard>().map(|s| s.to_string()),
            Ok("1/1".into())
        );
        for bad in ["0/4", "5/4", "1", "a/4", "1/b", "1/0", "-1/4"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn every_item_is_in_exactly_one_shard() {
        for count in [1u32, 2, 3, 7] {
            for i in 0..200 {
                let id = format!("t-{i}");
                let owners = (1..=count)
                    .filter(|&k| Shard::new(k, count).unwrap().contains("s", &id))
                    .count();
                assert_eq!(owners, 1, "{id} in {count} shards");
            }
        }
    }

    #[test]
    fn shard_depends_on_identity_only() {
        // Reference values from Python's hashlib:
        //   d = hashlib.sha256(suite + b"\x00" + id).digest()
        //   int.from_bytes(d[:8], "big") % N + 1
        assert_eq!(shard_of("coding", "t-1", 4), 2);
        assert_eq!(shard_of("coding", "t-1", 7), 2);
        assert_eq!(shard_of("logistics", "rate_quote-test-0001", 4), 2);
        assert_eq!(shard_of("logistics", "rate_quote-test-0001", 7), 5);
        // The suite is part of the identity and separated from the id.
        let spread: std::collections::BTreeSet<u32> = (0..64)
            .map(|i| shard_of(&format!("s{i}"), "x", 4))
            .collect();
        assert_eq!(spread.len(), 4);
        // Sizes are roughly even: 4,000 items over 4 shards.
        let mut sizes = [0usize; 4];
        for i in 0..4000 {
            sizes[(shard_of("s", &i.to_string(), 4) - 1) as usize] += 1;
        }
        assert!(sizes.iter().all(|&n| (850..1150).contains(&n)), "{sizes:?}");
    }
}
