"""One TensorBoard subprocess for the run being watched, bound to 127.0.0.1 on a free port.

It serves under PATH_PREFIX so the workbench can reverse-proxy `/tensorboard/...` on its own
port: the page then works from another machine or through an SSH tunnel to that one port,
unlike the prototype's iframe pointing at the viewer's own localhost.
"""

from __future__ import annotations

import atexit
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

PATH_PREFIX = "/tensorboard"
HOST = "127.0.0.1"

_lock = threading.Lock()
_process: subprocess.Popen | None = None
_port: int | None = None
_logdir: Path | None = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_tensorboard(logdir: Path | str, wait_s: float = 0.0, name: str | None = None) -> int:
    """Serve `logdir` (replacing any TensorBoard started before) and return its port. `name` (the
    run's) is what TensorBoard calls the run; without one it shows ".", the folder it was given."""
    global _process, _port, _logdir
    logdir = Path(logdir)
    with _lock:
        if _process is not None and _process.poll() is None and _logdir == logdir:
            return _port
        _stop_locked()
        logdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        command = [
            sys.executable, "-m", "tensorboard.main",
            # logdir_spec "name:path" names the run; a name with "," or ":" would split the spec.
            *(["--logdir_spec", f"{name}:{logdir}"] if name and not set(name) & set(",:") else ["--logdir", str(logdir)]),
            "--port", str(port), "--host", HOST,
            # Every 2 s rather than 5: the frame lagged the page's own plot by several steps.
            "--path_prefix", PATH_PREFIX, "--reload_interval", "2",
        ]
        _process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _port, _logdir = port, logdir
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


def tensorboard_logdir() -> Path | None:
    with _lock:
        return _logdir if _process is not None and _process.poll() is None else None


def stop_tensorboard() -> None:
    with _lock:
        _stop_locked()


def _stop_locked() -> None:
    global _process, _port, _logdir
    process, _process, _port, _logdir = _process, None, None, None
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


atexit.register(stop_tensorboard)
