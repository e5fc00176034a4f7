"""`retention grants` on MariaDB: an account with exactly the printed privileges sees the same
schema as the owner (every foreign key and its rules), plans the same, runs, and verifies the
trail. MariaDB hides a foreign key from information_schema.REFERENTIAL_CONSTRAINTS unless the
account holds a column privilege other than SELECT on the table: the catalogue reads those
keys' rules from SHOW CREATE TABLE instead."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from urllib.parse import urlsplit, urlunsplit

import pytest

from retention.db import connect
from retention.demo.generate import generate
from retention.demo.schema import create_schema
from retention.engines.mariadb.connection import MariaDBConnection
from retention.settings import Settings
from tests.engine_helpers import cli


def _as(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port or 3306}"))


@pytest.mark.mariadb_only(
    "MySQL shows triggers only to an account with TRIGGER, which the grants never give"
)
def test_an_account_with_the_printed_grants_sees_plans_and_runs_as_the_owner(
    mariadb_url: str, mariadb_conn: MariaDBConnection
) -> None:
    with connect(Settings(), url=mariadb_url) as conn:
        create_schema(conn)
        generate(conn, patients=150, seed=11)
    suffix = secrets.token_hex(4)
    tool, account = f"rt_pv_tool_{suffix}", f"rt_pv_{suffix}"

    def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(url, *args, RETENTION_SCHEMA_NAME=tool)

    try:
        assert run(mariadb_url, "init").returncode == 0
        printed = run(mariadb_url, "grants", "--role", f"{account}@%")
        assert printed.returncode == 0, printed.stderr
        for statement in re.split(r";(?:\s*--[^\n]*)?\n", printed.stdout):
            text = "\n".join(
                line for line in statement.splitlines() if not line.lstrip().startswith("--")
            ).strip()
            if text:
                mariadb_conn.execute(text)
        as_account = _as(mariadb_url, account)

        checked = run(as_account, "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "no foreign key" not in checked.stderr, checked.stderr
        plans = [
            json.loads(run(url, "plan", "--format", "json").stdout)
            for url in (mariadb_url, as_account)
        ]
        assert plans[0] == plans[1]
        assert any(p["phases"] for p in plans[0]["policies"]), plans[0]
        done = run(as_account, "run", "--yes", "--allow-large", "--reason", "grants")
        assert done.returncode == 0, done.stdout + done.stderr
        verified = run(as_account, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "this account cannot" not in checked.stderr
        # with INSERT on the trail the account sees its triggers (information_schema)
        assert "is missing" not in checked.stderr and "cannot be seen" not in checked.stderr
        # a privilege taken away: check says which, before a run stops on it
        database = mariadb_conn.execute("SELECT DATABASE()").fetchone()[0]
        mariadb_conn.execute(f"REVOKE DELETE ON `{database}`.`sejours` FROM '{account}'@'%'")
        mariadb_conn.execute(f"REVOKE INSERT ON `{tool}`.`audit` FROM '{account}'@'%'")
        mariadb_conn.execute(
            f"REVOKE UPDATE (`email`) ON `{database}`.`patients` FROM '{account}'@'%'"
        )
        weak = run(as_account, "check")
        assert weak.returncode == 0, weak.stderr  # warnings: the files are valid
        assert (
            f"warning: this account cannot DELETE from {database}.sejours: the phase "
            "'destruction' would stop at its first batch (rolled back)"
        ) in weak.stderr
        assert f"warning: this account cannot INSERT into {tool}.audit" in weak.stderr
        assert (
            f"warning: this account cannot UPDATE email of {database}.patients: the phase "
            "'coordonnees' would stop at its first batch (rolled back)"
        ) in weak.stderr
        assert "cannot lock rows" not in weak.stderr  # MariaDB locks with SELECT
        assert "hint: as the owner, review and apply `retention grants --role" in weak.stderr
        # the trail's triggers are there: this account only cannot see them now
        assert "is missing" not in weak.stderr
        assert "cannot be seen by this account (no INSERT on it)" in weak.stderr
        assert "cannot create temporary tables" not in weak.stderr
        # without CREATE TEMPORARY TABLES: check warns, plan says what to grant (an outside
        # review: 'Access denied ... to database', and nothing in check)
        (granted,) = [
            line for line in printed.stdout.splitlines() if "CREATE TEMPORARY TABLES" in line
        ]  # on the database's name as a pattern (its `_` escaped): revoked as it was granted
        mariadb_conn.execute(
            granted.rstrip(";").replace("GRANT ", "REVOKE ", 1).replace(" TO ", " FROM ")
        )
        no_temporary = run(as_account, "check")
        assert "warning: this account cannot create temporary tables" in no_temporary.stderr
        plan = run(as_account, "plan")
        assert plan.returncode == 4, plan.stdout + plan.stderr
        assert "CREATE TEMPORARY TABLES on MariaDB/MySQL" in plan.stderr
    finally:
        mariadb_conn.execute(f"DROP USER IF EXISTS '{account}'@'%'")
        mariadb_conn.execute(f"DROP DATABASE IF EXISTS `{tool}`")
