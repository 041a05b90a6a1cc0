//! The sandbox without root (issue 24). Tests run as root here and in CI,
//! so each test starts this test binary again as a fresh unprivileged user
//! (a uid no account uses, no groups), which runs the `inner_*` test of
//! the same name with the attacks and reports. Once with the strongest
//! mode the kernel allows an unprivileged user (the jail in a user
//! namespace), once with the Landlock fallback forced
//! (`DISTILL_GATE_SANDBOX=landlock`), once with rlimits only, which is
//! refused unless allowed, and once more with rlimits only allowed, where
//! the same attacks show what the README's table says of that mode (its
//! weaknesses included).
//!
//! Each attack is contained with its reason: the API key in the user's
//! environment and a private file the user can read (a stand-in for
//! `~/.ssh`) stay unreadable, no process is left, the free disk is the
//! same afterwards, and the new layers hold: ptrace of the runner, a new
//! user namespace, raw sockets (seccomp), signals to the harness, reading
//! another run's work directory while it runs.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use distill_gate::sandbox::{
    Isolation, Limits, MODE_VARIABLE, Mode, SandboxError, Status, allow_unsafe, run_python,
};

mod sandbox_common;
mod support;
use sandbox_common::FORBIDDEN_CALLS;

/// Set in the environment of the inner run: the test binary runs there as
/// the unprivileged user.
const INNER: &str = "DG_UNPRIVILEGED_INNER";
/// The private file the inner user can read (outside the sandbox).
const SECRET_FILE: &str = "DG_UNPRIVILEGED_SECRET";
const FAKE_KEY: &str = "sk-fake-distill-gate-unprivileged-0123456789";
const SECRET: &str = "PRIVATE-KEY-MATERIAL-7f3a";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs the test `name` of this binary as a fresh unprivileged user (when
/// this runs as root; else as the caller) with `vars` set, and fails with
/// its output unless it passed. Gives the user a private file holding
/// [`SECRET`] that it may read itself.
fn run_unprivileged(name: &str, vars: &[(&str, &str)]) {
    let exe = std::env::current_exe().expect("test binary");
    let (home, secret) = private_home();
    let mut command = Command::new(&exe);
    command
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir("/")
        .env(INNER, "1")
        .env(SECRET_FILE, &secret)
        .env("HOME", home.path())
        .env("OPENAI_API_KEY", FAKE_KEY)
        .env_remove(MODE_VARIABLE);
    for (key, value) in vars {
        command.env(key, value);
    }
    if is_root() {
        let uid = fresh_uid();
        for path in [home.path(), &secret] {
            std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
        }
        assert!(
            world_executable(&exe),
            "{} must be executable by every user for this test",
            exe.display()
        );
        // std drops the supplementary groups when root sets a uid.
        command.uid(uid).gid(uid);
    }
    let out = command.output().expect("start the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "{name} failed as an unprivileged user"
    );
    assert!(text.contains("1 passed"), "{name} did not run: {text}");
    assert!(!text.contains(FAKE_KEY), "the API key leaked");
    assert!(!text.contains(SECRET), "the private file leaked");
}

/// A home directory holding a private file (mode 600) with [`SECRET`].
fn private_home() -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::Builder::new()
        .prefix("dg-unprivileged-home-")
        .tempdir()
        .expect("home");
    let secret = home.path().join("id_ed25519");
    std::fs::write(&secret, SECRET).expect("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (home, secret)
}

/// A uid (and gid) that no account and no file uses, different for each
/// call and test process (below the sandbox's own per-run uids).
fn fresh_uid() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    1_900_000_000 + (std::process::id() % 10_000) * 100 + n % 100
}

fn world_executable(path: &Path) -> bool {
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode())
            .unwrap_or(0)
    };
    mode(path) & 0o001 != 0 && path.ancestors().skip(1).all(|d| mode(d) & 0o001 != 0)
}

