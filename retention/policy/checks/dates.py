"""The clock's dates: a column of the subject (a date, or text with a format), the latest or
earliest of rows related to the subject (read through joins), or an expression of other
dates; no date depends on itself, and the related rows are found through an index."""

from __future__ import annotations

from collections.abc import Iterator

from retention.catalog.introspect import Column, Table
from retention.engines.catalogue import enum_label
from retention.policy.bound import RETAIN_UNTIL, BoundDate, Join
from retention.policy.checks.binder import Binder
from retention.policy.expr import Expr, ExprType
from retention.policy.expr.nodes import Compare, InList, Name, TextLit
from retention.policy.model import AggregateDate, ColumnDate
from retention.policy.relations import QName, RelationGraph
from retention.policy.source import PathKey


def bind_dates(binder: Binder, subject: Table, graph: RelationGraph | None) -> dict[str, BoundDate]:
    """Every date that binds, by name; then those that depend on themselves are reported."""
    out: dict[str, BoundDate] = {}
    for name in binder.loaded.policy.dates:
        bound = _date(binder, name, subject, graph)
        if bound is not None:
            out[name] = bound
    _check_date_cycles(binder, out)
    return out


def _date(
    binder: Binder, name: str, subject: Table, graph: RelationGraph | None
) -> BoundDate | None:
    specs = binder.loaded.policy.dates
    spec = specs[name]
    path: PathKey = ("dates", name)
    if name == RETAIN_UNTIL:
        binder.error(path, "'retain_until' is reserved", "choose another name")
        return None
    if isinstance(spec, ColumnDate):
        return _column_date(binder, name, spec, subject, path)
    if isinstance(spec, AggregateDate):
        return _aggregate_date(binder, name, spec, graph, path)
    others = {n: ExprType.DATE for n in specs if n != name}
    expr = binder.expression(spec, path, others, ExprType.DATE)
    if expr is None:
        return None
    return BoundDate(name, "expression", value=expr, depends=frozenset(names_in(expr)))


def _column_date(
    binder: Binder, name: str, spec: ColumnDate, subject: Table, path: PathKey
) -> BoundDate | None:
    column = binder.column(subject, spec.column, (*path, "column"))
    if column is None:
        return None
    if column.is_text and spec.format is None:
        binder.error(
            (*path, "column"),
            f"'{column.name}' is stored as {column.type}",
            "add 'format: YYYY-MM-DD' (or DD/MM/YYYY, YYYYMMDD) to read it as a date",
        )
        return None
    if not column.is_text and not column.is_date:
        binder.error((*path, "column"), f"'{column.name}' is {column.type}, not a date")
        return None
    if column.is_date and spec.format is not None:
        binder.warn(
            (*path, "format"), f"'{column.name}' is already a {column.type}; 'format' is ignored"
        )
    return BoundDate(
        name,
        "column",
        column=column,
        format=spec.format if column.is_text else None,
        if_missing=spec.if_missing,
    )


def _aggregate_date(
    binder: Binder, name: str, spec: AggregateDate, graph: RelationGraph | None, path: PathKey
) -> BoundDate | None:
    value_path: PathKey = (*path, "latest" if spec.latest is not None else "earliest")
    over = _over(binder, name, spec, graph, path, value_path)
    if over is None:
        return None
    joins = _joins(binder, over)
    texts = spec.format is not None  # the value's text columns read as dates in that format

    def types(as_dates: bool) -> dict[str, ExprType]:
        found = _column_types(over, qualified=False, texts=as_dates)
        found |= _column_types(over, qualified=True, texts=as_dates)
        for qname in joins:
            found |= _column_types(binder.catalog.tables[qname], qualified=True, texts=as_dates)
        return found

    value = binder.expression(spec.value, value_path, types(texts), ExprType.DATE)
    where = (
        None
        if spec.where is None
        else binder.expression(spec.where, (*path, "where"), types(False), ExprType.BOOLEAN)
    )
    if value is None or (spec.where is not None and where is None):
        return None
    used = {n.table for n in _name_nodes(value, where) if n.table and n.table != over.name}
    join_list = tuple(join for q, join in joins.items() if q[1] in used)
    if where is not None:
        _check_enum_labels(binder, (*path, "where"), where, over, join_list)
    if texts and not _reads_text(value, None, over, join_list):
        binder.warn(
            (*path, "format"),
            "no column read here holds text: 'format' is ignored",
            "remove it, or read the text column that holds the dates",
        )
    return BoundDate(
        name,
        "aggregate",
        function=spec.function,
        over=over,
        joins=join_list,
        value=value,
        where=where,
        if_missing=spec.if_missing,
        format=spec.format,
    )


def _check_enum_labels(
    binder: Binder, path: PathKey, where: Expr, over: Table, joins: tuple[Join, ...]
) -> None:
    """A filter comparing an enum column with a text that is none of its labels (a typo, a
    label renamed) never matches it: a warning, since the rows it should keep or leave out
    then change the clock without a word."""
    tables = {over.name: over, **{j.table.name: j.table for j in joins}}
    for node in where.walk():
        if isinstance(node, Compare):
            pairs = [(node.left, node.right), (node.right, node.left)]
        elif isinstance(node, InList):
            pairs = [(node.operand, item) for item in node.items]
        else:
            continue
        for name, literal in pairs:
            if not (isinstance(name, Name) and isinstance(literal, TextLit)):
                continue
            table = tables.get(name.table or over.name)
            column = table.columns.get(name.name) if table is not None else None
            labels = column.enum_values if column is not None else None
            if table is None or column is None or labels is None:
                continue
            if enum_label(column, literal.value) is not None:
                continue  # a label, or one the column's collation takes it for (MariaDB)
            same = [v for v in labels if v.casefold() == literal.value.casefold()]
            choices = ", ".join(str(TextLit(v)) for v in labels)
            binder.warn(
                path,
                f"{literal} is not a label of the enum column {table.name}.{name.name} ({choices})",
                f"write it as the enum does, {TextLit(same[0])}: PostgreSQL compares labels exactly"
                if same
                else "use one of its labels: the filter never matches this one",
            )


