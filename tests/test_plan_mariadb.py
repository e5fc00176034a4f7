"""`retention plan` on MariaDB: the same plan as on PostgreSQL for the same hospital.

The demo hospital is built on both real servers with the same seed (tests/test_demo_mariadb.py
shows their rows are equal); the plan of the shipped policies must then count the same subjects
and rows per policy and phase, with the same JSON shape. Table names differ only by their
schema (a database on MariaDB, `public` on PostgreSQL), which the comparison leaves out.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.cli.plan import render_plan
from retention.db import connect
from retention.demo.generate import generate
from retention.demo.schema import create_schema
from retention.engines import Connection, engine_of, sql
from retention.engines.clock import clock_sql
from retention.engines.mariadb.session import database_url
from retention.plan.clock import SUBJECT, clock_query
from retention.plan.compute import compute_plan
from retention.plan.explain import explain_graph, render_tree
from retention.policy.bound import BoundPolicy
from retention.policy.check import bound_policies
from retention.settings import Settings
from tests import cli_zygote
from tests.fix_db import temporary_database

TODAY = date(2025, 6, 1)
PATIENTS = 150
SEED = 7
ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
# the tool's schema the plans read (holds, approvals): a name of these tests' own, absent unless
# a test creates it, so that another test's `retention` database on the shared server is not read
TOOL = f"rt_plantool_{os.getpid()}"


def _drop(admin_url: str, name: str) -> None:
    with connect(Settings(), url=admin_url) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def maria(mariadb_admin_url: str) -> Iterator[tuple[str, Connection]]:
    """The demo hospital on MariaDB: its URL and a connection, read-only for these tests."""
    name = f"rt_planm{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    with connect(Settings(), url=mariadb_admin_url) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(mariadb_admin_url, name)
    try:
        with connect(Settings(), url=url) as conn:
            create_schema(conn)
            generate(conn, patients=PATIENTS, seed=SEED, today=TODAY)
            yield url, conn
    finally:
        _drop(mariadb_admin_url, name)


@pytest.fixture(scope="module")
def pg(pg_admin_url: str) -> Iterator[tuple[str, Connection]]:
    """The same hospital on PostgreSQL."""
    with temporary_database(pg_admin_url) as url, connect(Settings(), url=url) as conn:
        create_schema(conn)
        generate(conn, patients=PATIENTS, seed=SEED, today=TODAY)
        yield url, conn


def _policies(conn: Connection) -> list[BoundPolicy]:
    return bound_policies(conn, POLICIES, tool_schema="retention")


def _unqualified(document: Any) -> Any:
    """A plan's JSON with every `schema.table` name as `table` (keys and values)."""
    if isinstance(document, dict):
        return {_unqualified(k): _unqualified(v) for k, v in document.items()}
    if isinstance(document, list):
        return [_unqualified(v) for v in document]
    if isinstance(document, str) and document.count(".") == 1 and " " not in document:
        return document.split(".", 1)[1]
    return document


@pytest.mark.parametrize("at", [TODAY, date(2035, 6, 1)])
def test_the_plan_on_mariadb_is_the_plan_on_postgresql(
    maria: tuple[str, Connection], pg: tuple[str, Connection], at: date
) -> None:
    on_maria = compute_plan(maria[1], _policies(maria[1]), at, schema=TOOL).to_json()
    on_pg = compute_plan(pg[1], _policies(pg[1]), at, schema=TOOL).to_json()
    assert _unqualified(on_maria) == _unqualified(on_pg)
    counts = {
        (p["name"], ph["name"]): (ph["due_subjects"], ph["undeterminable_subjects"])
        for p in on_pg["policies"]
        for ph in p["phases"]
    }
    assert len(counts) == 3
    if at == TODAY:  # the comparison means something: subjects due, others kept
        assert all(due > 0 for due, _ in counts.values())
        assert any(undeterminable > 0 for _, undeterminable in counts.values())
        assert all(ph["rows"] for p in on_pg["policies"] for ph in p["phases"])


