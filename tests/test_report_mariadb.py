"""`retention report` and `retention exposure` on MariaDB: the same figures, JSON and text as on
PostgreSQL for the same data, and the exposure snapshot a run stores after itself.

The demo hospital is built on both real servers from one seed (tests/test_plan_mariadb.py), and
both get the same tool's data, written the same way: the scan's inventory, legal holds (one
released), a few patients minimised by hand (pseudonyms, blanks, rows deleted), an archive file
whose segments overlap (one destroyed), runs with their audit entries (batches with rows per
table, incidents, an approval) written through the audit trail at a pinned time, and exposure
snapshots, the last one by `record_after_run`. Then every section of the report must read the
same on both; only what names the server or the moment of generation differs (masked).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from pydantic import SecretStr

from retention.audit import trail as trail_module
from retention.audit.seal import load_signer
from retention.audit.trail import AuditTrail, Entry
from retention.db import connect
from retention.demo.generate import generate
from retention.demo.schema import create_schema
from retention.discovery.inventory import save_scan
from retention.discovery.model import ColumnVerdict, ScanResult
from retention.engines import Connection, engine_of, sql
from retention.engines.mariadb.session import database_url
from retention.engines.params import Json
from retention.keys import load_key
from retention.policy.bound import BoundPolicy
from retention.policy.check import bound_policies
from retention.report.build import build_report
from retention.report.exposure import compute_exposure
from retention.report.snapshots import record_after_run, save_snapshot, snapshots
from retention.settings import Settings
from retention.store.schema import migrate
from tests.engine_helpers import AUDIT_KEY, cli
from tests.fix_db import temporary_database
from tests.key_helpers import AUDIT_SIGNING_KEY
from tests.test_mariadb_audit import ACTOR, PINNED, _PinnedClock
from tests.test_plan_mariadb import _drop, _unqualified
from tests.test_report_support import DEMO_VERDICTS, due_record_keys, personal_values

TODAY = date(2025, 6, 1)
LATER = date(2035, 6, 1)
PATIENTS = 150
SEED = 7
ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
TOOL = f"rt_reporttool_{os.getpid()}"  # the tool's schema (a database of its own on MariaDB)
SCANNED = datetime(2025, 5, 30, 8, 0, tzinfo=UTC)
HELD_SINCE = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)
RELEASED = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)
RUNS = (
    UUID("0b6c5a52-3f0e-4d8e-9a51-6f0e8f3a1c01"),
    UUID("0b6c5a52-3f0e-4d8e-9a51-6f0e8f3a1c02"),
)
FILE = UUID("5d1f0c9e-2b8a-4e0f-8c77-0a9b8c7d6e5f")


@dataclass(frozen=True)
class Side:
    """One engine's copy: its URL, connection and the schema holding the hospital."""

    url: str
    conn: Connection
    data: str

    @property
    def policies(self) -> list[BoundPolicy]:
        return bound_policies(self.conn, POLICIES, tool_schema=TOOL)


def _hospital(conn: Connection) -> None:
    create_schema(conn)
    generate(conn, patients=PATIENTS, seed=SEED, today=TODAY)
    migrate(conn, TOOL)


@pytest.fixture(scope="module")
def sides(mariadb_admin_url: str, pg_admin_url: str) -> Iterator[dict[str, Side]]:
    """The same hospital and the same tool's data on MariaDB and PostgreSQL."""
    name = f"rt_reportm{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    with connect(Settings(), url=mariadb_admin_url) as admin:
        for database in (name, TOOL):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(database)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    maria_url = database_url(mariadb_admin_url, name)
    try:
        with (
            connect(Settings(), url=maria_url) as maria,
            temporary_database(pg_admin_url) as pg_url,
            connect(Settings(), url=pg_url) as pg,
        ):
            _hospital(maria)
            _hospital(pg)
            found = {
                "mariadb": Side(maria_url, maria, name),
                "postgresql": Side(pg_url, pg, "public"),
            }
            assert isinstance(pg, psycopg.Connection)
            held = due_record_keys(pg, 5)  # due at TODAY, read on PostgreSQL's copy
            first = [int(r[0]) for r in pg.execute("SELECT patient_id FROM patients ORDER BY 1")]
            for side in found.values():
                _tool_data(side, held, first[:6])
            yield found
    finally:
        _drop(mariadb_admin_url, name)
        _drop(mariadb_admin_url, TOOL)


