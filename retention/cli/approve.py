"""`retention approve`: record an approval of a policy file's exact content."""

from __future__ import annotations

import argparse
from typing import Any

from retention.audit.approvals import DESTRUCTIVE, approval_state, record_approval
from retention.cli.common import ensure_schema, trail
from retention.db import connect
from retention.errors import UsageError
from retention.policy.load import load_policies
from retention.settings import Settings


def register(commands: Any) -> None:
    from retention.cli.main import add_policies_option

    parser = commands.add_parser(
        "approve",
        help="approve a policy version's purge/archive phases",
        description="Record, in the audit trail, that a person approved the exact content "
        "(SHA-256) of a policy file. Purge and archive phases run only once enough "
        "distinct people approved the current content (required_approvals).",
    )
    add_policies_option(parser)
    parser.add_argument("--policy", required=True, metavar="NAME")
    parser.add_argument("--by", required=True, metavar="NAME", help="who approves")
    parser.add_argument(
        "--role", required=True, metavar="ROLE", help="e.g. 'directeur', 'médecin DIM'"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not args.by.strip() or not args.role.strip():
        raise UsageError("--by and --role must not be empty")
    loaded = {p.name: p for p in load_policies(settings.policies_dir)}
    if args.policy not in loaded:
        raise UsageError(f"no policy named '{args.policy}'", hint=f"policies: {', '.join(loaded)}")
    policy = loaded[args.policy]
    if not any(phase.action in DESTRUCTIVE for phase in policy.policy.phases):
        print(f"note: {args.policy} has no purge or archive phase; the approval is recorded anyway")
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        record_approval(
            conn,
            trail(conn, settings),
            policy.name,
            policy.sha256,
            args.by.strip(),
            args.role.strip(),
        )
        state = approval_state(
            conn, settings.schema_name, policy.name, policy.sha256, settings.required_approvals
        )
    print(f"{policy.name} [sha256 {policy.sha256[:12]}]: {state.describe()}")
    return 0
