//! The seccomp filter every sandboxed program runs under, root or not: it
//! kills the program (`SIGSYS`) at the first system call that answer code
//! never needs and that attacks the kernel, other processes or the sandbox
//! itself. Built once with `seccompiler`, installed in the child just
//! before `exec`, after the harness's own set-up (which needs `unshare`
//! and `mount`).
//!
//! Killing rather than failing the call gives the score a clear reason
//! ([`signal_cause`]); a program that probes and carries on would hide it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// System calls refused unconditionally: tracing and reading other
/// processes, mounts and new roots, kernel keyrings, BPF, performance
/// counters, kernel modules and kexec, new or joined namespaces, handle
/// opening (a known container escape), `io_uring` (its operations bypass
/// the filter), and host administration.
const REFUSED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
];

/// `clone` flags that create namespaces (`CLONE_NEWTIME` shares its bit
/// with the exit signal in `clone`, so only `unshare` could pass it, and
/// `unshare` is refused).
const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
];

/// The filters of one run, installed in this order.
pub(crate) struct Filters {
    /// Kills on the calls above, namespace-creating `clone`, and raw or
    /// packet sockets.
    pub refuse: BpfProgram,
    /// `clone3` fails with `ENOSYS`: its flags are in memory the filter
    /// cannot read, and the C library falls back to `clone`, whose flags
    /// it can.
    pub clone3: BpfProgram,
    /// Kills on any socket but `AF_UNIX`: for runs without a network
    /// namespace of their own.
    pub no_network: BpfProgram,
}

/// The filters, built once; `None` where `seccompiler` does not know the
/// architecture (the run then reports no seccomp filter).
pub(crate) fn filters() -> Option<&'static Filters> {
    static FILTERS: OnceLock<Option<Filters>> = OnceLock::new();
    FILTERS.get_or_init(|| build().ok()).as_ref()
}

fn build() -> Result<Filters, seccompiler::BackendError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let condition = |arg: u8, op: SeccompCmpOp, value: libc::c_int| {
        // Arguments are C ints; their upper 32 bits are not looked at.
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value as u64)
    };
    let rule = |conditions: Vec<SeccompCondition>| SeccompRule::new(conditions);
    let mut refused: BTreeMap<i64, Vec<SeccompRule>> =
        REFUSED.iter().map(|&nr| (nr, Vec::new())).collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            rule(vec![condition(
                0,
                SeccompCmpOp::MaskedEq(flag as u32 as u64),
                flag,
            )?])
        })
        .collect::<Result<_, _>>()?;
    refused.insert(libc::SYS_clone, clone_rules);
    // The socket type's low bits (flags such as SOCK_CLOEXEC are above them).
    let sock_type = |ty| condition(1, SeccompCmpOp::MaskedEq(0xf), ty);
    refused.insert(
        libc::SYS_socket,
        vec![
            rule(vec![sock_type(libc::SOCK_RAW)?])?,
            // SOCK_PACKET (deprecated in libc, still in the kernel).
            rule(vec![sock_type(10)?])?,
            rule(vec![condition(0, SeccompCmpOp::Eq, libc::AF_PACKET)?])?,
        ],
    );
    let refuse = SeccompFilter::new(
        refused,
        SeccompAction::Allow,
        SeccompAction::KillProcess,
        arch,
    )?;
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    let no_network = SeccompFilter::new(
        [
            (
                libc::SYS_socket,
                vec![rule(vec![condition(0, SeccompCmpOp::Ne, libc::AF_UNIX)?])?],
            ),
            (
                libc::SYS_socketpair,
                vec![rule(vec![condition(0, SeccompCmpOp::Ne, libc::AF_UNIX)?])?],
            ),
        ]
        .into_iter()
        .collect(),
        SeccompAction::Allow,
        SeccompAction::KillProcess,
        arch,
    )?;
    Ok(Filters {
        refuse: refuse.try_into()?,
        clone3: clone3.try_into()?,
        no_network: no_network.try_into()?,
    })
}

/// The signal a program died of, for a score's detail: `signal 11`, or
/// for `SIGSYS` what the filter refused.
pub fn signal_cause(signal: i32) -> String {
    if signal == libc::SIGSYS {
        format!(
            "signal {signal} (SIGSYS): the sandbox's system-call filter refused a call answer \
             code never needs (ptrace, mount, namespaces, keyctl, bpf, perf_event_open, \
             kernel modules, raw sockets, or network sockets where the run has no network \
             namespace)"
        )
    } else {
        format!("signal {signal}")
    }
}
