//! The `gate.toml` schema: which teacher, which students, which suites, what
//! thresholds. Loading reports every problem as `file:line: field: message`.

pub mod http;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::cost::Price;
use crate::diagnostics::{KeyLines, Problem, Problems, line_of_offset};
use crate::gate::GateThresholds;
use crate::llm::Backend;
use http::{HttpSource, Provider};
use serde::{Deserialize, Serialize};

/// A whole `gate.toml`, with relative paths resolved against its directory.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// The file this came from.
    pub path: PathBuf,
    /// Run-wide settings.
    pub run: RunSettings,
    /// The model every student is compared with.
    pub teacher: ModelSpec,
    /// The models under test.
    pub students: Vec<ModelSpec>,
    /// Suites to run.
    pub suites: Vec<SuiteRef>,
    /// Default thresholds and overrides.
    pub gate: GateRules,
    /// The line of every key of the file, for messages about its values.
    pub lines: KeyLines,
}

/// `[run]`: where results go and how statistics are computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Run name: the directory under `output_dir` (default: the config file's stem).
    #[serde(default)]
    pub name: Option<String>,
    /// Where run directories are created, relative to the config file.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// Seed for the bootstrap and any sampling.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Bootstrap resamples (at least 10,000).
    #[serde(default = "default_resamples")]
    pub bootstrap_resamples: usize,
    /// Whether an INCONCLUSIVE verdict fails the run (exit 1).
    #[serde(default = "yes")]
    pub inconclusive_fails: bool,
    /// Minimum number of items the teacher must get right before retention
    /// is considered measurable on a suite.
    #[serde(default = "default_min_teacher_correct")]
    pub min_teacher_correct: u64,
    /// Most dollars the run may spend on API models; a request that could
    /// cross it is not sent and the run stops (resumable with a higher limit).
    #[serde(default)]
    pub max_cost: Option<f64>,
    /// Whether `max_cost` was set by `run --max-cost` rather than by the
    /// config (the budget's messages name where the limit came from).
    #[serde(skip)]
    pub max_cost_from_flag: bool,
    /// Whether a student may be gated on items its training transcripts
    /// hold ([`crate::run::contamination`]): an error by default; allowed,
    /// every report warns.
    #[serde(default)]
    pub allow_contamination: bool,
    /// Whether model-written code may run where the sandbox can neither
    /// jail it nor confine it with Landlock (rlimits and the seccomp
    /// filter only: it could read every file the user can). Refused by
    /// default ([`crate::sandbox::allow_unsafe`]).
    #[serde(default)]
    pub unsafe_sandbox: bool,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            name: None,
            output_dir: default_output_dir(),
            seed: default_seed(),
            bootstrap_resamples: default_resamples(),
            inconclusive_fails: true,
            min_teacher_correct: default_min_teacher_correct(),
            max_cost: None,
            max_cost_from_flag: false,
            allow_contamination: false,
            unsafe_sandbox: false,
        }
    }
}

fn default_output_dir() -> PathBuf {
    PathBuf::from("reports")
}
fn default_seed() -> u64 {
    20_261_125
}
fn default_resamples() -> usize {
    10_000
}
fn default_min_teacher_correct() -> u64 {
    crate::gate::DEFAULT_MIN_TEACHER_CORRECT
}
fn yes() -> bool {
    true
}

/// How a model is reached (`kind` in the file, with its own keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSource {
    /// Recorded completions replayed from a transcript (JSONL).
    Replay {
        /// The transcript file.
        transcript: PathBuf,
    },
    /// Answers another system already gave (a production log, another
    /// harness's samples, a batch API's results): JSONL, one
    /// `{"id": "<suite>/<task id>", "output": ...}` a line
    /// ([`crate::model::answers`]).
    Answers {
        /// The answers file.
        answers: PathBuf,
    },
    /// A local checkpoint (Hugging Face directory or `.gguf`) run in burn.
    Local {
        /// Checkpoint path.
        path: PathBuf,
        /// CPU backend (`flex` unless the entry says `ndarray`).
        backend: Backend,
        /// Requests per forward batch.
        batch_size: Option<usize>,
    },
    /// A model behind an HTTP API (`kind = "openai"` or `"anthropic"`).
    Http(HttpSource),
    /// A model the program running the gate supplies at run time
    /// (`kind = "custom"`, name only): any [`crate::model::Model`], e.g. a
    /// burn module of the user's own architecture, handed to
    /// [`crate::pipeline::run_with_models`]. The command line has none to
    /// run and refuses the entry.
    Custom,
}

/// `[teacher]` or one `[[students]]` entry.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSpec {
    /// Name used in reports and the journal.
    pub name: String,
    /// How to reach the model.
    pub source: ModelSource,
    /// Prices.
    #[serde(default)]
    pub price: Price,
    /// Threshold overrides for this student (ignored for the teacher).
    pub gate: Thresholds,
    /// A task-specific student: the categories it takes over, as
    /// `suite/category` (empty: every item of every suite). It is asked only
    /// these categories' items and gated on each of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Its own prompt template: this many few-shot examples instead of each
    /// category's `few_shot` (0: none, for a student trained on the task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub few_shot: Option<usize>,
}

