"""A dataset's journal as bytes and what it replays to: its record format is described in db.dataset_store.

Pure functions over a journal's bytes (parse, replay up to any versions, the version lines' offsets, the
diff between two versions) and the replayed state itself (DatasetView); db.dataset_store reads and writes
the files under their locks and calls these.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable


def dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


@dataclass
class DatasetView:
    """The replayed state of one journal (or of its prefix up to a version line)."""

    name: str
    items: dict[str, dict] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    records: int = 0  # lines in the journal, live or dead
    torn_tail: bool = False
    versions: list[dict] = field(default_factory=list)  # the version records, in order
    offsets: dict[int, int] = field(default_factory=dict)  # version n -> byte offset just past its line
    tail_changes: int = 0  # records changing the data (items, deletions, splits) after the last version line
    tail_begin: dict | None = None  # the latest begin record after the last version line
    open_runs: dict[str, dict] = field(default_factory=dict)  # run token -> begin record, until its run ends
    inode: int = 0  # of the file replayed: offsets are only good for it

    @property
    def eval_ids(self) -> set[str]:
        return set((self.meta.get("split") or {}).get("eval_ids") or [])

    @property
    def last_version(self) -> int:
        return self.versions[-1]["n"] if self.versions else 0

    def counts(self) -> dict[str, int]:
        eval_count = sum(1 for item_id in self.eval_ids if item_id in self.items)
        return {"items": len(self.items), "train": len(self.items) - eval_count, "eval": eval_count}

    def apply(self, record: dict) -> None:
        self.records += 1
        if "meta" in record:
            self.meta.update(record["meta"])
            if "split" in record["meta"]:
                self.tail_changes += 1
        elif "deleted" in record:
            self.items.pop(record["deleted"], None)
            self.tail_changes += 1
        elif "event" in record:
            self.events.append(record["event"])
        elif "id" in record:
            self.items[record["id"]] = record
            self.tail_changes += 1
        elif "version" in record:
            version = record["version"]
            self.versions.append(version)
            if version.get("run") and not version.get("partial"):
                self.open_runs.pop(version["run"], None)
            self.tail_changes, self.tail_begin = 0, None
        elif "begin" in record:
            begin = record["begin"]
            # One run of a kind at a time (generation holds the writer lock): an older open run of this
            # kind was killed and is over.
            for token in [t for t, b in self.open_runs.items() if b.get("kind") == begin.get("kind")]:
                del self.open_runs[token]
            self.open_runs[begin.get("run")] = begin
            self.tail_begin = begin

    def tail_label(self) -> dict:
        """What made the records after the last version line: the run that began them (or is still
        open), else "legacy" (a journal from before versions) or "unrecorded" (a raw append)."""
        begin = self.tail_begin or (next(reversed(self.open_runs.values())) if self.open_runs else None)
        if begin:
            return {"kind": begin.get("kind") or "unrecorded", "details": dict(begin.get("details") or {}),
                    "run": begin.get("run")}
        return {"kind": "unrecorded" if self.versions else "legacy", "details": {}}

    def snapshot(self) -> "DatasetView":
        """A copy whose items and metadata later replay does not change (records are shared, never mutated)."""
        return DatasetView(name=self.name, items=dict(self.items), meta=dict(self.meta), events=list(self.events),
                           records=self.records, versions=list(self.versions), offsets=dict(self.offsets))



VERSION_LINE = b'{"version":'


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse_records(data: bytes) -> tuple[list, bool]:
    """The complete records of a journal's bytes (None for a line only a crash can produce) and
    whether the last line is torn (a file not ending in a newline was cut mid-write)."""
    lines = data.split(b"\n")
    torn = bool(lines and lines[-1])
    complete = [raw for raw in lines[:-1] if raw.strip()]
    try:
        # One C-level parse of the whole journal is ~2x faster than a call per line.
        return json.loads(b"[" + b",".join(complete) + b"]"), torn
    except json.JSONDecodeError:
        records = []
        for raw in complete:
            try:
                records.append(json.loads(raw))
            except json.JSONDecodeError:
                records.append(None)
        return records, torn


def replay(name: str, data: bytes, stop_at: Iterable[int] = ()) -> tuple[DatasetView, dict[int, DatasetView]]:
    """Replay a journal's bytes; also snapshots of the state at each version of `stop_at`."""
    records, torn = parse_records(data)
    view = DatasetView(name=name, torn_tail=torn)
    wanted, snapshots = set(stop_at), {}
    for record in records:
        if not isinstance(record, dict):
            view.records += 1  # skipping a crash's garbage keeps the rest usable
            continue
        view.apply(record)
        if wanted and "version" in record and record["version"].get("n") in wanted:
            snapshots[record["version"]["n"]] = view.snapshot()
    view.offsets = version_offsets(data)
    return view, snapshots


