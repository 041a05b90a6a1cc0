//! Sequence-level knowledge distillation: train a small Llama-family student
//! on a teacher's transcripts so it learns `p(completion | prompt)`.
//!
//! The stages, each a module: [`data`] (training pairs from transcripts and a
//! stable train/validation split), [`bpe`] (a small byte-level BPE tokenizer
//! trained on the training text), [`examples`] (token sequences with the
//! prompt masked out of the loss), [`loss`] (cross-entropy on the
//! completion tokens and the KL term of token-level distillation),
//! [`teacher`] (a local teacher model whose logits and tokenizer the student
//! learns from, when given), [`tasks`] (a task-specific student's suites,
//! categories and prompt template),
//! [`schedule`] (warmup + cosine learning rate), [`clip`] (global gradient
//! norm clipping), [`adamw`] (the optimizer) and [`train`] (the loop, checkpoints, resume, the log).

pub mod adamw;
pub mod bpe;
pub mod clip;
pub mod data;
pub mod error;
pub mod examples;
pub mod loss;
pub mod schedule;
pub mod tasks;
pub mod teacher;
pub mod train;

pub use error::DistillError;
pub use teacher::TeacherOptions;
pub use train::{DistillOptions, DistillSummary, StudentShape, TrainEvent, distill};
