"""`make test`: the suite as three pytest processes at once: the browser tests (`-m e2e`), the slow training
files, and the rest.

The browser tests spend much of their time waiting for the page (the workbench they drive, Chromium's
rendering, a person's typing pace): run alone they leave most of a core idle. The rest is mostly CPU. On a
clean clone with two processes (the browser tests beside everything else) the machine was busy 61 % of the
time and the halves took 15:15 and 14:14; three processes use the idle share. The training files that start
workers but not the shared facts run (tests/fixtures_train.py `facts_run`, trained once per process) go in
a process of their own, so no run is trained twice. The browser tests stay one after another in their
process: their timeouts and typing pace are set for one browser and one workbench at a time. The rest
prints as it goes; the other two processes' output is kept in test-artifacts/ and printed when all are
done. With arguments (`make test ARGS="-m e2e"`) it is plain `pytest -q ARGS` in one process.

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
TRAINING_LOG = REPO / "test-artifacts" / "training.log"
BROWSER_TESTS = "tests/e2e"  # every test marked e2e lives there (tests/e2e/conftest.py marks them)
# Slow files that train (workers, sweeps, exams) without the shared facts run: the third process.
TRAINING_TESTS = ("tests/test_sweep.py", "tests/test_cpt_training.py", "tests/test_worker.py", "tests/test_preference_training.py",
                  "tests/test_exam_proof.py", "tests/test_evaluation.py", "tests/test_sweep_gpus.py", "tests/test_crash_safety.py",
                  "tests/test_tool_call_training.py")


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
    logged = ((BROWSER_LOG, (BROWSER_TESTS,), "the browser tests (-m e2e)"), (TRAINING_LOG, TRAINING_TESTS, "the training files"))
    processes = []
    try:
        for log_path, paths, _ in logged:
            with open(log_path, "w", encoding="utf-8") as log:
                # By path, not by marker: `-m e2e` alone would import and collect the whole suite to deselect it (~10 s).
                processes.append(subprocess.Popen(pytest_command(*paths), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
        ignored = [arg for path in (BROWSER_TESTS, *TRAINING_TESTS) for arg in ("--ignore", path)]
        rest = subprocess.call(pytest_command("-m", "not e2e", *ignored), cwd=REPO, env=env)
        codes = [process.wait() for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:  # interrupted: the other processes end with the run
                process.terminate()
                process.wait()
    for log_path, _, title in logged:
        print(f"\n==== {title}, run beside the rest; also in {log_path.relative_to(REPO)} ====", flush=True)
        print(log_path.read_text(encoding="utf-8"), flush=True)
    return rest or next((code for code in codes if code), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
