"""The benchmark databases: a generated template, reused between runs, and its clones."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import conninfo, sql

from retention.demo.generate import generate
from retention.demo.schema import TABLES, create_schema

SEED_PATIENTS = 758_912
SEED = 42
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Template:
    """A generated database and what it holds."""

    name: str
    patients: int
    counts: dict[str, int]
    generated_on: date
    size_bytes: int
    built_seconds: float | None  # None when reused


def url_for(server: str, dbname: str) -> str:
    """The server URL pointed at another database."""
    params = conninfo.conninfo_to_dict(server)
    params["dbname"] = dbname
    return conninfo.make_conninfo("", **params)


@contextmanager
def connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(url, autocommit=True, application_name="bench") as conn:
        yield conn


def table_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Exact row count of every demo table."""
    counts = {}
    for table in TABLES:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        counts[table] = int(row.fetchone()[0])  # type: ignore[index]
    return counts


def _exists(admin: psycopg.Connection[Any], name: str) -> bool:
    row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def _stored_meta(admin: psycopg.Connection[Any], name: str) -> dict[str, Any] | None:
    row = admin.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (name,),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    try:
        meta = json.loads(row[0])
    except json.JSONDecodeError:
        return None
    return meta if isinstance(meta, dict) else None


def _size(admin: psycopg.Connection[Any], name: str) -> int:
    row = admin.execute("SELECT pg_database_size(%s)", (name,)).fetchone()
    return int(row[0]) if row else 0


def drop_database(admin: psycopg.Connection[Any], name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _reusable(server: str, name: str, patients: int) -> Template | None:
    """The existing template when its stored counts match its actual rows, else None."""
    with connect(server) as admin:
        if not _exists(admin, name):
            return None
        meta = _stored_meta(admin, name)
        size = _size(admin, name)
    if meta is None or meta.get("patients") != patients:
        return None
    with connect(url_for(server, name)) as conn:
        try:
            counts = table_counts(conn)
        except psycopg.errors.UndefinedTable:
            return None
    if counts != meta.get("counts") or counts.get("patients") != patients:
        return None
    generated_on = date.fromisoformat(str(meta["today"]))
    return Template(name, patients, counts, generated_on, size, None)


def _build(server: str, name: str, patients: int, today: date) -> Template:
    started = time.monotonic()
    with connect(server) as admin:
        drop_database(admin, name)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with connect(url_for(server, name)) as conn:
        create_schema(conn)
        stats = generate(conn, patients=patients, seed=SEED, today=today)
        # hint bits, visibility map and statistics settled once, so every clone starts clean
        conn.execute("VACUUM (FREEZE, ANALYZE)")
        counts = table_counts(conn)
    if counts != stats.counts():
        raise RuntimeError(f"generated counts {stats.counts()} differ from table rows {counts}")
    meta = {"patients": patients, "seed": SEED, "today": today.isoformat(), "counts": counts}
    with connect(server) as admin:
        admin.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(json.dumps(meta))
            )
        )
        size = _size(admin, name)
    return Template(name, patients, counts, today, size, time.monotonic() - started)


def ensure_template(server: str, patients: int, today: date) -> Template:
    """`retention_bench_<patients>`, reused when intact, generated otherwise."""
    name = f"retention_bench_{patients}"
    return _reusable(server, name, patients) or _build(server, name, patients, today)


def clone(server: str, template: Template, name: str) -> str:
    """A fresh copy of the template; returns its URL."""
    with connect(server) as admin:
        drop_database(admin, name)
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template.name)
            )
        )
        admin.execute("CHECKPOINT")  # the copy's writes are not charged to the measurement
    return url_for(server, name)


def checkpoint(server: str) -> None:
    """A checkpoint now: the side measured next starts as the first did, right after one.
    Without it the second side inherits the first one's WAL and pays the checkpoint it
    brings on (PostgreSQL starts one after max_wal_size / (1 + checkpoint_completion_target)
    of WAL, about 540 MB with the defaults: the archive's floor writes 438 MB at 189,728)."""
    with connect(server) as admin:
        admin.execute("CHECKPOINT")


def server_facts(server: str) -> dict[str, str]:
    """Version and the settings that matter for these measurements."""
    names = ("shared_buffers", "work_mem", "maintenance_work_mem", "max_wal_size",
             "synchronous_commit", "effective_cache_size", "random_page_cost")  # fmt: skip
    with connect(server) as admin:
        facts = {"version": str(admin.execute("SHOW server_version").fetchone()[0])}  # type: ignore[index]
        for setting in names:
            row = admin.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()
            facts[setting] = str(row[0]) if row else "?"
    return facts
