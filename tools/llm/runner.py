"""The runner every LLM job shares (generation, exam creation, the judges): a queue of units worked by a
bounded number of workers with a cooperative cancel, one chat call with the retry policy (429/Retry-After,
5xx, timeouts, lost connections; JSON mode dropped if the provider rejects it), a correction round for an
unusable reply, token and cost accounting, progress publishing; and `BackgroundJob`, such a run on a
background thread that the page polls.

A job subclasses `UnitRunner`: it plans its units, implements `_process(unit)` (which records the unit's
outcome itself) and `_finish()`, names the lock its whole run holds (`_lock()`), and keeps its own record
(a dataset journal, a score sidecar, an exam draft).
"""

from __future__ import annotations

import asyncio
import copy
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, TypeVar

from schema.provider import APIProvider
from tools.core.errors import UserError
from tools.core.i18n import STRINGS, t
from tools.llm.client import make_async_client
from tools.llm.limits import oversized, prompt_too_large_detail
from tools.llm.replies import OutputError, reply_content
from tools.llm.settings import CallSettings

# Failures listed one by one in a stored summary; beyond that they are only counted.
MAX_LISTED_FAILURES = 200
# The longest Retry-After we wait for; a longer one is treated as this.
MAX_RETRY_AFTER_S = 300.0

Parsed = TypeVar("Parsed")


def now_iso() -> str:
    """Now, in UTC, to the second: the time stamp of every journal line and summary."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- progress


@dataclass
class RunnerProgress:
    """What the runner counts for every LLM job, live; a job's progress adds what it plans and makes, and
    names them `pending` and `processed` for the time left. The runner publishes copies, never the object
    it mutates."""

    dataset: str  # what the job is for: a dataset, or an exam's name
    status: str = "starting"  # starting | running | cancelling | cancelled | finished | failed
    retries: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    recent_failures: list[dict] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    json_mode: bool = True
    concurrency: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    message: str = ""  # why a run was aborted

    # The counters a job's progress names (class-level, read by `pending` and `processed` below): the field
    # with every unit or item of the job, the one with those an earlier run finished, and those with an outcome.
    TOTAL_FIELD: ClassVar[str]
    SKIPPED_FIELD: ClassVar[str]
    OUTCOME_FIELDS: ClassVar[tuple[str, ...]]

    @property
    def pending(self) -> int:
        """The units this run has to do."""
        return getattr(self, self.TOTAL_FIELD) - getattr(self, self.SKIPPED_FIELD)

    @property
    def processed(self) -> int:
        """The units of this run that have an outcome."""
        return sum(getattr(self, name) for name in self.OUTCOME_FIELDS)

    @property
    def elapsed_s(self) -> float:
        return (self.finished_at or time.time()) - self.started_at

    @property
    def eta_s(self) -> float | None:
        if not self.processed or self.finished_at:
            return None
        return (self.pending - self.processed) * self.elapsed_s / self.processed

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "cancelling")

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(elapsed_s=round(self.elapsed_s, 3), eta_s=self.eta_s)
        return data


@dataclass
class UnitProgress(RunnerProgress):
    """The progress of a run of units that make items (generation, exam creation: `dataset` names the dataset
    or the exam, `items` counts pairs or questions)."""

    total_units: int = 0
    skipped_units: int = 0  # finished by an earlier run
    done_units: int = 0
    failed_units: int = 0
    items: int = 0
    duplicates: int = 0

    TOTAL_FIELD, SKIPPED_FIELD, OUTCOME_FIELDS = "total_units", "skipped_units", ("done_units", "failed_units")
    pending_units, processed_units = RunnerProgress.pending, RunnerProgress.processed

    def to_dict(self) -> dict:
        return {**super().to_dict(), "processed_units": self.processed}


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def failure_reasons(failures: dict[str, int], lang: str | None = None) -> str:
    """"rate limited 2, timeout 1": each failure kind by its name in `lang` (the raw kind if it has none),
    as the page's panel and the command line both say it."""
    return ", ".join(f"{t(f'generate.reason.{reason}', lang) if f'generate.reason.{reason}' in STRINGS else reason} {count}"
                     for reason, count in sorted(failures.items()))


# ---------------------------------------------------------------- failures


