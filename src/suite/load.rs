//! Loading a suite directory, reporting every problem as
//! `file:line: field: what is wrong`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{Problem, SuiteError};
use super::template::slots;
use super::toml_doc;
use super::{Split, Suite, SuiteConfig, TRAIN_SPLIT, Task, TaskDefaults};
use crate::fields::{Checker, FieldSpec, Kind, Lines, join, optional, required};
use crate::score::{check_extract, check_scorer};

/// Longest accepted JSONL line, in bytes (16 MiB).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Largest split file accepted (its tasks are all held in memory).
pub const MAX_SPLIT_BYTES: u64 = 256 * 1024 * 1024;

/// Name of the suite configuration file.
const CONFIG_FILE: &str = "suite.toml";

/// Options for [`load_suite_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Longest accepted JSONL line in bytes; longer lines are reported, not read.
    pub max_line_bytes: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            max_line_bytes: MAX_LINE_BYTES,
        }
    }
}

/// Loads and validates the suite in `dir` (see [`super`] for the format).
/// On failure the error lists every problem found in every file.
pub fn load_suite(dir: impl AsRef<Path>) -> Result<Suite, SuiteError> {
    load_suite_with(dir.as_ref(), &LoadOptions::default())
}

/// [`load_suite`] with explicit options.
pub fn load_suite_with(dir: &Path, options: &LoadOptions) -> Result<Suite, SuiteError> {
    let mut problems = Vec::new();
    let config_path = dir.join(CONFIG_FILE);
    let config = load_config(&config_path, &mut problems);
    let mut ids = HashMap::new();
    let mut splits = Vec::new();
    let mut origins = Vec::new();
    for (name, path) in split_files(dir, &mut problems) {
        let (tasks, lines) = read_split(&path, options, &mut ids, &mut problems);
        splits.push(Split { name, tasks });
        origins.push((path, lines));
    }
    if let Some((config, lines)) = &config {
        cross_check(
            config,
            lines,
            &config_path,
            &splits,
            &origins,
            &mut problems,
        );
    }
    match config {
        Some((config, _)) if problems.is_empty() => Ok(Suite {
            dir: dir.to_path_buf(),
            config,
            splits,
        }),
        _ => {
            let mut order: Vec<&Path> = vec![config_path.as_path()];
            order.extend(origins.iter().map(|(p, _)| p.as_path()));
            let rank = |p: &Problem| order.iter().position(|o| *o == p.file).unwrap_or(0);
            problems.sort_by_key(|p| (rank(p), p.line.unwrap_or(0)));
            Err(SuiteError { problems })
        }
    }
}

/// Reads a whole small file as UTF-8, reporting the line of the first bad byte.
fn read_text(path: &Path, problems: &mut Vec<Problem>) -> Option<String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            problems.push(Problem::file(path, format!("cannot read file: {e}")));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Some(
            text.strip_prefix('\u{feff}')
                .map(str::to_string)
                .unwrap_or(text),
        ),
        Err(e) => {
            let good = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line_start = bytes[..good]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            problems.push(Problem {
                file: path.to_path_buf(),
                line: Some(bytes[..good].iter().filter(|b| **b == b'\n').count() + 1),
                field: None,
                message: format!(
                    "not valid UTF-8 (byte {} of the line)",
                    good - line_start + 1
                ),
            });
            None
        }
    }
}

const SETTINGS: [FieldSpec; 8] = [
    optional("prompt", Kind::Str),
    optional("example", Kind::Str),
    optional("few_shot", Kind::UInt),
    optional("max_tokens", Kind::UInt),
    optional("stop", Kind::StrList),
    optional("chat", Kind::Bool),
    optional("scorer", Kind::Any),
    optional("extract", Kind::Any),
];

const PROMPT_SLOTS: [&str; 5] = ["input", "id", "category", "options", "examples"];
const EXAMPLE_SLOTS: [&str; 5] = ["input", "id", "category", "options", "target"];

