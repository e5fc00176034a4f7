"""The least privileges the daemon's role needs, derived from the policies and the catalogue.

Reading: SELECT on the tables a plan reads (subjects, related rows, dates) and on every table a
scan samples. Writing: UPDATE on exactly the columns column actions change, DELETE on the tables
purged or archived. The tool's schema: INSERT (never UPDATE or DELETE) on the audit trail.
`SELECT ... FOR UPDATE` needs UPDATE on one column of each subject table: for a purge-only
policy the first column in no key (primary or unique) is granted (the role may delete those rows
anyway).
"""

from __future__ import annotations

from collections import defaultdict

from retention.audit.approvals import DESTRUCTIVE
from retention.catalog.introspect import Catalog
from retention.engines import Connection, engine_of
from retention.policy.bound import BoundPolicy
from retention.policy.relations import QName


def grants_sql(
    conn: Connection,
    role: str,
    policies: list[BoundPolicy],
    catalog: Catalog,
    schema: str,
) -> str:
    """The SQL script, as text, for a DBA to read and run, in the connection's engine's syntax
    (its `Grants`: roles and schemas on PostgreSQL, accounts and databases on MariaDB)."""
    select: set[QName] = set()
    delete: set[QName] = set()
    update: dict[QName, set[str]] = defaultdict(set)
    for policy in policies:
        _collect(policy, select, delete, update)
    return engine_of(conn).grants.script(
        conn,
        role,
        policies=len(policies),
        reads=set(catalog.tables) | select,
        deletes=delete,
        updates=update,
        schema=schema,
    )


def _collect(
    policy: BoundPolicy, select: set[QName], delete: set[QName], update: dict[QName, set[str]]
) -> None:
    select.update(policy.graph.tables)
    for date_ in policy.dates.values():
        if date_.over is not None:
            select.add(date_.over.qname)
            select.update(j.table.qname for j in date_.joins)
    for phase in policy.phases:
        if phase.action in DESTRUCTIVE:
            delete.update(policy.graph.tables)
        for item in phase.columns:
            update[item.table.qname].add(item.column.name)
    subject = policy.subject
    if not update.get(subject.qname):
        # not a key: another system may synchronise on a unique column (OpenMRS's uuid)
        keys = {c for key in (subject.primary_key, *subject.unique_keys) for c in key}
        lockable = [c for c in subject.columns if c not in keys] or [
            c for c in subject.columns if c not in subject.primary_key
        ]
        if lockable:  # FOR UPDATE row locks need UPDATE on one column
            update[subject.qname].add(lockable[0])