impl ModelSpec {
    /// Whether this model is asked the items of `category` of `suite`.
    pub fn takes(&self, suite: &str, category: &str) -> bool {
        takes(&self.categories, suite, Some(category))
    }
}

/// Whether a model with these `categories` (`suite/category`; empty: all)
/// is asked items of `suite`: of its `category`, or of any (`None`).
pub fn takes(categories: &[String], suite: &str, category: Option<&str>) -> bool {
    categories.is_empty()
        || categories
            .iter()
            .any(|c| match (c.split_once('/'), category) {
                (Some((s, c)), Some(want)) => s == suite && c == want,
                (Some((s, _)), None) => s == suite,
                (None, _) => false,
            })
}

/// A model entry as written: `kind` plus the keys of every kind, checked
/// against the kind when converted to a [`ModelSpec`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModelSpec {
    name: String,
    kind: String,
    #[serde(default)]
    transcript: Option<PathBuf>,
    #[serde(default)]
    answers: Option<PathBuf>,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    batch_size: Option<usize>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    stop: Option<Vec<String>>,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    requests_per_minute: Option<u32>,
    #[serde(default)]
    tokens_per_minute: Option<u64>,
    #[serde(default)]
    timeout_secs: Option<f64>,
    #[serde(default)]
    max_retries: Option<u32>,
    #[serde(default)]
    cache: Option<bool>,
    #[serde(default)]
    cache_dir: Option<PathBuf>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    extra_body: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    price: Price,
    #[serde(default)]
    gate: Thresholds,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    few_shot: Option<usize>,
}

/// Keys of an HTTP model entry (`kind = "openai"` or `"anthropic"`).
const HTTP_KEYS: &[&str] = &[
    "base_url",
    "model",
    "api_key_env",
    "system",
    "max_tokens",
    "temperature",
    "stop",
    "concurrency",
    "requests_per_minute",
    "tokens_per_minute",
    "timeout_secs",
    "max_retries",
    "cache",
    "cache_dir",
    "stream",
    "extra_body",
];

impl RawModelSpec {
    /// The kind-specific keys that are set, by name.
    fn set_keys(&self) -> Vec<&'static str> {
        [
            ("transcript", self.transcript.is_some()),
            ("answers", self.answers.is_some()),
            ("path", self.path.is_some()),
            ("backend", self.backend.is_some()),
            ("batch_size", self.batch_size.is_some()),
            ("base_url", self.base_url.is_some()),
            ("model", self.model.is_some()),
            ("api_key_env", self.api_key_env.is_some()),
            ("system", self.system.is_some()),
            ("max_tokens", self.max_tokens.is_some()),
            ("temperature", self.temperature.is_some()),
            ("stop", self.stop.is_some()),
            ("concurrency", self.concurrency.is_some()),
            ("requests_per_minute", self.requests_per_minute.is_some()),
            ("tokens_per_minute", self.tokens_per_minute.is_some()),
            ("timeout_secs", self.timeout_secs.is_some()),
            ("max_retries", self.max_retries.is_some()),
            ("cache", self.cache.is_some()),
            ("cache_dir", self.cache_dir.is_some()),
            ("stream", self.stream.is_some()),
            ("extra_body", self.extra_body.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| k)
        .collect()
    }

