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

from retention.engines import Connection, engine_of
from retention.errors import Problem
from retention.policy.actions import spec_of
from retention.policy.bound import BoundPolicy

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
        for index, phase in enumerate(policy.loaded.policy.phases):
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
