"""Datasets: one append-only JSON-lines journal per dataset under workdir/dataset/.

Each line of `<name>.jsonl` is one record:
  {"id": ..., "messages": [...], "provenance": {...}}   an item (a later line with the same id replaces it)
  {"deleted": "<id>"}                                     the item is gone
  {"meta": {...}}                                         dataset metadata, merged key by key
  {"event": {...}}                                        a generation event (unit done/failed), kept in order
  {"begin": {"run", "kind", "details", "at"}}             a long change (a generation run, a bulk action) starts
  {"version": {"n", "at", "kind", "details", "items", "train", "eval"[, "run", "partial"]}}
                                                          the end of version n: the dataset as replayed up
                                                          to and including this line IS version n

Versions cost one line each and copy nothing: version n is the journal's prefix up to its version
line (its byte offset is indexed, so `view_at` reads only that prefix). Listing versions reads only
the version lines (they carry their counts); `diff` parses only the records between the two versions
and the older records of the items they touch; `restore` appends that diff. Every change made for
a user is one version: create, import, an item edit or delete, a split, a restore, a redaction, and
a generation run or bulk action as a whole (`begin_version`/`end_version`, or `with changes(...)`,
inside which edits and deletes are part of the one version). `append_item(s)`, `append_event` and
`set_meta` are raw appends for such writers. Records after the last version line that change the
data (items, deletions, a split) are the "pending" version: shown by `versions()` with the next
number, and closed with that number by the next change (labelled by the run that wrote them, marked
`partial` when that run goes on, e.g. an edit during a generation run; a run killed mid-way is
closed the same way). Old journals without any version line read as version 1 ("legacy"); their
next change closes it under that number. Old code reading a new journal ignores the new lines.

History stays: compaction no longer drops superseded records (each is some version's state); it
only rewrites the journal without the torn tail and unparseable lines a crash left. The one way to
change history is `rewrite_history` (a redaction): every record is transformed in one atomic rewrite
and a "redact" version is appended; the old file and every temp of this journal are gone after it.

Appending one item writes one line and never reads or rewrites the file, so its cost does not
grow with the dataset; a process killed mid-write leaves at most one torn last line, which is
ignored on read and cut off before the next append.

Between processes (the page, `generate`, `datasets import`): every change of a journal (append, edit,
rewrite, creation) holds its journal lock `.<name>.jsonl.lock` for the moment it takes, and an
append opens the file only once it holds it, so a rewrite that replaces the file can never drop
an append of another process. A long writer (a generation run, an import) also holds the writer
lock `.<name>.writer.lock` for its whole run: a second one is refused with who holds it. An import
writes a hidden temp journal and moves it into place when complete: all or nothing.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from db.dataset_journal import (DatasetView, counts_after, cut_torn_tail, diff_between, diff_views, dumps, light_replay, now_iso,
                                parse_records, replay)
from db.splits import pick_eval_ids
from schema.dataset import Provenance, first_exchange, item_extras, validate_messages, validate_preference, validate_tools
from tools.core.errors import UserError
from tools.core.i18n import STRINGS, t
from tools.core.workdir import TEMP_SUFFIX, FileLock, atomic_write_text, temp_beside, validate_name

SUFFIX = ".jsonl"
# How long a change waits for another process's hold of the journal (a compaction takes about a
# second per 50,000 items) before it gives up naming the holder.
JOURNAL_LOCK_WAIT_S = 60.0
# Items an import validates and writes at a time.
IMPORT_BATCH = 2000
# Replayed past versions kept in memory (a diff needs two; each holds its items).
VERSION_VIEWS_KEPT = 2


def new_item_id() -> str:
    return uuid.uuid4().hex[:12]


def item_version(item: dict) -> str:
    """A fingerprint of an item as stored: any save of it, anywhere, changes it (the editor's conflict check)."""
    return hashlib.sha256(dumps(item).encode("utf-8")).hexdigest()[:16]


def _signature(stat: os.stat_result) -> tuple[int, int, int]:
    # The inode too: a compaction by another process replaces the file.
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


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
        # (name, inode, version, rewrites) -> replayed view: a journal's prefix never changes but by a rewrite.
        self._version_views: OrderedDict[tuple, DatasetView] = OrderedDict()
        self._local = threading.local()  # the `changes` blocks open on each thread
        # name -> (signature, light view): versions and offsets without a full replay (see _index).
        self._indexes: dict[str, tuple[tuple[int, int, int], DatasetView]] = {}

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
            with open(path, "rb") as handle:
                data = handle.read()
            view, _ = replay(name, data)
            view.inode = signature[2]
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
        """A new empty dataset: its metadata and version 1 ("create"), in one atomic write."""
        with self._journal(name):
            path = self.path(name)
            if path.exists():
                if exist_ok:
                    return path
                raise UserError("error.already_exists", what="dataset", name=name)
            created = {"name": name, "created_at": now_iso(), **(meta or {})}
            version = {"n": 1, "at": now_iso(), "kind": "create", "details": {}, "items": 0, "train": 0, "eval": 0}
            atomic_write_text(path, dumps({"meta": created}) + "\n" + dumps({"version": version}) + "\n")
            return path

    def _append_lines(self, name: str, records: list[dict]) -> None:
        if not records:
            return
        lines = [(dumps(r) + "\n").encode("utf-8") for r in records]
        payload = b"".join(lines)
        with self._journal(name):
            # Opened only now that the journal is ours: a rewrite by another process may have
            # replaced the file since this process last wrote to it.
            fd = os.open(self._require(name), os.O_RDWR | os.O_APPEND)
            try:
                before = os.fstat(fd)
                # No live writer can be mid-line while we hold the lock: a last line without its
                # newline was torn by a killed one. Cut it, or our record would be glued to it.
                if before.st_size and os.pread(fd, 1, before.st_size - 1) != b"\n":
                    cut_torn_tail(self.path(name))
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
                position = before.st_size
                for record, line in zip(records, lines):
                    view.apply(record)
                    position += len(line)
                    if "version" in record:
                        view.offsets[record["version"]["n"]] = position
                view.torn_tail = False
                self._cache[name] = (_signature(after), view)

    def append_item(self, name: str, messages: list[dict], provenance: dict | Provenance | None = None, item_id: str | None = None) -> dict:
        """Validate and append one item; O(1) in the dataset size. A raw append: it joins the pending
        version (use `changes` or `commit_items` to make it a version of its own)."""
        record = {"id": item_id or new_item_id(), "messages": validate_messages(messages), "provenance": _provenance(provenance)}
        self._append_lines(name, [record])
        return record

    def append_items(self, name: str, items: Iterable[tuple], event: dict | None = None) -> int:
        """Validate and append items, (messages, provenance) or (messages, provenance, extra keys: preference keys,
        `tools`), and
        `event` after them in the same single write (so a generator's unit lands with its completion record
        or not at all); returns the item count. A raw append, like `append_item`: a generation run marks its
        version with begin/end_version."""
        records = []
        for index, (messages, provenance, *preference) in enumerate(items):
            where = f"item {index}"
            clean = validate_messages(messages, where=where)
            records.append({"id": new_item_id(), "messages": clean, "provenance": _provenance(provenance),
                            **item_extras(preference[0] if preference else None, clean, where)})
        count = len(records)
        if event is not None:
            records.append({"event": event})
        self._append_lines(name, records)
        return count

    def append_event(self, name: str, event: dict) -> None:
        self._append_lines(name, [{"event": event}])

    def set_meta(self, dataset: str, **meta) -> None:
        """Merge `meta` into the dataset's metadata (one appended line; a raw append)."""
        self._append_lines(dataset, [{"meta": meta}])

    def update_item(self, name: str, item_id: str, messages: list[dict], expected: str | None = None,
                    preference: dict | None = None) -> dict:
        """Replace the messages of an item (a version "edit"); a preference item keeps its rejected answer or
        label unless `preference` gives new ones ({} makes it a plain item). With `expected` (its
        `item_version` when the editor opened it), a save over a change made since (another browser, another
        process) is refused, not lost silently."""
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
            provenance["edited_at"] = now_iso()
            kept = item if preference is None else preference
            # The functions the model is shown stay with the item unless the edit gives others.
            tools = validate_tools(preference if preference and "tools" in preference else item)
            record = {"id": item_id, "messages": clean, "provenance": provenance, **tools, **validate_preference(kept, clean)}
            self.commit(name, "edit", [record], item=item_id)
            return record

    def delete_item(self, name: str, item_id: str) -> None:
        """Delete one item (a version "delete")."""
        with self._journal(name):
            self.get_item(name, item_id)
            self.commit(name, "delete", [{"deleted": item_id}], item=item_id)

    def delete_items(self, name: str, item_ids: Iterable[str], kind: str = "delete", **details) -> dict | None:
        """Delete many items as one version (a bulk action: `kind` and `details` say which); ids that
        are not there are skipped. Returns the version record (None inside `changes`)."""
        with self._journal(name):
            items = self.load(name).items
            gone = list(dict.fromkeys(i for i in item_ids if i in items))
            return self.commit(name, kind, [{"deleted": i} for i in gone], deleted=len(gone), **details)

    def set_eval_ids(self, name: str, eval_ids: Iterable[str], kind: str = "split", **details) -> dict | None:
        """Set which items form the eval split (e.g. move leaking eval items to train) as one version."""
        with self._journal(name):
            split = dict(self.load(name).meta.get("split") or {})
            split["eval_ids"] = list(dict.fromkeys(eval_ids))
            return self.commit(name, kind, [{"meta": {"split": split}}], **details)

    # ---- versions ----

    def _groups(self) -> dict[str, str]:
        """The `changes` blocks open on this thread: dataset name -> run token."""
        groups = getattr(self._local, "groups", None)
        if groups is None:
            groups = self._local.groups = {}
        return groups

    @staticmethod
    def _closing(view: DatasetView, run: str | None = None) -> list[dict]:
        """The version line closing the data changes after the last one (a run's part, a killed run, a
        raw append, a legacy journal), unless they belong to `run`, whose own version line closes them."""
        if not view.tail_changes:
            return []
        label = view.tail_label()
        if run is not None and label.get("run") == run:
            return []
        version = {"n": view.last_version + 1, "at": now_iso(), "kind": label["kind"], "details": label["details"], **view.counts()}
        if label.get("run"):
            version.update(run=label["run"], partial=True)
        return [{"version": version}]

    def commit(self, name: str, kind: str, records: list[dict], run: str | None = None,
               counts: dict[str, int] | None = None, **details) -> dict | None:
        """Append `records` and the version line that makes them version `kind` (with `details`), in
        one write; pending changes of others are closed as their own version first. `counts` (items,
        train, eval after the change), when the caller knows them, spare replaying the journal. Inside a
        `changes` block on this thread the records join that block's version instead (returns None)."""
        with self._journal(name):
            if run is None and name in self._groups():
                self._append_lines(name, records)
                return None
            index = self._index(name)
            view = index if counts is not None and not index.tail_changes else self.load(name)
            closing = self._closing(view, run)
            version = {"n": view.last_version + 1 + len(closing), "at": now_iso(), "kind": kind, "details": details,
                       **(counts if counts is not None else counts_after(view, records))}
            if run:
                version["run"] = run
            self._append_lines(name, closing + records + [{"version": version}])
            return version

    def begin_version(self, name: str, kind: str, **details) -> str:
        """Start a long change (a generation run, a bulk action) that ends as ONE version with
        `end_version(name, run)`; returns its run token. Records appended meanwhile belong to it."""
        run = uuid.uuid4().hex[:12]
        with self._journal(name):
            view = self.load(name)
            begin = {"run": run, "kind": kind, "details": details, "at": now_iso()}
            self._append_lines(name, self._closing(view) + [{"begin": begin}])
        return run

    def end_version(self, name: str, run: str, **details) -> dict:
        """Close the long change `run` as one version; `details` are added to those it began with."""
        with self._journal(name):
            begin = self.load(name).open_runs.get(run) or {}
            return self.commit(name, begin.get("kind") or "unrecorded", [], run=run,
                               **{**(begin.get("details") or {}), **details})

    @contextlib.contextmanager
    def changes(self, name: str, kind: str, **details):
        """A bulk action as one version: edits, deletes and appends made on this thread inside the
        block are its records (`with store.changes(name, "filter", min_score=7): ...`)."""
        run = self.begin_version(name, kind, **details)
        groups = self._groups()
        outer = groups.get(name)
        groups[name] = run
        try:
            yield run
        finally:
            if outer is None:
                groups.pop(name, None)
            else:
                groups[name] = outer
            self.end_version(name, run)

    def _index(self, name: str) -> DatasetView:
        """The versions, their offsets and the pending tail, without replaying the whole journal: the
        loaded view when it is current, else a light one (version and begin lines found with a C-level
        search, only the records after the last version line replayed; its `items` hold only those)."""
        with self._lock:
            path = self._require(name)
            signature = _signature(path.stat())
            for cache in (self._cache, self._indexes):
                hit = cache.get(name)
                if hit and hit[0] == signature:
                    return hit[1]
            with open(path, "rb") as handle:
                data = handle.read()
            view = light_replay(name, data)
            if view is None:  # a journal from before versions: its tail is all of it
                return self.load(name)
            view.inode = signature[2]
            self._indexes[name] = (signature, view)
            return view

    def versions(self, name: str) -> list[dict]:
        """Every version, oldest first: n, at, kind, details, items, train, eval (+ run, partial); the
        changes after the last version line, if any, as a last one marked pending."""
        index = self._index(name)
        rows = [dict(version) for version in index.versions]
        if index.tail_changes or not rows:
            view = self.load(name)  # the pending version's counts need the whole state
            label = view.tail_label()
            modified = datetime.fromtimestamp(self.path(name).stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
            rows.append({"n": view.last_version + 1, "at": modified, "kind": label["kind"], "details": label["details"],
                         **view.counts(), "pending": True})
        return rows

    def latest_version(self, name: str) -> int:
        index = self._index(name)
        return index.last_version + (1 if index.tail_changes or not index.versions else 0)

    def resolve_version(self, name: str, version: int | str | None) -> int:
        """`version` checked against the dataset's versions; None or 0 means the latest."""
        latest = self.latest_version(name)
        if version in (None, "", 0, "0"):
            return latest
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise UserError("versions.not_found", name=name, version=version, latest=latest) from None
        if number != latest and number not in self._index(name).offsets:
            raise UserError("versions.not_found", name=name, version=version, latest=latest)
        return number

    def view_at(self, name: str, version: int | str | None) -> DatasetView:
        """The dataset as it was at `version` (None: now), replaying only the journal up to its line."""
        return self._views_at(name, [version])[0]

    def _views_at(self, name: str, versions: list) -> list[DatasetView]:
        """Views at several versions with one replay of the journal's prefix (the latest is the live view)."""
        with self._lock:
            for _attempt in range(3):
                index = self._index(name)
                latest = self.latest_version(name)
                numbers = [self.resolve_version(name, v) for v in versions]
                inode = index.inode
                rewrites = sum(1 for v in index.versions if v.get("rewrite"))
                found: dict[int, DatasetView] = {}
                for n in numbers:
                    if n == latest or (n == index.last_version and not index.tail_changes):
                        found[n] = self.load(name)  # later lines, if any, change no item and no split
                    elif (name, inode, n, rewrites) in self._version_views:
                        self._version_views.move_to_end((name, inode, n, rewrites))
                        found[n] = self._version_views[(name, inode, n, rewrites)]
                missing = sorted(set(numbers) - found.keys())
                if missing:
                    with open(self._require(name), "rb") as handle:
                        if os.fstat(handle.fileno()).st_ino != inode:
                            continue  # rewritten since it was indexed: its offsets are another file's
                        data = handle.read(max(index.offsets[n] for n in missing))
                    _, snapshots = replay(name, data, missing)
                    if set(missing) - snapshots.keys():
                        continue
                    for n in missing:
                        found[n] = snapshots[n]
                        self._version_views[(name, inode, n, rewrites)] = snapshots[n]
                    while len(self._version_views) > VERSION_VIEWS_KEPT:
                        self._version_views.popitem(last=False)
                return [found[n] for n in numbers]
            raise UserError("versions.journal_busy", name=name)

    def items_at(self, name: str, version: int | str | None) -> list[dict]:
        """The items of `version` (None: now), for export or training."""
        return list(self.view_at(name, version).items.values())

    def diff(self, name: str, a: int | str, b: int | str) -> dict:
        """What changed from version `a` to version `b`: items added, removed and changed (old and new
        record side by side), items moved into the eval split or back to train, both versions' counts
        (and both splits). Only the records between the two versions are parsed, plus the older records
        of the items they touch."""
        with self._lock:
            a, b = self.resolve_version(name, a), self.resolve_version(name, b)
            index = self._index(name)
            with open(self._require(name), "rb") as handle:
                same_file = os.fstat(handle.fileno()).st_ino == index.inode
                data = handle.read()
            result = diff_between(data, index, a, b) if same_file else None
            if result is None:  # records not in the store's own form (or a rewrite meanwhile): replay
                result = diff_views(*self._views_at(name, [a, b]))
            return {"name": name, "a": a, "b": b, **result}

    def restore(self, name: str, version: int | str) -> dict:
        """Bring the data back to `version` as a NEW version ("restore"): the records that differ are
        appended (deletions, the old records, the old split); nothing of the history is lost."""
        with self._journal(name):
            number = self.resolve_version(name, version)
            back = self.diff(name, self.latest_version(name), number)
            records: list[dict] = [{"deleted": item["id"]} for item in back["removed"]]
            records += back["added"] + [change["new"] for change in back["changed"]]
            if back["splits"]["a"] != back["splits"]["b"]:
                records.append({"meta": {"split": back["splits"]["b"]}})
            return self.commit(name, "restore", records, counts=back["counts"]["b"], version=number)

    def version_rows(self, name: str, lang: str | None = None) -> list[list]:
        """Rows for a versions table: n, time, what made it, details, items, train, eval."""
        rows = []
        for version in self.versions(name):
            kind = kind_label(version["kind"], lang)
            if version.get("pending"):
                kind += " " + t("versions.mark_pending", lang)
            elif version.get("partial"):
                kind += " " + t("versions.mark_part", lang)
            rows.append([version["n"], version["at"], kind, describe_details(version.get("details")),
                         version["items"], version["train"], version["eval"]])
        return rows

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
            self._indexes.pop(old, None)
            self.set_meta(new, name=new)
            self._forget_locks(old, writers[old])

    def delete(self, name: str) -> None:
        """Refused while a writer (a generation run, an import) holds it, in any process."""
        self._require(name)
        with self.writer_lock(name).acquire() as writer, self._journal(name):
            self._require(name).unlink()
            self._cache.pop(name, None)
            self._indexes.pop(name, None)
            self._forget_locks(name, writer)

    def import_items(self, name: str, conversations: Iterable[list[dict] | dict], meta: dict | None = None,
                     provenance: dict | None = None) -> int:
        """Create dataset `name` from `conversations` (an iterable: a streaming reader is welcome; each a list of
        messages, or {"messages", "rejected" | "label" (a preference item, see schema.dataset), "provenance"}) as its
        version 1 ("import"), all or nothing: the journal is written aside under a hidden temp name and
        moved into place when complete, so an import that fails or is killed leaves no dataset. Returns
        the item count."""
        path = self.path(name)
        if path.exists():
            raise UserError("error.already_exists", what="dataset", name=name)
        with self.writer_lock(name).acquire():
            if path.exists():
                raise UserError("error.already_exists", what="dataset", name=name)
            created = {"name": name, "created_at": now_iso(), **(meta or {})}
            stamp = _provenance(provenance)
            count = 0
            with temp_beside(path, "import") as temp:
                with open(temp, "wb") as handle:
                    lines = [dumps({"meta": created})]
                    for index, conversation in enumerate(conversations):
                        where = f"item {index}"
                        messages = conversation.get("messages") if isinstance(conversation, dict) else conversation
                        clean = validate_messages(messages, where=where)
                        own = conversation.get("provenance") if isinstance(conversation, dict) else None
                        lines.append(dumps({"id": new_item_id(), "messages": clean, "provenance": {**stamp, **own} if own else stamp,
                                            **item_extras(conversation, clean, where)}))
                        count += 1
                        if len(lines) >= IMPORT_BATCH:
                            handle.write(("\n".join(lines) + "\n").encode("utf-8"))
                            lines = []
                    details = {"file": (meta or {}).get("imported_from"), "format": (meta or {}).get("format")}
                    lines.append(dumps({"version": {"n": 1, "at": now_iso(), "kind": "import", "details": details,
                                                     "items": count, "train": count, "eval": 0}}))
                    handle.write(("\n".join(lines) + "\n").encode("utf-8"))
                    handle.flush()
                    os.fsync(handle.fileno())
                with self._journal(name):
                    if path.exists():
                        raise UserError("error.already_exists", what="dataset", name=name)
                    os.replace(temp, path)
                    self._cache.pop(name, None)
                    self._indexes.pop(name, None)
            return count

    def split(self, name: str, eval_ratio: float, seed: int = 42) -> tuple[int, int]:
        """Mark a random `eval_ratio` of the items as the eval split (reproducible with `seed`): a version "split"."""
        try:
            ratio = float(eval_ratio)
        except (TypeError, ValueError):
            raise UserError("error.not_a_number", field="eval ratio", value=eval_ratio) from None
        if not 0 < ratio < 1:
            raise UserError("error.number_range", field="eval ratio", low=0, high=1, value=eval_ratio)
        with self._journal(name):
            items = self.load(name).items
            chosen = pick_eval_ids(items, ratio, int(seed))  # the phrasings of one question on one side
            self.commit(name, "split", [{"meta": {"split": {"eval_ratio": ratio, "seed": int(seed), "eval_ids": chosen}}}],
                        eval_ratio=ratio, seed=int(seed))
        return len(items) - len(chosen), len(chosen)

    def train_eval(self, name: str, version: int | str | None = None) -> tuple[list[dict], list[dict]]:
        """(train, eval) items now, or at `version`."""
        view = self.load(name) if version in (None, "", 0) else self.view_at(name, version)
        eval_ids = view.eval_ids
        train = [item for item_id, item in view.items.items() if item_id not in eval_ids]
        evaluation = [item for item_id, item in view.items.items() if item_id in eval_ids]
        return train, evaluation

    # ---- rewriting the whole journal ----

    def _rewrite(self, name: str, lines: list[bytes]) -> None:
        """Replace the journal by `lines` (held by the caller's journal lock): a hidden temp beside it,
        fsynced, moved into place; then no temp of this journal is left that no live writer holds."""
        path = self._require(name)
        with temp_beside(path, "rewrite") as temp:
            with open(temp, "wb") as handle:
                handle.write(b"".join(line + b"\n" for line in lines))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        self._cache.pop(name, None)
        self._indexes.pop(name, None)
        for key in [k for k in self._version_views if k[0] == name]:
            del self._version_views[key]
        for leftover in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                _remove_unless_held(leftover)

    def compact(self, name: str) -> None:
        """Rewrite the journal atomically without the torn tail and unparseable lines a crash left.
        Every complete record stays: each one is part of some version's state."""
        with self._journal(name):
            data = self._require(name).read_bytes()
            records, _torn = parse_records(data)
            lines = [raw for raw in data.split(b"\n")[:-1] if raw.strip()]
            self._rewrite(name, [raw for raw, record in zip(lines, records) if isinstance(record, dict)])

    def rewrite_history(self, name: str, transform: Callable[[dict], dict], reason: str) -> dict:
        """Apply `transform(record) -> record` to every record of the journal, every version's included,
        in one atomic rewrite under the journal lock, and append a version "redact" (details: `reason`).
        The old file does not survive (temp beside it + os.replace, then this journal's stale temps
        are removed); lines a crash left unparseable are dropped, since they may hold the old text too.
        Returns the new version record."""
        with self._journal(name):
            data = self._require(name).read_bytes()
            records, _torn = parse_records(data)
            rewritten = []
            for record in records:
                if not isinstance(record, dict):
                    continue
                new = transform(record)
                if not isinstance(new, dict):
                    raise TypeError(f"rewrite_history: the transform returned {type(new).__name__}, not a record (dict)")
                rewritten.append(new)
            view, _ = replay(name, b"".join((dumps(r) + "\n").encode("utf-8") for r in rewritten))
            closing = self._closing(view)
            for record in closing:
                view.apply(record)
            version = {"n": view.last_version + 1, "at": now_iso(), "kind": "redact", "details": {"reason": reason},
                       **view.counts(), "rewrite": True}
            self._rewrite(name, [dumps(r).encode("utf-8") for r in rewritten + closing + [{"version": version}]])
            return version



def kind_label(kind: str, lang: str | None = None) -> str:
    """What made a version, in the UI language (a bulk action's own name when it has no string)."""
    key = f"versions.kind.{kind}"
    return t(key, lang) if key in STRINGS else kind


def describe_details(details: dict | None) -> str:
    """A version's details as one short line: key=value, ..."""
    parts = []
    for key, value in (details or {}).items():
        if value is None or value == "" or isinstance(value, (dict, list)):
            continue
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def diff_rows(diff: dict, width: int = 80, lang: str | None = None) -> list[list]:
    """Rows for a diff table: change, id, old question, new question, old answer, new answer
    (an item moved between the splits shows its question on both sides)."""
    def exchange(item: dict) -> tuple[str, str]:
        question, answer = first_exchange(item["messages"])
        return _clip(question, width), _clip(answer, width)

    rows = []
    for item in diff["added"]:
        question, answer = exchange(item)
        rows.append([t("versions.change.added", lang), item["id"], "", question, "", answer])
    for item in diff["removed"]:
        question, answer = exchange(item)
        rows.append([t("versions.change.removed", lang), item["id"], question, "", answer, ""])
    for change in diff["changed"]:
        (old_q, old_a), (new_q, new_a) = exchange(change["old"]), exchange(change["new"])
        rows.append([t("versions.change.changed", lang), change["id"], old_q, new_q, old_a, new_a])
    for kind in ("to_eval", "to_train"):
        for item in diff[kind]:
            question, _answer = exchange(item)
            rows.append([t(f"versions.change.{kind}", lang), item["id"], question, question, "", ""])
    return rows

def _provenance(provenance: dict | Provenance | None) -> dict:
    """Provenance as stored: given fields plus the creation time."""
    if isinstance(provenance, Provenance):
        return provenance.model_dump(exclude_none=True)
    record = dict(provenance or {})
    record.setdefault("created_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return record


def _remove_unless_held(path: Path) -> None:
    """Remove a temp file unless a live writer holds its flock (temp_beside holds it while it writes)."""
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            return
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
