//! `run --shard i/N` and `merge`: the shards of the demo suites, merged,
//! give the same summary.json, byte for byte, as the unsharded run; merge
//! refuses missing, repeated, unfinished and mismatched shards.
//!
//! Replay only, so it is fast: the teacher is the demo's recorded
//! transcript (fixtures/teacher), the students replay transcripts derived
//! from it here (one answers like the teacher but faster, one gets every
//! fourth answer wrong).
//!
//! Nothing in summary.json is excluded from the comparison: it holds no
//! wall-clock time of the run itself (latencies are the recorded ones,
//! costs follow from them and the token counts, the bootstrap is seeded).

use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "support/demo.rs"]
mod demo;

use demo::{Student, run, text};

fn workspace(seed: u64) -> tempfile::TempDir {
    demo::workspace(
        seed,
        &[
            Student {
                name: "copy",
                speed: 0.05,
                wrong: |_| false,
            },
            Student {
                name: "lossy",
                speed: 0.02,
                wrong: |i| i % 4 == 0,
            },
        ],
        &[("coding", 40), ("logistics", 120)],
    )
}

fn shard_dir(ws: &Path, i: u32, n: u32) -> PathBuf {
    ws.join(format!("reports/demo/shard-{i}-of-{n}"))
}

fn run_shards(ws: &Path, n: u32) {
    for i in 1..=n {
        let shard = format!("{i}/{n}");
        let out = run(&["run", "gate.toml", "--quiet", "--shard", &shard], ws);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "shard {shard}: {}",
            text(&out)
        );
        let manifest = std::fs::read_to_string(shard_dir(ws, i, n).join("run.json")).unwrap();
        assert!(manifest.contains("\"shard\""), "{manifest}");
    }
}

fn merge(ws: &Path, dirs: &[PathBuf], out: &str) -> Output {
    let mut args: Vec<String> = vec!["merge".into()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".into(), out.into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args, ws)
}

#[test]
fn merged_shards_give_the_unsharded_summary() {
    let ws = workspace(7);
    let ws = ws.path();
    let whole = run(&["run", "gate.toml", "--quiet"], ws);
    assert!(
        matches!(whole.status.code(), Some(0 | 1)),
        "{}",
        text(&whole)
    );
    let expected = std::fs::read(ws.join("reports/demo/summary.json")).unwrap();
    let whole_journal = std::fs::read_to_string(ws.join("reports/demo/results.jsonl")).unwrap();

    run_shards(ws, 3);
    // Each shard holds a part of the items, and the parts add up.
    let sizes: Vec<usize> = (1..=3)
        .map(|i| {
            std::fs::read_to_string(shard_dir(ws, i, 3).join("results.jsonl"))
                .unwrap()
                .lines()
                .count()
        })
        .collect();
    assert!(sizes.iter().all(|&n| n > 0), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), whole_journal.lines().count());

    let dirs: Vec<PathBuf> = (1..=3).rev().map(|i| shard_dir(ws, i, 3)).collect();
    let out = merge(ws, &dirs, "merged");
    assert_eq!(out.status.code(), whole.status.code(), "{}", text(&out));
    let merged = std::fs::read(ws.join("merged/summary.json")).unwrap();
    assert!(
        merged == expected,
        "merged summary differs from the unsharded one:\n{}\n---\n{}",
        String::from_utf8_lossy(&merged),
        String::from_utf8_lossy(&expected)
    );
    // The journal is the unsharded one too, line for line (same order).
    assert_eq!(
        std::fs::read_to_string(ws.join("merged/results.jsonl")).unwrap(),
        whole_journal
    );
    // The merged run re-renders like any run.
    std::fs::remove_file(ws.join("merged/summary.json")).unwrap();
    let rep = run(&["report", "merged", "--summary-md", "step.md"], ws);
    assert_eq!(rep.status.code(), whole.status.code(), "{}", text(&rep));
    assert_eq!(
        std::fs::read(ws.join("merged/summary.json")).unwrap(),
        expected
    );
    let md = std::fs::read_to_string(ws.join("step.md")).unwrap();
    assert!(md.contains("| lossy |") && md.contains("- copy: "), "{md}");

    // Refusals, each with a clear message and exit code 2.
    let refused = |dirs: &[PathBuf], want: &str| {
        let out = merge(ws, dirs, "refused");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "expected {want:?} in {}", text(&out));
        assert!(!ws.join("refused/results.jsonl").exists());
    };
    refused(&dirs[..2], "shards missing: 1/3");
    let twice = vec![dirs[0].clone(), dirs[1].clone(), dirs[1].clone()];
    refused(&twice, "shard 2/3 is given twice");
    refused(&[ws.join("reports/demo")], "not a shard run");
    let out = merge(ws, &dirs, "merged");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds a journal"));

    // A config given with --config must be the one the shards ran.
    let edited = std::fs::read_to_string(ws.join("gate.toml")).unwrap() + "\n# edited\n";
    std::fs::write(ws.join("other.toml"), edited).unwrap();
    let mut args: Vec<String> = vec!["merge".into()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out", "refused", "--config", "other.toml"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args, ws);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not the config the shards ran"),
        "{}",
        text(&out)
    );

    // A shard whose student weights differ.
    let s1 = shard_dir(ws, 1, 3).join("summary.json");
    let original = std::fs::read_to_string(&s1).unwrap();
    std::fs::write(&s1, original.replace("fp-lossy", "fp-other")).unwrap();
    refused(&dirs, "measured different models");
    std::fs::write(&s1, &original).unwrap();

    // An unfinished shard (killed before its last results).
    let j2 = shard_dir(ws, 2, 3).join("results.jsonl");
    let journal = std::fs::read_to_string(&j2).unwrap();
    let kept: String = journal.lines().skip(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&j2, kept).unwrap();
    refused(&dirs, "shard 2 is incomplete: 3 planned result(s) missing");
    std::fs::write(&j2, journal).unwrap();
}

