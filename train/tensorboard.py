"""One TensorBoard subprocess for the run being watched, reachable only through the workbench's proxy.

It serves under PATH_PREFIX so the workbench can reverse-proxy `/tensorboard/...` on its own
port: the page then works from another machine or through an SSH tunnel to that one port,
unlike the prototype's iframe pointing at the viewer's own localhost.

Its own port listens on 127.0.0.1 only, and answers only the proxy: the child is this module run as
`python -m train.tensorboard`, which puts a guard in front of TensorBoard's WSGI app. A request must
name the port's own address as its Host (a DNS-rebinding page in a browser on this machine sends its own
name) and carry PROXY_HEADER with the secret the workbench handed the child on its stdin (another user or
program of this machine that finds the port has no way to learn it: it is in no command line, file or
environment). The child ends with the workbench, even one killed with SIGKILL: its stdin is a pipe whose
other end only the workbench holds, so it reads end-of-file when the workbench dies, and it also exits
when its parent process changes (should that end have leaked into a forked child). PR_SET_PDEATHSIG
would not do: it fires when the *thread* that started the child ends, and the page starts TensorBoard
from a worker thread.
"""

from __future__ import annotations

import atexit
import hmac
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tools.core.workdir import REPO_ROOT

PATH_PREFIX = "/tensorboard"
HOST = "127.0.0.1"
# The header the proxy adds, with the secret of the running TensorBoard (proxy_headers()).
PROXY_HEADER = "X-Workbench-Proxy"
PARENT_POLL_S = 1.0  # how often the child checks that its parent is still the workbench

_lock = threading.Lock()
_process: subprocess.Popen | None = None
_port: int | None = None
_logdir: Path | None = None
_secret: str | None = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_tensorboard(logdir: Path | str, wait_s: float = 0.0, name: str | None = None) -> int:
    """Serve `logdir` (replacing any TensorBoard started before) and return its port. `name` (the
    run's) is what TensorBoard calls the run; without one it shows ".", the folder it was given."""
    global _process, _port, _logdir, _secret
    logdir = Path(logdir).resolve()  # the child runs in the repository
    with _lock:
        if _process is not None and _process.poll() is None and _logdir == logdir:
            return _port
        _stop_locked()
        logdir.mkdir(parents=True, exist_ok=True)
        port, secret = free_port(), secrets.token_urlsafe(32)
        command = [
            sys.executable, "-m", "train.tensorboard",
            # logdir_spec "name:path" names the run; a name with "," or ":" would split the spec.
            *(["--logdir_spec", f"{name}:{logdir}"] if name and not set(name) & set(",:") else ["--logdir", str(logdir)]),
            "--port", str(port), "--host", HOST,
            # Every 2 s rather than 5: the frame lagged the page's own plot by several steps.
            "--path_prefix", PATH_PREFIX, "--reload_interval", "2",
        ]
        process = subprocess.Popen(command, cwd=str(REPO_ROOT), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        # The secret goes through the pipe, never the command line (which every user sees in `ps`); the pipe
        # stays open: its end-of-file is the child's signal that the workbench is gone.
        process.stdin.write((secret + "\n").encode("ascii"))
        process.stdin.flush()
        _process, _port, _logdir, _secret = process, port, logdir, secret
    if wait_s:
        wait_until_serving(port, wait_s)
    return port


def wait_until_serving(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def tensorboard_port() -> int | None:
    """The port of the running TensorBoard, or None."""
    with _lock:
        if _process is not None and _process.poll() is None:
            return _port
        return None


def proxy_headers() -> dict[str, str]:
    """The header that lets the proxy's requests through the running TensorBoard's guard ({} when none runs)."""
    with _lock:
        return {PROXY_HEADER: _secret} if _process is not None and _process.poll() is None and _secret else {}


def tensorboard_logdir() -> Path | None:
    with _lock:
        return _logdir if _process is not None and _process.poll() is None else None


def tensorboard_pid() -> int | None:
    """The process id of the running TensorBoard (the guard around it), or None."""
    with _lock:
        return _process.pid if _process is not None and _process.poll() is None else None


def stop_tensorboard() -> None:
    with _lock:
        _stop_locked()


def _stop_locked() -> None:
    global _process, _port, _logdir, _secret
    process, _process, _port, _logdir, _secret = _process, None, None, None, None
    if process is None:
        return
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdin is not None:
        process.stdin.close()


atexit.register(stop_tensorboard)


# ---------------------------------------------------------------- the child: python -m train.tensorboard


def guard(app, secret: str, host: str):
    """TensorBoard's WSGI `app`, answering only requests with Host `host` and PROXY_HEADER `secret`."""
    header = "HTTP_" + PROXY_HEADER.upper().replace("-", "_")
    refusal = b"Forbidden: TensorBoard is reached through the workbench's /tensorboard/ page.\n"

    def guarded(environ, start_response):
        if environ.get("HTTP_HOST") == host and hmac.compare_digest(environ.get(header, "").encode(), secret.encode()):
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(refusal)))])
        return [refusal]

    return guarded


def exit_with_parent(lifeline, parent: int, poll_s: float = PARENT_POLL_S) -> None:
    """End this process when `lifeline` (a pipe only the parent writes) reaches end-of-file or when the
    parent process `parent` is gone (this process is then someone else's child): two daemon threads."""

    def read_to_end() -> None:
        while lifeline.read(1 << 12):
            pass
        os._exit(0)

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(0)

    threading.Thread(target=read_to_end, name="tensorboard-lifeline", daemon=True).start()
    threading.Thread(target=watch_parent, name="tensorboard-parent", daemon=True).start()


def _serve(argv: list[str]) -> int:
    """Run TensorBoard with `argv` (its own flags) behind the guard, for as long as the workbench lives."""
    secret = sys.stdin.buffer.readline().decode("ascii").strip()
    if not secret:  # the workbench died before it handed the secret over
        return 1
    exit_with_parent(sys.stdin.buffer, os.getppid())
    from tensorboard import default, main_lib, program  # heavy: only in this child

    main_lib.global_init()

    def server(app, flags):
        return program.WerkzeugServer(guard(app, secret, f"{HOST}:{flags.port}"), flags)

    board = program.TensorBoard(plugins=default.get_plugins(), server_class=server)
    board.configure(argv=["tensorboard", *argv])
    return board.main()


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
