"""`retention scan`: find the personal data in every column, store the inventory, show changes.

Output lists personal columns with their entity, confidence and reason; never a value
(``--show-examples`` prints masked examples). The JSON shape is stable for scripts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from loguru import logger

from retention.db import connect
from retention.discovery.inventory import (
    Change,
    diff,
    installed,
    latest_inventory,
    save_scan,
)
from retention.discovery.model import DEFAULT_SAMPLE, ScanResult
from retention.engines import Connection
from retention.errors import DatabaseError, UsageError
from retention.settings import Settings
from retention.store.schema import migrate, refuse_a_stray_schema


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "scan",
        description="Sample every column of every user table, decide which hold personal data "
        "(names, birth dates, addresses, phones, e-mails, NIR, INS, RPPS, record numbers, "
        "logins, free text mentioning people...) and store the inventory in the tool's schema. "
        "Never prints a value.",
    )
    parser.add_argument(
        "--schema", action="append", default=[], metavar="S", help="only this schema (repeatable)"
    )
    parser.add_argument(
        "--table",
        action="append",
        default=[],
        metavar="T",
        help="only this table, 'name' or 'schema.name' (repeatable)",
    )
    parser.add_argument(
        "--sample",
        type=_sample_size,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help=f"distinct values read per column (default {DEFAULT_SAMPLE})",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--show-examples",
        action="store_true",
        help="show up to three masked examples per personal column",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="show the columns that became personal (or stopped) since the previous scan",
    )
    parser.add_argument(
        "--all", action="store_true", help="text format: list the columns judged not personal too"
    )
    parser.set_defaults(handler=run)


def _sample_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 10 <= value <= 10_000:
        raise argparse.ArgumentTypeError("between 10 and 10000")
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    from retention.discovery import preload
    from retention.discovery.scan import scan

    preload.start()  # Presidio and spaCy load on their own thread while the database is read
    with connect(settings) as conn:
        stored = _inventory_ready(conn, settings.schema_name)
        if args.diff and not stored:
            raise UsageError(
                "--diff needs the inventory of a previous scan",
                hint="run 'retention init' as the owner, then 'retention scan'",
            )
        result = scan(
            conn,
            schemas=args.schema,
            tables=args.table,
            sample=args.sample,
            examples=args.show_examples,
            tool_schema=settings.schema_name,
            statement_timeout_ms=settings.statement_timeout_ms,
            lock_timeout_ms=settings.lock_timeout_ms,
            workers=settings.workers,
            connect=lambda: connect(settings),
        )
        changes: list[Change] | None = None
        scan_id = None
        if stored:
            if args.diff:
                before = latest_inventory(conn, schema=settings.schema_name)
                changes = diff(before, result.columns)
            scope = {"schemas": args.schema, "tables": args.table, "sample": args.sample}
            scan_id = save_scan(conn, result, schema=settings.schema_name, scope=scope)
            logger.info("inventory stored: scan {}", scan_id)
    if args.format == "json":
        document = result.to_json(examples=args.show_examples)
        if changes is not None:
            document["changes"] = [c.to_json() for c in changes]
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(render(result, examples=args.show_examples, everything=args.all))
        if changes is not None:
            print(render_changes(changes))
        if scan_id is None:
            print(
                f"inventory not stored: the '{settings.schema_name}' schema is not installed "
                "(run 'retention init' as the owner)",
                file=sys.stderr,
            )
    return 0


def _inventory_ready(conn: Connection, schema: str) -> bool:
    """Create or upgrade the tool's schema when the role may; say whether scans can be kept.
    Never a new one beside the tool's existing schema (`refuse_a_stray_schema`)."""
    refuse_a_stray_schema(conn, schema)
    if installed(conn, schema):
        with contextlib.suppress(DatabaseError):  # not the owner: the tables exist, fine
            migrate(conn, schema)
        return True
    try:
        migrate(conn, schema)
    except DatabaseError:
        return False
    return installed(conn, schema)


def render(result: ScanResult, *, examples: bool = False, everything: bool = False) -> str:
    """Personal columns (or all), grouped by table, for a person at a terminal."""
    tables = {(c.schema, c.table) for c in result.columns}
    lines = [
        f"{len(result.personal)} personal column(s) of {len(result.columns)} in "
        f"{len(tables)} table(s), scanned in {result.seconds:.1f} s"
    ]
    current = None
    for column in result.columns:
        if not (column.personal or everything):
            continue
        if (column.schema, column.table) != current:
            current = (column.schema, column.table)
            lines.append(f"\n{column.schema}.{column.table}")
        entity = column.entity or "-"
        lines.append(
            f"  {column.column:<24} {entity:<20} {column.score:4.2f}  "
            f"{column.evidence.get('reason', '')}"
        )
        if examples and column.examples:
            lines.append(f"  {'':<24} examples: {', '.join(column.examples)}")
    return "\n".join(lines)


def render_changes(changes: Sequence[Change]) -> str:
    """What changed since the previous scan."""
    if not changes:
        return "\nno change since the previous scan"
    return "\n".join(["\nchanges since the previous scan:", *(f"  {c.render()}" for c in changes)])
