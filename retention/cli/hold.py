"""`retention hold add|release|list`: legal holds (a claim suspends the legal clock).

A hold protects a person: without `--policy` it holds the subject under every policy whose
subject is the same table and key (archive expiry included); `--policy` narrows it to one."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from retention.audit.holds import hold_entry, release_entry, standing_hold
from retention.audit.trail import AuditTrail, Entry, mirror, subject_digest
from retention.catalog.introspect import read_catalog
from retention.cli.common import audit_key, ensure_schema, trail
from retention.cli.options import add_policies_option
from retention.db import connect
from retention.engines import engine_of, sql
from retention.errors import UsageError
from retention.keys import Key
from retention.policy.load import LoadedPolicy, load_policies
from retention.settings import Settings
from retention.store.holds import Hold, Person, Scope, add_hold, list_holds, release_hold


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "hold",
        description="A hold protects a person: the held subject is excluded from every phase "
        "of every policy whose subject is the same table and key, archive expiry included "
        "(--policy narrows it to one policy); on release its clock is extended by the time held.",
    )
    sub = parser.add_subparsers(required=True, metavar="ACTION")
    add = sub.add_parser("add", help="put a subject on hold")
    release = sub.add_parser("release", help="release a subject's hold")
    show = sub.add_parser("list", help="list holds (subjects as keyed digests)")
    for item in (add, release, show):
        add_policies_option(item)
    for item in (add, release):
        item.add_argument(
            "--policy",
            default=None,
            metavar="NAME",
            help="narrow the hold to this policy (default: every policy on the subject table)",
        )
        item.add_argument(
            "--table",
            default=None,
            metavar="NAME",
            help="the subject table, when the policies have several",
        )
    add.add_argument("--subject", required=True, metavar="KEY")
    given = release.add_mutually_exclusive_group(required=True)
    given.add_argument("--subject", metavar="KEY")
    given.add_argument(
        "--hold-id",
        type=int,
        metavar="N",
        help="the hold's id (hold list; a run that refused names it): ends a hold the audit "
        "trail records as standing whose row was removed outside retention",
    )
    add.add_argument(
        "--reason", required=True, help="why (a case reference; do not write personal data here)"
    )
    show.add_argument("--policy", default=None, metavar="NAME")
    show.add_argument("--all", action="store_true", help="include released holds")
    add.set_defaults(handler=_add)
    release.set_defaults(handler=_release)
    show.set_defaults(handler=_list)


@dataclass(frozen=True)
class _Target:
    """What a hold command acts on: its scope and the policies it covers."""

    scope: Scope
    policies: tuple[str, ...]

    def label(self, audit: AuditTrail, subject: str) -> str:
        return _digest(audit.key, self.scope.policy, self.scope.person, subject)


def _digest(key: Key, policy: str | None, person: Person, subject: str) -> str:
    """A subject as shown: its digest under the policy, or under the table for a person."""
    return subject_digest(key, policy or person.table, subject)[:12]


def _target(conn: Any, settings: Settings, policy: str | None, table: str | None) -> _Target:
    loaded = load_policies(settings.policies_dir)
    catalog = read_catalog(conn, tool_schema=settings.schema_name)

    def person(p: LoadedPolicy) -> Person:
        found = catalog.find(p.policy.subject.table)
        name = ".".join(found.qname) if found is not None else p.policy.subject.table
        return Person(name, p.policy.subject.key)

    persons = {p.name: person(p) for p in loaded}
    if policy is not None:
        if policy not in persons:
            raise UsageError(f"no policy named '{policy}'", hint=f"policies: {', '.join(persons)}")
        return _Target(Scope(persons[policy], policy), (policy,))
    choices = sorted(set(persons.values()), key=lambda p: (p.table, p.column))
    if table is not None:
        found = catalog.find(table)
        wanted = ".".join(found.qname) if found is not None else table
        choices = [p for p in choices if p.table == wanted]
    if len(choices) != 1:
        tables = ", ".join(
            f"{p.table} ({p.column})" for p in sorted(set(persons.values()), key=lambda p: p.table)
        )
        raise UsageError(
            "no policy has this subject table" if not choices and table
            else "the policies have several subject tables: which one holds this person?",
            hint=f"--table NAME (subject tables: {tables or 'none'}), or --policy NAME",
        )  # fmt: skip
    chosen = choices[0]
    return _Target(Scope(chosen), tuple(n for n, p in persons.items() if p == chosen))


def _check_subject_exists(
    conn: Any, settings: Settings, target: _Target, audit: AuditTrail, key: str
) -> None:
    """The key names a row of the subject table, or a subject in a live archive of a policy
    the hold covers (a claim may come after the record left the database). The key must be
    the subject's exactly, as on PostgreSQL: on MariaDB too, where the key column's collation
    may ignore case and trailing spaces, `P-001 ` or `p-001` for `P-001` is refused
    (`dialect.same_text`): the plan matches a hold's key with its case, and such a hold
    would hold nobody."""
    person = target.scope.person
    table = read_catalog(conn, tool_schema=settings.schema_name).find(person.table)
    if table is None or person.column not in table.columns:
        return  # the policy does not bind today; a hold must still be possible
    exact = engine_of(conn).dialect.same_text(sql.Identifier(person.column), sql.SQL("%s"))
    row = conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE {}").format(sql.Identifier(*table.qname), exact),
        (key,),
    ).fetchone()
    if row is not None:
        return
    from retention.archive import restore  # the archives, only for a key not live

    if _live_archives(conn, settings.schema_name) and any(
        restore.find(conn, settings.schema_name, audit, key, policy) for policy in target.policies
    ):
        return
    uuid = table.columns[person.column].base_type == "uuid"
    raise UsageError(
        f"no row of {table.label} has {person.column} = the given key, and no live archive "
        "holds it",
        hint="check the key (holds are for existing or archived subjects)"
        + ("; a uuid is written as the database prints it, in lower case" if uuid else ""),
    )


def _live_archives(conn: Any, schema: str) -> bool:
    """Whether any archive file is live, in SQL every engine reads alike: the archives are
    searched only then (on MariaDB, where no run has archived yet, their search is still
    PostgreSQL's)."""
    from retention.archive import catalog

    if not catalog.installed(conn, schema):
        return False
    row = conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE destroyed_at IS NULL LIMIT 1").format(
            sql.Identifier(schema, "archive_files")
        )
    ).fetchone()
    return row is not None