/// True in the inner run; outside it the `inner_*` tests do nothing.
fn inner() -> bool {
    std::env::var_os(INNER).is_some()
}

#[test]
fn unprivileged_jail_contains_every_attack() {
    run_unprivileged("inner_jail", &[]);
}

#[test]
fn landlock_fallback_contains_every_attack() {
    run_unprivileged("inner_landlock", &[(MODE_VARIABLE, "landlock")]);
}

#[test]
fn rlimits_only_is_refused_unless_allowed() {
    run_unprivileged("inner_rlimits", &[(MODE_VARIABLE, "rlimits")]);
}

#[test]
fn rlimits_only_contains_what_the_table_says() {
    run_unprivileged("inner_rlimits_attacks", &[(MODE_VARIABLE, "rlimits")]);
}

#[test]
#[ignore = "run by unprivileged_jail_contains_every_attack as another user"]
fn inner_jail() {
    if inner() {
        attacks_are_contained(Mode::Jail);
    }
}

#[test]
#[ignore = "run by landlock_fallback_contains_every_attack as another user"]
fn inner_landlock() {
    if inner() {
        attacks_are_contained(Mode::Landlock);
    }
}

#[test]
#[ignore = "run by rlimits_only_contains_what_the_table_says as another user"]
fn inner_rlimits_attacks() {
    if inner() {
        allow_unsafe(true);
        attacks_are_contained(Mode::Rlimits);
    }
}

#[test]
#[ignore = "run by rlimits_only_is_refused_unless_allowed as another user"]
fn inner_rlimits() {
    if !inner() {
        return;
    }
    let refused = run_python("print('ran')", "", &limits());
    let Err(e @ SandboxError::Unisolated { .. }) = &refused else {
        panic!("not refused: {refused:?}")
    };
    let message = e.to_string();
    assert!(
        message.contains("`[run] unsafe_sandbox = true`"),
        "{message}"
    );
    eprintln!("refused: {message}");
    allow_unsafe(true);
    let outcome = run_python("print('ran')", "", &limits()).expect("allowed");
    assert_eq!(outcome.stdout, "ran\n");
    let iso = outcome.isolation;
    eprintln!("isolation: {}", iso.describe());
    assert_eq!(iso.mode(), Mode::Rlimits, "{iso:?}");
    assert!(!iso.confines_files() && iso.seccomp, "{iso:?}");
    allow_unsafe(false);

    // `suites import-humaneval` runs the canonical solutions: refused the
    // same way, naming its flag, and `--unsafe-sandbox` allows it.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/humaneval/sample.jsonl");
    let out = tempfile::tempdir().expect("out dir");
    let import = |name: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_distill-gate"))
            .args(["suites", "import-humaneval"])
            .arg(&sample)
            .arg("--out")
            .arg(out.path().join(name))
            .args(extra)
            .output()
            .expect("spawn distill-gate")
    };
    let refused = import("refused", &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to run model-written code")
            && stderr.contains("--unsafe-sandbox"),
        "{stderr}"
    );
    let allowed = import("allowed", &["--unsafe-sandbox"]);
    let stdout = String::from_utf8_lossy(&allowed.stdout);
    assert_eq!(
        allowed.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert!(stdout.contains("canonical solutions pass"), "{stdout}");
}

fn limits() -> Limits {
    Limits {
        wall: Duration::from_secs(5),
        cpu_seconds: 5,
        ..Limits::default()
    }
}

/// Processes of this user other than this test process, zombies aside.
fn other_processes() -> Vec<String> {
    let me = std::process::id().to_string();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() }.to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()) && *pid != me)
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            // A zombie has ended (it runs nothing and holds nothing but
            // its pid until its new parent, the system's init, reaps it).
            if status.lines().any(|l| l.starts_with("State:\tZ")) {
                return None;
            }
            let real = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
            (real.split_whitespace().next() == Some(uid.as_str())).then_some(status)
        })
        .collect()
}

