"""Compute a plan: for each policy and phase, what is due at a date.

All phases are computed in one REPEATABLE READ transaction, so the figures come from one
snapshot. Each pass (phases sharing a due date, see retention.plan.passes) is one statement:
the clock of every subject is materialised once, and the rows of every affected table are
counted against the due subjects. `retention plan` writes nothing (READ ONLY). A run also keeps
each pass's due subjects in a temporary table (`keep`), from the same statement, so it walks its
batches without evaluating the clock over the whole table a second time. Given idle helper
connections, a run's passes over a large subject table are computed in slices of keys, one per
connection, all reading the same snapshot (retention.plan.slices).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from retention.audit.approvals import DESTRUCTIVE, Rules, approval_state
from retention.engines import Connection, engine_of, sql
from retention.engines.clock import clock_sql
from retention.plan.clock import SUBJECT, UNKNOWN_DUE, clock_query
from retention.plan.model import PhasePlan, Plan, PolicyPlan
from retention.plan.passes import (
    SLICE_SPAN,
    DueTables,
    flag,
    group_phases,
    ordered_by_retention,
    temp,
    window_size,
)
from retention.plan.slices import (
    EVERY_KEY,
    Helpers,
    Slice,
    counted_cut,
    export_snapshot,
    spread,
)
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.policy.data_checks import unmapped_classes
from retention.policy.expr import Params
from retention.policy.relations import QName
from retention.rows.members import (
    affected_tables,
    count_members,
    due_keys,
    paths,
    subject_pending,
)
from retention.rows.shared import kept_for_sharing, needs_guard
from retention.rows.subjects import KeyRange
from retention.store.schema import holds_table


def compute_plan(
    conn: Connection,
    policies: list[BoundPolicy],
    at: date,
    *,
    schema: str = "retention",
    work_mem_mb: int = 64,
    rows: bool = True,
    approvals: Rules | None = None,
    only_phase: str | None = None,
    keep: DueTables | None = None,
    helpers: Sequence[Connection] = (),
) -> Plan:
    """The plan of `policies` as of `at`, from one consistent snapshot. Without `rows`, only
    subjects are counted (what `run` needs to check its limits; counting every related row
    of a large purge costs as much as finding them). `only_phase`: that phase only. `keep`:
    store each pass's due subjects in temporary tables (needs the TEMP privilege).
    `helpers`: more connections to the same database, idle; with `keep` and without `rows`,
    each evaluates the clock of a slice of a large subject table, reading the same snapshot
    (see retention.plan.slices)."""
    # an engine that evaluates a CTE per reference stores the clock in temporary tables of
    # this session (`_pass_apart`), which a READ ONLY transaction refuses to create (MariaDB
    # error 1792): its plan's transaction is READ WRITE, and writes only those tables
    engine = engine_of(conn)
    read_only = keep is None and engine.capabilities.materializes_cte
    with engine.snapshots.transaction(conn, read_only=read_only):
        engine_of(conn).session.whole_tables(conn, work_mem_mb)
        slicing = None
        if helpers and keep is not None and not rows:
            slicing = Helpers(list(helpers), export_snapshot(conn), work_mem_mb)
        holds = holds_table(conn, schema)
        plans = tuple(
            _policy_plan(conn, policy, at, holds, rows, only_phase, keep, slicing)
            for policy in policies
        )
        if approvals is not None:
            plans = tuple(_with_approval(conn, p, schema, approvals) for p in plans)
            # what the run checks before its first destructive batch, shown with the approvals
            plans = tuple(
                _with_refusal(conn, p, policy) for p, policy in zip(plans, policies, strict=True)
            )
    return Plan(at, tuple(p for p in plans if p.phases or only_phase is None))


def _with_refusal(conn: Connection, plan: PolicyPlan, policy: BoundPolicy) -> PolicyPlan:
    if not any(phase.action in DESTRUCTIVE for phase in plan.phases):
        return plan
    unmapped = unmapped_classes(conn, policy)
    if not unmapped:
        return plan
    return replace(
        plan,
        refused="a run would refuse its purge and archive phases: classes neither mapped nor "
        "declared unrelated: "
        + "; ".join(f"{u.column.label} {u.describe()}" for u in unmapped)
        + " (retention check says where)",
    )


def _with_approval(conn: Connection, plan: PolicyPlan, schema: str, approvals: Rules) -> PolicyPlan:
    if not any(phase.action in DESTRUCTIVE for phase in plan.phases):
        return plan
    state = approval_state(conn, schema, plan.name, plan.sha256, approvals)
    return replace(plan, approval=state)


def _policy_plan(
    conn: Connection,
    policy: BoundPolicy,
    at: date,
    holds: sql.Composable | None,
    rows: bool,
    only_phase: str | None,
    keep: DueTables | None,
    slicing: Helpers | None = None,
) -> PolicyPlan:
    selected = [p for p in policy.phases if only_phase is None or p.name == only_phase]
    wanted = 1 + len(slicing.conns) if selected and slicing is not None else 1
    subjects, slices = counted_cut(conn, policy, wanted)
    phases: list[PhasePlan] = []
    for group in group_phases(selected):
        if keep is None:
            found = pass_plan(conn, policy, group, at, holds, rows)
            phases += _with_sharing(conn, policy, group, found, at, holds) if rows else found
            continue
        table = keep.new(policy.name, tuple(p.name for p in group))
        if slicing is not None and len(slices) > 1:
            phases += _sliced_pass(conn, slicing, slices, policy, group, at, holds, table)
        else:
            create_due_table(conn, policy, len(group), table)
            phases += pass_plan(conn, policy, group, at, holds, rows, table)
        keep.sizes[table] = index_due_table(conn, table, policy, group)
    return PolicyPlan(
        policy.name,
        policy.loaded.sha256,
        policy.subject.label,
        subjects,
        tuple(phases),
    )


def _with_sharing(
    conn: Connection,
    policy: BoundPolicy,
    phases: tuple[BoundPhase, ...],
    plans: list[PhasePlan],
    at: date,
    holds: sql.Composable | None,
) -> list[PhasePlan]:
    """The phases' plans with, where rows of the record may belong to two records, how many
    of their due subjects a run would keep (`kept_for_sharing`)."""
    out = []
    for phase, plan in zip(phases, plans, strict=True):
        if not plan.due_subjects or not needs_guard(policy, [phase]):
            out.append(plan)
            continue
        params = Params(prefix="r")
        clock = clock_query(policy, phase, at, holds_table=holds, dialect=clock_sql(conn))
        dialect = engine_of(conn).dialect
        query = sql.SQL("{}").format(due_keys(policy, phase, clock.query, params, dialect=dialect))
        keys = [row[0] for row in conn.execute(query, {**clock.params, **params.values})]
        out.append(replace(plan, shared_subjects=kept_for_sharing(conn, policy, keys)))
    return out


def _sliced_pass(
    conn: Connection,
    helpers: Helpers,
    slices: list[Slice],
    policy: BoundPolicy,
    phases: tuple[BoundPhase, ...],
    at: date,
    holds: sql.Composable | None,
    table: str,
) -> list[PhasePlan]:
    """A pass's plan and due subjects, the slices of keys on every connection at once; the due
    subjects the helpers found are copied into the run's table, their counts added."""

    def work(each: Connection, chosen: Iterable[Slice]) -> list[list[PhasePlan]]:
        create_due_table(each, policy, len(phases), table)
        plans = []
        for s in chosen:
            first = slices.index(s) * SLICE_SPAN
            plans.append(pass_plan(each, policy, phases, at, holds, False, table, s, first))
        return plans

    due = temp(table, engine_of(conn).dialect)
    found = spread(conn, helpers, slices, work, [due])
    parts = [part for each in found for part in each]
    return [_added(phase) for phase in zip(*parts, strict=True)]


