"""What `check` can tell of the account's privileges before a run needs them.

A run as an account without DELETE on a table its purge reaches stops at its first batch (rolled
back, nothing lost), and one that cannot INSERT into the audit trail stops before anything; `check`
(the daemon unit's ExecStartPre) said "ok" in both cases. It now warns, naming the table and the
privilege, with `retention grants` as the way to grant exactly what the policies need. The
server is asked (`Catalogue.may`: PostgreSQL's has_table_privilege, MariaDB's EXPLAIN of the
statement), so privileges held through a role count. The columns an action updates are not
checked here (column privileges): a run refused one says which.
"""

from __future__ import annotations

from collections.abc import Callable

from retention.engines import Connection, engine_of
from retention.errors import Problem
from retention.policy.actions import spec_of
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.policy.relations import QName

HINT = "as the owner, review and apply `retention grants --role <this account>`"


def privilege_problems(
    conn: Connection, policies: list[BoundPolicy], tool_schema: str
) -> list[Problem]:
    """Warnings for the privileges the account lacks: DELETE on the tables of a purge or an
    archive (at the phase), INSERT on the audit trail (once, at the first policy)."""
    catalogue = engine_of(conn).catalogue
    problems: list[Problem] = []
    asked: dict[tuple[str, str, str], bool | None] = {}

    def may(schema: str, name: str, privilege: str) -> bool | None:
        key = (schema, name, privilege)
        if key not in asked:
            asked[key] = catalogue.may(conn, schema, name, (privilege,))
        return asked[key]

    def cannot_update(table: QName, columns: tuple[str, ...]) -> list[str]:
        key = (*table, *columns)
        if key not in refused:
            refused[key] = catalogue.cannot_update(conn, *table, columns) or []
        return refused[key]

    def may_lock(table: QName) -> bool | None:
        if table not in lockable:
            lockable[table] = catalogue.may_lock(conn, *table)
        return lockable[table]

    refused: dict[tuple[str, ...], list[str]] = {}
    lockable: dict[QName, bool | None] = {}
    if policies and not catalogue.may_create_temporary(conn):
        problems.append(
            Problem(
                policies[0].loaded.location(()),
                "this account cannot create temporary tables in this database: plan, run and "
                "report would stop at their first statement (they stage the clock and the due "
                "subjects in them)",
                HINT,
                "warning",
            )
        )
    if policies and may(tool_schema, "audit", "INSERT") is False:
        problems.append(
            Problem(
                policies[0].loaded.location(()),
                f"this account cannot INSERT into {tool_schema}.audit: every run and every "
                "hold would stop before acting (the audit trail records them first)",
                HINT,
                "warning",
            )
        )
    for policy in policies:
        problems += _lock_problems(policy, may_lock)
        bound = {phase.name: phase for phase in policy.phases}
        for index, phase in enumerate(policy.loaded.policy.phases):
            if phase.name in bound:
                problems += _update_problems(policy, index, bound[phase.name], cannot_update)
            if not spec_of(phase.action).removes_records:
                continue
            missing = sorted(
                f"{schema}.{name}"
                for schema, name in policy.graph.tables
                if may(schema, name, "DELETE") is False
            )
            if missing:
                problems.append(
                    Problem(
                        policy.loaded.location(("phases", index, "action")),
                        f"this account cannot DELETE from {', '.join(missing)}: the phase "
                        f"'{phase.name}' would stop at its first batch (rolled back)",
                        HINT,
                        "warning",
                    )
                )
    return problems


def _update_problems(
    policy: BoundPolicy,
    index: int,
    phase: BoundPhase,
    cannot_update: Callable[[QName, tuple[str, ...]], list[str]],
) -> list[Problem]:
    """A warning per table of which the column phase may not UPDATE a column it changes."""
    columns: dict[QName, list[str]] = {}
    at: dict[tuple[QName, str], int] = {}  # a column's place in the phase's list
    for j, item in enumerate(phase.columns):
        columns.setdefault(item.table.qname, []).append(item.column.name)
        at.setdefault((item.table.qname, item.column.name), j)
    problems = []
    for table, names in columns.items():
        missing = cannot_update(table, tuple(dict.fromkeys(names)))
        if missing:
            first = at[(table, missing[0])]
            problems.append(
                Problem(
                    policy.loaded.location(("phases", index, "columns", first)),
                    f"this account cannot UPDATE {', '.join(missing)} of "
                    f"{table[0]}.{table[1]}: the phase '{phase.name}' would stop at its first "
                    "batch (rolled back)",
                    HINT,
                    "warning",
                )
            )
    return problems


def _lock_problems(policy: BoundPolicy, may_lock: Callable[[QName], bool | None]) -> list[Problem]:
    """Every batch locks its subjects' rows (`SELECT ... FOR UPDATE`): a warning when the
    account may not, whatever the phase."""
    subject = policy.subject.qname
    if not policy.phases or may_lock(subject) is not False:
        return []
    return [
        Problem(
            policy.loaded.location(("subject", "table")),
            f"this account cannot lock rows of {subject[0]}.{subject[1]} (SELECT ... FOR "
            "UPDATE wants UPDATE on one of its columns at least): every phase of "
            f"'{policy.name}' would stop at its first batch (rolled back)",
            HINT,
            "warning",
        )
    ]