    /// The spec, or what is wrong with the keys for this `kind`.
    /// `output_dir` is where an HTTP model's response cache goes by default.
    fn into_spec(self, field: &str, output_dir: &Path) -> Result<ModelSpec, (String, String)> {
        let allowed: &[&str] = match self.kind.as_str() {
            "replay" => &["transcript"],
            "answers" => &["answers"],
            "local" => &["path", "backend", "batch_size"],
            "openai" | "anthropic" => HTTP_KEYS,
            "custom" => &[],
            other => {
                return Err((
                    format!("{field}.kind"),
                    format!(
                        "unknown kind {other:?} (expected \"replay\", \"answers\", \"local\", \"openai\", \"anthropic\" or \"custom\")"
                    ),
                ));
            }
        };
        if let Some(k) = self.set_keys().into_iter().find(|k| !allowed.contains(k)) {
            let takes = if allowed.is_empty() {
                "no key of its own: the program supplies the model".to_string()
            } else {
                let keys: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
                keys.join(", ")
            };
            return Err((
                format!("{field}.{k}"),
                format!("not a key of kind = {:?} (it takes {takes})", self.kind),
            ));
        }
        let source = match self.kind.as_str() {
            "replay" => ModelSource::Replay {
                transcript: self.transcript.ok_or_else(|| {
                    (
                        format!("{field}.transcript"),
                        "kind = \"replay\" needs a transcript file".to_string(),
                    )
                })?,
            },
            "answers" => ModelSource::Answers {
                answers: self.answers.ok_or_else(|| {
                    (
                        format!("{field}.answers"),
                        "kind = \"answers\" needs an answers file".to_string(),
                    )
                })?,
            },
            "local" => ModelSource::Local {
                path: self.path.ok_or_else(|| {
                    (
                        format!("{field}.path"),
                        "kind = \"local\" needs a checkpoint path".to_string(),
                    )
                })?,
                backend: match self.backend.as_deref().map(str::parse::<Backend>) {
                    None => Backend::default(),
                    Some(Ok(b)) => b,
                    Some(Err(e)) => return Err((format!("{field}.backend"), e.to_string())),
                },
                batch_size: self.batch_size,
            },
            "custom" => ModelSource::Custom,
            _ => {
                let provider = if self.kind == "anthropic" {
                    Provider::Anthropic
                } else {
                    Provider::Openai
                };
                let model = self.model.ok_or_else(|| {
                    (
                        format!("{field}.model"),
                        format!("kind = {:?} needs the API's model name", self.kind),
                    )
                })?;
                let cache_dir = match (self.cache, self.cache_dir) {
                    (Some(false), _) => None,
                    (_, Some(dir)) => Some(dir),
                    (_, None) => Some(output_dir.join("http-cache")),
                };
                ModelSource::Http(HttpSource {
                    provider,
                    base_url: self
                        .base_url
                        .unwrap_or_else(|| provider.default_base_url().to_string()),
                    model,
                    api_key_env: self.api_key_env,
                    system: self.system,
                    max_tokens: self.max_tokens,
                    temperature: self.temperature,
                    stop: self.stop.unwrap_or_default(),
                    concurrency: self.concurrency.unwrap_or(4),
                    requests_per_minute: self.requests_per_minute,
                    tokens_per_minute: self.tokens_per_minute,
                    timeout_secs: self.timeout_secs.unwrap_or(120.0),
                    max_retries: self.max_retries.unwrap_or(6),
                    cache_dir,
                    stream: self.stream.unwrap_or(false),
                    extra_body: self.extra_body.unwrap_or_default(),
                })
            }
        };
        Ok(ModelSpec {
            name: self.name,
            source,
            price: self.price,
            gate: self.gate,
            categories: self.categories,
            few_shot: self.few_shot,
        })
    }
}

/// One `[[suites]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteRef {
    /// Suite directory (holding `suite.toml`).
    pub path: PathBuf,
    /// Split to evaluate.
    #[serde(default = "default_split")]
    pub split: String,
    /// Evaluate only these categories of the split (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Evaluate only `limit` items, taking the categories in turn (in file
    /// order within each).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Categories evaluated on their own number of items (the first N in
    /// file order) instead of their share of `limit`: a category a student
    /// is gated on may need more items to decide than the others.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub category_limits: BTreeMap<String, usize>,
    /// Threshold overrides for this suite.
    #[serde(default)]
    pub gate: Thresholds,
    /// Answers drawn per item and model (default 1). With more than one,
    /// an item's score is the mean over its samples (the unbiased pass@1)
    /// and reports add pass@k; needs `temperature > 0`.
    #[serde(default)]
    pub samples: Option<u32>,
    /// Sampling temperature for this suite's requests (default: the suite's
    /// own settings, greedy).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass in (0, 1] (default 1: off).
    #[serde(default)]
    pub top_p: Option<f32>,
}

/// Most samples per item a suite may ask for.
pub const MAX_SAMPLES: u32 = 1000;

impl SuiteRef {
    /// Answers drawn per item (at least 1).
    pub fn samples(&self) -> u32 {
        self.samples.unwrap_or(1).max(1)
    }
}

fn default_split() -> String {
    "test".to_string()
}

/// Gate thresholds; every field optional so tables can override each other.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Minimum retention (student accuracy / teacher accuracy), e.g. 0.95.
    #[serde(default)]
    pub min_retention: Option<f64>,
    /// Confidence of the one-sided lower bound, e.g. 0.95.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Maximum p95 latency in milliseconds.
    #[serde(default)]
    pub max_p95_latency_ms: Option<f64>,
    /// Minimum speedup over the teacher (teacher p50 latency / student p50 latency).
    #[serde(default)]
    pub min_speedup: Option<f64>,
    /// Maximum cost ratio student/teacher.
    #[serde(default)]
    pub max_cost_ratio: Option<f64>,
    /// Maximum fraction of items whose model call errored.
    #[serde(default)]
    pub max_error_rate: Option<f64>,
}

impl Thresholds {
    /// `to` with the fields this table sets replaced.
    pub fn apply(&self, to: GateThresholds) -> GateThresholds {
        GateThresholds {
            min_retention: self.min_retention.unwrap_or(to.min_retention),
            confidence: self.confidence.unwrap_or(to.confidence),
            max_p95_latency_ms: self.max_p95_latency_ms.or(to.max_p95_latency_ms),
            min_speedup: self.min_speedup.or(to.min_speedup),
            max_cost_ratio: self.max_cost_ratio.or(to.max_cost_ratio),
            max_error_rate: self.max_error_rate.or(to.max_error_rate),
            ..to
        }
    }
}

/// `[gate]`: defaults plus `[[gate.overrides]]` for one (student, suite) pair.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GateRules {
    /// Defaults for every gate.
    pub defaults: Thresholds,
    /// Pair-specific thresholds.
    pub overrides: Vec<PairOverride>,
    /// How the retention interval is computed (`[gate] interval`).
    pub interval: crate::stats::IntervalMethod,
    /// Which items share a cluster (`[gate] clusters`).
    pub clusters: crate::gate::ClusterBy,
    /// Family-wise adjustment over the run's gates (`[gate] family_wise`).
    pub family_wise: crate::gate::FamilyWise,
}