def _added(parts: tuple[PhasePlan, ...]) -> PhasePlan:
    """One phase's plan from its plans over disjoint slices of subjects (reasons in the
    clock's order: no due date first, then the dates by name)."""
    tables: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for part in parts:
        tables.update(part.rows)
        reasons.update(part.undeterminable_reasons)
    first = parts[0]
    undated = [p.undated_subjects for p in parts if p.undated_subjects is not None]
    return replace(
        first,
        due_subjects=sum(p.due_subjects for p in parts),
        undated_subjects=sum(undated) if undated else None,
        held_subjects=sum(p.held_subjects for p in parts),
        undeterminable_subjects=sum(p.undeterminable_subjects for p in parts),
        rows={t: tables[t] for t in first.rows},
        undeterminable_reasons={
            r: reasons[r]
            for r in sorted(reasons, key=lambda r: (r != UNKNOWN_DUE, r))
            if reasons[r]
        },
    )


def create_due_table(conn: Connection, policy: BoundPolicy, phases: int, name: str) -> None:
    """`k` (the subject key), its place in the walk: `w` (its window; while the table is
    filled, its place in key order) then `o` (the end of retention in days since 1970) for
    archives, see `ordered_by_retention`, 0 and 0 otherwise; and one flag per phase."""
    conn.execute(engine_of(conn).dialect.drop_temporary(name))
    conn.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} (k {}, w bigint NOT NULL, o integer NOT NULL, {})"
        ).format(
            sql.Identifier(name),
            sql.SQL(policy.key.type),
            sql.SQL(", ").join(sql.SQL("{} boolean").format(flag(i)) for i in range(phases)),
        )
    )


