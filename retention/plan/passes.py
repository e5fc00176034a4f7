"""Passes: the phases of a policy that the engine walks together, and where their due subjects
are kept between the plan and the batches.

Consecutive column phases of one policy with the same due date (e.g. pseudonymise the names and
erase the contact data three years after the last visit) have the same clock for every subject.
They form one pass: the clock is computed once, each batch locks and re-checks its subjects once,
then applies every phase of the pass in the same transaction. Row actions (purge, archive) and
scrub are passes of their own.

`DueTables` names the session's temporary tables in which `run` keeps each pass's due subjects,
computed by the plan in the same statement as its counts, so that a run evaluates the clock over
the whole subject table once (the locked re-check of each batch still decides).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from retention.engines import Connection, engine_of, sql
from retention.engines.catalogue import Footprint
from retention.engines.dialect import Dialect, or_postgresql
from retention.policy.actions import spec_of
from retention.policy.bound import BoundPhase


def group_phases(phases: Iterable[BoundPhase]) -> list[tuple[BoundPhase, ...]]:
    """Consecutive phases that can share one pass, in policy order."""
    groups: list[list[BoundPhase]] = []
    for phase in phases:
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and spec_of(phase.action).together
            and spec_of(last.action).together
            and phase.due == last.due
            and phase.depends == last.depends
        ):
            groups[-1].append(phase)
        else:
            groups.append([phase])
    return [tuple(g) for g in groups]


# Due subjects per window of an archive pass's walk at most (see `ordered_by_retention`), and
# at least where the server's cache is small for its tables (`window_size`).
WINDOW = 40_000
MIN_WINDOW = 1_000
# The share of the server's page cache a window's pages may take (`window_size`).
CACHE_SHARE = 4
# The due subjects of the slice of keys at position i (a sliced plan) are numbered from i * this.
SLICE_SPAN = 10**12


def ordered_by_retention(phases: tuple[BoundPhase, ...]) -> bool:
    """Archive batches go in order of the end of retention, not of key: an archive file holds
    one segment per month in which its records' retention ends, so a batch of subjects whose
    retention ends in the same months makes a few large segments instead of hundreds of small
    ones (measured: 10,365 segments for 72,428 subjects in key order).

    In windows of consecutive due subjects in key order, though (`window_size`): in order of
    the end of retention across the whole table, every batch deletes rows on pages all over
    every table, each page is changed again and again all along the run, and after every
    checkpoint its next change writes the whole page to the WAL. Within a window, a table's
    pages are changed during that window only. Measured at 289,644 archived patients (5.6 M
    rows, the server's defaults: 128 MB of shared buffers, 1 GB max_wal_size): 13.1 GB of WAL
    and 22 checkpoints in one walk, 2.1 GB and 3 in windows (8, about 36,000 subjects each),
    the run 195 s -> 132 s; segments per file grow with the number of windows (517 -> 3,024
    in all). The due table holds each subject's place in key order (`w`, numbered from
    `SLICE_SPAN` times its slice's position in a sliced plan), made into its window once the
    pass's due subjects are counted: a daily run's then walk in one window, as in one walk."""
    return phases[0].action == "archive"


def window_size(footprint: Footprint | None, due: int) -> int:
    """Due subjects per window of an archive walk: `WINDOW`, or fewer where the server reads
    and writes its tables' pages in its own cache only (MariaDB's buffer pool: no system cache
    beneath): a window's pages must fit in a `CACHE_SHARE`th of it, else each batch reads
    pages from disk that the batch before evicted, and writes them again. A window of `n` due
    subjects spans about `n * tables / due` bytes of the tables (due subjects spread over the
    keys, their rows next to their neighbours'). Measured on MariaDB at 189,728 patients
    (72,569 archived, 436 MB of tables, a 128 MB buffer pool): windows of 40,000 subjects
    104 s, 16 GB read from disk and 46 GB written; of 8,000 54 s, 1.2 GB and 5 GB; of 3,000
    54 s, 0.8 GB and 2 GB (as the purge of the same rows)."""
    if footprint is None or footprint.table_bytes <= 0:
        return WINDOW
    fits = footprint.cache_bytes * due // (CACHE_SHARE * footprint.table_bytes)
    return max(MIN_WINDOW, min(WINDOW, fits))


def flag(index: int) -> sql.Identifier:
    """Column of a due table telling whether the subject is due for the pass's phase `index`."""
    return sql.Identifier(f"p{index}")


@dataclass
class DueTables:
    """Temporary tables (this session) holding each pass's due subjects: `k` and one flag per
    phase. Created by the plan of a run; dropped when the run ends or the next plan starts."""

    tables: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # subjects in each table, once filled

    def new(self, policy: str, phases: tuple[str, ...]) -> str:
        name = f"retention_due_{len(self.tables)}"
        self.tables[(policy, phases)] = name
        return name

    def get(self, policy: str, phases: tuple[str, ...]) -> str | None:
        return self.tables.get((policy, phases))

    def drop(self, conn: Connection) -> None:
        for name in self.tables.values():
            conn.execute(engine_of(conn).dialect.drop_temporary(name))
        self.tables.clear()
        self.sizes.clear()


def temp(name: str, dialect: Dialect | None = None) -> sql.Composable:
    """A temporary table of this session, by name, as the engine names it (PostgreSQL
    `pg_temp.name`, the default)."""
    return or_postgresql(dialect).temporary(name)
