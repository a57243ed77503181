"""How the command line runs a long job (generation, judging, exam creation): on a worker thread that
Ctrl-C asks to stop cleanly, with a progress line at most once a second.

Imports stay light at module level (main.py builds every parser at start).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable

from tools.core.i18n import t

PROGRESS_INTERVAL_S = 1.0


def run_until_done(work: Callable[[threading.Event], object], cancelling_key: str, thread_name: str) -> list:
    """Run `work(cancel)` on a worker thread, so that Ctrl-C reaches this one, which prints the message
    `cancelling_key` and sets `cancel`; a second Ctrl-C quits at once. Returns [work's result], or []
    when it raised (its traceback is already on stderr)."""
    cancel, finished, result = threading.Event(), threading.Event(), []

    def body() -> None:
        try:
            result.append(work(cancel))
        finally:
            finished.set()

    threading.Thread(target=body, name=thread_name, daemon=True).start()
    # Waiting on an Event, not on Thread.join(): a join interrupted by Ctrl-C can leave the thread
    # looking finished while it still runs (a CPython issue), and the summary must wait for it.
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        print(t(cancelling_key), file=sys.stderr, flush=True)
        cancel.set()
        while not finished.wait(0.2):
            pass
    return result


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
