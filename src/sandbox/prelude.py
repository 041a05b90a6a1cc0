# Trusted prelude of the distill-gate sandbox (run with python3 -s -S -B -c
# in a cleared environment: not -I, which would also ignore PYTHONHASHSEED,
# so str hashes and set order would change from run to run; the one other
# thing -I does, leaving the working directory off sys.path, is done below).
#
# argv: [-c, <work dir as the program sees it>, <"1" to install the guard>,
#        <the program file as the program sees it>]
# Reads the program, deletes the file (in the jail it is read-only, and
# stays), optionally installs an audit hook, then runs the program as __main__.
#
# The audit hook gives clean error messages for network, process and file
# access; it is defence in depth, NOT a security boundary (code that reaches
# C-level calls without an audit event bypasses it). The boundary is the OS
# layer set up by the harness: rlimits, namespaces and an unprivileged uid.
import os
import sys

if sys.path and sys.path[0] in ("", "."):
    del sys.path[0]


def _install_guard(workdir):
    realpath = os.path.realpath
    fsdecode = os.fsdecode
    root = realpath(workdir)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    af_unix = 1
    network = {
        "socket.bind",
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyaddr",
        "socket.gethostbyname",
        "socket.sendmsg",
        "socket.sendto",
    }
    processes = {
        "os.exec",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "pty.spawn",
        "subprocess.Popen",
    }
    # event -> how many leading arguments are paths written to
    path_events = {
        "os.chmod": 1,
        "os.chown": 1,
        "os.link": 2,
        "os.mkdir": 1,
        "os.remove": 1,
        "os.rename": 2,
        "os.rmdir": 1,
        "os.symlink": 2,
        "os.truncate": 1,
        "os.utime": 1,
        "shutil.rmtree": 1,
    }

    def inside(path):
        if isinstance(path, int):
            return True  # an already open descriptor
        try:
            resolved = realpath(fsdecode(path))
        except Exception:
            return False
        return resolved == root or resolved.startswith(root + "/") or resolved == "/dev/null"

    def block(what):
        raise PermissionError("sandbox: " + what + " blocked")

    def hook(event, args):
        if event == "open":
            if len(args) == 3 and isinstance(args[2], int) and args[2] & write_flags:
                if not inside(args[0]):
                    block("writing outside the work directory (" + repr(args[0]) + ")")
        elif event == "socket.__new__":
            if len(args) > 1 and args[1] != af_unix:
                block("network access")
        elif event in network:
            block("network access (" + event + ")")
        elif event in processes:
            block("starting processes (" + event + ")")
        elif event == "import":
            if args and args[0] in ("ctypes", "_ctypes"):
                block("importing ctypes")
        elif event in path_events:
            for path in args[: path_events[event]]:
                if not inside(path):
                    block("changing files outside the work directory (" + repr(path) + ")")

    sys.addaudithook(hook)


def _sandbox_main():
    workdir = sys.argv[1]
    guard = sys.argv[2] == "1"
    path = sys.argv[3]
    with open(path, "rb") as f:
        source = f.read()
    try:
        os.remove(path)
    except OSError:
        pass
    code = compile(source, "main.py", "exec")
    module = type(sys)("__main__")
    module.__file__ = "main.py"
    module.__builtins__ = __builtins__
    sys.modules["__main__"] = module
    sys.argv = ["main.py"]
    if guard:
        _install_guard(workdir)
    exec(code, module.__dict__)


_sandbox_main()
