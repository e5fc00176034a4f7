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
from typing import Any

import psycopg
from psycopg import sql

from retention.policy.bind import BoundPhase

MERGEABLE = frozenset({"erase", "generalize", "pseudonymize"})


def group_phases(phases: Iterable[BoundPhase]) -> list[tuple[BoundPhase, ...]]:
    """Consecutive phases that can share one pass, in policy order."""
    groups: list[list[BoundPhase]] = []
    for phase in phases:
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and phase.action in MERGEABLE
            and last.action in MERGEABLE
            and phase.due == last.due
            and phase.depends == last.depends
        ):
            groups[-1].append(phase)
        else:
            groups.append([phase])
    return [tuple(g) for g in groups]


def ordered_by_retention(phases: tuple[BoundPhase, ...]) -> bool:
    """Archive batches go in order of the end of retention, not of key: an archive file holds
    one segment per month in which its records' retention ends, so a batch of subjects whose
    retention ends in the same months makes a few large segments instead of hundreds of small
    ones (measured: 10,365 segments for 72,428 subjects in key order)."""
    return phases[0].action == "archive"


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

    def drop(self, conn: psycopg.Connection[Any]) -> None:
        for name in self.tables.values():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(temp(name)))
        self.tables.clear()
        self.sizes.clear()


def temp(name: str) -> sql.Identifier:
    """A temporary table of this session, by name."""
    return sql.Identifier("pg_temp", name)
