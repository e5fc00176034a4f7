"""Every column action on every column type it supports, against a real PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.actions.pseudonymize import is_pseudonym, pseudonym
from retention.keys import load_key
from tests.engine_helpers import PSEUDONYM_KEY, run, settings, write_policy

SCHEMA = """
CREATE TABLE people (
    id serial PRIMARY KEY,
    seen date NOT NULL,
    name text,
    short varchar(12),
    code char(16),
    born date,
    stamp timestamp,
    stamp_tz timestamptz,
    born_txt varchar(10),
    cp varchar(5),
    weight numeric,
    age integer,
    required text NOT NULL DEFAULT 'inconnu',
    mandatory text NOT NULL
);
CREATE TABLE visits (
    id serial PRIMARY KEY,
    person_id integer NOT NULL REFERENCES people,
    tel varchar(20),
    caller text
);
CREATE INDEX ON visits (person_id);
"""

HEAD = """\
name: {name}
subject: {{table: people, key: id}}
dates:
  seen: {{column: seen}}
retain_until: seen + 1 year
phases:
  - name: step
    due: seen + 1 year
"""


@pytest.fixture
def people(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute(SCHEMA)
    rows = [
        # id, seen, name, short, code, born, stamp, born_txt, cp, weight, age, mandatory
        (
            1,
            date(2000, 1, 1),
            "Dupont",
            "Martin",
            "Lefèvre",
            date(1975, 6, 15),
            datetime(2001, 7, 9, 10, 30),
            "1975-06-15",
            "75012",
            Decimal("72.5"),
            47,
            "x",
        ),
        (
            2,
            date(2000, 1, 1),
            "DUPONT ",
            "Bernard",
            None,
            date(1980, 2, 29),
            datetime(2002, 3, 1),
            "1980-13-45",
            "20090",
            Decimal("81"),
            33,
            "y",
        ),
        (3, date(2000, 1, 1), None, None, "Petit", None, None, None, "20213", None, None, "z"),
        (
            4,
            date(2000, 1, 1),
            "Moreau",
            "Roux",
            "Roux",
            date(1990, 1, 31),
            datetime(2003, 1, 1),
            "1990-01-31",
            "97411",
            Decimal("64.9"),
            29,
            "w",
        ),
        # seen recently: never due
        (
            5,
            date.today(),
            "Garnier",
            "Faure",
            "Faure",
            date(1960, 1, 1),
            datetime(2020, 1, 1),
            "1960-01-01",
            "69003",
            Decimal("90"),
            60,
            "v",
        ),
    ]
    for row in rows:
        conn.execute(
            "INSERT INTO people (id, seen, name, short, code, born, stamp, stamp_tz, born_txt, cp, "
            "weight, age, mandatory) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (*row[:7], row[6], *row[7:]),
        )
    conn.execute(
        "INSERT INTO visits (person_id, tel, caller) VALUES "
        "(1, '06 12 34 56 78', 'Dupont'), (4, '+33 6 98 76 54 32', 'Moreau'), "
        "(5, '01 02 03 04 05', 'Garnier')"
    )
    return conn


def _policy(tmp_path: Path, name: str, body: str) -> Path:
    return write_policy(tmp_path / name, HEAD.format(name=name) + body)


def _rows(conn: psycopg.Connection[Any], columns: str) -> dict[int, tuple[Any, ...]]:
    return {r[0]: r[1:] for r in conn.execute(f"SELECT id, {columns} FROM people ORDER BY id")}


def test_erase_nulls_defaults_and_neutral_values(
    people: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    folder = _policy(
        tmp_path,
        "erase",
        """\
    action: erase
    columns:
      - name
      - born
      - weight
      - required
      - {column: mandatory, value: '-'}
      - visits.tel
