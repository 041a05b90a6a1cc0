//! Orchestration: plan the run, execute it against the journal, summarise.

pub mod answers;
pub mod contamination;
pub mod execute;
pub mod identity;
pub mod in_flight;
pub mod journal;
pub mod merge;
pub mod pairing;
pub mod plan;
pub mod prepare;
pub mod progress;
pub mod record;
pub mod shard;
pub mod summarize;
pub mod swap;
pub mod timings;
