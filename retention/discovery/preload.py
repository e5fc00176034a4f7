"""The analyzer, built on a thread of its own while the scan reads the database.

Importing Presidio and spaCy and loading the French model cost a few seconds of CPU, most of it
in one thread holding Python's lock; reading the catalogue and sampling the tables mostly
waits on the server. :func:`start` builds the process-wide analyzer
(:func:`.engine.get_analyzer`) and imports the scan's analysing half (:mod:`.verdict`) on a
daemon thread, so both happen at once; :meth:`Building.wait` returns it, or raises in the
waiting thread what building it raised.

Import this module, and :mod:`.scan`, before calling :func:`start`: the thread then imports only
modules that the caller does not import at the same time (two threads importing modules that
import each other can see a half-initialised module).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from retention.threads import wait_all

if TYPE_CHECKING:
    from retention.discovery.engine import Analyzer


class Building:
    """The analyzer being built; :meth:`wait` for it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._analyzer: Analyzer | None = None
        self._error: BaseException | None = None

    def wait(self) -> Analyzer:
        """The analyzer, once built (waits in short steps: Ctrl-C is still seen)."""
        wait_all([self._done])
        if self._error is not None:
            raise self._error
        assert self._analyzer is not None  # set before _done
        return self._analyzer

    def _build(self) -> None:
        try:
            import retention.discovery.verdict  # noqa: F401  (imported here, used by scan)
            from retention.discovery.engine import get_analyzer

            self._analyzer = get_analyzer()
        except BaseException as error:  # raised again by wait, in the waiting thread
            self._error = error
        finally:
            self._done.set()


_lock = threading.Lock()
_building: Building | None = None


def start() -> Building:
    """Start building the process-wide analyzer on a daemon thread, unless it is built or being
    built already; a build that failed is started again."""
    global _building  # noqa: PLW0603  (one build per process)
    with _lock:
        if _building is None or _building._error is not None:
            _building = Building()
            thread = threading.Thread(target=_building._build, name="analyzer", daemon=True)
            thread.start()
        return _building