def index_due_table(
    conn: Connection, name: str, policy: BoundPolicy, phases: tuple[BoundPhase, ...]
) -> int:
    """Make a filled due table's places in key order into windows (an archive pass, see
    `ordered_by_retention`: one window when they all fit in one, not one per slice of keys),
    then index it in the order batches walk it; returns its size."""
    engine = engine_of(conn)
    due = temp(name, engine.dialect)
    # counted apart: MySQL names a temporary table once per statement (error 1137)
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(due)).fetchone()
    size = int(row[0]) if row else 0
    if ordered_by_retention(phases) and size:
        footprint = engine.catalogue.footprint(conn, policy.graph.tables)
        _into_windows(conn, due, size, window_size(footprint, size))
    conn.execute(engine.dialect.index_temporary(name, ("w", "o", "k")))
    return size


def _into_windows(conn: Connection, due: sql.Composable, size: int, window: int) -> None:
    """Each due subject's place in key order (numbered from `SLICE_SPAN` times its slice's
    position) made into its window: `window` consecutive places of one slice; one window for
    all when they fit in one."""
    if size <= window:
        conn.execute(sql.SQL("UPDATE {} SET w = 0 WHERE w <> 0").format(due))
        return
    dialect = engine_of(conn).dialect
    span = sql.Literal(SLICE_SPAN)
    first = sql.SQL("{} * {}").format(dialect.int_div(sql.SQL("w"), span), span)  # its slice's
    conn.execute(
        sql.SQL("UPDATE {} SET w = {} + {}").format(
            due, first, dialect.int_div(sql.SQL("w - {}").format(first), sql.Literal(window))
        )
    )


