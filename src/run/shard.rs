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

impl Shard {
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
