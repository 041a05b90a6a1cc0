//! What stops a command, how it is said, and the exit code it gives: the one
//! path from an error to an exit code (as cargo-nextest's
//! `ExpectedError::process_exit_code`).
//!
//! Exit codes (DESIGN.md): 0 every gate passed, 1 a gate failed or was
//! inconclusive (a finished run's [`Summary::exit_code`]), [`EXIT_BROKEN`]
//! the run could not be evaluated: every [`Error`].
//!
//! Each stage keeps its own error type; this one gathers them at the top,
//! and nothing below imports it.
//!
//! [`Summary::exit_code`]: crate::summary::Summary::exit_code

use crate::compare::CompareError;
use crate::diagnostics::Problems;
use crate::distill::DistillError;
use crate::llm::LlmError;
use crate::pipeline::PipelineError;
use crate::plan::PlanError;
use crate::report::summary_md::AppendError;
use crate::run::execute::RunError;
use crate::run::record::RecordError;
use crate::run::shard::ShardIndexError;
use crate::student::StudentError;
use crate::suite::SuiteError;

/// Exit code when the run could not be evaluated (bad config, bad suite,
/// unreadable checkpoint, a model that cannot run): CI tells "the model is
/// worse" (1) from "the run broke" (2).
pub const EXIT_BROKEN: u8 = 2;

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in the user's files (config, suites, transcripts, journal),
    /// every one found; said one a line, then how many.
    #[error("{0}")]
    Problems(Problems),
    /// A file a command reads does not load (a suite, a HumanEval file):
    /// its problems, said as they are.
    #[error("{0}")]
    Unusable(Problems),
    /// A run could not be prepared or executed.
    #[error(transparent)]
    Run(RunError),
    /// A run, its re-report or a merge could not finish.
    #[error(transparent)]
    Pipeline(PipelineError),
    /// Recording a transcript could not go on.
    #[error(transparent)]
    Record(RecordError),
    /// Two runs cannot be compared.
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// Planning input or a run to plan for is unusable.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A checkpoint could not be loaded, saved or run.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// Training a student failed.
    #[error(transparent)]
    Distill(#[from] DistillError),
    /// A student checkpoint could not be made.
    #[error(transparent)]
    Student(#[from] StudentError),
    /// A scheduler's shard index is unusable.
    #[error(transparent)]
    Shard(#[from] ShardIndexError),
    /// The short Markdown summary could not be appended to its file.
    #[error(transparent)]
    SummaryMd(#[from] AppendError),
    /// Some of the command's work failed, and each failure was said where
    /// it was found (a suite that does not load in `suites list`, a
    /// canonical solution that fails, a prompt `generate` could not answer).
    #[error("some of the work failed (said above)")]
    Reported,
}

impl Error {
    /// The process exit code: every error means the run could not be
    /// evaluated.
    pub fn exit_code(&self) -> u8 {
        EXIT_BROKEN
    }

    /// What stderr says: problems one a line and then their count; a file
    /// that does not load or an input `record` refuses as it is; nothing
    /// for [`Error::Reported`]; anything else after `error: `, with its
    /// causes (see [`chain`]).
    pub fn message(&self) -> String {
        match self {
            Error::Problems(p) => format!(
                "{p}\nerror: the run could not be evaluated ({} problem(s))",
                p.0.len()
            ),
            Error::Unusable(p) => p.to_string(),
            Error::Record(e) if e.is_refusal() => e.to_string(),
            Error::Reported => String::new(),
            other => format!("error: {}", chain(other)),
        }
    }
}

impl From<Problems> for Error {
    fn from(p: Problems) -> Self {
        Error::Problems(p)
    }
}

impl From<SuiteError> for Error {
    fn from(e: SuiteError) -> Self {
        Error::Unusable(Problems(e.problems))
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Input(p) => Error::Problems(p),
            other => Error::Run(other),
        }
    }
}

impl From<PipelineError> for Error {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Run(e) => Error::from(e),
            other => Error::Pipeline(other),
        }
    }
}

impl From<RecordError> for Error {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Config(p) => Error::Problems(p),
            other => Error::Record(other),
        }
    }
}

/// An error and its causes joined by ": ", as anyhow's `{:#}` prints them,
/// but without a cause whose text the message already holds (an error that
/// names its I/O error would otherwise show "(os error 2)" twice).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Problem;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(2);
        let text = io.to_string();
        // An error that names its source, as thiserror's
        // `#[error("{path}: cannot read: {source}")]` does.
        #[derive(Debug, thiserror::Error)]
        #[error("x.json: cannot read: {source}")]
        struct Named {
            #[source]
            source: std::io::Error,
        }
        #[derive(Debug, thiserror::Error)]
        #[error("loading the run")]
        struct Outer(#[source] Named);
        let shown = chain(&Outer(Named { source: io }));
        assert_eq!(
            shown,
            format!("loading the run: x.json: cannot read: {text}")
        );
        assert_eq!(shown.matches(&text).count(), 1, "{shown}");
        // Causes not in the message are kept.
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Plain(#[source] std::fmt::Error);
        assert_eq!(
            chain(&Plain(std::fmt::Error)),
            format!("outer: {}", std::fmt::Error)
        );
    }

    #[test]
    fn every_error_exits_broken_and_says_itself_as_before() {
        let p = Problems(vec![
            Problem::file("a.toml", "bad"),
            Problem::new(std::path::Path::new("b.jsonl"), 3, "id", "missing"),
        ]);
        let problems = Error::from(p.clone());
        assert_eq!(problems.exit_code(), EXIT_BROKEN);
        assert_eq!(
            problems.message(),
            "a.toml: bad\nb.jsonl:3: id: missing\nerror: the run could not be evaluated (2 problem(s))"
        );
        // A run's input problems are said the same way.
        assert_eq!(
            Error::from(RunError::Input(p.clone())).message(),
            problems.message()
        );
        let suite = Error::from(SuiteError {
            problems: p.0.clone(),
        });
        assert_eq!(suite.message(), "a.toml: bad\nb.jsonl:3: id: missing");
        let model = Error::from(RunError::Model("m: gone".into()));
        assert_eq!(model.message(), "error: m: gone");
        assert_eq!(model.exit_code(), EXIT_BROKEN);
        assert_eq!(Error::Reported.message(), "");
        assert_eq!(Error::Reported.exit_code(), EXIT_BROKEN);
    }
}
