//! The Python sandbox and the `code` scorer against hostile answers.
//!
//! Every hostile answer must score 0 with the right reason while the
//! harness goes on: after each one a correct answer still scores 1.

mod sandbox_common;
mod support;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use distill_gate::sandbox::{Limits, Status, run_python};
use distill_gate::score::{CodeSpec, Score, Scorer, ScorerSpec};
use distill_gate::suite::Task;
use serde_json::{Map, Value, json};

fn scorer(timeout_ms: u64, memory_mb: u64) -> Box<dyn Scorer> {
    match ScorerSpec::Code(CodeSpec {
        timeout_ms,
        memory_mb,
    })
    .build()
    {
        Ok(s) => s,
        Err(e) => panic!("valid spec: {e:?}"),
    }
}

fn task(target: Value) -> Task {
    Task {
        id: "t".into(),
        category: "code".into(),
        input: "Write f".into(),
        target,
        scorer: None,
        meta: Map::new(),
    }
}

/// f(x) = 2x, three tests.
fn double_task() -> Task {
    task(json!({
        "entry_point": "f",
        "solution": "def f(x):\n    return 2 * x\n",
        "tests": ["assert f(2) == 4", "assert f(3) == 6", "assert f(0) == 0"],
    }))
}

const GOOD: &str = "```python\ndef f(x):\n    return 2 * x\n```";

fn assert_zero(s: &Score, reason: &str) {
    assert_eq!(s.value, 0.0, "{s:?}");
    assert!(s.detail.contains(reason), "expected {reason:?} in {s:?}");
}

/// The harness still works: a correct answer scores 1.
fn assert_still_works(scorer: &dyn Scorer) {
    let s = scorer.score(&double_task(), GOOD);
    assert_eq!(s.value, 1.0, "{s:?}");
    assert_eq!(s.detail, "3/3 tests passed");
}

fn quick_limits() -> Limits {
    Limits {
        wall: Duration::from_secs(3),
        cpu_seconds: 3,
        audit_hook: false,
        ..Limits::default()
    }
}

