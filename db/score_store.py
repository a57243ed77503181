"""Judge scores of dataset items: one append-only JSON-lines sidecar per dataset, beside its journal,
`workdir/dataset/.<name>.scores.jsonl` (hidden, so it is never listed as a dataset).

Each line is one record:
  {"id": item id, "v": item_version, "status": "scored", "scores": {...}, "overall": 7, ...}
  {"id": item id, "v": item_version, "status": "unscored", "reason": "invalid_json", "detail": "...", ...}
  {"run": {...}}                                   the summary of one judging run

A later record for an id replaces an earlier one. A score counts only while its `v` is the item's
current `db.dataset_store.item_version`: an edited item is unscored again ("edited"), without any
rewrite here. Appends hold the sidecar's lock `.<name>.scores.jsonl.lock` (between threads and
processes) and open the file only once they hold it; a process killed mid-write leaves at most one
torn last line, which is ignored on read and cut off before the next append. A judging run also holds
`.<name>.judge.lock` for its whole run, so two runs (any processes) never judge the same dataset twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from db.dataset_journal import dumps
from db.dataset_store import item_version
from tools.core.workdir import FileLock, atomic_write_text, validate_name

SUFFIX = ".scores.jsonl"
SCORED = "scored"
UNSCORED = "unscored"
# Why an item has no usable score, besides a judge failure's own reason.
NOT_JUDGED = "not_judged"
EDITED = "edited"
LOCK_WAIT_S = 30.0


@dataclass
class ScoreView:
    """The replayed sidecar: the latest record per item id and the run summaries, oldest first."""

    name: str
    latest: dict[str, dict] = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)
    records: int = 0
    torn_tail: bool = False

    def apply(self, record: dict) -> None:
        self.records += 1
        if "run" in record:
            self.runs.append(record["run"])
        elif "id" in record:
            self.latest[record["id"]] = record


def item_score(item: dict, record: dict | None) -> tuple[str, str | None]:
    """(status, reason) of one item given its latest score record: ("scored", None) only when the record
    is a score of the item as it is now; else "unscored" with not_judged, edited or the judge's reason."""
    if record is None:
        return UNSCORED, NOT_JUDGED
    if record.get("v") != item_version(item):
        return UNSCORED, EDITED
    if record.get("status") == SCORED:
        return SCORED, None
    return UNSCORED, record.get("reason") or NOT_JUDGED


class ScoreStore:
    """The score sidecars of a work directory's datasets. Thread-safe within the process."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[tuple[int, int, int], ScoreView]] = {}
        self._locks: dict[str, FileLock] = {}

    def path(self, name: str) -> Path:
        return self.folder / f".{validate_name(name, 'dataset name')}{SUFFIX}"

    def judge_lock(self, name: str) -> FileLock:
        """Held by a judging run for its whole run; `acquire()` it: a second run on the same dataset, in
        any process, is refused naming the holder."""
        return FileLock(self.folder / f".{validate_name(name, 'dataset name')}.judge.lock", "error.judge_locked", name=name)

    @contextlib.contextmanager
    def _held(self, name: str):
        with self._lock:
            lock = self._locks.get(name)
            if lock is None:
                lock = FileLock(self.path(name).with_name(self.path(name).name + ".lock"), "error.judge_scores_locked",
                                keep_open=True, name=name, seconds=int(LOCK_WAIT_S))
                self._locks[name] = lock
            lock.acquire(LOCK_WAIT_S)
            try:
                yield
            finally:
                lock.release()

    # ---- reading ----

    def load(self, name: str) -> ScoreView:
        """The sidecar replayed (cached until the file changes); an empty view when there is none."""
        path = self.path(name)
        with self._lock:
            try:
                stat = path.stat()
            except FileNotFoundError:
                return ScoreView(name=name)
            signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
            cached = self._cache.get(name)
            if cached and cached[0] == signature:
                return cached[1]
            view = ScoreView(name=name)
            data = path.read_bytes()
            lines = data.split(b"\n")
            view.torn_tail = bool(lines and lines[-1])
            for raw in lines[:-1]:
                if not raw.strip():
                    continue
                try:
                    view.apply(json.loads(raw))
                except json.JSONDecodeError:
                    view.records += 1  # only a crash writes this; the rest stays usable
            self._cache[name] = (signature, view)
            return view

    def statuses(self, name: str, items: dict[str, dict]) -> dict[str, tuple[str, str | None, dict | None]]:
        """item id -> (status, reason, latest record) for every item in `items` (id -> item)."""
        latest = self.load(name).latest
        result = {}
        for item_id, item in items.items():
            record = latest.get(item_id)
            status, reason = item_score(item, record)
            result[item_id] = (status, reason, record)
        return result

    # ---- writing ----

    def append(self, name: str, records: list[dict]) -> None:
        """Append records in one write, under the sidecar's lock."""
        if not records:
            return
        payload = "".join(dumps(r) + "\n" for r in records).encode("utf-8")
        path = self.path(name)
        with self._held(name):
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)  # private like the dataset journals it scores
            try:
                size = os.fstat(fd).st_size
                # A last line without its newline was torn by a killed writer: cut it, or ours would be glued to it.
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    _cut_torn_tail(fd, size)
                written = 0
                while written < len(payload):
                    written += os.write(fd, payload[written:])
            finally:
                os.close(fd)

    def add_run(self, name: str, summary: dict) -> None:
        self.append(name, [{"run": summary}])

    def rewrite_history(self, name: str, transform: Callable[[dict], dict]) -> int:
        """Apply `transform(record) -> record` to every record of the sidecar in one atomic rewrite under
        its lock (a redaction: a judge's reason may quote what the item said); lines a crash left
        unparseable are dropped, since they may hold the old text too. Returns the records written."""
        path = self.path(name)
        with self._held(name):
            if not path.exists():
                return 0
            rewritten = []
            for raw in path.read_bytes().split(b"\n"):
                try:
                    record = json.loads(raw) if raw.strip() else None
                except json.JSONDecodeError:
                    record = None
                if isinstance(record, dict):
                    rewritten.append(dumps(transform(record)) + "\n")
            atomic_write_text(path, "".join(rewritten))  # private (0600), like the journals
            self._cache.pop(name, None)
            return len(rewritten)

    def rename(self, old: str, new: str) -> None:
        """Move the scores of dataset `old` to `new` (when the dataset itself is renamed); item ids and
        fingerprints are unchanged by a rename, so the scores stay valid."""
        first, second = sorted((old, new))  # one order for every process: no deadlock
        with self._held(first), self._held(second):
            if self.path(old).exists():
                os.replace(self.path(old), self.path(new))
            self._cache.pop(old, None)
            self._cache.pop(new, None)

    def delete(self, name: str) -> None:
        """Forget every score of dataset `name` (when the dataset itself is deleted)."""
        with self._held(name):
            self.path(name).unlink(missing_ok=True)
            self._cache.pop(name, None)


def _cut_torn_tail(fd: int, size: int) -> None:
    position = size
    while position > 0:
        step = min(65536, position)
        position -= step
        chunk = os.pread(fd, step, position)
        cut = chunk.rfind(b"\n")
        if cut != -1:
            os.ftruncate(fd, position + cut + 1)
            return
    os.ftruncate(fd, 0)

