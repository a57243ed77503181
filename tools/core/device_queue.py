"""One generation at a time on the device, first come first served: the queue the chat, the API,
evaluation and model loading wait in. Threads wait with `turns`/`acquire`, the API's event loop with
`acquire_async`, in the same line. The instance is global_var's; this is only its class."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from typing import Iterator

from tools.core.errors import UserError


class DeviceQueue:
    """One generation at a time on the device, first come first served; waiting can be cancelled."""

    def __init__(self):
        self._cond = threading.Condition()
        self._waiting: deque = deque()
        self._busy = False
        # Callbacks of the asyncio waiters (acquire_async): a thread cannot wait on their loop's events.
        self._wakers: set = set()

    def _changed(self) -> None:
        """Wake every waiter, threads and event loops alike; the caller holds the lock."""
        self._cond.notify_all()
        for wake in list(self._wakers):
            wake()

    def turns(self, stop_event: threading.Event | None = None, timeout: float | None = None,
              poll: float = 0.05) -> Iterator[int]:
        """Wait in line, yielding the number of requests ahead whenever it changes.

        Returns (StopIteration value) True with the device held, False when `stop_event` was set
        while waiting; UserError on timeout. Closing the generator leaves the line.
        """
        ticket = object()
        deadline = None if timeout is None else time.monotonic() + timeout
        reported = None
        with self._cond:
            self._waiting.append(ticket)
        try:
            while True:
                with self._cond:
                    # Stop first: a request stopped before its turn must not start at all.
                    if stop_event is not None and stop_event.is_set():
                        return False
                    if not self._busy and self._waiting[0] is ticket:
                        self._busy = True
                        return True
                    if deadline is not None and time.monotonic() > deadline:
                        raise UserError("error.chat_busy_timeout", seconds=round(timeout))
                    ahead = self._waiting.index(ticket) + (1 if self._busy else 0)
                    if ahead == reported:
                        self._cond.wait(poll)
                        continue
                # Yield outside the lock: the consumer may take its time before asking again.
                reported = ahead
                yield ahead
        finally:
            with self._cond:
                self._waiting.remove(ticket)
                self._changed()

    async def acquire_async(self, stop_event: threading.Event | None = None, timeout: float | None = None,
                            poll: float = 0.25) -> bool:
        """Wait for the device on the event loop, holding no thread; same answers as `acquire`.

        For the HTTP API, whose waiting requests must not each block a worker thread. The waiter
        is woken when the device is released or the line moves, and checks `stop_event` and the
        timeout every `poll` seconds. Cancelling the task leaves the line.
        """
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(changed.set)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

        ticket = object()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._waiting.append(ticket)
            self._wakers.add(wake)
        try:
            while True:
                changed.clear()
                with self._cond:
                    if stop_event is not None and stop_event.is_set():
                        return False
                    if not self._busy and self._waiting[0] is ticket:
                        self._busy = True
                        return True
                    if deadline is not None and time.monotonic() > deadline:
                        raise UserError("error.chat_busy_timeout", seconds=round(timeout))
                try:
                    await asyncio.wait_for(changed.wait(), poll)
                except asyncio.TimeoutError:
                    pass
        finally:
            with self._cond:
                self._wakers.discard(wake)
                self._waiting.remove(ticket)
                self._changed()

    def acquire(self, stop_event: threading.Event | None = None, timeout: float | None = None) -> bool:
        """Wait for the device; False when `stop_event` was set while waiting. UserError on timeout."""
        waiting = self.turns(stop_event, timeout)
        while True:
            try:
                next(waiting)
            except StopIteration as done:
                return done.value

    def release(self) -> None:
        with self._cond:
            self._busy = False
            self._changed()

    @contextlib.contextmanager
    def slot(self, stop_event: threading.Event | None = None, timeout: float | None = None):
        """Context manager yielding True with the device held, or False when cancelled while waiting."""
        acquired = self.acquire(stop_event, timeout)
        try:
            yield acquired
        finally:
            if acquired:
                self.release()

    def status(self) -> dict:
        with self._cond:
            return {"busy": self._busy, "waiting": len(self._waiting)}
