"""Tables of the record whose rows PostgreSQL's row-level security hides from this account.

Such a table would be read, counted, archived and minimised in part: the rows its policies hide
from the role are invisible to every statement of the tool, while a foreign key ON DELETE
CASCADE deletes them with their parent all the same (the cascade runs as the table's owner). An
outside review saw an archive delete four confidential notes that no archive file held and no
audit entry counted. The tool's sessions run with `row_security = off`, so such a statement
fails rather than see part of a table; here it is an error before anything runs, naming the
tables and what lifts it.
"""

from __future__ import annotations

from retention.policy.checks.binder import Binder
from retention.policy.relations import RelationGraph


def check_row_security(binder: Binder, graph: RelationGraph | None) -> None:
    """Every table of the record on which row-level security applies to this account."""
    if graph is None:
        return
    hidden = [t for t in graph.tables if binder.catalog.tables[t].row_security]
    if not hidden:
        return
    names = ", ".join(f"{s}.{n}" for s, n in hidden)
    binder.error(
        ("subject",),
        f"row-level security hides rows of {names} from this account: the tool would read, "
        "count, archive or minimise part of the record, and a cascade would delete the rows "
        "it cannot see",
        "run as a role that bypasses it (ALTER ROLE <role> BYPASSRLS, by a superuser), or as "
        "the tables' owner when they do not FORCE ROW LEVEL SECURITY",
    )