""",
    )
    report = run(people, settings(db_url, folder))
    assert report.outcome == "completed"
    rows = _rows(people, "name, born, weight, required, mandatory")
    for key in (1, 2, 3, 4):
        assert rows[key] == (None, None, None, "inconnu", "-")
    assert rows[5] == ("Garnier", date(1960, 1, 1), Decimal("90"), "inconnu", "v")
    tels = dict(people.execute("SELECT person_id, tel FROM visits").fetchall())
    assert tels == {1: None, 4: None, 5: "01 02 03 04 05"}
    # A second run finds nothing left to do.
    again = run(people, settings(db_url, folder))
    assert sum(p.acted for p in again.phases) == 0


def test_generalize_dates_postal_codes_and_numbers(
    people: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    folder = _policy(
        tmp_path,
        "generalize",
        """\
    action: generalize
    columns:
      - {column: born, to: year}
      - {column: stamp, to: month}
      - {column: stamp_tz, to: year}
      - {column: born_txt, to: year}
      - {column: cp, to: department}
      - {column: weight, to: range, width: 10}
      - {column: age, to: range, width: 5}
""",
    )
    run(people, settings(db_url, folder))
    rows = _rows(people, "born, stamp, born_txt, cp, weight, age, stamp_tz::date")
    assert rows[1] == (
        date(1975, 1, 1),
        datetime(2001, 7, 1),
        "1975-00-00",
        "75",
        Decimal(70),
        45,
        date(2001, 1, 1),
    )
    # a text date keeps its year even when the rest is impossible; Corsica is 2A / 2B
    assert rows[2][2:4] == ("1980-00-00", "2A")
    assert rows[3][3] == "2B"
    assert rows[4][3] == "974"  # overseas: three digits
    assert rows[5] == (
        date(1960, 1, 1),
        datetime(2020, 1, 1),
        "1960-01-01",
        "69003",
        Decimal(90),
        60,
        date(2020, 1, 1),
    )
    before = _rows(people, "born, stamp, born_txt, cp, weight, age")
    again = run(people, settings(db_url, folder))
    assert sum(p.acted for p in again.phases) == 0
    assert _rows(people, "born, stamp, born_txt, cp, weight, age") == before


def test_pseudonymize_is_keyed_deterministic_fitting_and_idempotent(
    people: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    folder = _policy(
        tmp_path,
        "pseudo",
        """\
    action: pseudonymize
    columns: [name, short, code, visits.caller]
""",
    )
    run(people, settings(db_url, folder))
    rows = _rows(people, "name, short, code")
    key = load_key(settings(db_url).pseudonym_key, "pseudonym_key")
    assert rows[1][0] == pseudonym(key, "Dupont")
    # normalised: case and surrounding spaces do not change the pseudonym
    assert rows[2][0] == rows[1][0]
    assert all(is_pseudonym(v) for v in rows[1][:2])
    assert len(rows[1][1]) == 12 and rows[1][1].startswith("PSN-")  # fits varchar(12)
    assert is_pseudonym(rows[1][2].rstrip())  # char(16)
    # the same value gives the same pseudonym in another table
    callers = dict(people.execute("SELECT person_id, caller FROM visits").fetchall())
    assert callers[1] == rows[1][0]
    assert rows[3] == (None, None, pseudonym(key, "Petit", 16))
    assert rows[5] == ("Garnier", "Faure", "Faure".ljust(16))
    # idempotent: a pseudonym is never pseudonymised again
    again = run(people, settings(db_url, folder))
    assert sum(p.acted for p in again.phases) == 0
    assert _rows(people, "name, short, code") == rows


def test_pseudonymisation_key_never_reaches_the_server(
    people: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """With log_statement=all, the server log holds no trace of the key."""
    logfile = _server_log(people)
    if logfile is None:
        pytest.skip("the server log file cannot be located on this server")
    start = logfile.stat().st_size
    folder = _policy(tmp_path, "pseudo", "    action: pseudonymize\n    columns: [name]\n")
    with psycopg.connect(
        db_url,
        autocommit=True,
        options="-c log_statement=all -c log_parameter_max_length=-1 "
        "-c log_min_duration_statement=0",
    ) as logged:
        report = run(logged, settings(db_url, folder))
    assert report.phases[0].acted == 3  # the fourth due person has no name
    with logfile.open("rb") as handle:
        handle.seek(start)
        log = handle.read().decode("utf-8", "replace")
    assert "UPDATE" in log and "COPY" in log, "statements must be in the captured log"
    assert PSEUDONYM_KEY not in log.lower()
    assert bytes.fromhex(PSEUDONYM_KEY).decode("latin-1") not in log


def _server_log(conn: psycopg.Connection[Any]) -> Path | None:
    row = conn.execute(
        "SELECT pg_current_logfile(), current_setting('data_directory'), "
        "current_setting('server_version_num')::int / 10000"
    ).fetchone()
    assert row is not None
    if row[0]:
        path = Path(row[0]) if row[0].startswith("/") else Path(row[1]) / row[0]
        return path if path.exists() else None
    debian = Path(f"/var/log/postgresql/postgresql-{row[2]}-main.log")
    return debian if debian.exists() else None


def test_phases_sharing_a_due_date_run_as_one_pass_with_an_entry_each(
    people: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    folder = _policy(
        tmp_path,
        "two",
        """\
    action: pseudonymize
    columns: [name]
  - name: contacts
    due: seen + 1 year
    action: erase
    columns: [visits.tel]