def line_starts(data: bytes, prefix: bytes) -> Iterable[int]:
    """Where lines beginning with `prefix` start (a C-level search)."""
    if data.startswith(prefix):
        yield 0
    position = data.find(b"\n" + prefix)
    while position >= 0:
        yield position + 1
        position = data.find(b"\n" + prefix, position + 1)


def light_replay(name: str, data: bytes) -> DatasetView | None:
    """A view with the versions, offsets, open runs and pending tail of a journal, parsing only its
    version and begin lines and the records after the last version line; None without version lines."""
    entries = []
    for prefix in (VERSION_LINE, b'{"begin":'):
        for start in line_starts(data, prefix):
            end = data.find(b"\n", start)
            if end < 0:
                continue  # a torn last line
            try:
                entries.append((start, end + 1, json.loads(data[start:end])))
            except json.JSONDecodeError:
                continue
    entries.sort(key=lambda entry: entry[0])
    last = max((i for i, entry in enumerate(entries) if "version" in entry[2]), default=None)
    if last is None:
        return None
    view = DatasetView(name=name)
    for _start, end, record in entries[: last + 1]:
        view.apply(record)
        if "version" in record:
            view.offsets[record["version"]["n"]] = end
    records, view.torn_tail = parse_records(data[entries[last][1]:])
    for record in records:
        if isinstance(record, dict):
            view.apply(record)
    return view


def diff_views(old: DatasetView, new: DatasetView) -> dict:
    """A diff from two replayed views (the general way; `diff_between` is the fast one)."""
    added = [item for item_id, item in new.items.items() if item_id not in old.items]
    removed = [item for item_id, item in old.items.items() if item_id not in new.items]
    changed = []
    for item_id, item in new.items.items():
        before = old.items.get(item_id)
        if before is not None and before is not item and before != item:
            changed.append({"id": item_id, "old": before, "new": item})
    old_eval, new_eval = old.eval_ids, new.eval_ids
    kept = [item for item_id, item in new.items.items() if item_id in old.items]
    return {
        "counts": {"a": old.counts(), "b": new.counts()},
        "added": added, "removed": removed, "changed": changed,
        "to_eval": [item for item in kept if item["id"] in new_eval and item["id"] not in old_eval],
        "to_train": [item for item in kept if item["id"] in old_eval and item["id"] not in new_eval],
        "splits": {"a": old.meta.get("split"), "b": new.meta.get("split")},
    }