def pass_plan(
    conn: Connection,
    policy: BoundPolicy,
    phases: tuple[BoundPhase, ...],
    at: date,
    holds: sql.Composable | None,
    with_rows: bool = True,
    keep: str | None = None,
    within: Slice = EVERY_KEY,
    first_window: int = 0,
) -> list[PhasePlan]:
    """The plans of the phases of one pass, from one evaluation of their shared clock; with
    `keep` (a table made by `create_due_table`), their due subjects are stored there too, their
    places in key order numbered from `first_window` (`index_due_table` makes windows of them).
    `within`: the subjects of that slice of keys only
    (counts of subjects only: a related row reached by two paths could belong to subjects of
    two slices)."""
    ordered = ordered_by_retention(phases)
    dialect = engine_of(conn).dialect
    params = Params(prefix="r")
    key_range = within.range(policy, params, dialect)
    if key_range is not None and with_rows:
        raise ValueError("rows are counted over every subject, not over a slice")
    # whether each column phase still has work on the subject's own row, read by the clock's
    # scan of the subject table instead of a second scan per phase (measured at 758,912
    # patients: the plan of two phases on the patients' columns, 5.2 s -> 4.1 s)
    pending = {
        f"pending_{i}": found
        for i, phase in enumerate(phases)
        if (found := subject_pending(policy, phase, SUBJECT, params, dialect=dialect)) is not None
    }
    clock = clock_query(
        policy,
        phases[0],
        at,
        holds_table=holds,
        with_retain_until=ordered,
        flags=pending,
        within=key_range,
        dialect=clock_sql(conn),
    )
    # only the subjects the counts and the due set need: a materialised CTE of every subject
    # is written to a tuplestore, which spills to disk beyond work_mem
    clock_rows = sql.SQL("SELECT * FROM ({}) AS c WHERE would_be_due OR undeterminable").format(
        clock.query
    )
    ctes: list[sql.Composable] = [dialect.materialized(sql.SQL("clock"), clock_rows)]
    columns: list[sql.Composable] = [
        sql.SQL("(SELECT count(*) FROM clock WHERE would_be_due AND held)"),
        sql.SQL("(SELECT count(*) FROM clock WHERE undeterminable)"),
        *(
            sql.SQL("(SELECT count(*) FROM clock WHERE {})").format(sql.Identifier(f"why_{i}"))
            for i in range(len(clock.reasons))
        ),
    ]
    tables = []
    due_queries: list[sql.Composable] = []
    for i, phase in enumerate(phases):
        due = sql.Identifier(f"due_{i}")
        due_queries.append(
            due_keys(
                policy,
                phase,
                sql.SQL("SELECT * FROM clock"),
                params,
                subject_flag=sql.Identifier(f"pending_{i}") if f"pending_{i}" in pending else None,
                within=key_range,
                dialect=dialect,
            )
        )
        ctes.append(dialect.materialized(due, due_queries[-1]))
        tables.append(affected_tables(policy, phase) if with_rows else ())
        columns.append(sql.SQL("(SELECT count(*) FROM {})").format(due))
        if _dates_retention(phase, ordered):
            columns.append(sql.SQL("({})").format(_undated(due, sql.Identifier("clock"))))
        columns += [
            sql.SQL("({})").format(
                count_members(policy, phase, table, due, params, dialect=dialect)
            )
            for table in tables[-1]
        ]
    values = {**clock.params, **params.values}
    capabilities = engine_of(conn).capabilities
    if not capabilities.reopen_temporary_table:
        once = _Pass(policy, phases, tables, len(clock.reasons), ordered, first_window)
        row = _pass_once(conn, once, keep, clock_rows, due_queries, values, key_range is not None)
    elif not capabilities.materializes_cte:
        row = _pass_apart(
            conn,
            keep,
            clock_rows,
            due_queries,
            columns,
            values,
            ordered,
            first_window,
            within=key_range,
        )
    else:
        if keep is not None:
            ctes.append(_kept(conn, keep, len(phases), ordered, first_window))
        query = sql.SQL("WITH {} SELECT {}").format(
            sql.SQL(", ").join(ctes), sql.SQL(", ").join(columns)
        )
        row = conn.execute(query, values).fetchone()
    assert row is not None
    held, undeterminable = int(row[0]), int(row[1])
    reasons = {
        r: int(n) for r, n in zip(clock.reasons, row[2 : 2 + len(clock.reasons)], strict=True) if n
    }
    plans = []
    offset = 2 + len(clock.reasons)
    for phase, phase_tables in zip(phases, tables, strict=True):
        due_count = int(row[offset])
        undated = None
        if _dates_retention(phase, ordered):
            offset += 1
            undated = int(row[offset])
        counts = row[offset + 1 : offset + 1 + len(phase_tables)]
        plans.append(
            PhasePlan(
                phase.name,
                phase.action,
                due_count,
                held,
                undeterminable,
                {f"{s}.{t}": int(n) for (s, t), n in zip(phase_tables, counts, strict=True)},
                dict(reasons),
                undated_subjects=undated,
            )
        )
        offset += 1 + len(phase_tables)
    return plans


