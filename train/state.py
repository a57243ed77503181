"""Process-wide model and training state: the one loaded model and the one running training job.

Both are shared by every browser session, so they live here behind one lock and are reached
only through these functions. Importing this module must stay cheap: no torch here.
"""

from __future__ import annotations

import threading
from typing import Any

from schema.errors import UserError

_lock = threading.RLock()
_loaded: Any = None  # train.loading.LoadedModel | None
_job: Any = None  # train.trainer.TrainingJob | None


def loaded_model():
    """The currently loaded model (a train.loading.LoadedModel) or None."""
    with _lock:
        return _loaded


def set_loaded_model(loaded) -> None:
    global _loaded
    with _lock:
        _loaded = loaded


def current_job():
    """The training job of this process (running or the last finished one), or None."""
    with _lock:
        return _job


def is_training() -> bool:
    with _lock:
        return _job is not None and _job.is_running()


def check_training_slot_free() -> None:
    """Raise the "already running" UserError when a training job is running."""
    with _lock:
        if _job is not None and _job.is_running():
            raise UserError("error.train_already_running", run=_job.run_name)


def claim_training_slot(job) -> None:
    """Register `job` as the running one; refuse if another training is running."""
    global _job
    with _lock:
        if _job is not None and _job.is_running():
            raise UserError("error.train_already_running", run=_job.run_name)
        _job = job


def refuse_while_training(action: str) -> None:
    """Raise a UserError naming `action` when a training job is running (models cannot change under it)."""
    with _lock:
        if _job is not None and _job.is_running():
            raise UserError("error.train_busy", action=action, run=_job.run_name)


def lock() -> threading.RLock:
    """The state lock, for callers that must check and change the model atomically."""
    return _lock


def reset() -> None:
    """Forget the loaded model and the job record (tests)."""
    global _loaded, _job
    with _lock:
        _loaded = None
        _job = None
