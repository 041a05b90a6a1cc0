//! Models a program supplies at run time for the `kind = "custom"` entries
//! of a `gate.toml` (see [`crate::pipeline::run_with_models`]): any type
//! implementing [`Model`], such as a burn module of the user's own
//! architecture, gated exactly like a configured model.

use std::collections::BTreeMap;

use super::{Model, ModelIdentity};

/// The models a program supplies, by the `name` of their `kind = "custom"`
/// entry in the gate config.
///
/// Each model's [`Model::identity`] is what its journaled answers are bound
/// to: an answer is reused (on resume, by `report`, `merge` and `compare`)
/// only while the model's `backend`, `name` and `fingerprint` are all the
/// same. The fingerprint must therefore change whenever the model's answers
/// may change (e.g. the SHA-256 of its weights file, combined with a version
/// of the code that runs them); an empty fingerprint is refused.
///
/// ```
/// use distill_gate::model::custom::CustomModels;
/// # use distill_gate::model::*;
/// # struct Mine;
/// # impl Model for Mine {
/// #     fn identity(&self) -> ModelIdentity {
/// #         ModelIdentity { backend: "burn".into(), name: "mine".into(), fingerprint: "f".into() }
/// #     }
/// #     fn complete_batch(&mut self, r: &[GenerationRequest]) -> Vec<Result<Completion, ModelError>> {
/// #         Vec::new()
/// #     }
/// # }
/// let models = CustomModels::new().with("my-student", Mine);
/// assert_eq!(models.names().collect::<Vec<_>>(), ["my-student"]);
/// ```
#[derive(Default)]
pub struct CustomModels {
    models: BTreeMap<String, Box<dyn Model>>,
}

impl std::fmt::Debug for CustomModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.models.iter().map(|(k, m)| (k, m.identity())))
            .finish()
    }
}

impl CustomModels {
    /// No models (what `distill-gate run` has).
    pub fn new() -> Self {
        Self::default()
    }

    /// These models and `model` for the entry named `name` (replacing any
    /// model given for it before).
    pub fn with(mut self, name: impl Into<String>, model: impl Model + 'static) -> Self {
        self.insert(name, Box::new(model));
        self
    }

    /// Supplies `model` for the entry named `name` (replacing any model
    /// given for it before).
    pub fn insert(&mut self, name: impl Into<String>, model: Box<dyn Model>) {
        self.models.insert(name.into(), model);
    }

    /// The entry names models were supplied for, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// The identity of every supplied model, by entry name.
    pub fn identities(&self) -> BTreeMap<String, ModelIdentity> {
        self.models
            .iter()
            .map(|(name, m)| (name.clone(), m.identity()))
            .collect()
    }

    /// Takes the model supplied for `name` out, to run it.
    pub fn take(&mut self, name: &str) -> Option<Box<dyn Model>> {
        self.models.remove(name)
    }
}