/// Thresholds for one student on one suite (most specific; wins over all).
#[derive(Debug, Clone, Serialize)]
pub struct PairOverride {
    /// Student name.
    pub student: String,
    /// Suite name (as in its `suite.toml`).
    pub suite: String,
    /// The thresholds.
    pub thresholds: Thresholds,
}

/// `[gate]` as written (serde cannot combine `flatten` with
/// `deny_unknown_fields`, so the threshold keys are spelled out).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    #[serde(default)]
    min_retention: Option<f64>,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    max_p95_latency_ms: Option<f64>,
    #[serde(default)]
    min_speedup: Option<f64>,
    #[serde(default)]
    max_cost_ratio: Option<f64>,
    #[serde(default)]
    max_error_rate: Option<f64>,
    #[serde(default)]
    overrides: Vec<RawOverride>,
    #[serde(default)]
    interval: crate::stats::IntervalMethod,
    #[serde(default)]
    clusters: crate::gate::ClusterBy,
    #[serde(default)]
    family_wise: crate::gate::FamilyWise,
}

/// One `[[gate.overrides]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    student: String,
    suite: String,
    #[serde(default)]
    min_retention: Option<f64>,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    max_p95_latency_ms: Option<f64>,
    #[serde(default)]
    min_speedup: Option<f64>,
    #[serde(default)]
    max_cost_ratio: Option<f64>,
    #[serde(default)]
    max_error_rate: Option<f64>,
}

impl From<RawGate> for GateRules {
    fn from(g: RawGate) -> Self {
        GateRules {
            defaults: Thresholds {
                min_retention: g.min_retention,
                confidence: g.confidence,
                max_p95_latency_ms: g.max_p95_latency_ms,
                min_speedup: g.min_speedup,
                max_cost_ratio: g.max_cost_ratio,
                max_error_rate: g.max_error_rate,
            },
            overrides: g
                .overrides
                .into_iter()
                .map(|o| PairOverride {
                    student: o.student,
                    suite: o.suite,
                    thresholds: Thresholds {
                        min_retention: o.min_retention,
                        confidence: o.confidence,
                        max_p95_latency_ms: o.max_p95_latency_ms,
                        min_speedup: o.min_speedup,
                        max_cost_ratio: o.max_cost_ratio,
                        max_error_rate: o.max_error_rate,
                    },
                })
                .collect(),
            interval: g.interval,
            clusters: g.clusters,
            family_wise: g.family_wise,
        }
    }
}

impl GateConfig {
    /// The thresholds of one student's gate on a suite (`(index in
    /// [[suites]], name)`), or on no suite in particular (`None`: a gate on
    /// items of several suites). The one place they are resolved, each
    /// level replacing the fields it sets: the built-in defaults
    /// ([`GateThresholds::builtin`], with `[run] min_teacher_correct`), then
    /// `[gate]`, then the suite's `gate`, then the student's `gate`, then a
    /// `[[gate.overrides]]` for this (student, suite).
    pub fn thresholds_for(&self, student: &str, suite: Option<(usize, &str)>) -> GateThresholds {
        let builtin = GateThresholds {
            min_teacher_correct: self.run.min_teacher_correct,
            ..GateThresholds::builtin()
        };
        let mut t = self.gate.defaults.apply(builtin);
        if let Some(s) = suite.and_then(|(index, _)| self.suites.get(index)) {
            t = s.gate.apply(t);
        }
        if let Some(m) = self.students.iter().find(|m| m.name == student) {
            t = m.gate.apply(t);
        }
        if let Some((_, name)) = suite {
            for o in &self.gate.overrides {
                if o.student == student && o.suite == name {
                    t = o.thresholds.apply(t);
                }
            }
        }
        t
    }

    /// The run directory: `<config dir>/<output_dir>/<name>`.
    pub fn run_dir(&self) -> PathBuf {
        let name = self.run.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".to_string())
        });
        self.run.output_dir.join(name)
    }

    /// Every model, teacher first.
    pub fn models(&self) -> impl Iterator<Item = &ModelSpec> {
        std::iter::once(&self.teacher).chain(self.students.iter())
    }

    /// Every model with its table in the file (`teacher`, `students[0]`,
    /// ...), teacher first.
    pub fn models_with_fields(&self) -> impl Iterator<Item = (String, &ModelSpec)> {
        std::iter::once(("teacher".to_string(), &self.teacher)).chain(
            self.students
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("students[{i}]"), s)),
        )
    }

    /// A problem with `field` of this file (a dotted path such as
    /// `suites[0].split`), at the line of the field or, when the file does
    /// not set it, of its table.
    pub fn problem(&self, field: impl Into<String>, message: impl Into<String>) -> Problem {
        let field = field.into();
        Problem::new(&self.path, self.lines.line(&field), field, message)
    }
}

