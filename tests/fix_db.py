"""Pytest plugin: a real PostgreSQL server, a fresh database per test, demo data per worker.

Fixtures:

- ``pg_admin_url`` (session): URL of a maintenance database on the server the tests use.
- ``db_url`` / ``conn``: a brand-new empty database for one test, and an autocommit connection.
- ``demo_template`` (session): a database holding the demo schema and data, built once per worker.
- ``demo_db_url`` / ``demo_conn``: a fresh copy of that template for one test, and a connection.

Database names carry the xdist worker id and the pid, so parallel workers and other people's
test sessions on the same server never collide.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow

from retention.demo.embedded import start as start_embedded
from retention.demo.generate import DemoStats, generate
from retention.demo.schema import create_schema

ENV_URL = "RETENTION_TEST_DATABASE_URL"
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

DEMO_PATIENTS = 300
DEMO_SEED = 42
DEMO_TODAY = date(2025, 6, 1)

_counter = itertools.count(1)


@dataclass(frozen=True)
class DemoTemplate:
    """The per-worker template database with demo data, and how it was generated.

    It accepts no connections (a copy fails while anyone is connected to its template): read
    the data through ``demo_conn``.
    """

    dbname: str
    stats: DemoStats
    patients: int
    seed: int
    today: date


def with_dbname(url: str, dbname: str) -> str:
    """The same server and credentials as ``url``, another database."""
    return make_conninfo(url, dbname=dbname)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _new_name(kind: str) -> str:
    return f"rt_{kind}{_worker()}_{os.getpid()}_{next(_counter)}"


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _create_database(admin_url: str, name: str, template: str | None = None) -> None:
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(query)


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _set_template(admin_url: str, name: str, *, is_template: bool) -> None:
    """Mark a database as a template that accepts no connections, or back as a normal one."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE {} ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(name), sql.Literal(is_template), sql.Literal(not is_template)
                )
            )


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """The server to use: $RETENTION_TEST_DATABASE_URL, the local one, or an embedded one."""
    env_url = os.environ.get(ENV_URL)
    if env_url:
        yield env_url
        return
    if _reachable(LOCAL_URL):
        yield LOCAL_URL
        return
    # A short path: the server's Unix socket lives in the data folder.
    base = Path(tempfile.mkdtemp(prefix="rt-pg-"))
    server = start_embedded(base / "pgdata")
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def temporary_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    """A new database (empty, or a copy of ``template``) for the ``with`` block; yields its URL."""
    name = _new_name("" if template is None else "copy_")
    _create_database(admin_url, name, template=template)
    try:
        yield with_dbname(admin_url, name)
    finally:
        _drop_database(admin_url, name)


@pytest.fixture
def db_url(pg_admin_url: str) -> Iterator[str]:
    """A brand-new empty database for this test, dropped afterwards."""
    with temporary_database(pg_admin_url) as url:
        yield url


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[TupleRow]]:
    """An autocommit connection to :func:`db_url`."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def demo_template(pg_admin_url: str) -> Iterator[DemoTemplate]:
    """A template database with the demo schema and data (small scale, fixed seed and date)."""
    name = _new_name("tpl_")
    _create_database(pg_admin_url, name)
    try:
        with psycopg.connect(with_dbname(pg_admin_url, name), autocommit=True) as build:
            create_schema(build)
            stats = generate(build, patients=DEMO_PATIENTS, seed=DEMO_SEED, today=DEMO_TODAY)
        _set_template(pg_admin_url, name, is_template=True)
        yield DemoTemplate(
            dbname=name,
            stats=stats,
            patients=DEMO_PATIENTS,
            seed=DEMO_SEED,
            today=DEMO_TODAY,
        )
    finally:
        _set_template(pg_admin_url, name, is_template=False)
        _drop_database(pg_admin_url, name)


@pytest.fixture
def demo_db_url(pg_admin_url: str, demo_template: DemoTemplate) -> Iterator[str]:
    """A fresh copy of the demo template for this test, dropped afterwards."""
    with temporary_database(pg_admin_url, template=demo_template.dbname) as url:
        yield url


@pytest.fixture
def demo_conn(demo_db_url: str) -> Iterator[psycopg.Connection[TupleRow]]:
    """An autocommit connection to :func:`demo_db_url`."""
    with psycopg.connect(demo_db_url, autocommit=True) as connection:
        yield connection