def _entry(target: _Target, audit: AuditTrail, args: argparse.Namespace, hold: Hold) -> Entry:
    return hold_entry(audit, target.scope, target.policies, args.subject, hold)


def _add(args: argparse.Namespace, settings: Settings) -> int:
    if not args.reason.strip():
        raise UsageError("--reason must not be empty")
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        target = _target(conn, settings, args.policy, args.table)
        audit = trail(conn, settings)
        _check_subject_exists(conn, settings, target, audit, args.subject)
        with conn.transaction():
            hold = add_hold(conn, settings.schema_name, target.scope, args.subject, args.reason)
            stored = audit.append(conn, _entry(target, audit, args, hold))
        mirror(stored)  # committed: now in the copy outside the database too
    print(
        f"hold {hold.hold_id} added for {target.scope.describe()} "
        f"(subject {target.label(audit, args.subject)})"
    )
    if target.scope.policy is not None:
        print(
            "  narrowed: other policies on the same subject do not see this hold "
            "(without --policy, it holds the person under every policy)"
        )
    return 0


def _release(args: argparse.Namespace, settings: Settings) -> int:
    if args.hold_id is not None:
        return _release_by_id(args.hold_id, settings)
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        target = _target(conn, settings, args.policy, args.table)
        audit = trail(conn, settings)
        with conn.transaction():
            hold = release_hold(conn, settings.schema_name, target.scope, args.subject)
            entry = _entry(target, audit, args, hold)
            stored = audit.append(conn, entry)
        mirror(stored)
    print(
        f"hold {hold.hold_id} released ({target.scope.describe()}); the clock is extended by "
        f"{entry.detail['held_days']} day(s)"
    )
    return 0


def _release_by_id(hold_id: int, settings: Settings) -> int:
    """End hold `hold_id`: its row when active, as `--subject` does; else, when the trail
    records it as standing, the trail's hold (its row was removed outside retention)."""
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        row = conn.execute(
            sql.SQL("SELECT subject_key FROM {} WHERE hold_id = %s AND released_at IS NULL").format(
                sql.Identifier(settings.schema_name, "holds")
            ),
            (hold_id,),
        ).fetchone()
        standing = standing_hold(conn, settings.schema_name, hold_id)
        audit = trail(conn, settings)
        if row is not None:
            raise UsageError(
                f"hold {hold_id} is active in the holds table",
                hint="release it by its subject: --subject KEY (with --policy or --table as "
                "when it was added)",
            )
        if standing is None:
            raise UsageError(
                f"the audit trail records no hold {hold_id} still standing",
                hint="'retention hold list --all' shows the holds and their ids",
            )
        with conn.transaction():
            entry = release_entry(
                standing, "no active row in the holds table: removed outside retention"
            )
            stored = audit.append(conn, entry)
        mirror(stored)
    print(
        f"hold {hold_id} released in the audit trail ({standing.describe()}); its row had "
        "been removed outside retention, so its days held are not known to the clock"
    )
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        key = audit_key(settings)  # reading: the digests only, no signing key needed
        person = None
        if args.policy:
            person = _target(conn, settings, args.policy, None).scope.person
        holds = list_holds(conn, settings.schema_name, args.policy, args.all, person)
    if not holds:
        print("no hold")
        return 0
    print(f"{'id':>5}  {'scope':<24} {'subject':<14} {'since':<22} released")
    for h in holds:
        released = f"{h.released_at:%Y-%m-%d %H:%M%z}" if h.released_at else "-"
        person = Person(h.subject_table or "", h.subject_column or "")
        subject = _digest(key, h.policy, person, h.subject_key)
        since = f"{h.held_since:%Y-%m-%d %H:%M%z}"
        print(f"{h.hold_id:>5}  {h.scope:<24} {subject:<14} {since}  {released}")
    if any(h.policy is None for h in holds):
        print("(scope * TABLE: the person is held under every policy on that table)")
    if any(h.legacy for h in holds):
        print(
            "(scope NAME+: recorded before holds had a scope, when --policy was required: the "
            "person is held under every policy on NAME's subject table)"
        )
    return 0
