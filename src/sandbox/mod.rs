//! A sandbox for untrusted, model-written Python.
//!
//! [`run_python`] runs a program with Python 3 in a child process and
//! returns its exit status and (capped) output. Containment, in layers:
//!
//! 1. **Limits** (`setrlimit` in the child): CPU seconds, address space,
//!    processes, file size, open files, no core dumps; plus a wall-clock
//!    limit, an output cap and (outside the jail, whose tmpfs holds it) a
//!    cap on what the work dir holds, enforced by the harness, which then
//!    kills the child's whole process group.
//! 2. **Own session and process group** (`setsid`); after the program ends
//!    (normally or not) the group is killed so no background process
//!    survives. When running as root, each concurrent run also gets its own
//!    unprivileged uid, and every process with that uid is killed
//!    afterwards, which also catches processes that left the group.
//! 3. **Namespaces and uid** (Linux): as root, a new network namespace (no
//!    interface but a down loopback: every connection fails) and a new mount
//!    namespace in which a fresh temporary directory is bind-mounted over
//!    `/tmp`, `/var/tmp` and `/dev/shm`; then the program drops to an
//!    unprivileged uid with no groups (needed: `RLIMIT_NPROC` is not
//!    enforced for root, so a fork bomb would run free). Not as root: a new
//!    user + network namespace where the kernel allows unprivileged user
//!    namespaces; no uid change and no process limit (`RLIMIT_NPROC` would
//!    count every process of the calling user). Whatever is unavailable is
//!    skipped, never fatal, and reported in [`Isolation`].
//! 4. **A Python audit hook** (trusted prelude, `python3 -s -S -B` in a cleared environment) that
//!    refuses sockets other than `AF_UNIX`, starting processes, `ctypes`,
//!    and writing outside the work directory, with a clear
//!    `PermissionError("sandbox: ... blocked")`. Audit hooks are not a
//!    security boundary (C code can bypass them); they give clean reasons
//!    and cover systems where layer 3 is missing.
//! 5. **A clean environment**: only `PATH`, `HOME` (the work dir), `LANG`,
//!    `PYTHONHASHSEED=0`, `PYTHONDONTWRITEBYTECODE=1`; the work dir is the
//!    current directory and is removed afterwards.
//!
//! At most one sandbox per core runs at a time in the whole process; extra
//! callers wait.
//!
//! The interpreter is `$DISTILL_GATE_PYTHON` if set, else the first of
//! `/usr/bin/python3`, `/usr/local/bin/python3`, then `python3` on `PATH`.
//! The uid drop needs an interpreter every user may execute (a pyenv build
//! under `/root` is not); otherwise the program runs as the caller and
//! [`Isolation::uid`] says so.

mod child;
mod disk;
mod fs_rules;
mod slots;
mod syscalls;

pub use syscalls::signal_cause;

use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use self::child::Containment;
use self::disk::DiskWatch;
use self::slots::Slot;

/// Resource limits of one sandboxed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock limit; the process group is killed when it passes.
    pub wall: Duration,
    /// CPU time limit in seconds (`RLIMIT_CPU`; SIGXCPU, then SIGKILL a second later).
    pub cpu_seconds: u64,
    /// Address-space limit in bytes (`RLIMIT_AS`); allocations beyond it fail (`MemoryError`).
    pub memory_bytes: u64,
    /// Process (and thread) limit for the sandbox uid (`RLIMIT_NPROC`); only
    /// enforced when the harness runs as root and can drop to a sandbox uid.
    pub max_processes: u64,
    /// Cap on bytes kept of stdout and of stderr; exceeding it kills the run.
    pub max_output_bytes: usize,
    /// Largest file the program may write (`RLIMIT_FSIZE`).
    pub max_file_bytes: u64,
    /// Most bytes the program may keep in its work dir: the size of the
    /// jail's tmpfs `/tmp`; in the other modes the harness watches the work
    /// dir and kills the run past it ([`Status::DiskLimit`]).
    pub max_disk_bytes: u64,
    /// Most files (and directories) the program may keep in its work dir:
    /// the inodes of the jail's tmpfs, watched like `max_disk_bytes`
    /// elsewhere.
    pub max_files: u64,
    /// Install the Python audit-hook guard (default true). Turning it off
    /// leaves only the OS layers, e.g. to test them.
    pub audit_hook: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall: Duration::from_secs(10),
            cpu_seconds: 10,
            memory_bytes: 512 << 20,
            max_processes: 16,
            max_output_bytes: 64 << 10,
            max_file_bytes: 16 << 20,
            max_disk_bytes: 64 << 20,
            max_files: 1024,
            audit_hook: true,
        }
    }
}

/// How a sandboxed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// The program exited with this code.
    Exited(i32),
    /// The program was killed by this signal (SIGXCPU = 24 / SIGKILL = 9
    /// after the CPU limit, SIGSEGV, ...).
    Signaled(i32),
    /// The wall-clock limit passed; the harness killed the process group.
    WallTimeout,
    /// Stdout or stderr exceeded the output cap; the harness killed the process group.
    OutputLimit,
    /// The program kept more than [`Limits::max_disk_bytes`] or
    /// [`Limits::max_files`] in its work dir (outside the jail, whose tmpfs
    /// refuses it with `ENOSPC` instead); the harness killed it and every
    /// descendant.
    DiskLimit,
}

impl Status {
    /// True when the program was stopped by the CPU time limit.
    pub fn is_cpu_limit(&self) -> bool {
        *self == Status::Signaled(libc::SIGXCPU)
    }
}

