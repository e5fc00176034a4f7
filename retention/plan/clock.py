"""The legal clock in SQL: one row per subject with its dates, due date and status.

`clock_query` compiles a bound policy into one SELECT giving, per subject key, whether a phase
is due, held, or undeterminable at a given date. The plan counts its rows; the engine selects
batches from it and re-runs it for the locked batch before acting. Every name comes from the
catalogue (`sql.Identifier`) and every value is a bound parameter. What differs between
database engines (reading and shifting dates, the planner's fences, arrays, the holds' days)
is asked of the connection's `ClockSQL` (`retention.engines.clock.clock_sql(conn)`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from retention.catalog.introspect import Table
from retention.engines import sql
from retention.engines.clock import ClockSQL, Term, or_postgresql
from retention.policy.bound import RETAIN_UNTIL, BoundDate, BoundPhase, BoundPolicy
from retention.policy.expr import Params, compile_sql
from retention.policy.expr.compile import compile_term
from retention.policy.expr.nodes import (
    BoolLit,
    Call,
    DateLit,
    Expr,
    If,
    IntervalLit,
    IsNull,
    Name,
    NullLit,
    NumberLit,
    TextLit,
    Today,
)
from retention.rows.subjects import KeyRange, path_sql
from retention.store.holds import Person, covers

SUBJECT = "s"
BASE = "b"  # the clock's first layer: named dates computed once per subject
UNKNOWN_DUE = "no due date (e.g. no recorded visit)"


@dataclass(frozen=True)
class ClockQuery:
    """`SELECT k, due, held, undeterminable FROM ...` for one phase, with its parameters."""

    query: sql.Composed
    params: dict[str, object]
    reasons: tuple[str, ...] = ()  # column why_<i> is true when reason i makes it undeterminable


def clock_query(
    policy: BoundPolicy,
    phase: BoundPhase,
    at: date,
    *,
    holds_table: sql.Composable | None,
    dialect: ClockSQL | None = None,
    keys: sql.Composable | None = None,
    aggregates: Mapping[AggregateKey, sql.Composable] | None = None,
    with_retain_until: bool = False,
    flags: Mapping[str, sql.Composable] | None = None,
    within: KeyRange | None = None,
) -> ClockQuery:
    """Status of every subject (or of `keys`: see `ClockSQL.key_in`) for `phase` at `at`, in
    the SQL of `dialect` (the connection's engine, `clock_sql(conn)`; PostgreSQL when None).

    Columns: `k` (subject key), `due` (date, hold extension included: the last day kept, so
    the phase is due at `at` only when `due < at`), `held` (bool),
    `undeterminable` (bool), `would_be_due` (due and determinable, held or not), `is_due`
    (would be due and not held: the subjects the phase acts on). `aggregates`: tables already
    holding some aggregate dates (see `aggregate_key`), joined instead of recomputed.
    `with_retain_until`: a column `retain_until` too (the end of retention, hold extension
    included; NULL when it cannot be judged), which orders archive batches and groups archives.
    `flags`: more columns, by name, each a condition over the subject's row (aliased `s`)
    evaluated in the same scan (e.g. whether a column phase still has work on that row).
    `within`: only the subjects whose key lies in that range (a slice of the table, see
    retention.plan.slices), every aggregate restricted to them too.
    """
    dialect = or_postgresql(dialect)
    params = Params(prefix="c")
    at_param = dialect.bind(params, at, "date")
    only = _restriction(dialect, keys, within)
    # the clock of a few subjects (a batch's locked re-check) computes its aggregates fresh,
    # never from a stored snapshot of them
    stored = (aggregates or {}) if keys is None else {}
    builder = _ClockBuilder(policy, dialect, params, at_param, only, at, stored)
    due = builder.expression_sql(phase.due)
    retain_until: sql.Composable = sql.SQL("")
    if with_retain_until:
        # NULL when it cannot be judged, with the reasons of a phase due at retain_until
        ends = BoundPhase(RETAIN_UNTIL, "archive", policy.retain_until, (), policy.retain_depends)
        bad = [cond for _, cond in builder.undeterminable(ends)[1:]]
        retain_until = sql.SQL(", ({}) AS ru_raw, ({}) AS ru_bad").format(
            builder.expression_sql(policy.retain_until),
            sql.SQL(" OR ").join(bad) if bad else sql.SQL("false"),
        )
    reasons = builder.undeterminable(phase)
    held, extension, holds_join = _holds(policy, dialect, params, holds_table)
    key = sql.Identifier(SUBJECT, policy.key.name)
    where = sql.SQL("") if only is None else sql.SQL("WHERE {}").format(only(key))
    carried = sql.SQL("").join(sql.SQL(", {}").format(sql.Identifier(n)) for n in flags or {})
    # Three layers, each computed once per subject: (1) the named dates read or aggregated
    # (a text date parsed once, however often the policy uses it), (2) the due expression and
    # the reasons over those columns, (3) the due date with the hold extension and the statuses.
    # The fence (PostgreSQL's OFFSET 0) keeps the planner from flattening a layer into the
    # next, which would evaluate each expression again for every column using it (measured at
    # 758,912 patients: plan 15.2 s -> ~8 s with the first fence).
    fence = dialect.fence()
    base = sql.SQL(
        "SELECT {key} AS k, {held} AS held, {ext} AS ext{flags}, {columns} "
        "FROM {subject} {joins} {holds} {where} {fence}"
    ).format(
        key=key,
        held=held,
        ext=extension,
        flags=sql.SQL("").join(
            sql.SQL(", ({}) AS {}").format(c, sql.Identifier(n)) for n, c in (flags or {}).items()
        ),
        columns=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(value, sql.Identifier(name))
            for name, value in builder.columns.items()
        )
        if builder.columns
        else sql.SQL("NULL AS {}").format(sql.Identifier("_none")),
        subject=dialect.subject_table(
            sql.Identifier(*policy.subject.qname),
            sql.Identifier(SUBJECT),
            in_key_order=only is None and policy.subject.primary_key == (policy.key.name,),
        ),
        joins=sql.SQL(" ").join(builder.joins),
        holds=holds_join,
        where=where,
        fence=fence,
    )
    why = [sql.Identifier(f"why_{i}") for i in range(len(reasons))]
    computed = sql.SQL(
        "SELECT k, held, ext{carried}, ({due}) AS due_raw{ru}{why} FROM ({base}) AS {b} {fence}"
    ).format(
        carried=carried,
        due=due,
        ru=retain_until,
        why=sql.SQL("").join(
            sql.SQL(", ({}) AS {}").format(cond, w)
            for (_, cond), w in zip(reasons[1:], why[1:], strict=True)
        ),
        base=base,
        b=sql.Identifier(BASE),
        fence=fence,
    )
    extended = dialect.add_days(sql.SQL("due_raw"), sql.SQL("ext"))
    statuses = sql.SQL(
        "SELECT k, {due} AS due, held{carried}{ru}, {unknown} AS {first}{rest} FROM ({c}) AS d"
    ).format(
        due=extended,
        unknown=dialect.due_unknown(sql.SQL("due_raw"), extended),
        carried=carried,
        ru=sql.SQL(", CASE WHEN NOT ru_bad THEN {} END AS retain_until").format(
            dialect.add_days(sql.SQL("ru_raw"), sql.SQL("ext"))
        )
        if with_retain_until
        else sql.SQL(""),
        first=why[0],
        rest=sql.SQL("").join(sql.SQL(", {}").format(w) for w in why[1:]),
        c=computed,
    )
    undeterminable = sql.SQL(" OR ").join(why)
    query = sql.SQL(
        "SELECT *, would_be_due AND NOT held AS is_due FROM (SELECT *, "
        "(NOT undeterminable AND due < {at}) AS would_be_due FROM (SELECT *, ({undet}) AS "
        "undeterminable FROM ({statuses}) AS i) AS u) AS clock"
    ).format(at=at_param, statuses=statuses, undet=undeterminable)
    return ClockQuery(query, params.values, tuple(reason for reason, _ in reasons))


class _ClockBuilder:
    """Compiles named dates into SQL over the subject row and aggregate joins."""

    def __init__(
        self,
        policy: BoundPolicy,
        dialect: ClockSQL,
        params: Params,
        today: sql.Composable,
        only: Restriction | None,
        at: date,
        shared: Mapping[AggregateKey, sql.Composable],
    ) -> None:
        self.policy = policy
        self.dialect = dialect
        self.only = only
        self.at = at
        self.shared = shared
        self.params = params
        self.today = today
        self.joins: list[sql.Composable] = []
        self.columns: dict[str, sql.Composable] = {}  # first-layer columns, by name
        self._aggregates: dict[str, str] = {}

    def expression_sql(self, expr: Expr) -> sql.Composable:
        """The value of `expr` for a subject; NULL when the engine could not compute it."""
        return compile_sql(expr, self._resolve, self.params, self.today, self.dialect)

    def expression_term(self, expr: Expr) -> Term:
        """`expr` within another expression: its value, and when it could not be computed
        (carried to the expression using it, whose value is then NULL)."""
        term = compile_term(expr, self._resolve, self.params, self.today, self.dialect)
        return Term(sql.SQL("({})").format(term.sql), term.days, term.unknown)

    def _resolve(self, name: Name) -> sql.Composable | Term:
        if name.name == RETAIN_UNTIL:
            return self.expression_term(self.policy.retain_until)
        date_ = self.policy.dates[name.name]
        if date_.kind == "expression":
            assert date_.value is not None
            return self.expression_term(date_.value)
        return self.column(f"d_{name.name}", self.date_sql(date_))

    def column(self, name: str, value: sql.Composable) -> sql.Composable:
        """A value computed once per subject in the clock's first layer, by its column."""
        self.columns.setdefault(name, value)
        return sql.Identifier(BASE, name)

    def date_sql(self, date_: BoundDate) -> sql.Composable:
        if date_.kind == "column":
            assert date_.column is not None
            ref = sql.Identifier(SUBJECT, date_.column.name)
            if date_.format is not None:
                return self.dialect.text_date(ref, date_.format, self.params)
            return self.dialect.column_date(ref, date_.column.kind)
        if date_.kind == "aggregate":
            return sql.Identifier(self._aggregate(date_), "v")
        assert date_.value is not None
        return sql.SQL("({})").format(self.expression_sql(date_.value))

    def _aggregate(self, date_: BoundDate) -> str:
        """Alias of the LEFT JOIN computing this aggregate (added on first use)."""
        if date_.name not in self._aggregates:
            alias = f"a_{len(self._aggregates)}"
            self._aggregates[date_.name] = alias
            # a stored aggregate must hold every subject this clock covers (the caller's
            # promise: the exposure stores them per slice, for the clocks of that slice)
            stored = self.shared.get(
                aggregate_key(self.policy, date_, self.at, dialect=self.dialect)
            )
            subquery = (
                sql.SQL("SELECT * FROM {}").format(stored)
                if stored is not None
                else aggregate_sql(
                    self.policy, date_, self.dialect, self.params, self.today, self.only
                )
            )
            self.joins.append(
                sql.SQL("LEFT JOIN ({}) AS {} ON {} = {}").format(
                    subquery,
                    sql.Identifier(alias),
                    sql.Identifier(alias, "k"),
                    sql.Identifier(SUBJECT, self.policy.key.name),
                )
            )
        return self._aggregates[date_.name]

    def undeterminable(self, phase: BoundPhase) -> list[tuple[str, sql.Composable]]:
        """Why a subject's phase cannot be judged: (reason, condition) pairs. A date the phase
        needs that cannot be read (or is missing and required), or a due date that cannot be
        computed (e.g. no recorded visit)."""
        reasons: list[tuple[str, sql.Composable]] = [
            (UNKNOWN_DUE, sql.SQL("({}) IS NULL").format(self.expression_sql(phase.due)))
        ]
        needed = set(phase.depends)
        if RETAIN_UNTIL in needed:
            needed |= self.policy.retain_depends
        for name in sorted(needed):
            date_ = self.policy.dates.get(name)
            if date_ is None:
                continue
            if date_.kind == "column":
                assert date_.column is not None
                ref = sql.Identifier(SUBJECT, date_.column.name)
                value = self.column(f"d_{name}", self.date_sql(date_))
                missing = self.column(
                    f"n_{name}",
                    self.dialect.missing(ref, date_.column.kind),
                )
                unreadable = sql.SQL("(NOT {} AND {} IS NULL)").format(missing, value)
                if date_.if_missing == "undeterminable":
                    unreadable = sql.SQL("({} OR {})").format(unreadable, missing)
                reasons.append((name, unreadable))
            elif date_.kind == "aggregate":
                bad = sql.Identifier(self._aggregate(date_), "bad")
                reasons.append(
                    (name, self.column(f"bad_{name}", sql.SQL("coalesce({}, false)").format(bad)))
                )
        return reasons


def aggregate_sql(
    policy: BoundPolicy,
    date_: BoundDate,
    dialect: ClockSQL,
    params: Params,
    today: sql.Composable,
    only: Restriction | None = None,
) -> sql.Composable:
    """`SELECT k, max(v) AS v, bad` over every path to the subject (with `only`, of the
    subjects it accepts); `bad` when a row's date cannot be read (`ClockSQL.aggregate_bad`).
    A row whose declared link (no foreign key) names a row that does not exist is `bad` too:
    its date is unknown; so is a row whose date or filter the engine could not compute."""
    assert date_.over is not None and date_.value is not None
    over = date_.over
    aliases = {over.name: "t", **{j.table.name: f"j{i}" for i, j in enumerate(date_.joins)}}
    tables = {over.name: over, **{j.table.name: j.table for j in date_.joins}}

    def resolve(name: Name, texts_as_dates: bool = False) -> sql.Composable | Term:
        table_name = name.table or over.name
        column = tables[table_name].columns[name.name]
        ref = sql.Identifier(aliases[table_name], column.name)
        if texts_as_dates and column.is_text and date_.format is not None:
            # a date stored as text: read in its format; a value in another shape is
            # unreadable (unknown), not missing
            day = dialect.text_date(ref, date_.format, params)
            return Term(day, unknown=sql.SQL("({} IS NOT NULL AND {} IS NULL)").format(ref, day))
        if column.is_date:
            return dialect.column_value(ref, column.kind)
        return ref if column.enum_values is None else dialect.enum_text(ref)

    # the value reads its text columns as dates (the date's `format`), the filter as text
    value = compile_term(
        date_.value, lambda n: resolve(n, texts_as_dates=True), params, today, dialect
    )
    filtered = (
        None if date_.where is None else compile_term(date_.where, resolve, params, today, dialect)
    )
    where = sql.SQL("true") if filtered is None else filtered.sql
    joins = sql.SQL(" ").join(
        sql.SQL("LEFT JOIN {} AS {} ON {}").format(
            sql.Identifier(*j.table.qname),
            sql.Identifier(f"j{i}"),
            sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier("t", c), sql.Identifier(f"j{i}", r))
                for c, r in zip(j.columns, j.ref_columns, strict=True)
            ),
        )
        for i, j in enumerate(date_.joins)
    )
    # a declared link's value whose row is gone: that row's date is unknown, not absent
    gone: dict[str, sql.Composable] = {
        j.table.name: sql.SQL("({} AND {} IS NULL)").format(
            sql.SQL(" AND ").join(
                sql.SQL("{} IS NOT NULL").format(sql.Identifier("t", c)) for c in j.columns
            ),
            sql.Identifier(f"j{i}", j.ref_columns[0]),
        )
        for i, j in enumerate(date_.joins)
        if not j.enforced
    }
    # a row whose filter cannot be decided (it reads a value the engine cannot, or a joined
    # row that is gone) may count: it is read, and its subject's date is unknown; a row the
    # filter leaves out is not read, whatever its date (a cancelled stay dated 0000-00-00,
    # common in Mediboard, kept every patient who had one undeterminable); a row read whose
    # own date cannot be read or whose joined row is gone makes the date unknown
    read = _names(date_.where, over.name) if date_.where is not None else set()
    unsure: list[sql.Composable] = [gone[t] for t in sorted(read) if t in gone]
    if filtered is not None and filtered.unknown is not None:
        unsure.append(filtered.unknown)
    lost = [*unsure, *(gone[t] for t in sorted(gone) if t not in read)]
    if value.unknown is not None:
        lost.append(value.unknown)
    unknown = sql.SQL(" OR ").join(lost) if lost else sql.SQL("false")
    if unsure:
        where = sql.SQL("({} OR {})").format(where, sql.SQL(" OR ").join(unsure))
    # a row that passes the filter but has no value (a stay still open, no discharge date):
    # its date is missing, and so the subject's, unless the date says if_missing: "null"
    # (such rows left out: the aggregate ignores nulls). Rows failing the filter are only
    # read when already unknown.
    # (each test written only where the expression can be NULL at all: a NOT NULL column of
    # the row itself, or a coalesce ending in today, never is; measured on MariaDB, the test
    # repeated the whole date expression per row, 6 % of a minimisation at 189,728 patients)
    if date_.if_missing == "undeterminable":
        if _may_be_null(date_.value, over, tables):
            unknown = sql.SQL("({} OR {} IS NULL)").format(unknown, value.sql)
        if (
            filtered is not None
            and date_.where is not None
            and _may_be_null(date_.where, over, tables)
        ):
            # nor can a row whose filter is unknown (annule NULL): whether it counts is not
            # known, so neither is the subject's date
            undecided = sql.SQL("({}) IS NULL").format(filtered.sql)
            where = sql.SQL("({} OR {})").format(where, undecided)
            unknown = sql.SQL("({} OR {})").format(unknown, undecided)
    branches = []
    for path in policy.graph.paths_to_subject(over.qname):
        walk = path_sql(policy, path, "t", params, dialect=dialect.rows)
        branches.append(
            sql.SQL(
                "SELECT {key} AS k, {value} AS v, {unknown} AS lost "
                "FROM {over} AS t {joins} {chain} WHERE {where}"
            ).format(
                key=walk.key,
                value=dialect.aggregate_date(value.sql),
                unknown=unknown,
                over=sql.Identifier(*over.qname),
                joins=joins,
                chain=walk.joins,
                where=sql.SQL(" AND ").join(
                    [where, *walk.conditions, *([] if only is None else [only(walk.key)])]
                ),
            )
        )
    function = sql.SQL("max" if date_.function == "max" else "min")
    return sql.SQL("SELECT k, {f}(v) AS v, {bad} AS bad FROM ({u}) AS x GROUP BY k").format(
        f=function,
        bad=dialect.aggregate_bad(sql.SQL("v"), sql.SQL("lost")),
        u=sql.SQL(" UNION ALL ").join(branches),
    )


