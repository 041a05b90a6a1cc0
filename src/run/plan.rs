//! Planning a run: the config's suites loaded and every (task, request)
//! built, before any model is asked anything.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{GateConfig, ModelSpec, SuiteRef};
use crate::diagnostics::{Problem, Problems};
use crate::model::GenerationRequest;
use crate::run::contamination::{self, Contamination};
use crate::suite::{self, Suite, Task};

/// One suite of the run with the requests every model will be asked.
#[derive(Debug, Clone)]
pub struct PlannedSuite {
    /// Position in the config's `[[suites]]`.
    pub index: usize,
    /// The loaded suite.
    pub suite: Suite,
    /// The split evaluated.
    pub split: String,
    /// The split's file, for messages.
    pub file: PathBuf,
    /// Tasks evaluated (after `limit`), in file order, with their line numbers.
    pub items: Vec<PlannedItem>,
    /// Answers drawn per item and model.
    pub samples: u32,
}

/// One task and the requests built for it.
#[derive(Debug, Clone)]
pub struct PlannedItem {
    /// The task.
    pub task: Task,
    /// Its line in the split file.
    pub line: usize,
    /// The requests a model is asked with the suite's own prompts, one per
    /// sample: index `s` is sample `s`.
    pub requests: Vec<GenerationRequest>,
    /// The same requests under the other prompt templates the run's models
    /// use, by their `few_shot` (see [`PlannedItem::requests_for`]).
    pub templated: BTreeMap<usize, Vec<GenerationRequest>>,
}

/// How many answers to draw per item, and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Answers per item (at least 1).
    pub samples: u32,
    /// Temperature replacing the suite's (greedy) one, when set.
    pub temperature: Option<f32>,
    /// Nucleus mass replacing the suite's, when set.
    pub top_p: Option<f32>,
    /// Base seed: sample `s` is drawn with seed `seed + s`.
    pub seed: u64,
}

impl Sampling {
    /// One greedy answer per item, the suite's own settings.
    pub const SINGLE: Sampling = Sampling {
        samples: 1,
        temperature: None,
        top_p: None,
        seed: 0,
    };

    /// The requests for one task: `base` as built from the suite, with this
    /// sampling applied. Sample 0 keeps `base.id`; sample `s > 0` is
    /// `"{id}#{s}"`. The seed is only set when sampling is on, so greedy
    /// requests (and their transcript keys) do not depend on the run seed.
    pub fn requests(&self, base: GenerationRequest) -> Vec<GenerationRequest> {
        let mut base = base;
        if let Some(t) = self.temperature {
            base.settings.temperature = t;
        }
        if let Some(p) = self.top_p {
            base.settings.top_p = p;
        }
        let sampled = base.settings.temperature > 0.0;
        (0..self.samples.max(1))
            .map(|s| {
                let mut r = base.clone();
                if sampled {
                    r.settings.seed = self.seed.wrapping_add(u64::from(s));
                }
                r.id = sample_request_id(&base.id, s);
                r
            })
            .collect()
    }
}

pub use crate::model::sample_request_id;

impl PlannedSuite {
    /// The suite's name.
    pub fn name(&self) -> &str {
        &self.suite.config.name
    }

    /// Every (item, sample) in the order a run asks them: by prompt, so
    /// that prompts sharing a prefix (a category's instructions and
    /// few-shot examples) are asked together; ties in plan order.
    /// `model` is asked only the items of the categories it takes, with
    /// its own template.
    pub fn asking_order(&self, model: &ModelSpec) -> Vec<(&PlannedItem, u32)> {
        let mut work: Vec<(&PlannedItem, u32)> = self
            .items
            .iter()
            .filter(|i| model.takes(self.name(), &i.task.category))
            .flat_map(|i| (0..self.samples).map(move |n| (i, n)))
            .collect();
        work.sort_by(|(a, n), (b, m)| {
            a.prompt(model.few_shot, *n)
                .cmp(b.prompt(model.few_shot, *m))
        });
        work
    }
}

impl PlannedItem {
    /// The requests of a model whose template has `few_shot` examples
    /// (`None`: the suite's own template), one per sample.
    pub fn requests_for(&self, few_shot: Option<usize>) -> &[GenerationRequest] {
        few_shot
            .and_then(|n| self.templated.get(&n))
            .unwrap_or(&self.requests)
    }

    /// The prompt of sample `sample` under a template ("" if the item has
    /// no such sample).
    pub fn prompt(&self, few_shot: Option<usize>, sample: u32) -> &str {
        self.requests_for(few_shot)
            .get(sample as usize)
            .map_or("", |r| r.prompt.as_str())
    }
}