/// Parses and checks `suite.toml`.
fn load_config(path: &Path, problems: &mut Vec<Problem>) -> Option<(SuiteConfig, Lines)> {
    let text = read_text(path, problems)?;
    let doc = toml_doc::parse(&text, path, problems)?;
    let before = problems.len();
    let mut checker = Checker::new(path, &doc.lines, true, problems);
    let schema = [
        required("name", Kind::Str),
        required("version", Kind::Str),
        optional("description", Kind::Str),
        optional("defaults", Kind::Table),
        optional("categories", Kind::Table),
    ];
    checker.check_table(&doc.root, "", &schema);
    {
        if let Some(Value::String(name)) = doc.root.get("name") {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                checker.report(
                    "name",
                    format!(
                        "{name:?} is not a valid suite name (use letters, digits, '.', '_' and '-')"
                    ),
                );
            }
        }
        if let Some(Value::String(version)) = doc.root.get("version")
            && version.trim().is_empty()
        {
            checker.report("version", "must not be empty");
        }
        if let Some(Value::Object(defaults)) = doc.root.get("defaults") {
            check_settings(&mut checker, defaults, "defaults");
        }
        if let Some(Value::Object(categories)) = doc.root.get("categories") {
            for (name, table) in categories {
                let path = join("categories", name);
                match table {
                    Value::Object(map) => check_settings(&mut checker, map, &path),
                    other => checker.check_kind(other, &path, Kind::Table),
                }
            }
        }
    }
    if problems.len() > before {
        return None;
    }
    let config = match serde_json::from_value::<SuiteConfig>(Value::Object(doc.root)) {
        Ok(config) => config,
        Err(e) => {
            problems.push(Problem::file(path, e.to_string()));
            return None;
        }
    };
    let mut checker = Checker::new(path, &doc.lines, true, problems);
    check_few_shot_templates(&mut checker, &config);
    if problems.len() > before {
        return None;
    }
    Some((config, doc.lines))
}

/// Checks a `[defaults]` or `[categories.<name>]` table.
fn check_settings(checker: &mut Checker<'_>, map: &Map<String, Value>, path: &str) {
    checker.check_table(map, path, &SETTINGS);
    if let Some(value) = map.get("scorer") {
        check_scorer(checker, value, &join(path, "scorer"));
    }
    if let Some(value) = map.get("extract") {
        check_extract(checker, value, &join(path, "extract"));
    }
    for (key, allowed) in [("prompt", &PROMPT_SLOTS), ("example", &EXAMPLE_SLOTS)] {
        if let Some(Value::String(template)) = map.get(key) {
            for slot in slots(template) {
                if !allowed.contains(&slot) && !slot.starts_with("meta.") {
                    let known: Vec<String> = allowed.iter().map(|s| format!("{{{s}}}")).collect();
                    checker.report(
                        &join(path, key),
                        format!(
                            "unknown placeholder {{{slot}}} (known: {}, {{meta.KEY}}; write {{{{ and }}}} for literal braces)",
                            known.join(", ")
                        ),
                    );
                }
            }
        }
    }
    if map.get("max_tokens").and_then(Value::as_u64) == Some(0) {
        checker.report(&join(path, "max_tokens"), "must be at least 1");
    }
    if let Some(Value::Array(stops)) = map.get("stop") {
        for (i, stop) in stops.iter().enumerate() {
            if stop.as_str() == Some("") {
                checker.report(
                    &format!("{}[{i}]", join(path, "stop")),
                    "empty stop sequence (it would end every generation at once)",
                );
            }
        }
    }
}

/// Path of the table that sets `key` for `category` (its override or `defaults`).
fn setting_path(
    config: &SuiteConfig,
    category: Option<&str>,
    key: &str,
    is_set: impl Fn(&TaskDefaults) -> bool,
) -> String {
    match category.and_then(|c| config.categories.get(c).map(|d| (c, d))) {
        Some((c, d)) if is_set(d) => join(&join("categories", c), key),
        _ => join("defaults", key),
    }
}

