//! Scorers: turn a model's output for one task into a score in `[0, 1]`
//! with a short human-readable detail.
//!
//! Scoring is two steps: an [`Extract`] step pulls the answer out of the
//! output (declared per suite or category; each family has a default), then
//! the family's [`Scorer`] compares it with the task's target.
//!
//! Families: [`exact`], [`numeric`], [`choice`], [`json`], [`regex`], the
//! sandboxed [`code`] runner, and the logistics verifiers [`route`] and
//! [`load_plan`].
//!
//! Adding a family is a local change: a module with a parameter struct and a type
//! implementing [`Scorer`], one variant in [`ScorerSpec`], and one arm in
//! each of [`ScorerSpec::kind`], [`ScorerSpec::build`],
//! [`ScorerSpec::default_extract`] and the parameter schema.

pub mod choice;
pub mod code;
pub mod exact;
pub mod extract;
pub mod json;
pub mod load_plan;
pub mod numeric;
pub mod regex;
pub mod route;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::fields::{Checker, FieldSpec, Kind, join, optional, required};

pub use self::regex::RegexSpec;
pub use choice::ChoiceSpec;
pub use code::CodeSpec;
pub use exact::ExactSpec;
pub use extract::Extract;
pub use json::JsonSpec;
pub use load_plan::LoadPlanSpec;
pub use numeric::NumericSpec;
pub use route::RouteSpec;

/// Which scorer family scores a task, with its parameters. Written as a
/// table tagged by `kind`, e.g. `{ kind = "exact" }` or
/// `{ kind = "numeric", abs_tol = 0.01, rel_tol = 0.0 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScorerSpec {
    /// Normalised exact match (see [`exact`]).
    Exact(ExactSpec),
    /// Number within an absolute or relative tolerance (see [`numeric`]).
    Numeric(NumericSpec),
    /// Multiple choice by letter or option text (see [`choice`]).
    Choice(ChoiceSpec),
    /// Per-field credit on a JSON object (see [`json`]).
    Json(JsonSpec),
    /// A regex capture compared exactly (see [`regex`]).
    Regex(RegexSpec),
    /// Python code run against tests in the sandbox (see [`code`]).
    Code(CodeSpec),
    /// A visiting order checked as a tour and scored against the optimum (see [`route`]).
    Route(RouteSpec),
    /// Parcels assigned to vehicles, checked for feasibility and scored against the
    /// optimal vehicle count (see [`load_plan`]).
    LoadPlan(LoadPlanSpec),
}

/// The result of scoring one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Credit in `[0, 1]` (1 is fully correct).
    pub value: f64,
    /// Short human-readable reason, e.g. `expected 42, got 41.5 (|diff| 0.5 > tol 0.01)`.
    pub detail: String,
    /// The answer the scorer compared, when an extraction step produced one.
    pub extracted: Option<String>,
}

impl Score {
    /// A score of 0 with a reason.
    pub fn zero(detail: impl Into<String>) -> Self {
        Self {
            value: 0.0,
            detail: detail.into(),
            extracted: None,
        }
    }

    /// Full (1) or no (0) credit.
    pub fn binary(pass: bool, detail: impl Into<String>) -> Self {
        Self {
            value: if pass { 1.0 } else { 0.0 },
            detail: detail.into(),
            extracted: None,
        }
    }
}

/// A problem with one parameter of a scorer or extraction step, or with a
/// task's target/meta for a scorer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The parameter (`abs_tol`, `pattern`) or task field (`target`, `meta.options`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// Builds a [`FieldError`].
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A ready-to-use scorer of one family, built (and validated) from a
/// [`ScorerSpec`]. Families that need a sandbox or a solver implement this
/// trait too.
pub trait Scorer: Send + Sync {
    /// Checks that this family can score a task with this target and meta
    /// (called when a suite is loaded, so bad targets fail early).
    fn check_target(&self, target: &Value, meta: &Map<String, Value>) -> Result<(), FieldError>;

    /// The target written as an answer, for few-shot examples.
    fn target_text(&self, target: &Value) -> String {
        plain_text(target)
    }

    /// Scores an extracted answer against the task's target.
    fn score(&self, task: &dyn Expected, answer: &str) -> Score;
}