/// The raw file as written (its problems are located with [`KeyLines`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    run: Option<RunSettings>,
    teacher: RawModelSpec,
    #[serde(default)]
    students: Vec<RawModelSpec>,
    #[serde(default)]
    suites: Vec<SuiteRef>,
    #[serde(default)]
    gate: Option<RawGate>,
}

/// Reads and validates a `gate.toml`. Every problem found is reported at once.
pub fn load(path: &Path) -> Result<GateConfig, Problems> {
    let bytes = std::fs::read(path)
        .map_err(|e| Problems::one(Problem::new(path, 0, "", format!("cannot read: {e}"))))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = line_of_offset(
            &e.as_bytes()[..e.utf8_error().valid_up_to()],
            e.utf8_error().valid_up_to(),
        );
        Problems::one(Problem::new(path, line, "", "file is not valid UTF-8"))
    })?;
    parse(path, &text)
}

/// Parses and validates config text; `path` is used for messages and for
/// resolving relative paths.
pub fn parse(path: &Path, text: &str) -> Result<GateConfig, Problems> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| line_of_offset(text.as_bytes(), s.start))
            .unwrap_or(0);
        let message = e.message().trim().to_string();
        Problems::one(Problem::new(path, line, "", message))
    })?;
    let lines = KeyLines::of_toml(text);
    let mut found = Found {
        path,
        lines: &lines,
        problems: Vec::new(),
    };
    let run = raw.run.unwrap_or_default();
    check_run(&mut found, &run);
    let models = Models::convert(&mut found, raw.teacher, raw.students, &run.output_dir);
    check_suites(&mut found, &raw.suites);
    let gate = raw.gate.map(GateRules::from).unwrap_or_default();
    check_gate(&mut found, &gate, &models.names);
    let problems = found.problems;
    let Some(teacher) = models.teacher.filter(|_| problems.is_empty()) else {
        return Err(Problems(problems));
    };
    let config = GateConfig {
        path: path.to_path_buf(),
        run,
        teacher,
        students: models.students,
        suites: raw.suites,
        gate,
        lines,
    };
    Ok(config.resolved(path.parent().unwrap_or(Path::new(""))))
}

/// `[run]`'s own checks.
fn check_run(found: &mut Found, run: &RunSettings) {
    if run.bootstrap_resamples < 10_000 {
        found.at(
            "run.bootstrap_resamples",
            format!("must be at least 10000, got {}", run.bootstrap_resamples),
        );
    }
    if let Some(c) = run.max_cost
        && !(c.is_finite() && c >= 0.0)
    {
        found.at(
            "run.max_cost",
            format!("must be a non-negative number of dollars, got {c}"),
        );
    }
}

/// The teacher and students of a config, each checked, and where each
/// model name is first set.
struct Models {
    /// The teacher, unless its entry is unusable.
    teacher: Option<ModelSpec>,
    /// The usable student entries.
    students: Vec<ModelSpec>,
    /// Each model name and the field that first sets it.
    names: BTreeMap<String, String>,
}

impl Models {
    /// Converts and checks the model entries: each on its own, then the
    /// teacher takes no `categories`, a student's are `suite/category`, at
    /// least one student, no name twice.
    fn convert(
        found: &mut Found,
        teacher: RawModelSpec,
        students: Vec<RawModelSpec>,
        output_dir: &Path,
    ) -> Self {
        let convert = |raw: RawModelSpec, field: String, found: &mut Found| match raw
            .into_spec(&field, output_dir)
        {
            Ok(m) => {
                check_model(found, &m, &field);
                Some((field, m))
            }
            Err((f, message)) => {
                found.at(f, message);
                None
            }
        };
        let students_given = !students.is_empty();
        let teacher = convert(teacher, "teacher".to_string(), found);
        if teacher
            .as_ref()
            .is_some_and(|(_, t)| !t.categories.is_empty())
        {
            found.at(
                "teacher.categories",
                "the teacher answers every item; `categories` names what a student takes over",
            );
        }
        let students: Vec<(String, ModelSpec)> = students
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| convert(s, format!("students[{i}]"), found))
            .collect();
        for (field, s) in &students {
            if let Some(c) = s.categories.iter().find(|c| {
                c.split_once('/')
                    .is_none_or(|(a, b)| a.is_empty() || b.is_empty())
            }) {
                found.at(
                    format!("{field}.categories"),
                    format!("{c:?} is not `suite/category` (e.g. \"logistics/extraction\")"),
                );
            }
        }
        if !students_given {
            found.at("students", "at least one student is required");
        }
        let mut names = BTreeMap::new();
        if let Some((field, t)) = &teacher {
            names.insert(t.name.clone(), format!("{field}.name"));
        }
        for (field, s) in &students {
            let name_field = format!("{field}.name");
            if let Some(first) = names.insert(s.name.clone(), name_field.clone()) {
                let first = found.lines.line(&first);
                found.at(
                    name_field,
                    format!("duplicate model name {:?} (first at line {first})", s.name),
                );
            }
        }
        Self {
            teacher: teacher.map(|(_, t)| t),
            students: students.into_iter().map(|(_, s)| s).collect(),
            names,
        }
    }
}

