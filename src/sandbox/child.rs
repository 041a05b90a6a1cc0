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
/// Flags for a new user namespace (needed when not root) with a new network namespace.
pub(crate) const USER_AND_NET: libc::c_int = libc::CLONE_NEWUSER | libc::CLONE_NEWNET;

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
        if c.unshare_flags != 0 {
            check(libc::unshare(c.unshare_flags))?;
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
    }
    Ok(())
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
                ro,
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

/// The effective uid of the harness.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Sends SIGKILL to process group `pgid` (errors, e.g. an empty group, are ignored).
pub(crate) fn kill_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid)
        && pgid > 1
    {
        // SAFETY: killpg has no memory-safety preconditions.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
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
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let zombie = field("State:").is_some_and(|s| s.starts_with('Z'));
        let real_uid = field("Uid:")
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<u32>().ok());
        if real_uid == Some(uid) && !zombie {
            pids.push(pid);
        }
    }
    pids
}
