//! Orchestration: plan the run, execute it against the journal, summarise.

pub mod contamination;
pub mod execute;
pub mod identity;
pub mod in_flight;
pub mod journal;
pub mod merge;
pub mod pairing;
pub mod parallel;
pub mod plan;
pub mod progress;
pub mod shard;
pub mod summarize;
pub mod swap;
pub mod timings;
