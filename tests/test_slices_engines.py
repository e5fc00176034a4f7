"""Slices on every engine: the plan's due subjects and the exposure's figures are the same
whether the clock is evaluated on one connection or in slices of keys on several (on MariaDB,
whose helpers share no snapshot, as on PostgreSQL, whose helpers do); the bounds partition
the keys; an archive's walk goes in windows sized to the server's cache. PostgreSQL-only
details (the shared snapshot, a helper that cannot join, the copy's chunks, windows of a given
size): tests/test_slices.py."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from retention.db import connect
from retention.discovery.inventory import save_scan
from retention.discovery.model import ColumnVerdict, ScanResult
from retention.engines import Connection, engine_of, sql
from retention.engines.catalogue import Footprint
from retention.plan import passes, slices
from retention.plan.compute import compute_plan
from retention.plan.passes import MIN_WINDOW, WINDOW, DueTables, temp, window_size
from retention.plan.slices import EVERY_KEY, counted_cut, cut
from retention.policy.check import bound_policies
from retention.report.exposure import compute_exposure
from retention.report.snapshots import snapshots
from retention.settings import Settings
from retention.store.schema import migrate
from tests.archive_helpers import archive_policies
from tests.engine_helpers import ROOT, run
from tests.fix_engines import EngineDB, _engine_db
from tests.test_report_support import AT, DEMO_VERDICTS
from tests.test_slices import slice_small_tables

POLICIES = ROOT / "policies"


@pytest.fixture
def helpers(engine_demo: EngineDB) -> Iterator[list[Connection]]:
    with ExitStack() as stack:
        yield [stack.enter_context(connect(Settings(), url=engine_demo.url)) for _ in range(2)]


def _due(db: EngineDB, due: DueTables) -> dict[str, list[tuple[Any, ...]]]:
    """Each due table's subjects with their end of retention and flags (not their window)."""
    dialect = engine_of(db.conn).dialect
    return {
        name: [
            (row[0], *row[2:])
            for row in db.conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY o, k").format(temp(name, dialect))
            ).fetchall()
        ]
        for name in due.tables.values()
    }


def _hold(db: EngineDB, keys: list[Any], *, released: bool) -> None:
    since = datetime(2026, 1, 5, tzinfo=UTC)
    for key in keys:
        db.conn.execute(
            sql.SQL(
                "INSERT INTO {} (policy, subject_key, reason, held_since, released_at, "
                "subject_table, subject_column) "
                "VALUES ('dossier-medical', %s, 'claim', %s, %s, %s, 'patient_id')"
            ).format(db.tool("holds")),
            (
                str(key),
                since,
                datetime(2026, 2, 5, tzinfo=UTC) if released else None,
                db.table("patients"),
            ),
        )


@pytest.mark.parametrize("archive", [False, True])
@pytest.mark.mariadb_only(
    "MySQL's plan is not cut into slices (slice_bound None)", params=["mariadb"]
)
def test_a_sliced_plan_keeps_the_same_due_subjects_and_counts(
    engine_demo: EngineDB,
    helpers: list[Connection],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    archive: bool,
) -> None:
    db, conn = engine_demo, engine_demo.conn
    seen = slice_small_tables(monkeypatch)
    migrate(conn, db.tool_schema)
    folder = archive_policies(tmp_path) if archive else POLICIES
    policies = bound_policies(conn, folder, tool_schema=db.tool_schema)
    first = DueTables()
    compute_plan(conn, policies, AT, schema=db.tool_schema, rows=False, keep=first)
    due_keys = [row[0] for rows in _due(db, first).values() for row in rows]
    _hold(db, due_keys[:3], released=False)
    _hold(db, due_keys[3:5], released=True)
    one = DueTables()
    alone = compute_plan(conn, policies, AT, schema=db.tool_schema, rows=False, keep=one)
    expected = _due(db, one)
    assert seen == []
    many = DueTables()
    sliced = compute_plan(
        conn, policies, AT, schema=db.tool_schema, rows=False, keep=many, helpers=helpers
    )
    # every pass was sliced, three connections each
    assert seen and set(seen) == {3}
    assert len(seen) == len(many.tables)
    assert sliced == alone
    assert _due(db, many) == expected
    assert many.sizes == one.sizes
    phases = [p for policy in alone.policies for p in policy.phases]
    assert any(p.held_subjects for p in phases)
    assert any(p.undeterminable_reasons for p in phases)
    # an archive's plan counts, slice by slice, the subjects going to the group `undated`
    assert any(p.undated_subjects for p in phases) == archive
    assert sum(len(rows) for rows in expected.values()) > 20
    # the helpers' transactions ended
    for helper in helpers:
        assert not engine_of(helper).session.in_transaction(helper)


