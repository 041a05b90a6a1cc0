//! The OS-level containment applied in the child between `fork` and `exec`,
//! and the clean-up of whatever the child left behind.
//!
//! All `unsafe` code of the sandbox lives here.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use super::syscalls::Filters;

/// What the child does before `exec`, prepared in the parent (no allocation
/// happens after `fork`).
pub(crate) struct Containment {
    /// `(resource, soft, hard)` for `setrlimit`.
    pub rlimits: Vec<(Resource, u64, u64)>,
    /// `CLONE_*` flags for `unshare`, 0 for none.
    pub unshare_flags: libc::c_int,
    /// With a mount namespace: bind the work dir (`bind_source`) over each
    /// of these mount points (in order), after making `/` private.
    pub bind_targets: Vec<CString>,
    /// The work dir as the parent sees it.
    pub bind_source: CString,
    /// Directory to change into (the work dir as the program sees it).
    pub cwd: CString,
    /// Drop to this uid and gid (with no supplementary groups).
    pub uid: Option<u32>,
    /// With a mount namespace: a new root file system to pivot into.
    pub jail: Option<Jail>,
    /// A descriptor of the parent to hand the program as its fd 3 (the
    /// write end of a pipe to another sandboxed program).
    pub fd3: Option<libc::c_int>,
    /// Not root: a new user namespace (with `unshare_flags`' namespaces and
    /// a PID namespace) in which the jail is built.
    pub user_namespace: Option<UserNamespace>,
    /// The Landlock ruleset to enforce (taken once, in the child).
    pub landlock: Option<Mutex<Option<landlock::RulesetCreated>>>,
    /// The seccomp filters, and whether to refuse every socket but
    /// `AF_UNIX` (runs without a network namespace of their own).
    pub filters: Option<(&'static Filters, bool)>,
    /// Without a PID namespace or a uid of its own: run the program under
    /// a relay that adopts its orphans and kills every descendant left
    /// when it ends (see [`reap_descendants`]).
    pub subreaper: bool,
}

/// An unprivileged user namespace: the caller's uid and gid mapped to
/// themselves (so the program, after `exec`, holds no capability in it),
/// a process limit counted inside it, and a new PID namespace whose first
/// process (its init) is a small relay that reaps and reports the program:
/// when the program ends, the init ends and the kernel kills every other
/// process of the namespace.
pub(crate) struct UserNamespace {
    /// `CLONE_NEWUSER` and the other namespaces to create with it.
    pub flags: libc::c_int,
    /// The line written to `/proc/self/uid_map`.
    pub uid_map: CString,
    /// The line written to `/proc/self/gid_map`.
    pub gid_map: CString,
    /// `RLIMIT_NPROC`, set inside the namespace (where it counts only the
    /// namespace's processes).
    pub max_processes: u64,
}

/// A minimal root file system built in the child's mount namespace: a
/// small tmpfs holding read-only binds of the system directories, a few
/// device nodes, the program directory (read-only) and a size-limited
/// tmpfs `/tmp`; `/proc` shows only the sandbox uid's own processes.
/// Everything else (the checkout, home directories, other processes'
/// `/proc/<pid>/environ`) is simply not there.
pub(crate) struct Jail {
    /// An empty directory the new root (a tmpfs) is mounted on.
    pub root: CString,
    /// Directories to create inside the new root, parents first.
    pub dirs: Vec<CString>,
    /// `(target, link)`: symbolic links to create (e.g. `/bin -> usr/bin`).
    pub symlinks: Vec<(CString, CString)>,
    /// `(host path, path in the jail)`: bound read-only (directories).
    pub read_only: Vec<(CString, CString)>,
    /// `(host device, path in the jail)`: device nodes bound onto empty files.
    pub devices: Vec<(CString, CString)>,
    /// The jail's `/tmp` and the mount options of its tmpfs (size, inodes).
    pub tmp: (CString, CString),
    /// The jail's `/proc`.
    pub proc_dir: CString,
}

/// An rlimit resource id as `setrlimit` takes it on this platform.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) type Resource = libc::__rlimit_resource_t;
/// An rlimit resource id as `setrlimit` takes it on this platform.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) type Resource = libc::c_int;

/// Flags for a new network namespace and a new mount namespace.
pub(crate) const NET_AND_MOUNT: libc::c_int = libc::CLONE_NEWNET | libc::CLONE_NEWNS;
/// Flag for a new network namespace.
pub(crate) const NET: libc::c_int = libc::CLONE_NEWNET;
/// Flags for the unprivileged jail: new user, mount, PID, network, IPC and
/// UTS namespaces.
pub(crate) const USER_JAIL: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS;

/// The user and group ids of the harness.
pub(crate) fn ids() -> (u32, u32) {
    // SAFETY: getuid and getgid have no preconditions and cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// A path as a C string (fails on interior NUL bytes).
pub(crate) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Registers `containment` to run in the child before `exec`.
pub(crate) fn install(command: &mut Command, containment: Containment) {
    // SAFETY: `contain` only makes async-signal-safe system calls (setsid,
    // dup2, fcntl, prctl, setrlimit, unshare, mount, mkdir, symlink, open, close,
    // pivot_root, umount2, chdir, setgroups, setgid, setuid) on
    // data prepared before the fork; it neither allocates nor takes locks.
    unsafe {
        command.pre_exec(move || contain(&containment));
    }
}

/// Runs in the forked child: own session, fd 3, limits, namespaces, uid drop.
/// Returning an error makes `spawn` fail with it (the parent then tries a
/// weaker containment).
fn contain(c: &Containment) -> io::Result<()> {
    fn check(ret: libc::c_int) -> io::Result<()> {
        if ret == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
    // SAFETY: plain system calls on valid pointers to data owned by `c`,
    // which outlives the call; see `install`.
    unsafe {
        check(libc::setsid())?;
        if let Some(fd) = c.fd3 {
            if fd == 3 {
                check(libc::fcntl(3, libc::F_SETFD, 0))?;
            } else {
                check(libc::dup2(fd, 3))?;
            }
        }
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        for &(resource, soft, hard) in &c.rlimits {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            check(libc::setrlimit(resource, &limit))?;
        }
        if let Some(ns) = &c.user_namespace {
            check(libc::unshare(ns.flags))?;
            write_file(c"/proc/self/setgroups", c"deny")?;
            write_file(c"/proc/self/uid_map", &ns.uid_map)?;
            write_file(c"/proc/self/gid_map", &ns.gid_map)?;
            let limit = libc::rlimit {
                rlim_cur: ns.max_processes,
                rlim_max: ns.max_processes,
            };
            check(libc::setrlimit(libc::RLIMIT_NPROC, &limit))?;
            // Returns only in the process that goes on to exec the program.
            pid_namespace_init()?;
        } else if c.unshare_flags != 0 {
            check(libc::unshare(c.unshare_flags))?;
        }
        if c.subreaper {
            // Returns only in the process that goes on to exec the program.
            reap_descendants()?;
        }
        if let Some(jail) = &c.jail {
            enter_jail(jail)?;
        }
        if !c.bind_targets.is_empty() {
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for target in &c.bind_targets {
                check(libc::mount(
                    c.bind_source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ))?;
            }
        }
        check(libc::chdir(c.cwd.as_ptr()))?;
        if let Some(uid) = c.uid {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(uid))?;
            check(libc::setuid(uid))?;
        }
        if let Some(ruleset) = &c.landlock {
            let taken = ruleset
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(ruleset) = taken {
                ruleset
                    .restrict_self()
                    .map_err(|_| io::Error::from_raw_os_error(libc::EPERM))?;
            }
        }
        // Last: the harness's own set-up above needs calls the filter refuses.
        if let Some((filters, no_network)) = c.filters {
            for program in [&filters.refuse, &filters.clone3]
                .into_iter()
                .chain(no_network.then_some(&filters.no_network))
            {
                seccompiler::apply_filter(program).map_err(|e| match e {
                    seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e) => e,
                    _ => io::Error::from_raw_os_error(libc::EINVAL),
                })?;
            }
        }
    }
    Ok(())
}

/// Writes `data` to the file `path` (in the child: no allocation).
fn write_file(path: &std::ffi::CStr, data: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: open, write and close on NUL-terminated strings we own.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        let bytes = data.to_bytes();
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if written < 0 || written as usize != bytes.len() {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// After `unshare(CLONE_NEWPID)`: forks the namespace's init, which forks
/// the process that returns from here to build the jail and `exec` the
/// program. The caller (outside the PID namespace) and the init never
/// return: each waits for its child and ends as it ended, so the harness
/// sees the program's exit status or signal. The init also reaps orphans,
/// and its end kills everything left in the namespace. Both close every
/// descriptor but their status pipe (among them the harness's pipes, whose
/// end the harness waits for). Neither can be inspected by the program
/// (not dumpable, and holding capabilities it lacks).
fn pid_namespace_init() -> io::Result<()> {
    // SAFETY: fork, pipe2, waitpid, read, write, close_range, prctl, kill
    // and _exit on values and buffers we own; see `install`.
    unsafe {
        let mut pipe = [0 as libc::c_int; 2];
        if libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) == -1 {
            return Err(io::Error::last_os_error());
        }
        let [status_read, status_write] = pipe;
        let init = libc::fork();
        if init == -1 {
            return Err(io::Error::last_os_error());
        }
        if init > 0 {
            // Outside the namespace: relay the status the init reports.
            keep_only(status_read);
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
            let init_status = wait_for(init);
            let mut raw = [0u8; 4];
            let n = libc::read(status_read, raw.as_mut_ptr().cast(), raw.len());
            let status = if n == 4 {
                i32::from_ne_bytes(raw)
            } else {
                init_status
            };
            end_as(status);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        let program = libc::fork();
        if program == -1 {
            return Err(io::Error::last_os_error());
        }
        if program == 0 {
            libc::close(status_read);
            libc::close(status_write);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            return Ok(());
        }
        // The init (PID 1): reap everything until the program ends.
        keep_only(status_write);
        loop {
            let mut status = 0;
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == program {
                let raw = status.to_ne_bytes();
                libc::write(status_write, raw.as_ptr().cast(), raw.len());
                libc::_exit(0);
            }
            if pid == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                libc::_exit(127);
            }
        }
    }
}

/// Makes the caller a child subreaper and forks the process that returns
/// from here to `exec` the program. The caller never returns: it closes
/// every descriptor, waits for the program, then kills every descendant
/// still alive (processes that left the session and process group end up
/// its children, being orphans), reaps them, and ends as the program
/// ended.
fn reap_descendants() -> io::Result<()> {
    // SAFETY: prctl, fork, open, read, close, kill, waitpid and close_range
    // on values and buffers we own; see `install`.
    unsafe {
        if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1 {
            return Err(io::Error::last_os_error());
        }
        let program = libc::fork();
        if program == -1 {
            return Err(io::Error::last_os_error());
        }
        if program == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            return Ok(());
        }
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        libc::syscall(libc::SYS_close_range, 0, libc::c_uint::MAX, 0);
        let status = wait_for(program);
        let mut buffer = [0u8; 4096];
        // Bounded: each round kills every child there is.
        for _ in 0..10_000 {
            let fd = libc::open(
                c"/proc/thread-self/children".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            let n = if fd == -1 {
                0
            } else {
                let n = libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len());
                libc::close(fd);
                n.max(0) as usize
            };
            let mut killed = 0;
            let mut pid: libc::pid_t = 0;
            for &byte in buffer.get(..n).unwrap_or_default() {
                if byte.is_ascii_digit() {
                    pid = pid
                        .saturating_mul(10)
                        .saturating_add(libc::pid_t::from(byte - b'0'));
                } else {
                    if pid > 0 {
                        libc::kill(pid, libc::SIGKILL);
                        killed += 1;
                    }
                    pid = 0;
                }
            }
            let mut ignored = 0;
            if killed == 0 {
                // Only zombies (if anything) are left.
                while libc::waitpid(-1, &mut ignored, libc::WNOHANG) > 0 {}
                break;
            }
            // Wait for one to die, then reap all that did.
            libc::waitpid(-1, &mut ignored, 0);
            while libc::waitpid(-1, &mut ignored, libc::WNOHANG) > 0 {}
        }
        end_as(status);
    }
}

/// Closes every descriptor but `fd`.
fn keep_only(fd: libc::c_int) {
    let fd = fd as libc::c_uint;
    // SAFETY: close_range only closes descriptors.
    unsafe {
        if fd > 0 {
            libc::syscall(libc::SYS_close_range, 0, fd - 1, 0);
        }
        libc::syscall(libc::SYS_close_range, fd + 1, libc::c_uint::MAX, 0);
    }
}

/// Waits for child `pid` and returns its wait status.
fn wait_for(pid: libc::pid_t) -> libc::c_int {
    let mut status = 0;
    // SAFETY: waitpid writes into our integer.
    unsafe {
        while libc::waitpid(pid, &mut status, 0) == -1 {
            if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                libc::_exit(127);
            }
        }
    }
    status
}