class UnitFailure(Exception):
    """A unit that failed for good (attempts spent, a request no retry fixes, an unusable reply)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ProviderRejected(Exception):
    """An error no retry can fix (bad key, unknown model): the whole run stops."""


def short_error(exc: BaseException, limit: int = 300) -> str:
    """"TypeName: message", cut to `limit` characters: what a progress panel and a summary show."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _connection_dropped(exc: BaseException) -> bool:
    """True when an error's cause chain holds an aiohttp connection error that is not a timeout."""
    try:
        from aiohttp import ClientConnectionError
    except ImportError:
        return False
    seen = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ClientConnectionError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _count(usage: dict, field: str) -> int:
    value = usage.get(field)
    return value if isinstance(value, int) else 0


def _retry_after_seconds(exc) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return float(milliseconds) / 1000
        except ValueError:
            pass  # malformed header: fall through to Retry-After
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def _mentions_response_format(exc) -> bool:
    text = f"{getattr(exc, 'message', '')} {getattr(exc, 'body', '')}".lower()
    return "response_format" in text or "json_object" in text or "json mode" in text


# ---------------------------------------------------------------- the runner


class UnitRunner:
    """The machinery every LLM run shares; see the module's docstring. `await run()` holds `_lock()` and
    calls `_run_holding_the_lock()`, which plans the units, fills `_queue`, opens the client and ends with
    `_work_through(workers)`; a caller with its own loop may use `open()`, `_run_workers()` and `close()`."""

    def __init__(self, provider: APIProvider, settings: CallSettings, progress: type[RunnerProgress], name: str,
                 cancel_event: threading.Event | None = None, on_progress: Callable[[Any], None] | None = None):
        self.provider = provider
        self.settings = settings
        self.progress = progress(dataset=name, json_mode=settings.json_mode, concurrency=settings.concurrency)
        self.cancel_event = cancel_event or threading.Event()
        self.on_progress = on_progress
        self.json_mode = settings.json_mode
        self._queue: deque = deque()
        self._client = None
        self._random = random.Random()
        self._failure_list: list[dict] = []  # the first MAX_LISTED_FAILURES, for the stored summary

    # ---- what a job says ----

    async def _process(self, unit) -> None:
        raise NotImplementedError

    def _lock(self):
        """The lock (with acquire() -> held lock with release()) a whole run holds."""
        raise NotImplementedError

    async def _run_holding_the_lock(self):
        raise NotImplementedError

    def _finish(self) -> None:
        """Record the run's end (status and counters are final); publish."""
        raise NotImplementedError

    # ---- lifecycle ----

    async def run(self):
        """The whole run, holding `_lock()`: a second run of the same work, from any process, ends at once as
        failed with a message naming this one. Returns the final progress."""
        try:
            lock = self._lock().acquire()
        except UserError as exc:
            self.progress.status, self.progress.message = "failed", str(exc)
            self.progress.finished_at = time.time()
            self._publish()
            return self.progress
        try:
            return await self._run_holding_the_lock()
        finally:
            lock.release()

    async def open(self) -> None:
        # Retries are the runner's own (backoff, Retry-After, failure reasons), not the client's.
        self._client = make_async_client(self.provider, timeout=self.settings.timeout_s or self.provider.timeout_s)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _work(self, count: int) -> None:
        """The run's work once the client is open: `count` workers over the queue."""
        await self._run_workers(count)

    async def _work_through(self, count: int):
        """`_work(count)`, then `close()`; the run ends finished, cancelled (cut short), or failed (a provider
        that rejects us, or an error, which is passed on once `_finish()` has kept what is known)."""
        progress = self.progress
        try:
            await self._work(count)
        except ProviderRejected as exc:
            progress.status, progress.message = "failed", str(exc)
        except asyncio.CancelledError:
            # The loop itself was cancelled (Ctrl-C under asyncio.run): record and pass it on.
            progress.status = "cancelled"
            self._finish()
            raise
        except Exception as exc:
            # A bug or a full disk: keep what is known, then let the caller report it.
            progress.status, progress.message = "failed", short_error(exc)
            self._finish()
            raise
        finally:
            await self.close()
        if progress.status in ("running", "cancelling"):
            cut_short = self.cancel_event.is_set() and self.progress.processed < self.progress.pending
            progress.status = "cancelled" if cut_short else "finished"
        self._finish()
        return progress

    async def _run_workers(self, count: int) -> None:
        if count <= 0:
            return
        workers = [asyncio.create_task(self._worker()) for _ in range(count)]
        cancel_watch = asyncio.create_task(self._wait_for_cancel())
        try:
            remaining = set(workers)
            while remaining:
                finished, remaining = await asyncio.wait(remaining | {cancel_watch}, return_when=asyncio.FIRST_COMPLETED)
                remaining.discard(cancel_watch)
                if cancel_watch in finished:
                    self.progress.status = "cancelling"
                    self._publish()
                    break
                for task in finished:
                    if task.exception() is not None:
                        raise task.exception()
        finally:
            # Cancelling drops the calls in flight; their units have no outcome and run again on resume.
            for task in (*workers, cancel_watch):
                task.cancel()
            await asyncio.gather(*workers, cancel_watch, return_exceptions=True)

    async def _wait_for_cancel(self) -> None:
        while not self.cancel_event.is_set():
            await asyncio.sleep(0.05)

    async def _worker(self) -> None:
        while self._queue and not self.cancel_event.is_set():
            await self._process(self._queue.popleft())

    # ---- one unit ----

    async def _ask(self, messages: list[dict], tokens: list[int], parse: Callable[[str | None], Parsed],
                   correction: Callable[[str], str]) -> Parsed:
        """`parse` of the reply to `messages`; an unusable reply (OutputError) is sent back once with
        `correction(detail)` as the next message, then the unit fails with the problem."""
        problem: OutputError | None = None
        for corrected in (False, True):
            content = await self._call(messages, tokens)
            try:
                return parse(content)
            except OutputError as exc:
                problem = exc
            if not corrected:
                messages = messages + [{"role": "assistant", "content": content or "(empty reply)"},
                                       {"role": "user", "content": correction(problem.detail)}]
        raise UnitFailure(problem.reason, problem.detail)

    async def _call(self, messages: list[dict], tokens: list[int]) -> str | None:
        """One chat completion with retries on rate limits, server errors, timeouts and lost connections.
        A prompt over the provider's context length is not sent: the unit fails with its size and the limit."""
        import openai

        size = oversized(messages, self.provider.prompt_token_limit)
        if size is not None:
            raise UnitFailure("prompt_too_large", prompt_too_large_detail(self.provider, *size))
        settings, progress = self.settings, self.progress
        attempt = 0
        while True:
            attempt += 1
            request = {"model": self.provider.model_id, "messages": messages,
                       "temperature": settings.temperature, "max_tokens": settings.max_tokens}
            if self.json_mode:
                request["response_format"] = {"type": "json_object"}
            retry_after = None
            try:
                # The documented raw `post` with a plain-dict result instead of `chat.completions.create`:
                # create() converts its typed arguments and builds a pydantic ChatCompletion, milliseconds
                # of CPU per call that our plain JSON body and three read fields do not need; at high
                # concurrency that CPU is what bounds the throughput (bench/generation.py).
                response = await self._client.post("/chat/completions", cast_to=dict, body=request)
            except openai.BadRequestError as exc:
                if "response_format" in request and _mentions_response_format(exc):
                    # Remembered for the rest of the run: every later call goes without JSON mode.
                    # (Checked on the request: calls already in flight come back rejected too.)
                    self.json_mode = progress.json_mode = False
                    attempt -= 1
                    continue
                raise UnitFailure("bad_request", short_error(exc)) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
                raise ProviderRejected(short_error(exc)) from None
            except openai.RateLimitError as exc:
                reason, detail, retry_after = "rate_limited", short_error(exc), _retry_after_seconds(exc)
            except openai.APITimeoutError as exc:
                # The aiohttp transport reports a dropped connection as a connect timeout.
                reason, detail = ("connection" if _connection_dropped(exc) else "timeout"), short_error(exc)
            except openai.APIConnectionError as exc:
                reason, detail = "connection", short_error(exc)
            except openai.APIStatusError as exc:
                if exc.status_code < 500 and exc.status_code not in (408, 409):
                    raise UnitFailure(f"http_{exc.status_code}", short_error(exc)) from None
                reason, detail = "server_error", short_error(exc)
            else:
                usage = response.get("usage")
                if isinstance(usage, dict):
                    prompt_tokens, completion_tokens = _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")
                    tokens[0] += prompt_tokens
                    tokens[1] += completion_tokens
                    progress.tokens_in += prompt_tokens
                    progress.tokens_out += completion_tokens
                    progress.cost = self.provider.estimate_cost(progress.tokens_in, progress.tokens_out)
                return reply_content(response)
            if attempt >= settings.max_attempts:
                raise UnitFailure(reason, f"{detail} (after {attempt} attempts)")
            progress.retries += 1
            await asyncio.sleep(self._backoff(attempt, retry_after))

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = self.settings.backoff_max_s
        if retry_after is not None:
            # Honour the server's wait (only an absurd one is cut short); a little jitter keeps the
            # waiting workers from returning together.
            return min(retry_after, MAX_RETRY_AFTER_S) * self._random.uniform(1.0, 1.2)
        delay = min(cap, self.settings.backoff_base_s * 2 ** (attempt - 1))
        return self._random.uniform(delay / 2, delay)

    # ---- reporting ----

    def _record_failure(self, failure: UnitFailure, listed: dict) -> None:
        """Count a failed unit's reason and list it (`listed`: what the summary and the panel show of it);
        the caller has counted the unit itself."""
        progress = self.progress
        progress.failures[failure.reason] = progress.failures.get(failure.reason, 0) + 1
        if len(self._failure_list) < MAX_LISTED_FAILURES:
            self._failure_list.append(listed)
        progress.recent_failures = (progress.recent_failures + [listed])[-10:]
        self._publish()

    def _run_record(self) -> dict:
        """The part of a stored summary every run has: its settings and when it ran."""
        progress = self.progress
        return {
            "settings": {k: v for k, v in asdict(self.settings).items()},
            "json_mode": progress.json_mode,
            "started_at": datetime.fromtimestamp(progress.started_at, timezone.utc).isoformat(timespec="seconds"),
            "finished_at": datetime.fromtimestamp(progress.finished_at or time.time(), timezone.utc).isoformat(timespec="seconds"),
            "duration_s": round(progress.elapsed_s, 3),
        }

    def _publish(self) -> None:
        if self.on_progress is not None:
            self.on_progress(copy.deepcopy(self.progress))