def _dates_retention(phase: BoundPhase, ordered: bool) -> bool:
    """Whether the pass's clock computes the phase's subjects' end of retention (an archive
    pass's: its plan counts the subjects that would go to the group `undated`)."""
    return ordered and phase.action == "archive"


def _undated(due: sql.Composable, clock: sql.Composable) -> sql.Composable:
    """How many of the due subjects in `due` have no end of retention in `clock` (NULL when it
    cannot be judged): an archive puts them into the group `undated` (archive/groups.py).
    The few without one first, then whether each is due: a join of the two unindexed
    temporary tables was a block nested loop on MariaDB (a review measured 6.7 s for 72,000 due
    subjects of which 5 % undated, 69 s with half; this form 0.03 s)."""
    return sql.SQL(
        "SELECT count(*) FROM {} AS c WHERE c.retain_until IS NULL AND c.k IN (SELECT k FROM {})"
    ).format(clock, due)


def _kept(
    conn: Connection, name: str, phases: int, ordered: bool, first_window: int
) -> sql.Composable:
    """A data-modifying CTE storing the union of the passes' due subjects (`_kept_rows`)."""
    return sql.SQL("kept AS ({})").format(
        _kept_rows(conn, name, phases, ordered, first_window, lambda rows: rows)
    )


def _pass_apart(
    conn: Connection,
    keep: str | None,
    clock_rows: sql.Composable,
    due_queries: list[sql.Composable],
    columns: list[sql.Composable],
    values: dict[str, object],
    ordered: bool,
    first_window: int,
    *,
    within: KeyRange | None = None,
) -> tuple[Any, ...]:
    """Where a CTE is evaluated again for each reference (MariaDB: the counts read the clock
    and the due subjects dozens of times), each is stored once in a temporary table of this
    session, dropped after the pass: the clock, then the due subjects (into `keep`, the run's
    due table, or one table per phase), then the counts read from them; returns their row.
    Measured on MariaDB 10.11, 20,000 patients, `retention plan` of the shipped policies: 23.4 s
    with CTEs, 4.2 s with tables, the same output."""
    dialect = engine_of(conn).dialect
    base = keep or "retention_plan"
    clock, stored = _store_clock(conn, base, clock_rows, values, within is not None)
    created = [clock]
    if keep is not None:
        due_ctes = [
            dialect.materialized(sql.Identifier(f"due_{i}"), q) for i, q in enumerate(due_queries)
        ]
        conn.execute(
            _kept_rows(
                conn,
                keep,
                len(due_queries),
                ordered,
                first_window,
                lambda rows: sql.SQL("SELECT * FROM (WITH {} {}) AS x").format(
                    sql.SQL(", ").join([stored, *due_ctes]), rows
                ),
            ),
            values,
        )
        # this slice's subjects only: the table holds those of the connection's earlier slices
        # too (a connection takes several slices where the engine bounds their size)
        mine = within.condition(sql.Identifier("k")) if within is not None else sql.SQL("true")
        sources = [
            sql.SQL("SELECT k FROM {} WHERE {} AND {}").format(
                dialect.temporary(keep), flag(i), mine
            )
            for i in range(len(due_queries))
        ]
    else:
        sources = []
        for i, query in enumerate(due_queries):
            name = f"{base}_due_{i}"
            created.append(name)
            conn.execute(dialect.drop_temporary(name))
            conn.execute(
                sql.SQL("CREATE TEMPORARY TABLE {} AS SELECT * FROM (WITH {} {}) AS d").format(
                    dialect.temporary(name), stored, query
                ),
                values,
            )
            sources.append(sql.SQL("SELECT k FROM {}").format(dialect.temporary(name)))
    due = [
        sql.SQL("{} AS ({})").format(sql.Identifier(f"due_{i}"), source)
        for i, source in enumerate(sources)
    ]
    row = conn.execute(
        sql.SQL("WITH {} SELECT {}").format(
            sql.SQL(", ").join([stored, *due]), sql.SQL(", ").join(columns)
        ),
        values,
    ).fetchone()
    for name in created:
        conn.execute(dialect.drop_temporary(name))
    return tuple(row) if row is not None else ()