/// Runs `source` (audit hook off: the OS layers alone), prints what
/// happened, checks that nothing of it is left, and returns the outcome.
fn attack(what: &str, source: &str) -> distill_gate::sandbox::Outcome {
    let outcome = run_python(
        source,
        "",
        &Limits {
            audit_hook: false,
            ..limits()
        },
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!(
        "{what:45} -> {:?} {:?} {}",
        outcome.status,
        outcome.stdout.trim(),
        outcome.stderr.lines().last().unwrap_or("")
    );
    assert!(!outcome.stdout.contains(FAKE_KEY), "{what}: key leaked");
    assert!(!outcome.stdout.contains(SECRET), "{what}: secret leaked");
    let left = other_processes();
    assert!(left.is_empty(), "{what}: processes left: {left:?}");
    let dirs = work_dirs_left();
    assert!(dirs.is_empty(), "{what}: work dirs left: {dirs:?}");
    outcome
}

/// Sandbox work directories of this user still in the temporary directory.
fn work_dirs_left() -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let prefix = std::ffi::OsStr::new("distill-gate-sandbox-").as_encoded_bytes();
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.as_encoded_bytes().starts_with(prefix))
                && std::fs::symlink_metadata(path).is_ok_and(|m| m.uid() == uid)
        })
        .collect()
}

/// The line of `outcome`'s output that starts with `key`, without it.
fn said(outcome: &distill_gate::sandbox::Outcome, key: &str) -> String {
    outcome
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or("missing")
        .to_string()
}

/// The value of a row of the README's table ("What each mode blocks") for
/// `mode`, given for the jail, Landlock and rlimits only.
fn per_mode<T>(mode: Mode, [jail, landlock, rlimits]: [T; 3]) -> T {
    match mode {
        Mode::Jail => jail,
        Mode::Landlock => landlock,
        Mode::Rlimits => rlimits,
    }
}

/// A program that reads `path` and prints `{key} read <bytes>`, or
/// `{key} errno <errno>` when it cannot.
fn reading(key: &str, path: &Path) -> String {
    format!(
        "try:\n    print('{key} read', len(open({:?}, 'rb').read()))\nexcept OSError as e:\n    print('{key} errno', e.errno)\n",
        path.display().to_string()
    )
}

/// What [`reading`] says of `path` outside the sandbox, as this user.
fn read_outside(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(data) => format!("read {}", data.len()),
        Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(0)),
    }
}