/// A validated config with its suites loaded.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config.
    pub config: GateConfig,
    /// Suites in config order.
    pub suites: Vec<PlannedSuite>,
    /// Students' training transcripts that hold gated items, or could not
    /// be checked ([`crate::run::contamination`]); only with `[run]
    /// allow_contamination = true` does a plan hold overlaps.
    pub contamination: Vec<Contamination>,
}

impl Plan {
    /// Whether any planned item is scored by running code (in the sandbox).
    pub fn scores_code(&self) -> bool {
        self.suites.iter().any(|s| {
            s.items.iter().any(|i| {
                matches!(
                    s.suite.scorer_for(&i.task),
                    Some(crate::score::ScorerSpec::Code(_))
                )
            })
        })
    }

    /// The (task, sample) units of work of one model: the items of the
    /// categories it takes.
    pub fn work_of(&self, model: &ModelSpec) -> usize {
        self.suites
            .iter()
            .map(|s| {
                let items = s.items.iter();
                items
                    .filter(|i| model.takes(s.name(), &i.task.category))
                    .count()
                    * s.samples as usize
            })
            .sum()
    }

    /// Total (model, task, sample) units of work.
    pub fn total_work(&self) -> usize {
        self.config.models().map(|m| self.work_of(m)).sum()
    }

    /// What the plan holds, in one line (`validate`): the teacher, how many
    /// students, suites and items, and the model calls a run makes.
    pub fn overview(&self) -> String {
        let items: usize = self.suites.iter().map(|s| s.items.len()).sum();
        format!(
            "teacher {}, {} student(s), {} suite(s), {} items, {} model calls",
            self.config.teacher.name,
            self.config.students.len(),
            self.suites.len(),
            items,
            self.total_work()
        )
    }
}

