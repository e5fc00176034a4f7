"""Gather what a draft says: the relation graph, the candidate dates, the personal columns of
the last scan with a minimisation `check` accepts for each. Reads the database, writes nothing."""

from __future__ import annotations

from retention.catalog.introspect import Catalog, Table
from retention.discovery.inventory import installed, last_scan_id, latest_inventory, scan_time
from retention.discovery.model import ColumnVerdict
from retention.draft.columns import Minimisation, PersonalColumn, personal_columns
from retention.draft.dates import date_candidates
from retention.draft.graph import DraftGraph, draft_graph
from retention.draft.model import DatedTable, Draft
from retention.draft.render import core_yaml, table_ref, trial_phase
from retention.engines import Connection
from retention.errors import PolicyError, UsageError
from retention.policy.bind import bind_policy
from retention.policy.data_checks import unchangeable_columns
from retention.policy.load import load_policy_bytes

QName = tuple[str, str]


def subject_and_key(catalog: Catalog, name: str, key: str | None) -> tuple[Table, str]:
    """The subject table and its key column: `key`, or the one-column primary key."""
    table = catalog.find(name)
    if table is None:
        close = catalog.suggest_table(name)
        raise UsageError(
            f"no table '{name}' in the database",
            hint=f"did you mean '{close}'?"
            if close
            else "give a table of the search path, or schema.table",
        )
    if key is None:
        if len(table.primary_key) != 1:
            raise UsageError(
                f"{table.label} has no one-column primary key",
                hint="name its key with --key COLUMN",
            )
        return table, table.primary_key[0]
    if key not in table.columns or not table.is_unique([key]):
        raise UsageError(
            f"'{key}' is not a unique key column of {table.label}",
            hint="give its primary key or a column with a unique index",
        )
    return table, key


def build_draft(
    conn: Connection, catalog: Catalog, subject: Table, key: str, *, schema: str
) -> Draft:
    graph = draft_graph(conn, catalog, subject, key)
    core = core_yaml(catalog, graph)
    refs = {t: "" if t == subject.qname else table_ref(catalog, t) for t in graph.tables}

    def fits(column: str, option: Minimisation) -> str | None:
        return _refusal(conn, catalog, core + trial_phase(column, option))

    scan = None
    personal: list[PersonalColumn] = []
    outside: list[ColumnVerdict] = []
    if installed(conn, schema) and (scan_id := last_scan_id(conn, schema=schema)) is not None:
        scan = (scan_id, scan_time(conn, scan_id, schema=schema))
        inventory = latest_inventory(conn, schema=schema)
        personal, outside = personal_columns(conn, catalog, inventory, refs, fits)
    return Draft(
        catalog, graph, tuple(_dated(conn, catalog, graph)), tuple(personal), tuple(outside), scan
    )


def _dated(conn: Connection, catalog: Catalog, graph: DraftGraph) -> list[DatedTable]:
    found = []
    members = set(graph.tables)
    for qname in graph.tables:
        found.append(DatedTable(qname, None, tuple(date_candidates(conn, catalog.tables[qname]))))
        for fk in sorted(catalog.outgoing(qname), key=lambda fk: fk.name):
            if fk.ref_table not in members:
                via = f"{qname[1]} through foreign key {fk.name}"
                dates = date_candidates(conn, catalog.tables[fk.ref_table])
                found.append(DatedTable(fk.ref_table, via, tuple(dates)))
    return [d for d in found if d.dates]


def _refusal(conn: Connection, catalog: Catalog, text: str) -> str | None:
    """None when `text` binds without error, as every command binds it (the values of a text
    column decide whether a generalisation can change it), else the first error."""
    try:
        loaded = load_policy_bytes(text.encode(), "draft.yaml")
    except PolicyError as exc:
        return exc.problems[0].message
    bound, problems = bind_policy(loaded, catalog)
    if bound is not None:
        problems += unchangeable_columns(conn, bound)
    errors = [p for p in problems if p.severity == "error"]
    return errors[0].message if errors else None