""",
    )
    # person 3 has no name: only its visits are left to the second phase (it has none), so it
    # is due for neither; person 4's name is already a pseudonym: due for the erase only
    key = load_key(settings(db_url).pseudonym_key, "pseudonym_key")
    people.execute("UPDATE people SET name = %s WHERE id = 4", (pseudonym(key, "Moreau"),))
    # one batch after the other: the audit entries below come in batch order
    report = run(people, settings(db_url, folder, batch_size=2, workers=1))
    assert report.outcome == "completed"
    step, contacts = report.phases
    assert (step.phase, step.acted, step.batches) == ("step", 2, 1)
    assert (contacts.phase, contacts.acted, contacts.batches) == ("contacts", 2, 2)
    assert _rows(people, "name")[1] == (pseudonym(key, "Dupont"),)
    tels = dict(people.execute("SELECT person_id, tel FROM visits").fetchall())
    assert tels == {1: None, 4: None, 5: "01 02 03 04 05"}
    entries = people.execute(
        "SELECT phase, subjects, detail->>'proposed' FROM retention.audit "
        "WHERE event = 'batch' ORDER BY seq"
    ).fetchall()
    # batches of 2 keys over the union {1, 2, 4}: (1, 2) then (4); one entry per phase each
    assert entries == [("step", 2, "2"), ("contacts", 1, "1"), ("contacts", 1, "1")]


TOGETHER = """\
    action: pseudonymize
    columns: [name, short, code, visits.caller]
{apart_1}  - name: contacts
    due: seen + 1 year
    action: erase
    columns: [required, {{column: mandatory, value: '-'}}, weight, visits.tel]
{apart_2}  - name: coarse
    due: seen + 1 year
    action: generalize
    columns:
      - {{column: born, to: year}}
      - {{column: cp, to: department}}
      - {{column: born_txt, to: year}}
"""
# a phase between two others with another due date: they are no longer consecutive, so no
# longer one pass, and each is applied on its own (what the combined update must equal)
APART = """\
  - name: apart_{n}
    due: seen + 200 years
    action: erase
    columns: [age]