/// One model entry's own checks (`field`: `teacher` or `students[i]`).
fn check_model(found: &mut Found, m: &ModelSpec, field: &str) {
    if m.name.trim().is_empty() {
        found.at(format!("{field}.name"), "must not be empty");
    }
    check_thresholds(found, &format!("{field}.gate"), &m.gate);
    check_price(found, &format!("{field}.price"), &m.price);
    if let ModelSource::Local {
        batch_size: Some(0),
        ..
    } = &m.source
    {
        found.at(format!("{field}.batch_size"), "must be at least 1");
    }
    if let ModelSource::Http(h) = &m.source {
        for (key, message) in http_problems(h) {
            found.at(format!("{field}.{key}"), message);
        }
    }
}

/// The `[[suites]]` entries: at least one, each one's thresholds, limits
/// and sampling.
fn check_suites(found: &mut Found, suites: &[SuiteRef]) {
    if suites.is_empty() {
        found.at("suites", "at least one suite is required");
    }
    for (i, s) in suites.iter().enumerate() {
        check_thresholds(found, &format!("suites[{i}].gate"), &s.gate);
        if s.limit == Some(0) {
            found.at(format!("suites[{i}].limit"), "must be at least 1");
        }
        if let Some((c, _)) = s.category_limits.iter().find(|(_, n)| **n == 0) {
            found.at(
                format!("suites[{i}].category_limits.{c}"),
                "must be at least 1",
            );
        }
        check_sampling(found, i, s);
    }
}

/// `[gate]` and its overrides: their thresholds, and each override names a
/// model of the config (`names`).
fn check_gate(found: &mut Found, gate: &GateRules, names: &BTreeMap<String, String>) {
    check_thresholds(found, "gate", &gate.defaults);
    for (i, o) in gate.overrides.iter().enumerate() {
        let field = format!("gate.overrides[{i}]");
        check_thresholds(found, &field, &o.thresholds);
        if !names.contains_key(&o.student) {
            found.at(
                format!("{field}.student"),
                format!("no student named {:?}", o.student),
            );
        }
    }
}

impl GateConfig {
    /// The config with every relative path (output directory, models'
    /// files, suites) resolved against `base`, the config file's directory.
    fn resolved(self, base: &Path) -> Self {
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let model = |m: ModelSpec| {
            let source = match m.source {
                ModelSource::Replay { transcript } => ModelSource::Replay {
                    transcript: resolve(&transcript),
                },
                ModelSource::Answers { answers } => ModelSource::Answers {
                    answers: resolve(&answers),
                },
                ModelSource::Local {
                    path,
                    backend,
                    batch_size,
                } => ModelSource::Local {
                    path: resolve(&path),
                    backend,
                    batch_size,
                },
                ModelSource::Http(h) => ModelSource::Http(HttpSource {
                    cache_dir: h.cache_dir.as_deref().map(resolve),
                    ..h
                }),
                ModelSource::Custom => ModelSource::Custom,
            };
            ModelSpec { source, ..m }
        };
        Self {
            run: RunSettings {
                output_dir: resolve(&self.run.output_dir),
                ..self.run
            },
            teacher: model(self.teacher),
            students: self.students.into_iter().map(model).collect(),
            suites: self
                .suites
                .into_iter()
                .map(|s| SuiteRef {
                    path: resolve(&s.path),
                    ..s
                })
                .collect(),
            ..self
        }
    }
}

/// The problems found in one config file, each at the line of its field.
struct Found<'a> {
    path: &'a Path,
    lines: &'a KeyLines,
    problems: Vec<Problem>,
}

impl Found<'_> {
    /// Records a problem with `field` (a dotted path), at the line of the
    /// field or, when the file does not set it, of its table.
    fn at(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        let line = self.lines.line(&field);
        self.problems
            .push(Problem::new(self.path, line, field, message));
    }
}

/// What is wrong with an HTTP model's settings, as (key, message) pairs.
fn http_problems(h: &HttpSource) -> Vec<(&'static str, String)> {
    let mut p = Vec::new();
    if !(h.base_url.starts_with("http://") || h.base_url.starts_with("https://")) {
        p.push((
            "base_url",
            format!("must start with http:// or https://, got {:?}", h.base_url),
        ));
    }
    if h.model.trim().is_empty() {
        p.push(("model", "must not be empty".to_string()));
    }
    if h.api_key_env
        .as_deref()
        .is_some_and(|v| v.trim().is_empty())
    {
        p.push((
            "api_key_env",
            "names an environment variable; leave it out for a server without a key".into(),
        ));
    }
    if !(1..=256).contains(&h.concurrency) {
        p.push((
            "concurrency",
            format!("must be 1 to 256, got {}", h.concurrency),
        ));
    }
    if !(h.timeout_secs.is_finite() && h.timeout_secs > 0.0) {
        p.push((
            "timeout_secs",
            format!("must be positive, got {}", h.timeout_secs),
        ));
    }
    for key in h.extra_body.keys() {
        if let Some(instead) = http::set_by_the_client(h.provider, key) {
            p.push((
                "extra_body",
                format!(
                    "{key:?} is sent by distill-gate itself ({instead}); extra_body adds fields the client does not send"
                ),
            ));
        }
    }
    if h.max_retries > 20 {
        p.push((
            "max_retries",
            format!("must be at most 20, got {}", h.max_retries),
        ));
    }
    if h.requests_per_minute == Some(0) {
        p.push(("requests_per_minute", "must be at least 1".into()));
    }
    if h.tokens_per_minute == Some(0) {
        p.push(("tokens_per_minute", "must be at least 1".into()));
    }
    if h.max_tokens == Some(0) {
        p.push(("max_tokens", "must be at least 1".into()));
    }
    if let Some(t) = h.temperature
        && !(t.is_finite() && (0.0..=2.0).contains(&t))
    {
        p.push(("temperature", format!("must be between 0 and 2, got {t}")));
    }
    p
}