@dataclass(frozen=True)
class _Pass:
    """What `_pass_once` counts: the pass's phases, the tables whose rows each phase counts,
    the clock's reasons, and where its due subjects go in the walk (`_kept_rows`)."""

    policy: BoundPolicy
    phases: tuple[BoundPhase, ...]
    tables: Sequence[Sequence[QName]]
    reasons: int
    ordered: bool
    first_window: int


def _pass_once(
    conn: Connection,
    one: _Pass,
    keep: str | None,
    clock_rows: sql.Composable,
    due_queries: list[sql.Composable],
    values: dict[str, object],
    sliced: bool = False,
) -> tuple[Any, ...]:
    """`_pass_apart` for an engine on which one statement cannot name a temporary table twice
    (MySQL: error 1137 "Can't reopen table"; capability `reopen_temporary_table`): the clock
    into a temporary table, each phase's due subjects into one of their own (and a copy more
    for each further path from a counted table to the subject, see `count_members`), the run's
    due table filled from them; then the counts, each statement reading each of its temporary
    tables once: the clock's in one scan of it, each phase's due subjects, each table's rows.
    Every reference to a temporary table, a CTE over one included, appears once in its
    statement (a CTE referenced twice may be merged into each reference, opening the table
    twice). Returns the row `_pass_apart` returns."""
    dialect = engine_of(conn).dialect
    base = keep or "retention_plan"
    clock, stored = _store_clock(conn, base, clock_rows, values, sliced)
    created = [clock]
    dues: list[list[str]] = []
    for i, query in enumerate(due_queries):
        copies = max((paths(one.policy, t) for t in one.tables[i]), default=1)
        names = [f"{base}_due_{i}", *(f"{base}_due_{i}_{j}" for j in range(1, copies))]
        for name in names:
            created.append(name)
            conn.execute(dialect.drop_temporary(name))
        conn.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} AS SELECT * FROM (WITH {} {}) AS d").format(
                dialect.temporary(names[0]), stored, query
            ),
            values,
        )
        for name in names[1:]:
            conn.execute(
                sql.SQL("CREATE TEMPORARY TABLE {} AS SELECT k FROM {}").format(
                    dialect.temporary(name), dialect.temporary(names[0])
                )
            )
        dues.append(names)
    if keep is not None:
        ctes = [
            stored,
            *(
                sql.SQL("{} AS (SELECT k FROM {})").format(
                    sql.Identifier(f"due_{i}"), dialect.temporary(names[0])
                )
                for i, names in enumerate(dues)
            ),
        ]
        conn.execute(
            _kept_rows(
                conn,
                keep,
                len(due_queries),
                one.ordered,
                one.first_window,
                lambda rows: sql.SQL("SELECT * FROM (WITH {} {}) AS x").format(
                    sql.SQL(", ").join(ctes), rows
                ),
            ),
            values,
        )
    found = list(_clock_counts(conn, dialect.temporary(clock), one.reasons))
    for i, phase in enumerate(one.phases):
        found.append(
            _count(conn, sql.SQL("SELECT count(*) FROM {}").format(dialect.temporary(dues[i][0])))
        )
        if _dates_retention(phase, one.ordered):
            undated = _undated(dialect.temporary(dues[i][0]), dialect.temporary(clock))
            found.append(_count(conn, undated))
        for table in one.tables[i]:
            params = Params(prefix="q")
            joined = [dialect.temporary(n) for n in dues[i][: paths(one.policy, table)]]
            query = count_members(one.policy, phase, table, joined, params, dialect=dialect)
            found.append(_count(conn, query, params.values))
    for name in created:
        conn.execute(dialect.drop_temporary(name))
    return tuple(found)