/// `few_shot > 0` needs an example template. Checked for each category
/// (all tasks have one of them) or, with no `[categories]`, for `[defaults]`.
fn check_few_shot_templates(checker: &mut Checker<'_>, config: &SuiteConfig) {
    let scopes: Vec<Option<&str>> = if config.categories.is_empty() {
        vec![None]
    } else {
        config.categories.keys().map(|k| Some(k.as_str())).collect()
    };
    let mut reported: Vec<String> = Vec::new();
    for scope in scopes {
        let few_shot = match scope {
            Some(category) => config.setting(category, |d| d.few_shot.as_ref()),
            None => config.defaults.few_shot.as_ref(),
        };
        let example = match scope {
            Some(category) => config.setting(category, |d| d.example.as_ref()),
            None => config.defaults.example.as_ref(),
        };
        let Some(&n) = few_shot else { continue };
        let at = setting_path(config, scope, "few_shot", |d| d.few_shot.is_some());
        if n == 0 || example.is_some() || reported.contains(&at) {
            continue;
        }
        checker.report(
            &at,
            format!("few_shot = {n} needs an `example` template, e.g. example = \"Q: {{input}}\\nA: {{target}}\""),
        );
        reported.push(at);
    }
}

/// The split files of a suite: every `*.jsonl` in `dir`, by name.
fn split_files(dir: &Path, problems: &mut Vec<Problem>) -> Vec<(String, PathBuf)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem::file(
                dir,
                format!("cannot read suite directory: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "jsonl"))
        .filter_map(|path| {
            let name = path.file_stem()?.to_str()?.to_string();
            Some((name, path))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        problems.push(Problem::file(
            dir,
            "no split files: expected JSONL files such as train.jsonl and test.jsonl next to suite.toml",
        ));
    }
    files
}

/// Result of reading one line with a length cap.
enum LineRead {
    Eof,
    Line,
    TooLong,
}

/// Reads one `\n`-terminated line into `buf` (without the `\n`), keeping at
/// most `cap` bytes; a longer line is consumed and reported as too long.
fn read_line_capped(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<LineRead> {
    buf.clear();
    let mut any = false;
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => LineRead::Eof,
                (true, true) => LineRead::TooLong,
                (true, false) => LineRead::Line,
            });
        }
        any = true;
        let newline = available.iter().position(|b| *b == b'\n');
        let content = newline.unwrap_or(available.len());
        if !too_long {
            if buf.len() + content > cap {
                too_long = true;
                buf.clear();
                buf.shrink_to(0);
            } else {
                buf.extend_from_slice(&available[..content]);
            }
        }
        let used = newline.map_or(available.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

const TASK_FIELDS: [FieldSpec; 6] = [
    required("id", Kind::Str),
    required("category", Kind::Str),
    required("input", Kind::Str),
    required("target", Kind::Any),
    optional("scorer", Kind::Any),
    optional("meta", Kind::Table),
];

/// Reads a split file line by line; returns its valid tasks and their lines.
/// `ids` maps every task id seen so far in the suite to where it was.
fn read_split(
    path: &Path,
    options: &LoadOptions,
    ids: &mut HashMap<String, (PathBuf, usize)>,
    problems: &mut Vec<Problem>,
) -> (Vec<Task>, Vec<usize>) {
    let mut tasks = Vec::new();
    let mut lines = Vec::new();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            problems.push(Problem::file(path, format!("cannot read file: {e}")));
            return (tasks, lines);
        }
    };
    // Every task of a split is held in memory; refuse a file that would
    // take more than a bounded amount before reading any of it.
    if let Ok(meta) = file.metadata()
        && meta.len() > MAX_SPLIT_BYTES
    {
        problems.push(Problem::file(
            path,
            format!(
                "file is {} bytes, more than the {} MiB a split may hold; split the tasks into several suites",
                meta.len(),
                MAX_SPLIT_BYTES >> 20
            ),
        ));
        return (tasks, lines);
    }
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut line_no = 0;
    let mut non_blank = 0;
    let line_problem = |line: usize, message: String| Problem {
        file: path.to_path_buf(),
        line: Some(line),
        field: None,
        message,
    };
    loop {
        line_no += 1;
        match read_line_capped(&mut reader, &mut buf, options.max_line_bytes) {
            Ok(LineRead::Eof) => break,
            Ok(LineRead::TooLong) => {
                non_blank += 1;
                problems.push(line_problem(
                    line_no,
                    format!(
                        "line is longer than the limit of {} bytes",
                        options.max_line_bytes
                    ),
                ));
                continue;
            }
            Ok(LineRead::Line) => {}
            Err(e) => {
                problems.push(line_problem(line_no, format!("read failed: {e}")));
                break;
            }
        }
        let mut bytes = buf.as_slice();
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                non_blank += 1;
                problems.push(line_problem(
                    line_no,
                    format!("not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1),
                ));
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        non_blank += 1;
        if let Some(task) = parse_task(path, line_no, text, problems) {
            match ids.get(&task.id) {
                Some((first_file, first_line)) => {
                    let at = if first_file == path {
                        format!("line {first_line}")
                    } else {
                        let name = first_file
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        format!("{name}:{first_line}")
                    };
                    problems.push(Problem {
                        file: path.to_path_buf(),
                        line: Some(line_no),
                        field: Some("id".into()),
                        message: format!("duplicate task id {:?} (first at {at})", task.id),
                    });
                }
                None => {
                    ids.insert(task.id.clone(), (path.to_path_buf(), line_no));
                    tasks.push(task);
                    lines.push(line_no);
                }
            }
        }
    }
    if non_blank == 0 && !problems.iter().any(|p| p.file == path) {
        problems.push(Problem::file(path, "split has no tasks"));
    }
    (tasks, lines)
}

/// Parses and checks one task line.
fn parse_task(path: &Path, line: usize, text: &str, problems: &mut Vec<Problem>) -> Option<Task> {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            problems.push(Problem::new(path, line, "", crate::jsonl::line_error(&e)));
            return None;
        }
    };
    let lines = Lines::Fixed(line);
    let before = problems.len();
    let mut checker = Checker::new(path, &lines, false, problems);
    let Value::Object(map) = &value else {
        let got = checker.describe(&value);
        checker.report(
            "",
            format!("expected a JSON object (one task per line), got {got}"),
        );
        return None;
    };
    checker.check_table(map, "", &TASK_FIELDS);
    {
        for key in ["id", "category", "input"] {
            if map
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|s| s.trim().is_empty())
            {
                checker.report(key, "must not be empty");
            }
        }
        if let Some(Value::String(id)) = map.get("id")
            && id.trim() != id
        {
            checker.report("id", format!("{id:?} has leading or trailing whitespace"));
        }
        if map.get("target").is_some_and(Value::is_null) {
            checker.report("target", "must not be null");
        }
        if let Some(scorer) = map.get("scorer") {
            check_scorer(&mut checker, scorer, "scorer");
        }
    }
    if problems.len() > before {
        return None;
    }
    match serde_json::from_value::<Task>(value) {
        Ok(task) => Some(task),
        Err(e) => {
            problems.push(Problem {
                file: path.to_path_buf(),
                line: Some(line),
                field: None,
                message: e.to_string(),
            });
            None
        }
    }
}

