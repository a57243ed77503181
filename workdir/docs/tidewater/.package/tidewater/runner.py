"""Running a tide: planning, per-attempt watchdog timeouts, retries with backoff, map stages on a thread pool."""

from __future__ import annotations

import concurrent.futures
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import context
from .cache import MISSING, cache_key, read_cached, write_cached
from .config import Config, load_config
from .errors import (RetriesExhaustedError, RunCancelledError, StageError, StageTimeoutError, TidewaterError,
                     TideTimeoutError, UnhandledStageError)
from .result import StageResult, TideResult
from .retry import RetryPolicy

log = logging.getLogger("tidewater")


class _RunStopped(Exception):
    """The whole run hit its `timeout`, or was cancelled."""


@dataclass
class PlannedStage:
    """A stage with its effective settings: its own arguments where given, tidewater.toml where not."""

    stage: Any
    timeout: float
    retry: RetryPolicy
    cache: bool


def plan(tide, config: Config) -> list[PlannedStage]:
    """The effective settings of every stage of `tide` under `config`."""
    default_retry = RetryPolicy(**config.section("retry"))
    return [PlannedStage(stage=item,
                         timeout=item.timeout if "timeout" in item._given else config["stage.timeout"],
                         retry=item.retry or default_retry,
                         cache=item.cache if "cache" in item._given else config["stage.cache"])
            for item in tide.stages]


class _Run:
    def __init__(self, run_id: str, timeout: float | None, max_workers: int):
        self.run_id, self.max_workers = run_id, max_workers
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.stopped = threading.Event()
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def attempt(self, step: PlannedStage, value: Any) -> Any:
        """One attempt on a watchdog thread; StageTimeoutError when it runs past the stage timeout."""
        box: dict[str, Any] = {}
        attempt_over = threading.Event()

        def target():
            context._enter(attempt_over, self.stopped, self.run_id)
            try:
                box["value"] = step.stage.func(value)
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc

        worker = threading.Thread(target=target, name=f"tidewater-{step.stage.name}", daemon=True)
        worker.start()
        remaining = self.remaining()
        worker.join(step.timeout if remaining is None else min(step.timeout, remaining))
        if worker.is_alive():
            attempt_over.set()  # the abandoned function keeps running; context.cancelled() tells it
            if remaining is not None and remaining <= step.timeout:
                self.stopped.set()
                raise _RunStopped()
            raise StageTimeoutError(f"stage {step.stage.name!r} ran longer than its timeout of {step.timeout:g} s",
                                    stage=step.stage.name)
        if "error" in box:
            raise box["error"]
        return box["value"]

    def with_retries(self, step: PlannedStage, value: Any) -> tuple[Any, int]:
        """(output, attempts used); TW-1201 for an error not in `retry_on`, TW-1202 when every attempt failed."""
        policy, name = step.retry, step.stage.name
        for attempt in range(1, policy.max_attempts + 1):
            if self.stopped.is_set():
                raise _RunStopped()
            try:
                return self.attempt(step, value), attempt
            except _RunStopped:
                raise
            except Exception as exc:
                if not policy.should_retry(exc):
                    error = UnhandledStageError(f"stage {name!r} raised {type(exc).__name__}: {exc}", stage=name)
                elif attempt == policy.max_attempts:
                    error = RetriesExhaustedError(f"stage {name!r} failed {attempt} time(s); last error "
                                                  f"{type(exc).__name__}: {exc}", stage=name)
                else:
                    delay, remaining = policy.jittered_delay(attempt), self.remaining()
                    if remaining is not None and delay >= remaining:
                        self.stopped.wait(remaining)
                        self.stopped.set()
                        raise _RunStopped() from None
                    if self.stopped.wait(delay):
                        raise _RunStopped() from None
                    continue
                error.attempts = attempt
                raise error from exc
        raise AssertionError("unreachable")

    def run_map(self, step: PlannedStage, value: Any, fail_fast: bool) -> tuple[list, int, list[StageError]]:
        """(outputs in input order without failed items, most attempts of any item, item errors)."""
        try:
            items = list(value)
        except TypeError as exc:
            raise UnhandledStageError(f"map stage {step.stage.name!r} needs an iterable input, got "
                                      f"{type(value).__name__}", stage=step.stage.name) from exc
        if self.pool is None:
            self.pool = concurrent.futures.ThreadPoolExecutor(self.max_workers, thread_name_prefix="tidewater-map")
        futures = {self.pool.submit(self.with_retries, step, item): index for index, item in enumerate(items)}
        outputs: dict[int, Any] = {}
        errors: list[StageError] = []
        most_attempts = 0
        try:
            for future in concurrent.futures.as_completed(futures, timeout=self.remaining()):
                try:
                    outputs[futures[future]], attempts = future.result()
                    most_attempts = max(most_attempts, attempts)
                except StageError as error:
                    error.item = futures[future]
                    most_attempts = max(most_attempts, error.attempts)
                    errors.append(error)
                    if fail_fast:
                        break
        except concurrent.futures.TimeoutError:
            self.stopped.set()
            raise _RunStopped() from None
        finally:
            for future in futures:
                future.cancel()
        if self.stopped.is_set():
            raise _RunStopped()
        return [outputs[index] for index in sorted(outputs)], most_attempts, errors