/// What containment was in effect for a run (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// The harness ran as root.
    pub root: bool,
    /// The program ran in a new network namespace (no network).
    pub network_namespace: bool,
    /// The program ran in a new mount namespace with its work dir over `/tmp`, `/var/tmp`, `/dev/shm`.
    pub private_tmp: bool,
    /// The program ran in a file-system jail: a new root holding only the
    /// system directories (read-only), its program, a size-limited tmpfs
    /// `/tmp` and a `/proc` showing only its own processes.
    #[serde(default)]
    pub jail: bool,
    /// The program ran in a new user namespace (not as root).
    pub user_namespace: bool,
    /// The uid the program ran as, when the harness dropped to a sandbox uid.
    pub uid: Option<u32>,
    /// `RLIMIT_NPROC` was set (only with a dropped uid).
    pub process_limit: bool,
    /// The Python audit-hook guard was installed.
    pub audit_hook: bool,
    /// The program ran in a PID namespace of its own: it saw no other
    /// process, and every process it left was killed when it ended.
    #[serde(default)]
    pub pid_namespace: bool,
    /// A Landlock ruleset confined the program's file access to its work
    /// directory and read-only system paths (the fallback without a jail).
    #[serde(default)]
    pub landlock: bool,
    /// The seccomp filter refused the system calls answer code never needs.
    #[serde(default)]
    pub seccomp: bool,
}

impl Isolation {
    /// One line for details and reports, the same for every run on a
    /// machine, e.g. `jail as root: netns; private /tmp; fs jail; own uid;
    /// nproc limit; seccomp; audit hook`.
    pub fn describe(&self) -> String {
        let pick = |on: bool, yes: &str, no: &str| if on { yes } else { no }.to_string();
        let network = if self.network_namespace {
            "netns"
        } else if self.seccomp {
            "no netns (sockets refused by seccomp)"
        } else {
            "NO netns (network open)"
        };
        let files = if self.jail {
            "fs jail"
        } else if self.landlock {
            "landlock (work dir and system dirs only)"
        } else {
            "host fs visible"
        };
        let mut parts = vec![
            network.to_string(),
            pick(self.private_tmp, "private /tmp", "shared /tmp"),
            files.to_string(),
        ];
        if self.user_namespace {
            parts.push("userns".into());
        }
        if self.pid_namespace {
            parts.push("pidns".into());
        }
        // Not the uid itself: it differs from run to run, and summaries
        // must not.
        parts.push(match self.uid {
            Some(_) => "own uid".into(),
            None => "caller's uid".into(),
        });
        parts.push(pick(self.process_limit, "nproc limit", "NO process limit"));
        parts.push(pick(self.seccomp, "seccomp", "NO seccomp"));
        parts.push(pick(self.audit_hook, "audit hook", "no audit hook"));
        format!("{}: {}", self.mode().describe(self.root), parts.join("; "))
    }

    /// The containment mode this amounts to.
    pub fn mode(&self) -> Mode {
        Mode::of(self.jail, self.landlock)
    }

    /// Whether anything beyond resource limits and the system-call filter
    /// kept the program from the user's files: a jail, Landlock, or (as
    /// root) a uid of its own.
    pub fn confines_files(&self) -> bool {
        self.jail || self.landlock || self.uid.is_some()
    }
}

/// A containment mode, strongest first (`DISTILL_GATE_SANDBOX` forces one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Namespaces and a file-system jail (as root, or in an unprivileged
    /// user namespace).
    Jail,
    /// Landlock confines files; no namespaces.
    Landlock,
    /// Resource limits and the seccomp filter only (or, as root, a uid of
    /// its own with partial namespaces).
    Rlimits,
}

impl Mode {
    /// The mode of a containment with (or without) a jail and Landlock.
    fn of(jail: bool, landlock: bool) -> Mode {
        if jail {
            Mode::Jail
        } else if landlock {
            Mode::Landlock
        } else {
            Mode::Rlimits
        }
    }

    /// The value `DISTILL_GATE_SANDBOX` names it by.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Jail => "jail",
            Mode::Landlock => "landlock",
            Mode::Rlimits => "rlimits",
        }
    }

    fn describe(self, root: bool) -> String {
        let who = if root { "as root" } else { "not root" };
        match self {
            Mode::Jail if root => "jail as root".into(),
            Mode::Jail => "jail in a user namespace (not root)".into(),
            Mode::Landlock => format!("landlock fallback ({who})"),
            Mode::Rlimits => format!("rlimits only ({who})"),
        }
    }
}

/// The environment variable that forces a [`Mode`] (`jail`, `landlock`,
/// `rlimits`): only that mode's containment is tried. For tests, and to
/// check what a weaker mode still holds.
pub const MODE_VARIABLE: &str = "DISTILL_GATE_SANDBOX";

/// Whether code may run with no isolation beyond rlimits (`[run]
/// unsafe_sandbox`); off unless the run's configuration says so.
static ALLOW_UNSAFE: AtomicBool = AtomicBool::new(false);

/// Allows (or again refuses) running code where neither a jail nor
/// Landlock can confine it: `[run] unsafe_sandbox = true`.
pub fn allow_unsafe(allowed: bool) {
    ALLOW_UNSAFE.store(allowed, Ordering::Relaxed);
}

