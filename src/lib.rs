//! distill-gate: decides, with evidence, whether a distilled student model may
//! replace its teacher.

pub mod gate;
pub mod llm;
pub mod model;
pub mod stats;
