"""Dataset checks without an LLM: time of all checks on synthetic datasets of 5,000 and 50,000 items
(realistic lengths, sources from the sample doc set, some duplicates, near-duplicates, leaks and
secrets), in one process and in two (what run_checks does by itself from 20,000 items on a machine
with two CPUs), the CPU seconds of each check, and the ratio between the sizes (linear growth means
~10x); and a re-check after APPENDED items were appended, with the previous result (kept with its cache,
as check_dataset saves it) read from its JSON text, in a process of its own. Side by side: every code root
is measured in a child process of its own (its `tools` on the path), the roots alternating run by run,
best of N; the findings of every root are compared (a root without re-checks shows n/a for them).

Run: .venv/bin/python -m bench.quality [--sizes 5000,50000] [--runs 3]
     .venv/bin/python -m bench.quality --code-root /tmp/old --code-root . --runs 3   # before / after
(/tmp/old: `git archive <commit> | tar -x -C /tmp/old`.) Also compares our numpy MinHash with
datasketch's when datasketch is installed (it is not a requirement) and only one code root is given.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DOCS_FOLDER = ("workdir", "docs", "tidewater")  # under the code root: tools.core.workdir.SAMPLE_DOCS_SOURCE
SECRETS = ["Set OPENAI_API_KEY=sk-proj-4fJ2kQz9Lm8Xc1Vb7Nn0Pq3Rs6Tu5Wy2Za4Bd8Ef before running.",
           "The staging database is postgres://deploy:Qv7#pLx9zR2@pg.internal.corp:5432/tides.",
           "Ask jane.doe@acme-corp.com for access to the cache on 10.12.4.7.",
           "aws_access_key_id = AKIAQ3EGRZ7XK4M2PB5D"]
OPENERS = ["What does", "How do I use", "Why would I call", "When should I configure", "Explain", "What happens with"]
ENDINGS = ["in tidewater?", "when a stage fails?", "for a nightly report tide?", "with max_workers set to {n}?",
           "if the scheduler lock is held?", "during a dry run?"]
APPENDED = 1_000  # items a generation run appended before the re-check
CHECKS = ("duplicates", "answers", "grounding", "pairs", "tool_calls", "names", "language", "secrets", "stats")


def synthetic_items(count: int, slices, seed: int = 7) -> tuple[list[dict], set[str]]:
    """`count` items drawn from the doc set's slices: ~2 % exact and ~2 % near duplicates, ~0.5 % with a
    secret, 10 % in the eval split (some of them leaking a training question)."""
    rng = random.Random(seed)
    sentences = {s.slice_id: [p.strip() for p in s.text.replace("\n", " ").split(". ") if len(p.strip()) > 30] or [s.text[:200]]
                 for s in slices}
    words = {s.slice_id: [w for w in s.text.split() if w.isalnum() and len(w) > 3] or ["tide"] for s in slices}
    items = []
    for index in range(count):
        piece = slices[rng.randrange(len(slices))]
        roll = rng.random()
        if items and roll < 0.02:  # exact duplicate of an earlier question
            question = items[rng.randrange(len(items))]["messages"][0]["content"]
        elif items and roll < 0.04:  # near duplicate: one word swapped
            question = items[rng.randrange(len(items))]["messages"][0]["content"].replace("What does", "What do", 1).replace("How do I", "How can I", 1)
        else:
            topic = " ".join(rng.sample(words[piece.slice_id], min(3, len(words[piece.slice_id]))))
            question = f"{rng.choice(OPENERS)} {topic} {rng.choice(ENDINGS).format(n=rng.randint(1, 64))} (case {index})"
        answer = ". ".join(rng.sample(sentences[piece.slice_id], min(len(sentences[piece.slice_id]), rng.randint(2, 5)))) + "."
        if rng.random() < 0.005:
            answer += " " + rng.choice(SECRETS)
        items.append({"id": f"i{index:06d}", "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                      "provenance": {"source_doc": piece.source, "heading_path": piece.heading_path, "unit": f"{piece.slice_id}:1",
                                     "origin": "generated"}})
    eval_ids = {item["id"] for item in rng.sample(items, count // 10)}
    return items, eval_ids


# ---------------------------------------------------------------- the child: one code root, one size


class _CpuClock:
    """Stands in for the `time` module inside tools.quality.checks during the one-process run, so that the
    result's per-check timings are CPU seconds of this process (the code of every root times its checks
    with time.perf_counter around each check)."""

    perf_counter = staticmethod(time.process_time)

    def __getattr__(self, name):
        return getattr(time, name)


def _warm_context(checks):
    """The sample doc set, with the checks warmed up: imports (detect-secrets), regex compilation, first-use tables."""
    from tools.quality.sources import load_doc_context

    context = load_doc_context(Path.cwd().joinpath(*SAMPLE_DOCS_FOLDER), "tidewater", 800)
    warm_items, warm_eval = synthetic_items(200, context.slices)
    checks.run_checks(warm_items, warm_eval, context, parallel=False)
    checks.warm_up()  # detect-secrets, imported at its first long token: 200 items may hold none (0.2 s)
    return context


def measure_here(size: int, saved: str = "") -> dict:
    """Run in the child, with the code root's `tools` importable: the checks on `size` synthetic items,
    one process (per-check CPU) and two processes (wall and CPU of both). Where the code keeps a cache for
    re-checks, then the first check keeping it (one process, CPU), its result written to `saved`."""
    from tools.quality import checks

    context = _warm_context(checks)
    items, eval_ids = synthetic_items(size, context.slices)
    measured = {"size": size, "load": os.getloadavg()[0]}
    for parallel in (False, True):
        clock = checks.time
        if not parallel:
            checks.time = _CpuClock()
        try:
            wall, before = time.perf_counter(), os.times()
            result = checks.run_checks(items, eval_ids, context, parallel=parallel)
            cpu = _cpu_since(before)
        finally:
            checks.time = clock
        key = "two" if parallel else "one"
        measured[key] = {"wall": time.perf_counter() - wall, "cpu": cpu, "parallel": result["parallel"]}
        if not parallel:
            measured["checks_cpu"] = result["timings_s"]
        measured[key]["findings"] = findings_hash(result)
        measured["by_kind"] = result["summary"]["by_kind"]
    if saved and "previous" in inspect.signature(checks.run_checks).parameters:  # an old code root has no cache
        before = os.times()
        first = checks.run_checks(items, eval_ids, context, parallel=False, keep_cache=True)
        measured["first_cpu"] = _cpu_since(before)
        measured["first_reuse"] = first["timings_s"]["reuse"]
        Path(saved).write_text(json.dumps(first, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return measured


def measure_recheck_here(size: int, saved: str, parallel: bool) -> dict:
    """Run in a child of its own (as a background checker after a generation run: no caches of the first
    check's process): the `size` items with APPENDED more (10 % of those in the eval split) re-checked
    with the result in `saved` as the previous one, in one process or two; wall and CPU of reading that
    result and checking, writing the new one apart. In one process, also the hash of a fresh check's
    findings (after the re-check, which stays cold)."""
    from tools.quality import checks

    context = _warm_context(checks)
    items, eval_ids = synthetic_items(size, context.slices)
    grown, grown_eval = synthetic_items(size + APPENDED, context.slices)
    assert grown[:size] == items
    eval_after = eval_ids | {item["id"] for item in grown[size:] if item["id"] in grown_eval}
    wall, before = time.perf_counter(), os.times()
    previous = json.loads(Path(saved).read_text(encoding="utf-8"))
    result = checks.run_checks(grown, eval_after, context, parallel=parallel, previous=previous, keep_cache=True)
    measured = {"wall": time.perf_counter() - wall, "cpu": _cpu_since(before), "parallel": result["parallel"],
                "reused": result["reused_items"], "findings": findings_hash(result), "reuse_s": result["timings_s"]["reuse"]}
    started = time.perf_counter()
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    measured.update(write=time.perf_counter() - started, saved_mb=len(text.encode()) / 2**20)
    if not parallel:
        measured["fresh_findings"] = findings_hash(checks.run_checks(grown, eval_after, context, parallel=True))
    return measured


def findings_hash(result: dict) -> str:
    """A hash of what the checks found: the result without its clock, its way of running and its cache."""
    comparable = {k: v for k, v in result.items()
                  if k not in ("checked_at", "timings_s", "seconds", "parallel", "cache", "reused_items")}
    return hashlib.sha256(json.dumps(comparable, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _cpu_since(before) -> float:
    after = os.times()
    return sum(getattr(after, field) - getattr(before, field) for field in ("user", "system", "children_user", "children_system"))


def _in_child(code_root: Path, call: str):
    """`call` (a call of a function of this file) in a child process whose working directory and import path
    are `code_root`; what it returns."""
    script = (f"import json, runpy; bench = runpy.run_path({str(Path(__file__).resolve())!r}, run_name='bench_quality_child'); "
              f"print(json.dumps(bench[{call.split('(', 1)[0]!r}]({call.split('(', 1)[1]}))")
    environment = {**os.environ, "PYTHONPATH": str(code_root), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=code_root, env=environment, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the checks failed under {code_root}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(code_root: Path, size: int) -> dict:
    """measure_here in a child process whose working directory and import path are `code_root`, then (where
    that code keeps a cache) the re-checks, each in a child of its own."""
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as folder:
        saved = str(Path(folder) / "previous.checks.json")
        measured = _in_child(code_root, f"measure_here({size}, {saved!r})")
        if "first_cpu" in measured:
            measured["recheck"] = {key: _in_child(code_root, f"measure_recheck_here({size}, {saved!r}, {parallel})")
                                   for key, parallel in (("one", False), ("two", True))}
            measured["recheck"].update(first_cpu=measured["first_cpu"], first_reuse=measured["first_reuse"])
    return measured


# ---------------------------------------------------------------- the report


def best(runs: list[dict]) -> dict:
    """The lowest of each figure over the runs (each figure on its own)."""
    return {
        "one_wall": min(run["one"]["wall"] for run in runs), "one_cpu": min(run["one"]["cpu"] for run in runs),
        "two_wall": min(run["two"]["wall"] for run in runs), "two_cpu": min(run["two"]["cpu"] for run in runs),
        "parallel": runs[0]["two"]["parallel"],
        "checks": {check: min(run["checks_cpu"].get(check, 0.0) for run in runs) for check in CHECKS},
        "findings": {run[key]["findings"] for run in runs for key in ("one", "two")},
        "load": [round(run["load"], 1) for run in runs],
        "recheck": _best_recheck([run.get("recheck") for run in runs]),
    }


def _best_recheck(rechecks: list[dict | None]) -> dict | None:
    if any(recheck is None for recheck in rechecks):
        return None
    figures = {f"{key}_{figure}": min(recheck[key][figure] for recheck in rechecks)
               for key in ("one", "two") for figure in ("wall", "cpu")}
    figures.update(first_cpu=min(recheck["first_cpu"] for recheck in rechecks),
                   first_reuse=min(recheck["first_reuse"] for recheck in rechecks),
                   write=min(recheck[key]["write"] for recheck in rechecks for key in ("one", "two")),
                   saved_mb=rechecks[0]["one"]["saved_mb"], parallel=rechecks[0]["two"]["parallel"],
                   reused={recheck[key]["reused"] for recheck in rechecks for key in ("one", "two")},
                   findings={recheck[key]["findings"] for recheck in rechecks for key in ("one", "two")},
                   fresh={recheck["one"]["fresh_findings"] for recheck in rechecks})
    return figures


def report(roots: list[Path], sizes: list[int], results: dict) -> None:
    labels = [str(root) for root in roots]
    width = max(14, *(len(label) for label in labels))
    for size in sizes:
        figures = [best(results[root, size]) for root in roots]
        print(f"\n{size:,} items, best of {len(results[roots[0], size])} (load average at each run's start: "
              + "; ".join(f"{label} {figure['load']}" for label, figure in zip(labels, figures)) + ")")
        print(f"  {'':34}" + "".join(f"{label:>{width + 2}}" for label in labels) + ("      last/first" if len(roots) > 1 else ""))
        rows = [("all checks, one process, wall", "one_wall"), ("all checks, one process, CPU", "one_cpu"),
                (f"all checks, two processes, wall", "two_wall"), ("all checks, two processes, CPU", "two_cpu")]
        rows += [(f"  {check} CPU", check) for check in CHECKS]
        for title, key in rows:
            values = [figure["checks"][key] if key in CHECKS else figure[key] for figure in figures]
            line = f"  {title:34}" + "".join(f"{value:>{width}.2f} s" for value in values)
            if len(roots) > 1 and values[0]:
                line += f"      {values[-1] / values[0]:.2f}x"
            print(line)
        rows = [(f"re-check +{APPENDED:,}, one process, wall", "one_wall"), ("  one process, CPU", "one_cpu"),
                ("  two processes, wall", "two_wall"), ("  two processes, CPU", "two_cpu"),
                ("  writing its result (JSON text)", "write"), ("first check keeping the cache, CPU", "first_cpu"),
                ("  of which digests and cache", "first_reuse")]
        for title, key in rows:
            values = [figure["recheck"][key] if figure["recheck"] else None for figure in figures]
            line = f"  {title:34}" + "".join(f"{value:>{width}.2f} s" if value is not None else f"{'n/a':>{width + 2}}"
                                             for value in values)
            if len(roots) > 1 and None not in values and values[0]:
                line += f"      {values[-1] / values[0]:.2f}x"
            print(line)
        for label, figure in zip(labels, figures):
            recheck = figure["recheck"]
            if recheck is None:
                print(f"  re-check, {label}: n/a (no cache in this code)")
                continue
            same = recheck["findings"] == recheck["fresh"]
            print(f"  re-check, {label}: {' '.join(map(str, sorted(recheck['reused'])))} of {size + APPENDED:,} items reused, "
                  f"findings {'identical to' if same else 'DIFFERENT from'} a fresh check ({', '.join(sorted(recheck['findings']))}"
                  f"{'' if same else ' vs ' + ', '.join(sorted(recheck['fresh']))}); two processes used: {recheck['parallel']}; "
                  f"saved result {recheck['saved_mb']:.1f} MB")
        hashes = set().union(*(figure["findings"] for figure in figures))
        print(f"  findings: {'identical' if len(hashes) == 1 else 'DIFFERENT'} across roots, runs and process counts "
              f"({', '.join(sorted(hashes))}); two processes used: {[figure['parallel'] for figure in figures]}")
        print(f"  by kind: {results[roots[-1], size][0]['by_kind']}")
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for root, label in zip(roots, labels):
            first, last = best(results[root, small]), best(results[root, large])
            print(f"ratio {large:,}/{small:,} items = {large / small:.0f}x, {label}: one process CPU "
                  f"{last['one_cpu'] / first['one_cpu']:.1f}x, wall {last['one_wall'] / first['one_wall']:.1f}x; "
                  f"two processes wall {last['two_wall'] / first['two_wall']:.1f}x")


def compare_datasketch(size: int) -> None:
    """Candidate generation for 64 permutations, 16 bands x 4 rows: ours vs datasketch's MinHash + MinHashLSH."""
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        print("datasketch is not installed: comparison skipped (pip install datasketch to run it)")
        return
    from tools.quality.duplicates import BANDS, NEAR_THRESHOLD, ROWS, candidate_pairs, first_question, minhash_signatures
    from tools.quality.sources import load_doc_context
    from tools.quality.text import char_shingles, normalize_for_shingles

    items = synthetic_items(size, load_doc_context(REPO.joinpath(*SAMPLE_DOCS_FOLDER), "tidewater", 800).slices)[0]
    texts = [normalize_for_shingles(first_question(item)[1]) for item in items]
    started = time.perf_counter()
    ours = candidate_pairs(minhash_signatures(texts))
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    shingles = [[gram.encode("utf-8") for gram in char_shingles(text)] for text in texts]
    hashes = MinHash.bulk(shingles, num_perm=BANDS * ROWS)
    lsh = MinHashLSH(num_perm=BANDS * ROWS, params=(BANDS, ROWS))
    for index, signature in enumerate(hashes):
        lsh.insert(index, signature)
    theirs = {(min(i, j), max(i, j)) for i, signature in enumerate(hashes) for j in lsh.query(signature) if i != j}
    theirs_s = time.perf_counter() - started
    print(f"near-duplicate candidates for {len(items):,} questions: numpy MinHash {ours_s:.2f} s ({len(ours):,} pairs), "
          f"datasketch {theirs_s:.2f} s ({len(theirs):,} pairs); threshold {NEAR_THRESHOLD} verified afterwards either way")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000", help="comma-separated dataset sizes")
    parser.add_argument("--code-root", action="append", type=Path, default=None,
                        help="a checkout whose checks to measure (repeat for side by side; default: this one)")
    parser.add_argument("--runs", type=int, default=1, help="runs per code root and size; the best is shown")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    roots = [root.resolve() for root in (args.code_root or [REPO])]
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"(shared with other sessions: wall time includes waiting for a CPU; CPU time is the checks' processes')")
    results: dict = {}
    for size in sizes:
        for run in range(args.runs):
            for root in roots if run % 2 == 0 else roots[::-1]:  # alternating: neither root always goes first
                measured = measure(root, size)
                results.setdefault((root, size), []).append(measured)
                print(f"  {size:,} items, run {run + 1}, {root}: one process {measured['one']['wall']:.2f} s wall "
                      f"{measured['one']['cpu']:.2f} s CPU, two processes {measured['two']['wall']:.2f} s wall", flush=True)
    report(roots, sizes, results)
    if len(roots) == 1:
        compare_datasketch(sizes[-1])


if __name__ == "__main__":
    main()