/// The result of one sandboxed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// How the run ended.
    pub status: Status,
    /// Standard output (at most `max_output_bytes`, lossy UTF-8).
    pub stdout: String,
    /// Standard error (at most `max_output_bytes`, lossy UTF-8).
    pub stderr: String,
    /// Wall-clock time from spawn to exit.
    pub wall: Duration,
    /// The containment that was in effect.
    pub isolation: Isolation,
}

/// A failure of the harness itself (not of the sandboxed program).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No Python 3 interpreter was found.
    #[error("python3 not found (tried {tried}); set DISTILL_GATE_PYTHON to an interpreter")]
    PythonNotFound {
        /// The places looked at.
        tried: String,
    },
    /// The temporary work directory could not be created or prepared.
    #[error("cannot prepare the sandbox work directory {path}: {source}")]
    WorkDir {
        /// The directory (or its parent, when creation failed).
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The interpreter could not be started under any containment.
    #[error("cannot start {python}: {source}")]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// The error of the last (weakest) attempt.
        source: io::Error,
    },
    /// Waiting for the child failed.
    #[error("waiting for the sandboxed python failed: {0}")]
    Wait(io::Error),
    /// Only rlimits could contain the program, and that was not allowed.
    #[error(
        "refusing to run model-written code with no isolation beyond rlimits: neither a \
         namespace jail nor Landlock could be set up here ({why}); set `[run] unsafe_sandbox = \
         true` in gate.toml (`--unsafe-sandbox` for `suites import-humaneval`) to run it \
         anyway (it could then read every file you can, e.g. \
         ~/.ssh and the API keys in your processes' environments), or run as root or where \
         user namespaces or Landlock are allowed"
    )]
    Unisolated {
        /// Why the stronger modes failed.
        why: String,
    },
    /// `DISTILL_GATE_SANDBOX` holds no mode.
    #[error("{MODE_VARIABLE}={value}: expected jail, landlock or rlimits")]
    BadMode {
        /// The value found.
        value: String,
    },
}

const PRELUDE: &str = include_str!("prelude.py");

/// Runs `source` as a Python 3 program with `stdin` as its standard input,
/// contained as described in the module doc. Blocks while all sandbox slots
/// are taken. Errors only for harness-side failures; a program that
/// crashes, loops or misbehaves gives an [`Outcome`].
pub fn run_python(source: &str, stdin: &str, limits: &Limits) -> Result<Outcome, SandboxError> {
    let python = python()?;
    let _slot = Slot::acquire();
    let program = Prepared::new(&python, source)?;
    let plans = program.plans();
    attempt_plans(&python, &plans, |_, plan| {
        let command = program
            .command(plan, limits, None)
            .map_err(Attempt::Spawn)?;
        spawn_and_wait(command, stdin, limits, plan, &program)
    })
}

/// Tries `attempt` with each plan, strongest first, until one starts: only
/// the plans of the mode `DISTILL_GATE_SANDBOX` forces, and none that
/// leaves the user's files open unless [`allow_unsafe`] said so.
fn attempt_plans<T>(
    python: &Path,
    plans: &[Plan],
    mut attempt: impl FnMut(usize, &Plan) -> Result<T, Attempt>,
) -> Result<T, SandboxError> {
    let forced = forced_mode()?;
    let allowed = ALLOW_UNSAFE.load(Ordering::Relaxed);
    let first = if forced.is_some() {
        0
    } else {
        FIRST_PLAN.load(Ordering::Relaxed)
    };
    let mut last_error = None;
    let mut refused = false;
    for (i, plan) in plans.iter().enumerate().skip(first) {
        if forced.is_some_and(|mode| plan.mode() != mode) {
            continue;
        }
        if !plan.confines_files() && !allowed {
            refused = true;
            continue;
        }
        match attempt(i, plan) {
            Ok(outcome) => {
                if forced.is_none() {
                    FIRST_PLAN.store(i, Ordering::Relaxed);
                }
                return Ok(outcome);
            }
            Err(Attempt::Spawn(e)) => last_error = Some(e),
            Err(Attempt::Wait(e)) => return Err(SandboxError::Wait(e)),
        }
    }
    if refused {
        return Err(SandboxError::Unisolated {
            why: match (last_error, forced) {
                (Some(e), _) => e.to_string(),
                (None, Some(mode)) => format!("{MODE_VARIABLE}={} forces it", mode.name()),
                (None, None) => "no such containment here".to_string(),
            },
        });
    }
    Err(SandboxError::Spawn {
        python: python.to_path_buf(),
        source: last_error.unwrap_or_else(|| io::Error::other("no containment plan")),
    })
}

/// The mode `DISTILL_GATE_SANDBOX` forces, if set.
fn forced_mode() -> Result<Option<Mode>, SandboxError> {
    let Some(value) = std::env::var_os(MODE_VARIABLE) else {
        return Ok(None);
    };
    [Mode::Jail, Mode::Landlock, Mode::Rlimits]
        .into_iter()
        .find(|m| value == m.name())
        .map(Some)
        .ok_or_else(|| SandboxError::BadMode {
            value: value.to_string_lossy().into_owned(),
        })
}

/// What the sandbox gives model code here, for a run's summary: the
/// [`Isolation::describe`] line of a trivial program run now, or why code
/// cannot run (refused without isolation, or the sandbox failed). Found
/// once per process.
pub fn isolation_here() -> Result<String, String> {
    static HERE: OnceLock<Result<String, String>> = OnceLock::new();
    HERE.get_or_init(|| {
        run_python("pass", "", &Limits::default())
            .map(|outcome| outcome.isolation.describe())
            .map_err(|e| e.to_string())
    })
    .clone()
}