def _tool_data(side: Side, held: list[int], first: list[int]) -> None:
    conn = side.conn
    before = compute_exposure(conn, side.policies, TODAY, schema=TOOL)
    verdicts = tuple(
        ColumnVerdict(side.data, table, column, entity, score, {"test": True})
        for table, column, entity, score in DEMO_VERDICTS
    )
    save_scan(conn, ScanResult(SCANNED, verdicts), schema=TOOL, scope={"test": True})
    for key in held[:3]:
        _hold(side, "dossier-medical", key, released=False)
    for key in held[3:]:
        _hold(side, "dossier-medical", key, released=True)
    _hold(side, "contacts-patients", first[0], released=False)
    _minimise_by_hand(conn, first[1:])
    _archive(side)
    _runs_and_audit(side)
    save_snapshot(conn, TOOL, before)
    assert record_after_run(conn, side.policies, TODAY, RUNS[1], schema=TOOL) is not None


def _instant(conn: Connection, moment: datetime) -> datetime:
    """A moment as the tool's tables take it (MariaDB: DATETIME(6) in UTC, without zone)."""
    return moment.replace(tzinfo=None) if engine_of(conn).name == "mariadb" else moment


def _hold(side: Side, policy: str, key: int, *, released: bool) -> None:
    side.conn.execute(
        sql.SQL(
            "INSERT INTO {} (policy, subject_key, reason, held_since, released_at, "
            "subject_table, subject_column) VALUES (%s, %s, 'claim', %s, %s, %s, 'patient_id')"
        ).format(sql.Identifier(TOOL, "holds")),
        (
            policy,
            str(key),
            _instant(side.conn, HELD_SINCE),
            _instant(side.conn, RELEASED) if released else None,
            f"{side.data}.patients",
        ),
    )


def _in(keys: list[int]) -> sql.Composable:
    return sql.SQL("patient_id IN ({})").format(sql.SQL(", ").join(map(sql.Literal, keys)))


def _minimise_by_hand(conn: Connection, keys: list[int]) -> None:
    """Pseudonyms, blanks (one of spaces only: MariaDB compares it equal to ''), no NIR."""
    conn.execute(
        sql.SQL(
            "UPDATE patients SET nom = 'PSN-ABCDEFGHIJ', prenom = 'PSN-KLMNOPQRST', "
            "nom_jeune_fille = NULL, assure_nom = '', assure_prenom = NULL, matricule = NULL, "
            "assure_matricule = '   ', adresse = NULL, tel = NULL, tel_portable = NULL, "
            "email = NULL WHERE {}"
        ).format(_in(keys))
    )
    conn.execute(sql.SQL("DELETE FROM ins_patients WHERE {}").format(_in(keys)))
    conn.execute(sql.SQL("DELETE FROM contacts_urgence WHERE {}").format(_in(keys[1:])))


def _archive(side: Side) -> None:
    """One archive file of dossier-medical: two live segments sharing a subject, one destroyed."""
    conn, mariadb = side.conn, engine_of(side.conn).name == "mariadb"
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (file_id, name, policy, policy_sha256, phase, created_at, bytes, "
            "sha256, recipients) VALUES (%s, 'a.age', 'dossier-medical', %s, 'destruction', "
            "%s, 10, %s, %s)"
        ).format(sql.Identifier(TOOL, "archive_files")),
        (
            str(FILE),
            "ab" * 32,
            _instant(conn, HELD_SINCE),
            "cd" * 32,
            Json(["age1x"]) if mariadb else ["age1x"],
        ),
    )
    segments = {
        "2010": (["d1", "d2", "d3"], None),
        "2011": (["d3", "d4"], None),
        "2012": (["d5", "d6"], _instant(conn, RELEASED)),
    }
    for group, (digests, destroyed) in segments.items():
        columns = "file_id, grp, subjects, rows, bytes, sha256, destroyed_at"
        values: list[Any] = [str(FILE), group, len(digests), Json({}), 1, "ef" * 32, destroyed]
        if not mariadb:
            columns, values = columns + ", subject_digests", [*values, digests]
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier(TOOL, "archive_segments"),
                sql.SQL(", ").join(map(sql.Identifier, columns.split(", "))),
                sql.SQL(", ").join(sql.Placeholder() * len(values)),
            ),
            values,
        )
        for ord_, digest in enumerate(digests if mariadb else (), start=1):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (file_id, grp, ord, digest) VALUES (%s, %s, %s, %s)"
                ).format(sql.Identifier(TOOL, "archive_segment_subjects")),
                (str(FILE), group, ord_, digest),
            )