def diff_between(data: bytes, index: DatasetView, a: int, b: int) -> dict | None:
    """The diff of versions `a` and `b` from the journal's bytes without replaying it: one pass over the
    lines finds each item's last record before either version's offset; only the records of items
    touched between the two, and the split lines, are parsed. None when a line is not in the store's
    own form (an item line not starting with its id), so the caller replays instead."""
    complete = data.rfind(b"\n") + 1
    offset_a, offset_b = (index.offsets.get(n, complete) for n in (a, b))
    low, high = sorted((offset_a, offset_b))
    lines = data[:high].split(b"\n")[:-1]
    low_line = data.count(b"\n", 0, low)
    # id -> 1 + the line of its last record before the offset, negative for a deletion
    last = ({}, {})
    touched: dict[bytes, None] = {}
    splits = [None, None]
    other = (b'{"event":', b'{"version":', b'{"begin":')
    for number, line in enumerate(lines):
        if line.startswith(b'{"id":"'):
            ident, mark = line[7:line.find(b'"', 7)], number + 1
        elif line.startswith(b'{"deleted":"'):
            ident, mark = line[12:line.find(b'"', 12)], -(number + 1)
        elif line.startswith(b'{"meta":'):
            if b'"split"' in line:
                try:
                    meta = json.loads(line)["meta"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    return None
                if "split" in meta:
                    splits[1] = meta["split"]
                    if number < low_line:
                        splits[0] = meta["split"]
            continue
        elif line.startswith(other):
            continue
        else:
            return None
        if b"\\" in ident:
            return None
        last[1][ident] = mark
        if number < low_line:
            last[0][ident] = mark
        else:
            touched[ident] = None

    def record(mark: int | None) -> dict | None:
        return json.loads(lines[mark - 1]) if mark and mark > 0 else None

    try:
        sides = []
        for side in (0, 1):
            alive = {ident for ident, mark in last[side].items() if mark > 0}
            eval_ids = {i.encode() for i in (splits[side] or {}).get("eval_ids") or []}
            records = {ident: record(last[side].get(ident)) for ident in touched}
            sides.append((records, alive, eval_ids, splits[side], last[side]))
    except json.JSONDecodeError:
        return None
    old, new = sides if offset_a <= offset_b else sides[::-1]
    (old_records, old_alive, old_eval, old_split, _), (new_records, new_alive, new_eval, new_split, new_last) = old, new

    def counts(alive: set, eval_ids: set) -> dict[str, int]:
        eval_count = len(eval_ids & alive)
        return {"items": len(alive), "train": len(alive) - eval_count, "eval": eval_count}

    def moved(ids: set) -> list[dict]:
        ordered = sorted(ids & old_alive & new_alive, key=lambda i: new_last[i])
        return [new_records[i] if i in new_records else record(new_last[i]) for i in ordered]

    return {
        "counts": {"a": counts(old_alive, old_eval), "b": counts(new_alive, new_eval)},
        "added": [new_records[i] for i in touched if old_records[i] is None and new_records[i] is not None],
        "removed": [old_records[i] for i in touched if old_records[i] is not None and new_records[i] is None],
        "changed": [{"id": new_records[i]["id"], "old": old_records[i], "new": new_records[i]} for i in touched
                    if old_records[i] is not None and new_records[i] is not None and old_records[i] != new_records[i]],
        "to_eval": moved(new_eval - old_eval),
        "to_train": moved(old_eval - new_eval),
        "splits": {"a": old_split, "b": new_split},
    }


def version_offsets(data: bytes) -> dict[int, int]:
    """Version n -> the byte offset just past its line: a C-level search for version lines (JSON
    strings escape newlines, so only a record can start a line with them)."""
    offsets: dict[int, int] = {}
    start = 0 if data.startswith(VERSION_LINE) else -1
    position = 0
    while True:
        if start < 0:
            found = data.find(b"\n" + VERSION_LINE, position)
            if found < 0:
                break
            start = found + 1
        end = data.find(b"\n", start)
        if end < 0:
            break  # a torn last line
        try:
            offsets[int(json.loads(data[start:end])["version"]["n"])] = end + 1
        except (ValueError, KeyError, TypeError):
            pass
        position, start = end, -1
    return offsets


def counts_after(view: DatasetView, records: list[dict]) -> dict[str, int]:
    """The counts of `view` once `records` are applied, without copying its items."""
    added: set[str] = set()
    removed: set[str] = set()
    split = None
    for record in records:
        if "id" in record:
            removed.discard(record["id"])
            if record["id"] not in view.items:
                added.add(record["id"])
        elif "deleted" in record:
            added.discard(record["deleted"])
            if record["deleted"] in view.items:
                removed.add(record["deleted"])
        elif "meta" in record and "split" in record["meta"]:
            split = record["meta"]["split"] or {}
    eval_ids = view.eval_ids if split is None else set(split.get("eval_ids") or [])
    total = len(view.items) + len(added) - len(removed)
    eval_count = sum(1 for i in eval_ids if i in added or (i in view.items and i not in removed))
    return {"items": total, "train": total - eval_count, "eval": eval_count}


def cut_torn_tail(path: Path) -> None:
    """Drop an incomplete last line left by a killed writer, so the next append starts clean."""
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb+") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        # Walk back to the previous newline in chunks; the torn line is at most one record long.
        position = size
        while position > 0:
            step = min(65536, position)
            position -= step
            handle.seek(position)
            chunk = handle.read(step)
            cut = chunk.rfind(b"\n")
            if cut != -1:
                handle.truncate(position + cut + 1)
                return
        handle.truncate(0)