/// What [`run_python_pair`] returns: how each program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairOutcome {
    /// The trusted program: its standard output and error, its status.
    pub judge: Outcome,
    /// The untrusted program: its standard error (its standard output is
    /// the judge's input), its status. A worker still running when the
    /// judge ended is killed then, and reported as killed by `SIGKILL`.
    pub worker: Outcome,
}

/// Runs two Python programs side by side, each contained as [`run_python`]
/// contains one, as different users (when the harness is root) in separate
/// work directories, jails and process groups: the `worker` (untrusted
/// code) and the `judge` (trusted code) that talks to it. The judge's fd 3
/// is the worker's standard input and the worker's standard output is the
/// judge's standard input; the judge's own standard output reaches only the
/// harness. So the worker can send the judge data and nothing else: it
/// cannot read, write or signal the judge, or reach its output. Both share
/// one wall-clock limit, which starts when both run; the worker is killed
/// when the judge ends. Blocks while all sandbox slots are taken (the pair
/// takes one: one of them waits while the other works).
pub fn run_python_pair(
    judge: &str,
    worker: &str,
    limits: &Limits,
) -> Result<PairOutcome, SandboxError> {
    let python = python()?;
    let _slot = Slot::acquire();
    let judge_program = Prepared::new(&python, judge)?;
    let worker_program = Prepared::new(&python, worker)?;
    let judge_plans = judge_program.plans();
    let worker_plans = worker_program.plans();
    attempt_plans(&python, &judge_plans, |index, judge_plan| {
        // Both lists have the same shape; only the uids differ.
        let worker_plan = worker_plans.get(index).unwrap_or(judge_plan);
        spawn_pair_and_wait(
            (&judge_program, judge_plan),
            (&worker_program, worker_plan),
            limits,
        )
    })
}

/// A program ready to start: its work dir holding `main.py` (owned by its
/// uid), the empty mount point of its jail, and the uid it runs as. The
/// directories are removed when it is dropped.
struct Prepared {
    python: PathBuf,
    root: bool,
    uid: Option<u32>,
    workdir: tempfile::TempDir,
    jail_dir: Option<tempfile::TempDir>,
}

impl Prepared {
    fn new(python: &Path, source: &str) -> Result<Self, SandboxError> {
        let root = child::euid() == 0;
        let uid = (root && world_executable(python)).then(slots::fresh_uid);
        let temp_dir = |prefix: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .map_err(|source| SandboxError::WorkDir {
                    path: std::env::temp_dir(),
                    source,
                })
        };
        let workdir = temp_dir("distill-gate-sandbox-")?;
        // The mount point of the jail's root (stays empty outside the child).
        let jail_dir = if jail_possible(python) {
            Some(temp_dir("distill-gate-jail-")?)
        } else {
            None
        };
        let work = workdir.path();
        let prepare = |r: io::Result<()>| {
            r.map_err(|source| SandboxError::WorkDir {
                path: work.to_path_buf(),
                source,
            })
        };
        prepare(fs::write(work.join("main.py"), source))?;
        if let Some(uid) = uid {
            prepare(std::os::unix::fs::chown(work, Some(uid), Some(uid)))?;
            prepare(std::os::unix::fs::chown(
                work.join("main.py"),
                Some(uid),
                Some(uid),
            ))?;
        }
        Ok(Self {
            python: python.to_path_buf(),
            root,
            uid,
            workdir,
            jail_dir,
        })
    }

    /// The watch on its work dir while it runs as process group `pgid`
    /// under `plan`: none in the jail, whose tmpfs holds the limits itself
    /// (the work dir is only its read-only program directory there).
    fn disk_watch(&self, pgid: u32, plan: &Plan, limits: &Limits) -> Option<DiskWatch> {
        (!plan.jail).then(|| DiskWatch::new(pgid, self.workdir.path(), limits))
    }

    /// Containment levels, strongest first.
    fn plans(&self) -> Vec<Plan> {
        plans(self.root, self.uid, self.jail_dir.is_some())
    }

    /// The command that starts the program under `plan`, its fd 3 a
    /// duplicate of `fd3` when given.
    fn command(
        &self,
        plan: &Plan,
        limits: &Limits,
        fd3: Option<libc::c_int>,
    ) -> io::Result<Command> {
        let jail = self.jail_dir.as_ref().map(|d| d.path());
        command((&self.python, self.workdir.path(), jail), plan, limits, fd3)
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Before the work dir is removed: a directory the program made
        // unreadable would keep what it holds on the disk.
        disk::make_removable(self.workdir.path());
    }
}

/// Index of the strongest plan that worked last time (later runs start there).
static FIRST_PLAN: AtomicUsize = AtomicUsize::new(0);

/// One containment level to try.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    /// Namespaces to create (`CLONE_NEWUSER` among them: in a user namespace).
    unshare: libc::c_int,
    private_tmp: bool,
    jail: bool,
    uid: Option<u32>,
    landlock: bool,
}

impl Plan {
    fn user_namespace(&self) -> bool {
        self.unshare & libc::CLONE_NEWUSER != 0
    }

    fn mode(&self) -> Mode {
        Mode::of(self.jail, self.landlock)
    }

    /// See [`Isolation::confines_files`].
    fn confines_files(&self) -> bool {
        self.jail || self.landlock || self.uid.is_some()
    }
}

