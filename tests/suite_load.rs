//! Loading suites: the good fixture, and every kind of bad input with the
//! exact `file:line: field: message` a suite author sees.

use std::path::{Path, PathBuf};

use distill_gate::suite::{
    LoadOptions, Suite, Task, build_prompt, few_shot_examples, list_suites, load_suite,
    load_suite_with,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/suites")
        .join(name)
}

fn mixed() -> Suite {
    match load_suite(fixture("mixed")) {
        Ok(suite) => suite,
        Err(e) => panic!("fixture must load:\n{e}"),
    }
}

fn task<'a>(suite: &'a Suite, id: &str) -> &'a Task {
    suite
        .splits
        .iter()
        .flat_map(|s| &s.tasks)
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("no task {id}"))
}

const TOML: &str = "name = \"t\"\nversion = \"1\"\n\n[defaults]\nscorer = { kind = \"exact\" }\n";

/// Writes a suite into a temp dir and returns its problems, with the temp
/// path removed so messages read `test.jsonl:3: ...`.
fn problems_of(files: &[(&str, &[u8])]) -> Vec<String> {
    problems_with(files, &LoadOptions::default())
}

fn problems_with(files: &[(&str, &[u8])], options: &LoadOptions) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap_or_else(|e| panic!("write: {e}"));
    }
    match load_suite_with(dir.path(), options) {
        Ok(_) => Vec::new(),
        Err(e) => {
            let prefix = format!("{}/", dir.path().display());
            let text = e.to_string();
            assert_eq!(text.lines().count(), e.problems.len());
            text.lines().map(|l| l.replace(&prefix, "")).collect()
        }
    }
}

fn one(files: &[(&str, &[u8])]) -> String {
    let problems = problems_of(files);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems[0].clone()
}

const GOOD: &[u8] = b"{\"id\": \"a\", \"category\": \"c\", \"input\": \"q\", \"target\": \"x\"}\n";

#[test]
fn good_suite_loads_with_splits_and_settings() {
    let suite = mixed();
    assert_eq!(suite.config.name, "mixed");
    let names: Vec<(&str, usize)> = suite
        .splits
        .iter()
        .map(|s| (s.name.as_str(), s.tasks.len()))
        .collect();
    assert_eq!(names, vec![("test", 6), ("train", 8)]);

    let mcq = task(&suite, "mcq-1");
    let settings = suite.generation_settings(mcq);
    assert_eq!((settings.max_tokens, settings.chat), (8, true));
    assert_eq!(settings.stop, vec!["\nQ:".to_string()]);
    assert_eq!(settings.temperature, 0.0);
    let arith = task(&suite, "arith-1");
    let settings = suite.generation_settings(arith);
    assert_eq!((settings.max_tokens, settings.chat), (64, false));
    assert_eq!(suite.extract_for(arith).name(), "last_number");
    assert_eq!(suite.scorer_for(arith).map(|s| s.kind()), Some("numeric"));
    // the task's own scorer wins over the category/defaults
    assert_eq!(
        suite
            .scorer_for(task(&suite, "capital-2"))
            .map(|s| s.kind()),
        Some("regex")
    );
    // categories with their own scorer do not inherit [defaults] extract
    // ("first_line", chosen for the default exact scorer): the scorer's
    // default applies; the same for a task with its own scorer
    assert_eq!(
        suite.extract_for(task(&suite, "capital-1")).name(),
        "first_line"
    );
    assert_eq!(suite.extract_for(mcq).name(), "none");
    assert_eq!(suite.extract_for(task(&suite, "capital-2")).name(), "none");
    assert_eq!(
        suite.extract_for(task(&suite, "plan-1")).name(),
        "first_json_object"
    );
}