# ---------------------------------------------------------------- background jobs


class BackgroundJob:
    """A run on a background thread with its own event loop, which the page polls: generation, judging and
    exam creation are each one of these, a job in the registry (global_var.JobHandle). `run(prepared,
    cancel_event, on_progress)` runs to the end, publishing progress through `on_progress`, and returns the
    final progress (a subclass may override `_work` to keep more). A run that raises ends as "failed" with
    the reason in its progress (the thread must not die silently); `error` keeps the reason."""

    def __init__(self, prepared, progress, run: Callable, thread_name: str, failure_log: str):
        self.prepared = prepared
        self.dataset = progress.dataset  # what the run is for: a dataset, or an exam's name
        self.cancel_event = threading.Event()
        self.error: str | None = None
        self._run_function = run
        self._lock = threading.Lock()
        self._progress = progress
        self._failure_log = failure_log  # "generation of ds": what the log says failed
        self.on_progress: Callable[[Any], None] | None = None  # also told each progress (the CLI prints it)
        # Running from its registration on (before the thread starts), so a second start is refused.
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def _work(self):
        return self._run_function(self.prepared, self.cancel_event, self._publish)

    def start(self):
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run's thread to end (after is_running() turned False it is finishing up); whether it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _update(self, progress) -> None:
        with self._lock:
            self._progress = progress

    def _publish(self, progress) -> None:
        """What the run reports as it goes: kept for the page's polls and told to `on_progress`."""
        self._update(progress)
        if self.on_progress is not None:
            self.on_progress(progress)

    def _run(self) -> None:
        try:
            self._update(self._work())
        except Exception as exc:  # shown in the progress panel
            import logging

            logging.getLogger("workbench").exception("%s failed", self._failure_log)
            with self._lock:
                self.error = short_error(exc)
                failed = copy.deepcopy(self._progress)
                failed.status, failed.message, failed.finished_at = "failed", self.error, time.time()
                self._progress = failed
        finally:
            self._finished.set()

    def progress(self):
        with self._lock:
            return copy.deepcopy(self._progress)

    def is_running(self) -> bool:
        return not self._finished.is_set()

    @property
    def running(self) -> bool:
        return self.is_running()

    def cancel(self) -> None:
        self.cancel_event.set()

    request_stop = cancel  # the job registry's name for it (global_var.JobHandle)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def wait(self, timeout: float | None = None):
        self._finished.wait(timeout)
        return self.progress()
