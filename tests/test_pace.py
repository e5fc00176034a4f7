"""The pace of batches (setting `batch_seconds`, retention.engine.pace): each batch takes as many
subjects as the last ones processed in the target time, from an eighth of `batch_size` (at most
250), growing at most twofold, never beyond `batch_size`, never fewer than one. Time is the
test's own here: the batch lengths are given, not measured (no timing assertion)."""

from __future__ import annotations

import itertools
from typing import Any

import psycopg
import pytest

import retention.engine.attempt as attempt_module
from retention.engine.pace import Pace
from tests.engine_helpers import run, settings


def test_without_a_target_every_batch_takes_batch_size() -> None:
    pace = Pace(2000, 0)
    assert pace.size() == 2000
    pace.record(2000, 30.0)
    assert pace.size() == 2000


def test_the_size_follows_the_pace_within_its_bounds() -> None:
    pace = Pace(2000, 0.5)
    assert pace.size() == 250  # an eighth of batch_size first
    pace.record(250, 0.25)  # 1,000 subjects/s: 500 in 0.5 s, and twice 250 at most
    assert pace.size() == 500
    pace.record(500, 2.0)  # 250/s, averaged with 1,000/s: 625/s
    assert pace.size() == 312
    pace.record(312, 0.001)  # quick (its subjects were gone?): twice at most
    assert pace.size() == 624
    for _ in range(10):
        pace.record(pace.size(), 0.001)
    assert pace.size() == 2000  # never beyond batch_size
    for _ in range(30):
        pace.record(2000, 600.0)
    assert pace.size() == 1  # never fewer than one subject


def test_the_first_batch_takes_at_most_250_subjects_whatever_batch_size() -> None:
    pace = Pace(20_000, 0.5)
    assert pace.size() == 250  # not 2,500: a pass's first transaction is no experiment
    pace.record(250, 0.01)  # 25,000 subjects/s: 12,500 in 0.5 s, and twice 250 at most
    assert pace.size() == 500
    assert Pace(20_000, 0).size() == 20_000  # without a target, batch_size from the start


def test_a_failed_or_empty_batch_says_nothing() -> None:
    pace = Pace(800, 1.0)
    pace.record(0, 5.0)
    assert pace.size() == 100


class _Clock:
    """Each batch lasts one second: `monotonic` advances by half a second at each call (one
    call when the batch starts, one when it has committed)."""

    def __init__(self) -> None:
        self.ticks = itertools.count()

    def monotonic(self) -> float:
        return next(self.ticks) * 0.5


def test_a_run_sizes_its_batches_by_their_length(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attempt_module, "time", _Clock())
    config = settings(demo_db_url, batch_size=16, batch_seconds=4, workers=1)
    report = run(demo_conn, config, only="dossier-medical")
    assert report.outcome == "completed"
    phase = report.phases[0]
    sizes = [
        int(r[0])
        for r in demo_conn.execute(
            "SELECT subjects FROM retention.audit WHERE event = 'batch' ORDER BY seq"
        )
    ]
    assert sum(sizes) == phase.acted > 40 and len(sizes) == phase.batches
    # 2 (16/8), 4 (2 subjects/s for 4 s, at most twice 2), 8, then 16 (batch_size) each
    full, last = divmod(phase.acted - 14, 16)
    assert sizes == [2, 4, 8, *[16] * full, *([last] if last else [])]