/// Loads every suite the config names and builds the requests. All problems
/// in all suites are reported together.
pub fn plan(config: GateConfig) -> Result<Plan, Problems> {
    let mut problems = Vec::new();
    let mut suites = Vec::new();
    let mut names = BTreeMap::new();
    // The prompt templates other than the suites' own.
    let templates: std::collections::BTreeSet<usize> =
        config.models().filter_map(|m| m.few_shot).collect();
    for (index, sref) in config.suites.iter().enumerate() {
        match plan_suite(&config, index, sref, &templates, &mut names) {
            Ok(suite) => suites.push(suite),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        problems = unknown_references(&config, &suites, &names);
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let mut plan = Plan {
        config,
        suites,
        contamination: Vec::new(),
    };
    plan.contamination = contamination::check(&plan)?;
    if !plan.config.run.allow_contamination {
        contamination::refuse(&plan.contamination, &plan)?;
    }
    Ok(plan)
}

/// The items of `config.suites[index]` (`sref`) with their requests under
/// the suite's template and each of `templates`; `names` maps the suite
/// names planned so far to their index (a name seen twice is a problem).
fn plan_suite(
    config: &GateConfig,
    index: usize,
    sref: &SuiteRef,
    templates: &std::collections::BTreeSet<usize>,
    names: &mut BTreeMap<String, usize>,
) -> Result<PlannedSuite, Vec<Problem>> {
    let problem = |field: &str, message: String| {
        vec![config.problem(format!("suites[{index}].{field}"), message)]
    };
    if !sref.path.is_dir() {
        let what = if sref.path.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        let message = format!("suite directory {} {what}", sref.path.display());
        return Err(problem("path", message));
    }
    let loaded = suite::load_suite(&sref.path).map_err(|e| e.problems)?;
    let Some(split) = loaded.split(&sref.split) else {
        let splits: Vec<&str> = loaded.splits.iter().map(|s| s.name.as_str()).collect();
        let message = format!(
            "suite {} has no split {:?} (it has: {})",
            sref.path.display(),
            sref.split,
            splits.join(", ")
        );
        return Err(problem("split", message));
    };
    if let Some(first) = names.insert(loaded.config.name.clone(), index) {
        let message = format!(
            "suite {:?} is listed twice (also suites[{first}])",
            loaded.config.name
        );
        return Err(problem("path", message));
    }
    let unknown: Vec<String> = sref
        .categories
        .iter()
        .chain(sref.category_limits.keys())
        .filter(|c| !split.tasks.iter().any(|t| &t.category == *c))
        .map(|c| format!("{c:?}"))
        .collect();
    if !unknown.is_empty() {
        let message = format!(
            "the {} split of suite {:?} has no category {} (it has: {})",
            sref.split,
            loaded.config.name,
            unknown.join(", "),
            split.categories().join(", ")
        );
        return Err(problem("categories", message));
    }
    let file = loaded.dir.join(format!("{}.jsonl", split.name));
    let lines = task_lines(&file);
    let sampling = Sampling {
        samples: sref.samples(),
        temperature: sref.temperature,
        top_p: sref.top_p,
        seed: config.run.seed,
    };
    let selected = select_with(
        &split.tasks,
        &sref.categories,
        sref.limit,
        &sref.category_limits,
    );
    let items = selected
        .into_iter()
        .map(|i| {
            let task = &split.tasks[i];
            let requests = |few_shot: Option<usize>| {
                sampling.requests(GenerationRequest {
                    id: format!("{}/{}", loaded.config.name, task.id),
                    prompt: suite::build_prompt_with(&loaded, task, few_shot),
                    settings: loaded.generation_settings(task),
                })
            };
            PlannedItem {
                requests: requests(None),
                templated: templates.iter().map(|&n| (n, requests(Some(n)))).collect(),
                task: task.clone(),
                line: lines.get(i).copied().unwrap_or(0),
            }
        })
        .collect();
    Ok(PlannedSuite {
        index,
        file,
        split: sref.split.clone(),
        suite: loaded,
        items,
        samples: sampling.samples,
    })
}

/// A student's `categories` and an override's `suite` that name nothing
/// planned (reported only once every suite loaded).
fn unknown_references(
    config: &GateConfig,
    suites: &[PlannedSuite],
    names: &BTreeMap<String, usize>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, student) in config.students.iter().enumerate() {
        for c in &student.categories {
            let (suite, category) = c.split_once('/').unwrap_or((c, ""));
            let found = suites.iter().find(|s| s.name() == suite);
            let known = found.is_some_and(|s| s.items.iter().any(|i| i.task.category == category));
            if !known && problems.is_empty() {
                problems.push(config.problem(
                    format!("students[{i}].categories"),
                    match found {
                        None => format!("{c:?}: no suite named {suite:?} in this run"),
                        Some(s) => format!(
                            "{c:?}: suite {suite:?} has no planned item of category {category:?} \
                             (its planned categories: {})",
                            suite::categories_of(s.items.iter().map(|i| &i.task)).join(", ")
                        ),
                    },
                ));
            }
        }
    }
    for (i, o) in config.gate.overrides.iter().enumerate() {
        if !names.contains_key(&o.suite) && problems.is_empty() {
            problems.push(config.problem(
                format!("gate.overrides[{i}].suite"),
                format!("no suite named {:?} in this run", o.suite),
            ));
        }
    }
    problems
}

fn task_lines(file: &std::path::Path) -> Vec<usize> {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(file) else {
        return Vec::new();
    };
    std::io::BufReader::new(f)
        .split(b'\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.ok()?;
            (!line.iter().all(u8::is_ascii_whitespace)).then_some(i + 1)
        })
        .collect()
}

/// The tasks a `limit` selects, as indices in file order: round-robin over
/// the categories (in order of first appearance), so a limited run samples
/// every category even when the file is sorted by category. Without a limit,
/// every task.
/// With `categories` not empty, only the tasks of those categories count.
/// A category in `category_limits` gets its first N tasks instead of its
/// share of the limit.
pub fn select_with(
    tasks: &[Task],
    categories: &[String],
    limit: Option<usize>,
    category_limits: &BTreeMap<String, usize>,
) -> Vec<usize> {
    if category_limits.is_empty() {
        return select(tasks, categories, limit);
    }
    let mut picked: Vec<usize> = select(tasks, categories, limit)
        .into_iter()
        .filter(|&i| !category_limits.contains_key(&tasks[i].category))
        .collect();
    for (category, n) in category_limits {
        let wanted = categories.is_empty() || categories.contains(category);
        picked.extend(
            (0..tasks.len())
                .filter(|&i| wanted && tasks[i].category == *category)
                .take(*n),
        );
    }
    picked.sort_unstable();
    picked
}