/// `samples`, `temperature` and `top_p` of `[[suites]]` entry `i`.
fn check_sampling(found: &mut Found, i: usize, s: &SuiteRef) {
    let mut bad = |field: &str, message: String| found.at(format!("suites[{i}].{field}"), message);
    if let Some(n) = s.samples
        && !(1..=MAX_SAMPLES).contains(&n)
    {
        bad("samples", format!("must be in 1..={MAX_SAMPLES}, got {n}"));
    }
    if let Some(t) = s.temperature
        && !(t.is_finite() && (0.0..=2.0).contains(&t))
    {
        bad("temperature", format!("must be in [0, 2], got {t}"));
    }
    if let Some(p) = s.top_p
        && !(p.is_finite() && p > 0.0 && p <= 1.0)
    {
        bad("top_p", format!("must be in (0, 1], got {p}"));
    }
    if s.samples() > 1 && s.temperature.is_none_or(|t| t <= 0.0) {
        bad(
            "samples",
            format!(
                "{} samples need `temperature` > 0 (greedy decoding gives the same answer every time)",
                s.samples()
            ),
        );
    }
}

/// `field` in [0, 1], or in (0, 1) when `open`.
fn check_unit(found: &mut Found, field: String, v: Option<f64>, open: bool) {
    if let Some(v) = v {
        let ok = if open {
            v > 0.0 && v < 1.0
        } else {
            (0.0..=1.0).contains(&v)
        };
        if !ok || !v.is_finite() {
            let range = if open { "(0, 1)" } else { "[0, 1]" };
            found.at(field, format!("must be in {range}, got {v}"));
        }
    }
}

/// `field` a finite number of at least 0.
fn check_positive(found: &mut Found, field: String, v: Option<f64>) {
    if let Some(v) = v
        && !(v.is_finite() && v >= 0.0)
    {
        found.at(field, format!("must be a non-negative number, got {v}"));
    }
}

fn check_thresholds(found: &mut Found, field: &str, t: &Thresholds) {
    if let Some(r) = t.min_retention
        && !(r.is_finite() && r > 0.0 && r <= 2.0)
    {
        found.at(
            format!("{field}.min_retention"),
            format!("must be in (0, 2], got {r}"),
        );
    }
    check_unit(found, format!("{field}.confidence"), t.confidence, true);
    check_unit(
        found,
        format!("{field}.max_error_rate"),
        t.max_error_rate,
        false,
    );
    for (key, v) in [
        ("max_p95_latency_ms", t.max_p95_latency_ms),
        ("min_speedup", t.min_speedup),
        ("max_cost_ratio", t.max_cost_ratio),
    ] {
        check_positive(found, format!("{field}.{key}"), v);
    }
}

