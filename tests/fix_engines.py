"""Pytest plugin: the same test on every engine, by one fixture parameter.

A test that proves engine-independent behaviour (policy semantics, the clock, purge along
links, holds, the audit chain...) asks for ``engine_db`` (an empty database) or ``engine_demo``
(the demo hospital) instead of PostgreSQL's ``db_url`` / ``demo_db_url``: it then runs once per
engine, with the ids ``[postgresql]`` and ``[mariadb]``. Both give an :class:`EngineDB`: the
database's URL, where its tables live, where the tool's own tables go, and the tool's own
connection. The servers are those of ``fix_db`` (PostgreSQL) and ``fix_mariadb`` (MariaDB): an
unreachable MariaDB skips the ``[mariadb]`` half loudly, and fails it in CI.

On MariaDB a schema is a database: the tool's own tables get a database of their own per test
(``<database>_t``), so parallel tests never share an audit trail. The demo hospital is built
once per worker with the tool's own loaders (``create_schema``, ``generate``), as on
PostgreSQL, and copied table by table for each test (``SHOW CREATE TABLE`` then
``INSERT ... SELECT``: the same columns, keys, foreign keys and next ids).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from retention.db import connect
from retention.demo.generate import generate
from retention.demo.schema import create_schema
from retention.demo.tables import LOAD_ORDER, TABLES
from retention.engines import Connection, sql
from retention.settings import Settings
from tests.engine_helpers import ROOT, cli, settings
from tests.fix_db import DEMO_PATIENTS, DEMO_SEED, DEMO_TODAY, temporary_database

ENGINES = ("postgresql", "mariadb")
PG_TOOL_SCHEMA = "retention"

_counter = itertools.count(1)


@dataclass(frozen=True)
class EngineDB:
    """One test's database on one engine."""

    engine: str  # "postgresql" or "mariadb"
    url: str
    schema: str  # where the application's tables are: "public", or the database on MariaDB
    tool_schema: str  # the tool's own tables: "retention", or a database of its own on MariaDB
    conn: Connection  # the tool's autocommit connection to `url`

    def settings(self, policies: Path = ROOT / "policies", **extra: Any) -> Settings:
        """The test settings (tests/engine_helpers.py) for this database and tool schema."""
        return settings(self.url, policies, schema_name=self.tool_schema, **extra)

    def env(self) -> dict[str, str]:
        """What a `retention` subprocess needs besides engine_helpers.cli_env."""
        return {"RETENTION_SCHEMA_NAME": self.tool_schema}

    def cli(
        self, *args: str, policies: Path = ROOT / "policies", timeout: float = 300, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        """`retention ARGS` on this database as a user runs it (engine_helpers.cli)."""
        return cli(
            self.url,
            *args,
            policies=policies,
            timeout=timeout,
            RETENTION_SCHEMA_NAME=self.tool_schema,
            **extra,
        )

    def tool(self, table: str) -> sql.Identifier:
        """One of the tool's own tables (`retention.audit`...)."""
        return sql.Identifier(self.tool_schema, table)

    def table(self, name: str) -> str:
        """An application table as the tool names it in its output (`public.patients`)."""
        return f"{self.schema}.{name}"

    def count(self, table: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
        """Rows of an application table (a name of this module's tests, not of a policy)."""
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        if where:
            query += sql.SQL(" WHERE " + where)
        row = self.conn.execute(query, params).fetchone()
        assert row is not None
        return int(row[0])


def run_script(conn: Connection, script: str) -> None:
    """The statements of `script` (`;`-separated, none holding a `;`), one by one: MariaDB
    takes one statement at a time."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def json_value(value: Any) -> Any:
    """A JSON column as read: the document (PostgreSQL's jsonb, text[]), or its text (MariaDB)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _new_name(kind: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"rt_e{kind}{worker}_{os.getpid()}_{next(_counter)}"


# -- MariaDB: databases, and the demo's copy ----------------------------------------------------


def _maria_url(admin_url: str, name: str) -> str:
    from retention.engines.mariadb.session import database_url

    return database_url(admin_url, name)


def _maria_drop(admin: Connection, *names: str) -> None:
    for name in names:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@contextmanager
def _maria_databases(admin_url: str, kind: str) -> Iterator[tuple[str, str]]:
    """A new empty database, and the name of the tool's (created by the tool on first use)."""
    name = _new_name(kind)
    tool = f"{name}_t"
    with connect(Settings(), url=admin_url) as admin:
        _maria_drop(admin, name, tool)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield name, tool
        finally:
            _maria_drop(admin, name, tool)


@pytest.fixture(scope="session")
def mariadb_demo_template(mariadb_admin_url: str) -> Iterator[str]:
    """The demo hospital on MariaDB, built once per worker (the same rows as ``demo_template``)."""
    with _maria_databases(mariadb_admin_url, "tpl") as (name, _):
        with connect(Settings(), url=_maria_url(mariadb_admin_url, name)) as build:
            create_schema(build)
            generate(build, patients=DEMO_PATIENTS, seed=DEMO_SEED, today=DEMO_TODAY)
        yield name


def _maria_copy(conn: Connection, template: str) -> None:
    """Every demo table of `template` into the connection's (empty) database."""
    conn.execute("SET SESSION foreign_key_checks = 0")
    try:
        for table in TABLES:
            row = conn.execute(
                sql.SQL("SHOW CREATE TABLE {}").format(sql.Identifier(template, table))
            ).fetchone()
            assert row is not None
            conn.execute(str(row[1]))
        for table in LOAD_ORDER:
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                    sql.Identifier(table), sql.Identifier(template, table)
                )
            )
    finally:
        conn.execute("SET SESSION foreign_key_checks = 1")


# -- the fixtures -------------------------------------------------------------------------------


XFAIL_ON = "xfail_on"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{XFAIL_ON}(engine, reason): a behaviour that differs on that engine, a known finding: "
        "that engine's run of the test is xfail(strict=True)",
    )


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The engine this run of the test is on: its id in the test's name. A test marked
    `@pytest.mark.xfail_on("mariadb", reason=...)` is a strict xfail on that engine only."""
    name: str = request.param
    for mark in request.node.iter_markers(XFAIL_ON):
        if mark.args[0] == name:
            request.applymarker(pytest.mark.xfail(strict=True, reason=mark.kwargs["reason"]))
    return name


@contextmanager
def _engine_db(request: pytest.FixtureRequest, engine: str, *, demo: bool) -> Iterator[EngineDB]:
    if engine == "postgresql":
        admin_url: str = request.getfixturevalue("pg_admin_url")
        template = request.getfixturevalue("demo_template").dbname if demo else None
        with (
            temporary_database(admin_url, template=template) as url,
            connect(Settings(), url=url) as conn,
        ):
            yield EngineDB(engine, url, "public", PG_TOOL_SCHEMA, conn)
        return
    admin_url = request.getfixturevalue("mariadb_admin_url")
    source = request.getfixturevalue("mariadb_demo_template") if demo else None
    with _maria_databases(admin_url, "d" if demo else "") as (name, tool):
        url = _maria_url(admin_url, name)
        with connect(Settings(), url=url) as conn:
            if source is not None:
                _maria_copy(conn, source)
            yield EngineDB(engine, url, name, tool, conn)


@pytest.fixture
def engine_db(request: pytest.FixtureRequest, engine: str) -> Iterator[EngineDB]:
    """A brand-new empty database on the test's engine, dropped afterwards."""
    with _engine_db(request, engine, demo=False) as db:
        yield db


@pytest.fixture(scope="module", params=ENGINES)
def engine_db_module(request: pytest.FixtureRequest) -> Iterator[EngineDB]:
    """An empty database on each engine shared by a module's tests (read-only tests of data a
    module loads once), dropped after them."""
    with _engine_db(request, request.param, demo=False) as db:
        yield db


@pytest.fixture
def engine_demo(request: pytest.FixtureRequest, engine: str) -> Iterator[EngineDB]:
    """A fresh copy of the demo hospital (tests/fix_db.py's size, seed and date) on the test's
    engine, dropped afterwards."""
    with _engine_db(request, engine, demo=True) as db:
        yield db