/// Checks tasks against the configuration: categories, scorers and targets,
/// template meta keys, and the few-shot pool.
fn cross_check(
    config: &SuiteConfig,
    config_lines: &Lines,
    config_path: &Path,
    splits: &[Split],
    origins: &[(PathBuf, Vec<usize>)],
    problems: &mut Vec<Problem>,
) {
    let declared: Vec<&str> = config.categories.keys().map(String::as_str).collect();
    let mut train_counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for (split, (path, lines)) in splits.iter().zip(origins) {
        let is_train = split.name == TRAIN_SPLIT;
        for (task, &line) in split.tasks.iter().zip(lines) {
            used.insert(&task.category);
            if is_train {
                *train_counts.entry(&task.category).or_default() += 1;
            }
            let lines = Lines::Fixed(line);
            let mut checker = Checker::new(path, &lines, false, problems);
            if !declared.is_empty() && !declared.contains(&task.category.as_str()) {
                checker.report(
                    "category",
                    format!(
                        "unknown category {:?} (suite.toml declares: {})",
                        task.category,
                        declared.join(", ")
                    ),
                );
            }
            check_task_scoring(&mut checker, config, task);
            let mut templates = vec![
                config
                    .setting(&task.category, |d| d.prompt.as_deref())
                    .unwrap_or(super::DEFAULT_PROMPT),
            ];
            if is_train
                && let Some(example) = config.setting(&task.category, |d| d.example.as_deref())
            {
                templates.push(example);
            }
            for template in templates {
                check_meta_slots(&mut checker, template, task);
            }
        }
    }
    let mut checker = Checker::new(config_path, config_lines, true, problems);
    for category in &used {
        let Some(&n) = config.setting(category, |d| d.few_shot.as_ref()) else {
            continue;
        };
        let have = train_counts.get(category).copied().unwrap_or(0);
        if n == 0 || have >= n {
            continue;
        }
        let at = setting_path(config, Some(category), "few_shot", |d| d.few_shot.is_some());
        let message = if splits.iter().any(|s| s.name == TRAIN_SPLIT) {
            format!(
                "few_shot = {n} but {TRAIN_SPLIT}.jsonl has only {have} task(s) in category {category:?}"
            )
        } else {
            format!(
                "few_shot = {n} needs a {TRAIN_SPLIT}.jsonl split with tasks of category {category:?}; there is none"
            )
        };
        checker.report(&at, message);
    }
}