/// Containment levels, strongest first.
fn plans(root: bool, uid: Option<u32>, jail: bool) -> Vec<Plan> {
    let plan = |unshare, private_tmp, uid| Plan {
        unshare,
        private_tmp,
        jail: false,
        uid,
        landlock: false,
    };
    let landlock = |plan: Plan| Plan {
        landlock: true,
        ..plan
    };
    let mut plans = Vec::new();
    if root {
        if jail {
            plans.push(Plan {
                jail: true,
                ..plan(child::NET_AND_MOUNT, true, uid)
            });
        }
        plans.extend([
            plan(child::NET_AND_MOUNT, true, uid),
            landlock(plan(child::NET, false, uid)),
            landlock(plan(0, false, uid)),
            plan(child::NET, false, uid),
            plan(0, false, uid),
        ]);
        if uid.is_some() {
            plans.push(plan(0, false, None));
        }
    } else {
        if jail {
            plans.push(Plan {
                jail: true,
                ..plan(child::USER_JAIL, true, None)
            });
        }
        plans.extend([landlock(plan(0, false, None)), plan(0, false, None)]);
    }
    plans
}

/// Mount points the work dir is bound over in a private mount namespace;
/// `/tmp` last, since the work dir itself usually lives under it.
const PRIVATE_DIRS: [&str; 3] = ["/var/tmp", "/dev/shm", "/tmp"];

/// System directories the jail shows read-only (or as the same symbolic
/// links, on merged-`/usr` systems).
const JAIL_SYSTEM_DIRS: [&str; 8] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc",
];
/// Device nodes the jail shows.
const JAIL_DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"];
/// Where the program directory appears in the jail.
const JAIL_PROGRAM_DIR: &str = "/run";

/// The jail can run `python` when the interpreter lives in one of the
/// system directories it shows.
fn jail_possible(python: &Path) -> bool {
    fs::canonicalize(python).is_ok_and(|real| {
        JAIL_SYSTEM_DIRS
            .iter()
            .any(|d| real.starts_with(d) && fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()))
    })
}

/// The jail's layout under mount point `root` (see [`child::Jail`]); its
/// `/tmp` holds at most `max_disk_bytes` and `max_files` files.
fn jail(root: &Path, work: &Path, limits: &Limits) -> io::Result<child::Jail> {
    let inside = |p: &str| child::c_path(&root.join(p.trim_start_matches('/')));
    let mut dirs = Vec::new();
    let mut symlinks = Vec::new();
    let mut read_only = Vec::new();
    for dir in JAIL_SYSTEM_DIRS {
        let Ok(meta) = fs::symlink_metadata(dir) else {
            continue;
        };
        if meta.is_symlink() {
            symlinks.push((child::c_path(&fs::read_link(dir)?)?, inside(dir)?));
        } else if meta.is_dir() {
            dirs.push(inside(dir)?);
            read_only.push((child::c_path(Path::new(dir))?, inside(dir)?));
        }
    }
    for dir in ["/dev", "/tmp", "/proc", JAIL_PROGRAM_DIR] {
        dirs.push(inside(dir)?);
    }
    read_only.push((child::c_path(work)?, inside(JAIL_PROGRAM_DIR)?));
    let devices = JAIL_DEVICES
        .iter()
        .filter(|d| Path::new(d).exists())
        .map(|d| Ok((child::c_path(Path::new(d))?, inside(d)?)))
        .collect::<io::Result<_>>()?;
    // At least 1: a tmpfs takes 0 for no limit.
    let options = format!(
        "size={},nr_inodes={},mode=1777",
        limits.max_disk_bytes.max(1),
        limits.max_files.max(1)
    );
    Ok(child::Jail {
        root: child::c_path(root)?,
        dirs,
        symlinks,
        read_only,
        devices,
        tmp: (inside("/tmp")?, child::c_path(Path::new(&options))?),
        proc_dir: inside("/proc")?,
    })
}