/// Live (not zombie) processes with pid `pid`.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|st| !st.trim_start().starts_with('Z'))
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn unique(name: &str) -> String {
    format!(
        "dg-sandbox-{name}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[test]
fn hostile_answers_score_zero_and_the_harness_goes_on() {
    let scorer = scorer(1500, 256);
    let scorer = scorer.as_ref();
    let t = double_task();
    assert_still_works(scorer);

    // Infinite loop: wall or CPU limit.
    let s = scorer.score(&t, "def f(x):\n    while True:\n        pass\n");
    assert_eq!(s.value, 0.0, "{s:?}");
    assert!(
        s.detail.contains("timed out after 1.5 s") || s.detail.contains("CPU time limit"),
        "{s:?}"
    );
    assert_still_works(scorer);

    // Fork bomb: the audit hook refuses (the OS limit is tested below).
    let s = scorer.score(
        &t,
        "import os\ndef f(x):\n    while True:\n        os.fork()\n",
    );
    assert_zero(&s, "starting processes (os.fork) blocked");
    assert_still_works(scorer);

    // Memory bombs: one huge allocation, and a slow grower.
    let s = scorer.score(
        &t,
        "def f(x):\n    b = bytearray(2 * 1024 ** 3)\n    return 2 * x\n",
    );
    assert_zero(&s, "memory limit exceeded");
    let s = scorer.score(
        &t,
        "hog = []\nwhile True:\n    hog.append(' ' * 10 ** 6)\ndef f(x):\n    return 2 * x\n",
    );
    assert_zero(&s, "memory limit exceeded");
    assert_still_works(scorer);

    // A flood of output.
    let s = scorer.score(
        &t,
        "def f(x):\n    while True:\n        print('x' * 1000)\n",
    );
    assert_zero(&s, "output limit exceeded");
    assert_still_works(scorer);

    // Writing outside the work dir: into the checkout and into /root.
    let in_checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join(unique("write"));
    let in_root = Path::new("/root").join(unique("write"));
    for target in [&in_checkout, &in_root] {
        let answer = format!(
            "def f(x):\n    open({:?}, 'w').write('pwned')\n    return 2 * x\n",
            target.display().to_string()
        );
        let s = scorer.score(&t, &answer);
        // A checkout under /tmp (a CI clone may live there) is hidden by
        // the sandbox's private /tmp: the write fails before the audit
        // hook sees it, contained all the same.
        let reason = if target.starts_with("/tmp") && s.detail.contains("FileNotFoundError") {
            "FileNotFoundError"
        } else {
            "writing outside the work directory"
        };
        assert_zero(&s, reason);
        assert!(!target.exists(), "{} was created", target.display());
    }
    assert_still_works(scorer);

    // Network: a listener of ours on 127.0.0.1 and a public address.
    let listener = TcpListener::bind("127.0.0.1:0");
    let Ok(listener) = listener else {
        panic!("cannot listen: {listener:?}")
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    assert!(listener.set_nonblocking(true).is_ok());
    for address in [
        format!("('127.0.0.1', {port})"),
        "('1.1.1.1', 80)".to_string(),
    ] {
        let answer = format!(
            "import socket\ndef f(x):\n    socket.create_connection({address}, timeout=1).sendall(b'hi')\n    return 2 * x\n"
        );
        let s = scorer.score(&t, &answer);
        assert_zero(&s, "network access");
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "the listener saw a connection"
    );
    assert_still_works(scorer);

    // Exit early to skip the tests, or print a fake success line.
    let s = scorer.score(&t, "import sys\nsys.exit(0)\n");
    assert_zero(&s, "answer failed: SystemExit: 0");
    let s = scorer.score(&t, "def f(x):\n    import sys\n    sys.exit(0)\n");
    assert_zero(
        &s,
        "0/3 tests passed: test 1 failed: the answer raised SystemExit: 0",
    );
    let s = scorer.score(
        &t,
        "import os\nprint('3/3 tests passed')\nprint('{\"tests\": [null, null, null]}')\nos._exit(0)\n",
    );
    assert_zero(
        &s,
        "answer failed: the answer's process ended before it was ready [the answer's process exited with status 0",
    );
    let s = scorer.score(&t, "def f(x):\n    import os\n    os._exit(0)\n");
    assert_zero(
        &s,
        "test 1 failed: the answer's process ended (and 2 more) [the answer's process exited with status 0",
    );
    assert_still_works(scorer);

    // A background process: refused by the hook (the OS clean-up is tested below).
    let s = scorer.score(
        &t,
        "import os, time\nif os.fork() == 0:\n    time.sleep(60)\ndef f(x):\n    return 2 * x\n",
    );
    assert_zero(&s, "starting processes");
    assert_still_works(scorer);
}

/// The OS layers alone (audit hook off) also stop fork bombs, network
/// access, writes outside the work dir and background processes.
#[test]
fn os_layers_hold_without_the_audit_hook() {
    let limits = quick_limits();
    let probe = run_python("print('ok')", "", &limits);
    let Ok(probe) = probe else {
        panic!("{probe:?}")
    };
    let iso = probe.isolation.clone();
    eprintln!("isolation here: {}", iso.describe());
    if is_root() {
        assert!(iso.uid.is_some(), "{iso:?}");
        assert!(iso.process_limit, "{iso:?}");
    }

    // Fork bomb: children that fork too, until the process limit stops them.
    let bomb = "import os, time\ncount = 0\nerror = None\nwhile count < 2000:\n    try:\n        pid = os.fork()\n    except OSError as e:\n        error = e.errno\n        break\n    if pid == 0:\n        try:\n            os.fork()\n        except OSError:\n            pass\n        print('pid', os.getpid(), flush=True)\n        time.sleep(60)\n        os._exit(0)\n    count += 1\nprint('done', count, error, flush=True)\n";
    let outcome = run_python(bomb, "", &limits);
    let Ok(outcome) = outcome else {
        panic!("{outcome:?}")
    };
    if iso.process_limit {
        assert_eq!(outcome.status, Status::Exited(0), "{outcome:?}");
        let done: Vec<&str> = outcome
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("done "))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        let forks: usize = done
            .first()
            .and_then(|w| w.parse().ok())
            .unwrap_or(usize::MAX);
        assert!(forks < limits.max_processes as usize, "{outcome:?}");
        assert_eq!(done.get(1), Some(&"11"), "EAGAIN expected: {outcome:?}");
        let pids: Vec<u32> = outcome
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("pid ")?.parse().ok())
            .collect();
        assert!(!pids.is_empty(), "{outcome:?}");
        for pid in pids {
            assert!(!alive(pid), "bomb process {pid} survived");
        }
    }

    // Network: every connection fails in the new network namespace.
    if iso.network_namespace {
        let listener = TcpListener::bind("127.0.0.1:0");
        let Ok(listener) = listener else {
            panic!("{listener:?}")
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        assert!(listener.set_nonblocking(true).is_ok());
        let source = format!(
            "import socket\nfor a in [('127.0.0.1', {port}), ('1.1.1.1', 80)]:\n    try:\n        socket.create_connection(a, timeout=1)\n        print('connected')\n    except OSError as e:\n        print(e.errno)\n"
        );
        let outcome = run_python(&source, "", &limits);
        let Ok(outcome) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(outcome.stdout, "101\n101\n", "{outcome:?}");
        assert!(matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock));
    }

    // Writes: the checkout is not writable for the sandbox uid; /tmp is private.
    if iso.uid.is_some() {
        let in_checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join(unique("os-write"));
        let in_tmp = Path::new("/tmp").join(unique("os-write"));
        let source = format!(
            "for p in [{:?}, {:?}]:\n    try:\n        open(p, 'w').write('x')\n        print('wrote')\n    except OSError as e:\n        print(e.errno)\n",
            in_checkout.display().to_string(),
            in_tmp.display().to_string()
        );
        let outcome = run_python(&source, "", &limits);
        let Ok(outcome) = outcome else {
            panic!("{outcome:?}")
        };
        let first = outcome.stdout.lines().next();
        // In the jail the checkout does not exist (ENOENT); else EACCES.
        let want = if outcome.isolation.jail { "2" } else { "13" };
        assert_eq!(first, Some(want), "{outcome:?}");
        assert!(!in_checkout.exists());
        if iso.private_tmp {
            assert_eq!(outcome.stdout.lines().nth(1), Some("wrote"), "{outcome:?}");
            assert!(!in_tmp.exists(), "/tmp write leaked out of the sandbox");
        }
    }

    // Background processes, in the group and escaped with setsid, die with the run.
    let source = "import os, time, sys\nfor escape in (False, True):\n    pid = os.fork()\n    if pid == 0:\n        if escape:\n            os.setsid()\n        time.sleep(60)\n        os._exit(0)\n    print(pid, flush=True)\n";
    let outcome = run_python(source, "", &limits);
    let Ok(outcome) = outcome else {
        panic!("{outcome:?}")
    };
    // Exited, not WallTimeout: the harness returned when the program
    // exited, without waiting for the sleeping background processes (they
    // would have kept it past the 3 s wall limit).
    assert_eq!(outcome.status, Status::Exited(0), "{outcome:?}");
    let pids: Vec<u32> = outcome
        .stdout
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{outcome:?}");
    assert!(!alive(pids[0]), "background process {} survived", pids[0]);
    if iso.uid.is_some() {
        assert!(!alive(pids[1]), "setsid process {} survived", pids[1]);
    }
}

#[test]
fn tests_style_counts_passing_tests() {
    let scorer = scorer(5000, 256);
    let t = double_task();
    let s = scorer.score(
        &t,
        &format!("Sure! Here it is:\n\n{GOOD}\n\nHope that helps."),
    );
    assert_eq!((s.value, s.detail.as_str()), (1.0, "3/3 tests passed"));
    assert_eq!(s.extracted.as_deref(), Some("def f(x):\n    return 2 * x"));

    let s = scorer.score(&t, "def f(x):\n    return x * x\n");
    assert_eq!(s.value, 0.0);
    assert_eq!(s.detail, "2/3 tests passed: test 2 failed: AssertionError");

    let s = scorer.score(&t, "def f(x):\n    return x +\n");
    assert_eq!(s.value, 0.0);
    assert!(
        s.detail.starts_with("answer failed: SyntaxError: ") && s.detail.ends_with("(line 2)"),
        "{s:?}"
    );

    let s = scorer.score(&t, "def g(x):\n    return 2 * x\n");
    assert_eq!(s.detail, "answer does not define f()");

    let with_setup = task(json!({
        "entry_point": "mean",
        "solution": "def mean(xs):\n    return fsum(xs) / len(xs)\n",
        "setup": "from math import fsum",
        "tests": ["assert mean([1, 2, 3]) == 2", "assert mean([0.5]) == 0.5"],
    }));
    let s = scorer.score(
        &with_setup,
        "def mean(xs):\n    return fsum(xs) / len(xs)\n",
    );
    assert_eq!((s.value, s.detail.as_str()), (1.0, "2/2 tests passed"));
    let s = scorer.score(
        &with_setup,
        "def mean(xs):\n    return sum(xs) // len(xs)\n",
    );
    assert_eq!(s.detail, "1/2 tests passed: test 2 failed: AssertionError");
}

/// HumanEval/0 (has_close_elements) from openai/human-eval, HumanEval.jsonl.gz.
fn humaneval_0() -> Task {
    task(json!({
        "entry_point": "has_close_elements",
        "prompt": "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    \"\"\" Check if in given list of numbers, are any two numbers closer to each other than\n    given threshold.\n    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n    False\n    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)\n    True\n    \"\"\"\n",
        "solution": "    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n            if idx != idx2:\n                distance = abs(elem - elem2)\n                if distance < threshold:\n                    return True\n\n    return False\n",
        "test": "\n\nMETADATA = {\n    'author': 'jt',\n    'dataset': 'test'\n}\n\n\ndef check(candidate):\n    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False\n    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True\n    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.8) == False\n    assert candidate([1.0, 2.0, 3.0, 4.0, 5.0, 2.0], 0.1) == True\n    assert candidate([1.1, 2.2, 3.1, 4.1, 5.1], 1.0) == True\n    assert candidate([1.1, 2.2, 3.1, 4.1, 5.1], 0.5) == False\n\n",
    }))
}

#[test]
fn humaneval_style_runs_check() {
    let scorer = scorer(5000, 256);
    let t = humaneval_0();
    let canonical = t.target["solution"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(scorer.target_text(&t.target), canonical);
    let s = scorer.score(&t, &canonical);
    assert_eq!((s.value, s.detail.as_str()), (1.0, "check passed"), "{s:?}");

    let rewritten = "```python\nfrom typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    s = sorted(numbers)\n    return any(b - a < threshold for a, b in zip(s, s[1:]))\n```";
    let s = scorer.score(&t, rewritten);
    assert_eq!(s.value, 1.0, "{s:?}");

    let wrong = "    return False\n";
    let s = scorer.score(&t, wrong);
    assert_eq!(s.value, 0.0);
    assert!(
        s.detail.starts_with("program failed: AssertionError"),
        "{s:?}"
    );

    let s = scorer.score(&t, "    import sys\n    sys.exit(0)\n");
    assert_zero(&s, "program failed: the answer raised SystemExit: 0");
}

#[test]
fn sandboxes_run_in_parallel_threads() {
    let scorer = scorer(5000, 256);
    let scorer = scorer.as_ref();
    let t = double_task();
    let scores: Vec<Score> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let t = &t;
                scope.spawn(move || {
                    if i % 2 == 0 {
                        scorer.score(t, GOOD)
                    } else {
                        scorer.score(t, "def f(x):\n    return x + 2\n")
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Score::zero("thread panicked")))
            .collect()
    });
    for (i, s) in scores.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!((s.value, s.detail.as_str()), (1.0, "3/3 tests passed"));
        } else {
            assert_eq!(
                s.detail,
                "1/3 tests passed: test 2 failed: AssertionError (and 1 more)"
            );
        }
    }
}

