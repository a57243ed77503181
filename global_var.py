"""The one owner of process-wide state: the work directory and its stores, the loaded model, the
registry of background jobs (with the one rule for what may run together) and the API settings.

Everything here is shared by every browser session, so it is reached through functions that
hold one lock. What a user selects in the page lives in gr.State, never here. This module sits
below train/ and above tools/ (it imports db/, tools.core and tools.workspace, the library's context it
opens and hands out): it holds train's objects as plain values. tools/ never imports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol, runtime_checkable

from db.dataset_store import DatasetStore
from db.prompt_store import PromptStore
from db.provider_store import ProviderStore
from db.score_store import ScoreStore
from schema.run_state import JOB_RUNNING_STATES, JobState
from tools.core.device_queue import DeviceQueue
from tools.core.errors import UserError
from tools.core.workdir import WorkDir
from tools.workspace import Workspace, open_workspace

_lock = threading.RLock()
_state: Workspace | None = None


def init(workdir: Path | str) -> Workspace:
    """Create (on first run) and open the work directory; idempotent for the same path."""
    global _state
    with _lock:
        root = WorkDir(workdir)
        if _state is not None and _state.workdir.root == root.root:
            return _state
        _state = dataclasses.replace(open_workspace(root.root), runs_here=_runs_here)
        return _state


def _runs_here(kind: str, name: str) -> bool:
    return any(job_name == name for _, job_name, _ in running_jobs(kind))


def workspace() -> Workspace:
    """The work directory the app works in and its stores: what the page and the CLI hand the library."""
    with _lock:
        if _state is None:
            raise RuntimeError("global_var.init(workdir) must run before the stores are used")
        return _state


def workdir() -> WorkDir:
    return workspace().workdir


def providers() -> ProviderStore:
    return workspace().providers


def prompts() -> PromptStore:
    return workspace().prompts


def datasets() -> DatasetStore:
    return workspace().datasets


def scores() -> ScoreStore:
    """The judge's scores of dataset items (sidecars beside the datasets)."""
    return workspace().scores


# The OpenAI-compatible endpoint's key and the address the server listens on: process-wide,
# set by `--api-key` / WORKBENCH_API_KEY / the Settings tab, never stored on disk.
_api_key: str | None = None
_api_address: tuple[str, int] | None = None


def api_key() -> str | None:
    with _lock:
        return _api_key


def set_api_key(key: str | None) -> None:
    """Require `key` on the API from now on; None or "" removes the requirement (loopback only)."""
    global _api_key
    with _lock:
        _api_key = (key or "").strip() or None


def api_address() -> tuple[str, int] | None:
    """(host, port) the server running in this process listens on, or None before it starts."""
    with _lock:
        return _api_address


def set_api_address(host: str, port: int) -> None:
    global _api_address
    with _lock:
        _api_address = (host, int(port))


# ---------------------------------------------------------------- the loaded model

_loaded_model: Any = None  # train.loading.LoadedModel | None
# Held by train.loading from the unload of the old model until the new one is set: "loading".
_model_loading = threading.Lock()


def loaded_model():
    """The model loaded for chat, the API and evaluation (a train.loading.LoadedModel), or None."""
    with _lock:
        return _loaded_model


def set_loaded_model(loaded) -> None:
    global _loaded_model
    with _lock:
        _loaded_model = loaded


def model_lock() -> threading.RLock:
    """The state lock, for callers that must check and change the model atomically."""
    return _lock


_generation_queue = DeviceQueue()


def generation_queue() -> DeviceQueue:
    """The line every generation on the loaded model waits in (chat, /v1, evaluation; a model load holds it)."""
    return _generation_queue


def model_loading_lock() -> threading.Lock:
    """Held while a model loads; `.locked()` tells the chat "still loading" from "none loaded"."""
    return _model_loading


# ---------------------------------------------------------------- background jobs


@dataclass(frozen=True)
class JobKind:
    """A kind of background work and how it shares the machine."""

    name: str
    uses_device: bool  # holds the model or the GPU: one such job at a time, whatever its kind
    already_running: str  # message when the same job (device kinds: any of the kind) runs already
    blocks: str  # message for another device job refused because this one runs


JOB_KINDS = {kind.name: kind for kind in (
    JobKind("generation", uses_device=False, already_running="error.generate_running", blocks=""),
    JobKind("judge", uses_device=False, already_running="error.judge_running", blocks=""),
    JobKind("examgen", uses_device=False, already_running="error.examgen_running", blocks=""),
    JobKind("training", uses_device=True, already_running="error.train_already_running", blocks="error.train_busy"),
    JobKind("evaluation", uses_device=True, already_running="error.eval_running", blocks="error.eval_busy"),
    JobKind("export", uses_device=True, already_running="error.export_running", blocks="error.export_busy"),
    JobKind("exam", uses_device=True, already_running="error.exam_running", blocks="error.exam_busy"),
    JobKind("pairs", uses_device=True, already_running="error.pairs_running", blocks="error.pairs_busy"),
    # A sweep only orders its trials' trainings and exams, which are device jobs of their own.
    JobKind("sweep", uses_device=False, already_running="error.sweep_running", blocks=""),
)}


