"""A pass's due subjects read back from its due table (retention.plan.passes), a batch at a time.

Walk order: by window (archives: a window of keys per end of retention), then end of
retention, then key. A row is (key, window, end of retention, one flag per phase of the pass:
whether the key is due for it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from retention.engine.pace import Pace
from retention.engines import Connection, engine_of, sql
from retention.plan.passes import flag

Row = tuple[Any, ...]


def batches(
    conn: Connection, table: str, phases: int, size: int | Pace, stop: threading.Event
) -> Iterator[list[Row]]:
    """The pass's batches of `size` rows (or as many as the pace says, batch after batch), in
    walk order, until done or stopped."""
    last: Any = None
    while not stop.is_set():
        rows = next_keys(conn, table, phases, last, size if isinstance(size, int) else size.size())
        if not rows:
            return
        last = place(rows[-1])
        yield rows


def next_keys(conn: Connection, table: str, phases: int, last: Any, size: int) -> list[Row]:
    """The next `size` rows in walk order after `last` (see `place`; None: the first)."""
    dialect = engine_of(conn).dialect
    columns = sql.SQL(", ").join([sql.SQL("k, w, o"), *(flag(i) for i in range(phases))])
    due = dialect.temporary(table)
    if last is None:
        query = sql.SQL("SELECT {} FROM {} ORDER BY w, o, k LIMIT %s").format(columns, due)
        params: tuple[Any, ...] | dict[str, Any] = (size,)
    else:
        # last = place(row): (key, window, end of retention)
        values = [sql.Placeholder(name) for name in ("w", "o", "k")]
        query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY w, o, k LIMIT %(size)s").format(
            columns, due, dialect.after([sql.SQL(c) for c in ("w", "o", "k")], values)
        )
        params = {"w": last[1], "o": last[2], "k": last[0], "size": size}
    # PostgreSQL: not prepared, the table is recreated per run, with another key type
    return list(conn.execute(query, params, prepare=dialect.prepare_temporary))


def place(row: Row) -> Row:
    """Where a row is in the walk: (key, window, end of retention)."""
    return row[:3]


def keys_and_flags(
    rows: Sequence[Row], phases: Iterable[int]
) -> tuple[list[Any], list[list[bool]]]:
    """A batch's keys, and per phase (by index) whether each key is due for it."""
    return [row[0] for row in rows], [[bool(row[3 + i]) for row in rows] for i in phases]
