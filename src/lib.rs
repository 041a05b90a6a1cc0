//! distill-gate: decides, with evidence, whether a distilled student model may
//! replace its teacher.

pub mod llm;
pub mod model;
pub mod score;
pub mod suite;