/// Live processes whose real uid is one the sandbox of the harness process
/// `harness` hands out (see `src/sandbox/slots.rs`: 100,000 uids from
/// 2,000,000,000 + (pid mod 1000) * 100,000).
fn sandbox_processes(harness: u32) -> Vec<String> {
    let first = 2_000_000_000 + u64::from(harness % 1000) * 100_000;
    let uids = first..first + 100_000;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| {
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|u| u.parse::<u64>().ok());
            let zombie = status
                .lines()
                .find_map(|l| l.strip_prefix("State:"))
                .is_some_and(|st| st.trim_start().starts_with('Z'));
            uid.is_some_and(|u| uids.contains(&u)) && !zombie
        })
        .collect()
}

const FAKE_KEY: &str = "sk-fake-distill-gate-0123456789abcdef";

/// The attacks, as answers to "write f(x) = 2x": each returns 2x only when
/// the attack worked, so a contained attack fails the test with a reason.
fn attacks() -> Vec<(&'static str, String)> {
    let checkout = env!("CARGO_MANIFEST_DIR");
    vec![
        (
            "api key from the environment",
            "import os\ndef f(x):\n    print(os.environ['OPENAI_API_KEY'])\n    return 2 * x\n".into(),
        ),
        (
            "api key from /proc/self/environ",
            "def f(x):\n    data = open('/proc/self/environ', 'rb').read()\n    assert b'OPENAI_API_KEY' in data, 'no key in /proc/self/environ'\n    print(data)\n    return 2 * x\n".into(),
        ),
        (
            "api key from /proc/<ppid>/environ",
            "import os\ndef f(x):\n    data = open('/proc/%d/environ' % os.getppid(), 'rb').read()\n    print(data)\n    assert b'OPENAI_API_KEY' in data, 'no key in the parent environ'\n    return 2 * x\n".into(),
        ),
        (
            "api key from any /proc/*/environ",
            "import os\ndef f(x):\n    found = []\n    for pid in os.listdir('/proc'):\n        try:\n            data = open('/proc/' + pid + '/environ', 'rb').read()\n        except OSError:\n            continue\n        if b'OPENAI_API_KEY' in data:\n            found.append(data)\n    print(found)\n    assert found, 'no readable environ holds the key'\n    return 2 * x\n".into(),
        ),
        (
            "reading the checkout",
            format!("def f(x):\n    print(open('{checkout}/Cargo.toml').read())\n    return 2 * x\n"),
        ),
        (
            "reading the home directory",
            "import os\ndef f(x):\n    print(os.listdir('/root'))\n    return 2 * x\n".into(),
        ),
        (
            "filling the disk with many files",
            "def f(x):\n    for i in range(100000):\n        with open('fill%d' % i, 'wb') as out:\n            out.write(b'x' * (1 << 20))\n    return 2 * x\n".into(),
        ),
        (
            "filling the disk with one big file",
            "def f(x):\n    with open('big', 'wb') as out:\n        for i in range(100000):\n            out.write(b'x' * (1 << 20))\n    return 2 * x\n".into(),
        ),
        (
            "raising resource limits",
            "import resource\ndef f(x):\n    for r in (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE):\n        resource.setrlimit(r, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n    return 2 * x\n".into(),
        ),
        (
            "leaving a background process",
            "import os, time\ndef f(x):\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(120)\n    return 2 * x\n".into(),
        ),
    ]
}

