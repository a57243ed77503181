"""`make test`: the suite as two pytest processes at once, the browser tests (`-m e2e`) and the rest.

The browser tests spend their time in Chromium and the workbench they drive, the rest in the test process
itself; side by side they share the two cores, so each half slows the other and the gain over one process is
modest (README, Tests). The browser tests stay one after another in their process: their timeouts and typing pace are set
for one browser and one workbench at a time. The rest prints as it goes; the browser tests' output is kept in
test-artifacts/e2e.log and printed when both are done. With arguments (`make test ARGS="-m e2e"`) it is
plain `pytest -q ARGS` in one process.

(pytest-xdist's `--dist loadgroup` would do this split, but its groups are lost under pytest 9: it renames
a test through an attribute pytest 9 no longer reads.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BROWSER_LOG = REPO / "test-artifacts" / "e2e.log"
BROWSER_TESTS = "tests/e2e"  # every test marked e2e lives there (tests/e2e/conftest.py marks them)
# Slow training files that run in the browser tests' process, so the two halves take about as long
# (measured on a clean clone: the browser tests 11 min, the rest 12 min, the sweep and cpt tests 3-4 min).
BESIDE_BROWSER = ("tests/test_sweep.py", "tests/test_cpt_training.py")


# Each half lists its slowest tests at the end: the suite's time is kept under 15 minutes, and this says where it goes.
SLOWEST_SHOWN = 20


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", *args]


def side_by_side_environment() -> dict[str, str]:
    """The environment of the two halves (and of every worker, workbench and server they start): one OpenMP
    thread per process. torch's CPU kernels run on OpenMP threads that spin while they wait; with both halves
    training at once on two cores, two threads per process turn every step into a fight for the cores:
    two training tests took 159 s beside a busy core with the default threads and 65 s with one (README, Tests).
    A value set by the caller is kept."""
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def main(argv: list[str]) -> int:
    if argv:
        return subprocess.call(pytest_command(*argv), cwd=REPO)
    BROWSER_LOG.parent.mkdir(parents=True, exist_ok=True)
    env = side_by_side_environment()
    with open(BROWSER_LOG, "w", encoding="utf-8") as log:
        # By folder, not by marker: `-m e2e` alone would import and collect the whole suite to deselect it (~10 s).
        browser = subprocess.Popen(pytest_command(f"--durations={SLOWEST_SHOWN}", BROWSER_TESTS, *BESIDE_BROWSER), cwd=REPO,
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            ignored = [arg for path in (BROWSER_TESTS, *BESIDE_BROWSER) for arg in ("--ignore", path)]
            rest = subprocess.call(pytest_command(f"--durations={SLOWEST_SHOWN}", "-m", "not e2e", *ignored), cwd=REPO, env=env)
            browser_code = browser.wait()
        finally:
            if browser.poll() is None:  # interrupted: the browser tests end with the run
                browser.terminate()
                browser.wait()
    print(f"\n==== the browser tests (-m e2e), run beside the rest; also in {BROWSER_LOG.relative_to(REPO)} ====", flush=True)
    print(BROWSER_LOG.read_text(encoding="utf-8"), flush=True)
    return rest or browser_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
