//! distill-gate: decides, with evidence, whether a distilled student model may
//! replace its teacher.

pub mod allocator;
pub mod calibration;
pub mod compare;
pub mod config;
pub mod cost;
pub mod diagnostics;
pub mod distill;
pub mod error;
pub(crate) mod fields;
pub mod fingerprint;
pub mod gate;
pub mod jsonl;
pub mod llm;
pub mod measure;
pub mod model;
pub mod parallel;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod score;
pub mod stats;
pub mod student;
pub mod suite;
pub mod summary;