#[test]
fn shards_of_different_configs_are_refused() {
    let a = workspace(1);
    let b = workspace(2);
    run_shards(a.path(), 2);
    run_shards(b.path(), 2);
    let dirs = [shard_dir(a.path(), 1, 2), shard_dir(b.path(), 2, 2)];
    let out = merge(a.path(), &dirs, "merged");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("were made with different configs"),
        "{}",
        text(&out)
    );
    // A shard directory keeps its shard: resuming it as another is refused.
    std::fs::remove_dir_all(shard_dir(a.path(), 2, 2)).unwrap();
    std::fs::rename(shard_dir(a.path(), 1, 2), shard_dir(a.path(), 2, 2)).unwrap();
    let again = run(&["run", "gate.toml", "--quiet", "--shard", "2/2"], a.path());
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("holds shard 1/2, not shard 2/2"),
        "{}",
        text(&again)
    );
}

#[test]
fn a_schedulers_index_picks_the_shard_without_shell_arithmetic() {
    // Kubernetes' JOB_COMPLETION_INDEX is 0-based: index 1 of 2 is shard 2/2.
    let ws = workspace(3);
    let ws = ws.path();
    let out = demo::command(
        &[
            "run",
            "gate.toml",
            "--quiet",
            "--shard-index-from",
            "JOB_COMPLETION_INDEX",
            "--shard-count",
            "2",
        ],
        ws,
    )
    .env("JOB_COMPLETION_INDEX", "1")
    .output()
    .expect("spawn distill-gate");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    assert!(shard_dir(ws, 2, 2).join("summary.json").is_file());
    assert!(!shard_dir(ws, 1, 2).exists());
    // Slurm's --array=1-2: the same shard with --shard-base 1.
    let out = demo::command(
        &[
            "run",
            "gate.toml",
            "--quiet",
            "--shard-index-from",
            "SLURM_ARRAY_TASK_ID",
            "--shard-count",
            "2",
            "--shard-base",
            "1",
        ],
        ws,
    )
    .env("SLURM_ARRAY_TASK_ID", "2")
    .output()
    .expect("spawn distill-gate");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    // An unset variable, an index past the last shard or not a number: exit 2, named.
    for (value, want) in [
        (
            None,
            "--shard-index-from JOB_COMPLETION_INDEX: the variable is not set",
        ),
        (
            Some("2"),
            "JOB_COMPLETION_INDEX=\"2\" is past the last shard",
        ),
        (
            Some("1a"),
            "JOB_COMPLETION_INDEX=\"1a\" is not a whole number",
        ),
    ] {
        let mut command = demo::command(
            &[
                "run",
                "gate.toml",
                "--shard-index-from",
                "JOB_COMPLETION_INDEX",
                "--shard-count",
                "2",
            ],
            ws,
        );
        command.env_remove("JOB_COMPLETION_INDEX");
        if let Some(v) = value {
            command.env("JOB_COMPLETION_INDEX", v);
        }
        let out = command.output().expect("spawn distill-gate");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(want), "{}", text(&out));
    }
}
