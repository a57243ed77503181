"""Dataset checks without an LLM: time of all checks on synthetic datasets of 5,000 and 50,000 items
(realistic lengths, sources from the sample doc set, some duplicates, near-duplicates, leaks and
secrets), in one process and in two (what run_checks does by itself from 20,000 items on a machine
with two CPUs), and the ratio (linear growth means ~10x). Also compares our numpy MinHash with datasketch's
when datasketch is installed (it is not a requirement).

Run: .venv/bin/python -m bench.quality [--sizes 5000,50000]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

from tools.core.workdir import SAMPLE_DOCS_SOURCE
from tools.quality.checks import run_checks
from tools.quality.duplicates import BANDS, ROWS, NEAR_THRESHOLD, candidate_pairs, first_question, minhash_signatures
from tools.quality.sources import load_doc_context
from tools.quality.text import char_shingles, normalize_for_shingles

SAMPLE_DOCS = SAMPLE_DOCS_SOURCE / "tidewater"
SECRETS = ["Set OPENAI_API_KEY=sk-proj-4fJ2kQz9Lm8Xc1Vb7Nn0Pq3Rs6Tu5Wy2Za4Bd8Ef before running.",
           "The staging database is postgres://deploy:Qv7#pLx9zR2@pg.internal.corp:5432/tides.",
           "Ask jane.doe@acme-corp.com for access to the cache on 10.12.4.7.",
           "aws_access_key_id = AKIAQ3EGRZ7XK4M2PB5D"]
OPENERS = ["What does", "How do I use", "Why would I call", "When should I configure", "Explain", "What happens with"]
ENDINGS = ["in tidewater?", "when a stage fails?", "for a nightly report tide?", "with max_workers set to {n}?",
           "if the scheduler lock is held?", "during a dry run?"]


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


def time_checks(items, eval_ids, context, parallel: bool) -> tuple[float, float, dict]:
    """Wall time, CPU time (this process and the child it forked) and the result of one run of the checks."""
    wall, before = time.perf_counter(), os.times()
    result = run_checks(items, eval_ids, context, parallel=parallel)
    after = os.times()
    cpu = sum(getattr(after, field) - getattr(before, field) for field in ("user", "system", "children_user", "children_system"))
    return time.perf_counter() - wall, cpu, result


def compare_datasketch(items) -> None:
    """Candidate generation for 64 permutations, 16 bands x 4 rows: ours vs datasketch's MinHash + MinHashLSH."""
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        print("datasketch is not installed: comparison skipped (pip install datasketch to run it)")
        return
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
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    docs = SAMPLE_DOCS
    context = load_doc_context(docs, "tidewater", 800)
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"(shared with other sessions: wall time includes waiting for a CPU; CPU time is this process's and its child's)")
    # Warm-up: imports (detect-secrets), regex compilation, first-use tables.
    warm_items, warm_eval = synthetic_items(200, context.slices)
    run_checks(warm_items, warm_eval, context, parallel=False)
    measured = {}
    for size in sizes:
        items, eval_ids = synthetic_items(size, context.slices)
        for parallel in (False, True):
            wall, cpu, result = time_checks(items, eval_ids, context, parallel)
            measured[size, parallel] = (wall, cpu)
            timings = ", ".join(f"{name} {seconds:.2f}" for name, seconds in result["timings_s"].items())
            how = "two processes" if result["parallel"] else "one process  "
            print(f"{size:>7,} items, {how}: all checks {wall:.2f} s wall, {cpu:.2f} s CPU  ({timings})")
        print(f"         findings: {result['summary']['by_kind']}")
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for parallel in (False, True):
            print(f"ratio {large:,}/{small:,} items = {large / small:.0f}x, {'two processes' if parallel else 'one process'}: "
                  f"wall {measured[large, parallel][0] / measured[small, parallel][0]:.1f}x, "
                  f"CPU {measured[large, parallel][1] / measured[small, parallel][1]:.1f}x")
    compare_datasketch(synthetic_items(sizes[-1], context.slices)[0])


if __name__ == "__main__":
    main()