def _names(expr: Expr, over: str) -> set[str]:
    """The tables whose columns `expr` reads (`over` for its unqualified names)."""
    return {node.table or over for node in expr.walk() if isinstance(node, Name)}


def _may_be_null(expr: Expr, over: Table, tables: Mapping[str, Table]) -> bool:
    """Whether `expr`, over a row of `over` and the rows joined to it (`tables`), can be NULL
    for a readable row (unreadable values are the engine's `Term.unknown`, told apart). True
    whenever unsure: a column that may be NULL or that comes from a joined row (which may be
    missing), `null`, any operation on something that may be NULL; `coalesce`, `greatest` and
    `least` only when every argument may be (they skip nulls); `is null` never."""
    match expr:
        case Name():
            table = tables.get(expr.table or over.name)
            if table is None or table.qname != over.qname:
                return True
            column = table.columns.get(expr.name)
            return column is None or not column.not_null
        case NullLit():
            return True
        case TextLit() | NumberLit() | BoolLit() | DateLit() | Today() | IntervalLit() | IsNull():
            return False
        case Call():
            return all(_may_be_null(arg, over, tables) for arg in expr.args)
        case If():
            return _may_be_null(expr.then, over, tables) or _may_be_null(expr.else_, over, tables)
        case _:
            return any(_may_be_null(child, over, tables) for child in expr.children())


