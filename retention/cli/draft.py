"""`retention draft`: propose a commented policy for a subject table, from the live database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from retention.catalog.introspect import read_catalog
from retention.db import connect
from retention.draft.build import build_draft, subject_and_key
from retention.draft.render import render_draft
from retention.engines import engine_of
from retention.errors import UsageError
from retention.settings import Settings


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "draft",
        description="Read the catalogue, the data and the last scan, and write a draft policy: "
        "the tables related to the subject (foreign keys, key columns without one, "
        "polymorphic classes), candidate dates and the personal columns with a suggested "
        "minimisation, each guess with its evidence. The dates, retain_until and phases are "
        "left to the compliance officer.",
    )
    parser.add_argument(
        "--subject", required=True, metavar="TABLE", help="the data subjects' table"
    )
    parser.add_argument(
        "--key", default=None, metavar="COLUMN", help="its key (default: primary key)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="write to a new FILE (not stdout)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.out is not None and args.out.exists():
        raise UsageError(
            f"{args.out} already exists", hint="name a new file; a draft never overwrites"
        )
    with connect(settings) as conn:
        with engine_of(conn).snapshots.transaction(conn, read_only=True):  # one moment
            catalog = read_catalog(conn, tool_schema=settings.schema_name)
            subject, key = subject_and_key(catalog, args.subject, args.key)
            draft = build_draft(conn, catalog, subject, key, schema=settings.schema_name)
        database = str(conn.info.dbname)
    text = render_draft(draft, database=database, today=settings.today())
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        with args.out.open("x", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror}") from None
    graph = draft.graph
    print(
        f"draft written to {args.out}: {len(graph.tables)} table(s) in the record, "
        f"{len(graph.declared())} link(s) to declare, {len(graph.doubts)} doubt(s) to decide",
        file=sys.stderr,
    )
    return 0
