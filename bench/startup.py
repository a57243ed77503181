"""Start-up benchmark of the web UI: seconds from launching `python main.py` to its first HTTP 200 on
"/" (the starting page, frontend.web.starting) and to the first 200 of the real page (gradio's, which
lacks the starting page's X-Workbench-Starting header), plus the longest stretch in between in which
the port refused connections (while it passes from the starting server to gradio). Code without a
starting page answers with the real page first: both figures are the same there.

Run: .venv/bin/python -m bench.startup [--runs 5]
Side by side: .venv/bin/python -m bench.startup --runs 5 --code-root /tmp/startup_old --code-root .
(runs alternate between the code roots; each root uses this interpreter).
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STARTING_HEADER = "X-Workbench-Starting"  # frontend.web.starting (not imported: the bench runs older code too)
POLL_S = 0.05
TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Startup:
    first: float  # first 200 on "/"
    real: float  # first 200 of the real page
    refused_gap: float  # longest stretch of refused connections after the first answer


def get_root(port: int) -> tuple[int, bool]:
    """(status, whether the answer came from the starting page)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader(STARTING_HEADER) is not None
    finally:
        connection.close()


def time_startup(code_root: Path, workdir: Path) -> Startup:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    started = time.perf_counter()
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "main.py", "--workdir", str(workdir), "--port", str(port)],
                               cwd=code_root, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    first = None
    refused_since = None
    gap = 0.0
    try:
        while True:
            now = time.perf_counter()
            if now - started > TIMEOUT_S:
                raise SystemExit(f"{code_root}: no real page within {TIMEOUT_S} s")
            try:
                status, starting = get_root(port)
            except OSError:
                if process.poll() is not None:
                    errors.seek(0)
                    raise StartFailed(f"{code_root}: the app exited ({process.returncode}) before answering:\n"
                                     + errors.read().decode(errors="replace")[-3000:])
                if first is not None and refused_since is None:
                    refused_since = now
                time.sleep(POLL_S)
                continue
            if refused_since is not None:
                gap = max(gap, now - refused_since)
                refused_since = None
            answered = time.perf_counter() - started
            if status == 200 and first is None:
                first = answered
            if status == 200 and not starting:
                return Startup(first, answered, gap)
            time.sleep(POLL_S)
    finally:
        process.terminate()
        process.wait(timeout=30)
        errors.close()


class StartFailed(Exception):
    pass


def time_startup_retrying(code_root: Path, workdir: Path, failures: list[str], attempts: int = 3) -> Startup:
    """A start that fails is tried again (and counted): on a loaded machine gradio's own check that it can
    reach itself (a HEAD / within 3 s) fails now and then, with the old code as with the new."""
    for attempt in range(attempts):
        try:
            return time_startup(code_root, workdir)
        except StartFailed as failure:
            failures.append(f"{code_root}: {str(failure).strip().splitlines()[-1]}")
            if attempt == attempts - 1:
                raise SystemExit(str(failure)) from None
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--code-root", action="append", type=Path, default=None,
                        help="a checkout to start (repeat for a side-by-side comparison; default: this one)")
    args = parser.parse_args()
    roots = [root.resolve() for root in (args.code_root or [REPO])]
    results: dict[Path, list[Startup]] = {root: [] for root in roots}
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdirs = {root: Path(tmp) / f"wd{index}" for index, root in enumerate(roots)}
        # The first run creates the work directory: shown apart, not in the medians.
        creating = {root: time_startup_retrying(root, workdirs[root], failures) for root in roots}
        for _ in range(args.runs):
            for root in roots:
                results[root].append(time_startup_retrying(root, workdirs[root], failures))
    print(f"`python main.py` start-up, seconds, median of {args.runs} runs (min–max); runs alternate between code roots")
    print()
    print("| code | first answer (any page) | real page | longest refused gap | first run, creating the work directory: first answer / real page |")
    print("| --- | --- | --- | --- | --- |")
    for root, runs in results.items():
        def cell(values: list[float]) -> str:
            return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"
        print(f"| {root} | {cell([r.first for r in runs])} | {cell([r.real for r in runs])} | {cell([r.refused_gap for r in runs])} | {creating[root].first:.2f} / {creating[root].real:.2f} |")
    if failures:
        print()
        print(f"{len(failures)} start(s) failed and were run again:")
        for failure in failures:
            print(f"- {failure}")


if __name__ == "__main__":
    main()
