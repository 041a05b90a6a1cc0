//! The Landlock fallback: where no namespace jail can be built (user
//! namespaces refused, as on hardened kernels or in some containers), the
//! program is still confined to its work directory and read-only system
//! paths. Built in the parent with the `landlock` crate; the child only
//! calls `restrict_self` (see [`super::child`]).

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, Scope, path_beneath_rules,
};

/// The newest Landlock ABI whose rights are asked for (file system rights
/// up to `ioctl` on devices, TCP bind and connect, signal and abstract
/// socket scoping); an older kernel enforces what it knows.
const WANTED: ABI = ABI::V6;

/// Device files the program may read and write.
const DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"];

/// A ruleset for one run: read and execute on `system_dirs` and on the
/// interpreter's own installation (`python`'s grandparent directory, e.g.
/// `/usr`), everything inside `work`, the harmless devices; nothing else
/// of the file system (no home directory, no checkout, no `/proc`, no
/// `/tmp` but the work directory), no TCP, no signals to or abstract
/// sockets of processes outside the sandbox.
///
/// Errors when the kernel has no Landlock at all (the plan is then
/// skipped); missing newer rights are dropped (best effort).
pub(crate) fn ruleset(
    system_dirs: &[&str],
    python: &Path,
    work: &Path,
) -> Result<RulesetCreated, landlock::RulesetError> {
    let read = AccessFs::from_read(WANTED);
    let prefix = std::fs::canonicalize(python)
        .ok()
        .and_then(|p| p.parent()?.parent().map(Path::to_path_buf));
    Ruleset::default()
        // File-system confinement itself is required...
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))?
        // ... the rest is taken where the kernel has it.
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(WANTED))?
        .handle_access(AccessNet::from_all(WANTED))?
        .scope(Scope::from_all(WANTED))?
        .create()?
        .add_rules(path_beneath_rules(system_dirs, read))?
        .add_rules(path_beneath_rules(prefix.iter(), read))?
        .add_rules(path_beneath_rules(DEVICES, AccessFs::from_all(WANTED)))?
        .add_rules(path_beneath_rules([work], AccessFs::from_all(WANTED)))
}
