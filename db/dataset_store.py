"""Datasets: one append-only JSON-lines journal per dataset under workdir/dataset/.

Each line of `<name>.jsonl` is one record:
  {"id": ..., "messages": [...], "provenance": {...}}   an item (a later line with the same id replaces it)
  {"deleted": "<id>"}                                     the item is gone
  {"meta": {...}}                                         dataset metadata, merged key by key
  {"event": {...}}                                        a generation event (unit done/failed), kept in order

Appending one item writes one line and never reads or rewrites the file, so its cost does not
grow with the dataset; a process killed mid-write leaves at most one torn last line, which is
ignored on read and cut off before the next append. Edits append too; when dead records
outnumber live ones the journal is compacted with an atomic rewrite.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from schema.dataset import Provenance, first_exchange, validate_messages
from tools.core.errors import UserError
from tools.core.workdir import atomic_write_text, validate_name

SUFFIX = ".jsonl"


def new_item_id() -> str:
    return uuid.uuid4().hex[:12]


def _dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


@dataclass
class DatasetView:
    """The replayed state of one journal."""

    name: str
    items: dict[str, dict] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    records: int = 0  # lines in the journal, live or dead: drives compaction
    torn_tail: bool = False

    @property
    def eval_ids(self) -> set[str]:
        return set((self.meta.get("split") or {}).get("eval_ids") or [])

    def apply(self, record: dict) -> None:
        self.records += 1
        if "meta" in record:
            self.meta.update(record["meta"])
        elif "deleted" in record:
            self.items.pop(record["deleted"], None)
        elif "event" in record:
            self.events.append(record["event"])
        elif "id" in record:
            self.items[record["id"]] = record


@dataclass
class DatasetSummary:
    name: str
    items: int
    train: int
    eval: int
    modified: str
    path: Path


class DatasetStore:
    """All datasets of a work directory. Thread-safe within the process."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._root = self.folder.resolve()
        self._paths: dict[str, Path] = {}
        self._lock = threading.RLock()
        # name -> ((size, mtime_ns), view): replaying a big journal once, not at every page turn.
        self._cache: dict[str, tuple[tuple[int, int], DatasetView]] = {}
        self._tail_checked: set[str] = set()

    # ---- paths and listing ----

    def path(self, name: str) -> Path:
        """The journal of dataset `name`; the name is checked so the path cannot leave the folder."""
        cached = self._paths.get(name)
        if cached is not None:
            return cached
        safe = validate_name(name, "dataset name")
        path = (self._root / f"{safe}{SUFFIX}").resolve()
        if path.parent != self._root:
            raise UserError("error.name_bad_chars", what="dataset name", name=safe, chars="/")
        self._paths[name] = path
        return path

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def names(self) -> list[str]:
        return sorted(p.name[: -len(SUFFIX)] for p in self.folder.glob(f"*{SUFFIX}") if not p.name.startswith("."))

    def list(self) -> list[DatasetSummary]:
        summaries = []
        for name in self.names():
            view = self.load(name)
            eval_count = len(view.eval_ids & view.items.keys())
            path = self.path(name)
            modified = datetime.fromtimestamp(path.stat().st_mtime).isoformat(sep=" ", timespec="seconds")
            summaries.append(DatasetSummary(name, len(view.items), len(view.items) - eval_count, eval_count, modified, path))
        return summaries

    def _require(self, name: str) -> Path:
        path = self.path(name)
        if not path.exists():
            raise UserError("error.not_found", what="dataset", name=name)
        return path

    # ---- reading ----

    def load(self, name: str) -> DatasetView:
        """The dataset's current state, replayed from its journal (cached until the file changes)."""
        with self._lock:
            path = self._require(name)
            stat = path.stat()
            signature = (stat.st_size, stat.st_mtime_ns)
            cached = self._cache.get(name)
            if cached and cached[0] == signature:
                return cached[1]
            view = DatasetView(name=name)
            with open(path, "rb") as handle:
                data = handle.read()
            lines = data.split(b"\n")
            # A file not ending in a newline was cut mid-write: its last line is incomplete.
            view.torn_tail = bool(lines and lines[-1])
            complete = [raw for raw in lines[:-1] if raw.strip()]
            try:
                # One C-level parse of the whole journal is ~2x faster than a call per line.
                records = json.loads(b"[" + b",".join(complete) + b"]")
            except json.JSONDecodeError:
                records = None
            if records is not None:
                for record in records:
                    view.apply(record)
            else:
                for raw in complete:
                    try:
                        view.apply(json.loads(raw))
                    except json.JSONDecodeError:
                        # Only a crash can produce this; skipping keeps the rest usable.
                        view.records += 1
            self._cache[name] = (signature, view)
            return view

    def items(self, name: str) -> list[dict]:
        return list(self.load(name).items.values())

    def count(self, name: str) -> int:
        return len(self.load(name).items)

    def get_item(self, name: str, item_id: str) -> dict:
        item = self.load(name).items.get(item_id)
        if item is None:
            raise UserError("error.item_not_found", name=name, item_id=item_id)
        return item

    def page(self, name: str, page: int, page_size: int) -> tuple[list[dict], int, int]:
        """Items of one page (1-based) plus the total and the page count."""
        view = self.load(name)
        total = len(view.items)
        pages = max(1, math.ceil(total / page_size))
        page = min(max(1, int(page)), pages)
        start = (page - 1) * page_size
        # dict preserves insertion order; islice-like walk avoids copying 50k items per page.
        rows = []
        for index, item in enumerate(view.items.values()):
            if index >= start + page_size:
                break
            if index >= start:
                rows.append(item)
        return rows, total, pages

    def table_rows(self, name: str, page: int, page_size: int, width: int = 160) -> tuple[list[list], int, int, int]:
        """Rows for the management table: id, question, answer, turns, source."""
        rows, total, pages = self.page(name, page, page_size)
        page = min(max(1, int(page)), pages)
        table = []
        for item in rows:
            question, answer = first_exchange(item["messages"])
            turns = sum(1 for m in item["messages"] if m["role"] == "user")
            provenance = item.get("provenance") or {}
            source = " -> ".join(filter(None, [provenance.get("source_doc"), *(provenance.get("heading_path") or [])]))
            table.append([item["id"], _clip(question, width), _clip(answer, width), turns, source or provenance.get("origin") or ""])
        return table, total, page, pages

    # ---- writing ----

    def create(self, name: str, meta: dict | None = None, exist_ok: bool = False) -> Path:
        with self._lock:
            path = self.path(name)
            if path.exists():
                if exist_ok:
                    return path
                raise UserError("error.already_exists", what="dataset", name=name)
            created = {"name": name, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **(meta or {})}
            atomic_write_text(path, _dumps({"meta": created}) + "\n")
            return path

    def _append_lines(self, name: str, records: list[dict]) -> None:
        if not records:
            return
        with self._lock:
            path = self._require(name)
            if name not in self._tail_checked:
                _cut_torn_tail(path)
                self._tail_checked.add(name)
            payload = "".join(_dumps(r) + "\n" for r in records).encode("utf-8")
            cached = self._cache.get(name)
            before = path.stat() if cached else None
            # One write() with O_APPEND: the records land whole at the end even if another
            # process (the CLI generator) appends to the same journal.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
            if cached and before and cached[0] == (before.st_size, before.st_mtime_ns):
                view = cached[1]
                for record in records:
                    view.apply(record)
                after = path.stat()
                self._cache[name] = ((after.st_size, after.st_mtime_ns), view)

    def append_item(self, name: str, messages: list[dict], provenance: dict | Provenance | None = None, item_id: str | None = None) -> dict:
        """Validate and append one item; O(1) in the dataset size."""
        record = {"id": item_id or new_item_id(), "messages": validate_messages(messages), "provenance": _provenance(provenance)}
        self._append_lines(name, [record])
        return record

    def append_items(self, name: str, items: Iterable[tuple[list[dict], dict | None]], event: dict | None = None) -> int:
        """Validate and append items, and `event` after them in the same single write (so a
        generator's unit lands with its completion record or not at all); returns the item count."""
        records = []
        for index, (messages, provenance) in enumerate(items):
            clean = validate_messages(messages, where=f"item {index}")
            records.append({"id": new_item_id(), "messages": clean, "provenance": _provenance(provenance)})
        count = len(records)
        if event is not None:
            records.append({"event": event})
        self._append_lines(name, records)
        return count

    def append_event(self, name: str, event: dict) -> None:
        self._append_lines(name, [{"event": event}])

    def set_meta(self, dataset: str, **meta) -> None:
        """Merge `meta` into the dataset's metadata (one appended line)."""
        self._append_lines(dataset, [{"meta": meta}])

    def update_item(self, name: str, item_id: str, messages: list[dict]) -> dict:
        with self._lock:
            item = self.get_item(name, item_id)
            clean = validate_messages(messages)
            provenance = dict(item.get("provenance") or {})
            provenance["edited_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            record = {"id": item_id, "messages": clean, "provenance": provenance}
            self._append_lines(name, [record])
            self._maybe_compact(name)
            return record

    def delete_item(self, name: str, item_id: str) -> None:
        with self._lock:
            self.get_item(name, item_id)
            self._append_lines(name, [{"deleted": item_id}])
            self._maybe_compact(name)

    def rename(self, old: str, new: str) -> None:
        with self._lock:
            source = self._require(old)
            target = self.path(new)
            if target.exists():
                raise UserError("error.already_exists", what="dataset", name=new)
            os.replace(source, target)
            self._cache.pop(old, None)
            self._tail_checked.discard(old)
            self.set_meta(new, name=new)

    def delete(self, name: str) -> None:
        with self._lock:
            self._require(name).unlink()
            self._cache.pop(name, None)
            self._tail_checked.discard(name)

    def split(self, name: str, eval_ratio: float, seed: int = 42) -> tuple[int, int]:
        """Mark a random `eval_ratio` of the items as the eval split (reproducible with `seed`)."""
        try:
            ratio = float(eval_ratio)
        except (TypeError, ValueError):
            raise UserError("error.not_a_number", field="eval ratio", value=eval_ratio) from None
        if not 0 < ratio < 1:
            raise UserError("error.number_range", field="eval ratio", low=0, high=1, value=eval_ratio)
        ids = list(self.load(name).items.keys())
        eval_count = max(1, round(len(ids) * ratio))
        if len(ids) < 2 or eval_count >= len(ids):
            raise UserError("error.split_too_small", count=len(ids), ratio=ratio)
        chosen = random.Random(int(seed)).sample(ids, eval_count)
        self.set_meta(name, split={"eval_ratio": ratio, "seed": int(seed), "eval_ids": chosen})
        return len(ids) - eval_count, eval_count

    def train_eval(self, name: str) -> tuple[list[dict], list[dict]]:
        view = self.load(name)
        eval_ids = view.eval_ids
        train = [item for item_id, item in view.items.items() if item_id not in eval_ids]
        evaluation = [item for item_id, item in view.items.items() if item_id in eval_ids]
        return train, evaluation

    def compact(self, name: str) -> None:
        """Rewrite the journal with only live records (atomically)."""
        with self._lock:
            view = self.load(name)
            lines = [_dumps({"meta": view.meta})]
            lines += [_dumps({"event": event}) for event in view.events]
            lines += [_dumps(item) for item in view.items.values()]
            atomic_write_text(self.path(name), "\n".join(lines) + "\n")
            self._cache.pop(name, None)

    def _maybe_compact(self, name: str) -> None:
        view = self.load(name)
        live = len(view.items) + len(view.events) + 1
        if view.records - live > max(1000, live):
            self.compact(name)


def _provenance(provenance: dict | Provenance | None) -> dict:
    """Provenance as stored: given fields plus the creation time."""
    if isinstance(provenance, Provenance):
        return provenance.model_dump(exclude_none=True)
    record = dict(provenance or {})
    record.setdefault("created_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return record


def _cut_torn_tail(path: Path) -> None:
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


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
