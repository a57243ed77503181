"""Start-up benchmark: seconds from launching `python main.py` to the first HTTP 200.

Run: .venv/bin/python -m bench.startup [--runs 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def time_to_first_answer(workdir: Path) -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "main.py", "--workdir", str(workdir), "--port", str(port)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                if process.poll() is not None:
                    raise SystemExit("the app exited before answering")
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        first = time_to_first_answer(Path(tmp) / "fresh")  # creates the work directory
        times = [time_to_first_answer(Path(tmp) / "fresh") for _ in range(args.runs)]
    print("| measure | seconds |")
    print("| --- | --- |")
    print(f"| first run (creates the work directory) | {first:.2f} |")
    print(f"| later runs, median of {args.runs} | {statistics.median(times):.2f} |")
    print(f"| later runs, min / max | {min(times):.2f} / {max(times):.2f} |")


if __name__ == "__main__":
    main()
