"""Waiting for worker threads from the main thread, so that a signal is still seen.

Used by batches side by side (retention.engine.workers) and by the clock's slices
(retention.plan.slices): the main thread waits in short steps, never in `Thread.join`
(interrupted, CPython 3.11 marks the thread as ended while it still runs), and after a
cancel waits a bounded time for the cancelled statements to end.
"""

from __future__ import annotations

import threading
import time

POLL = 0.05  # seconds between checks of a signal or a flag while waiting
CANCELLED_WAIT = 10.0  # seconds for cancelled statements to roll back and say so


def wait_all(ended: list[threading.Event], within: float | None = None) -> None:
    """Wait until every event is set (at most `within` seconds in all), in short waits."""
    deadline = None if within is None else time.monotonic() + within
    for done in ended:
        while not done.wait(POLL) and (deadline is None or time.monotonic() < deadline):
            pass