/// Ends the calling process as the wait status `status` says its child
/// ended: with the same exit code, or killed by the same signal.
fn end_as(status: libc::c_int) -> ! {
    // SAFETY: signal, sigprocmask, kill and _exit have no memory-safety
    // preconditions; the signal set is ours.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

/// Builds the jail and makes it the root (see [`Jail`]); runs in the child
/// after `unshare(CLONE_NEWNS)`.
fn enter_jail(j: &Jail) -> io::Result<()> {
    fn check(ret: libc::c_int) -> io::Result<()> {
        if ret == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
    let null = std::ptr::null::<libc::c_char>();
    let ro = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID;
    // SAFETY: system calls on NUL-terminated strings owned by `j`, which
    // outlives the call; see `install`.
    unsafe {
        check(libc::mount(
            null,
            c"/".as_ptr(),
            null,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            c"tmpfs".as_ptr(),
            j.root.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"size=1m,nr_inodes=256,mode=755".as_ptr().cast(),
        ))?;
        for dir in &j.dirs {
            check(libc::mkdir(dir.as_ptr(), 0o755))?;
        }
        for (target, link) in &j.symlinks {
            check(libc::symlink(target.as_ptr(), link.as_ptr()))?;
        }
        for (host, inside) in &j.read_only {
            check(libc::mount(
                host.as_ptr(),
                inside.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                null,
                inside.as_ptr(),
                null,
                ro | kept_flags(inside),
                std::ptr::null(),
            ))?;
        }
        for (host, inside) in &j.devices {
            let fd = libc::open(inside.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o666);
            check(fd)?;
            check(libc::close(fd))?;
            check(libc::mount(
                host.as_ptr(),
                inside.as_ptr(),
                null,
                libc::MS_BIND,
                std::ptr::null(),
            ))?;
        }
        let (tmp, options) = &j.tmp;
        check(libc::mount(
            c"tmpfs".as_ptr(),
            tmp.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        ))?;
        // `hidepid=2`: the program sees only its own uid's processes. A
        // kernel refusing the option leaves /proc empty, which is stricter.
        libc::mount(
            c"proc".as_ptr(),
            j.proc_dir.as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"hidepid=2".as_ptr().cast(),
        );
        check(libc::mount(
            null,
            j.root.as_ptr(),
            null,
            libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            std::ptr::null(),
        ))?;
        check(libc::chdir(j.root.as_ptr()))?;
        check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as libc::c_int)?;
        check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
        check(libc::chdir(c"/".as_ptr()))?;
    }
    Ok(())
}

/// The flags of the mount at `path` that a read-only remount must keep:
/// in a user namespace the kernel locks them (`EPERM` if one is dropped).
fn kept_flags(path: &std::ffi::CStr) -> libc::c_ulong {
    // SAFETY: statvfs writes into the zeroed struct we own; `path` is
    // NUL-terminated. (glibc takes the flags from the statfs system call.)
    let flags = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut st) != 0 {
            return 0;
        }
        st.f_flag
    };
    [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ]
    .iter()
    .filter(|(st, _)| flags & st != 0)
    .fold(0, |all, (_, ms)| all | ms)
}