AggregateKey = tuple[str, tuple[object, ...]]


def aggregate_key(
    policy: BoundPolicy, date_: BoundDate, at: date, *, dialect: ClockSQL | None = None
) -> AggregateKey:
    """What identifies an aggregate date over every subject: its SQL text and parameters. Two
    policies defining "last stay" the same way share one key."""
    params = Params(prefix="g")
    query = aggregate_statement(policy, date_, at, params, dialect=dialect)
    return query.as_string(None), tuple(params.values.values())


def aggregate_statement(
    policy: BoundPolicy,
    date_: BoundDate,
    at: date,
    params: Params,
    within: KeyRange | None = None,
    *,
    dialect: ClockSQL | None = None,
) -> sql.Composable:
    """`SELECT k, v, bad` of an aggregate date over every subject (or those `within`), with its
    own parameters (in the SQL of `dialect`, PostgreSQL when None)."""
    dialect = or_postgresql(dialect)
    today = dialect.bind(params, at, "date")
    restriction = _restriction(dialect, None, within)
    return aggregate_sql(policy, date_, dialect, params, today, restriction)


# A condition on a subject key expression: which subjects a clock or an aggregate covers.
Restriction = Callable[[sql.Composable], sql.Composable]


def _restriction(
    dialect: ClockSQL, keys: sql.Composable | None, within: KeyRange | None
) -> Restriction | None:
    """The key among `keys` when computing the clock of a few subjects (uses the link's
    index), a key range for a slice of the table, or nothing."""
    if keys is not None and within is not None:
        raise ValueError("a clock is restricted to keys or to a range, not both")
    if keys is not None:
        return lambda key: dialect.key_in(key, keys)
    if within is not None:
        return within.condition
    return None