/// What a scorer compares an answer with: a task's target and its
/// free-form data (a suite's task implements it; scoring needs nothing
/// else of a task).
pub trait Expected {
    /// The expected answer; its shape depends on the scorer.
    fn target(&self) -> &Value;
    /// Free-form data (e.g. `options` for `choice`).
    fn meta(&self) -> &Map<String, Value>;
}

impl ScorerSpec {
    /// Every family name, as written in `kind`.
    pub const KINDS: [&'static str; 8] = [
        "exact",
        "numeric",
        "choice",
        "json",
        "regex",
        "code",
        "route",
        "load_plan",
    ];

    /// The family name, as written in `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ScorerSpec::Exact(_) => "exact",
            ScorerSpec::Numeric(_) => "numeric",
            ScorerSpec::Choice(_) => "choice",
            ScorerSpec::Json(_) => "json",
            ScorerSpec::Regex(_) => "regex",
            ScorerSpec::Code(_) => "code",
            ScorerSpec::Route(_) => "route",
            ScorerSpec::LoadPlan(_) => "load_plan",
        }
    }

    /// The extraction step used when the suite declares none: `last_number`
    /// for numeric, `first_json_object` for json, `none` otherwise (choice
    /// finds the letter itself, knowing how many options there are; regex
    /// applies its own pattern; code takes the first python code block).
    pub fn default_extract(&self) -> Extract {
        match self {
            ScorerSpec::Numeric(_) => Extract::LastNumber,
            ScorerSpec::Json(_) => Extract::FirstJsonObject,
            ScorerSpec::Exact(_)
            | ScorerSpec::Choice(_)
            | ScorerSpec::Regex(_)
            | ScorerSpec::Code(_)
            | ScorerSpec::Route(_)
            | ScorerSpec::LoadPlan(_) => Extract::None,
        }
    }

    /// Validates the parameters and builds the scorer. Returns every
    /// parameter problem (negative tolerance, bad regex, ...).
    pub fn build(&self) -> Result<Box<dyn Scorer>, Vec<FieldError>> {
        Ok(match self {
            ScorerSpec::Exact(spec) => Box::new(exact::ExactScorer::new(spec)),
            ScorerSpec::Numeric(spec) => Box::new(numeric::NumericScorer::new(spec)?),
            ScorerSpec::Choice(spec) => Box::new(choice::ChoiceScorer::new(spec)),
            ScorerSpec::Json(spec) => Box::new(json::JsonScorer::new(spec)?),
            ScorerSpec::Regex(spec) => Box::new(regex::RegexScorer::new(spec)?),
            ScorerSpec::Code(spec) => Box::new(code::CodeScorer::new(spec)?),
            ScorerSpec::Route(_) => Box::new(route::RouteScorer),
            ScorerSpec::LoadPlan(_) => Box::new(load_plan::LoadPlanScorer),
        })
    }

    /// Allowed keys of each family's table, for field-by-field checking.
    fn schema(kind: &str) -> Option<&'static [FieldSpec]> {
        Some(match kind {
            "exact" => &[P_KIND, P_CASE],
            "numeric" => &[P_KIND, P_ABS, P_REL],
            "choice" => &[P_KIND],
            "json" => &[P_KIND, P_ABS, P_REL, P_CASE, P_PARTIAL],
            "regex" => &[P_KIND, P_PATTERN, P_GROUP, P_CASE],
            "code" => &[P_KIND, P_TIMEOUT, P_MEMORY],
            "route" | "load_plan" => &[P_KIND],
            _ => return None,
        })
    }
}

const P_KIND: FieldSpec = required("kind", Kind::Str);
const P_CASE: FieldSpec = optional("case_sensitive", Kind::Bool);
const P_ABS: FieldSpec = optional("abs_tol", Kind::Number);
const P_REL: FieldSpec = optional("rel_tol", Kind::Number);
const P_PARTIAL: FieldSpec = optional("partial_credit", Kind::Bool);
const P_PATTERN: FieldSpec = required("pattern", Kind::Str);
const P_GROUP: FieldSpec = optional("group", Kind::UInt);
const P_LANG: FieldSpec = optional("lang", Kind::Str);
const P_TIMEOUT: FieldSpec = optional("timeout_ms", Kind::UInt);
const P_MEMORY: FieldSpec = optional("memory_mb", Kind::UInt);

