"""Slices: the plan's clock evaluated on several connections at once, one slice of keys each,
gives the same figures and the same due subjects as one connection; slices partition the keys;
helpers read the run's snapshot; text keys are never sliced."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from loguru import logger
from psycopg import sql

from retention.engines.postgresql import bulk as postgresql_bulk
from retention.plan import passes, slices
from retention.plan.compute import compute_plan
from retention.plan.passes import DueTables, temp
from retention.plan.slices import (
    EVERY_KEY,
    counted_cut,
    cut,
    export_snapshot,
    reading,
    side_by_side,
    sliceable,
    worth_slicing,
)
from retention.policy.check import bound_policies
from retention.store.schema import migrate
from tests.archive_helpers import archive_policies
from tests.engine_helpers import ROOT, write_policy
from tests.test_report_support import AT, due_record_keys, hold

POLICIES = ROOT / "policies"


@pytest.fixture
def helpers(demo_db_url: str) -> Iterator[list[psycopg.Connection[Any]]]:
    with ExitStack() as stack:
        yield [stack.enter_context(psycopg.connect(demo_db_url, autocommit=True)) for _ in range(2)]


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return slice_small_tables(monkeypatch)


def slice_small_tables(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Slice the demo's few hundred patients too; returns the tasks of every sliced step."""
    monkeypatch.setattr(slices, "SMALLEST", 0)
    seen: list[int] = []
    real = slices.side_by_side

    def counted(tasks: Any, cancel: Any = None) -> Any:
        seen.append(len(tasks))
        return real(tasks, cancel)

    monkeypatch.setattr(slices, "side_by_side", counted)
    return seen


def _due(conn: psycopg.Connection[Any], due: DueTables) -> dict[str, list[tuple[Any, ...]]]:
    """Each due table's subjects with their end of retention and flags (not their window: a
    sliced plan numbers the windows of each slice, see the test of windows)."""
    return {
        name: [
            (row[0], *row[2:])
            for row in conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY o, k").format(temp(name))
            ).fetchall()
        ]
        for name in due.tables.values()
    }


