"""Legal holds and approvals on MariaDB behave, print and answer in JSON as on PostgreSQL: the
same scenario through the real CLI on both engines, with the same expectations.

A hold added makes `plan` count the subject as kept by a legal hold; its release ends it and
extends the clock by the days held; a key that differs from the subject's only by case or by a
trailing space is refused on both (MariaDB's collations would match it: the tool compares
bytes); an approval makes the plan show the policy approved; the audit chain verifies after.

Real servers: tests/fix_db.py's PostgreSQL, tests/fix_mariadb.py's MariaDB (the tool's own
database there is named per test and dropped afterwards).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from psycopg.types.json import Jsonb

from retention.db import connect
from retention.engines import Connection, sql
from retention.engines.rows import dict_row
from retention.settings import Settings
from retention.store.holds import HoldError, Person, Scope, release_hold
from tests.engine_helpers import cli
from tests.fix_mariadb import sessions
from tests.key_helpers import signature

POLICY = """\
name: p
subject: {table: patients, key: patient_id}
related:
  follow_foreign_keys: false
  links:
    - {table: visits, column: patient_id}
dates:
  naissance: {column: naissance}
retain_until: naissance + 100 years
phases:
  - name: destruction
    due: retain_until
    action: purge
"""

# MariaDB: the hospital's usual collation, which ignores case and trailing spaces
PATIENTS = "CREATE TABLE patients (patient_id VARCHAR(20) PRIMARY KEY, naissance DATE)"
VISITS = "CREATE TABLE visits (visit_id INT PRIMARY KEY, patient_id VARCHAR(20) NOT NULL)"
CI = " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
HELD_DAYS = 60


@dataclass(frozen=True)
class Site:
    """One engine's database, the tool's schema on it, and the policies."""

    engine: str
    url: str
    conn: Connection
    schema: str
    policies: Path

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        extra = {"RETENTION_SCHEMA_NAME": self.schema, **env}
        return cli(self.url, *args, policies=self.policies, timeout=300, **extra)

    def ok(self, *args: str, **env: str) -> str:
        done = self.cli(*args, **env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout

    def phase(self, **env: str) -> dict[str, int]:
        plan = json.loads(self.ok("plan", "--format", "json", **env))
        return plan["policies"][0]["phases"][0]  # type: ignore[no-any-return]


def _born_due_days_ago(days: int) -> date:
    """A birth date whose 100th anniversary (the end of retention) was `days` days ago."""
    due = date.today() - timedelta(days=days)
    return due.replace(year=due.year - 100, day=28 if (due.month, due.day) == (2, 29) else due.day)


@contextmanager
def _site(engine: str, url: str, folder: Path) -> Iterator[Site]:
    """The hospital's two tables on `engine`, the policy in `folder`; the tool's schema is
    `retention` on PostgreSQL, a database named for this test on MariaDB (dropped after)."""
    schema = "retention" if engine == "postgresql" else f"rt_mh_{secrets.token_hex(6)}"
    folder.mkdir()
    (folder / "p.yaml").write_text(textwrap.dedent(POLICY), encoding="utf-8")
    with connect(Settings(), url=url) as conn:
        suffix = CI if engine == "mariadb" else ""
        for statement in (PATIENTS + suffix, VISITS + suffix):
            conn.execute(statement)
        conn.execute(sql.SQL("CREATE INDEX visits_patient ON visits (patient_id)"))
        conn.execute(
            sql.SQL("INSERT INTO patients VALUES ('P-001', %s), ('P-002', %s), ('P-003', %s)"),
            (_born_due_days_ago(30), _born_due_days_ago(30), date(1990, 1, 1)),
        )
        conn.execute(sql.SQL("INSERT INTO visits VALUES (1, 'P-001'), (2, 'P-002')"))
        try:
            yield Site(engine, url, conn, schema, folder)
        finally:
            if engine == "mariadb":
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(schema)))


@pytest.fixture(params=["postgresql", "mariadb"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    engine = request.param
    url: str = request.getfixturevalue("db_url" if engine == "postgresql" else "mariadb_url")
    with _site(engine, url, tmp_path / "policies") as made:
        yield made


@pytest.fixture(
    params=[
        ("postgresql", None),
        ("mariadb", "utf8mb4_general_ci"),
        # not the session's: the batch's key sets must be typed in the column's collation
        # (they once were in the session's: 'Illegal mix of collations', every batch failed)
        ("mariadb", "utf8mb4_unicode_ci"),
        ("mariadb", "utf8mb4_bin"),
    ],
    ids=lambda p: p[1] or p[0],
)
def collated_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Site, str]]:
    """A site on each engine, and on MariaDB under each of three collations."""
    engine, collation = request.param
    url: str = request.getfixturevalue("db_url" if engine == "postgresql" else "mariadb_url")
    with _site(engine, url, tmp_path / "policies") as made:
        yield made, collation or ""


def _backdate(site: Site, hold_id: int, days: int) -> None:
    """The hold placed `days` days earlier (as if the claim had come then)."""
    table = sql.Identifier(site.schema, "holds")
    row = site.conn.execute(
        sql.SQL("SELECT held_since FROM {} WHERE hold_id = %s").format(table), (hold_id,)
    ).fetchone()
    assert row is not None
    since: datetime = row[0]
    if since.tzinfo is not None:  # PostgreSQL: in the session's (legal) zone
        earlier = since - timedelta(days=days)
    else:  # MariaDB: UTC; the same days of the legal calendar as on PostgreSQL
        local = since.replace(tzinfo=UTC).astimezone(site.conn.info.timezone)
        earlier = (local - timedelta(days=days)).astimezone(UTC).replace(tzinfo=None)
    site.conn.execute(
        sql.SQL("UPDATE {} SET held_since = %s WHERE hold_id = %s").format(table),
        (earlier, hold_id),
    )


def test_a_hold_keeps_the_subject_and_its_release_extends_the_clock(site: Site) -> None:
    site.ok("init")
    assert site.phase()["due_subjects"] == 2
    out = site.ok("hold", "add", "--subject", "P-001", "--reason", "claim 2026-17")
    assert out.startswith("hold 1 added for every policy on ")
    assert "(patient_id) (subject " in out
    phase = site.phase()
    assert (phase["due_subjects"], phase["held_subjects"]) == (1, 1)
    assert "kept by a legal hold: 1" in site.ok("plan")
    refused = site.cli("hold", "add", "--subject", "P-001", "--reason", "again")
    assert refused.returncode == 2
    assert "this subject is already on hold for every policy on" in refused.stderr
    listed = site.ok("hold", "list")
    assert listed.count("\n") == 3 and "* " in listed and " -\n" in listed

    _backdate(site, 1, HELD_DAYS)
    out = site.ok("hold", "release", "--subject", "P-001")
    assert out.startswith("hold 1 released (every policy on ")
    assert out.endswith(f"the clock is extended by {HELD_DAYS} day(s)\n")
    # due 30 days ago, held 60 days: due again in 30 days, and no longer held
    phase = site.phase()
    assert (phase["due_subjects"], phase["held_subjects"]) == (1, 0)
    assert site.cli("hold", "release", "--subject", "P-001").returncode == 2
    assert "released" in site.ok("hold", "list", "--all").splitlines()[0]

    verified = site.ok("audit", "verify")
    assert "3 entries" in verified or "2 entries" in verified, verified


@pytest.mark.parametrize("key", ["p-001", "P-001 ", " P-001", "P-0O1"])
def test_a_key_that_is_not_the_subjects_exactly_is_refused(site: Site, key: str) -> None:
    """MariaDB's utf8mb4_unicode_ci finds `p-001` and `P-001 ` for `P-001`; the plan matches
    holds to subjects by their exact key: a hold on a near key would hold nobody."""
    site.ok("init")
    done = site.cli("hold", "add", "--subject", key, "--reason", "claim 2026-17")
    assert done.returncode == 2, done.stdout
    assert "no row of " in done.stderr and "has patient_id = the given key" in done.stderr
    assert "Traceback" not in done.stderr
    assert key.strip() not in done.stderr  # no personal value in the output


def test_a_release_names_the_held_key_exactly(site: Site) -> None:
    site.ok("init")
    site.ok("hold", "add", "--policy", "p", "--subject", "P-002", "--reason", "claim 2026-18")
    for near in ("p-002", "P-002 "):
        done = site.cli("hold", "release", "--policy", "p", "--subject", near)
        assert done.returncode == 2
        assert "no active hold for this subject on policy p only" in done.stderr
    assert site.phase()["held_subjects"] == 1
    out = site.ok("hold", "release", "--policy", "p", "--subject", "P-002")
    assert out == "hold 1 released (policy p only); the clock is extended by 0 day(s)\n"
    assert site.phase()["held_subjects"] == 0


def test_an_approval_makes_the_plan_show_the_policy_approved(site: Site, tmp_path: Path) -> None:
    site.ok("init")
    one = {"RETENTION_REQUIRED_APPROVALS": "1"}
    before = json.loads(site.ok("plan", "--format", "json", **one))["policies"][0]
    assert before["approval"] == {
        "required": 1,
        "approved": False,
        "by": [],
        "not_counted": [],
        "missing_roles": [],
    }
    sig = tmp_path / "dr.martin.sig"
    sig.write_text(signature("dr.martin", "p", before["sha256"]), encoding="ascii")
    out = site.ok("approve", "--policy", "p", "--signature", str(sig), **one)
    assert out == (
        f"p [sha256 {before['sha256'][:12]}]: approved: 1/1 valid signature(s) of this "
        "version, by dr.martin (medecin-dim)\n"
    )
    # the same signature again: recorded, counted once
    again = site.ok("approve", "--policy", "p", "--signature", str(sig), **one)
    assert "; not counted: dr.martin: a repeated signature by dr.martin (counted once)" in again
    state = json.loads(site.ok("plan", "--format", "json", **one))["policies"][0]["approval"]
    assert state["approved"] is True
    assert [(a["name"], a["role"]) for a in state["by"]] == [("dr.martin", "medecin-dim")]
    assert state["by"][0]["at"][19:] != ""  # with its zone, as PostgreSQL gives it
    assert [a["problem"] for a in state["not_counted"]] == [
        "a repeated signature by dr.martin (counted once)"
    ]
    assert "approved: 1/1 valid signature(s)" in site.ok("plan", **one)
    verified = site.ok("audit", "verify", **one)
    assert "2 entries" in verified, verified


def _scenario(site: Site, tmp_path: Path) -> list[str]:
    """What the operator sees, command after command: hold, plan, release, approve, verify."""
    one = {"RETENTION_REQUIRED_APPROVALS": "1"}
    seen = [site.ok("init").split(":")[0].replace(site.schema, "SCHEMA")]
    seen.append(site.ok("hold", "add", "--subject", "P-001", "--reason", "claim 2026-17"))
    seen.append(site.ok("hold", "add", "--policy", "p", "--subject", "P-002", "--reason", "c"))
    seen += [site.ok("hold", "list"), site.ok("plan", **one)]
    _backdate(site, 1, HELD_DAYS)
    seen += [site.ok("hold", "release", "--subject", "P-001"), site.ok("hold", "list", "--all")]
    sha = json.loads(site.ok("plan", "--format", "json"))["policies"][0]["sha256"]
    sig = tmp_path / f"{site.engine}.sig"
    sig.write_text(signature("dr.martin", "p", sha), encoding="ascii")
    seen.append(site.ok("approve", "--policy", "p", "--signature", str(sig), **one))
    seen += [site.ok("plan", "--format", "json", **one), site.ok("plan", **one)]
    seen += [site.ok("audit", "verify", **one), site.ok("check", **one)]
    return seen


def _neutral(text: str, site: Site) -> str:
    """Without what must differ: the subject table's schema (`public`, the MariaDB
    database), the digests keyed by it, the minute each command ran."""
    if site.engine == "mariadb":
        text = text.replace(f"{site.url.rsplit('/', 1)[1]}.", "public.")
    text = re.sub(r"\b[0-9a-f]{12}\b", "DIGEST", text)
    text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d\.\d+)?", "TIME", text)
    return re.sub(" +", " ", text)  # columns padded to the table's name


@pytest.mark.mariadb_only("MySQL's binary log is on by default: check prints its note")
def test_the_operator_sees_the_same_on_both_engines(
    db_url: str, mariadb_url: str, tmp_path: Path
) -> None:
    seen = {}
    for engine, url in (("postgresql", db_url), ("mariadb", mariadb_url)):
        with _site(engine, url, tmp_path / engine) as site:
            seen[engine] = [_neutral(out, site) for out in _scenario(site, tmp_path)]
    assert seen["mariadb"] == seen["postgresql"]


def _hold_row(site: Site, key: str) -> None:
    """A holds row written directly (as an account with INSERT could), not through the CLI."""
    site.conn.execute(
        sql.SQL("INSERT INTO {} (policy, subject_key, reason) VALUES ('p', %s, 'x')").format(
            sql.Identifier(site.schema, "holds")
        ),
        (key,),
    )


def test_the_plan_matches_a_holds_key_with_its_case(site: Site) -> None:
    """Why a near key is refused: on both engines the plan would not see it as the subject's
    (the holds' column is utf8mb4_bin on MariaDB, and decides the comparison)."""
    site.ok("init")
    _hold_row(site, "p-001")
    assert site.phase()["held_subjects"] == 0


def test_the_plan_on_mariadb_ignores_a_holds_trailing_spaces(site: Site) -> None:
    """The one difference left: MariaDB's collations pad, so a hold on `P-001 ` (which the CLI
    writes only for a subject whose key is exactly that) also holds `P-001` there. It keeps
    more, never less; PostgreSQL holds nobody with it."""
    site.ok("init")
    _hold_row(site, "P-001 ")
    assert site.phase()["held_subjects"] == (1 if site.engine == "mariadb" else 0)


def _waits(watcher: Connection, engine: str, session: int) -> bool:
    """Whether the server session `session` waits in its locking read of the hold, asked on
    `watcher` (outside the first release's transaction; other tests' sessions on the same
    server do not count). On MariaDB, PROCESSLIST, read live (tests/test_mariadb_connection.py):
    INNODB_TRX is refreshed only after 100 ms without any reader on the whole server, and a
    watcher polling it saw the same table for 50 s (this test once failed so)."""
    table, column, info = sessions()
    query = (
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s"
        if engine == "postgresql"
        else f"SELECT count(*) FROM {table} WHERE {column} = %s AND {info} LIKE '%%FOR UPDATE%%'"
    )
    row = watcher.execute(query, (session,)).fetchone()
    return row is not None and int(row[0]) > 0


def _session(conn: Connection, engine: str) -> int:
    query = "SELECT pg_backend_pid()" if engine == "postgresql" else "SELECT CONNECTION_ID()"
    row = conn.execute(sql.SQL(query)).fetchone()
    assert row is not None
    return int(row[0])


def test_two_releases_at_once_end_the_hold_once(site: Site) -> None:
    """The release locks the active row first: the second waits, then finds no active hold
    (MariaDB has no UPDATE ... RETURNING; the lock keeps it one statement's worth)."""
    site.ok("init")
    site.ok("hold", "add", "--policy", "p", "--subject", "P-001", "--reason", "claim 2026-17")
    scope = Scope(Person("-", "patient_id"), "p")
    outcome: list[object] = []
    with connect(Settings(), url=site.url) as other, connect(Settings(), url=site.url) as watcher:
        session = _session(other, site.engine)

        def second() -> None:
            try:
                outcome.append(release_hold(other, site.schema, scope, "P-001"))
            except HoldError as exc:
                outcome.append(exc)

        with site.conn.transaction():
            first = release_hold(site.conn, site.schema, scope, "P-001")
            thread = threading.Thread(target=second)
            thread.start()
            deadline = time.monotonic() + 60
            while (
                not _waits(watcher, site.engine, session)
                and thread.is_alive()
                and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            assert thread.is_alive()  # waiting for the first release's lock
        thread.join(60)
    assert first.released_at is not None and first.hold_id == 1
    assert len(outcome) == 1 and isinstance(outcome[0], HoldError)
    assert "no active hold for this subject on policy p only" in str(outcome[0])


def _patients(site: Site) -> list[str]:
    rows = site.conn.execute(sql.SQL("SELECT patient_id FROM patients ORDER BY 1")).fetchall()
    return [str(row[0]) for row in rows]


def test_a_run_waits_for_the_approval_and_spares_the_held_subject(
    collated_site: tuple[Site, str], tmp_path: Path
) -> None:
    """What a run reads of holds and approvals: nothing purged before the signature, then
    every due subject but the held one. On MariaDB under three collations (the session's, and
    two others)."""
    site, collation = collated_site
    if site.engine == "mariadb":
        for table in ("patients", "visits"):
            site.conn.execute(
                sql.SQL("ALTER TABLE {} CONVERT TO CHARACTER SET utf8mb4 COLLATE {}").format(
                    sql.Identifier(table),
                    sql.SQL(collation),
                )
            )
    site.ok("init")
    one = {"RETENTION_REQUIRED_APPROVALS": "1"}
    site.ok("hold", "add", "--subject", "P-001", "--reason", "claim 2026-17")
    large = ("run", "--yes", "--allow-large", "--reason", "test: 3 patients")
    waiting = site.cli(*large, **one)
    assert "NOT approved: 0/1" in waiting.stdout + waiting.stderr
    assert _patients(site) == ["P-001", "P-002", "P-003"]
    sha = json.loads(site.ok("plan", "--format", "json"))["policies"][0]["sha256"]
    sig = tmp_path / "dr.martin.sig"
    sig.write_text(signature("dr.martin", "p", sha), encoding="ascii")
    site.ok("approve", "--policy", "p", "--signature", str(sig), **one)
    site.ok(*large, **one)
    assert _patients(site) == ["P-001", "P-003"]
    assert "entries" in site.ok("audit", "verify", **one)


@pytest.mark.parametrize("tampering", ["delete", "release", "move"])
def test_a_hold_removed_outside_the_tool_stops_every_run(site: Site, tampering: str) -> None:
    """The auditor's case: a superuser deleted a hold row (or ended it, or moved it to another
    patient); the next run purged the held patient and `audit verify` said intact. The trail
    records every hold: a run now refuses while the table lacks one the trail still holds,
    plan and check say so, verify fails; adding it again (then releasing it) settles it."""
    site.ok("init")
    site.ok("hold", "add", "--subject", "P-001", "--reason", "claim 2026-17")
    table = sql.Identifier(site.schema, "holds")
    statement = {
        "delete": "DELETE FROM {} WHERE hold_id = 1",
        "release": "UPDATE {} SET released_at = held_since WHERE hold_id = 1",
        "move": "UPDATE {} SET subject_key = 'P-003' WHERE hold_id = 1",
    }[tampering]
    site.conn.execute(sql.SQL(statement).format(table))
    refused = site.cli("run", "--yes", "--allow-large", "--reason", "test")
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "error: the holds table does not match the audit trail: the hold added at entry #" in (
        refused.stderr
    )
    assert "(hold 1, every policy on " in refused.stderr
    assert "nothing runs until the table and the trail agree" in refused.stderr
    assert "hint: if the hold stands, add it again with 'retention hold add'" in refused.stderr
    assert site.conn.execute(sql.SQL("SELECT count(*) FROM patients")).fetchone() == (3,)
    planned = site.cli("plan")
    assert planned.returncode == 0 and "warning: the holds table does not match" in (planned.stderr)
    assert "warning: the holds table does not match" in site.cli("check").stderr
    verified = site.cli("audit", "verify")
    assert verified.returncode == 1 and "HOLDS: the holds table does not match" in (verified.stdout)
    # the operator settles it: the hold stands (added again), or has ended (released by its
    # id, its row being gone or ended): recorded
    if tampering == "move":
        site.conn.execute(sql.SQL("UPDATE {} SET subject_key = 'P-001'").format(table))
        site.ok("hold", "release", "--subject", "P-001")
    elif tampering == "delete":
        site.ok("hold", "add", "--subject", "P-001", "--reason", "claim 2026-17, again")
        site.ok("hold", "release", "--subject", "P-001")
    else:
        out = site.ok("hold", "release", "--hold-id", "1")
        assert out.startswith("hold 1 released in the audit trail (the hold added at entry #")
    site.ok("run", "--yes", "--allow-large", "--reason", "test")
    assert site.ok("audit", "verify").startswith("audit trail intact")


def test_a_released_holds_days_and_a_persons_column_are_kept_as_recorded(site: Site) -> None:
    """A review's findings: deleting a released hold's row took away the days it extended
    the clock by (the patient then due, purged); changing a hold's key column moved it away;
    both went unseen. A release ends the hold of its id even when the policies' names changed
    since it was added (its digests are under the new names)."""
    site.ok("init")
    table = sql.Identifier(site.schema, "holds")
    site.ok("hold", "add", "--subject", "P-001", "--reason", "claim 2026-17")
    _backdate(site, 1, HELD_DAYS)
    site.ok("hold", "release", "--subject", "P-001")
    assert site.phase()["due_subjects"] == 1  # P-001 is due again in 30 days
    site.conn.execute(sql.SQL("DELETE FROM {} WHERE hold_id = 1").format(table))
    refused = site.cli("run", "--yes", "--allow-large", "--reason", "test")
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "was released, and its row is gone (its days held no longer extend the clock)" in (
        refused.stderr
    )
    # the key column of a person's hold
    site.ok("hold", "add", "--subject", "P-002", "--reason", "claim 2026-18")
    site.conn.execute(
        sql.SQL("UPDATE {} SET subject_column = 'naissance' WHERE hold_id = 2").format(table)
    )
    moved = site.cli("plan")
    assert "the hold added at entry #" in moved.stderr and "(hold 2, every policy on" in (
        moved.stderr
    )
    # a policy renamed between add and release: the release still ends the hold (its id)
    site.conn.execute(
        sql.SQL("UPDATE {} SET subject_column = 'patient_id' WHERE hold_id = 2").format(table)
    )
    text = (site.policies / "p.yaml").read_text(encoding="utf-8")
    (site.policies / "p.yaml").write_text(text.replace("name: p\n", "name: p2\n"), "utf-8")
    site.ok("hold", "release", "--subject", "P-002")
    listed = site.cli("plan").stderr
    assert "hold 2" not in listed, listed


def test_a_release_written_through_the_database_alone_ends_no_hold(site: Site) -> None:
    """A review's doubt: the run trusted the trail's rows unverified; an account able to
    write the database could end a hold's row and insert a release entry of its own. A
    release counts only when its entry is signed with the trail's keys."""
    site.ok("init")
    site.ok("hold", "add", "--subject", "P-001", "--reason", "claim 2026-17")
    audit = sql.Identifier(site.schema, "audit")
    with site.conn.cursor(row_factory=dict_row) as cur:
        added = cur.execute(
            sql.SQL("SELECT * FROM {} WHERE event = 'hold_add'").format(audit)
        ).fetchone()
    assert added is not None
    columns = list(added)
    forged = dict(added)
    forged.update(seq=forged["seq"] + 1, event="hold_release", sig_key=None, signature=None)
    holds = sql.Identifier(site.schema, "holds")
    site.conn.execute(sql.SQL("DELETE FROM {} WHERE hold_id = 1").format(holds))
    values = [
        Jsonb(v)
        if isinstance(v, dict | list) and site.engine == "postgresql" and k != "subject_digests"
        else v
        for k, v in forged.items()
    ]
    site.conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            audit,
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        ),
        values,
    )
    refused = site.cli("run", "--yes", "--allow-large", "--reason", "test")
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "is no longer active there, yet the trail records no release" in refused.stderr


