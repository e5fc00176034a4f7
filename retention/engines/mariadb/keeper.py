"""The driver's cursors, kept reachable until nothing else holds them: the garbage collector
never frees one, as that crashes the process.

MariaDB Connector/Python 1.1.14 (`mariadb_cursor.c`) keeps in each cursor a *borrowed* pointer
to its connection, yet releases it in the cursor's `tp_clear` (`Py_CLEAR(self->connection)`):
every driver cursor that the cycle collector frees takes away a reference its connection never
gave it. After a few, the connection is freed while still in use, and a later, unrelated call
crashes (SIGSEGV) or finds "Invalid connection or not connected" (tests/test_mariadb_connection
.py, `test_errors_collected_in_reference_cycles_leave_the_connection_whole`). Cycles that
hold a driver cursor are ordinary: an error kept in a list or in a variable holds its
traceback, whose frames hold the cursor (a local of the engine's, `self` of the driver's).
A cursor freed by reference counting, when its last reference goes, is freed correctly.

So each driver cursor is registered here as it is made, in a registry that the connection
holds: reachable, the cursor is never cleared by the collector. `sweep` lets go of the cursors
that the registry alone holds (their last reference: reference counting frees them there and
then, in the thread calling into the driver, under the connection's lock; an unread streaming
result is read away). Once the connection is closed, the cursors something else still holds go to a
process-wide orphanage, swept at each later close; at exit, if some are still held, the
collector is frozen (`gc.freeze`) so that its last passes leave them alone.
"""

from __future__ import annotations

import atexit
import gc
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

from retention.engines.mariadb.errors import quietly


def _references(obj: object) -> int:
    return sys.getrefcount(obj)


def _count_alone() -> int:
    """What `_references` says of an object held by one local variable of its caller only."""
    probe = object()
    return _references(probe)


_ALONE = _count_alone()


def _let_go(held: list[Any]) -> list[Any]:
    """The cursors of `held` that something else holds too; the others are released, and so
    freed by reference counting (`held` is emptied)."""
    kept: list[Any] = []
    while held:
        cursor = held.pop()
        if _references(cursor) > _ALONE:
            kept.append(cursor)
        del cursor  # the last reference of one held by the registry alone: freed here
    return kept


class Cursors:
    """The driver cursors of one driver connection (the caller holds the connection's lock)."""

    def __init__(self) -> None:
        self._held: list[Any] = []
        _registries.add(self)

    def make(self, new_cursor: Callable[[], Any]) -> Any:
        """A new driver cursor, registered; the cursors no longer used are let go first."""
        self.sweep()
        cursor = new_cursor()
        self._held.append(cursor)
        return cursor

    def sweep(self) -> None:
        self._held = _let_go(self._held)

    def close(self, connection: Any, failure: type[Exception]) -> None:
        """Close every cursor, then the driver connection (a `failure` is ignored: the server
        may be gone already); the cursors still held elsewhere go to the orphanage."""
        _close_each(self._held, failure)
        quietly(connection.close, failure)
        _orphanage.adopt(self._held)

    def holds(self) -> bool:
        return bool(self._held)


def _close_each(cursors: list[Any], failure: type[Exception]) -> None:
    for cursor in cursors:
        quietly(cursor.close, failure)


class _Orphanage:
    """The cursors of closed connections still held elsewhere (freeing them does no I/O)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[Any] = []

    def adopt(self, cursors: list[Any]) -> None:
        with self._lock:
            self._held.extend(cursors)
            cursors.clear()
            self._held = _let_go(self._held)

    def holds(self) -> bool:
        with self._lock:
            self._held = _let_go(self._held)
            return bool(self._held)


_orphanage = _Orphanage()
_registries: weakref.WeakSet[Cursors] = weakref.WeakSet()


@atexit.register
def _freeze_if_held() -> None:
    """At exit, module teardown drops the registries: a cursor still held by an error's frames
    would meet the collector's last passes. Frozen, it is left to the process's end."""
    if _orphanage.holds() or any(registry.holds() for registry in list(_registries)):
        gc.freeze()