/// Scores one output: applies `extract`, then the scorer described by `spec`.
/// Never panics; an invalid spec scores 0 with the reason in the detail.
pub fn score(spec: &ScorerSpec, extract: &Extract, task: &dyn Expected, completion: &str) -> Score {
    match spec.build() {
        Ok(scorer) => score_with(scorer.as_ref(), extract, task, completion),
        Err(errors) => {
            let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
            Score::zero(format!("invalid scorer: {}", reasons.join("; ")))
        }
    }
}

/// Like [`score`] with an already built scorer (build once, score many).
pub fn score_with(
    scorer: &dyn Scorer,
    extract: &Extract,
    task: &dyn Expected,
    completion: &str,
) -> Score {
    let answer = match extract.apply(completion) {
        Ok(answer) => answer,
        Err(why) => return Score::zero(why),
    };
    let mut score = scorer.score(task, &answer);
    if score.extracted.is_none() && *extract != Extract::None {
        score.extracted = Some(answer);
    }
    score.value = if score.value.is_finite() {
        score.value.clamp(0.0, 1.0)
    } else {
        0.0
    };
    score
}

/// A JSON value as answer text: strings as they are, anything else as compact JSON.
pub(crate) fn plain_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A quantity as written in details: whole numbers without decimals, others
/// to two decimals (`412`, `46.18`).
pub(crate) fn amount(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// A target and meta to score against, for scorer tests.
#[cfg(test)]
pub(crate) struct TestTask {
    pub(crate) target: Value,
    pub(crate) meta: Map<String, Value>,
}

#[cfg(test)]
impl Expected for TestTask {
    fn target(&self) -> &Value {
        &self.target
    }
    fn meta(&self) -> &Map<String, Value> {
        &self.meta
    }
}

/// A task with this target and no meta, for scorer tests.
#[cfg(test)]
pub(crate) fn test_task(target: Value) -> TestTask {
    TestTask {
        target,
        meta: Map::new(),
    }
}

/// A string quoted and shortened for a detail message.
pub(crate) fn quoted(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}...")
    }
}

/// Checks a scorer table at `path` field by field and converts it; records
/// every problem with `checker`.
pub(crate) fn check_scorer(
    checker: &mut Checker<'_>,
    value: &Value,
    path: &str,
) -> Option<ScorerSpec> {
    let Value::Object(map) = value else {
        checker.check_kind(value, path, Kind::Table);
        return None;
    };
    let kind_path = join(path, "kind");
    let schema = match map.get("kind") {
        None => {
            checker.report(
                &kind_path,
                format!(
                    "missing required field (one of: {})",
                    ScorerSpec::KINDS.join(", ")
                ),
            );
            return None;
        }
        Some(Value::String(kind)) => match ScorerSpec::schema(kind) {
            Some(schema) => schema,
            None => {
                checker.report(
                    &kind_path,
                    format!(
                        "unknown scorer {kind:?} (expected one of: {})",
                        ScorerSpec::KINDS.join(", ")
                    ),
                );
                return None;
            }
        },
        Some(other) => {
            checker.check_kind(other, &kind_path, Kind::Str);
            return None;
        }
    };
    if !checker.check_table(map, path, schema) {
        return None;
    }
    let spec = match serde_json::from_value::<ScorerSpec>(value.clone()) {
        Ok(spec) => spec,
        Err(e) => {
            checker.report(path, e.to_string());
            return None;
        }
    };
    match spec.build() {
        Ok(_) => Some(spec),
        Err(errors) => {
            for e in errors {
                checker.report(&join(path, &e.field), e.message);
            }
            None
        }
    }
}