/// Runs every attack in `mode` and checks each row of the README's table
/// for it: contained in the jail and with Landlock; with rlimits only, the
/// weaknesses the table marks in bold are checked too (the program reads
/// and writes what the user may, signals the harness, forks past the
/// limit), so that the table stays honest.
fn attacks_are_contained(mode: Mode) {
    assert!(!is_root(), "the inner test must run unprivileged");
    let secret = PathBuf::from(std::env::var_os(SECRET_FILE).expect("secret file"));
    // Outside the sandbox this user can read its private file: the attack
    // below would work without the sandbox.
    assert_eq!(std::fs::read_to_string(&secret).expect("own file"), SECRET);
    let probe = run_python("print('ok')", "", &limits()).expect("sandbox runs");
    let iso: Isolation = probe.isolation;
    eprintln!("isolation: {}", iso.describe());
    assert_eq!(iso.mode(), mode, "{iso:?}");
    let jail = mode == Mode::Jail;
    let rlimits = mode == Mode::Rlimits;
    assert!(
        !iso.root && iso.seccomp && iso.process_limit != rlimits,
        "{iso:?}"
    );
    // Not found in the jail; refused by Landlock; `read` with rlimits only.
    let hidden = |read: String| per_mode(mode, ["errno 2".to_string(), "errno 13".into(), read]);
    let harness = std::process::id();

    let o = attack(
        "api key from the environment",
        "import os\nprint('key', os.environ.get('OPENAI_API_KEY'))\n",
    );
    assert_eq!(said(&o, "key"), "None");
    let o = attack(
        "api key from /proc/<harness>/environ",
        &format!(
            "try:\n    print('environ key', b'OPENAI_API_KEY=sk-' in open('/proc/{harness}/environ', 'rb').read())\nexcept OSError as e:\n    print('environ errno', e.errno)\n"
        ),
    );
    assert_eq!(said(&o, "environ"), hidden("key True".into()), "{o:?}");
    let o = attack(
        "api key from any /proc/*/environ",
        "import os\nfound = []\ntry:\n    pids = os.listdir('/proc')\nexcept OSError as e:\n    pids = []\n    print('listing errno', e.errno)\nfor pid in pids:\n    try:\n        found.append(open('/proc/' + pid + '/environ', 'rb').read())\n    except OSError:\n        pass\nprint('found', sum(b'OPENAI_API_KEY' in f for f in found))\n",
    );
    let found: usize = said(&o, "found").parse().unwrap_or(usize::MAX);
    // With rlimits only, at least the harness's.
    assert_eq!(found > 0, rlimits, "{o:?}");
    let o = attack(
        "a private file of the user (~/.ssh)",
        &reading("secret", &secret),
    );
    assert_eq!(said(&o, "secret"), hidden(read_outside(&secret)), "{o:?}");
    assert_eq!(read_outside(&secret), format!("read {}", SECRET.len()));
    let checkout = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    let o = attack("reading the checkout", &reading("checkout", checkout));
    assert_eq!(
        said(&o, "checkout"),
        hidden(read_outside(checkout)),
        "{o:?}"
    );
    let shared = format!("/tmp/dg-unprivileged-{harness}");
    let o = attack(
        "writing to the shared /tmp",
        &format!(
            "try:\n    open({shared:?}, 'w').write('x')\n    print('tmp wrote')\nexcept OSError as e:\n    print('tmp errno', e.errno)\n"
        ),
    );
    // The jail's own tmpfs /tmp: written there, gone afterwards. With
    // rlimits only: the host's /tmp, where the file stays.
    let wrote = per_mode(mode, ["wrote", "errno 13", "wrote"]);
    assert_eq!(said(&o, "tmp"), wrote, "{o:?}");
    assert_eq!(Path::new(&shared).exists(), rlimits);
    let _ = std::fs::remove_file(&shared);

    let o = attack(
        "signalling the harness",
        &format!(
            "import os\ntry:\n    os.kill({harness}, 0)\n    print('signal sent')\nexcept OSError as e:\n    print('signal errno', e.errno)\n"
        ),
    );
    // Jail: no such process in its PID namespace; Landlock: scoped signals;
    // rlimits only: allowed.
    let refused = per_mode(mode, ["errno 3", "errno 1", "sent"]);
    assert_eq!(said(&o, "signal"), refused, "{o:?}");

    let o = attack(
        "connecting to the network",
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n    print('net connected')\nexcept OSError as e:\n    print('net errno', e.errno)\n",
    );
    if jail {
        assert_eq!(said(&o, "net"), "errno 101", "{o:?}");
    } else {
        assert_eq!(o.status, Status::Signaled(libc::SIGSYS), "{o:?}");
    }

    for (what, source) in FORBIDDEN_CALLS {
        let o = attack(what, source);
        assert_eq!(o.status, Status::Signaled(libc::SIGSYS), "{what}: {o:?}");
    }

    let o = attack(
        "raising resource limits",
        "import resource\ntry:\n    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)\n    print('raise ok')\nexcept ValueError:\n    print('raise refused')\n",
    );
    assert_eq!(said(&o, "raise"), "refused", "{o:?}");

    // A fork bomb: stopped by the process limit; nothing left. With
    // rlimits only there is none: the program stops itself at four times
    // the limit.
    let max = Limits::default().max_processes;
    let bound = per_mode(mode, [2000, 2000, 4 * max]);
    let o = attack(
        "a fork bomb",
        &format!(
            "import os, time\ncount = 0\nerror = None\nwhile count < {bound}:\n    try:\n        pid = os.fork()\n    except OSError as e:\n        error = e.errno\n        break\n    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    count += 1\nprint('done', count, error, flush=True)\n"
        ),
    );
    let done = said(&o, "done");
    let forks: u64 = done
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    if rlimits {
        assert_eq!(done, format!("{bound} None"), "no limit expected: {o:?}");
    } else {
        assert!(done.ends_with(" 11"), "EAGAIN expected: {o:?}");
    }
    if jail {
        assert!(forks < max, "{o:?}");
    }

    // Processes that leave the session and the process group.
    let o = attack(
        "leaving a background process",
        "import os, time\nfor escape in (False, True):\n    if os.fork() == 0:\n        if escape:\n            os.setsid()\n            if os.fork() != 0:\n                os._exit(0)\n        time.sleep(60)\n        os._exit(0)\nprint('left', flush=True)\n",
    );
    assert_eq!(o.status, Status::Exited(0), "{o:?}");
    // The same escape, then the program runs out the wall clock: the
    // harness kills it, and with it everything that escaped (in Landlock
    // mode the escaped process once outlived the kill of the process group).
    let o = attack(
        "leaving a background process, then timing out",
        "import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    time.sleep(60)
    os._exit(0)
print('left', flush=True)
time.sleep(60)
",
    );
    assert_eq!(o.status, Status::WallTimeout, "{o:?}");

    // The disk: many files and one big file.
    // The jail's tmpfs is full (the program says `{key} errno 28`);
    // elsewhere the harness kills the run.
    let stopped_at_the_disk_limit = |o: &distill_gate::sandbox::Outcome, key: &str| {
        if jail {
            assert!(said(o, key).starts_with("errno 28"), "{o:?}");
        } else {
            assert_eq!(o.status, Status::DiskLimit, "{o:?}");
        }
    };
    let free_before = sandbox_common::free_bytes(&std::env::temp_dir());
    let o = attack(
        "filling the disk with one big file",
        "try:\n    with open('big', 'wb') as out:\n        for i in range(100000):\n            out.write(b'x' * (1 << 20))\nexcept OSError as e:\n    print('fill errno', e.errno)\n",
    );
    // Python ignores SIGXFSZ: the write fails with EFBIG at 16 MiB.
    assert_eq!(said(&o, "fill"), "errno 27", "{o:?}");
    // Many files of 4 MiB, each under the file-size limit: 400 MiB in all
    // unless stopped at 64 MiB (the jail's tmpfs is full; elsewhere the
    // harness kills the run, which once wrote them all).
    let o = attack(
        "filling the disk with many files",
        "n = 0\ntry:\n    while n < 100:\n        with open('f%d' % n, 'wb') as out:\n            out.write(b'x' * (4 << 20))\n        n += 1\n    print('fill wrote', n)\nexcept OSError as e:\n    print('fill errno', e.errno, n)\n",
    );
    stopped_at_the_disk_limit(&o, "fill");
    // More files than the limit (1,024), all empty; then the program waits
    // to be stopped (past the wall clock unless it is).
    let o = attack(
        "filling the disk with empty files",
        "import time\nn = 0\ntry:\n    while n < 2000:\n        open('e%d' % n, 'wb').close()\n        n += 1\n    print('files wrote', n, flush=True)\n    time.sleep(60)\nexcept OSError as e:\n    print('files errno', e.errno, n)\n",
    );
    stopped_at_the_disk_limit(&o, "files");
    // Files behind a directory the program made unreadable (it owns it
    // outside the jail): measured all the same, and removed afterwards,
    // whether the program is killed for them (40 files) or hides fewer
    // just before it exits (10).
    let hide = |files: u32, chmod_first: bool| {
        let chmod = "os.chmod('d', 0)\nos.chmod('.', 0)\n";
        let (before, after) = if chmod_first {
            (chmod, "")
        } else {
            ("", chmod)
        };
        format!(
            "import os\nos.mkdir('d')\nfiles = [open('d/f%d' % n, 'wb') for n in range({files})]\n{before}n = 0\ntry:\n    for out in files:\n        out.write(b'x' * (4 << 20))\n        out.flush()\n        n += 1\n    print('hide wrote', n)\nexcept OSError as e:\n    print('hide errno', e.errno, n)\n{after}"
        )
    };
    let o = attack("filling the disk behind an unreadable dir", &hide(40, true));
    stopped_at_the_disk_limit(&o, "hide");
    let o = attack("hiding files from the clean-up", &hide(10, false));
    assert_eq!(said(&o, "hide"), "wrote 10", "{o:?}");
    let free_after = sandbox_common::free_bytes(&std::env::temp_dir());
    assert!(
        free_after + (128 << 20) > free_before,
        "free space fell from {free_before} to {free_after}"
    );

    another_runs_work_dir(mode);
}