def test_a_sliced_exposure_has_the_same_figures(
    engine_demo: EngineDB, helpers: list[Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, conn = engine_demo, engine_demo.conn
    migrate(conn, db.tool_schema)
    verdicts = tuple(
        ColumnVerdict(db.schema, table, column, entity, score, {"test": True})
        for table, column, entity, score in DEMO_VERDICTS
    )
    save_scan(
        conn,
        ScanResult(datetime(2026, 1, 2, tzinfo=UTC), verdicts),
        schema=db.tool_schema,
        scope={"test": True},
    )
    policies = bound_policies(conn, POLICIES, tool_schema=db.tool_schema)
    alone = compute_exposure(conn, policies, AT, schema=db.tool_schema)
    seen = slice_small_tables(monkeypatch)
    sliced = compute_exposure(conn, policies, AT, schema=db.tool_schema, helpers=helpers)
    assert seen, "the exposure was not sliced"
    assert sliced == alone
    patients = alone.population(db.table("patients"))
    assert patients is not None
    assert patients.past_retention and patients.undeterminable and patients.with_direct_identifiers


def _bounded_slices(monkeypatch: pytest.MonkeyPatch, conn: Connection, bound: int) -> list[int]:
    """Slices of at most `bound` subjects on this engine (more slices than connections);
    returns the number of slices of each cut, and counts the statements made to group a
    slice's aggregates at once."""
    session = type(engine_of(conn).session)
    monkeypatch.setattr(session, "slice_bound", lambda self, conn: bound)
    made: list[int] = []
    real_cut = slices.cut

    def counted_cut_(*args: Any) -> list[slices.Slice]:
        found = real_cut(*args)
        made.append(len(found))
        return found

    monkeypatch.setattr(slices, "cut", counted_cut_)
    return made


@pytest.mark.mariadb_only(
    "MySQL's plan is not cut into slices (slice_bound None)", params=["mariadb"]
)
def test_more_slices_than_connections_give_the_same_plan_and_exposure(
    engine_demo: EngineDB, helpers: list[Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the engine bounds a slice's subjects, the connections take the slices left one
    after the other: every slice once, the same due subjects and figures as on one
    connection."""
    db, conn = engine_demo, engine_demo.conn
    migrate(conn, db.tool_schema)
    policies = bound_policies(conn, POLICIES, tool_schema=db.tool_schema)
    one = DueTables()
    alone = compute_plan(conn, policies, AT, schema=db.tool_schema, rows=False, keep=one)
    expected = _due(db, one)
    exposure = compute_exposure(conn, policies, AT, schema=db.tool_schema)
    seen = slice_small_tables(monkeypatch)
    made = _bounded_slices(monkeypatch, conn, 40)
    grouped: list[str] = []
    session = type(engine_of(conn).session)
    real = session.grouped_at_once

    def spied(self: Any, conn: Connection, statement: sql.Composed) -> sql.Composed:
        grouped.append(type(conn).__name__)
        return real(self, conn, statement)

    monkeypatch.setattr(session, "grouped_at_once", spied)
    many = DueTables()
    sliced = compute_plan(
        conn, policies, AT, schema=db.tool_schema, rows=False, keep=many, helpers=helpers
    )
    assert made and min(made) > 3, "fewer slices than connections"
    assert seen and set(seen) == {3}
    assert sliced == alone
    assert _due(db, many) == expected
    assert many.sizes == one.sizes
    if db.engine == "mariadb":  # every slice's clock grouped at once, by every connection
        assert len(grouped) >= sum(made)  # (PostgreSQL's plan is one statement with CTEs)
    assert compute_exposure(conn, policies, AT, schema=db.tool_schema, helpers=helpers) == exposure


@pytest.mark.mariadb_only(
    "MySQL's plan is not cut into slices (slice_bound None)", params=["mariadb"]
)
def test_a_slice_s_bound_follows_the_server_s_memory_for_temporary_tables(
    engine_demo: EngineDB,
) -> None:
    """MariaDB: the subjects whose aggregates fit in an in-memory temporary table (the smaller
    of tmp_table_size and max_heap_table_size), never fewer than MIN_SLICE; PostgreSQL: no
    bound. The statement grouped at once runs (SET STATEMENT ... FOR) and returns what it
    returns without."""
    conn = engine_demo.conn
    session = engine_of(conn).session
    if engine_demo.engine == "postgresql":
        assert session.slice_bound(conn) is None
        return
    from retention.engines.mariadb.session import GROUP_BYTES, MIN_SLICE

    conn.execute("SET SESSION tmp_table_size = 8388608, SESSION max_heap_table_size = 33554432")
    assert session.slice_bound(conn) == 8388608 // GROUP_BYTES
    conn.execute("SET SESSION max_heap_table_size = 16384")
    assert session.slice_bound(conn) == MIN_SLICE
    query = sql.SQL("SELECT count(*), max(patient_id) FROM {}").format(
        sql.Identifier(engine_demo.schema, "patients")
    )
    grouped = session.grouped_at_once(conn, query)
    assert conn.execute(grouped).fetchall() == conn.execute(query).fetchall()
    row = conn.execute("SELECT @@optimizer_switch").fetchone()
    assert row is not None and "split_materialized=on" in row[0]  # that statement's only


def test_a_window_fits_in_a_share_of_the_servers_cache() -> None:
    """Due subjects per window: those whose tables' pages fit in a quarter of the cache, given
    the share of the tables a window spans (its due subjects among all of them)."""
    mib = 2**20
    # 436 MB of tables, a 128 MB buffer pool, 72,569 due subjects (the bench at 189,728)
    assert window_size(Footprint(436 * mib, 128 * mib), 72_569) == 5_326
    assert window_size(Footprint(436 * mib, 16 * 2**30), 72_569) == WINDOW  # large: at most
    assert window_size(Footprint(436 * mib, 8 * mib), 72_569) == MIN_WINDOW  # tiny: at least
    assert window_size(None, 72_569) == WINDOW  # read through the system's cache too
    assert window_size(Footprint(0, 128 * mib), 10) == WINDOW  # nothing measured


@pytest.mark.parametrize("sliced", [False, True])
def test_an_archive_walk_s_windows_fit_the_servers_cache(
    engine_demo: EngineDB,
    helpers: list[Connection],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sliced: bool,
) -> None:
    """MariaDB reads and writes its pages in its buffer pool only: an archive walks windows
    sized to it (here, as if it were tiny: the smallest windows), of consecutive keys, each
    in order of the end of retention, counted from each slice's first subject. PostgreSQL,
    read through the system's cache too, walks windows of `WINDOW` (here all in one)."""
    db, conn = engine_demo, engine_demo.conn
    slice_small_tables(monkeypatch)
    monkeypatch.setattr(passes, "MIN_WINDOW", 30)
    monkeypatch.setattr(passes, "CACHE_SHARE", 10**12)
    migrate(conn, db.tool_schema)
    policies = bound_policies(conn, archive_policies(tmp_path), tool_schema=db.tool_schema)
    (policy,) = policies
    footprint = engine_of(conn).catalogue.footprint(conn, policy.graph.tables)
    if db.engine == "mariadb":
        (pool,) = conn.execute("SELECT @@innodb_buffer_pool_size").fetchone() or (0,)
        assert footprint is not None and footprint.cache_bytes == int(pool) > 0
        assert footprint.table_bytes >= 16384 * len(policy.graph.tables)  # a page each at least
    else:
        assert footprint is None
    due = DueTables()
    compute_plan(
        conn, policies, AT, schema=db.tool_schema, rows=False, keep=due,
        helpers=helpers if sliced else (),
    )  # fmt: skip
    (table,) = due.tables.values()
    walk = conn.execute(
        sql.SQL("SELECT w, o, k FROM {} ORDER BY w, o, k").format(
            temp(table, engine_of(conn).dialect)
        )
    ).fetchall()
    assert len(walk) == due.sizes[table] == len({k for *_, k in walk}) > 60
    windows = [[(o, k) for _, o, k in rows] for _, rows in itertools.groupby(walk, lambda r: r[0])]
    if db.engine == "postgresql":
        assert len(windows) == 1
        return
    assert all(len(w) <= 30 for w in windows)
    # counted from each slice's first subject: the slices' windows apart
    assert (max(w for w, *_ in walk) >= passes.SLICE_SPAN) == sliced
    for before, after in itertools.pairwise(windows):
        assert max(k for _, k in before) < min(k for _, k in after)  # consecutive key ranges
    # one short window per slice at most (the last of each)
    assert sum(len(w) < 30 for w in windows) <= (3 if sliced else 1)
    assert any([k for _, k in w] != sorted(k for _, k in w) for w in windows)


def test_slices_partition_the_keys(engine_demo: EngineDB, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each key in exactly one slice, however many; one slice below SMALLEST or for one
    connection; `counted_cut` counts and cuts as `cut` does."""
    db, conn = engine_demo, engine_demo.conn
    monkeypatch.setattr(slices, "SMALLEST", 0)
    (policy,) = bound_policies(conn, POLICIES, only="dossier-medical", tool_schema=db.tool_schema)
    keys = [
        row[0]
        for row in conn.execute(
            sql.SQL("SELECT patient_id FROM {} ORDER BY 1").format(sql.Identifier("patients"))
        )
    ]
    for count in (2, 3, 7):
        cut_into = cut(conn, policy, count, len(keys))
        assert len(cut_into) == count
        assert cut_into[0].low is None and cut_into[-1].high is None
        sizes = [
            sum(1 for k in keys if (s.low is None or k >= s.low) and (s.high is None or k < s.high))
            for s in cut_into
        ]
        assert sum(sizes) == len(keys)  # each key in exactly one slice (the bounds ascend)
        # even: the demo's keys are dense (PostgreSQL cuts by rank, MariaDB by value)
        assert max(sizes) - min(sizes) <= 1 + len(keys) // 20
        assert counted_cut(conn, policy, count) == (len(keys), cut_into)
    monkeypatch.setattr(slices, "SMALLEST", len(keys) + 1)
    assert cut(conn, policy, 3, len(keys)) == [EVERY_KEY]
    assert counted_cut(conn, policy, 3) == (len(keys), [EVERY_KEY])
    assert cut(conn, policy, 1, 10**9) == [EVERY_KEY]


def _rows(db: EngineDB) -> dict[str, list[tuple[Any, ...]]]:
    """Every application table's rows, in the order of their first column."""
    names = [
        str(row[0])
        for row in db.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_type = 'BASE TABLE' ORDER BY 1",
            (db.schema,),
        )
    ]
    return {
        name: [
            tuple(row)
            for row in db.conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(name))
            )
        ]
        for name in names
    }


def _unqualified(data: Any, schema: str) -> Any:
    """`data` (JSON) with the application's schema (the database, on MariaDB) named `S`."""
    return json.loads(json.dumps(data).replace(f'"{schema}.', '"S.'))


def test_a_run_on_three_connections_ends_as_a_run_on_one(
    request: pytest.FixtureRequest, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's policies run with one connection, and on another copy with three (batches
    side by side, the plan and the exposure after the run in slices): the same plan, the same
    rows left in every table, the same work per phase, the same exposure stored."""
    with (
        _engine_db(request, engine, demo=True) as serial,
        _engine_db(request, engine, demo=True) as concurrent,
    ):
        first = run(serial.conn, serial.settings(batch_size=10, workers=1), at=AT)
        seen = slice_small_tables(monkeypatch)
        second = run(concurrent.conn, concurrent.settings(batch_size=10, workers=3), at=AT)
        assert seen, "nothing was sliced"
        assert first.outcome == second.outcome == "completed"
        assert first.plan is not None and second.plan is not None
        assert _unqualified(second.plan.to_json(), concurrent.schema) == _unqualified(
            first.plan.to_json(), serial.schema
        )
        for one, many in zip(first.phases, second.phases, strict=True):
            assert many.acted == one.acted and many.batches >= one.batches // 3
            assert _unqualified(many.rows, concurrent.schema) == _unqualified(
                one.rows, serial.schema
            )
        assert sum(p.acted for p in first.phases) > 50
        assert _rows(concurrent) == _rows(serial)
        (after_one,) = snapshots(serial.conn, serial.tool_schema)
        (after_many,) = snapshots(concurrent.conn, concurrent.tool_schema)
        assert _unqualified(after_many.exposure.to_json(), concurrent.schema) == _unqualified(
            after_one.exposure.to_json(), serial.schema
        )