def test_a_hold_on_a_person_holds_in_a_copy_of_the_database_under_another_name(
    mariadb_url: str, tmp_path: Path
) -> None:
    """An outside review: a hold added on `hopital.patients` was ignored once the database was
    restored as `hopital_copie` (a dump, a move to another server): the plan counted the
    held patient as due and a run purged it; `hold list` still showed the hold. The tool serves
    the connection's one database: a hold names whom it protects by the table's name."""
    with _site("mariadb", mariadb_url, tmp_path / "policies") as site:
        site.ok("init")
        site.ok("hold", "add", "--subject", "P-001", "--reason", "claim 2026-17")
        database = mariadb_url.rsplit("/", 1)[1]
        copy = f"{database}_copie"
        site.conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(copy)))
        try:
            for table in ("patients", "visits"):
                site.conn.execute(
                    sql.SQL("CREATE TABLE {} LIKE {}").format(
                        sql.Identifier(copy, table), sql.Identifier(database, table)
                    )
                )
                site.conn.execute(
                    sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                        sql.Identifier(copy, table), sql.Identifier(database, table)
                    )
                )
            moved = Site(site.engine, f"{mariadb_url.rsplit('/', 1)[0]}/{copy}", site.conn,
                         site.schema, site.policies)  # fmt: skip
            phase = moved.phase()
            assert (phase["due_subjects"], phase["held_subjects"]) == (1, 1)
            moved.ok("run", "--yes", "--allow-large", "--reason", "test")
            kept = site.conn.execute(
                sql.SQL("SELECT patient_id FROM {} ORDER BY 1").format(
                    sql.Identifier(copy, "patients")
                )
            ).fetchall()
            assert kept == [("P-001",), ("P-003",)]  # P-002 purged, P-001 held
            out = moved.ok("hold", "release", "--subject", "P-001")
            assert out.startswith("hold 1 released (every policy on ")
        finally:
            site.conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(copy)))


def test_whom_a_hold_protects_by_table_name_or_by_whole_name() -> None:
    """The archive's expiry compares persons in Python as the plan does in SQL."""
    here, there = Person("copie.patients", "id"), Person("hopital.patients", "id")
    assert here.compared(True) == ".patients" and here.compared(False) == "copie.patients"
    assert here.same(there, by_name=True) and not here.same(there, by_name=False)
    assert not here.same(Person("hopital.old_patients", "id"), by_name=True)
    assert not here.same(Person("hopital.patients", "nir"), by_name=True)