@pytest.mark.parametrize("case", ["one connection", "sliced", "a helper lost", "few subjects"])
def test_archive_batches_walk_windows_of_consecutive_keys(
    demo_conn: psycopg.Connection[Any],
    helpers: list[psycopg.Connection[Any]],
    small_slices: list[int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """An archive pass's walk: windows of WINDOW due subjects in key order (per slice of keys
    when sliced, also those the run's connection takes over), each in order of the end of
    retention; one window when they all fit in one, sliced or not."""
    migrate(demo_conn)
    size = 10_000 if case == "few subjects" else 40
    monkeypatch.setattr(passes, "WINDOW", size)
    if case == "a helper lost":
        helpers[1].close()
    policies = bound_policies(demo_conn, archive_policies(tmp_path))
    due = DueTables()
    sliced = case != "one connection"
    compute_plan(demo_conn, policies, AT, rows=False, keep=due, helpers=helpers if sliced else ())
    assert bool(small_slices) == sliced
    (table,) = due.tables.values()
    walk = demo_conn.execute(
        sql.SQL("SELECT w, o, k FROM {} ORDER BY w, o, k").format(temp(table))
    ).fetchall()
    assert len(walk) == due.sizes[table] == len({k for *_, k in walk}) > 40
    windows = [[(o, k) for _, o, k in rows] for _, rows in itertools.groupby(walk, lambda r: r[0])]
    if case == "few subjects":
        assert len(windows) == 1 and windows[0] == sorted(windows[0])  # by end of retention
        return
    assert len(windows) >= 4
    for before, after in itertools.pairwise(windows):
        assert max(k for _, k in before) < min(k for _, k in after)  # consecutive key ranges
    assert all(len(w) <= size for w in windows)
    # one short window per slice at most (the last of each)
    assert sum(len(w) < size for w in windows) <= (3 if sliced else 1)
    # inside a window, by the end of retention: not key order
    assert any([k for _, k in w] != sorted(k for _, k in w) for w in windows)


@pytest.mark.parametrize("archive", [False, True])
def test_a_sliced_plan_keeps_the_same_due_subjects_and_counts(
    demo_conn: psycopg.Connection[Any],
    helpers: list[psycopg.Connection[Any]],
    small_slices: list[int],
    tmp_path: Path,
    archive: bool,
) -> None:
    migrate(demo_conn)
    hold(demo_conn, "dossier-medical", due_record_keys(demo_conn, 3))
    hold(demo_conn, "dossier-medical", due_record_keys(demo_conn, 5)[3:], released=True)
    # archive: batches walk in order of the end of retention, kept in the due table too
    folder = archive_policies(tmp_path) if archive else POLICIES
    policies = bound_policies(demo_conn, folder)
    one = DueTables()
    alone = compute_plan(demo_conn, policies, AT, rows=False, keep=one)
    expected = _due(demo_conn, one)
    assert small_slices == []
    many = DueTables()
    sliced = compute_plan(demo_conn, policies, AT, rows=False, keep=many, helpers=helpers)
    # every pass was sliced, three connections each
    assert small_slices and set(small_slices) == {3}
    assert len(small_slices) == len(many.tables)
    assert sliced == alone
    reasons = [list(p.undeterminable_reasons) for policy in sliced.policies for p in policy.phases]
    assert reasons == [
        list(p.undeterminable_reasons) for policy in alone.policies for p in policy.phases
    ]
    assert _due(demo_conn, many) == expected
    assert many.sizes == one.sizes
    # the figures exercise holds, undeterminable subjects, several passes, archives' order
    phases = [p for policy in alone.policies for p in policy.phases]
    assert any(p.held_subjects for p in phases)
    assert any(p.undeterminable_reasons for p in phases)
    assert len(many.tables) >= (1 if archive else 3)
    if archive:
        (table,) = expected.values()
        assert phases[0].action == "archive" and len(table) == phases[0].due_subjects > 20
        assert len({row[1] for row in table}) > 5
    # the helpers' own tables are gone, their transactions ended
    for conn in helpers:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        mine = "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()"
        assert conn.execute(mine).fetchone() == (0,)


def test_text_or_nullable_keys_are_not_sliced(
    demo_conn: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slices, "SMALLEST", 0)
    demo_conn.execute(
        "CREATE TABLE persons (code text PRIMARY KEY, seen date NOT NULL);"
        "CREATE TABLE persons_int (id integer PRIMARY KEY, seen date NOT NULL);"
        "CREATE TABLE persons_null (id integer UNIQUE, seen date NOT NULL);"
        "CREATE TABLE mails (id serial PRIMARY KEY, owner text, owner_id bigint);"
        "INSERT INTO persons SELECT 'p' || i, DATE '2001-01-01' FROM generate_series(1, 50) i;"
        "INSERT INTO persons_int SELECT i, DATE '2001-01-01' FROM generate_series(1, 50) i;"
        "INSERT INTO persons_null SELECT nullif(i, 7), DATE '2001-01-01' "
        "FROM generate_series(1, 50) i"
    )
    text = """
    name: {name}
    subject: {{table: {table}, key: {key}}}
    related:
      links:
        - table: mails
          column: {link}
    dates:
      seen: {{column: seen}}
    retain_until: seen + 1 year
    phases:
      - name: destruction
        due: seen + 1 year
        action: purge
    """
    folder = write_policy(
        tmp_path, text.format(name="by-code", table="persons", key="code", link="owner"), "a.yaml"
    )
    write_policy(
        folder,
        text.format(name="by-id", table="persons_int", key="id", link="owner_id"),
        "b.yaml",
    )
    unlinked = """
    name: by-nullable-id
    subject: {table: persons_null, key: id}
    dates:
      seen: {column: seen}
    retain_until: seen + 1 year
    phases:
      - name: destruction
        due: seen + 1 year
        action: purge
    """
    write_policy(folder, unlinked, "c.yaml")
    found = {p.name: p for p in bound_policies(demo_conn, folder)}
    assert not sliceable(found["by-code"])
    assert cut(demo_conn, found["by-code"], 2, 50) == [EVERY_KEY]
    assert counted_cut(demo_conn, found["by-code"], 2) == (50, [EVERY_KEY])
    assert sliceable(found["by-id"])
    assert len(cut(demo_conn, found["by-id"], 2, 50)) == 2
    # a unique key that may be NULL: such a subject would lie in no slice
    assert not sliceable(found["by-nullable-id"])


def test_helpers_read_the_snapshot_of_the_main_transaction(
    demo_conn: psycopg.Connection[Any], helpers: list[psycopg.Connection[Any]], demo_db_url: str
) -> None:
    count = "SELECT count(*) FROM patients"
    with demo_conn.transaction():
        demo_conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        before = demo_conn.execute(count).fetchone()
        snapshot = export_snapshot(demo_conn)
        with psycopg.connect(demo_db_url, autocommit=True) as other:  # commits after it
            other.execute(
                "DELETE FROM patients WHERE patient_id IN (SELECT patient_id FROM patients p "
                "WHERE NOT EXISTS (SELECT FROM sejours s WHERE s.patient_id = p.patient_id) "
                "AND NOT EXISTS (SELECT FROM consultations c WHERE c.patient_id = p.patient_id) "
                "LIMIT 1)"
            )
        with reading(snapshot, helpers, 16) as ready:
            assert ready == helpers
            for conn in ready:
                assert conn.execute(count).fetchone() == before
                conn.execute("CREATE TEMPORARY TABLE scratch (k int)")
        # the helpers' transactions are over (rolled back): no idle transaction left open
        for conn in helpers:
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            assert conn.execute("SELECT to_regclass('pg_temp.scratch')").fetchone() == (None,)
    assert demo_conn.execute(count).fetchone() != before  # the delete did commit


@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_copy_table_appends_every_row_whatever_the_chunk_size(
    demo_conn: psycopg.Connection[Any],
    helpers: list[psycopg.Connection[Any]],
    monkeypatch: pytest.MonkeyPatch,
    chunk: int,
) -> None:
    """A helper's rows reach the run's table intact, sent in chunks of a few rows or in one,
    after the rows already there; an empty table adds nothing."""
    monkeypatch.setattr(postgresql_bulk, "COPY_CHUNK", chunk)
    source = helpers[0]
    for conn in (source, demo_conn):
        conn.execute("CREATE TEMPORARY TABLE moved (k integer, d date, t text, f boolean)")
        conn.execute("CREATE TEMPORARY TABLE empty (LIKE moved)")
    source.execute(
        "INSERT INTO moved SELECT i, DATE '2020-01-01' + i, repeat('x', i % 50), i % 3 = 0 "
        "FROM generate_series(1, 5000) AS i"
    )
    demo_conn.execute("INSERT INTO moved VALUES (0, NULL, NULL, NULL)")
    slices.copy_table(source, demo_conn, temp("moved"))
    slices.copy_table(source, demo_conn, temp("empty"))
    everything = "SELECT * FROM moved ORDER BY k"
    expected = [(0, None, None, None), *source.execute(everything).fetchall()]
    assert demo_conn.execute(everything).fetchall() == expected
    assert demo_conn.execute("SELECT count(*) FROM empty").fetchone() == (0,)


def test_a_helper_that_cannot_join_leaves_its_slice_to_the_run(
    demo_conn: psycopg.Connection[Any],
    helpers: list[psycopg.Connection[Any]],
    small_slices: list[int],
) -> None:
    policies = bound_policies(demo_conn, POLICIES)
    one = DueTables()
    alone = compute_plan(demo_conn, policies, AT, rows=False, keep=one)
    expected = _due(demo_conn, one)
    helpers[1].close()  # e.g. ended by an administrator, or by idle_session_timeout
    logs: list[str] = []
    sink = logger.add(logs.append, format="{message}", level="WARNING")
    try:
        many = DueTables()
        sliced = compute_plan(demo_conn, policies, AT, rows=False, keep=many, helpers=helpers)
    finally:
        logger.remove(sink)
    assert sliced == alone and _due(demo_conn, many) == expected
    assert small_slices and set(small_slices) == {2}  # the run and the helper still open
    assert any("cannot read the run's snapshot" in line for line in logs)


def test_side_by_side_returns_in_order_and_raises_after_all_have_ended() -> None:
    ended: list[int] = []

    def task(i: int, fail: bool = False) -> Callable[[], int]:
        def run() -> int:
            ended.append(i)
            if fail:
                raise ValueError(f"task {i}")
            return i * 10

        return run

    assert side_by_side([task(0), task(1), task(2)]) == [0, 10, 20]
    ended.clear()
    with pytest.raises(ValueError, match="task 1"):
        side_by_side([task(0), task(1, fail=True), task(2)])
    assert sorted(ended) == [0, 1, 2]
    # the first task failing cancels the others, which end early
    release = threading.Event()
    cancelled: list[bool] = []

    def waits() -> int:
        assert release.wait(10)
        return 1

    def cancel() -> None:
        cancelled.append(True)
        release.set()

    with pytest.raises(ValueError, match="task 0"):
        side_by_side([task(0, fail=True), waits], cancel=cancel)
    assert cancelled == [True]


def test_helper_connections_only_for_a_large_table(
    demo_conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = bound_policies(demo_conn, POLICIES)
    demo_conn.execute("ANALYZE")
    assert not worth_slicing(demo_conn, policies)  # a few hundred patients
    monkeypatch.setattr(slices, "SMALLEST", 100)
    assert worth_slicing(demo_conn, policies)


def test_a_failing_slice_stops_the_others_from_taking_more(
    demo_conn: psycopg.Connection[Any],
    helpers: list[psycopg.Connection[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More slices than connections: when a helper's slice fails, the queue closes, so the
    run's connection stops after the slice it was computing instead of computing every slice
    left before the error is raised."""
    closed = threading.Event()
    real_close = slices._Queue.close

    def close(self: Any) -> None:
        real_close(self)
        closed.set()

    monkeypatch.setattr(slices._Queue, "close", close)
    taken: list[tuple[str, int | None]] = []

    def work(conn: Any, chosen: Any) -> int:
        who = "main" if conn is demo_conn else "helper"
        for s in chosen:
            taken.append((who, s.low))
            if who == "helper":
                raise ValueError("slice failed")
            assert closed.wait(10)  # the run's connection ends its slice after the failure
        return 0

    many = [slices.Slice(i, i + 1) for i in range(10)]
    with demo_conn.transaction():
        demo_conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot = slices.export_snapshot(demo_conn)
        with pytest.raises(ValueError, match="slice failed"):
            one: list[Any] = helpers[:1]
            slices.spread(demo_conn, slices.Helpers(one, snapshot, 16), many, work, [])
    assert sorted(taken) == [("helper", 1), ("main", 0)]
