//! Attacks shared by `tests/sandbox.rs` (as root) and
//! `tests/sandbox_unprivileged.rs` (as a fresh unprivileged user).

use std::path::Path;

/// Programs making the system calls answer code never needs, through
/// `ctypes` with the audit hook off (the hook would refuse `ctypes` first):
/// each is killed by the seccomp filter (`SIGSYS`), root or not.
pub const FORBIDDEN_CALLS: [(&str, &str); 7] = [
    (
        "ptrace of the runner",
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nprint('ptrace', libc.ptrace(16, os.getppid(), 0, 0), ctypes.get_errno(), flush=True)\n",
    ),
    (
        "a new user namespace",
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint('unshare', libc.unshare(0x10000000), ctypes.get_errno(), flush=True)\n",
    ),
    (
        "a raw socket",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\nprint('raw socket', s, flush=True)\n",
    ),
    (
        "a raw unix socket",
        "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_RAW)\nprint('raw socket', s, flush=True)\n",
    ),
    (
        "a mount",
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno(), flush=True)\n",
    ),
    (
        "the kernel keyring",
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint('keyctl', libc.syscall(250, 0, -3, 0), ctypes.get_errno(), flush=True)\n",
    ),
    (
        "a BPF program",
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint('bpf', libc.syscall(321, 0, None, 0), ctypes.get_errno(), flush=True)\n",
    ),
];

/// Free bytes on the file system holding `path` (`statvfs`).
pub fn free_bytes(path: &Path) -> u64 {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is NUL-terminated.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return 0;
        }
        st.f_bavail as u64 * st.f_frsize as u64
    }
}
