"""Generation throughput against the OpenAI test server: wall time vs the ideal bound ceil(N/c)*L.

    python -m bench.generation                    # N=256 units, L=0.5 s, c = 1, 8, 32, 64, then c=32 with 20% faults
    python -m bench.generation --latency 0.1      # stress: calls ten times faster than any hosted model answers
    python -m bench.generation --units 512 --latency 0.2 --concurrency 8 32

The server runs in its own process (as a real provider would), so its work does not compete with
the generator for the interpreter lock. Units are synthetic slices written to a temporary dataset.
One unmeasured warm-up run first imports what a long-running workbench has already imported.

Why L = 0.5 s by default: a provider writing a few question/answer pairs takes seconds per call,
so 0.5 s is already a fast provider. At L = 0.1 s the generator's own CPU per call (about 2 ms,
most of it in the openai client) is no longer small next to L, and with 32+ calls in flight on a
2-core machine the figure measures that CPU rather than the concurrency; the column
"generator CPU ms/unit" shows it.
"""

from __future__ import annotations

import argparse
import math
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from db.dataset_store import DatasetStore
from schema.document import DocumentSlice
from schema.prompt import PromptTemplateRecord
from schema.provider import APIProvider
from tools.generation.engine import GenerationSettings, PreparedGeneration, run_generation, unit_outcomes

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def test_server(latency: float, fault_rate: float = 0.0, seed: int = 7):
    port = free_port()
    command = [sys.executable, "-m", "tests.openai_test_server", "--port", str(port), "--latency", str(latency),
               "--fault-rate", str(fault_rate), "--seed", str(seed)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{base_url}/models", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the test server did not start")
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(10)


def synthetic_slices(count: int) -> list[DocumentSlice]:
    slices = []
    for index in range(count):
        heading = ["Bench guide", f"Topic {index}"]
        text = f"Topic {index} explains option opt_{index}, which defaults to {index * 3} and controls stage {index % 17}.\n"
        slices.append(DocumentSlice(slice_id=DocumentSlice.make_id("bench.md", heading, text), source="bench.md",
                                    heading_path=heading, text=text, start_line=index, end_line=index + 1, tokens=30))
    return slices


def run_once(base_url: str, units: int, concurrency: int, store: DatasetStore, dataset: str) -> dict:
    provider = APIProvider(name="bench", base_url=base_url, model_id="bench-model", api_key="k",
                           max_concurrency=512, timeout_s=30)
    template = PromptTemplateRecord(name="bench", content="Write pairs about this excerpt.\n{document_slice}")
    settings = GenerationSettings(concurrency=concurrency, pairs_per_call=2, backoff_base_s=0.1, backoff_max_s=2.0)
    prepared = PreparedGeneration(docs="bench", dataset=dataset, provider=provider, template=template, variables={},
                                  settings=settings, slices=synthetic_slices(units), store=store)
    import openai  # noqa: F401  (imported before the clock starts, as in a long-running app)

    started, cpu_started = time.perf_counter(), time.process_time()
    final = run_generation(prepared)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    done, failed = unit_outcomes(store.load(dataset).events, {unit.key for unit in prepared.units})
    return {"wall": wall, "cpu_ms_per_unit": 1000 * cpu / units, "done": done, "failed": failed, "lost": units - done - failed, "retries": final.retries,
            "items": final.items, "failures": final.failures}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per call on the server")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of faulty replies in the last row")
    parser.add_argument("--fault-concurrency", type=int, default=32)
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        store = DatasetStore(Path(folder))
        with test_server(args.latency) as base_url:
            run_once(base_url, max(args.concurrency), max(args.concurrency), store, "bench-warmup")
            for index, concurrency in enumerate(args.concurrency):
                result = run_once(base_url, args.units, concurrency, store, f"bench-{index}-c{concurrency}")
                rows.append((concurrency, "0%", result))
                print(f"c={concurrency}: {result['wall']:.2f} s", file=sys.stderr, flush=True)
        if args.fault_rate:
            with test_server(args.latency, args.fault_rate) as base_url:
                result = run_once(base_url, args.units, args.fault_concurrency, store, "bench-faults")
                rows.append((args.fault_concurrency, f"{args.fault_rate:.0%}", result))

    print(f"\nN = {args.units} units, L = {args.latency} s per call, 2 pairs per call\n")
    print("| concurrency | faults | wall (s) | bound ceil(N/c)*L (s) | wall / bound | done | failed | lost | retries | generator CPU ms/unit |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for concurrency, faults, r in rows:
        bound = math.ceil(args.units / concurrency) * args.latency
        print(f"| {concurrency} | {faults} | {r['wall']:.2f} | {bound:.2f} | {r['wall'] / bound:.2f} | {r['done']} | "
              f"{r['failed']} | {r['lost']} | {r['retries']} | {r['cpu_ms_per_unit']:.1f} |")
    faulty = [r for _, faults, r in rows if faults != "0%"]
    if faulty and faulty[0]["failures"]:
        print("\nfailed units by reason (faulty run): " + ", ".join(f"{k} {v}" for k, v in sorted(faulty[0]["failures"].items())))


if __name__ == "__main__":
    main()
