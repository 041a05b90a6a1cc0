//! Helpers shared by the fuzz targets: a per-process scratch directory on a
//! RAM disk for the parsers that read files, and the shipped suites.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use distill_gate::suite::{Suite, load_suite};

/// A scratch directory for this fuzzing process (removed by the OS on
/// reboot; one per process so parallel jobs do not collide).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("distill-gate-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

/// Writes `data` to `name` in the scratch directory and returns its path.
pub fn write(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("scratch write");
    path
}

/// The suites shipped in `suites/` (loaded once).
pub fn shipped_suites() -> &'static [Suite] {
    static SUITES: OnceLock<Vec<Suite>> = OnceLock::new();
    SUITES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
        ["coding", "logistics"]
            .iter()
            .map(|s| load_suite(root.join(s)).expect("shipped suite loads"))
            .collect()
    })
}