"""
COUNT_UPDATES = """
CREATE TABLE row_updates (tbl text, id integer);
CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO row_updates VALUES (TG_TABLE_NAME, NEW.id); RETURN NEW; END $$;
CREATE TRIGGER count_update BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION count_update();
CREATE TRIGGER count_update BEFORE UPDATE ON visits FOR EACH ROW EXECUTE FUNCTION count_update();
"""


def test_column_phases_of_a_pass_rewrite_each_row_once_with_the_same_result(
    people: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    key = load_key(settings(db_url).pseudonym_key, "pseudonym_key")
    # person 4's names are already pseudonyms: due for the erasure and the generalisation only,
    # so it is processed apart from the subjects due for every phase of the pass
    people.execute(
        "UPDATE people SET name = %s, short = %s, code = %s WHERE id = 4",
        (pseudonym(key, "Moreau"), pseudonym(key, "Roux", 12), pseudonym(key, "Roux", 16)),
    )
    people.execute("UPDATE visits SET caller = NULL WHERE person_id = 4")
    people.execute(
        "CREATE TABLE people_0 AS SELECT * FROM people; "
        "CREATE TABLE visits_0 AS SELECT * FROM visits"
    )
    people.execute(COUNT_UPDATES)
    columns = "name, short, code, required, mandatory, weight, born, cp, born_txt, age"

    def outcome(name: str, apart: bool) -> tuple[Any, ...]:
        body = TOGETHER.format(
            apart_1=APART.format(n=1) if apart else "", apart_2=APART.format(n=2) if apart else ""
        )
        report = run(people, settings(db_url, _policy(tmp_path, name, body), batch_size=2))
        assert report.outcome == "completed"
        acted = {p.phase: (p.acted, dict(p.rows)) for p in report.phases if p.proposed}
        rows = _rows(people, columns)
        visits = people.execute("SELECT id, tel, caller FROM visits ORDER BY id").fetchall()
        updates = people.execute(
            "SELECT tbl, id, count(*) FROM row_updates GROUP BY tbl, id ORDER BY tbl, id"
        ).fetchall()
        people.execute(
            "TRUNCATE row_updates; DELETE FROM visits; DELETE FROM people; "
            "INSERT INTO people SELECT * FROM people_0; INSERT INTO visits SELECT * FROM visits_0"
        )
        return rows, visits, acted, updates

    together = outcome("together", apart=False)
    apart = outcome("apart", apart=True)
    assert together[:3] == apart[:3]  # same rows, same counts per phase and table
    rows, _, acted, _ = together
    assert acted["step"][0] == 3 and acted["contacts"][0] == 4 and acted["coarse"][0] == 4
    assert rows[1][:2] == (pseudonym(key, "Dupont"), pseudonym(key, "Martin", 12))
    assert rows[1][2].rstrip() == pseudonym(key, "Lefèvre", 16)
    assert rows[1][3:9] == ("inconnu", "-", None, date(1975, 1, 1), "75", "1975-00-00")
    assert rows[5][:1] == ("Garnier",)  # not due
    # each changed people row was rewritten once (three phases before); visits (tel erased,
    # caller pseudonymised) once per row too
    assert {(t, n) for t, _, n in together[3]} == {("people", 1), ("visits", 1)}
    assert any(n > 1 for t, _, n in apart[3] if t == "people")


PSEUDONYM_CANDIDATES = [
    "PSN-ABCDEFGH",  # 12 characters: the shortest pseudonym
    "PSN-ABCDEFG",  # one short
    "PSN-" + "A" * 28,  # 32: the longest
    "PSN-" + "A" * 29,
    "PSN-ABCDEFG1",  # 1 is not base32
    "psn-abcdefgh",
    "PSN-ABCDEFGH\n",
    "XPSN-ABCDEFGH",
    "PSN-ABCDÉFGH",
    "",
    "Dupont",
    "PSN-",
]


def test_the_sql_test_of_a_pseudonym_agrees_with_the_python_one(
    conn: psycopg.Connection[Any],
) -> None:
    """`not_pseudonym` (plan, batches, exposure) and `is_pseudonym` (the writer) must agree,
    in every text type, and under a nondeterministic collation (where `~` alone fails)."""
    from psycopg import sql

    from retention.rows.values import not_pseudonym

    conn.execute(
        "CREATE COLLATION IF NOT EXISTS ci (provider = icu, locale = 'und-u-ks-level2', "
        "deterministic = false)"
    )
    conn.execute("CREATE TABLE v (i int, t text, vc varchar(40), c char(40), ci text COLLATE ci)")
    with conn.cursor().copy("COPY v FROM STDIN") as copy:
        for i, value in enumerate(PSEUDONYM_CANDIDATES):
            copy.write_row((i, value, value, value, value))
    for column in ("t", "vc", "c", "ci"):
        query = sql.SQL("SELECT i, {} FROM v ORDER BY i").format(
            not_pseudonym(sql.Identifier(column))
        )
        got = [row[1] for row in conn.execute(query)]
        expected = [
            not is_pseudonym(v.rstrip(" ") if column == "c" else v) for v in PSEUDONYM_CANDIDATES
        ]
        assert got == expected, column
    assert expected.count(False) == 2  # the candidates do hold pseudonyms
