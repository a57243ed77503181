"""Dataset versions benchmark: list, diff, view_at and restore on a 50,000-item dataset with several versions.

The dataset is built like the app builds it: a generation run of 50,000 items (one version), 300 item
edits and 200 deletes (a version each), a split, a bulk filter, and a second generation run of 2,000
items. "cold" is a fresh store (nothing cached, as after a restart); "warm" is the same store again.

Run: .venv/bin/python -m bench.versions [--items N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.dataset_store import realistic_item
from db.dataset_store import DatasetStore
from schema.dataset import qa_messages

NAME = "big"


def generation_run(store: DatasetStore, count: int, start: int, unit: int = 100) -> None:
    """Items written unit by unit like the engine does, between begin_version and end_version."""
    run = store.begin_version(NAME, "generation", docs="bench")
    for first in range(start, start + count, unit):
        store.append_items(NAME, (realistic_item(i) for i in range(first, min(first + unit, start + count))),
                           event={"type": "unit_done", "unit": f"u:{first}"})
    store.end_version(NAME, run, status="finished", new_items=count)


def build(store: DatasetStore, items: int) -> None:
    store.create(NAME)
    generation_run(store, items, 0)
    ids = list(store.load(NAME).items)
    for index, item_id in enumerate(ids[:300]):
        store.update_item(NAME, item_id, qa_messages(f"edited question {index}?", f"edited answer {index}"))
    for item_id in ids[1000:1200]:
        store.delete_item(NAME, item_id)
    store.split(NAME, 0.1, seed=1)
    with store.changes(NAME, "filter", min_score=7):
        for item_id in ids[2000:2500]:
            store.delete_item(NAME, item_id)
    generation_run(store, 2_000, items)


def timed(action):
    """(result, wall seconds, CPU seconds of this process): on a shared machine the two differ."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, (time.perf_counter() - started, time.process_time() - cpu)


def cell(seconds: tuple[float, float]) -> str:
    return f"{seconds[0]:.4f} | {seconds[1]:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _, build_s = timed(lambda: build(DatasetStore(folder), args.items))
        store = DatasetStore(folder)
        size_mb = store.path(NAME).stat().st_size / 1e6
        versions, list_cold = timed(lambda: store.versions(NAME))
        _, list_warm = timed(lambda: store.versions(NAME))
        first_run = next(v["n"] for v in versions if v["kind"] == "generation")
        latest = versions[-1]["n"]
        print(f"{args.items:,} items + a 2,000-item run, {len(versions)} versions, journal {size_mb:.0f} MB "
              f"(built in {build_s[0]:.1f} s)\n")
        print("| operation | wall s | CPU s |")
        print("| --- | --- | --- |")
        print(f"| list versions, cold (reads only the version lines) | {cell(list_cold)} |")
        print(f"| list versions, warm | {cell(list_warm)} |")

        fresh = DatasetStore(folder)
        diff, diff_cold = timed(lambda: fresh.diff(NAME, first_run, latest))
        _, diff_warm = timed(lambda: fresh.diff(NAME, first_run, latest))
        print(f"| diff v{first_run} → v{latest}, cold (parses only what changed between them) | {cell(diff_cold)} |")
        print(f"| diff v{first_run} → v{latest}, warm | {cell(diff_warm)} |")
        middle = versions[len(versions) // 2]["n"]
        _, view_cold = timed(lambda: DatasetStore(folder).view_at(NAME, middle))
        _, view_warm = timed(lambda: fresh.view_at(NAME, middle))
        _, view_again = timed(lambda: fresh.view_at(NAME, middle))
        print(f"| view_at v{middle}, cold | {cell(view_cold)} |")
        print(f"| view_at v{middle}, store already loaded | {cell(view_warm)} |")
        print(f"| view_at v{middle}, again (cached) | {cell(view_again)} |")
        restored, restore_s = timed(lambda: fresh.restore(NAME, first_run))
        print(f"| restore v{first_run} (as v{restored['n']}) | {cell(restore_s)} |")
        grown = fresh.path(NAME).stat().st_size / 1e6 - size_mb
        print(f"\ndiff: {len(diff['added'])} added, {len(diff['removed'])} removed, {len(diff['changed'])} changed, "
              f"{len(diff['to_eval'])} moved to eval; the restore appended {grown:.2f} MB")


if __name__ == "__main__":
    main()