/// The attacks as a model's answers in a real run of the binary, with a
/// (fake) API key in the harness's environment: every one scores 0 with a
/// reason, the key appears nowhere, the teacher still scores 1 everywhere,
/// the disk keeps its free space and no sandbox process is left.
#[test]
fn attacks_in_a_run_score_zero_with_reasons_and_leave_nothing_behind() {
    let attacks = attacks();
    let suite = "name = \"attacks\"\nversion = \"1\"\ndescription = \"hostile answers\"\n[defaults]\nprompt = \"{input}\"\nmax_tokens = 512\nscorer = { kind = \"code\", timeout_ms = 4000, memory_mb = 256 }\n";
    let tasks: String = attacks
        .iter()
        .enumerate()
        .map(|(i, _)| {
            format!(
                "{{\"id\": \"a{i}\", \"category\": \"attack\", \"input\": \"Write f(x) = 2x ({i})\", \"target\": {{\"entry_point\": \"f\", \"solution\": \"def f(x):\\n    return 2 * x\\n\", \"tests\": [\"assert f(2) == 4\"]}}}}\n"
            )
        })
        .collect();
    let ws = support::Workspace::new(suite, &tasks);
    ws.transcript("teacher", |_, _| GOOD.to_string());
    ws.transcript("attacker", |i, _| {
        attacks.get(i).map(|(_, a)| a.clone()).unwrap_or_default()
    });
    ws.config(&["teacher", "attacker"], "");
    let free_before = sandbox_common::free_bytes(Path::new("/tmp"));
    let child = ws
        .command(&["run", "gate.toml", "--quiet"])
        .env("OPENAI_API_KEY", FAKE_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let harness = child.id();
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{}", support::text(&out));
    let all = support::text(&out);
    assert!(!all.contains(FAKE_KEY), "key leaked to the output: {all}");

    let journal = std::fs::read_to_string(ws.run_dir().join("results.jsonl")).expect("journal");
    for line in journal.lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("journal line");
        let i: usize = e["task_id"].as_str().unwrap_or("")[1..]
            .parse()
            .unwrap_or(usize::MAX);
        let what = attacks.get(i).map_or("?", |a| a.0);
        let detail = e["detail"].as_str().unwrap_or("");
        if e["model"] == "teacher" {
            assert_eq!(e["score"], 1.0, "teacher on {what}: {e}");
        } else {
            assert_eq!(e["score"], 0.0, "{what} was not contained: {e}");
            assert!(
                detail.contains("failed") || detail.contains("limit"),
                "{what}: no reason: {e}"
            );
            eprintln!("{what:40} -> {detail}");
        }
    }
    for f in std::fs::read_dir(ws.run_dir()).expect("run dir").flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap_or_default();
        assert!(
            !text.contains(FAKE_KEY),
            "key leaked into {}",
            f.path().display()
        );
    }
    // The disk: the fill attacks wrote at most their tmpfs quota, now freed.
    let free_after = sandbox_common::free_bytes(Path::new("/tmp"));
    assert!(
        free_after + (256 << 20) > free_before,
        "free space on /tmp fell from {free_before} to {free_after}"
    );
    let left = sandbox_processes(harness);
    assert!(left.is_empty(), "sandbox processes left: {left:?}");
}