/// The command that runs `python` on the program in `work` under `plan`,
/// with `jail_root` the empty mount point of its jail.
fn command(
    (python, work, jail_root): (&Path, &Path, Option<&Path>),
    plan: &Plan,
    limits: &Limits,
    fd3: Option<libc::c_int>,
) -> io::Result<Command> {
    let jail = match jail_root {
        Some(root) if plan.jail => Some(jail(root, work, limits)?),
        _ => None,
    };
    let bind_targets: Vec<_> = if plan.private_tmp && jail.is_none() {
        PRIVATE_DIRS
            .iter()
            .map(Path::new)
            .filter(|p| p.is_dir())
            .map(child::c_path)
            .collect::<io::Result<_>>()?
    } else {
        Vec::new()
    };
    let inside = if jail.is_some()
        || plan.private_tmp && bind_targets.last().is_some_and(|t| t.as_bytes() == b"/tmp")
    {
        PathBuf::from("/tmp")
    } else {
        work.to_path_buf()
    };
    let program = if jail.is_some() {
        Path::new(JAIL_PROGRAM_DIR).join("main.py")
    } else {
        inside.join("main.py")
    };
    let mut rlimits = vec![
        (libc::RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (libc::RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (
            libc::RLIMIT_FSIZE,
            limits.max_file_bytes,
            limits.max_file_bytes,
        ),
        (libc::RLIMIT_NOFILE, 64, 64),
        (libc::RLIMIT_CORE, 0, 0),
    ];
    if plan.uid.is_some() {
        rlimits.push((
            libc::RLIMIT_NPROC,
            limits.max_processes,
            limits.max_processes,
        ));
    } else if plan.landlock {
        // Not root and no namespace: RLIMIT_NPROC counts every task of the
        // user, so the program may start `max_processes` more (per slot)
        // than the user has now.
        let slack = limits.max_processes.saturating_mul(slots::count() as u64);
        let tasks = child::tasks_of_uid(child::ids().0).saturating_add(slack);
        rlimits.push((libc::RLIMIT_NPROC, tasks, tasks));
    }
    let user_namespace = plan.user_namespace().then(|| {
        let (uid, gid) = child::ids();
        child::UserNamespace {
            flags: plan.unshare,
            uid_map: CString::new(format!("{uid} {uid} 1")).unwrap_or_default(),
            gid_map: CString::new(format!("{gid} {gid} 1")).unwrap_or_default(),
            max_processes: limits.max_processes,
        }
    });
    let landlock = if plan.landlock {
        let system: Vec<&str> = JAIL_SYSTEM_DIRS.to_vec();
        let ruleset = fs_rules::ruleset(&system, python, work)
            .map_err(|e| io::Error::other(format!("Landlock: {e}")))?;
        Some(Mutex::new(Some(ruleset)))
    } else {
        None
    };
    let containment = Containment {
        rlimits,
        unshare_flags: if user_namespace.is_some() {
            0
        } else {
            plan.unshare
        },
        bind_targets,
        bind_source: child::c_path(work)?,
        cwd: child::c_path(&inside)?,
        uid: plan.uid,
        jail,
        fd3,
        user_namespace,
        landlock,
        filters: syscalls::filters()
            .map(|filters| (filters, plan.unshare & libc::CLONE_NEWNET == 0)),
        subreaper: !plan.user_namespace() && plan.uid.is_none(),
    };
    let mut command = Command::new(python);
    command
        // Not -I: it implies -E, which ignores PYTHONHASHSEED below, and
        // then a set's order (and an answer's score) changes between runs.
        // The environment is cleared instead; the prelude drops the working
        // directory from sys.path (-I's other effect).
        .args(["-s", "-S", "-B", "-c", PRELUDE])
        .arg(&inside)
        .arg(if limits.audit_hook { "1" } else { "0" })
        .arg(&program)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &inside)
        .env("LANG", "C.UTF-8")
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    child::install(&mut command, containment);
    Ok(command)
}

enum Attempt {
    Spawn(io::Error),
    Wait(io::Error),
}

fn spawn_and_wait(
    mut command: Command,
    stdin: &str,
    limits: &Limits,
    plan: &Plan,
    program: &Prepared,
) -> Result<Outcome, Attempt> {
    let start = Instant::now();
    let mut child = command.spawn().map_err(Attempt::Spawn)?;
    let feeder = child.stdin.take().map(|mut pipe| {
        let data = stdin.as_bytes().to_vec();
        std::thread::spawn(move || {
            // The program may exit without reading; a broken pipe is fine.
            let _ = pipe.write_all(&data);
        })
    });
    let captured = Captured::start(&mut child, limits.max_output_bytes);
    let mut disk = program.disk_watch(child.id(), plan, limits);
    let waited = wait_until(&mut child, start + limits.wall, || {
        disk.iter_mut().for_each(DiskWatch::check)
    });
    // Whatever happened, nothing of this run may survive it.
    clean_up(child.id(), plan);
    let (exit, timed_out) = match waited {
        Ok(r) => r,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Attempt::Wait(e));
        }
    };
    let stopped = stopped_by(timed_out, disk.as_ref());
    let outcome = captured.outcome(exit, stopped, start.elapsed(), plan, limits, program.root);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Ok(outcome)
}

/// [`run_python_pair`] under one containment level per program.
fn spawn_pair_and_wait(
    (judge, judge_plan): (&Prepared, &Plan),
    (worker, worker_plan): (&Prepared, &Plan),
    limits: &Limits,
) -> Result<PairOutcome, Attempt> {
    use std::os::fd::AsRawFd;
    let (to_worker, judge_writes) = io::pipe().map_err(Attempt::Spawn)?;
    let (judge_reads, worker_writes) = io::pipe().map_err(Attempt::Spawn)?;
    let mut worker_command = worker
        .command(worker_plan, limits, None)
        .map_err(Attempt::Spawn)?;
    worker_command
        .stdin(Stdio::from(to_worker))
        .stdout(Stdio::from(worker_writes));
    let mut judge_command = judge
        .command(judge_plan, limits, Some(judge_writes.as_raw_fd()))
        .map_err(Attempt::Spawn)?;
    judge_command.stdin(Stdio::from(judge_reads));
    let start = Instant::now();
    let mut worker_child = worker_command.spawn().map_err(Attempt::Spawn)?;
    // The pipe ends the worker holds are closed here, so the judge sees the
    // end of its input when the worker ends.
    drop(worker_command);
    let mut judge_child = match judge_command.spawn() {
        Ok(c) => c,
        Err(e) => {
            clean_up(worker_child.id(), worker_plan);
            let _ = worker_child.wait();
            return Err(Attempt::Spawn(e));
        }
    };
    // And the worker sees the end of its input when the judge ends.
    drop((judge_command, judge_writes));
    let worker_captured = Captured::start(&mut worker_child, limits.max_output_bytes);
    let judge_captured = Captured::start(&mut judge_child, limits.max_output_bytes);
    let mut judge_disk = judge.disk_watch(judge_child.id(), judge_plan, limits);
    let mut worker_disk = worker.disk_watch(worker_child.id(), worker_plan, limits);
    let judge_waited = wait_until(&mut judge_child, start + limits.wall, || {
        judge_disk
            .iter_mut()
            .chain(worker_disk.iter_mut())
            .for_each(DiskWatch::check)
    });
    let judge_wall = start.elapsed();
    // The worker has nothing left to do once the judge ended.
    let worker_waited = match worker_child.try_wait() {
        Ok(Some(status)) => Ok((status, false)),
        _ => {
            child::kill_group(worker_child.id());
            worker_child.wait().map(|s| (s, false))
        }
    };
    let worker_wall = start.elapsed();
    clean_up(judge_child.id(), judge_plan);
    clean_up(worker_child.id(), worker_plan);
    let ((judge_exit, timed_out), (worker_exit, _)) = match (judge_waited, worker_waited) {
        (Ok(j), Ok(w)) => (j, w),
        (Err(e), _) | (_, Err(e)) => {
            let _ = judge_child.wait();
            return Err(Attempt::Wait(e));
        }
    };
    Ok(PairOutcome {
        judge: judge_captured.outcome(
            judge_exit,
            stopped_by(timed_out, judge_disk.as_ref()),
            judge_wall,
            judge_plan,
            limits,
            judge.root,
        ),
        worker: worker_captured.outcome(
            worker_exit,
            stopped_by(false, worker_disk.as_ref()),
            worker_wall,
            worker_plan,
            limits,
            worker.root,
        ),
    })
}

