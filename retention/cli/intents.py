"""`retention intents list|release`: batches cut short on tables without transactions.

A batch on an accepted MyISAM or Aria table writes its intent before it acts; the next run
completes the intents left (retention.engine.intents) and refuses to run when one's policy is
gone or changed. `list` shows them (counts and names, never a key); `release` deletes one
without completing it, once the database is reviewed: audited, with the reason.
"""

from __future__ import annotations

import argparse
from typing import Any

from retention.db import connect
from retention.errors import UsageError
from retention.settings import Settings


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "intents",
        description="A batch on a table without transactions (accept_non_transactional) "
        "writes its intent before it acts; the next run completes what is left. Release one "
        "only when the run cannot complete it (its policy is gone or was changed) and the "
        "database was reviewed: its half-done changes then stay as they are.",
    )
    sub = parser.add_subparsers(required=True, metavar="ACTION")
    show = sub.add_parser("list", help="the intents left (counts and names only)")
    release = sub.add_parser("release", help="delete an intent without completing it (audited)")
    release.add_argument("--intent", required=True, type=int, metavar="N")
    release.add_argument(
        "--reason", required=True, help="why (a ticket reference; no personal data)"
    )
    show.set_defaults(handler=_list)
    release.set_defaults(handler=_release)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from retention.engine import intents  # the engine, only when the command runs
    from retention.store.schema import require_installed

    with connect(settings) as conn:
        # a misspelt schema_name, or an account that cannot see the tool's schema: an error,
        # not "no intent left" (an outside review)
        require_installed(conn, settings.schema_name)
        left = intents.pending(conn, settings.schema_name)
    for intent in left:
        print(intent.describe())
    if not left:
        print("no intent left: every batch on tables without transactions committed")
    return 0


def _release(args: argparse.Namespace, settings: Settings) -> int:
    if not args.reason.strip():
        raise UsageError("--reason must not be empty")
    from retention.audit.trail import mirror
    from retention.cli.common import ensure_schema, trail
    from retention.engine import intents
    from retention.engine.gates import run_lock

    with connect(settings) as conn:
        ensure_schema(conn, settings)
        audit = trail(conn, settings)
        with run_lock(conn, settings.schema_name, settings.lock_wait_seconds):
            intent, stored = intents.release(
                conn, settings.schema_name, audit, args.intent, args.reason
            )
        mirror(stored)
    print(
        f"released {intent.describe()}: its changes to tables without transactions stay as "
        "the batch left them (audited as intent_released)"
    )
    return 0
