"""Dataset store benchmark: append cost vs dataset size, and time to the first page of a big dataset.

Run: .venv/bin/python -m bench.dataset_store
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from db.dataset_store import DatasetStore
from schema.dataset import qa_messages


def realistic_item(i: int) -> tuple[list[dict], dict]:
    question = f"In tidewater 2.3, what does RetryPolicy(max_attempts={i % 7}) do when stage #{i} times out?"
    answer = ("It retries the stage with exponential backoff starting at backoff_base=1.5 s, doubling each time, "
              "capped at max_backoff=60 s, and raises TW-1202 once the attempts are exhausted. ") * 2
    return qa_messages(question, answer), {"source_doc": "api/pipeline.md", "heading_path": ["API", "RetryPolicy"], "provider": "bench", "model": "m"}


def fill(store: DatasetStore, name: str, count: int) -> None:
    store.append_items(name, (realistic_item(i) for i in range(count)))


def time_appends(store: DatasetStore, name: str, count: int) -> float:
    items = [realistic_item(i) for i in range(count)]
    started = time.perf_counter()
    for messages, provenance in items:
        store.append_item(name, messages, provenance)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = DatasetStore(Path(tmp))
        store.create("ten-k")
        total_10k = time_appends(store, "ten-k", 10_000)
        print(f"10,000 appends one at a time: {total_10k:.2f} s total, {total_10k / 10_000 * 1e6:.0f} µs each\n")

        print("| items already in the dataset | µs per append (mean of 1,000) |")
        print("| --- | --- |")
        for size in (1_000, 10_000, 50_000):
            name = f"size-{size}"
            store.create(name)
            fill(store, name, size)
            per_append = time_appends(store, name, 1_000) / 1_000
            print(f"| {size:,} | {per_append * 1e6:.0f} |")

        fresh = DatasetStore(Path(tmp))  # cold: nothing cached, as after a restart
        started = time.perf_counter()
        rows, total, page, pages = fresh.table_rows("size-50000", 1, 20)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        fresh.table_rows("size-50000", 1000, 20)
        warm = time.perf_counter() - started
        size_mb = fresh.path("size-50000").stat().st_size / 1e6
        print(f"\nfirst page of a {total:,}-item dataset ({size_mb:.0f} MB): {cold:.2f} s cold, later pages {warm * 1000:.0f} ms")


if __name__ == "__main__":
    main()
