//! The first stage: a config, its suites and its models checked, and the
//! plan built, before any model runs (`validate`, `run`, `report`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{self, ModelSource};
use crate::fingerprint::sha256_hex;
use crate::run::execute::{self, RunError};
use crate::run::plan::{self, Plan};

/// A checked config's plan and the config's identity.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The config with its suites loaded and requests built.
    pub plan: Plan,
    /// SHA-256 of the config file, as `run.json` records it.
    pub config_sha256: String,
}

/// Loads the config at `config_path` and its suites, and checks every model
/// before any runs, so no answer is lost to a checkpoint that cannot be
/// opened: local checkpoints are inspected, every replay transcript and
/// answers file must cover the plan (and an answers file answer nothing else), and code is refused when the sandbox cannot isolate it
/// here (and `[run] unsafe_sandbox` does not allow that). Every problem
/// found is returned together. `supplied` holds the fingerprints of the
/// models a program supplies for `kind = "custom"` entries, by entry name
/// (empty for the command line, which refuses such entries). Sets the
/// sandbox's `unsafe_sandbox` permission from the config; says each
/// contamination warning on stderr.
pub fn prepare(
    config_path: &Path,
    supplied: &BTreeMap<String, String>,
) -> Result<Prepared, RunError> {
    let config = config::load(config_path)?;
    crate::sandbox::allow_unsafe(config.run.unsafe_sandbox);
    let bytes = std::fs::read(config_path).map_err(|source| RunError::Io {
        path: config_path.to_path_buf(),
        source,
    })?;
    let mut problems = crate::model::open::source_problems(&config, supplied);
    let plan = match plan::plan(config) {
        Ok(p) => p,
        Err(p) => {
            problems.extend(p.0);
            return Err(RunError::Input(crate::diagnostics::Problems(problems)));
        }
    };
    // Replay transcripts and answers files are read and checked on one
    // thread per core.
    let coverage = crate::parallel::map_in_order(plan.config.models().collect(), |spec| {
        match &spec.source {
            ModelSource::Replay { transcript: file } | ModelSource::Answers { answers: file }
                if !file.exists() =>
            {
                Ok(()) // reported above
            }
            _ => execute::check_coverage(&plan, spec),
        }
    });
    for covered in coverage {
        if let Err(p) = covered {
            problems.extend(p.0);
        }
    }
    if plan.scores_code()
        && let Err(why) = crate::sandbox::isolation_here()
    {
        problems.push(plan.config.problem("run.unsafe_sandbox", why));
    }
    if !problems.is_empty() {
        return Err(RunError::Input(crate::diagnostics::Problems(problems)));
    }
    for c in &plan.contamination {
        eprintln!("warning: contamination: {}", c.describe());
    }
    Ok(Prepared {
        plan,
        config_sha256: sha256_hex(&bytes),
    })
}
