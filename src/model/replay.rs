//! The replay backend: answers from a recorded transcript, never calling the
//! model that recorded it.

use std::path::Path;

use std::sync::Arc;

use super::transcript::{self, Transcript};
use super::{Completion, GenerationRequest, LatencySource, Model, ModelError, ModelIdentity};
use crate::diagnostics::Problems;

/// Answers requests from a transcript; a request that was not recorded is a
/// [`ModelError::Missing`].
#[derive(Debug)]
pub struct ReplayModel {
    name: String,
    transcript: Arc<Transcript>,
}

impl ReplayModel {
    /// Loads the transcript at `path`; `name` is the name in the config.
    pub fn open(name: &str, path: &Path) -> Result<Self, Problems> {
        Ok(Self {
            name: name.to_string(),
            transcript: transcript::read_shared(path)?,
        })
    }

    /// Number of recorded requests.
    pub fn len(&self) -> usize {
        self.transcript.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.transcript.is_empty()
    }
}

impl Model for ReplayModel {
    fn identity(&self) -> ModelIdentity {
        match &self.transcript.model {
            Some(m) => ModelIdentity {
                backend: format!("replay:{}", m.backend),
                name: m.name.clone(),
                fingerprint: m.fingerprint.clone(),
            },
            None => ModelIdentity {
                backend: "replay".into(),
                name: self.name.clone(),
                fingerprint: String::new(),
            },
        }
    }

    fn complete_batch(
        &mut self,
        requests: &[GenerationRequest],
    ) -> Vec<Result<Completion, ModelError>> {
        requests
            .iter()
            .map(|r| match self.transcript.get(r) {
                Ok(None) => Err(ModelError::Missing(format!(
                    "{} (no line in {} has this prompt and these settings)",
                    r.id,
                    self.transcript.path.display()
                ))),
                Err(problem) => Err(ModelError::Failed(problem.to_string())),
                Ok(Some(e)) => match (e.completion, e.error) {
                    (Some(mut c), _) => {
                        if let Some(l) = &mut c.latency {
                            l.source = LatencySource::Recorded;
                        }
                        Ok(c)
                    }
                    (None, Some(err)) => Err(ModelError::Failed(format!("recorded error: {err}"))),
                    (None, None) => Err(ModelError::Failed(
                        "recorded entry has neither completion nor error".into(),
                    )),
                },
            })
            .collect()
    }

    fn preferred_batch_size(&self) -> usize {
        256
    }
}