/// What the harness stopped a program for, if anything: what it wrote,
/// else the wall-clock limit.
fn stopped_by(timed_out: bool, disk: Option<&DiskWatch>) -> Option<Status> {
    if disk.is_some_and(DiskWatch::exceeded) {
        Some(Status::DiskLimit)
    } else {
        timed_out.then_some(Status::WallTimeout)
    }
}

/// Kills whatever is left of a run: its process group and, when it ran as
/// a sandbox uid, every process of that uid.
fn clean_up(pgid: u32, plan: &Plan) {
    child::kill_group(pgid);
    if let Some(uid) = plan.uid {
        child::kill_uid(uid);
    }
}

/// The output of a started program being read, capped.
struct Captured {
    over_cap: Arc<AtomicBool>,
    out: Option<Reader>,
    err: Option<Reader>,
}

impl Captured {
    /// Reads the child's piped standard output and error (those it has).
    fn start(child: &mut Child, cap: usize) -> Self {
        let pgid = child.id();
        let over_cap = Arc::new(AtomicBool::new(false));
        let out = child
            .stdout
            .take()
            .map(|p| reader(p, cap, pgid, Arc::clone(&over_cap)));
        let err = child
            .stderr
            .take()
            .map(|p| reader(p, cap, pgid, Arc::clone(&over_cap)));
        Self { over_cap, out, err }
    }

    /// The outcome of the program once it ended; `stopped` is what the
    /// harness stopped it for (see [`stopped_by`]).
    fn outcome(
        self,
        exit: ExitStatus,
        stopped: Option<Status>,
        wall: Duration,
        plan: &Plan,
        limits: &Limits,
        root: bool,
    ) -> Outcome {
        let stdout = collect(self.out);
        let stderr = collect(self.err);
        let status = if self.over_cap.load(Ordering::SeqCst) {
            Status::OutputLimit
        } else if let Some(status) = stopped {
            status
        } else if let Some(code) = exit.code() {
            Status::Exited(code)
        } else {
            Status::Signaled(exit.signal().unwrap_or(0))
        };
        Outcome {
            status,
            stdout,
            stderr,
            wall,
            isolation: Isolation {
                root,
                network_namespace: plan.unshare & libc::CLONE_NEWNET != 0,
                private_tmp: plan.private_tmp,
                jail: plan.jail,
                user_namespace: plan.user_namespace(),
                uid: plan.uid,
                process_limit: plan.uid.is_some() || plan.user_namespace() || plan.landlock,
                audit_hook: limits.audit_hook,
                pid_namespace: plan.user_namespace(),
                landlock: plan.landlock,
                seccomp: syscalls::filters().is_some(),
            },
        }
    }
}

/// Waits for the child until `deadline`, calling `watch` between polls;
/// past the deadline, kills the group and reaps. Returns the exit status
/// and whether the deadline passed.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
    mut watch: impl FnMut(),
) -> io::Result<(ExitStatus, bool)> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        let now = Instant::now();
        if now >= deadline {
            child::kill_group(child.id());
            return Ok((child.wait()?, true));
        }
        watch();
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A reader thread and the buffer it fills.
type Reader = (JoinHandle<()>, Arc<Mutex<Vec<u8>>>);

/// A thread reading a pipe into a buffer of at most `cap` bytes; when more
/// arrives it sets `over_cap` and kills the process group.
fn reader<R: Read + Send + 'static>(
    mut pipe: R,
    cap: usize,
    pgid: u32,
    over_cap: Arc<AtomicBool>,
) -> Reader {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buffer);
    let handle = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            let n = match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut kept = sink.lock().unwrap_or_else(PoisonError::into_inner);
            let room = cap.saturating_sub(kept.len());
            kept.extend_from_slice(chunk.get(..n.min(room)).unwrap_or_default());
            if n > room {
                over_cap.store(true, Ordering::SeqCst);
                child::kill_group(pgid);
                return;
            }
        }
    });
    (handle, buffer)
}