def test_plan_one_phase_and_subjects_only_on_mariadb(
    maria: tuple[str, Connection], pg: tuple[str, Connection]
) -> None:
    """`run` asks for one phase without rows: the same counts, no row counted."""
    on_maria = compute_plan(
        maria[1], _policies(maria[1]), TODAY, rows=False, only_phase="destruction", schema=TOOL
    ).to_json()
    on_pg = compute_plan(
        pg[1], _policies(pg[1]), TODAY, rows=False, only_phase="destruction", schema=TOOL
    ).to_json()
    assert _unqualified(on_maria) == _unqualified(on_pg)
    assert [p["name"] for p in on_maria["policies"]] == ["dossier-medical"]


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    env.update(
        RETENTION_DATABASE_URL=url, RETENTION_POLICIES_DIR=str(POLICIES), RETENTION_SCHEMA_NAME=TOOL
    )
    return cli_zygote.run(list(args), env, cwd=ROOT)


def test_retention_plan_command_prints_the_same_on_both_engines(
    maria: tuple[str, Connection], pg: tuple[str, Connection]
) -> None:
    outputs = []
    for url, conn in (maria, pg):
        done = _cli(url, "plan", "--at", TODAY.isoformat())
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        schema = _policies(conn)[0].subject.qname[0]
        outputs.append(done.stdout.replace(f"{schema}.", ""))
    assert outputs[0] == outputs[1]
    assert "due:" in outputs[0]
    json_done = _cli(maria[0], "plan", "--at", TODAY.isoformat(), "--format", "json")
    assert json_done.returncode == 0, json_done.stderr[-2000:]
    assert '"due_subjects"' in json_done.stdout


def test_render_plan_is_the_same_text(
    maria: tuple[str, Connection], pg: tuple[str, Connection]
) -> None:
    texts = []
    for _, conn in (maria, pg):
        policies = _policies(conn)
        text = render_plan(compute_plan(conn, policies, TODAY, schema=TOOL), "Europe/Paris")
        texts.append(text.replace(f"{policies[0].subject.qname[0]}.", ""))
    assert texts[0] == texts[1]


def test_explain_on_mariadb_counts_what_postgresql_counts(
    maria: tuple[str, Connection], pg: tuple[str, Connection]
) -> None:
    trees = []
    for _, conn in (maria, pg):
        policies = {p.name: p for p in _policies(conn)}
        schema = policies["dossier-medical"].subject.qname[0]
        lines = render_tree(explain_graph(conn, policies["dossier-medical"]))
        trees.append([line.replace(f"{schema}.", "") for line in lines])
    assert trees[0] == trees[1]
    assert len(trees[0]) > 5


@pytest.mark.mariadb_only("reads @@tx_isolation")
def test_the_plan_reads_one_snapshot_on_mariadb(mariadb_url: str) -> None:
    """Inside the plan's transaction, rows another session commits are not seen (REPEATABLE
    READ with a consistent snapshot taken at its start), a read-only one refuses writes, and
    the session is back to READ COMMITTED afterwards."""
    table = sql.Identifier("retention_snapshot_probe")
    count = sql.SQL("SELECT count(*) FROM {}").format(table)
    with (
        connect(Settings(), url=mariadb_url) as reader,
        connect(Settings(), url=mariadb_url) as writer,
    ):
        writer.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY) ENGINE=InnoDB").format(table))
        writer.execute(sql.SQL("INSERT INTO {} VALUES (1), (2)").format(table))
        snapshots = engine_of(reader).snapshots
        with snapshots.transaction(reader, read_only=True):
            assert reader.execute(count).fetchone() == (2,)
            with writer.transaction():
                writer.execute(sql.SQL("INSERT INTO {} VALUES (3)").format(table))
            assert reader.execute(count).fetchone() == (2,)
        assert reader.execute(count).fetchone() == (3,)
        assert reader.execute("SELECT @@tx_isolation").fetchone() == ("READ-COMMITTED",)
        delete = sql.SQL("DELETE FROM {} WHERE id = 3").format(table)
        with pytest.raises(psycopg.Error), snapshots.transaction(reader, read_only=True):
            reader.execute(delete)
        with snapshots.transaction(reader, read_only=False):
            reader.execute(delete)
        assert reader.execute(count).fetchone() == (2,)