/// Two runs at once: the victim keeps a secret in its work directory
/// while the attacker looks for it in every work directory it can find.
/// In the jail the victim's working directory is its own tmpfs (the secret
/// never reaches the host); with Landlock it is the host work directory,
/// out of the attacker's reach; with rlimits only the attacker reads it.
fn another_runs_work_dir(mode: Mode) {
    let jail = mode == Mode::Jail;
    let tmp = std::env::temp_dir();
    let victim = "import time\nopen('secret.txt', 'w').write('RUN-SECRET-' + '4242')\nprint('written', flush=True)\ntime.sleep(3)\n";
    let attacker = format!(
        "import glob, time\nfound = []\nerrors = set()\nfor _ in range(200):\n    for base in ({tmp:?}, '/tmp', '/var/tmp'):\n        try:\n            for p in glob.glob(base + '/distill-gate-sandbox-*/secret.txt'):\n                found.append(open(p).read())\n        except OSError as e:\n            errors.add(e.errno)\n    if found:\n        break\n    time.sleep(0.01)\nprint('found', found, sorted(errors))\n",
        tmp = tmp.display().to_string()
    );
    let (victim_outcome, attacker_outcome, seen) = std::thread::scope(|scope| {
        let victim = scope.spawn(|| run_python(victim, "", &limits()));
        // Start the attacker once the victim runs (its host work directory
        // exists) and, with Landlock, its secret is there (seen from
        // outside the sandbox, where this user can look).
        let mut seen = false;
        for _ in 0..500 {
            seen = std::fs::read_dir(&tmp).is_ok_and(|entries| {
                entries.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("distill-gate-sandbox-")
                        && (jail || e.path().join("secret.txt").exists())
                })
            });
            if seen {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let attacker = run_python(
            &attacker,
            "",
            &Limits {
                audit_hook: false,
                ..limits()
            },
        );
        (victim.join().expect("victim thread"), attacker, seen)
    });
    let victim_outcome = victim_outcome.expect("victim runs");
    let attacker_outcome = attacker_outcome.expect("attacker runs");
    eprintln!(
        "{:45} -> {:?} {:?}",
        "reading another run's work dir",
        attacker_outcome.status,
        attacker_outcome.stdout.trim()
    );
    assert!(seen, "the victim never appeared: {victim_outcome:?}");
    assert_eq!(victim_outcome.stdout, "written\n", "{victim_outcome:?}");
    let found = if mode == Mode::Rlimits {
        "found ['RUN-SECRET-4242'"
    } else {
        "found []"
    };
    assert!(
        attacker_outcome.stdout.starts_with(found),
        "{attacker_outcome:?}"
    );
}