/// The OS layers alone (no audit hook): the file-system jail hides the
/// checkout, the home directory and other processes, bounds `/tmp`, and
/// limits cannot be raised from inside.
#[test]
fn jail_hides_the_host_and_bounds_what_the_program_can_take() {
    let limits = quick_limits();
    let probe = run_python("print('ok')", "", &limits);
    let Ok(probe) = probe else {
        panic!("{probe:?}")
    };
    let iso = probe.isolation;
    eprintln!("isolation here: {}", iso.describe());
    if is_root() {
        assert!(iso.jail, "as root the jail must be in effect: {iso:?}");
    }
    let harness = std::process::id();
    let source = format!(
        "import os, resource\n\
         def attempt(name, fn):\n    try:\n        fn()\n        print(name, 'ok')\n    except OSError as e:\n        print(name, 'errno', e.errno)\n    except ValueError as e:\n        print(name, 'refused')\n\
         attempt('checkout', lambda: open({checkout:?}).read())\n\
         attempt('home', lambda: os.listdir('/root'))\n\
         attempt('harness_environ', lambda: open('/proc/{harness}/environ', 'rb').read())\n\
         attempt('init_environ', lambda: open('/proc/1/environ', 'rb').read())\n\
         others = [p for p in os.listdir('/proc') if p.isdigit() and os.stat('/proc/' + p).st_uid != os.getuid()]\n\
         print('other_processes', len(others))\n\
         attempt('raise_as', lambda: resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2))\n\
         attempt('raise_nproc', lambda: resource.setrlimit(resource.RLIMIT_NPROC, (10 ** 6,) * 2))\n\
         n = 0\n\
         def fill():\n    global n\n    while n < 100000:\n        with open('f%d' % n, 'wb') as out:\n            out.write(b'x' * (1 << 20))\n        n += 1\n\
         attempt('fill', fill)\n\
         print('files', n)\n",
        checkout = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    );
    let free_before = sandbox_common::free_bytes(Path::new("/tmp"));
    let outcome = run_python(&source, "", &limits);
    let Ok(outcome) = outcome else {
        panic!("{outcome:?}")
    };
    eprintln!("{}", outcome.stdout);
    let said = |what: &str| {
        outcome
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(what)?.strip_prefix(' '))
            .unwrap_or("missing")
            .to_string()
    };
    // Limits are hard limits: never raised from inside, root or not.
    assert_eq!(said("raise_as"), "refused", "{outcome:?}");
    if iso.jail {
        assert_eq!(said("checkout"), "errno 2", "{outcome:?}");
        assert_eq!(said("home"), "errno 2", "{outcome:?}");
        assert_eq!(said("harness_environ"), "errno 2", "{outcome:?}");
        assert_eq!(said("init_environ"), "errno 2", "{outcome:?}");
        assert_eq!(said("other_processes"), "0", "{outcome:?}");
        assert_eq!(said("raise_nproc"), "refused", "{outcome:?}");
        assert_eq!(said("fill"), "errno 28", "{outcome:?}");
        let files: u64 = said("files").parse().unwrap_or(u64::MAX);
        assert!(files <= limits.max_disk_bytes >> 20, "{outcome:?}");
    }
    let free_after = sandbox_common::free_bytes(Path::new("/tmp"));
    assert!(
        free_after + (128 << 20) > free_before,
        "free space on /tmp fell from {free_before} to {free_after}"
    );
}

