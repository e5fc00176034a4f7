"""`retention hold add|release|list`: legal holds (a claim suspends the legal clock)."""

from __future__ import annotations

import argparse
from typing import Any

from psycopg import sql

from retention.audit.trail import Entry, mirror
from retention.catalog.introspect import read_catalog
from retention.cli.common import ensure_schema, trail
from retention.db import connect
from retention.errors import UsageError
from retention.policy.load import load_policies
from retention.settings import Settings
from retention.store.holds import add_hold, list_holds, release_hold


def register(commands: Any) -> None:
    from retention.cli.main import add_policies_option

    parser = commands.add_parser(
        "hold",
        help="legal holds: add, release, list",
        description="A held subject is excluded from every phase of "
        "the policy; on release its clock is extended by the time held.",
    )
    sub = parser.add_subparsers(required=True, metavar="ACTION")
    add = sub.add_parser("add", help="put a subject on hold")
    release = sub.add_parser("release", help="release a subject's hold")
    show = sub.add_parser("list", help="list holds (subjects as keyed digests)")
    for item in (add, release, show):
        add_policies_option(item)
    for item in (add, release):
        item.add_argument("--policy", required=True, metavar="NAME")
        item.add_argument("--subject", required=True, metavar="KEY")
    add.add_argument(
        "--reason", required=True, help="why (a case reference; do not write personal data here)"
    )
    show.add_argument("--policy", default=None, metavar="NAME")
    show.add_argument("--all", action="store_true", help="include released holds")
    add.set_defaults(handler=_add)
    release.set_defaults(handler=_release)
    show.set_defaults(handler=_list)


def _policy_subject(settings: Settings, name: str) -> tuple[str, str]:
    policies = {p.name: p for p in load_policies(settings.policies_dir)}
    if name not in policies:
        raise UsageError(f"no policy named '{name}'", hint=f"policies: {', '.join(policies)}")
    subject = policies[name].policy.subject
    return subject.table, subject.key


def _check_subject_exists(conn: Any, settings: Settings, policy: str, key: str) -> None:
    table_name, column = _policy_subject(settings, policy)
    table = read_catalog(conn, tool_schema=settings.schema_name).find(table_name)
    if table is None or column not in table.columns:
        return  # the policy does not bind today; a hold must still be possible
    row = conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE {}::text = %s").format(
            sql.Identifier(*table.qname), sql.Identifier(column)
        ),
        (key,),
    ).fetchone()
    if row is None:
        raise UsageError(
            f"no row of {table.label} has {column} = the given key",
            hint="check the key (holds are for existing subjects)",
        )


def _add(args: argparse.Namespace, settings: Settings) -> int:
    if not args.reason.strip():
        raise UsageError("--reason must not be empty")
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        _check_subject_exists(conn, settings, args.policy, args.subject)
        audit = trail(conn, settings)
        with conn.transaction():
            hold = add_hold(conn, settings.schema_name, args.policy, args.subject, args.reason)
            stored = audit.append(
                conn,
                Entry(
                    event="hold_add",
                    outcome="held",
                    policy=args.policy,
                    subjects=1,
                    subject_digests=audit.digests(args.policy, [args.subject]),
                    detail={"hold_id": hold.hold_id},
                ),
            )
        mirror(stored)  # committed: now in the copy outside the database too
    print(
        f"hold {hold.hold_id} added for policy {args.policy} "
        f"(subject {audit.subject_digest(args.policy, args.subject)[:12]})"
    )
    return 0


def _release(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        audit = trail(conn, settings)
        with conn.transaction():
            hold = release_hold(conn, settings.schema_name, args.policy, args.subject)
            held_days = (hold.released_at - hold.held_since).days if hold.released_at else 0
            stored = audit.append(
                conn,
                Entry(
                    event="hold_release",
                    outcome="released",
                    policy=args.policy,
                    subjects=1,
                    subject_digests=audit.digests(args.policy, [args.subject]),
                    detail={"hold_id": hold.hold_id, "held_days": held_days},
                ),
            )
        mirror(stored)
    print(f"hold {hold.hold_id} released; the clock is extended by {held_days} day(s)")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        audit = trail(conn, settings)
        holds = list_holds(conn, settings.schema_name, args.policy, args.all)
    if not holds:
        print("no hold")
        return 0
    print(f"{'id':>5}  {'policy':<24} {'subject':<14} {'since':<17} released")
    for h in holds:
        released = f"{h.released_at:%Y-%m-%d %H:%M}" if h.released_at else "-"
        subject = audit.subject_digest(h.policy, h.subject_key)[:12]
        print(
            f"{h.hold_id:>5}  {h.policy:<24} {subject:<14} "
            f"{h.held_since:%Y-%m-%d %H:%M}  {released}"
        )
    return 0