/// The effective uid of the harness.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Sends SIGKILL to every descendant of the group's leader `pgid` (see
/// [`kill_descendants`]: those that left the group with `setsid`), then to
/// process group `pgid` (errors, e.g. an empty group, are ignored).
pub(crate) fn kill_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid)
        && pgid > 1
    {
        kill_descendants(pgid as u32);
        // SAFETY: killpg has no memory-safety preconditions.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Kills every descendant of `pid` (not `pid` itself), repeating until
/// none is left or a few rounds passed. The relay of the Landlock and
/// rlimits modes is a subreaper, so a process that escaped its session
/// with `setsid` is reparented to it and found here while the relay lives:
/// killing the process group alone would kill the relay and leave the
/// escaped ones running. Parents are read from `/proc/<pid>/stat`, which
/// stays readable when the relay made itself non-dumpable (its
/// `task/*/children` files do not).
fn kill_descendants(pid: u32) {
    for _ in 0..20 {
        let parents = process_parents();
        let mut found = Vec::new();
        let mut queue = vec![pid];
        while let Some(p) = queue.pop() {
            for (&child, _) in parents.iter().filter(|(_, parent)| **parent == p) {
                found.push(child);
                queue.push(child);
            }
        }
        if found.is_empty() {
            return;
        }
        for child in found {
            if let Ok(child) = libc::pid_t::try_from(child) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe {
                    libc::kill(child, libc::SIGKILL);
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Every visible process's parent, by pid, from `/proc/<pid>/stat` (the
/// fourth field, after the command name in parentheses).
fn process_parents() -> std::collections::HashMap<u32, u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Default::default();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let after_name = &stat[stat.rfind(')')? + 1..];
            let parent = after_name.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, parent))
        })
        .collect()
}

