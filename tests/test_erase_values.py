"""An erase's `value` that its column cannot hold is refused by `check` (file, line, why, a
hint), not by every batch's statement at run time (policy/actions.py `_unfit_value`). An outside
review found a date 'zzz', 85 characters for a varchar(50), JSON that is not JSON, and a
pseudonym for a SET column all passing check, then each run failing with the server's bare
error. Both engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from retention.policy.check import check_policies
from tests.fix_engines import EngineDB
from tests.test_policy_check import _write

TABLE = {
    "postgresql": "CREATE TABLE people (id integer PRIMARY KEY, seen date NOT NULL, "
    "born date, note varchar(10), n integer, amount numeric(8, 2), doc jsonb, flag boolean, "
    "stamp timestamp, arrival time NOT NULL)",
    "mariadb": "CREATE TABLE people (id integer PRIMARY KEY, seen date NOT NULL, born date, "
    "note varchar(10), n integer unsigned, amount decimal(8, 2), doc json, flag tinyint(1), "
    "stamp datetime, tags set('a', 'b', 'c'), y year, arrival time NOT NULL, tiny tinyint)",
}
POLICY = """\
name: p
subject: {table: people, key: id}
dates:
  seen: {column: seen}
retain_until: seen + 20 years
phases:
  - name: oubli
    due: seen + 3 years
    action: ACTION
    columns:
      - {column: COLUMN, value: VALUE}
"""


def _refusal(
    engine_db: EngineDB, tmp_path: Path, column: str, value: str, action: str = "erase"
) -> str | None:
    text = POLICY.replace("ACTION", action).replace("COLUMN", column).replace("VALUE", value)
    if action != "erase":
        text = text.replace(f"{{column: {column}, value: {value}}}", column)
    errors = check_policies(engine_db.conn, _write(tmp_path, text)).errors
    return errors[0].message if errors else None


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("born", "zzz", "not a date written YYYY-MM-DD"),
        ("born", "'2024-02-30'", "not a date written YYYY-MM-DD"),
        ("stamp", "'yesterday'", "(a time may follow: YYYY-MM-DD HH:MM:SS)"),
        (
            "note",
            "'a value of more than ten characters'",
            "35 characters, more than the column's 10",
        ),
        ("n", "abc", "not a number"),
        ("n", "'1.5'", "not an integer"),
        ("n", "'1e3'", "not an integer written in digits"),
        ("n", "'99999999999'", "out of the range of int"),
        ("amount", "'NaN'", "not a finite number"),
        ("doc", "'{not json'", "not JSON"),
        ("doc", "'[NaN]'", "not JSON"),
    ],
)
def test_a_value_its_column_cannot_hold_is_refused(
    engine_db: EngineDB, tmp_path: Path, column: str, value: str, said: str
) -> None:
    engine_db.conn.execute(TABLE[engine_db.engine])
    message = _refusal(engine_db, tmp_path, column, value)
    assert message is not None and message.startswith(f"'{column}' ("), message
    assert said in message, message


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("born", "'1900-01-01'"),
        ("born", "'1900-1-1'"),
        ("stamp", "'1900-01-01 00:00:00'"),
        ("stamp", "'1900-01-01T00:00:00.5'"),
        ("arrival", "'00:00:00'"),  # a type the check cannot judge: NOT NULL, still erasable
        ("note", "'inconnu'"),
        ("n", "0"),
        ("amount", "'0.00'"),
        ("doc", "'{}'"),
    ],
)
def test_a_value_its_column_holds_passes(
    engine_db: EngineDB, tmp_path: Path, column: str, value: str
) -> None:
    engine_db.conn.execute(TABLE[engine_db.engine])
    assert _refusal(engine_db, tmp_path, column, value) is None


@pytest.mark.parametrize("engine", ["mariadb"], indirect=True)
@pytest.mark.mariadb_only("MySQL 8 writes integer types without display width", params=["mariadb"])
def test_mariadb_types_of_its_own(engine_db: EngineDB, tmp_path: Path) -> None:
    """A SET holds only its members (no pseudonym either); an unsigned number no negative; a
    zero date is MariaDB's 'unknown', an infinity PostgreSQL's only; a YEAR's value the check
    cannot judge passes; a tinyint out of its range is refused."""
    db = engine_db
    db.conn.execute(TABLE["mariadb"])
    assert "'d' not in the set" in (_refusal(db, tmp_path, "tags", "'a,d'") or "")
    assert _refusal(db, tmp_path, "tags", "'a,c'") is None
    assert "negative, and the column is unsigned" in (_refusal(db, tmp_path, "n", "-1") or "")
    assert _refusal(db, tmp_path, "born", "'0000-00-00'") is None
    assert _refusal(db, tmp_path, "born", "infinity") == (
        "'born' (date) cannot hold the value 'infinity': MariaDB/MySQL has no such date"
    )
    assert _refusal(db, tmp_path, "y", "1999") is None  # YEAR: the server judges it
    assert "out of the range of tinyint(4) (-128 to 127)" in (
        _refusal(db, tmp_path, "tiny", "300") or ""
    )
    pseudonym = _refusal(db, tmp_path, "tags", "x", action="pseudonymize")
    assert pseudonym is not None and "is a set: it holds only its members" in pseudonym


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_postgresql_values_of_its_own(engine_db: EngineDB, tmp_path: Path) -> None:
    """Its infinite dates and its spellings of booleans pass, MariaDB's zero date does not;
    the message names the column's
    type once (a review found '(date) (date)')."""
    engine_db.conn.execute(TABLE["postgresql"])
    assert _refusal(engine_db, tmp_path, "born", "infinity") is None
    # a zero date, MariaDB's 'unknown': refused by the server at the first batch before
    assert _refusal(engine_db, tmp_path, "stamp", "'0000-00-00 00:00:00'") == (
        "'stamp' (timestamp without time zone) cannot hold the value '0000-00-00 00:00:00': "
        "PostgreSQL has no such date"
    )
    assert _refusal(engine_db, tmp_path, "flag", "'y'") is None
    refused = _refusal(engine_db, tmp_path, "flag", "'maybe'")
    assert (
        refused == "'flag' (boolean) cannot hold the value 'maybe': not a boolean (true or false)"
    )


def test_a_json_column_is_scrubbed_not_pseudonymised(engine_db: EngineDB, tmp_path: Path) -> None:
    """An outside review: "'js' (longtext) cannot hold a pseudonym; pseudonymize works on text
    columns" on a JSON column, which MariaDB stores as text: the message contradicted itself."""
    engine_db.conn.execute(TABLE[engine_db.engine])
    refused = _refusal(engine_db, tmp_path, "doc", "x", action="pseudonymize")
    assert (
        refused is not None and "holds JSON: a pseudonym in its place would not be JSON" in refused
    )


def test_a_policy_on_a_view_says_it_is_a_view(engine_db: EngineDB, tmp_path: Path) -> None:
    """A review of bad inputs: a policy on a view was told "unknown table 'people_v'; did you
    mean 'people'?", which hid why."""
    engine_db.conn.execute(TABLE[engine_db.engine])
    engine_db.conn.execute("CREATE VIEW people_v AS SELECT id, seen FROM people")
    text = (
        POLICY.replace("table: people,", "table: people_v,")
        .replace("ACTION", "erase")
        .replace("COLUMN", "seen")
        .replace("VALUE", "'2000-01-01'")
    )
    errors = check_policies(engine_db.conn, _write(tmp_path, text)).errors
    assert [p.message for p in errors] == [
        "'people_v' is a view: a policy acts on the tables that hold the rows"
    ]
