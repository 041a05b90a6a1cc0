//! The disk a program takes through its host work dir, watched while it
//! runs. In the jail the program writes to a tmpfs of
//! [`Limits::max_disk_bytes`](super::Limits::max_disk_bytes) and
//! [`Limits::max_files`](super::Limits::max_files); in every other mode it
//! writes to its work dir on the host's file system, where `RLIMIT_FSIZE`
//! caps each file but nothing caps how many. There the harness measures the
//! work dir between polls and, past the same limits, kills the program as
//! at the wall-clock limit.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{Limits, child};

/// A path this long (bytes) is reached through a descriptor of its
/// directory instead: the kernel refuses paths beyond `PATH_MAX` (4096), so
/// a program could otherwise hide files below a deep enough directory.
const ANCHOR_AFTER: usize = 2048;

/// A running program's host work dir and the limits it is held to.
pub(super) struct DiskWatch {
    pgid: u32,
    dir: PathBuf,
    max_bytes: u64,
    max_files: u64,
    exceeded: bool,
}

impl DiskWatch {
    /// Watches `dir`, the work dir of the program leading process group
    /// `pgid`.
    pub(super) fn new(pgid: u32, dir: &Path, limits: &Limits) -> Self {
        Self {
            pgid,
            dir: dir.to_path_buf(),
            max_bytes: limits.max_disk_bytes,
            max_files: limits.max_files,
            exceeded: false,
        }
    }

    /// Measures the work dir; the first time it holds more than the limits
    /// allow, kills the program's group and every descendant (as
    /// [`child::kill_group`] does at the wall-clock limit).
    pub(super) fn check(&mut self) {
        if !self.exceeded && holds_more(&self.dir, self.max_bytes, self.max_files) {
            self.exceeded = true;
            child::kill_group(self.pgid);
        }
    }

    /// Whether the program was killed for what it wrote.
    pub(super) fn exceeded(&self) -> bool {
        self.exceeded
    }
}

/// Makes every directory below `dir` (and `dir`) its owner's to read,
/// write and search again, so that it can be removed: outside the jail the
/// program runs as the harness's user and may `chmod` its directories,
/// which would otherwise leave what they hold on the disk after the run.
pub(super) fn make_removable(dir: &Path) {
    walk(dir, true, |_| false);
}

/// Whether `dir` holds more than `max_bytes` (allocated on disk, each
/// hard-linked file once) or more than `max_files` entries. Stops counting
/// as soon as it does.
fn holds_more(dir: &Path, max_bytes: u64, max_files: u64) -> bool {
    let mut seen = HashSet::new();
    let (mut bytes, mut files) = (0u64, 0u64);
    walk(dir, false, |meta| {
        files += 1;
        if seen.insert((meta.dev(), meta.ino())) {
            bytes = bytes.saturating_add(meta.blocks().saturating_mul(512));
        }
        bytes > max_bytes || files > max_files
    })
}

/// Calls `stop` on the metadata of every entry below `dir` (symbolic links
/// are not followed; entries that vanish meanwhile are skipped) until it
/// returns true, and says whether it did. A directory the program made
/// unreadable gets mode 700 first; with `open_every`, every one does.
fn walk(dir: &Path, open_every: bool, mut stop: impl FnMut(&fs::Metadata) -> bool) -> bool {
    let mut pending = vec![Pending {
        anchor: None,
        relative: dir.to_path_buf(),
    }];
    while let Some(next) = pending.pop() {
        let path = next.path();
        if open_every {
            let _ = open_up(&path);
        }
        let entries = match fs::read_dir(&path) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                open_up(&path).and_then(|()| fs::read_dir(&path))
            }
            entries => entries,
        };
        let Ok(entries) = entries else {
            continue;
        };
        for entry in entries.flatten() {
            // Not followed: the metadata of a link is the link's.
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if stop(&meta) {
                return true;
            }
            if meta.is_dir() {
                pending.push(next.below(&entry.file_name()));
            }
        }
    }
    false
}

/// Gives the directory at `path` (never a link put in its place) mode 700.
fn open_up(path: &Path) -> io::Result<()> {
    let dir = open_path(path)?;
    fs::set_permissions(fd_path(&dir), fs::Permissions::from_mode(0o700))
}

/// The directory at `path` as a descriptor that only names it (`O_PATH`:
/// it needs no permission on the directory itself).
fn open_path(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
}

/// The path through which the kernel reaches open file `file`.
fn fd_path(file: &fs::File) -> PathBuf {
    Path::new("/proc/self/fd").join(file.as_raw_fd().to_string())
}

/// A directory still to read: a path, relative to an open directory once
/// the full path grew long.
struct Pending {
    anchor: Option<Rc<fs::File>>,
    relative: PathBuf,
}

impl Pending {
    fn path(&self) -> PathBuf {
        match &self.anchor {
            Some(dir) => fd_path(dir).join(&self.relative),
            None => self.relative.clone(),
        }
    }

    /// Its subdirectory `name`, anchored at a descriptor of its own when its
    /// path grew long (or where it was, if it cannot be opened).
    fn below(&self, name: &std::ffi::OsStr) -> Pending {
        let relative = self.relative.join(name);
        if relative.as_os_str().len() > ANCHOR_AFTER
            && let Ok(dir) = open_path(&self.path().join(name))
        {
            return Pending {
                anchor: Some(Rc::new(dir)),
                relative: PathBuf::new(),
            };
        }
        Pending {
            anchor: self.anchor.clone(),
            relative,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_files_and_deep_directories() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let root = dir.path();
        assert!(fs::write(root.join("a"), vec![1u8; 1 << 20]).is_ok());
        assert!(!holds_more(root, 2 << 20, 10));
        assert!(holds_more(root, 512 << 10, 10));
        // A hard link takes no more disk.
        assert!(fs::hard_link(root.join("a"), root.join("b")).is_ok());
        assert!(!holds_more(root, (1 << 20) + 4096, 10));
        assert!(holds_more(root, 2 << 20, 1));
        // Below a path longer than the kernel takes (PATH_MAX), still seen.
        let half: PathBuf = std::iter::repeat_n("d".repeat(200), 15).collect();
        assert!(fs::create_dir_all(root.join(&half)).is_ok());
        let Ok(anchor) = fs::File::open(root.join(&half)) else {
            panic!("cannot open {}", half.display())
        };
        // Reached through a descriptor: the full path is too long.
        let deep = Path::new("/proc/self/fd")
            .join(anchor.as_raw_fd().to_string())
            .join(&half);
        assert!(fs::create_dir_all(&deep).is_ok());
        assert!(root.join(&half).join(&half).as_os_str().len() > 4096);
        assert!(fs::write(deep.join("hidden"), vec![1u8; 4 << 20]).is_ok());
        assert!(holds_more(root, 4 << 20, 1000));
        assert!(!holds_more(root, 8 << 20, 1000));
    }

    #[test]
    fn unreadable_directories_are_measured_and_removed() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let root = dir.path().to_path_buf();
        let hidden = root.join("hidden");
        assert!(fs::create_dir_all(hidden.join("deeper")).is_ok());
        assert!(fs::write(hidden.join("deeper/f"), vec![1u8; 1 << 20]).is_ok());
        let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m));
        // Readable but not writable (no removal), then not even readable.
        assert!(mode(&hidden.join("deeper"), 0o500).is_ok());
        assert!(mode(&hidden, 0o000).is_ok());
        assert!(mode(&root, 0o000).is_ok());
        assert!(holds_more(&root, 512 << 10, 100));
        make_removable(&root);
        assert!(dir.close().is_ok());
        assert!(!root.exists());
    }
}