#[test]
fn hashes_and_set_order_are_the_same_in_every_run() {
    // A model's `list(set(words))` must score the same on every run: the
    // sandbox fixes PYTHONHASHSEED (and must not run Python in a mode that
    // ignores it). The working directory is not importable.
    let program = "import sys\nprint(hash('distill'), list({'a', 'b', 'c', 'd', 'e', 'f'}), '' in sys.path)\n";
    let outputs: Vec<String> = (0..4)
        .map(|_| {
            let out = run_python(program, "", &quick_limits()).expect("sandbox runs");
            assert!(matches!(out.status, Status::Exited(0)), "{out:?}");
            out.stdout
        })
        .collect();
    assert!(outputs[0].trim_end().ends_with("False"), "{}", outputs[0]);
    assert!(
        outputs.iter().all(|o| o == &outputs[0]),
        "outputs differ between runs: {outputs:?}"
    );
}

#[test]
fn the_seccomp_filter_kills_forbidden_calls_with_a_reason() {
    let limits = quick_limits();
    let probe = run_python("print('ok')", "", &limits).expect("sandbox runs");
    assert!(probe.isolation.seccomp, "{:?}", probe.isolation);
    for (what, source) in sandbox_common::FORBIDDEN_CALLS {
        // The call numbers above are x86_64's.
        if cfg!(not(target_arch = "x86_64")) && source.contains("syscall(") {
            continue;
        }
        let outcome = run_python(source, "", &limits).expect("sandbox runs");
        assert_eq!(
            outcome.status,
            Status::Signaled(libc::SIGSYS),
            "{what} was not refused: {outcome:?}"
        );
        assert_eq!(outcome.stdout, "", "{what}: {outcome:?}");
    }
    // Threads (clone3 refused with ENOSYS: the C library falls back to
    // clone) and processes still work.
    let outcome = run_python(
        "import threading, os\nt = threading.Thread(target=print, args=('thread',))\nt.start()\nt.join()\npid = os.fork()\nif pid == 0:\n    os._exit(7)\nprint('child', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n",
        "",
        &limits,
    )
    .expect("sandbox runs");
    assert_eq!(outcome.stdout, "thread\nchild 7\n", "{outcome:?}");

    // Through the code scorer, audit hook on: a raw AF_UNIX socket passes
    // the hook, and the score says why the answer's process died.
    let scorer = scorer(3000, 256);
    let s = scorer.score(
        &double_task(),
        "import socket\nsocket.socket(socket.AF_UNIX, socket.SOCK_RAW)\ndef f(x):\n    return 2 * x\n",
    );
    assert_zero(
        &s,
        "the answer's process was killed by signal 31 (SIGSYS): the sandbox's system-call filter refused",
    );
    assert_still_works(scorer.as_ref());
}