def test_the_plan_copies_rows_without_locking_them_on_mariadb(
    maria: tuple[str, Connection],
) -> None:
    """The plan's transaction copies every patient into temporary tables (the clock): the
    application must still change any patient meanwhile, and a patient the application holds
    locked must not stop the plan. In REPEATABLE READ, InnoDB read the rows an INSERT ...
    SELECT or CREATE ... SELECT copies with shared locks held to the commit: the UPDATE below
    waited for its lock timeout (error 1205), and the plan for the application's lock."""
    url, conn = maria
    patients = sql.Identifier("patients")
    with connect(Settings(), url=url) as application:
        application.execute("SET SESSION innodb_lock_wait_timeout = 1")
        conn.execute("SET SESSION innodb_lock_wait_timeout = 1")
        first, second = (
            r[0]
            for r in application.execute(
                sql.SQL("SELECT patient_id FROM {} ORDER BY patient_id LIMIT 2").format(patients)
            )
        )
        try:
            with application.transaction(force_rollback=True):
                application.execute(
                    sql.SQL("SELECT nom FROM {} WHERE patient_id = %s FOR UPDATE").format(patients),
                    (first,),
                )
                plan = compute_plan(conn, _policies(conn), TODAY, schema=TOOL)  # not waiting
                assert any(ph.due_subjects for p in plan.policies for ph in p.phases)
            with engine_of(conn).snapshots.transaction(conn, read_only=False):
                conn.execute(
                    sql.SQL("CREATE TEMPORARY TABLE retention_probe AS SELECT * FROM {}").format(
                        patients
                    )
                )
                with application.transaction(force_rollback=True):
                    changed = application.execute(
                        sql.SQL("UPDATE {} SET nom = nom WHERE patient_id = %s").format(patients),
                        (second,),
                    ).rowcount
                    assert changed == 1
            conn.execute("DROP TEMPORARY TABLE retention_probe")
        finally:
            conn.execute("SET SESSION innodb_lock_wait_timeout = DEFAULT")


def test_a_snapshot_transaction_is_refused_inside_another(mariadb_conn: Connection) -> None:
    snapshots = engine_of(mariadb_conn).snapshots
    with (
        mariadb_conn.transaction(),
        pytest.raises(psycopg.ProgrammingError),
        snapshots.transaction(mariadb_conn, read_only=True),
    ):
        pass


@pytest.mark.mariadb_only("reads @@tx_isolation")
def test_mariadb_shares_no_snapshot_its_helpers_read_their_own_moments(
    mariadb_conn: Connection, mariadb_url: str
) -> None:
    """No snapshot to export: a helper joins with an empty token and begins a transaction of
    its own (READ COMMITTED, the session's), which the slices' caller rolls back."""
    snapshots = engine_of(mariadb_conn).snapshots
    assert snapshots.export(mariadb_conn) == ""
    with connect(Settings(), url=mariadb_url) as helper:
        session = engine_of(helper).session
        assert not session.in_transaction(helper)
        snapshots.join(helper, "")
        assert session.in_transaction(helper)
        row = helper.execute("SELECT @@SESSION.tx_isolation").fetchone()
        assert row == ("READ-COMMITTED",)
        helper.execute("ROLLBACK")
        assert not session.in_transaction(helper)