def _runs_and_audit(side: Side) -> None:
    conn = side.conn
    for i, run_id in enumerate(RUNS):
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (run_id, started_at, ended_at, outcome, command, host, os_user, "
                "pid) VALUES (%s, %s, %s, %s, 'run', 'db1', 'daemon', 4242)"
            ).format(sql.Identifier(TOOL, "runs")),
            (
                str(run_id),
                _instant(conn, HELD_SINCE.replace(day=11 + i)),
                _instant(conn, HELD_SINCE.replace(day=11 + i, hour=10)),
                ("completed", "interrupted")[i],
            ),
        )
    sha = {p.name: p.loaded.sha256 for p in side.policies}
    table = f"{side.data}.patients"
    entries = [
        Entry("run_start", "started", RUNS[0]),
        *(
            Entry(
                "batch",
                "ok",
                run_id,
                "dossier-medical",
                sha["dossier-medical"],
                "destruction",
                "purge",
                rows={table: 3, f"{side.data}.sejours": 7 + n},
                subjects=3,
                subject_digests=("aa" * 16, "bb" * 16, "cc" * 16),
            )
            for run_id in RUNS
            for n in range(2)
        ),
        Entry(
            "batch",
            "ok",
            RUNS[1],
            "contacts-patients",
            sha["contacts-patients"],
            "coordonnees",
            "erase",
            rows={table: 2},
            subjects=2,
        ),
        Entry(
            "batch_failed",
            "failed",
            RUNS[1],
            "dossier-medical",
            sha["dossier-medical"],
            "destruction",
            detail={"error": "lock timeout"},
        ),
        Entry(
            "phase_refused",
            "refused",
            RUNS[1],
            detail={
                "policy": "dossier-medical",
                "phase": "destruction",
                "reason": "non_transactional",
                "tables": [f"{side.data}.sejours"],
            },
        ),
        Entry(
            "phase_not_approved",
            "refused",
            RUNS[1],
            detail={
                "policy": "dossier-medical",
                "phase": "destruction",
                "approvals": 1,
                "required": 2,
            },
        ),
        Entry(
            "approval",
            "ok",
            policy="dossier-medical",
            policy_sha256=sha["dossier-medical"],
            detail={"by": "alice@example.org", "role": "dpo", "signature": "not a signature"},
        ),
    ]
    key = load_key(SecretStr(AUDIT_KEY), "audit_key")
    trail = AuditTrail(TOOL, key, ACTOR, load_signer(SecretStr(AUDIT_SIGNING_KEY)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trail_module, "datetime", _PinnedClock)
        for entry in entries:
            trail.append(conn, entry)


def _both(sides: dict[str, Side], make: Any) -> tuple[Any, Any]:
    return make(sides["mariadb"]), make(sides["postgresql"])


@pytest.mark.parametrize("at", [TODAY, LATER])
def test_the_exposure_on_mariadb_is_the_exposure_on_postgresql(
    sides: dict[str, Side], at: date
) -> None:
    maria, pg = _both(
        sides, lambda s: compute_exposure(s.conn, s.policies, at, schema=TOOL).to_json()
    )
    assert _unqualified(maria) == _unqualified(pg)
    if at == TODAY:  # the data exercises every figure
        (patients,) = (p for p in pg["populations"] if p["table"] == "public.patients")
        assert 0 < patients["with_direct_identifiers"] < patients["subjects"]
        assert patients["past_retention"] > 10
        assert patients["contact_beyond_minimisation"] > 10
        assert patients["held"] == 4 and patients["archived"] == 4
        assert patients["undeterminable_reasons"]


def _masked(report: dict[str, Any], side: Side) -> dict[str, Any]:
    """A report's JSON without what names the server or the moment it was made (the
    hospital's schema: `public` on PostgreSQL, a database on MariaDB)."""
    text = json.dumps(report).replace(f'"{side.data}"', '"~"').replace(f"{side.data}.", "~.")
    found = json.loads(text)
    for key in ("generated_at", "database", "binary_log"):
        found["report"].pop(key)
    for snapshot in found["trend"]:
        snapshot.pop("taken_at")
    return dict(found)


def test_the_report_on_mariadb_is_the_report_on_postgresql(sides: dict[str, Side]) -> None:
    maria, pg = _both(
        sides, lambda s: _masked(build_report(s.conn, s.policies, TODAY, schema=TOOL).to_json(), s)
    )
    assert maria == pg
    # every section holds something to compare
    history = pg["history"]  # masked: "~." is the hospital's schema
    assert [r["outcome"] for r in history["runs"]] == ["interrupted", "completed"]
    assert history["runs"][0]["work"][0]["rows"] == {"~.patients": 2}
    assert history["runs"][1]["work"][0]["rows"] == {"~.patients": 6, "~.sejours": 15}
    assert {i["event"] for i in history["incidents"]} == {
        "batch_failed",
        "phase_refused",
        "phase_not_approved",
    }
    assert all(i["policy"] == "dossier-medical" for i in history["incidents"])
    assert history["audit"]["intact"] and history["audit"]["checked"] == 10
    (approved,) = [v for v in history["policy_versions"] if v["approvals"]]
    assert approved["approvals"][0]["at"] == PINNED.isoformat()
    assert approved["batches"] == 4
    assert [s["run_id"] for s in pg["trend"]] == [None, str(RUNS[1])]
    assert pg["inventory"]["columns"] and pg["forecast"]["phases"]
    assert any(sum(p["due_subjects"]) for p in pg["forecast"]["phases"])
    assert any(sum(p["held_subjects"]) for p in pg["forecast"]["phases"])


def test_the_snapshot_a_run_stores_reads_back_on_mariadb(sides: dict[str, Side]) -> None:
    side = sides["mariadb"]
    stored = snapshots(side.conn, TOOL)
    assert [(s.run_id, s.outcome) for s in stored] == [(None, None), (RUNS[1], "interrupted")]
    assert all(s.taken_at.tzinfo is not None for s in stored)
    now = compute_exposure(side.conn, side.policies, TODAY, schema=TOOL)
    assert stored[1].exposure == now
    assert stored[0].exposure.scan_id is None and now.scan_id == 1
    # a run's helper connections cannot share MariaDB's snapshot: left idle, same figures
    with connect(Settings(), url=side.url) as helper:
        assert (
            compute_exposure(side.conn, side.policies, TODAY, schema=TOOL, helpers=[helper]) == now
        )


def _commands(side: Side, *args: str) -> str:
    done = cli(side.url, *args, "--at", TODAY.isoformat(), RETENTION_SCHEMA_NAME=TOOL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "does not run on" not in done.stderr
    return done.stdout


def test_the_commands_print_the_same_on_both_engines(sides: dict[str, Side]) -> None:
    for args in (("exposure",), ("exposure", "--format", "json", "--lang", "en")):
        maria, pg = _both(sides, lambda s, a=args: _commands(s, *a).replace(f"{s.data}.", "~."))
        assert maria == pg
    maria, pg = _both(
        sides, lambda s: _masked(json.loads(_commands(s, "report", "--format", "json")), s)
    )
    assert maria == pg


def test_the_html_report_on_mariadb_holds_no_personal_value(
    sides: dict[str, Side], tmp_path: Path
) -> None:
    side = sides["mariadb"]
    out = tmp_path / "report.html"
    assert "report written to" in _commands(side, "report", "--out", str(out))
    html = out.read_text(encoding="utf-8")
    assert "<html" in html and "dossier-medical" in html
    values = personal_values(side.conn)
    assert len(values) > 100
    assert not [v for v in values if v in html]


@pytest.mark.mariadb_only("a TEXT column in a key")
def test_the_report_s_dialect_methods_read_alike_on_both_engines(
    conn: psycopg.Connection[Any], mariadb_conn: Connection
) -> None:
    """An audit entry's rows per table (names with dots, quotes, accents), a member of a JSON
    object (null, missing), and a temporary table keyed by a long text, made and dropped
    inside a transaction that goes on."""
    document = {"public.sejour": 12, 'a"b': 3, "é.x": 4}
    found = []
    for c in (conn, mariadb_conn):
        dialect = engine_of(c).dialect
        counts = dialect.json_counts(sql.SQL("j.doc"), "r")
        rows = c.execute(
            sql.SQL("SELECT {}, {} FROM (SELECT {} AS doc) AS j CROSS JOIN {} ORDER BY 2").format(
                counts.columns["key"], counts.columns["count"], sql.Placeholder(), counts.source
            ),
            (Json(document),),
        ).fetchall()
        member = c.execute(
            sql.SQL("SELECT {}, {}, {} FROM (SELECT {} AS doc) AS j").format(
                *(dialect.json_text(sql.SQL("j.doc"), k) for k in ("by", "role", "absent")),
                sql.Placeholder(),
            ),
            (Json({"by": "Zoë « x »", "role": None}),),
        ).fetchone()
        with c.transaction():
            long_key = sql.SQL("SELECT {} AS k").format(sql.Literal("é" * 400))
            c.execute(dialect.temporary_as("retention_probe", long_key, unique="k"))
            c.execute(dialect.drop_temporary("retention_probe"))
            c.execute(dialect.drop_temporary("retention_probe"))  # if it exists
            assert engine_of(c).session.in_transaction(c)
        found.append(([(str(k), int(n)) for k, n in rows], member))
    assert found[0] == found[1]
    assert found[0] == (
        [('a"b', 3), ("é.x", 4), ("public.sejour", 12)],
        ("Zoë « x »", None, None),
    )


_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def fresh(mariadb_admin_url: str) -> Iterator[tuple[str, str]]:
    """The demo hospital alone on MariaDB: its URL, and the name of the tool's database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    hospital, tool = f"rt_reportrh{worker}_{os.getpid()}", f"rt_reportrt{worker}_{os.getpid()}"
    _drop(mariadb_admin_url, hospital)
    _drop(mariadb_admin_url, tool)
    with connect(Settings(), url=mariadb_admin_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(hospital)))
    url = database_url(mariadb_admin_url, hospital)
    try:
        with connect(Settings(), url=url) as conn:
            create_schema(conn)
            generate(conn, patients=PATIENTS, seed=SEED, today=TODAY)
        yield url, tool
    finally:
        _drop(mariadb_admin_url, hospital)
        _drop(mariadb_admin_url, tool)


def test_after_a_real_run_the_report_reads_the_same_on_both_engines(
    fresh: tuple[str, str], pg_admin_url: str
) -> None:
    """`retention run` on each engine (it stores the exposure after itself), then the report:
    the same runs, work per table, audit and trend, once ids and moments are masked."""
    maria_url, tool = fresh
    with (
        temporary_database(pg_admin_url) as pg_url,
        connect(Settings(), url=pg_url) as pg_conn,
    ):
        create_schema(pg_conn)
        generate(pg_conn, patients=PATIENTS, seed=SEED, today=TODAY)
        reports = []
        for url, schema in ((maria_url, tool), (pg_url, "retention")):
            command = ("run", "--yes", "--allow-large", "--reason", "test")
            done = cli(url, *command, RETENTION_SCHEMA_NAME=schema)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            assert "exposure snapshot not stored" not in done.stderr
            report = cli(url, "report", "--format", "json", RETENTION_SCHEMA_NAME=schema)
            assert report.returncode == 0, report.stderr[-2000:]
            data = url.rsplit("/", 1)[1] if url == maria_url else "public"
            text = _UUID.sub("<id>", _MOMENT.sub("<at>", report.stdout))
            reports.append(_masked(json.loads(text), Side(url, pg_conn, data)))
    assert reports[0] == reports[1]
    (run,) = reports[0]["history"]["runs"]
    assert run["outcome"] == "completed" and run["rows"] > 0
    (snapshot,) = reports[0]["trend"]
    assert snapshot["run_id"] == "<id>" and snapshot["outcome"] == "completed"
    (patients,) = (p for p in snapshot["exposure"]["populations"] if p["table"] == "~.patients")
    assert patients["past_retention"] == 0
