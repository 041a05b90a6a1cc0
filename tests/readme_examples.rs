//! What a newcomer meets first: the README's suite example gives the
//! prompt it means to, the CLI's `--help` examples name input files that
//! exist, and an error names its cause once.

use std::path::Path;
use std::process::Command;

use distill_gate::suite;

mod support;
use support::{repo_root, text};

/// The first ```toml block after `heading` in the README.
fn readme_toml_after(heading: &str) -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let section = readme
        .split_once(heading)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let (_, block) = section.split_once("```toml\n").expect("a toml block");
    let (toml, _) = block.split_once("```").expect("a closed toml block");
    toml.to_string()
}

#[test]
fn the_readme_suite_example_separates_examples_by_one_blank_line() {
    let dir = tempfile::tempdir().unwrap();
    let suite_dir = dir.path().join("logistics");
    std::fs::create_dir_all(&suite_dir).unwrap();
    std::fs::write(
        suite_dir.join("suite.toml"),
        readme_toml_after("\n## Suites\n"),
    )
    .unwrap();
    let task = |id: &str, kg: u32, target: f64| {
        format!(
            "{{\"id\": \"{id}\", \"category\": \"rate_quote\", \"input\": \"{kg} kg to zone B\", \"target\": {target}}}\n"
        )
    };
    let train: String = (0..4)
        .map(|i| task(&format!("rq-{i}"), 20 + i, 40.0 + f64::from(i)))
        .collect();
    std::fs::write(suite_dir.join("train.jsonl"), train).unwrap();
    std::fs::write(suite_dir.join("test.jsonl"), task("rq-17", 12, 41.25)).unwrap();
    let s = suite::load_suite(&suite_dir).expect("the README's suite loads");
    let t = &s.split("test").expect("test split").tasks[0];
    let prompt = suite::build_prompt(&s, t);
    assert!(
        !prompt.contains("\n\n\n"),
        "three line breaks in a row:\n{prompt:?}"
    );
    // Three examples, each followed by exactly one blank line, then the query.
    assert_eq!(prompt.matches("\n\nInput: ").count(), 3, "{prompt:?}");
    assert!(
        prompt.ends_with("\n\nInput: 12 kg to zone B\nAnswer:"),
        "{prompt:?}"
    );
}

/// The `--help` text of a subcommand.
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_distill-gate"))
        .args(args)
        .arg("--help")
        .output()
        .expect("spawn distill-gate");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_examples_read_files_that_exist() {
    // Options whose value an example reads from the repository (outputs,
    // and `--prompts`, a file the user writes, are not checked). models/
    // is what scripts/fetch-smollm2 downloads, outside the repository.
    let inputs = ["--transcript", "--model", "--tokenizer-from"];
    let subcommands: [&[&str]; 5] = [
        &["distill"],
        &["record"],
        &["generate"],
        &["init-student"],
        &["validate"],
    ];
    let mut checked = 0;
    for sub in subcommands {
        let help = help(sub);
        let examples = help.split_once("Example").map_or("", |(_, e)| e);
        let words: Vec<&str> = examples.split_whitespace().collect();
        for pair in words.windows(2) {
            let (option, value) = (pair[0], pair[1]);
            if !inputs.contains(&option) || value.starts_with("models/") {
                continue;
            }
            checked += 1;
            assert!(
                repo_root().join(Path::new(value)).exists(),
                "`distill-gate {} --help` names {value}, which does not exist:\n{help}",
                sub.join(" ")
            );
        }
    }
    assert!(checked >= 2, "no example input was checked");
}

#[test]
fn a_missing_file_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-transcript.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_distill-gate"))
        .args(["distill", "--transcript"])
        .arg(&missing)
        .arg("--out")
        .arg(dir.path().join("student"))
        .output()
        .expect("spawn distill-gate");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // ENOENT as the standard library shows it on Linux.
    let cause = "(os error 2)";
    assert!(stderr.contains("no-such-transcript.jsonl"), "{stderr}");
    assert_eq!(stderr.matches(cause).count(), 1, "{stderr}");
}
