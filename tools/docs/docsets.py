"""A whole doc set (or one of its files) read and sliced: the join of reading and slicing.

slice_docset_cached() remembers the slicing of the last few doc sets, keyed on what the result
depends on (every file's path, size, mtime and ctime, and the budget), so browsing the slices of
an unchanged doc set does not read and slice it again.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from schema.document import DocumentFile, DocumentSlice
from tools.core.i18n import default_language, t
from tools.docs.reading import DocumentReadError, describe_file, load_document_text, scan_docset, walk_docset
from tools.docs.slicing import DEFAULT_MAX_TOKENS, slice_by_kind

SLICE_CACHE_SIZE = 4  # doc sets (at one budget each) whose slices are kept


def slice_docset(folder: Path, max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[list[DocumentSlice], list[DocumentFile]]:
    """Slices of every usable file in the docset, and all its files (with the reason for each one that failed)."""
    folder = Path(folder)
    slices: list[DocumentSlice] = []
    files: list[DocumentFile] = []
    for document in scan_docset(folder):
        if document.error is None and document.kind is not None:
            try:
                text = load_document_text(folder, document)
                slices.extend(slice_by_kind(text, document.kind, document.path, max_tokens))
            except DocumentReadError as exc:
                document = document.model_copy(update={"error": str(exc)})
            except RecursionError as exc:
                # A parser (ours or a library's) that recursed too deep: this file fails, not the set.
                document = document.model_copy(update={"error": t("docs.too_deep", reason=exc)})
        files.append(document)
    return slices, files


def slice_document(path: Path, root: Path, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[DocumentSlice]:
    """Read one file of a docset folder `root` and slice it; raises DocumentReadError when it cannot be read."""
    root, path = Path(root), Path(path)
    if not path.is_absolute() and (root / path).exists():
        path = root / path  # a path relative to the docset folder, as in DocumentFile.path
    document = describe_file(path, root)
    if document.error is not None or document.kind is None:
        raise DocumentReadError(f"{document.path}: {document.error}")
    text = load_document_text(root, document)
    return slice_by_kind(text, document.kind, document.path, max_tokens)


# --- the cache ----------------------------------------------------------------------------


def docset_fingerprint(folder: Path) -> tuple:
    """What a docset's slices depend on, read without opening a file: each entry's path and stat (links followed)."""
    folder = Path(folder)
    fingerprint = []
    for entry in walk_docset(folder):
        relative = entry.path.relative_to(folder).as_posix()
        try:
            info = os.stat(entry.path)
        except OSError as exc:
            fingerprint.append((relative, entry.problem, exc.errno))
            continue
        # ctime and inode too: a copy that keeps the old mtime (cp -p, rsync -t) still changes them.
        fingerprint.append((relative, entry.problem, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino))
    return tuple(fingerprint)


class _SliceCache:
    """The slicing of the most recently used doc sets, each with the fingerprint it was made from."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, tuple[tuple, list[DocumentSlice], list[DocumentFile]]] = OrderedDict()
        self._lock = threading.Lock()  # handlers of several pages run in threads

    def get(self, key: tuple, fingerprint: tuple) -> tuple[list[DocumentSlice], list[DocumentFile]] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != fingerprint:
                return None
            self._entries.move_to_end(key)
            return list(entry[1]), list(entry[2])

    def put(self, key: tuple, fingerprint: tuple, slices: list[DocumentSlice], files: list[DocumentFile]) -> None:
        with self._lock:
            self._entries[key] = (fingerprint, list(slices), list(files))
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_slice_cache = _SliceCache(SLICE_CACHE_SIZE)


def slice_docset_cached(folder: Path, max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[list[DocumentSlice], list[DocumentFile]]:
    """slice_docset(), answered from the cache while no file of the doc set has changed."""
    folder = Path(folder)
    # Reasons for unusable files are worded in the default language when the set is sliced.
    key = (os.path.realpath(folder), max_tokens, default_language())
    # Taken before slicing: a file changed while it is being sliced makes the next call slice again.
    fingerprint = docset_fingerprint(folder)
    cached = _slice_cache.get(key, fingerprint)
    if cached is not None:
        return cached
    slices, files = slice_docset(folder, max_tokens)
    _slice_cache.put(key, fingerprint, slices, files)
    return slices, files


def clear_slice_cache() -> None:
    _slice_cache.clear()