#[test]
fn prompts_are_exact_and_few_shot_is_hash_ordered() {
    let suite = mixed();
    // Ranks are sha256("mixed\0" + id), computed independently with Python's
    // hashlib: arith-t1 4475d7aa.. < arith-t2 667984a5.. < arith-t3 be7cbb7c..;
    // capital-t2 23df6605.. < capital-t1 d53ee0b7.. < capital-t3 dfc9af42..;
    // mcq-t1 4d38d9a2.. < mcq-t2 54c56fd2..
    assert_eq!(
        build_prompt(&suite, task(&suite, "arith-1")),
        "Answer the question.\n\nQ: What is 12 * 3?\nA: 36\n\nQ: What is 100 / 8?\nA: 12.5\n\nQ: What is 1,200 + 34?\nA:"
    );
    // alias lists show their first alias
    assert_eq!(
        build_prompt(&suite, task(&suite, "capital-1")),
        "Answer the question.\n\nQ: Capital of Spain?\nA: Madrid\n\nQ: Capital of Italy?\nA: Rome\n\nQ: Capital of France?\nA:"
    );
    // a choice index target is shown as its letter; {options} lists the options
    assert_eq!(
        build_prompt(&suite, task(&suite, "mcq-1")),
        "Largest planet?\nA. Mars\nB. Venus\nC. Jupiter\nAnswer: C\n\nWhich is a fruit?\nA. Carrot\nB. Apple\nC. Potato\nAnswer with a letter."
    );
    // few_shot = 0 and literal JSON braces in the template
    assert_eq!(
        build_prompt(&suite, task(&suite, "plan-1")),
        "Plan the shipment as JSON like {\"truck\": <id>, \"stops\": [...]}.\nShip 4 pallets from A to C via B."
    );
    // a train task never sees itself: the next ranked example replaces it
    let ids: Vec<&str> = few_shot_examples(&suite, task(&suite, "arith-t1"))
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(ids, vec!["arith-t2", "arith-t3"]);
}

#[test]
fn few_shot_never_uses_test_items_or_the_task() {
    let suite = mixed();
    let train: Vec<&str> = suite.train().iter().map(|t| t.id.as_str()).collect();
    for split in &suite.splits {
        for t in &split.tasks {
            for example in few_shot_examples(&suite, t) {
                assert!(
                    train.contains(&example.id.as_str()),
                    "{} not from train",
                    example.id
                );
                assert_ne!(example.id, t.id);
                assert_ne!(example.input, t.input);
                assert_eq!(example.category, t.category);
            }
        }
    }
}

