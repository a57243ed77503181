"""Run a Python snippet (a model's code answer) in a limited subprocess and report what it printed.

Layers, each catching what the one before misses:
- a fresh scratch folder per run as cwd, HOME and TMPDIR; an emptied environment; `python -I -B -X utf8`
  (no PYTHON* variables, no user site-packages, no script folder on sys.path, no .pyc writes) with the
  given `paths` put first on sys.path;
- resource limits set by the child on itself before the snippet runs (address space, CPU seconds, file
  size, no core files);
- an audit hook (sys.addaudithook) installed before the snippet runs that refuses network use, writes
  outside the scratch folder, new processes, native code through ctypes and raising the limits; every
  refusal raises PermissionError in the snippet and is reported on a side pipe, so stdout stays the snippet's;
- where it works (Linux, `unshare`), a network namespace of its own, so even native code has no network;
- a wall-clock timeout that kills the whole process group.

Audit hooks stop the accidents of generated code (a stray HTTP call, a config file written into the
current folder); they are not a boundary against code written to escape. Run hostile code in a container.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tools.core.errors import UserError
from tools.core.i18n import t

SNIPPET_NAME = "<answer>"
_MAX_BLOCKED_REPORTED = 20


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. `processes` sets RLIMIT_NPROC only when given: that limit counts every process
    and thread of the user (not of the run), and root ignores it, so it is off by default; new processes
    are refused by the audit hook instead."""

    timeout_s: float = 10.0  # wall clock, the whole process group is killed after it
    cpu_s: int = 10  # RLIMIT_CPU
    memory_mb: int = 512  # RLIMIT_AS
    max_output_bytes: int = 65536  # per stream; the rest is read and dropped, and flagged
    max_file_bytes: int = 1 << 20  # RLIMIT_FSIZE
    processes: int | None = None  # RLIMIT_NPROC when set


@dataclass
class SandboxResult:
    """What a run did: exit code, captured output, whether it timed out, and what the guard refused."""

    ok: bool  # exit code 0, not timed out, nothing blocked
    exit_code: int | None  # negative: killed by that signal; None: never started
    stdout: str
    stderr: str
    timed_out: bool
    blocked: list[str] = field(default_factory=list)  # "network: connect 1.2.3.4:80", "write outside scratch: /etc/x"
    seconds: float = 0.0
    output_truncated: bool = False  # stdout or stderr went past max_output_bytes
    limit_s: float | None = None  # the wall-clock limit it ran under

    def error_line(self, lang: str | None = None) -> str | None:
        """One short line saying why the run failed (the last line of its traceback, a timeout, a refusal); None when ok."""
        if self.ok:
            return None
        if self.timed_out:
            return t("sandbox.timed_out", lang, seconds=f"{self.limit_s if self.limit_s is not None else self.seconds:g}")
        if self.blocked:
            return t("sandbox.blocked", lang, what=self.blocked[0])
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        if self.exit_code is not None and self.exit_code < 0:
            try:
                name = signal.Signals(-self.exit_code).name
            except ValueError:
                name = str(-self.exit_code)
            return t("sandbox.killed", lang, signal=name)
        if lines:
            return lines[-1][:300]
        return t("sandbox.exit_code", lang, code=self.exit_code)


def package_paths(docset_folder: Path) -> list[Path]:
    """[<docset>/.package] when the doc set ships its library there (put on sys.path for code answers), else []."""
    package = Path(docset_folder) / ".package"
    return [package] if package.is_dir() else []


def resolve_python(python: str | os.PathLike | None) -> str:
    """The interpreter to run: sys.executable for None, else the user's, which must be an executable file."""
    if python is None or str(python).strip() == "":
        return sys.executable
    path = Path(str(python).strip()).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise UserError("error.sandbox_python", path=str(python))
    return str(path)