/// Kills every process whose real uid is `uid` (escaped from the process
/// group with `setsid`, double-forked daemons). Repeats until none is left
/// or a few rounds passed. Only meaningful for a uid no one else uses.
pub(crate) fn kill_uid(uid: u32) {
    for _ in 0..20 {
        let pids = pids_of_uid(uid);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Tasks (threads, zombies included) whose real uid is `uid`, from
/// `/proc`: what `RLIMIT_NPROC` counts.
pub(crate) fn tasks_of_uid(uid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("status")).ok())
        .filter(|status| status_field(status, "Uid:").and_then(first_number) == Some(uid))
        .map(|status| {
            status_field(&status, "Threads:")
                .and_then(first_number)
                .map_or(1, u64::from)
        })
        .sum()
}

/// The value of field `name` in a `/proc/<pid>/status` text.
fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
}

/// The first whitespace-separated number of `text`.
fn first_number(text: &str) -> Option<u32> {
    text.split_whitespace().next()?.parse().ok()
}

/// Live (non-zombie) processes whose real uid is `uid`, from `/proc`.
pub(crate) fn pids_of_uid(uid: u32) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let zombie = status_field(&status, "State:").is_some_and(|s| s.starts_with('Z'));
        let real_uid = status_field(&status, "Uid:").and_then(first_number);
        if real_uid == Some(uid) && !zombie {
            pids.push(pid);
        }
    }
    pids
}