/// The tasks a `limit` selects (see [`select_with`]) without per-category
/// limits.
pub fn select(tasks: &[Task], categories: &[String], limit: Option<usize>) -> Vec<usize> {
    let wanted = |t: &Task| categories.is_empty() || categories.contains(&t.category);
    let eligible = tasks.iter().filter(|t| wanted(t)).count();
    let Some(limit) = limit.filter(|&l| l < eligible) else {
        return (0..tasks.len()).filter(|&i| wanted(&tasks[i])).collect();
    };
    let mut order: Vec<&str> = Vec::new();
    let mut by_category: std::collections::HashMap<&str, std::collections::VecDeque<usize>> =
        Default::default();
    for (i, t) in tasks.iter().enumerate().filter(|(_, t)| wanted(t)) {
        let queue = by_category.entry(t.category.as_str()).or_default();
        if queue.is_empty() && !order.contains(&t.category.as_str()) {
            order.push(t.category.as_str());
        }
        queue.push_back(i);
    }
    let mut picked = Vec::with_capacity(limit);
    while picked.len() < limit {
        for c in &order {
            if picked.len() == limit {
                break;
            }
            if let Some(i) = by_category.get_mut(c).and_then(|q| q.pop_front()) {
                picked.push(i);
            }
        }
    }
    picked.sort_unstable();
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: usize, category: &str) -> Task {
        serde_json::from_value(serde_json::json!({
            "id": format!("t{id}"), "category": category, "input": "x", "target": 1
        }))
        .unwrap()
    }

    #[test]
    fn limit_takes_categories_in_turn_and_keeps_file_order() {
        let tasks: Vec<Task> = (0..9).map(|i| task(i, ["a", "b", "c"][i / 3])).collect();
        // a: 0 1 2, b: 3 4 5, c: 6 7 8 -> round robin a0 b3 c6 a1 b4
        assert_eq!(select(&tasks, &[], Some(5)), vec![0, 1, 3, 4, 6]);
        assert_eq!(select(&tasks, &[], None), (0..9).collect::<Vec<_>>());
        assert_eq!(select(&tasks, &[], Some(20)).len(), 9);
    }

    #[test]
    fn a_category_limit_replaces_the_categorys_share() {
        let tasks: Vec<Task> = (0..12).map(|i| task(i, ["a", "b", "c"][i / 4])).collect();
        let limits = BTreeMap::from([("c".to_string(), 3)]);
        // limit 3: a0 b4 (c's share replaced by its first 3).
        assert_eq!(
            select_with(&tasks, &[], Some(3), &limits),
            vec![0, 4, 8, 9, 10]
        );
        assert_eq!(
            select_with(&tasks, &[], None, &limits),
            vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        );
        let only_a = vec!["a".to_string()];
        assert_eq!(select_with(&tasks, &only_a, Some(2), &limits), vec![0, 1]);
    }

    #[test]
    fn categories_filter_before_the_limit() {
        let tasks: Vec<Task> = (0..9).map(|i| task(i, ["a", "b", "c"][i / 3])).collect();
        let c = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(select(&tasks, &c(&["c"]), None), vec![6, 7, 8]);
        assert_eq!(select(&tasks, &c(&["c"]), Some(2)), vec![6, 7]);
        assert_eq!(select(&tasks, &c(&["a", "c"]), Some(3)), vec![0, 1, 6]);
        assert_eq!(
            select(&tasks, &c(&["a", "c"]), Some(9)),
            vec![0, 1, 2, 6, 7, 8]
        );
    }

    #[test]
    fn samples_get_their_own_seeds_and_ids() {
        let base = GenerationRequest {
            id: "s/t1".into(),
            prompt: "p".into(),
            settings: crate::model::GenerationSettings::default(),
        };
        let greedy = Sampling {
            seed: 7,
            ..Sampling::SINGLE
        }
        .requests(base.clone());
        assert_eq!(greedy, vec![base.clone()]);
        let sampled = Sampling {
            samples: 3,
            temperature: Some(0.8),
            top_p: Some(0.9),
            seed: 7,
        }
        .requests(base);
        let ids: Vec<&str> = sampled.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["s/t1", "s/t1#1", "s/t1#2"]);
        let seeds: Vec<u64> = sampled.iter().map(|r| r.settings.seed).collect();
        assert_eq!(seeds, [7, 8, 9]);
        assert!(
            sampled
                .iter()
                .all(|r| r.settings.temperature == 0.8 && r.settings.top_p == 0.9)
        );
    }

    #[test]
    fn limit_when_a_category_runs_out() {
        let tasks: Vec<Task> = ["a", "b", "b", "b"]
            .iter()
            .enumerate()
            .map(|(i, c)| task(i, c))
            .collect();
        assert_eq!(select(&tasks, &[], Some(3)), vec![0, 1, 2]);
    }
}