@functools.lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...]:
    """The command prefix that gives a run a network namespace of its own (`unshare --net`, as root, or with
    `--map-root-user` for other users where user namespaces are allowed); () where neither works. Probed once."""
    unshare = shutil.which("unshare")
    if not sys.platform.startswith("linux") or unshare is None:
        return ()
    candidates = [(unshare, "--net", "--")] if os.geteuid() == 0 else []
    candidates.append((unshare, "--net", "--map-root-user", "--"))
    for prefix in candidates:
        try:
            probe = subprocess.run([*prefix, sys.executable, "-I", "-c", "pass"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return prefix
    return ()


def run_python(code: str, *, paths: Sequence[Path] = (), python: str | os.PathLike | None = None,
               limits: SandboxLimits = SandboxLimits(), stdin: str = "") -> SandboxResult:
    """Run `code` as a script in a fresh scratch folder under `limits`, with `paths` first on sys.path."""
    interpreter = resolve_python(python)
    base = Path(tempfile.mkdtemp(prefix="sandbox-"))
    try:
        return _run_in(base, code, interpreter, [str(Path(p).resolve()) for p in paths], limits, stdin)
    finally:
        _remove_tree(base)


def run_many(snippets: list[str], *, paths: Sequence[Path] = (), python: str | os.PathLike | None = None,
             limits: SandboxLimits = SandboxLimits(), workers: int | None = None) -> list[SandboxResult]:
    """run_python for each snippet on a pool of threads (each run is its own process); results in input order."""
    interpreter = resolve_python(python)  # a bad path fails once, before anything runs
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda code: run_python(code, paths=paths, python=interpreter, limits=limits), snippets))


# ---------------------------------------------------------------- one run


def _run_in(base: Path, code: str, interpreter: str, paths: list[str], limits: SandboxLimits,
            stdin: str) -> SandboxResult:
    scratch = base / "scratch"
    scratch.mkdir()
    runner, answer = base / "runner.py", base / "answer.py"
    runner.write_text(_runner_source(), encoding="utf-8")
    answer.write_text(code, encoding="utf-8")
    report_read, report_write = os.pipe()
    settings = {
        "report_fd": report_write, "scratch": str(scratch), "answer": str(answer), "paths": paths,
        "name": SNIPPET_NAME, "max_reported": _MAX_BLOCKED_REPORTED,
        "limits": {"memory_bytes": limits.memory_mb << 20, "cpu_s": limits.cpu_s,
                   "file_bytes": limits.max_file_bytes, "processes": limits.processes},
    }
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(scratch), "TMPDIR": str(scratch),
           "MALLOC_ARENA_MAX": "2"}  # each thread's malloc arena would otherwise reserve 64 MB of address space
    command = [*network_namespace_prefix(), interpreter, "-I", "-B", "-X", "utf8", str(runner), json.dumps(settings)]
    started = time.monotonic()
    try:
        process = subprocess.Popen(command, cwd=scratch, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, pass_fds=(report_write,), start_new_session=True)
    except OSError as exc:
        os.close(report_read)
        os.close(report_write)
        return SandboxResult(False, None, "", f"{type(exc).__name__}: {exc}", False, seconds=0.0,
                             limit_s=limits.timeout_s)
    os.close(report_write)
    readers = [_CappedReader(process.stdout, limits.max_output_bytes),
               _CappedReader(process.stderr, limits.max_output_bytes)]
    threading.Thread(target=_feed, args=(process.stdin, stdin), daemon=True).start()
    timed_out = False
    try:
        exit_code = process.wait(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process.pid)
        exit_code = process.wait()
    seconds = time.monotonic() - started
    _kill_group(process.pid)  # anything the snippet left behind in its group
    for reader in readers:
        reader.join(timeout=2.0)
    blocked = _read_reports(report_read)
    stdout, stderr = (reader.text() for reader in readers)
    ok = exit_code == 0 and not timed_out and not blocked
    return SandboxResult(ok, exit_code, stdout, stderr, timed_out, blocked, round(seconds, 3),
                         any(reader.truncated for reader in readers), limits.timeout_s)