/// Checks an extraction step at `path` (a name or a table) and converts it.
pub(crate) fn check_extract(
    checker: &mut Checker<'_>,
    value: &Value,
    path: &str,
) -> Option<Extract> {
    let names = Extract::NAMES.join(", ");
    let (kind, map) = match value {
        Value::String(name) => (name.as_str(), None),
        Value::Object(map) => match map.get("kind") {
            Some(Value::String(kind)) => (kind.as_str(), Some(map)),
            Some(other) => {
                checker.check_kind(other, &join(path, "kind"), Kind::Str);
                return None;
            }
            None => {
                checker.report(
                    &join(path, "kind"),
                    format!("missing required field (one of: {names})"),
                );
                return None;
            }
        },
        other => {
            let got = checker.describe(other);
            checker.report(path, format!("expected a step name or a table, got {got}"));
            return None;
        }
    };
    let schema: &[FieldSpec] = match kind {
        "regex" => &[P_KIND, P_PATTERN, P_GROUP],
        "first_code_block" => &[P_KIND, P_LANG],
        k if Extract::NAMES.contains(&k) => &[P_KIND],
        k => {
            let at = if map.is_some() {
                join(path, "kind")
            } else {
                path.to_string()
            };
            checker.report(
                &at,
                format!("unknown extraction step {k:?} (expected one of: {names})"),
            );
            return None;
        }
    };
    if let Some(map) = map
        && !checker.check_table(map, path, schema)
    {
        return None;
    }
    if map.is_none() && schema.iter().any(|f| f.required && f.name != "kind") {
        checker.report(path, format!("step {kind:?} needs parameters: write it as a table, e.g. {{ kind = \"regex\", pattern = '...' }}"));
        return None;
    }
    let step = match serde_json::from_value::<Extract>(value.clone()) {
        Ok(step) => step,
        Err(e) => {
            checker.report(path, e.to_string());
            return None;
        }
    };
    let errors = step.validate();
    for e in &errors {
        checker.report(&join(path, &e.field), e.message.clone());
    }
    errors.is_empty().then_some(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specs_parse_from_toml_and_json() {
        let spec: ScorerSpec = toml::from_str("kind = \"numeric\"\nabs_tol = 0.01\n")
            .unwrap_or(ScorerSpec::Choice(ChoiceSpec::default()));
        assert_eq!(
            spec,
            ScorerSpec::Numeric(NumericSpec {
                abs_tol: 0.01,
                rel_tol: 0.0
            })
        );
        let spec: Result<ScorerSpec, _> = serde_json::from_value(json!({"kind": "choice"}));
        assert_eq!(spec.ok(), Some(ScorerSpec::Choice(ChoiceSpec::default())));
        let bad: Result<ScorerSpec, _> =
            serde_json::from_value(json!({"kind": "numeric", "tolerance": 1}));
        assert!(bad.is_err());
        let bad: Result<ScorerSpec, _> = serde_json::from_value(json!({"kind": "choice", "x": 1}));
        assert!(bad.is_err());
        let bad: Result<ScorerSpec, _> = serde_json::from_value(json!({"kind": "fuzzy"}));
        assert!(bad.is_err());
    }

    #[test]
    fn specs_round_trip() {
        let specs = [
            ScorerSpec::Exact(ExactSpec {
                case_sensitive: true,
            }),
            ScorerSpec::Numeric(NumericSpec {
                abs_tol: 0.5,
                rel_tol: 0.01,
            }),
            ScorerSpec::Choice(ChoiceSpec::default()),
            ScorerSpec::Json(JsonSpec::default()),
            ScorerSpec::Regex(RegexSpec {
                pattern: "a(b)".into(),
                group: 1,
                case_sensitive: false,
            }),
            ScorerSpec::Code(CodeSpec {
                timeout_ms: 2000,
                memory_mb: 256,
            }),
            ScorerSpec::Route(RouteSpec::default()),
            ScorerSpec::LoadPlan(LoadPlanSpec::default()),
        ];
        for spec in specs {
            let text = serde_json::to_string(&spec).unwrap_or_default();
            let back: Result<ScorerSpec, _> = serde_json::from_str(&text);
            assert_eq!(back.ok(), Some(spec.clone()), "{text}");
            assert!(ScorerSpec::schema(spec.kind()).is_some());
        }
    }

    #[test]
    fn invalid_spec_scores_zero_with_reason() {
        let task = test_task(json!(1));
        let spec = ScorerSpec::Numeric(NumericSpec {
            abs_tol: -1.0,
            rel_tol: 0.0,
        });
        let s = score(&spec, &Extract::LastNumber, &task, "1");
        assert_eq!(s.value, 0.0);
        assert_eq!(
            s.detail,
            "invalid scorer: abs_tol: must be a finite number >= 0, got -1"
        );
    }
}