def _run_stage(run: _Run, step: PlannedStage, value: Any, fail_fast: bool, config: Config) -> tuple[StageResult, list]:
    name, started = step.stage.name, time.monotonic()
    key = cache_key(name, step.stage.func, value) if step.cache else None
    if key is not None:
        cached = read_cached(config["cache.dir"], key, config["cache.ttl"])
        if cached is not MISSING:
            return StageResult(name, "succeeded", cached, 0, time.monotonic() - started, cached=True), []
    if step.stage.map:
        output, attempts, errors = run.run_map(step, value, fail_fast)
    else:
        (output, attempts), errors = run.with_retries(step, value), []
    status = "failed" if errors else "succeeded"
    if key is not None and not errors:
        write_cached(config["cache.dir"], key, output)
    return StageResult(name, status, output, attempts, time.monotonic() - started,
                       error=errors[0] if errors else None), errors


def run_tide(tide, inputs: Any = None, *, max_workers: int | None = None, dry_run: bool = False,
             timeout: float | None = None) -> TideResult:
    """Plan and run `tide`; definition and configuration errors are raised, stage errors collected."""
    started = time.monotonic()
    config = load_config()
    tide.validate()
    steps = plan(tide, config)
    run_id = secrets.token_hex(6)
    workers = max_workers if max_workers is not None else config["tide.max_workers"]
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"max_workers must be at least 1, not {workers!r}")
    fail_fast = tide.fail_fast if "fail_fast" in tide._given else config["tide.fail_fast"]
    if dry_run:
        for index, step in enumerate(steps, 1):
            log.info("run %s plan %d/%d: %s (map=%s, timeout=%gs, attempts=%d, cache=%s)", run_id, index, len(steps),
                     step.stage.name, step.stage.map, step.timeout, step.retry.max_attempts, step.cache)
        return TideResult("planned", None, time.monotonic() - started,
                          [StageResult(step.stage.name, "planned") for step in steps], [], run_id, tide.name)
    run = _Run(run_id, timeout, workers)
    status, value, results, errors = "succeeded", inputs, [], []
    try:
        for step in steps:
            if status != "succeeded":
                results.append(StageResult(step.stage.name, "skipped"))
                continue
            stage_started = time.monotonic()
            try:
                result, item_errors = _run_stage(run, step, value, fail_fast, config)
            except _RunStopped:
                status = "cancelled"
                errors.append(TideTimeoutError(f"tide run timed out after {timeout} s", stage=step.stage.name))
                results.append(StageResult(step.stage.name, "cancelled", duration_s=time.monotonic() - stage_started))
                continue
            except TidewaterError as error:  # TW-12xx and TW-1401 from this stage
                error.stage = error.stage or step.stage.name
                errors.append(error)
                results.append(StageResult(step.stage.name, "failed", attempts=error.attempts,
                                           duration_s=time.monotonic() - stage_started, error=error))
                status = "failed"
                continue
            results.append(result)
            errors.extend(item_errors)
            if item_errors and (fail_fast or not result.output):
                status = "failed"
            value = result.output
    except KeyboardInterrupt:
        run.stopped.set()
        status = "cancelled"
        errors.append(RunCancelledError("run cancelled by user"))
    finally:
        run.stopped.set()  # abandoned attempts still running see context.cancelled() == True
        if run.pool is not None:
            run.pool.shutdown(wait=False, cancel_futures=True)
    if errors and status == "succeeded":
        status = "failed"
    output = value if status == "succeeded" else None
    return TideResult(status, output, time.monotonic() - started, results, errors, run_id, tide.name)