def _store_clock(
    conn: Connection,
    base: str,
    clock_rows: sql.Composable,
    values: dict[str, object],
    sliced: bool = False,
) -> tuple[str, sql.Composable]:
    """The pass's clock stored in the temporary table `<base>_clock`: its name, and the CTE
    `clock` reading it. `sliced`: over one slice of the subjects (`Session.grouped_at_once`)."""
    engine = engine_of(conn)
    clock = f"{base}_clock"
    conn.execute(engine.dialect.drop_temporary(clock))
    statement = sql.SQL("CREATE TEMPORARY TABLE {} AS {}").format(
        engine.dialect.temporary(clock), clock_rows
    )
    conn.execute(engine.session.grouped_at_once(conn, statement) if sliced else statement, values)
    return clock, sql.SQL("clock AS (SELECT * FROM {})").format(engine.dialect.temporary(clock))


def _clock_counts(conn: Connection, clock: sql.Composable, reasons: int) -> tuple[Any, ...]:
    """The counts of `pass_plan`'s first columns (held, undeterminable, each reason), in one
    scan of the clock's table."""
    conditions = [
        sql.SQL("would_be_due AND held"),
        sql.SQL("undeterminable"),
        *(sql.Identifier(f"why_{i}") for i in range(reasons)),
    ]
    row = conn.execute(
        sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(
                sql.SQL("count(CASE WHEN {} THEN 1 END)").format(c) for c in conditions
            ),
            clock,
        )
    ).fetchone()
    assert row is not None
    return tuple(row)


def _count(conn: Connection, query: sql.Composable, values: Any = None) -> Any:
    row = conn.execute(sql.SQL("{}").format(query), values).fetchone()
    assert row is not None
    return row[0]


def _kept_rows(
    conn: Connection,
    name: str,
    phases: int,
    ordered: bool,
    first_window: int,
    around: Callable[[sql.Composable], sql.Composable],
) -> sql.Composed:
    """An INSERT storing the union of the passes' due subjects, with their flags and their
    place in the walk: their place in key order, numbered from `first_window` (made into
    windows by `index_due_table`), then their end of retention; or one place for all (key
    order). `around`
    wraps the rows' query: how it reaches the CTEs `clock` and `due_<i>`."""
    dialect = engine_of(conn).dialect
    flags = [flag(i) for i in range(phases)]
    branches = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT k, {} FROM {}").format(
            sql.SQL(", ").join(
                sql.SQL("{} AS {}").format(sql.SQL("true" if i == j else "false"), flags[j])
                for j in range(phases)
            ),
            sql.Identifier(f"due_{i}"),
        )
        for i in range(phases)
    )
    grouped = sql.SQL("SELECT k, {} FROM ({}) AS d GROUP BY k").format(
        sql.SQL(", ").join(sql.SQL("{} AS {}").format(dialect.bool_or(f), f) for f in flags),
        branches,
    )
    if ordered:
        source = sql.SQL(
            "SELECT g.*, {} + {} AS w, coalesce({}, 2147483647) AS o "
            "FROM ({}) AS g JOIN clock AS c ON c.k = g.k"
        ).format(
            sql.Literal(first_window),
            sql.SQL("row_number() OVER (ORDER BY g.k) - 1"),
            dialect.day_number(sql.SQL("c.retain_until")),
            grouped,
        )
    else:
        source = sql.SQL("SELECT g.*, 0 AS w, 0 AS o FROM ({}) AS g").format(grouped)
    columns = sql.SQL(", ").join([sql.SQL("k, w, o"), *flags])
    rows = sql.SQL("SELECT {c} FROM ({s}) AS x").format(c=columns, s=source)
    return sql.SQL("INSERT INTO {} ({}) {}").format(temp(name, dialect), columns, around(rows))


def snapshot_pass(
    conn: Connection,
    policy: BoundPolicy,
    phases: tuple[BoundPhase, ...],
    at: date,
    holds: sql.Composable | None,
    table: str,
) -> int:
    """Store a pass's due subjects in `table` (when the run was given a plan computed
    elsewhere); returns how many."""
    create_due_table(conn, policy, len(phases), table)
    pass_plan(conn, policy, phases, at, holds, False, table)
    return index_due_table(conn, table, policy, phases)
