"""`retention archive list|verify|restore`: encrypted archives for operators, auditors and the
key custodian. Outputs name files, groups and counts, never a personal value."""

from __future__ import annotations

import argparse
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retention.archive.errors import ArchiveConfigError, ArchiveError
from retention.cli.common import audit_key, ensure_schema, trail
from retention.db import connect
from retention.errors import UsageError
from retention.settings import Settings

if TYPE_CHECKING:
    from retention.archive.storage import LocalStorage


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "archive",
        description="Archives hold records moved out of the live database by 'archive' "
        "phases, encrypted to the custodian's age public keys (see docs/ARCHIVE.md).",
    )
    sub = parser.add_subparsers(required=True, metavar="ACTION")
    show = sub.add_parser("list", help="groups: files, sizes, subjects, rows, expiry")
    show.add_argument("--policy", default=None, metavar="NAME")
    show.add_argument("--all", action="store_true", help="include destroyed groups")
    show.set_defaults(handler=_list)
    check = sub.add_parser(
        "verify",
        help="every file against the catalogue and the audit trail (exit 1 on any problem)",
    )
    check.add_argument(
        "--identity",
        type=Path,
        default=None,
        metavar="FILE",
        help="also decrypt every segment with this age private key file (custodian)",
    )
    check.set_defaults(handler=_verify)
    back = sub.add_parser("restore", help="restore one subject's record (custodian, audited)")
    back.add_argument("--subject", required=True, metavar="KEY")
    back.add_argument("--identity", required=True, type=Path, metavar="PRIVATE_KEY_FILE")
    back.add_argument("--policy", default=None, metavar="NAME")
    where = back.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--into-database", action="store_true", help="insert the rows, parents first"
    )
    where.add_argument("--to", type=Path, default=None, metavar="DIR", help="write CSV files")
    back.set_defaults(handler=_restore)


def _storage(settings: Settings) -> LocalStorage:
    from retention.archive.storage import LocalStorage

    if settings.archive_dir is None:
        raise ArchiveConfigError("archive_dir is not set", hint="see docs/ARCHIVE.md")
    return LocalStorage.open(settings.archive_dir)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from retention.archive import catalog
    from retention.archive.expiry import Holds
    from retention.archive.model import Totals

    today = settings.today()
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        files = catalog.files(
            conn, settings.schema_name, include_destroyed=args.all, policy=args.policy
        )
        holds = Holds(conn, settings.schema_name, audit_key(settings))
    groups: dict[tuple[str, str], Totals] = defaultdict(Totals)
    states: dict[tuple[str, str], set[str]] = defaultdict(set)
    expiry: dict[tuple[str, str], date | None] = {}
    for item in files:
        for s in item.segments:
            if s.destroyed_at is not None and not args.all:
                continue
            key = (item.policy, s.group)
            totals = groups[key]
            totals.files.add(item.file_id)
            totals.segments += 1
            totals.subjects += s.subjects
            totals.rows += sum(s.rows.values())
            totals.bytes += s.bytes
            status = holds.status(item, s)
            expiry[key] = status.expires_on
            states[key].add(_state(s.destroyed_at is not None, status.held, status.due(today)))
    if not groups:
        print("no archive")
        return 0
    print(f"{'policy':<24} {'group':<8} {'files':>5} {'subjects':>9} {'rows':>10} "
          f"{'bytes':>12}  {'expires':<10}  state")  # fmt: skip
    for key in sorted(groups):
        t = groups[key]
        ends = expiry[key]
        print(
            f"{key[0]:<24} {key[1]:<8} {len(t.files):>5} {t.subjects:>9,} {t.rows:>10,} "
            f"{t.bytes:>12,}  {ends.isoformat() if ends else 'never':<10}  "
            f"{', '.join(sorted(states[key]))}"
        )
    return 0


def _state(destroyed: bool, held: bool, due: bool) -> str:
    if destroyed:
        return "destroyed"
    if held:
        return "held (legal hold)"
    return "expired (destroyed at the next run)" if due else "kept"


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from retention.archive.keys import read_identities
    from retention.archive.verify import verify

    identities = read_identities(args.identity) if args.identity else None
    storage = _storage(settings)
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        report = verify(conn, storage, settings.schema_name, identities)
    for note in report.notes:
        print(f"note: {note.render()}")
    for problem in report.problems:
        print(f"PROBLEM {problem.render()}")
    decrypted = f", {report.decrypted} decrypted and checked" if identities else ""
    verdict = "intact" if report.ok else f"{len(report.problems)} problem(s)"
    print(
        f"archives {verdict}: {report.files} file(s), {report.segments} segment(s) "
        f"verified against the catalogue and the audit trail{decrypted}"
    )
    return 0 if report.ok else 1


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    from retention.archive import restore
    from retention.archive.keys import read_identities

    if not args.subject.strip():
        raise UsageError("--subject must not be empty")
    identities = read_identities(args.identity)
    storage = _storage(settings)
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        audit = trail(conn, settings)
        found = restore.find(conn, settings.schema_name, audit, args.subject, args.policy)
        if not found:
            raise ArchiveError(
                "no live archive holds this subject",
                hint="check the key and --policy; 'retention audit find' tells what happened "
                "to it (purged, or its archive expired)",
            )
        record = restore.load(conn, storage, found[0], identities, args.subject)
        if not any(record.rows.values()):
            raise ArchiveError(f"{found[0].file.name} lists this subject but holds no row of it")
        if args.into_database:
            rows = restore.into_database(conn, settings.schema_name, audit, record, args.subject)
        else:
            rows = restore.to_directory(conn, audit, record, args.subject, args.to)
    where = "into the database" if args.into_database else f"to {args.to} (personal data, in clear)"
    print(
        f"restored {sum(rows.values())} row(s) {where} from {found[0].file.name} "
        f"(group {found[0].segment.group}): " + ", ".join(f"{t} {n}" for t, n in rows.items() if n)
    )
    if len(found) > 1:
        print(f"note: {len(found) - 1} older archive(s) also hold this subject")
    if args.into_database:
        print("the subject is live again: put a legal hold ('retention hold add') if it must stay")
    return 0
