"""How the command line runs a long job (generation, judging, exam creation): as the page does, a
background job of frontend.jobs, waited for in the foreground so that Ctrl-C asks it to stop cleanly, with a
progress line at most once a second.

Imports stay light at module level (main.py builds every parser at start).
"""

from __future__ import annotations

import sys
import time
from typing import Callable

from tools.core.i18n import t

PROGRESS_INTERVAL_S = 1.0


def wait_for_job(job, cancelling_key: str):
    """Wait in the foreground for a background job of this process (frontend.jobs: generation, judging, exam
    creation) to end, so that Ctrl-C reaches this thread: it prints the message `cancelling_key` and asks the
    job to stop cleanly; a second Ctrl-C quits at once. Returns the job's final progress (status "failed",
    with the reason, when the work raised; its traceback is logged)."""
    # Waiting on the job's Event with a timeout, not on Thread.join(): a join interrupted by Ctrl-C can leave
    # the thread looking finished while it still runs (a CPython issue), and the summary must wait for it.
    try:
        while job.is_running():
            job.wait(0.2)
    except KeyboardInterrupt:
        print(t(cancelling_key), file=sys.stderr, flush=True)
        job.request_stop()
        while job.is_running():
            job.wait(0.2)
    return job.progress()


def throttled(render: Callable[[object], str], interval_s: float = PROGRESS_INTERVAL_S) -> Callable[[object], None]:
    """A progress callback that prints `render(progress)` at most every `interval_s` seconds, and always
    the last state (a progress no longer `active`)."""
    last = [0.0]

    def show(progress) -> None:
        now = time.monotonic()
        if now - last[0] >= interval_s or not progress.active:
            last[0] = now
            print(render(progress), flush=True)

    return show


def follow_model_job(job) -> None:
    """Wait for a background model job of this process (train's StoppableJob: an evaluation, pair building, a
    sweep) in the foreground; Ctrl-C asks it to stop and waits for it to end cleanly."""
    try:
        job.wait()
    except KeyboardInterrupt:
        job.request_stop()
        job.wait()


def changed_lines(render: Callable[[dict], str]) -> Callable[[dict], None]:
    """A progress callback printing `render(update)` whenever the line differs from the last one printed."""
    last = [None]

    def show(update: dict) -> None:
        line = render(update)
        if line and line != last[0]:
            last[0] = line
            print(line, flush=True)

    return show


def ended_badly(job) -> str | None:
    """The line for a model job that did not complete (stopped, or failed with its message); None when it did."""
    from schema.run_state import JobState

    if job.state == JobState.COMPLETED:
        return None
    return t("eval.stopped") if job.state == JobState.STOPPED else t("eval.cli_failed", error=job.error)