def test_a_run_s_due_tables_hold_the_same_subjects_on_both_engines(
    maria: tuple[str, Connection], pg: tuple[str, Connection]
) -> None:
    """A run keeps each pass's due subjects in a temporary table (PostgreSQL: filled by the
    plan's own statement; MariaDB: from the clock stored once, `_pass_apart`): the same keys,
    flags and places in the walk on both, the same counts; no helper connection is worth
    opening for so few subjects."""
    from retention.plan.passes import DueTables, temp
    from retention.plan.slices import worth_slicing

    kept = []
    for _, conn in (maria, pg):
        due = DueTables()
        plan = compute_plan(conn, _policies(conn), TODAY, rows=False, keep=due, schema=TOOL)
        dialect = engine_of(conn).dialect
        tables = {}
        for (policy, phases), name in sorted(due.tables.items()):
            rows = conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY k").format(temp(name, dialect))
            ).fetchall()
            tables[(policy, phases)] = [tuple(int(v) for v in row) for row in rows]
            assert due.sizes[name] == len(rows)
        due.drop(conn)
        kept.append((_unqualified(plan.to_json()), tables))
    assert kept[0] == kept[1]
    assert all(rows for rows in kept[0][1].values())
    assert not worth_slicing(maria[1], _policies(maria[1]))


def _subject_read(conn: Connection, policy: BoundPolicy) -> list[tuple[str, str | None]]:
    """How the plan of the policy's clock over every subject reads the subject table, and
    whether its aggregates are looked up per subject (LATERAL DERIVED): (select type, key)."""
    clock = clock_query(policy, policy.phases[0], TODAY, holds_table=None, dialect=clock_sql(conn))
    rows = conn.execute(sql.SQL("EXPLAIN ") + clock.query, clock.params).fetchall()
    return [(str(row[1]), row[5]) for row in rows if row[2] == SUBJECT or "LATERAL" in str(row[1])]


@pytest.mark.mariadb_only("MariaDB's EXPLAIN (LATERAL DERIVED)")
def test_the_clock_of_every_subject_reads_them_in_key_order(
    maria: tuple[str, Connection],
) -> None:
    """Over every subject (a run's due set, the exposure), MariaDB looks each aggregate (the
    last stay, the last consultation) up per subject (LATERAL DERIVED), in the order the clock
    reads the subjects. Left to itself it read the patients through their smallest covering
    index, the doctor's: random lookups, which took the exposure after a minimisation at
    758,912 patients from 3.3 s (189,728) to 127.8 s. It reads them by primary key."""
    policies = [
        p for p in _policies(maria[1]) if any(d.kind == "aggregate" for d in p.dates.values())
    ]
    assert len(policies) == 2
    for policy in policies:
        found = _subject_read(maria[1], policy)
        assert any("LATERAL" in kind for kind, _ in found)  # what the order matters for
        # the table itself (its clustered primary key: no key shown) or its primary key
        assert [key for kind, key in found if "LATERAL" not in kind] in ([None], ["PRIMARY"])


def test_holds_in_the_tool_s_schema_are_read_on_mariadb_as_on_postgresql(
    maria: tuple[str, Connection], pg: tuple[str, Connection], mariadb_admin_url: str
) -> None:
    """With the tool's schema installed on each server and the same holds placed (a third of
    the patients, for the purge of medical records: a hold protects the person under every
    policy of the patients), both plans keep the same subjects."""
    from retention.store.schema import migrate

    tool = f"rt_planholds_{os.getpid()}"
    insert = sql.SQL("INSERT INTO {} (policy, subject_key, reason) VALUES (%s, %s, %s)").format(
        sql.Identifier(tool, "holds")
    )
    plans = []
    try:
        for _, conn in (maria, pg):
            migrate(conn, tool)
            with conn.transaction():
                for key in range(1, PATIENTS + 1, 3):
                    conn.execute(insert, ("dossier-medical", str(key), "litige"))
            plans.append(compute_plan(conn, _policies(conn), TODAY, schema=tool).to_json())
    finally:
        _drop(mariadb_admin_url, tool)
        pg[1].execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(tool)))
    assert _unqualified(plans[0]) == _unqualified(plans[1])
    held = {
        (p["name"], ph["name"]): ph["held_subjects"]
        for p in plans[1]["policies"]
        for ph in p["phases"]
    }
    assert held[("dossier-medical", "destruction")] > 0
    assert held[("contacts-patients", "coordonnees")] > 0
    assert held[("journal-modifications", "purge")] == 0
