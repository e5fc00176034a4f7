"""Table names as a DBA writes them: a policy may quote them as SQL does (`"Soins"."Patients"`,
`` `soins`.`patients` ``), and a hint's statement quotes them where the engine needs it, so that
it runs as printed (a mixed-case PostgreSQL name unquoted is folded to lower case)."""

from __future__ import annotations

from pathlib import Path

import pytest

from retention.catalog.introspect import read_catalog
from retention.engines.catalogue import split_name
from retention.policy.check import check_policies
from tests.engine_helpers import write_policy
from tests.fix_engines import EngineDB, run_script


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("patients", ["patients"]),
        ("soins.patients", ["soins", "patients"]),
        ('"Soins"."Patients"', ["Soins", "Patients"]),
        ('"So.ins".visites', ["So.ins", "visites"]),
        ("`soins`.`patients`", ["soins", "patients"]),
        ('"a""b"', ['a"b']),
        ('soins."Patients"', ["soins", "Patients"]),
        ("pat`ients", ["pat`ients"]),  # unquoted: as stored, a quote inside included
        ('a"b.c', ['a"b', "c"]),
    ],
)
def test_a_name_is_split_into_its_parts_as_sql_quotes_them(name: str, parts: list[str]) -> None:
    assert split_name(name) == parts


@pytest.mark.parametrize("name", ['"Soins', '"a".', '"a"."b"."c"', '"a"b'])
def test_a_name_sql_would_not_read_is_no_name(name: str) -> None:
    assert split_name(name) is None


SCHEMA = {
    "postgresql": """
CREATE SCHEMA "Soins";
CREATE TABLE "Soins"."Patients" (id integer PRIMARY KEY);
CREATE TABLE "Soins"."Visites" ("Patient" integer REFERENCES "Soins"."Patients", jour date)
""",
    "mariadb": """
CREATE TABLE `Patients` (id integer PRIMARY KEY);
CREATE TABLE `Visites` (`Patient` integer, jour date, `order` integer)
""",
}
POLICY = """
name: soins
subject: {{table: '{subject}', key: id}}
related:
  follow_foreign_keys: false
  links: [{{table: '{visits}', column: Patient}}]
dates:
  derniere: {{latest: jour, over: '{visits}'}}
retain_until: derniere + 20 years
phases:
  - name: destruction
    due: retain_until
    action: purge
"""


def test_a_quoted_name_is_found_and_the_index_hint_runs_as_printed(
    engine_db: EngineDB, engine: str, tmp_path: Path
) -> None:
    conn = engine_db.conn
    run_script(conn, SCHEMA[engine])
    if engine == "postgresql":
        subject, visits = '"Soins"."Patients"', '"Soins".Visites'
        hint = 'CREATE INDEX ON "Soins"."Visites" ("Patient")'
    else:
        subject, visits = "`Patients`", "Visites"
        hint = "CREATE INDEX Visites_Patient_idx ON Visites (Patient)"
    folder = write_policy(tmp_path / "policies", POLICY.format(subject=subject, visits=visits))
    result = check_policies(conn, folder)
    assert result.errors == []
    (warning,) = [w for w in result.warnings if "no index" in w.message]
    assert warning.hint == hint
    conn.execute(hint)
    assert [w for w in check_policies(conn, folder).warnings if "no index" in w.message] == []


def test_a_reserved_word_is_quoted_in_a_hint(engine_db: EngineDB, engine: str) -> None:
    run_script(engine_db.conn, SCHEMA[engine])
    catalog = read_catalog(engine_db.conn, tool_schema=engine_db.tool_schema)
    visits = catalog.find('"Soins"."Visites"' if engine == "postgresql" else "Visites")
    assert visits is not None
    # a name with a dot, as a policy writes it so that it reads back
    assert catalog.policy_name("so.ins") == ('"so.ins"' if engine == "postgresql" else "`so.ins`")
    if engine == "postgresql":
        assert catalog.written("user", "Visites", "jour") == '"user"."Visites".jour'
        assert (
            catalog.index_statement(visits, ["jour"]) == 'CREATE INDEX ON "Soins"."Visites" (jour)'
        )
    else:
        assert catalog.written("order", "Visites") == "`order`.Visites"
        statement = catalog.index_statement(visits, ["order"])
        assert statement == "CREATE INDEX Visites_order_idx ON Visites (`order`)"
        engine_db.conn.execute(statement)