fn check_price(found: &mut Found, field: &str, p: &Price) {
    for (key, v) in [
        ("input_per_mtok", p.input_per_mtok),
        ("output_per_mtok", p.output_per_mtok),
        ("cached_input_per_mtok", p.cached_input_per_mtok),
        ("per_hour", p.per_hour),
    ] {
        check_positive(found, format!("{field}.{key}"), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every problem `parse` finds in `text`, displayed.
    fn problems(text: &str) -> Vec<String> {
        match parse(Path::new("gate.toml"), text) {
            Ok(_) => Vec::new(),
            Err(p) => p.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn thresholds_resolve_builtin_gate_suite_student_override_in_that_order() {
        let text = r#"
[run]
min_teacher_correct = 4

[teacher]
name = "t"
kind = "replay"
transcript = "t.jsonl"

[[students]]
name = "a"
kind = "replay"
transcript = "a.jsonl"
gate = { min_retention = 0.93, max_cost_ratio = 0.5 }

[[students]]
name = "b"
kind = "replay"
transcript = "b.jsonl"

[[suites]]
path = "coding"
gate = { min_retention = 0.92, confidence = 0.9, max_p95_latency_ms = 800.0 }

[[suites]]
path = "logistics"

[gate]
min_retention = 0.91
min_speedup = 2.0

[[gate.overrides]]
student = "a"
suite = "logistics"
min_retention = 0.8
max_error_rate = 0.1
"#;
        let config = parse(Path::new("gate.toml"), text).unwrap();
        let at =
            |student: &str, suite: Option<(usize, &str)>| config.thresholds_for(student, suite);
        let builtin = GateThresholds::builtin();
        // b on logistics: the built-in thresholds under [gate].
        let b = at("b", Some((1, "logistics")));
        assert_eq!(
            b,
            GateThresholds {
                min_retention: 0.91,
                min_speedup: Some(2.0),
                min_teacher_correct: 4,
                ..builtin.clone()
            }
        );
        // b on coding: the suite's table over [gate].
        let b = at("b", Some((0, "coding")));
        assert_eq!((b.min_retention, b.confidence), (0.92, 0.9));
        assert_eq!(
            (b.max_p95_latency_ms, b.min_speedup),
            (Some(800.0), Some(2.0))
        );
        // a on coding: its own table over the suite's.
        let a = at("a", Some((0, "coding")));
        assert_eq!((a.min_retention, a.confidence), (0.93, 0.9));
        assert_eq!((a.max_cost_ratio, a.max_error_rate), (Some(0.5), Some(0.0)));
        // a on logistics: the pair's override over everything.
        let a = at("a", Some((1, "logistics")));
        assert_eq!((a.min_retention, a.max_error_rate), (0.8, Some(0.1)));
        assert_eq!(
            (a.max_cost_ratio, a.confidence),
            (Some(0.5), builtin.confidence)
        );
        // On no suite in particular: [gate] and the student's table only.
        let a = at("a", None);
        assert_eq!((a.min_retention, a.max_error_rate), (0.93, Some(0.0)));
        assert_eq!(a.max_p95_latency_ms, None);
        assert_eq!(a.power, builtin.power);
    }

    #[test]
    fn unsafe_sandbox_is_a_boolean_reported_at_its_line() {
        let rest = "[teacher]\nname = \"t\"\nkind = \"replay\"\ntranscript = \"t.jsonl\"\n\
                    [[students]]\nname = \"s\"\nkind = \"replay\"\ntranscript = \"s.jsonl\"\n\
                    [[suites]]\npath = \"x\"\n";
        let run = |settings: &str| {
            parse(
                Path::new("gate.toml"),
                &format!("[run]\nseed = 1\n{settings}{rest}"),
            )
            .map(|c| c.run.unsafe_sandbox)
            .map_err(|p| p.0.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(run(""), Ok(false));
        assert_eq!(run("unsafe_sandbox = true\n"), Ok(true));
        let Err(problems) = run("unsafe_sandbox = \"yes\"\n") else {
            panic!("a string was taken for a boolean")
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("gate.toml:3:") && problems[0].contains("boolean"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_backend_is_typed_and_a_bad_one_is_reported_at_its_line() {
        let config = |backend: &str| {
            parse(
                Path::new("gate.toml"),
                &format!(
                    "[run]\nseed = 1\n[teacher]\nname = \"t\"\nkind = \"replay\"\n\
                     transcript = \"t.jsonl\"\n[[students]]\nname = \"s\"\nkind = \"local\"\n\
                     path = \"s\"\n{backend}[[suites]]\npath = \"x\"\n"
                ),
            )
            .map(|c| match &c.students[0].source {
                ModelSource::Local { backend, .. } => *backend,
                _ => panic!("not local"),
            })
            .map_err(|p| p.0.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(config(""), Ok(Backend::Flex));
        assert_eq!(config("backend = \"ndarray\"\n"), Ok(Backend::NdArray));
        assert_eq!(
            config("backend = \"cuda\"\n"),
            Err(vec![
                "gate.toml:11: students[0].backend: unknown backend \"cuda\": expected one of \
                 \"flex\", \"ndarray\""
                    .to_string()
            ])
        );
    }

    #[test]
    fn every_problem_is_at_the_line_of_its_key() {
        let text = r#"[run]
seed = 1
max_cost = -1.0

[teacher]
name = "t"
kind = "replay"
transcript = "t.jsonl"
price = { input_per_mtok = -0.15, output_per_mtok = 0.6 }

[[students]]
name = "a"
kind = "local"
path = "a"
gate = { min_retention = 0.9, confidence = 1.5 }

[[students]]
name = "b"
kind = "local"

[[students]]
name = "a"
kind = "local"
path = "c"
batch_size = 0

[[suites]]
path = "s"

[[suites]]
path = "u"
limit = 0

[gate]
min_speedup = -2.0

[[gate.overrides]]
student = "z"
suite = "s"
max_error_rate = 2.0
"#;
        assert_eq!(
            problems(text),
            vec![
                "gate.toml:3: run.max_cost: must be a non-negative number of dollars, got -1",
                "gate.toml:9: teacher.price.input_per_mtok: must be a non-negative number, got -0.15",
                "gate.toml:15: students[0].gate.confidence: must be in (0, 1), got 1.5",
                // No `path` key: the line of the student's table.
                "gate.toml:17: students[1].path: kind = \"local\" needs a checkpoint path",
                "gate.toml:25: students[2].batch_size: must be at least 1",
                "gate.toml:22: students[2].name: duplicate model name \"a\" (first at line 12)",
                "gate.toml:32: suites[1].limit: must be at least 1",
                "gate.toml:35: gate.min_speedup: must be a non-negative number, got -2",
                "gate.toml:40: gate.overrides[0].max_error_rate: must be in [0, 1], got 2",
                "gate.toml:38: gate.overrides[0].student: no student named \"z\"",
            ]
        );
    }
}