#[test]
fn few_shot_does_not_depend_on_file_order() {
    let suite = mixed();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    for name in ["suite.toml", "test.jsonl"] {
        std::fs::copy(fixture("mixed").join(name), dir.path().join(name))
            .unwrap_or_else(|e| panic!("copy: {e}"));
    }
    let train = std::fs::read_to_string(fixture("mixed").join("train.jsonl")).unwrap_or_default();
    let reversed: Vec<&str> = train.lines().rev().collect();
    std::fs::write(dir.path().join("train.jsonl"), reversed.join("\n"))
        .unwrap_or_else(|e| panic!("write: {e}"));
    let shuffled = load_suite(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    for t in suite.split("test").map_or(&[][..], |s| &s.tasks) {
        assert_eq!(
            build_prompt(&suite, t),
            build_prompt(&shuffled, t),
            "{}",
            t.id
        );
    }
}

#[test]
fn scoring_realistic_outputs_through_the_suite() {
    let suite = mixed();
    let cases = [
        (
            "arith-1",
            "1,200 + 34 = 1,234.\nSo the answer is **1,234**.",
            1.0,
        ),
        ("arith-2", "15% of 80 is 0.15 * 80 = 12.0", 1.0),
        ("arith-2", "It is 12.5", 0.0),
        (
            "capital-1",
            "Paris.\nParis has been the capital since...",
            1.0,
        ),
        ("capital-1", "The capital of France is Paris.", 0.0),
        ("capital-2", "The capital is Brasília, built in 1960.", 1.0),
        ("mcq-1", "An apple is a fruit, so the answer is (B).", 1.0),
        ("mcq-1", "Carrot", 0.0),
        (
            "plan-1",
            "Here is the plan:\n```json\n{\"truck\": 7, \"stops\": [\"A\", \"B\", \"C\"], \"pallets\": \"4\"}\n```",
            1.0,
        ),
    ];
    for (id, output, want) in cases {
        let score = suite.score(task(&suite, id), output);
        assert_eq!(score.value, want, "{id}: {output:?} -> {}", score.detail);
    }
    let partial = suite.score(
        task(&suite, "plan-1"),
        "{\"truck\": 8, \"stops\": [\"A\", \"C\"], \"pallets\": 4}",
    );
    assert!((partial.value - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        partial.detail,
        "1/3 fields; stops: expected 3 items, got 2; truck: expected 7, got 8 (|diff| 1 > tol 0.5)"
    );
    let missing = suite.score(task(&suite, "arith-1"), "I cannot compute that.");
    assert_eq!(
        (missing.value, missing.detail.as_str()),
        (0.0, "no number in the output")
    );
}

#[test]
fn malformed_json_line() {
    let got = problems_of(&[
        ("suite.toml", TOML.as_bytes()),
        ("test.jsonl", b"{\"id\": \"a\", \"category\": \"c\", \"input\": \"q\", \"target\": 1}\n{\"id\": \"b\" \"category\": \"c\"}\n"),
    ]);
    assert_eq!(
        got,
        vec!["test.jsonl:2: malformed JSON: expected `,` or `}` (column 12)"]
    );
}

#[test]
fn every_bad_line_is_reported_in_order() {
    let lines = b"{\"id\": \"a\", \"category\": \"c\", \"input\": \"q\", \"target\": \"x\", \"answer\": 1}\n\
{\"id\": \"b\", \"input\": \"q\", \"target\": \"x\"}\n\
{\"id\": 3, \"category\": \"c\", \"input\": [\"q\"], \"target\": \"x\", \"meta\": \"m\"}\n\
\n\
[1, 2]\n\
{\"id\": \"a\", \"category\": \"c\", \"input\": \"q\", \"target\": \"x\"}\n\
{\"id\": \"a\", \"category\": \"c\", \"input\": \"q\", \"target\": \"y\"}\n\
{\"id\": \"\", \"category\": \"c\", \"input\": \" \", \"target\": null}\n";
    let got = problems_of(&[("suite.toml", TOML.as_bytes()), ("test.jsonl", lines)]);
    assert_eq!(
        got,
        vec![
            "test.jsonl:1: answer: unknown field (expected one of: id, category, input, target, scorer, meta)",
            "test.jsonl:2: category: missing required field",
            "test.jsonl:3: id: expected a string, got integer 3",
            "test.jsonl:3: input: expected a string, got an array",
            "test.jsonl:3: meta: expected an object, got string \"m\"",
            "test.jsonl:5: expected a JSON object (one task per line), got an array",
            "test.jsonl:7: id: duplicate task id \"a\" (first at line 6)",
            "test.jsonl:8: id: must not be empty",
            "test.jsonl:8: input: must not be empty",
            "test.jsonl:8: target: must not be null",
        ]
    );
}

#[test]
fn duplicate_ids_across_splits() {
    let got = one(&[
        ("suite.toml", TOML.as_bytes()),
        (
            "train.jsonl",
            b"\n{\"id\": \"a\", \"category\": \"c\", \"input\": \"q1\", \"target\": \"x\"}\n",
        ),
        ("test.jsonl", GOOD),
    ]);
    // test.jsonl is read before train.jsonl (name order)
    assert_eq!(
        got,
        "train.jsonl:2: id: duplicate task id \"a\" (first at test.jsonl:1)"
    );
}

#[test]
fn empty_split_and_no_splits() {
    assert_eq!(
        one(&[("suite.toml", TOML.as_bytes()), ("test.jsonl", b"\n  \n")]),
        "test.jsonl: split has no tasks"
    );
    let got = one(&[("suite.toml", TOML.as_bytes())]);
    assert!(
        got.ends_with(": no split files: expected JSONL files such as train.jsonl and test.jsonl next to suite.toml"),
        "{got}"
    );
}

#[test]
fn missing_suite_toml() {
    let got = one(&[("test.jsonl", GOOD)]);
    assert!(got.starts_with("suite.toml: cannot read file: "), "{got}");
}

#[test]
fn non_utf8_line_is_located() {
    let got = problems_of(&[
        ("suite.toml", TOML.as_bytes()),
        ("test.jsonl", b"{\"id\": \"a\", \"category\": \"c\", \"input\": \"q\", \"target\": \"x\"}\n{\"id\": \"b\xff\"}\n"),
    ]);
    assert_eq!(
        got,
        vec!["test.jsonl:2: not valid UTF-8 (byte 10 of the line)"]
    );
    let got = one(&[
        ("suite.toml", b"name = \"t\"\nversion = \"\xc3\"\n"),
        ("test.jsonl", GOOD),
    ]);
    assert_eq!(got, "suite.toml:2: not valid UTF-8 (byte 12 of the line)");
}

#[test]
fn overlong_line_is_reported_not_read() {
    let long = format!(
        "{{\"id\": \"a\", \"category\": \"c\", \"input\": \"{}\", \"target\": \"x\"}}\n{}",
        "x".repeat(200),
        String::from_utf8_lossy(GOOD).replace("\"a\"", "\"b\"")
    );
    let got = problems_with(
        &[
            ("suite.toml", TOML.as_bytes()),
            ("test.jsonl", long.as_bytes()),
        ],
        &LoadOptions {
            max_line_bytes: 100,
        },
    );
    assert_eq!(
        got,
        vec!["test.jsonl:1: line is longer than the limit of 100 bytes"]
    );
}

#[test]
fn toml_errors_carry_lines() {
    let got = one(&[
        (
            "suite.toml",
            b"name = \"t\"\nversion = \"1\"\n\n[defaults]\nprompt = \"unterminated\n",
        ),
        ("test.jsonl", GOOD),
    ]);
    assert!(got.starts_with("suite.toml:5: invalid TOML: "), "{got}");

    let toml = "name = \"t\"\nversion = 1\n\n[defaults]\npromt = \"{input}\"\nmax_tokens = 0\nstop = [\"\\n\", \"\"]\nscorer = { kind = \"numeric\", abs_tol = -0.5, rel_tol = \"1%\" }\n";
    let got = problems_of(&[("suite.toml", toml.as_bytes()), ("test.jsonl", GOOD)]);
    assert_eq!(
        got,
        vec![
            "suite.toml:2: version: expected a string, got integer 1",
            "suite.toml:5: defaults.promt: unknown field (expected one of: prompt, example, few_shot, max_tokens, stop, chat, scorer, extract)",
            "suite.toml:6: defaults.max_tokens: must be at least 1",
            "suite.toml:7: defaults.stop[1]: empty stop sequence (it would end every generation at once)",
            "suite.toml:8: defaults.scorer.rel_tol: expected a number, got string \"1%\"",
        ]
    );
    let toml = "name = \"t\"\nversion = \"1\"\n\n[defaults]\nmax_tokens = 0\nstop = [\"\\n\", \"\"]\nscorer = { kind = \"numeric\", abs_tol = -0.5 }\nextract = \"last_word\"\n";
    let got = problems_of(&[("suite.toml", toml.as_bytes()), ("test.jsonl", GOOD)]);
    assert_eq!(
        got,
        vec![
            "suite.toml:5: defaults.max_tokens: must be at least 1",
            "suite.toml:6: defaults.stop[1]: empty stop sequence (it would end every generation at once)",
            "suite.toml:7: defaults.scorer.abs_tol: must be a finite number >= 0, got -0.5",
            "suite.toml:8: defaults.extract: unknown extraction step \"last_word\" (expected one of: none, last_number, choice_letter, first_code_block, first_json_object, first_line, regex)",
        ]
    );
}

#[test]
fn scorer_problems() {
    let toml = "name = \"t\"\nversion = \"1\"\n\n[defaults.scorer]\nkind = \"fuzzy\"\n";
    assert_eq!(
        one(&[("suite.toml", toml.as_bytes()), ("test.jsonl", GOOD)]),
        "suite.toml:5: defaults.scorer.kind: unknown scorer \"fuzzy\" (expected one of: exact, numeric, choice, json, regex, code, route, load_plan)"
    );
    let toml = "name = \"t\"\nversion = \"1\"\n\n[defaults.scorer]\nkind = \"numeric\"\nabs_tol = 0.1\ntolerance = 0.2\n";
    assert_eq!(
        one(&[("suite.toml", toml.as_bytes()), ("test.jsonl", GOOD)]),
        "suite.toml:7: defaults.scorer.tolerance: unknown field (expected one of: kind, abs_tol, rel_tol)"
    );
    let lines = b"{\"id\": \"a\", \"category\": \"c\", \"input\": \"q\", \"target\": 1, \"scorer\": {\"kind\": \"numeric\", \"rel_tol\": -1}}\n\
{\"id\": \"b\", \"category\": \"c\", \"input\": \"q\", \"target\": \"x\", \"scorer\": {\"kind\": \"regex\", \"pattern\": \"(unclosed\"}}\n\
{\"id\": \"c\", \"category\": \"c\", \"input\": \"q\", \"target\": \"x\", \"scorer\": {\"kind\": \"regex\", \"pattern\": \"no group\"}}\n\
{\"id\": \"d\", \"category\": \"c\", \"input\": \"q\", \"target\": {\"a\": 1}}\n\
{\"id\": \"e\", \"category\": \"c\", \"input\": \"q\", \"target\": \"ten\", \"scorer\": {\"kind\": \"numeric\"}}\n\
{\"id\": \"f\", \"category\": \"c\", \"input\": \"q\", \"target\": \"D\", \"scorer\": {\"kind\": \"choice\"}, \"meta\": {\"options\": [\"x\", \"y\"]}}\n";
    let got = problems_of(&[("suite.toml", TOML.as_bytes()), ("test.jsonl", lines)]);
    assert_eq!(got.len(), 6, "{got:#?}");
    assert_eq!(
        got[0],
        "test.jsonl:1: scorer.rel_tol: must be a finite number >= 0, got -1"
    );
    assert!(
        got[1].starts_with("test.jsonl:2: scorer.pattern: invalid regular expression: "),
        "{}",
        got[1]
    );
    assert_eq!(
        got[2],
        "test.jsonl:3: scorer.group: pattern has 0 capture group(s), cannot use group 1"
    );
    assert_eq!(
        got[3],
        "test.jsonl:4: target: expected a string, number or boolean, or a non-empty list of them (exact scorer)"
    );
    assert_eq!(
        got[4],
        "test.jsonl:5: target: \"ten\" is not a number (numeric scorer)"
    );
    assert_eq!(
        got[5],
        "test.jsonl:6: target: choice \"D\" is out of range: 2 options (A-B) (choice scorer)"
    );
}

#[test]
fn no_scorer_anywhere() {
    let toml = "name = \"t\"\nversion = \"1\"\n";
    assert_eq!(
        one(&[("suite.toml", toml.as_bytes()), ("test.jsonl", GOOD)]),
        "test.jsonl:1: scorer: no scorer for this task: set `scorer` in [defaults], in [categories.c] or on the task"
    );
}

#[test]
fn unknown_category() {
    let toml = format!("{TOML}\n[categories.routing]\n[categories.packing]\n");
    assert_eq!(
        one(&[("suite.toml", toml.as_bytes()), ("test.jsonl", GOOD)]),
        "test.jsonl:1: category: unknown category \"c\" (suite.toml declares: packing, routing)"
    );
}

#[test]
fn template_problems() {
    let toml = format!("{TOML}prompt = \"Q: {{inptu}} {{meta.unit}}\"\n");
    assert_eq!(
        one(&[("suite.toml", toml.as_bytes()), ("test.jsonl", GOOD)]),
        "suite.toml:6: defaults.prompt: unknown placeholder {inptu} (known: {input}, {id}, {category}, {options}, {examples}, {meta.KEY}; write {{ and }} for literal braces)"
    );
    let toml = format!("{TOML}prompt = \"Q: {{input}} in {{meta.unit}}\\n{{options}}\"\n");
    assert_eq!(
        problems_of(&[("suite.toml", toml.as_bytes()), ("test.jsonl", GOOD)]),
        vec![
            "test.jsonl:1: meta.unit: the template uses {meta.unit} but this task has no meta.unit",
            "test.jsonl:1: meta.options: the template uses {options} but this task has no meta.options list of strings",
        ]
    );
}

#[test]
fn few_shot_problems() {
    let toml = format!("{TOML}few_shot = 2\n");
    assert_eq!(
        one(&[("suite.toml", toml.as_bytes()), ("test.jsonl", GOOD)]),
        "suite.toml:6: defaults.few_shot: few_shot = 2 needs an `example` template, e.g. example = \"Q: {input}\\nA: {target}\""
    );
    let toml =
        format!("{TOML}example = \"{{input}} {{target}}\"\n\n[categories.c]\nfew_shot = 2\n");
    assert_eq!(
        one(&[
            ("suite.toml", toml.as_bytes()),
            ("test.jsonl", GOOD),
            (
                "train.jsonl",
                b"{\"id\": \"t\", \"category\": \"c\", \"input\": \"q2\", \"target\": \"y\"}\n"
            ),
        ]),
        "suite.toml:9: categories.c.few_shot: few_shot = 2 but train.jsonl has only 1 task(s) in category \"c\""
    );
    let toml = format!("{TOML}example = \"{{input}} {{target}}\"\nfew_shot = 1\n");
    assert_eq!(
        one(&[("suite.toml", toml.as_bytes()), ("test.jsonl", GOOD)]),
        "suite.toml:7: defaults.few_shot: few_shot = 1 needs a train.jsonl split with tasks of category \"c\"; there is none"
    );
}

#[test]
fn all_files_are_checked_in_one_pass() {
    let toml = "name = \"bad name!\"\nversion = \"1\"\n[defaults]\nscorer = { kind = \"exact\" }\n";
    let got = problems_of(&[
        ("suite.toml", toml.as_bytes()),
        ("a.jsonl", b"oops\n"),
        ("b.jsonl", b"{\"id\": \"x\"}\n"),
    ]);
    assert_eq!(
        got,
        vec![
            "suite.toml:1: name: \"bad name!\" is not a valid suite name (use letters, digits, '.', '_' and '-')",
            "a.jsonl:1: malformed JSON: expected value (column 1)",
            "b.jsonl:1: category: missing required field",
            "b.jsonl:1: input: missing required field",
            "b.jsonl:1: target: missing required field",
        ]
    );
}

#[test]
fn listing_suites() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let good = root.path().join("coding");
    let bad = root.path().join("logistics/routes");
    for dir in [&good, &bad] {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    }
    for name in ["suite.toml", "train.jsonl", "test.jsonl"] {
        std::fs::copy(fixture("mixed").join(name), good.join(name))
            .unwrap_or_else(|e| panic!("copy: {e}"));
    }
    std::fs::write(bad.join("suite.toml"), "name = \"routes\"\n")
        .unwrap_or_else(|e| panic!("write: {e}"));
    let listing = list_suites(root.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listing.len(), 2);
    let summary = listing[0]
        .summary
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", listing[0].problems));
    assert_eq!(
        (summary.name.as_str(), summary.version.as_str()),
        ("mixed", "1.0")
    );
    let splits: Vec<(&str, usize)> = summary
        .splits
        .iter()
        .map(|s| (s.name.as_str(), s.tasks))
        .collect();
    assert_eq!(splits, vec![("test", 6), ("train", 8)]);
    assert_eq!(summary.splits[0].categories.get("capital"), Some(&2));
    assert_eq!(summary.categories, vec!["arith", "capital", "mcq", "plan"]);
    assert!(listing[1].summary.is_none());
    assert_eq!(listing[1].dir, bad);
    let messages: Vec<String> = listing[1]
        .problems
        .iter()
        .map(|p| p.message.clone())
        .collect();
    assert!(
        messages.contains(&"missing required field".to_string()),
        "{messages:?}"
    );
    assert!(list_suites(root.path().join("nope")).is_err());
}

#[test]
fn humaneval_lines_give_the_column_within_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("HumanEval.jsonl");
    let good = r#"{"task_id": "HumanEval/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n", "test": "def check(candidate):\n    assert candidate() == 1\n", "entry_point": "f"}"#;
    let bad = good
        .replace("HumanEval/0", "HumanEval/1")
        .replace("\"f\"}", "\"f\",}");
    std::fs::write(&path, format!("{good}\n{bad}\n")).unwrap();
    let problems = <distill_gate::suite::humaneval::HumanEval as distill_gate::suite::benchmark::Format>::read(&path).unwrap_err();
    let got: Vec<String> = problems.0.iter().map(|p| p.to_string()).collect();
    // The column of the closing brace after the comma: the line's last byte.
    assert_eq!(
        got,
        vec![format!(
            "{}:2: malformed JSON: trailing comma (column {})",
            path.display(),
            bad.len()
        )]
    );
}