class _CappedReader(threading.Thread):
    """Reads a pipe to its end on a thread, keeping the first `limit` bytes (a flood is drained, not stored)."""

    def __init__(self, stream, limit: int):
        super().__init__(daemon=True)
        self.stream, self.limit, self.chunks, self.kept, self.truncated = stream, limit, [], 0, False
        self.start()

    def run(self) -> None:
        with self.stream:
            while chunk := self.stream.read1(65536):
                room = self.limit - self.kept
                if room > 0:
                    self.chunks.append(chunk[:room])
                    self.kept += min(room, len(chunk))
                if len(chunk) > max(room, 0):
                    self.truncated = True

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace")


def _feed(stream, text: str) -> None:
    try:
        with stream:
            stream.write(text.encode("utf-8"))
    except (BrokenPipeError, OSError):
        pass  # the snippet exited without reading its input


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_reports(fd: int) -> list[str]:
    """The guard's refusals (one per line; the child writes a few KB at most, so the pipe never filled)."""
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk
    except BlockingIOError:
        pass  # a leftover holder of the write end; what was written is read
    finally:
        os.close(fd)
    return [line for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]


def _remove_tree(path: Path) -> None:
    """Remove a run's folder, also where the snippet took away its own permissions on a subfolder."""
    def make_writable_and_retry(function, target, _exc_info):
        try:
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            function(target)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=make_writable_and_retry)
    else:
        shutil.rmtree(path, onerror=make_writable_and_retry)


@functools.lru_cache(maxsize=1)
def _runner_source() -> str:
    """The bootstrap script the child runs: the function below, standing alone, then a call of it."""
    return inspect.getsource(_sandbox_bootstrap) + "\n\n_sandbox_bootstrap()\n"


# ---------------------------------------------------------------- the child's side
# Runs in the child interpreter, which may be the user's (Python 3.8 or newer): self-contained, stdlib only,
# no annotations, nothing newer than 3.8.


