"""Judge scoring throughput against the OpenAI test server: wall time vs the ideal bound ceil(N/c)*L.

    python -m bench.judge                      # N=256 items, L=0.5 s, c = 32, then c=32 with 20% faults
    python -m bench.judge --latency 0.1        # stress: calls five times faster than a hosted judge answers
    python -m bench.judge --items 512 --concurrency 8 32 64

The server (tests/openai_test_server.py, playing judge) runs in its own process, as in bench.generation,
whose server setup this reuses. Items are synthetic question/answer pairs, each with a synthetic source
slice, written to a temporary dataset; their scores go to its score sidecar as in a real run. One
unmeasured warm-up run first imports what a long-running workbench has already imported.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

from bench.generation import synthetic_slices, test_server
from db.dataset_store import DatasetStore
from db.score_store import ScoreStore
from schema.dataset import qa_messages
from schema.provider import APIProvider
from tools.quality.judge import BUILTIN_TEMPLATES, JudgeSettings, PreparedJudge, run_judge
from schema.prompt import PromptTemplateRecord


def synthetic_dataset(store: DatasetStore, name: str, count: int) -> dict:
    """A dataset of `count` generated-looking items, one per synthetic slice; returns slice id -> slice."""
    slices = synthetic_slices(count)
    store.create(name, meta={"generated_from": {"docs": "bench", "max_slice_tokens": 1024}})
    items = []
    for index, document_slice in enumerate(slices):
        question = f"What does option opt_{index} control, and what is its default?"
        answer = f"Option opt_{index} controls stage {index % 17} and defaults to {index * 3}."
        items.append((qa_messages(question, answer), {"origin": "generated", "unit": f"{document_slice.slice_id}:1",
                                                      "source_doc": document_slice.source}))
    store.append_items(name, items)
    return {s.slice_id: s for s in slices}


def run_once(base_url: str, items: int, concurrency: int, folder: Path, dataset: str) -> dict:
    store, scores = DatasetStore(folder), ScoreStore(folder)
    sources = synthetic_dataset(store, dataset, items)
    provider = APIProvider(name="bench", base_url=base_url, model_id="bench-judge", api_key="k",
                           max_concurrency=512, timeout_s=30)
    _, description, content = BUILTIN_TEMPLATES["judge-default-en"]
    prepared = PreparedJudge(dataset=dataset, provider=provider,
                             template=PromptTemplateRecord(name="judge-default-en", description=description, content=content),
                             lang="en", settings=JudgeSettings(concurrency=concurrency, backoff_base_s=0.1, backoff_max_s=2.0),
                             store=store, scores=scores, sources=sources)
    import openai  # noqa: F401  (imported before the clock starts, as in a long-running app)

    started, cpu_started = time.perf_counter(), time.process_time()
    final = run_judge(prepared)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    latest = scores.load(dataset).latest
    recorded = sum(1 for record in latest.values() if record.get("status") == "scored")
    return {"wall": wall, "cpu_ms_per_item": 1000 * cpu / items, "scored": final.scored, "unscored": final.unscored,
            "recorded": recorded, "lost": items - final.scored - final.unscored, "retries": final.retries,
            "failures": final.failures, "status": final.status}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per call on the server")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32])
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of faulty replies in the last row (0: no such row)")
    parser.add_argument("--fault-concurrency", type=int, default=32)
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        with test_server(args.latency) as base_url:
            run_once(base_url, max(args.concurrency), max(args.concurrency), folder, "bench-warmup")
            for index, concurrency in enumerate(args.concurrency):
                result = run_once(base_url, args.items, concurrency, folder, f"bench-{index}-c{concurrency}")
                rows.append((concurrency, "0%", result))
                print(f"c={concurrency}: {result['wall']:.2f} s", file=sys.stderr, flush=True)
        if args.fault_rate:
            with test_server(args.latency, args.fault_rate) as base_url:
                result = run_once(base_url, args.items, args.fault_concurrency, folder, "bench-faults")
                rows.append((args.fault_concurrency, f"{args.fault_rate:.0%}", result))

    print(f"\nN = {args.items} items, L = {args.latency} s per call, goal: wall <= 1.2 x bound without faults\n")
    print("| concurrency | faults | wall (s) | bound ceil(N/c)*L (s) | wall / bound | scored | unscored | lost | retries | judge CPU ms/item |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for concurrency, faults, r in rows:
        bound = math.ceil(args.items / concurrency) * args.latency
        print(f"| {concurrency} | {faults} | {r['wall']:.2f} | {bound:.2f} | {r['wall'] / bound:.2f} | {r['scored']} | "
              f"{r['unscored']} | {r['lost']} | {r['retries']} | {r['cpu_ms_per_item']:.1f} |")
    faulty = [r for _, faults, r in rows if faults != "0%"]
    if faulty and faulty[0]["failures"]:
        print("\nunscored items by reason (faulty run): " + ", ".join(f"{k} {v}" for k, v in sorted(faulty[0]["failures"].items())))


if __name__ == "__main__":
    main()
