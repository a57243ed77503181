"""What a running stage can ask about its attempt: `cancelled()` and `run_id()`."""

from __future__ import annotations

import threading

_local = threading.local()


def cancelled() -> bool:
    """True once the current attempt has timed out or the run has been cancelled (False outside a run)."""
    attempt = getattr(_local, "attempt", None)
    run = getattr(_local, "run", None)
    return bool((attempt is not None and attempt.is_set()) or (run is not None and run.is_set()))


def run_id() -> str | None:
    """The 12-character id of the run the current stage belongs to, or None outside a run."""
    return getattr(_local, "run_id", None)


def _enter(attempt: threading.Event, run: threading.Event, current_run_id: str) -> None:
    _local.attempt, _local.run, _local.run_id = attempt, run, current_run_id
