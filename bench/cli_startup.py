"""CLI start-up benchmark: for every command of main.py, a cheap real invocation run as a subprocess, timed
from its launch (the parent's time.time() just before starting it) to the moment the command's function
is called (main.py writes time.time() to the file WORKBENCH_STARTUP_PROBE names, just before
`args.func(args)`), and the whole run's wall time. The invocations end quickly inside the command's work
(an empty listing, or a name that does not exist); what the work then imports (openai for generate,
torch/transformers for serve) counts in the wall time only. A first row times the bare interpreter
(`python -c`, to its first line of code) for reference.

Run: .venv/bin/python -m bench.cli_startup [--runs 5]
Side by side: .venv/bin/python -m bench.cli_startup --runs 5 --code-root /tmp/startup_old --code-root .
(runs alternate between the code roots; a main.py without the probe, the code before it, is run through
a wrapper that writes the same time stamp when the parsed `func` is called).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROBE_ENV = "WORKBENCH_STARTUP_PROBE"

# (label, arguments after `main.py --workdir W --lang en`): each reaches the command's function.
INVOCATIONS = [
    ("datasets list", ["datasets", "list"]),
    ("docs list", ["docs", "list"]),
    ("generate (missing docs)", ["generate", "--docs", "missing", "--dataset", "d", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]),
    ("make-tiny-model (bad name)", ["make-tiny-model", "../bad"]),
    ("train (missing dataset)", ["train", "--model", "missing-model", "--dataset", "missing"]),
    ("export (missing run)", ["export", "--run", "missing", "--format", "lora"]),
    ("eval (missing run)", ["eval", "missing"]),
    ("serve (missing model)", ["serve", "--model", "missing-model"]),
    ("exam list", ["exam", "list"]),
    ("runs compare", ["runs", "compare"]),
    ("pairs (missing run)", ["pairs", "--from", "missing", "--name", "p", "--run", "missing"]),
    ("sweep list", ["sweep", "list"]),
    ("train sweep list", ["train", "sweep", "list"]),
]

# For a main.py without the probe: the same time stamp, written when the parsed command's function is called.
_WRAPPER = """
import argparse, os, runpy, sys, time
_parse = argparse.ArgumentParser.parse_args
def _parse_args(self, *args, **kwargs):
    namespace = _parse(self, *args, **kwargs)
    func = getattr(namespace, "func", None)
    if func is not None:
        def probed(*a, **k):
            with open(os.environ[%r], "w") as out:
                out.write(f"{time.time()!r} {time.process_time()!r}")
            return func(*a, **k)
        namespace.func = probed
    return namespace
argparse.ArgumentParser.parse_args = _parse_args
sys.argv = ["main.py", *sys.argv[1:]]
runpy.run_path("main.py", run_name="__main__")
""" % PROBE_ENV


def has_probe(code_root: Path) -> bool:
    return PROBE_ENV in (code_root / "main.py").read_text(encoding="utf-8")


def read_probe(probe: Path, launched: float) -> tuple[float, float]:
    """(wall seconds from launch to the command, CPU seconds the process used until then)."""
    wall_clock, cpu = probe.read_text().split()
    return float(wall_clock) - launched, float(cpu)


def run_once(code_root: Path, workdir: Path, arguments: list[str], probe: Path) -> tuple[float, float, float]:
    """(seconds to the command's function, CPU seconds until then, seconds to exit)."""
    probe.unlink(missing_ok=True)
    entry = ["main.py"] if has_probe(code_root) else ["-c", _WRAPPER]
    command = [sys.executable, *entry, "--workdir", str(workdir), "--lang", "en", *arguments]
    env = {**os.environ, PROBE_ENV: str(probe), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    launched = time.time()
    result = subprocess.run(command, cwd=code_root, env=env, capture_output=True, text=True, timeout=600)
    ended = time.time()
    if not probe.exists():
        raise SystemExit(f"{code_root}: `{' '.join(arguments)}` never called its command (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return (*read_probe(probe, launched), ended - launched)


def bare_interpreter(probe: Path) -> tuple[float, float, float]:
    code = f"import time; open({str(probe)!r}, 'w').write(f'{{time.time()!r}} {{time.process_time()!r}}')"
    launched = time.time()
    subprocess.run([sys.executable, "-c", code], check=True)
    ended = time.time()
    return (*read_probe(probe, launched), ended - launched)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--code-root", action="append", type=Path, default=None,
                        help="a checkout to run (repeat for a side-by-side comparison; default: this one)")
    parser.add_argument("--only", default=None, help="comma-separated labels' first words, e.g. datasets,generate")
    args = parser.parse_args()
    roots = [root.resolve() for root in (args.code_root or [REPO])]
    invocations = [(label, argv) for label, argv in INVOCATIONS
                   if args.only is None or label.split()[0] in args.only.split(",")]
    # label -> root -> [(start-up, CPU to the command, wall)]
    results: dict[str, dict[Path, list[tuple[float, float, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe"
        workdirs = {root: Path(tmp) / f"wd{index}" for index, root in enumerate(roots)}
        for root in roots:  # creates each work directory, not counted
            run_once(root, workdirs[root], ["datasets", "list"], probe)
        results["python -c (bare interpreter)"] = {roots[0]: [bare_interpreter(probe) for _ in range(args.runs)]}
        for label, argv in invocations:
            results[label] = {root: [] for root in roots}
            for _ in range(args.runs):
                for root in roots:
                    results[label][root].append(run_once(root, workdirs[root], argv, probe))
    names = [str(root) for root in roots]
    print(f"CLI start-up: seconds from launch to the command's function, best (min) of {args.runs} runs, median in brackets; "
          "CPU: the process's CPU seconds until then (best); wall: to exit (median). Runs alternate between code roots.")
    print()
    print("| command | " + " | ".join(f"start-up: {name}" for name in names) + " | " + " | ".join(f"CPU: {name}" for name in names)
          + " | " + " | ".join(f"wall: {name}" for name in names) + " |")
    print("| --- |" + " --- |" * (3 * len(roots)))
    for label, by_root in results.items():
        def cells(pick, best: bool) -> list[str]:
            out = []
            for root in roots:
                if root not in by_root:
                    out.append("")
                    continue
                values = [pick(run) for run in by_root[root]]
                out.append(f"{min(values):.2f} ({statistics.median(values):.2f})" if best else f"{statistics.median(values):.2f}")
            return out
        print(f"| {label} | " + " | ".join(cells(lambda run: run[0], True)) + " | "
              + " | ".join(f"{min(run[1] for run in by_root[root]):.2f}" if root in by_root else "" for root in roots) + " | "
              + " | ".join(cells(lambda run: run[2], False)) + " |")

if __name__ == "__main__":
    main()
