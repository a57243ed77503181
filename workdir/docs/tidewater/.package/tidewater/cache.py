"""Stage output caching under cache.dir: key = stage name + hash of the function's source + hash of the pickled input."""

from __future__ import annotations

import hashlib
import inspect
import logging
import pickle
import time
from pathlib import Path
from typing import Any

from .errors import CacheCorruptError

log = logging.getLogger("tidewater")
MISSING = object()


def cache_key(stage_name: str, func: Any, value: Any) -> str | None:
    """The cache key of one call, or None when the input cannot be pickled (caching is skipped with a warning)."""
    try:
        source = inspect.getsource(func).encode()
    except (OSError, TypeError):
        source = getattr(getattr(func, "__code__", None), "co_code", repr(func).encode())
    try:
        payload = pickle.dumps(value)
    except Exception as exc:
        log.warning("stage %s: input cannot be pickled (%s); not caching this call", stage_name, exc)
        return None
    digest = hashlib.sha256()
    for part in (stage_name.encode(), hashlib.sha256(source).digest(), hashlib.sha256(payload).digest()):
        digest.update(part)
    return digest.hexdigest()


def read_cached(directory: str, key: str, ttl: float) -> Any:
    """The stored output for `key` when younger than `ttl` seconds, else MISSING; TW-1401 for an unreadable entry."""
    path = Path(directory) / f"{key}.pkl"
    if not path.is_file():
        return MISSING
    try:
        stored_at, output = pickle.loads(path.read_bytes())
    except Exception as exc:
        raise CacheCorruptError(f"cache entry {path} is corrupt or unreadable ({exc}); run `tw cache clear`") from exc
    return output if time.time() - stored_at < ttl else MISSING


def write_cached(directory: str, key: str, output: Any) -> None:
    """Store an output; outputs that cannot be pickled are not cached."""
    try:
        payload = pickle.dumps((time.time(), output))
    except Exception:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / f"{key}.pkl").write_bytes(payload)


def clear_cache(directory: str = ".tidewater/cache") -> int:
    """Delete every cached output (what `tw cache clear` does); returns how many entries were removed."""
    removed = 0
    for path in Path(directory).glob("*.pkl"):
        path.unlink()
        removed += 1
    return removed