/// The text a reader collected. Waits a moment for the reader to see the
/// end of the pipe; a pipe still held open by a process that escaped every
/// clean-up is abandoned (its thread ends when that process does).
fn collect(reader: Option<Reader>) -> String {
    let Some((handle, buffer)) = reader else {
        return String::new();
    };
    let until = Instant::now() + Duration::from_secs(1);
    while !handle.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
    if handle.is_finished() {
        let _ = handle.join();
    }
    let bytes = buffer.lock().unwrap_or_else(PoisonError::into_inner);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The interpreter (looked up once per process).
fn python() -> Result<PathBuf, SandboxError> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(find_python)
        .clone()
        .map_err(|tried| SandboxError::PythonNotFound { tried })
}

fn find_python() -> Result<PathBuf, String> {
    let mut tried = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("DISTILL_GATE_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push("/usr/bin/python3".into());
    candidates.push("/usr/local/bin/python3".into());
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("python3")));
    }
    for c in candidates {
        if is_executable_file(&c) {
            return Ok(c);
        }
        tried.push(c.display().to_string());
    }
    Err(tried.join(", "))
}

fn is_executable_file(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True when any user may execute `path`: the file is world-executable and
/// every directory on the way to it is world-searchable.
fn world_executable(path: &Path) -> bool {
    let Ok(real) = fs::canonicalize(path) else {
        return false;
    };
    let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode()).unwrap_or(0);
    mode(&real) & 0o001 != 0 && real.ancestors().skip(1).all(|dir| mode(dir) & 0o001 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Limits {
        Limits {
            wall: Duration::from_secs(5),
            ..Limits::default()
        }
    }

    #[test]
    fn runs_a_program_with_stdin_and_a_clean_environment() {
        let source = "import os, sys\nprint(sys.stdin.read().upper())\nprint(sorted(os.environ))\nprint(os.getcwd() == os.environ['HOME'])\n";
        let outcome = run_python(source, "hello", &quick());
        let Ok(outcome) = outcome else {
            panic!("harness failed: {outcome:?}")
        };
        assert_eq!(outcome.status, Status::Exited(0), "{}", outcome.stderr);
        let lines: Vec<&str> = outcome.stdout.lines().collect();
        assert_eq!(lines.first(), Some(&"HELLO"));
        assert_eq!(
            lines.get(1),
            Some(&"['HOME', 'LANG', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'PYTHONHASHSEED']")
        );
        assert_eq!(lines.get(2), Some(&"True"));
    }

    #[test]
    fn exit_codes_signals_and_syntax_errors_are_reported() {
        let run = |src: &str| run_python(src, "", &quick()).map(|o| (o.status, o.stderr));
        assert!(matches!(
            run("import sys; sys.exit(3)"),
            Ok((Status::Exited(3), _))
        ));
        assert!(matches!(
            run("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"),
            Ok((Status::Signaled(11), _))
        ));
        let syntax = run("def f(:\n  pass\n");
        let Ok((Status::Exited(1), stderr)) = syntax else {
            panic!("{syntax:?}")
        };
        assert!(stderr.contains("SyntaxError"), "{stderr}");
        assert!(stderr.contains("main.py"), "{stderr}");
    }

    #[test]
    fn the_program_file_is_gone_and_the_work_dir_removed() {
        let source = "import os\nprint(os.listdir('.'))\nopen('out.txt', 'w').write('x')\nprint(os.path.abspath('out.txt'))\n";
        let outcome = run_python(source, "", &quick());
        let Ok(outcome) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(outcome.status, Status::Exited(0), "{}", outcome.stderr);
        let mut lines = outcome.stdout.lines();
        assert_eq!(lines.next(), Some("[]"));
        let written = lines.next().unwrap_or_default();
        if outcome.isolation.private_tmp {
            assert_eq!(written, "/tmp/out.txt");
        } else {
            // The work dir, wherever it was, no longer exists.
            assert!(written.ends_with("/out.txt"), "{written}");
            assert!(!Path::new(written).exists());
        }
    }

    #[test]
    fn world_executable_checks_every_directory() {
        assert!(world_executable(Path::new("/bin/sh")));
        assert!(!world_executable(Path::new("/no/such/file")));
        let dir = tempfile::tempdir();
        let Ok(dir) = dir else { return };
        let file = dir.path().join("x");
        assert!(fs::write(&file, "").is_ok());
        assert!(fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).is_ok());
        assert!(fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).is_ok());
        assert!(!world_executable(&file));
    }

    #[test]
    fn describe_names_every_layer() {
        let iso = Isolation {
            root: true,
            network_namespace: true,
            private_tmp: true,
            jail: true,
            user_namespace: false,
            uid: Some(2_000_000_000),
            process_limit: true,
            audit_hook: true,
            pid_namespace: false,
            landlock: false,
            seccomp: true,
        };
        assert_eq!(
            iso.describe(),
            "jail as root: netns; private /tmp; fs jail; own uid; nproc limit; seccomp; audit hook"
        );
        let landlock = Isolation {
            root: false,
            network_namespace: false,
            private_tmp: false,
            jail: false,
            uid: None,
            landlock: true,
            ..iso
        };
        assert_eq!(
            landlock.describe(),
            "landlock fallback (not root): no netns (sockets refused by seccomp); shared /tmp; \
             landlock (work dir and system dirs only); caller's uid; nproc limit; seccomp; audit hook"
        );
        assert!(landlock.confines_files());
        let bare = Isolation {
            landlock: false,
            seccomp: false,
            process_limit: false,
            ..landlock
        };
        assert_eq!(
            bare.describe(),
            "rlimits only (not root): NO netns (network open); shared /tmp; host fs visible; \
             caller's uid; NO process limit; NO seccomp; audit hook"
        );
        assert!(!bare.confines_files());
    }
}