def _sandbox_bootstrap():
    import json
    import linecache
    import os
    import sys
    import traceback
    import types

    settings = json.loads(sys.argv[1])
    report_fd, scratch = settings["report_fd"], os.path.realpath(settings["scratch"])
    try:
        import resource

        limits = settings["limits"]
        for name, value in (("RLIMIT_AS", limits["memory_bytes"]), ("RLIMIT_CPU", limits["cpu_s"]),
                            ("RLIMIT_FSIZE", limits["file_bytes"]), ("RLIMIT_CORE", 0),
                            ("RLIMIT_NPROC", limits["processes"])):
            if value is not None and hasattr(resource, name):
                hard = value + 1 if name == "RLIMIT_CPU" else value  # SIGXCPU at the soft limit, SIGKILL a second later
                resource.setrlimit(getattr(resource, name), (value, hard))
    except ImportError:
        pass  # no resource module (Windows): the wall-clock timeout still applies
    if not hasattr(sys, "addaudithook"):
        sys.stderr.write("the sandbox needs Python 3.8 or newer\n")
        sys.exit(2)

    reported = []
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    # event -> (index of a path argument, index of its dir_fd argument or None), for writes to the file system
    path_events = {
        "os.remove": [(0, 1)], "os.rmdir": [(0, 1)], "os.rename": [(0, 2), (1, 3)], "os.mkdir": [(0, 2)],
        "os.chmod": [(0, 2)], "os.chown": [(0, 3)], "os.link": [(1, 3)], "os.symlink": [(1, 2)],
        "os.utime": [(0, 3)], "os.truncate": [(0, None)], "os.chflags": [(0, None)], "os.lchflags": [(0, None)],
        "os.setxattr": [(0, None)], "os.removexattr": [(0, None)], "shutil.rmtree": [(0, 1)],
        "shutil.copyfile": [(1, None)], "shutil.copymode": [(1, None)], "shutil.copystat": [(1, None)],
        "shutil.copytree": [(1, None)], "shutil.chown": [(0, None)], "shutil.make_archive": [(0, None)],
        "shutil.unpack_archive": [(1, None)], "sqlite3.connect": [(0, None)],
    }
    network_events = ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
                      "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo", "socket.sendto",
                      "socket.sendmsg", "socket.sethostname")
    process_events = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                      "os.forkpty", "os.startfile", "os.killpg")

    def refuse(what):
        what = " ".join(str(what).split())[:300]
        if what not in reported and len(reported) < settings["max_reported"]:
            reported.append(what)
            try:
                os.write(report_fd, (what + "\n").encode("utf-8", "replace"))
            except OSError:
                pass
        raise PermissionError("sandbox refused " + what)

    def real_path(value, dir_fd=None):
        if isinstance(value, int):  # a file descriptor: where it points, where the system says
            try:
                return os.readlink("/proc/self/fd/%d" % value)
            except OSError:
                return None
        value = os.fsdecode(os.fspath(value))
        if dir_fd not in (None, -1) and not os.path.isabs(value):
            try:
                value = os.path.join(os.readlink("/proc/self/fd/%d" % dir_fd), value)
            except OSError:
                return "<dir fd %d>/%s" % (dir_fd, value)
        return os.path.realpath(os.path.join(os.getcwd(), value))

    def inside(path):
        return path is None or path == scratch or path.startswith(scratch + os.sep) or path == os.devnull

    def address(value):
        if isinstance(value, tuple) and len(value) >= 2:
            return "%s:%s" % (value[0], value[1])
        return str(value)

    def check(event, args):
        if event == "open":
            path, mode, flags = args[0], args[1], args[2] or 0
            if isinstance(path, int):
                return
            target = real_path(path)
            if (mode and any(letter in mode for letter in "wax+")) or flags & write_flags:
                if not inside(target):
                    refuse("write outside scratch: %s" % target)
            elif mode is None and os.path.isdir(target) and not inside(target):
                refuse("open folder outside scratch: %s" % target)  # a dir_fd for os.open(..., dir_fd=)
        elif event in path_events:
            for path_index, fd_index in path_events[event]:
                if path_index >= len(args) or args[path_index] is None:
                    continue
                if event == "sqlite3.connect" and str(args[0]) in (":memory:", ""):
                    continue
                dir_fd = args[fd_index] if fd_index is not None and fd_index < len(args) else None
                target = real_path(args[path_index], dir_fd)
                if not inside(target):
                    refuse("write outside scratch: %s %s" % (event, target))
        elif event in network_events:
            refuse("network: %s %s" % (event.split(".", 1)[1], address(args[1] if event in (
                "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg") else args[0])))
        elif event in process_events:
            shown = args[1] if event == "subprocess.Popen" and len(args) > 1 else (args[0] if args else "")
            parts = shown if isinstance(shown, (list, tuple)) else [shown]
            shown = " ".join(os.fsdecode(part) if isinstance(part, bytes) else str(part) for part in parts)
            refuse("subprocess: %s %s" % (event, shown))
        elif event == "os.kill" and args[0] != os.getpid():
            refuse("subprocess: os.kill %s" % args[0])
        elif event in ("resource.setrlimit", "resource.prlimit"):
            refuse("limits: %s" % event)
        elif event == "ctypes.dlopen" and args[0] is not None:
            refuse("ctypes: dlopen %s" % args[0])
        elif event in ("ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata"):
            refuse("ctypes: %s" % event.split(".", 1)[1])

    def guard(event, args):
        try:
            check(event, args)
        except PermissionError:
            raise
        except Exception as exc:  # arguments we could not read: refuse rather than guess
            refuse("%s: %s" % (event, exc))

    sys.dont_write_bytecode = True
    sys.path[:0] = settings["paths"]
    with open(settings["answer"], encoding="utf-8") as file:
        source = file.read()
    name = settings["name"]
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    main = types.ModuleType("__main__")
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    try:
        code = compile(source, name, "exec")
    except SyntaxError:
        traceback.print_exc(limit=0)
        sys.exit(1)
    sys.addaudithook(guard)
    try:
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException:
        kind, error, trace = sys.exc_info()
        traceback.print_exception(kind, error, trace.tb_next)  # without this bootstrap's own frame
        sys.exit(1)
    finally:
        sys.stdout.flush()