def _reads_text(value: Expr, where: Expr | None, over: Table, joins: tuple[Join, ...]) -> bool:
    """Whether the aggregate's expressions read a text column (one its `format` reads)."""
    tables = {over.name: over, **{j.table.name: j.table for j in joins}}
    for node in _name_nodes(value, where):
        table = tables.get(node.table or over.name)
        column = table.columns.get(node.name) if table is not None else None
        if column is not None and column.is_text:
            return True
    return False


def _over(
    binder: Binder,
    name: str,
    spec: AggregateDate,
    graph: RelationGraph | None,
    path: PathKey,
    value_path: PathKey,
) -> Table | None:
    """The table whose rows an aggregate reads: named, or the table of its column; a table of
    the record other than the subject's."""
    over_name = spec.over or _table_of(spec.value)
    if over_name is None:
        binder.error(
            path,
            "which table do these rows come from?",
            "add 'over: <table>' or qualify the column as table.column",
        )
        return None
    over_path = (*path, "over") if spec.over else value_path
    over = binder.table(over_name, over_path)
    if over is None or graph is None:
        return None
    if over.qname == graph.subject:
        binder.error(
            over_path,
            f"{over.name} is the subject table itself: a subject has one row there, not rows "
            "to take the latest or earliest of",
            f"read the column directly: '{name}: {{column: <column of {over.name}>}}' "
            "(with 'format:' for a date stored as text)",
        )
        return None
    if over.qname not in graph.tables:
        binder.error(
            over_path,
            f"{over.name} is not related to the subject",
            "add a foreign key, or declare a link under related.links",
        )
        return None
    return over


def _joins(binder: Binder, over: Table) -> dict[QName, Join]:
    """The tables an aggregate over `over` can read a value from, each through one join: its
    foreign keys, then the policy's column links declared on `over` (a consultation's date in
    its planning slot when no foreign key says so); a declared link whose parent is not in
    the record serves these joins only."""
    joins = {
        fk.ref_table: Join(
            binder.catalog.tables[fk.ref_table],
            fk.columns,
            fk.ref_columns,
            f"foreign key {fk.name}",
        )
        for fk in binder.catalog.outgoing(over.qname)
    }
    for i, link in enumerate(binder.loaded.policy.related.links):
        child = binder.catalog.find(link.table)
        if link.column is None or child is None or child.qname != over.qname:
            continue
        parent = binder.catalog.find(link.references or binder.loaded.policy.subject.table)
        if parent is None or len(parent.primary_key) != 1 or link.column not in over.columns:
            continue  # reported by retention.policy.checks.links
        joins.setdefault(
            parent.qname,
            Join(
                parent,
                (link.column,),
                parent.primary_key,
                f"declared link related.links[{i}] {over.name}.{link.column}",
            ),
        )
    return joins


def _column_types(table: Table, *, qualified: bool, texts: bool = False) -> dict[str, ExprType]:
    """The type of each column in expressions; `texts`: text columns are dates (an
    aggregate's `format` reads them)."""
    out = {}
    for column in table.columns.values():
        kind = ExprType.DATE if texts and column.is_text else _expr_type(column)
        if kind is not None:
            out[f"{table.name}.{column.name}" if qualified else column.name] = kind
    return out


def _expr_type(column: Column) -> ExprType | None:
    if column.is_date:
        return ExprType.DATE
    if column.is_text or column.enum_values is not None:  # an enum: its labels' text
        return ExprType.TEXT
    if column.is_number:
        return ExprType.NUMBER
    if column.base_type == "boolean":
        return ExprType.BOOLEAN
    return None


def _table_of(text: str) -> str | None:
    head = text.strip().split("(")[-1].split(",")[0].strip()
    return head.rsplit(".", 1)[0] if "." in head else None


def _check_date_cycles(binder: Binder, dates: dict[str, BoundDate]) -> None:
    for name, date_ in dates.items():
        if name in closure(date_.depends, dates):
            binder.error(("dates", name), f"date '{name}' depends on itself")


def closure(names: set[str] | frozenset[str], dates: dict[str, BoundDate]) -> frozenset[str]:
    """`names` and every date they depend on, however deep."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in dates:
            todo.extend(dates[name].depends)
    return frozenset(seen)


def check_date_indexes(
    binder: Binder, dates: dict[str, BoundDate], graph: RelationGraph | None
) -> None:
    """An aggregate finds a subject's rows through the first link of each path to the
    subject: without an index on it, computing the date scans the whole table (a warning)."""
    if graph is None:
        return
    for name, date in dates.items():
        if date.over is None:
            continue
        for path in graph.paths_to_subject(date.over.qname):
            edge = path[0]
            table = binder.catalog.tables[edge.child]
            if not table.is_indexed(edge.child_columns):
                binder.warn(
                    ("dates", name),
                    f"no index on {table.name}"
                    f"({', '.join(edge.child_columns)}): computing '{name}' scans the "
                    "whole table",
                    binder.catalog.index_statement(table, edge.child_columns),
                )


def _name_nodes(*exprs: Expr | None) -> Iterator[Name]:
    for expr in exprs:
        if expr is not None:
            yield from (node for node in expr.walk() if isinstance(node, Name))


def names_in(expr: Expr) -> set[str]:
    """The bare names (dates, `retain_until`) an expression reads."""
    return {node.name for node in _name_nodes(expr) if node.table is None}