/// The task has a scorer, and the scorer accepts its target.
fn check_task_scoring(checker: &mut Checker<'_>, config: &SuiteConfig, task: &Task) {
    let spec = task
        .scorer
        .as_ref()
        .or_else(|| config.setting(&task.category, |d| d.scorer.as_ref()));
    let Some(spec) = spec else {
        checker.report(
            "scorer",
            format!(
                "no scorer for this task: set `scorer` in [defaults], in [categories.{}] or on the task",
                task.category
            ),
        );
        return;
    };
    if let Ok(scorer) = spec.build()
        && let Err(e) = scorer.check_target(&task.target, &task.meta)
    {
        checker.report(&e.field, format!("{} ({} scorer)", e.message, spec.kind()));
    }
}

/// Every `{meta.KEY}` and `{options}` the template uses exists in the task's meta.
fn check_meta_slots(checker: &mut Checker<'_>, template: &str, task: &Task) {
    for slot in slots(template) {
        if let Some(key) = slot.strip_prefix("meta.")
            && !task.meta.contains_key(key)
        {
            checker.report(
                &join("meta", key),
                format!("the template uses {{{slot}}} but this task has no meta.{key}"),
            );
        }
        if slot == "options" {
            let ok = matches!(task.meta.get("options"), Some(Value::Array(items)) if items.iter().all(Value::is_string));
            if !ok {
                checker.report(
                    "meta.options",
                    "the template uses {options} but this task has no meta.options list of strings",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], cap: usize) -> Vec<(String, Vec<u8>)> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line_capped(&mut reader, &mut buf, cap) {
                Ok(LineRead::Eof) => break,
                Ok(LineRead::Line) => out.push(("line".to_string(), buf.clone())),
                Ok(LineRead::TooLong) => out.push(("long".to_string(), buf.clone())),
                Err(e) => panic!("{e}"),
            }
        }
        out
    }

    #[test]
    fn capped_lines() {
        let got = read_all(b"abc\nabcdefghij\n\nxyz", 5);
        assert_eq!(
            got,
            vec![
                ("line".to_string(), b"abc".to_vec()),
                ("long".to_string(), Vec::new()),
                ("line".to_string(), Vec::new()),
                ("line".to_string(), b"xyz".to_vec()),
            ]
        );
        assert_eq!(
            read_all(b"abcde\n", 5),
            vec![("line".to_string(), b"abcde".to_vec())]
        );
        assert_eq!(
            read_all(b"abcdef", 5),
            vec![("long".to_string(), Vec::new())]
        );
    }
}
