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

Between processes (the page, `generate`, `datasets import`): every change of a journal (append, edit,
compaction, creation) holds its journal lock `.<name>.jsonl.lock` for the moment it takes, and an
append opens the file only once it holds it, so a compaction that replaces the file can never drop
an append of another process. A long writer (a generation run, an import) also holds the writer
lock `.<name>.writer.lock` for its whole run: a second one is refused with who holds it. An import
writes a hidden temp journal and moves it into place when complete: all or nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
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
from tools.core.workdir import FileLock, atomic_write_text, temp_beside, validate_name

SUFFIX = ".jsonl"
# How long a change waits for another process's hold of the journal (a compaction takes about a
# second per 50,000 items) before it gives up naming the holder.
JOURNAL_LOCK_WAIT_S = 60.0
# Items an import validates and writes at a time.
IMPORT_BATCH = 2000


def new_item_id() -> str:
    return uuid.uuid4().hex[:12]


def _dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def item_version(item: dict) -> str:
    """A fingerprint of an item as stored: any save of it, anywhere, changes it (the editor's conflict check)."""
    return hashlib.sha256(_dumps(item).encode("utf-8")).hexdigest()[:16]


def _signature(stat: os.stat_result) -> tuple[int, int, int]:
    # The inode too: a compaction by another process replaces the file.
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


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
        # name -> ((size, mtime_ns, inode), view): replaying a big journal once, not at every page turn.
        self._cache: dict[str, tuple[tuple[int, int, int], DatasetView]] = {}
        self._journal_locks: dict[str, FileLock] = {}

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

    # ---- locks between processes ----

    def writer_lock(self, name: str) -> FileLock:
        """The lock a long writer (a generation run, an import) holds on dataset `name` for its whole run;
        `acquire()` it: a second writer, in any process, is refused with the holder's pid and command."""
        path = self.path(name)
        return FileLock(path.parent / f".{path.name[: -len(SUFFIX)]}.writer.lock", "error.lock_dataset", name=name)

    @contextlib.contextmanager
    def _journal(self, name: str):
        """Hold the journal of `name` against every other change: threads of this process (the store's
        lock) and other processes (its flock, waited for up to JOURNAL_LOCK_WAIT_S)."""
        with self._lock:
            lock = self._journal_locks.get(name)
            if lock is None:
                path = self.path(name)
                lock = FileLock(path.parent / f".{path.name}.lock", "error.lock_journal", keep_open=True,
                                name=name, seconds=int(JOURNAL_LOCK_WAIT_S))
                self._journal_locks[name] = lock
            lock.acquire(JOURNAL_LOCK_WAIT_S)
            try:
                yield
            finally:
                lock.release()

    def _forget_locks(self, name: str, *locks: FileLock) -> None:
        """A dataset that is gone (deleted, renamed away) keeps no lock files: removed as they are released."""
        journal = self._journal_locks.pop(name, None)
        for lock in (journal, *locks):
            if lock is not None:
                lock.remove_on_release = True

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
            signature = _signature(path.stat())
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
        with self._journal(name):
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
        payload = "".join(_dumps(r) + "\n" for r in records).encode("utf-8")
        with self._journal(name):
            # Opened only now that the journal is ours: a compaction by another process may have
            # replaced the file since this process last wrote to it.
            fd = os.open(self._require(name), os.O_RDWR | os.O_APPEND)
            try:
                before = os.fstat(fd)
                # No live writer can be mid-line while we hold the lock: a last line without its
                # newline was torn by a killed one. Cut it, or our record would be glued to it.
                if before.st_size and os.pread(fd, 1, before.st_size - 1) != b"\n":
                    _cut_torn_tail(self.path(name))
                    before = os.fstat(fd)
                written = 0
                while written < len(payload):
                    written += os.write(fd, payload[written:])
                after = os.fstat(fd)
            finally:
                os.close(fd)
            cached = self._cache.get(name)
            if cached and cached[0] == _signature(before):
                view = cached[1]
                for record in records:
                    view.apply(record)
                self._cache[name] = (_signature(after), view)

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

    def update_item(self, name: str, item_id: str, messages: list[dict], expected: str | None = None) -> dict:
        """Replace the messages of an item. With `expected` (its `item_version` when the editor opened it),
        a save over a change made since (another browser, another process) is refused, not lost silently."""
        with self._journal(name):
            try:
                item = self.get_item(name, item_id)
            except UserError:
                if expected is None:
                    raise
                raise UserError("error.item_changed_elsewhere", name=name, item_id=item_id) from None
            if expected is not None and item_version(item) != expected:
                raise UserError("error.item_changed_elsewhere", name=name, item_id=item_id)
            clean = validate_messages(messages)
            provenance = dict(item.get("provenance") or {})
            provenance["edited_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            record = {"id": item_id, "messages": clean, "provenance": provenance}
            self._append_lines(name, [record])
            self._maybe_compact(name)
            return record

    def delete_item(self, name: str, item_id: str) -> None:
        with self._journal(name):
            self.get_item(name, item_id)
            self._append_lines(name, [{"deleted": item_id}])
            self._maybe_compact(name)

    def rename(self, old: str, new: str) -> None:
        """Refused while a writer (a generation run, an import) holds either name, in any process."""
        self._require(old)
        if self.path(new).exists():
            raise UserError("error.already_exists", what="dataset", name=new)
        with contextlib.ExitStack() as held:
            writers = {n: held.enter_context(self.writer_lock(n).acquire()) for n in sorted({old, new})}
            for n in sorted({old, new}):  # one order for every process: no deadlock
                held.enter_context(self._journal(n))
            source, target = self._require(old), self.path(new)
            if target.exists():
                raise UserError("error.already_exists", what="dataset", name=new)
            os.replace(source, target)
            self._cache.pop(old, None)
            self.set_meta(new, name=new)
            self._forget_locks(old, writers[old])

    def delete(self, name: str) -> None:
        """Refused while a writer (a generation run, an import) holds it, in any process."""
        self._require(name)
        with self.writer_lock(name).acquire() as writer, self._journal(name):
            self._require(name).unlink()
            self._cache.pop(name, None)
            self._forget_locks(name, writer)

    def import_items(self, name: str, conversations: Iterable[list[dict]], meta: dict | None = None,
                     provenance: dict | None = None) -> int:
        """Create dataset `name` from `conversations` (an iterable: a streaming reader is welcome), all or
        nothing: the journal is written aside under a hidden temp name and moved into place when complete,
        so an import that fails or is killed leaves no dataset. Returns the item count."""
        path = self.path(name)
        if path.exists():
            raise UserError("error.already_exists", what="dataset", name=name)
        with self.writer_lock(name).acquire():
            if path.exists():
                raise UserError("error.already_exists", what="dataset", name=name)
            created = {"name": name, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **(meta or {})}
            stamp = _provenance(provenance)
            count = 0
            with temp_beside(path, "import") as temp:
                with open(temp, "wb") as handle:
                    lines = [_dumps({"meta": created})]
                    for index, messages in enumerate(conversations):
                        clean = validate_messages(messages, where=f"item {index}")
                        lines.append(_dumps({"id": new_item_id(), "messages": clean, "provenance": stamp}))
                        count += 1
                        if len(lines) >= IMPORT_BATCH:
                            handle.write(("\n".join(lines) + "\n").encode("utf-8"))
                            lines = []
                    if lines:
                        handle.write(("\n".join(lines) + "\n").encode("utf-8"))
                    handle.flush()
                    os.fsync(handle.fileno())
                with self._journal(name):
                    if path.exists():
                        raise UserError("error.already_exists", what="dataset", name=name)
                    os.replace(temp, path)
                    self._cache.pop(name, None)
            return count

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
        """Rewrite the journal with only live records (atomically), holding it against every other writer."""
        with self._journal(name):
            view = self.load(name)  # re-read if another process appended since
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