def _holds(
    policy: BoundPolicy, dialect: ClockSQL, params: Params, holds_table: sql.Composable | None
) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    if holds_table is None:
        return sql.SQL("false"), sql.SQL("0"), sql.SQL("")
    join = dialect.holds_join(
        holds_table,
        holds_covering(policy, params, dialect=dialect),
        sql.Identifier(SUBJECT, policy.key.name),
    )
    return sql.SQL("coalesce(h.held, false)"), sql.SQL("coalesce(h.extension, 0)"), join


def person_of(policy: BoundPolicy) -> Person:
    """Whom a hold on a person covers under `policy`: a key of its subject table."""
    return Person.of(policy.subject.qname, policy.key.name)


def holds_covering(
    policy: BoundPolicy, params: Params, *, dialect: ClockSQL | None = None
) -> sql.Composable:
    """The holds rows covering `policy`: narrowed to it, holding its subject's person, or
    recorded before holds had a scope (no subject table) under a policy on the same subject
    table and key: those were added when `--policy` was required, and hold the person."""
    dialect = or_postgresql(dialect)
    person = person_of(policy)
    siblings = list(policy.siblings or (policy.name,))
    by_name = dialect.rows.holds_by_table_name
    return covers(
        sql.SQL("(policy = {} OR (subject_table IS NULL AND {}))").format(
            params.add(policy.name), dialect.any_of(sql.SQL("policy"), params, siblings)
        ),
        params.add(person.compared(by_name)),
        params.add(person.column),
        by_name=by_name,
    )
