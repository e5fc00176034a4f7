"""`retention grants --role NAME`: print the least-privilege SQL for the daemon's role."""

from __future__ import annotations

import argparse
from typing import Any

from retention.catalog.introspect import read_catalog
from retention.cli.options import add_policies_option
from retention.db import connect
from retention.grants import grants_sql
from retention.policy.check import bound_policies
from retention.settings import Settings


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "grants",
        description="Print (never execute) the SQL creating a role with exactly the "
        "privileges the policies need; review it, then run it as the owner.",
    )
    add_policies_option(parser)
    parser.add_argument("--role", required=True, metavar="NAME")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings) as conn:
        policies = bound_policies(conn, settings.policies_dir, tool_schema=settings.schema_name)
        catalog = read_catalog(conn, tool_schema=settings.schema_name)
        print(grants_sql(conn, args.role, policies, catalog, settings.schema_name), end="")
    return 0