@dataclass(kw_only=True)
class StoppableJob:
    """What a background model job answers (train.evaluation.EvaluationJob, train.exam.ExamJob): it has
    `state` (a JobState: RUNNING, STOPPING, then its end), a `stop_event` the work checks, and a `done_event` set
    when it ends; the subclass adds `state` and what its page shows."""

    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    done_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def is_running(self) -> bool:
        return self.state in JOB_RUNNING_STATES

    def request_stop(self) -> None:
        self.stop_event.set()
        if self.state == JobState.RUNNING:
            self.state = JobState.STOPPING

    def wait(self, timeout: float | None = None) -> bool:
        return self.done_event.wait(timeout)


@runtime_checkable
class JobHandle(Protocol):
    """What every job in the registry answers, whatever its kind: a generation, judging run or exam creation
    (the library's tools.llm.runner.BackgroundJob), an evaluation or exam scoring (StoppableJob), a training worker
    (train.launcher.WorkerRun), an export in the caller's thread. `thread` is the thread doing the work in
    this process (None for a worker process): refuse_while_device_busy lets it through. A training worker
    pinned to GPUs also answers `devices` (job_devices): workers on GPU sets that do not meet may run at once."""

    thread: threading.Thread | None

    def is_running(self) -> bool: ...

    def request_stop(self) -> None:
        """Ask the job to end cleanly (it keeps what it has done); returns at once."""


@dataclass
class Job:
    kind: JobKind
    name: str
    handle: JobHandle


_jobs: dict[tuple[str, str], Job] = {}


def _running() -> list[Job]:
    return [job for job in _jobs.values() if job.handle.is_running()]


def _share_device(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    """Whether two device jobs' GPU sets meet: None is the whole device (every GPU, or the CPU)."""
    return a is None or b is None or bool(a & b)


def job_devices(handle) -> frozenset[str] | None:
    """The GPUs a job holds (a training worker pinned with `gpus`), None for the whole device."""
    return getattr(handle, "devices", None)


def _blocker(kind: JobKind, name: str, devices: frozenset[str] | None = None) -> UserError | None:
    """The one rule: several generation runs at once (one per dataset), one device job at a time — except
    training workers pinned to GPU sets that do not meet (a sweep's trials, one per GPU)."""
    for job in _running():
        shared = kind.uses_device and job.kind.uses_device and _share_device(devices, job_devices(job.handle))
        if job.kind is kind and (shared or (not kind.uses_device and job.name == name)):
            return UserError(kind.already_running, run=job.name, name=job.name)
        if shared:
            return UserError(job.kind.blocks, run=job.name, action=_ACTIONS[kind.name])
    return None


# What a refused device job was about to do, for the "cannot {action} while ..." messages.
_ACTIONS = {"training": "start training", "evaluation": "evaluate a run", "export": "export a run", "generation": "generate",
            "exam": "run an exam", "pairs": "build preference pairs"}


def check_job_allowed(kind: str, name: str, devices: frozenset[str] | None = None) -> None:
    """Raise the UserError naming the job that blocks starting `kind` `name` (on GPUs `devices`, None: the
    whole device); nothing is registered."""
    with _lock:
        error = _blocker(JOB_KINDS[kind], name, devices)
    if error is not None:
        raise error


def start_job(kind: str, name: str, handle) -> Any:
    """Check the rule and register `handle` in one step (UserError naming the blocker); returns it."""
    with _lock:
        error = _blocker(JOB_KINDS[kind], name, job_devices(handle))
        if error is not None:
            raise error
        _jobs[(kind, name)] = Job(JOB_KINDS[kind], name, handle)
        _latest[kind] = name
    return handle


_latest: dict[str, str] = {}


def find_job(kind: str, name: str | None = None):
    """The job of `kind` named `name` (None: the one started last), running or finished, or None."""
    with _lock:
        name = name if name is not None else _latest.get(kind)
        job = _jobs.get((kind, name)) if name is not None else None
        return job.handle if job is not None else None


def running_jobs(kind: str | None = None) -> list[tuple[str, str, Any]]:
    """(kind, name, handle) of every running job, of one kind when given."""
    with _lock:
        return [(job.kind.name, job.name, job.handle) for job in _running() if kind is None or job.kind.name == kind]


def refuse_while_device_busy(action: str) -> None:
    """UserError naming the running device job (training, evaluation, export): the model must not change
    under it. The job's own thread is let through (an evaluation loads the model it evaluates)."""
    with _lock:
        for job in _running():
            if job.kind.uses_device and getattr(job.handle, "thread", None) is not threading.current_thread():
                raise UserError(job.kind.blocks, run=job.name, action=action)


class _SynchronousJob:
    """A device job that runs in the caller's thread (an export)."""

    def __init__(self):
        self.thread = threading.current_thread()
        self.running = True

    def is_running(self) -> bool:
        return self.running

    def request_stop(self) -> None:
        """Nothing to ask: the work runs in its caller's thread and ends with it."""


@contextlib.contextmanager
def device_job(kind: str, name: str) -> Iterator[None]:
    """Hold the device for work done in this thread, under the same rule as background jobs."""
    handle = start_job(kind, name, _SynchronousJob())
    try:
        yield
    finally:
        handle.running = False


def current_training():
    """The training job of this process (running or the last finished one), or None."""
    return find_job("training")


def is_training() -> bool:
    return bool(running_jobs("training"))


def reset_runtime() -> None:
    """Forget the loaded model and every job record (tests)."""
    global _loaded_model
    with _lock:
        _loaded_model = None
        _jobs.clear()
        _latest.clear()


def reset() -> None:
    """Forget the open work directory, the API settings, the model and the jobs (tests switch between
    temporary work directories)."""
    global _state, _api_key, _api_address
    with _lock:
        _state = None
        _api_key = None
        _api_address = None
    reset_runtime()