/// Changes the owner of `path` and everything under it.
fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).expect("read dir").flatten() {
            chown_tree(&entry.path(), uid);
        }
    }
}

/// Live processes whose real uid is `uid` (zombies are not: a killed
/// relay whose parent died first waits for the system's init to reap it).
fn processes_of(uid: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                == Some(uid.to_string().as_str())
                && !status.contains("State:\tZ")
        })
        .collect()
}

/// The score detail of the attacker's answer to task `id` in a journal.
fn detail_of<'a>(lines: &'a [serde_json::Value], id: &str) -> &'a str {
    lines
        .iter()
        .find(|e| e["model"] == "attacker" && e["task_id"] == id)
        .and_then(|e| e["detail"].as_str())
        .unwrap_or("")
}

/// Hostile answers through `distill-gate run`, started as a fresh
/// unprivileged user with an API key in its environment and a private
/// file it can read: in the jail and in the forced Landlock fallback each
/// scores 0 with a reason, the teacher scores 1, nothing leaks, no process
/// is left, and the terminal report and `summary.json` name the
/// isolation. With rlimits only, the run is refused before any model runs
/// (exit 2), naming `[run] unsafe_sandbox = true`, until the config says so.
#[test]
fn attacks_in_a_run_as_an_unprivileged_user() {
    if !is_root() {
        return; // the inner tests above cover a caller that is not root
    }
    let uid = fresh_uid();
    let (home, secret) = private_home();
    chown_tree(home.path(), uid);
    let attacks: Vec<(&str, String)> = vec![
        (
            "a private file of the user",
            format!(
                "def f(x):\n    print(open({:?}).read())\n    return 2 * x\n",
                secret.display().to_string()
            ),
        ),
        (
            "api key from the parent's environ",
            "import os\ndef f(x):\n    data = open('/proc/%d/environ' % os.getppid(), 'rb').read()\n    assert b'OPENAI_API_KEY' in data, 'no key'\n    return 2 * x\n".into(),
        ),
        (
            "a raw socket",
            "import socket\ndef f(x):\n    socket.socket(socket.AF_UNIX, socket.SOCK_RAW)\n    return 2 * x\n".into(),
        ),
        (
            "a background process",
            "import os, time\ndef f(x):\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(120)\n    return 2 * x\n".into(),
        ),
        (
            "many files of 4 MiB",
            "def f(x):\n    for n in range(100):\n        with open('f%d' % n, 'wb') as out:\n            out.write(b'x' * (4 << 20))\n    return 2 * x\n".into(),
        ),
    ];
    let suite = "name = \"attacks\"\nversion = \"1\"\ndescription = \"hostile answers\"\n[defaults]\nprompt = \"{input}\"\nmax_tokens = 512\nscorer = { kind = \"code\", timeout_ms = 4000, memory_mb = 256 }\n";
    let tasks: String = (0..attacks.len())
        .map(|i| {
            format!(
                "{{\"id\": \"a{i}\", \"category\": \"attack\", \"input\": \"Write f(x) = 2x ({i})\", \"target\": {{\"entry_point\": \"f\", \"solution\": \"def f(x):\\n    return 2 * x\\n\", \"tests\": [\"assert f(2) == 4\"]}}}}\n"
            )
        })
        .collect();
    let ws = support::Workspace::new(suite, &tasks);
    ws.transcript("teacher", |_, _| {
        "```python\ndef f(x):\n    return 2 * x\n```".to_string()
    });
    ws.transcript("attacker", |i, _| {
        attacks.get(i).map(|(_, a)| a.clone()).unwrap_or_default()
    });
    let config = ws.config(&["teacher", "attacker"], "");
    chown_tree(ws.path(), uid);
    let run = |mode: &str| {
        let _ = std::fs::remove_dir_all(ws.run_dir());
        let out = ws
            .command(&["run", "gate.toml"])
            .env("OPENAI_API_KEY", FAKE_KEY)
            .env("HOME", home.path())
            .env(MODE_VARIABLE, mode)
            .uid(uid)
            .gid(uid)
            .output()
            .expect("spawn");
        let all = support::text(&out);
        assert!(
            !all.contains(FAKE_KEY) && !all.contains(SECRET),
            "leak: {all}"
        );
        let left = processes_of(uid);
        assert!(left.is_empty(), "{mode}: processes left: {left:?}");
        let journal = std::fs::read_to_string(ws.run_dir().join("results.jsonl"))
            .unwrap_or_else(|e| panic!("{mode}: no journal ({e}): {all}"));
        let summary = std::fs::read_to_string(ws.run_dir().join("summary.json")).expect("summary");
        for f in std::fs::read_dir(ws.run_dir()).expect("run dir").flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            assert!(
                !text.contains(FAKE_KEY) && !text.contains(SECRET),
                "leak into {f:?}"
            );
        }
        let lines: Vec<serde_json::Value> = journal
            .lines()
            .map(|l| serde_json::from_str(l).expect("journal line"))
            .collect();
        (all, lines, summary)
    };

    for (mode, says) in [
        ("jail", "Code sandbox: jail in a user namespace (not root)"),
        ("landlock", "Code sandbox: landlock fallback (not root)"),
    ] {
        let (all, lines, summary) = run(mode);
        assert!(all.contains(says), "{mode}: {all}");
        assert!(
            summary.contains(&says["Code sandbox: ".len()..]),
            "{summary}"
        );
        for e in &lines {
            let i: usize = e["task_id"].as_str().unwrap_or("")[1..]
                .parse()
                .unwrap_or(0);
            let what = attacks.get(i).map_or("?", |a| a.0);
            if e["model"] == "teacher" {
                assert_eq!(e["score"], 1.0, "{mode}: teacher on {what}: {e}");
            } else {
                let detail = e["detail"].as_str().unwrap_or("");
                eprintln!("{mode:9} {what:35} -> {detail}");
                assert_eq!(e["score"], 0.0, "{mode}: {what} was not contained: {e}");
                assert!(
                    detail.contains("failed") || detail.contains("limit"),
                    "{mode}: {what}: no reason: {e}"
                );
            }
        }
        let raw_socket = detail_of(&lines, "a2");
        assert!(raw_socket.contains("system-call filter"), "{raw_socket}");
        let disk = detail_of(&lines, "a4");
        if mode == "jail" {
            assert!(disk.contains("No space left on device"), "{disk}");
        } else {
            assert!(
                disk.contains("stopped: disk limit exceeded (wrote more than 64 MiB"),
                "{disk}"
            );
        }
    }

    // Rlimits only: refused before any model runs (exit 2), the error
    // naming the setting and its gate.toml line; nothing is journaled.
    let _ = std::fs::remove_dir_all(ws.run_dir());
    let out = ws
        .command(&["run", "gate.toml"])
        .env(MODE_VARIABLE, "rlimits")
        .uid(uid)
        .gid(uid)
        .output()
        .expect("spawn");
    let all = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("run.unsafe_sandbox") && all.contains("`[run] unsafe_sandbox = true`"),
        "{all}"
    );
    assert!(!ws.run_dir().join("results.jsonl").exists(), "{all}");
    let text = std::fs::read_to_string(&config).expect("gate.toml");
    std::fs::write(
        &config,
        text.replacen("[run]\n", "[run]\nunsafe_sandbox = true\n", 1),
    )
    .expect("gate.toml");
    let (all, lines, _) = run("rlimits");
    assert!(
        all.contains("Code sandbox: rlimits only (not root)"),
        "{all}"
    );
    let teacher_scores: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|e| e["model"] == "teacher")
        .map(|e| &e["score"])
        .collect();
    assert!(teacher_scores.iter().all(|s| **s == 1.0), "{lines:?}");
}
