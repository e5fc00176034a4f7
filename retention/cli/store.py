"""`retention init`: create or upgrade the tool's own schema."""

from __future__ import annotations

import argparse
from typing import Any

from retention.db import connect
from retention.engines import engine_of
from retention.settings import Settings
from retention.store.schema import (
    TrailMissingError,
    altered_error,
    altered_tables,
    migrate,
    missing_tables,
)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "init",
        description="Create or upgrade the tool's own schema (holds, runs, audit trail).",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings) as conn:
        applied = migrate(conn, settings.schema_name)
        missing = missing_tables(conn, settings.schema_name)
        if missing:
            tables = ", ".join(f"{settings.schema_name}.{name}" for name in missing)
            raise TrailMissingError(
                f"the tool's schema '{settings.schema_name}' is missing {tables}, which its "
                "migrations created: dropped, or hidden from this account. init does not make "
                "them again: an empty table would hide what it held (legal holds, the audit "
                "trail, runs, archives)",
                hint="restore them from a backup, or run init as the owner of the schema",
            )
        altered = altered_tables(conn, settings.schema_name)
        if altered:
            raise altered_error(settings.schema_name, altered, init=True)
        # the trail's triggers, dropped or disabled since: made again (the owner runs init)
        repaired = engine_of(conn).own_schema.repair(conn, settings.schema_name)
    if applied:
        print(f"schema '{settings.schema_name}': applied {', '.join(applied)}")
    else:
        print(f"schema '{settings.schema_name}' is up to date")
    for problem in repaired:
        print(f"  repaired: {problem}")
    return 0
