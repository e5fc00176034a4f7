"""Checks of a bound policy that read the data, not only the catalogue.

- Polymorphic classes the policy does not map: every value of a declared class column
  (`object_class`) must be mapped to a table (`classes`) or declared outside the record with a
  reason (`unrelated_classes`); otherwise the rows of that class are in no record, and a purge
  leaves those of purged subjects behind. `check` reports them; a run checks again before its
  first destructive batch (retention.engine.gates) and refuses the phase.
- Links without a foreign key: columns that look like references to a table of the record
  (retention.catalog.references) that the policy neither follows nor excludes, with the share
  of their values that match a key.

- Generalisations that cannot change their column: a text column generalised to a date or a
  postal code none of whose values has that shape (`generalize {column: nom, to: year}`).
  Every command refuses them (retention.policy.check.bind_all), not only `check`.

Problems name tables, columns, class names and counts, never a value of a row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from retention.catalog.introspect import Table
from retention.catalog.references import (
    CLASS_LIMIT,
    SAMPLE_VALUES,
    CandidateReference,
    ClassRows,
    MatchShare,
    candidate_references,
    class_rows,
    distinct_classes,
    match_share,
)
from retention.engines import Connection, engine_of, sql
from retention.engines.clock import TEXT_DATE_FORMATS, clock_sql
from retention.engines.sql import Params
from retention.errors import Problem
from retention.policy.actions import (
    DEPARTMENT_SHAPE,
    POSTAL_CODE_SHAPE,
    TEXT_DATE_SHAPE,
    spec_of,
)
from retention.policy.bound import BoundColumn, BoundDate, BoundPolicy
from retention.policy.expr.nodes import Name
from retention.policy.relations import QName

# What a class name looks like (PHP classes, with namespaces): anything else is not shown.
_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\\.:-]{0,79}")


@dataclass(frozen=True)
class ClassColumn:
    """A polymorphic class column of the record, and the classes the policy knows on it
    (mapped to a table, or declared unrelated), from its links (`links`: their positions in
    related.links; a column may be linked more than once)."""

    table: Table
    column: str
    known: frozenset[str]
    links: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{self.table.label}.{self.column}"


@dataclass(frozen=True)
class UnmappedClasses:
    """The classes found in a class column that the policy does not know, with their rows;
    `complete` is False when the column holds more distinct values than were read."""

    column: ClassColumn
    classes: tuple[ClassRows, ...]
    complete: bool = True

    def describe(self) -> str:
        """'CFile (867 rows), CMedecin (518 rows)': names shaped like class names only, and
        none when the column holds over a thousand distinct values (free text, not classes)."""
        if not self.complete:
            return (
                f"over {CLASS_LIMIT:,} distinct values, not shown ({len(self.classes):,} read, "
                f"{sum(c.rows for c in self.classes):,} rows): a class column holds class "
                "names, is class_column the right column?"
            )
        return ", ".join(f"{class_label(c.value)} ({c.rows:,} rows)" for c in self.classes)

    def to_json(self) -> dict[str, Any]:
        """For the audit trail: names and counts (no name when the column is not complete;
        values not shaped like a class name are counted together under their description)."""
        classes: dict[str, int] = {}
        for c in self.classes if self.complete else ():
            classes[class_label(c.value)] = classes.get(class_label(c.value), 0) + c.rows
        return {
            "table": self.column.table.label,
            "column": self.column.column,
            "classes": classes,
            "complete": self.complete,
        }


def class_label(value: str) -> str:
    """The class name as it may be shown, or a description when the value does not look like
    a class name (a class column might hold anything; a personal value is never shown)."""
    if _CLASS_NAME.fullmatch(value):
        return value
    return f"<a value not shaped like a class name, {len(value)} characters>"


def class_columns(policy: BoundPolicy) -> list[ClassColumn]:
    """The record's polymorphic class columns (links on a table outside the record are left
    out: none of their rows belong to it)."""
    found: dict[tuple[QName, str], tuple[set[str], list[int]]] = {}
    for i, link in enumerate(policy.loaded.policy.related.links):
        poly = link.polymorphic
        table = policy.catalog.find(link.table)
        if poly is None or table is None or table.qname not in policy.graph.tables:
            continue
        known, links = found.setdefault((table.qname, poly.class_column), (set(), []))
        known.update(poly.classes, poly.unrelated_classes)
        links.append(i)
    return [
        ClassColumn(policy.catalog.tables[qname], column, frozenset(known), tuple(links))
        for (qname, column), (known, links) in found.items()
    ]


def unmapped_classes(conn: Connection, policy: BoundPolicy) -> list[UnmappedClasses]:
    """Each class column of the record holding classes the policy does not know, with the
    rows of each such class (the distinct values are read by a loose index scan when an index
    leads with the column, and only the unknown classes are counted)."""
    out = []
    for column in class_columns(policy):
        present = distinct_classes(conn, column.table, column.column)
        unknown = [v for v in present.values if v not in column.known]
        if unknown or not present.complete:
            rows = class_rows(conn, column.table, column.column, unknown) if unknown else ()
            out.append(UnmappedClasses(column, rows, present.complete))
    return out


def destructive(policy: BoundPolicy) -> bool:
    """The policy has a phase that removes whole records (purge, archive)."""
    return any(spec_of(p.action).removes_records for p in policy.phases)


def data_problems(
    conn: Connection, policies: list[BoundPolicy], *, sample: int = SAMPLE_VALUES
) -> list[Problem]:
    """Unmapped classes (errors for a policy that purges or archives, warnings otherwise) and
    unfollowed reference columns (warnings) of every policy."""
    problems: list[Problem] = []
    for policy in policies:
        problems += _class_problems(conn, policy)
        problems += _reference_problems(conn, policy, sample)
        problems += format_problems(conn, policy)
        problems += left_out_rows(conn, policy)
    return problems


def left_out_rows(conn: Connection, policy: BoundPolicy) -> list[Problem]:
    """`if_missing: "null"` on the latest of a column leaves out the rows where it is empty:
    a stay with no discharge date is a patient in the ward, and their clock then runs from
    their earlier stays alone. Deliberate, and documented; said by check when such rows exist
    (a compliance officer's finding: the due count went up with it, without a word)."""
    problems = []
    for name, date_ in policy.dates.items():
        if (
            date_.kind != "aggregate"
            or date_.if_missing != "null"
            or date_.over is None
            or not isinstance(date_.value, Name)
            or date_.value.table not in (None, date_.over.name)
        ):
            continue
        column = date_.over.columns.get(date_.value.name)
        if column is None or column.not_null:
            continue
        row = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} IS NULL LIMIT {}) AS s"
            ).format(
                sql.Identifier(*date_.over.qname),
                sql.Identifier(column.name),
                sql.Literal(SAMPLE),
            )
        ).fetchone()
        empty = int(row[0]) if row else 0
        if not empty:
            continue
        many = f"{empty:,}" + ("+" if empty >= SAMPLE else "")
        function = "latest" if date_.function == "max" else "earliest"
        problems.append(
            Problem(
                policy.loaded.location(("dates", name, "if_missing")),
                f'if_missing: "null" leaves out the {many} {date_.over.name} row(s) whose '
                f"{column.name} is empty (a stay still open?): their subjects are judged on "
                "their other rows",
                f"if such a row counts as today, write '{function}: coalesce({column.name}, "
                "today)' instead; leave it only if those rows are meant to count for nothing",
                "warning",
            )
        )
    return problems


def format_problems(conn: Connection, policy: BoundPolicy) -> list[Problem]:
    """A text date whose `format` reads none (or less than half) of the column's first
    `SAMPLE` values: each subject it cannot read is undeterminable, kept and never purged, so
    a wrong format silently stops every purge (a compliance officer's finding: `format:
    YYYY-MM-DD` over DD/MM/YYYY values, 'ok' from check, then 46 of 46 patients
    undeterminable). Said with the format that reads them best, when one does."""
    problems = []
    for name, date_ in policy.dates.items():
        if date_.format is None:
            continue
        for table, column in _text_columns(policy, date_):
            problem = _format_problem(conn, policy, name, date_.format, table, column)
            if problem is not None:
                problems.append(problem)
    return problems


def _text_columns(policy: BoundPolicy, date_: BoundDate) -> list[tuple[Table, str]]:
    """The text columns a date reads in its format: the subject's column, or those of the
    rows an aggregate's value reads (its filter reads text as text)."""
    if date_.kind == "column" and date_.column is not None:
        return [(policy.subject, date_.column.name)]
    if date_.kind != "aggregate" or date_.over is None or date_.value is None:
        return []
    tables = {date_.over.name: date_.over, **{j.table.name: j.table for j in date_.joins}}
    found: dict[tuple[QName, str], tuple[Table, str]] = {}
    for node in date_.value.walk():
        if isinstance(node, Name):
            table = tables.get(node.table or date_.over.name)
            column = table.columns.get(node.name) if table is not None else None
            if table is not None and column is not None and column.is_text:
                found.setdefault((table.qname, column.name), (table, column.name))
    return list(found.values())


def _format_problem(
    conn: Connection, policy: BoundPolicy, name: str, fmt: str, table: Table, column: str
) -> Problem | None:
    """The warning for one text column a date reads in `fmt`, when `fmt` reads less than half
    of its first values."""
    read, seen = _readable(conn, table, column)
    wanted = read.get(fmt, 0)
    if not seen or wanted * 2 >= seen:
        return None
    best = max(read, key=lambda f: read[f])
    label = f"{table.name}.{column}"
    said = (
        f"none of the first {seen:,} value(s) of {label} reads as {fmt}"
        if not wanted
        else f"only {wanted:,} of the first {seen:,} value(s) of {label} read as {fmt}"
    )
    return Problem(
        policy.loaded.location(("dates", name, "format")),
        said + ": the subjects of the others are undeterminable (kept, never purged)",
        f"they read as {best} ({read[best]:,} of {seen:,}): write format: {best}"
        if read[best] > wanted
        else "check the column's values: dates written otherwise cannot be read",
        "warning",
    )


def _readable(conn: Connection, table: Table, column: str) -> tuple[dict[str, int], int]:
    """How many of the column's first `SAMPLE` non-NULL values each text date format reads,
    and how many were read."""
    clock = clock_sql(conn)
    params = Params("f")
    value = sql.Identifier("v")
    formats = list(TEXT_DATE_FORMATS)
    query = sql.SQL(
        "SELECT {counts}, count(*) FROM (SELECT {c} AS v FROM {t} WHERE {c} IS NOT NULL "
        "LIMIT {n}) AS s"
    ).format(
        counts=sql.SQL(", ").join(
            sql.SQL("coalesce(sum(CASE WHEN {} IS NOT NULL THEN 1 ELSE 0 END), 0)").format(
                clock.text_date(value, f, params)
            )
            for f in formats
        ),
        c=sql.Identifier(column),
        t=sql.Identifier(*table.qname),
        n=params.add(SAMPLE),
    )
    row = conn.execute(query, params.values).fetchone()
    if row is None:
        return {}, 0
    return {f: int(n) for f, n in zip(formats, row, strict=False)}, int(row[-1])


def _class_problems(conn: Connection, policy: BoundPolicy) -> list[Problem]:
    severity = "error" if destructive(policy) else "warning"
    problems = []
    for found in unmapped_classes(conn, policy):
        where = ("related", "links", found.column.links[0], "polymorphic", "classes")
        effect = (
            "a purge or archive would leave the rows of purged subjects behind"
            if severity == "error"
            else "the phases do not reach them"
        )
        what = f"{len(found.classes)} class(es)" if found.complete else "values"
        problems.append(
            Problem(
                policy.loaded.location(where),
                f"{found.column.label} holds {what} that this policy "
                f"neither maps nor declares unrelated: {found.describe()}; their rows belong to "
                f"no record, so {effect}",
                "map each class to its table under 'classes', or declare it outside the record "
                "with the reason: 'unrelated_classes: {CFoo: \"why its rows are not part of "
                "the record\"}'",
                severity,
            )
        )
    return problems


def _reference_problems(conn: Connection, policy: BoundPolicy, sample: int) -> list[Problem]:
    related = policy.loaded.policy.related
    excluded = {t.qname for name in related.exclude if (t := policy.catalog.find(name))}
    targets = {
        qname: table.primary_key[0]
        for qname in policy.graph.tables
        if len((table := policy.catalog.tables[qname]).primary_key) == 1
    }
    targets[policy.subject.qname] = policy.key.name
    followed = _followed(policy)
    where = ("related", "links") if related.links else ("related",)
    problems = []
    candidates = candidate_references(
        policy.catalog, targets, tables=set(policy.catalog.tables) - excluded
    )
    for candidate in candidates:
        if (candidate.table, candidate.column) in followed:
            continue
        share = match_share(conn, policy.catalog, candidate, limit=sample)
        problems.append(
            Problem(
                policy.loaded.location(where),
                _reference_message(policy, candidate, share),
                _reference_hint(policy, candidate),
                "warning",
            )
        )
    return problems


def _followed(policy: BoundPolicy) -> set[tuple[QName, str]]:
    """(table, column) of every link the policy follows or declares (a declared link whose
    parent is not in the record still serves the joins of dates)."""
    out = {(e.child, c) for e in policy.graph.edges for c in e.child_columns}
    out |= {(e.child, e.class_column) for e in policy.graph.edges if e.class_column}
    for link in policy.loaded.policy.related.links:
        table = policy.catalog.find(link.table)
        if table is None:
            continue
        if link.column is not None:
            out.add((table.qname, link.column))
        if link.polymorphic is not None:
            out |= {
                (table.qname, link.polymorphic.id_column),
                (table.qname, link.polymorphic.class_column),
            }
    return out


_RULES = {
    "key name": "the key's name",
    "table name": "the table's name",
    "key suffix": "a name ending with the key's",
}


def _reference_message(
    policy: BoundPolicy, candidate: CandidateReference, share: MatchShare
) -> str:
    table = policy.catalog.tables[candidate.table]
    column = table.columns[candidate.column]
    target = candidate.target[1]
    if share.values:
        matched = (
            f"{share.matching:,} of {share.values:,} values read ({share.share:.0%}) match a key "
            f"of {target} ({share.method}, each looked up in the key's index)"
        )
    else:
        matched = "it holds no value yet"
    return (
        f"{table.label}.{candidate.column} ({column.type}) looks like a reference to "
        f"{target}.{candidate.target_key} ({_RULES[candidate.rule]}) without a foreign key, "
        f"and this policy neither follows nor excludes it: {matched}"
    )


def _reference_hint(policy: BoundPolicy, candidate: CandidateReference) -> str:
    references = (
        "" if candidate.target == policy.subject.qname else f", references: {candidate.target[1]}"
    )
    link = f"{{table: {candidate.table[1]}, column: {candidate.column}{references}}}"
    if candidate.table in policy.graph.tables:
        return (
            f"if its value designates a row of the record, declare the link under related.links: "
            f"{link}"
        )
    return (
        f"if its rows belong to the record, declare the link under related.links: {link}; "
        f"otherwise list {candidate.table[1]} under related.exclude"
    )


# Values read to tell whether a generalisation can change a column (`unchangeable_columns`).
SAMPLE = 1_000


def unchangeable_columns(conn: Connection, policy: BoundPolicy) -> list[Problem]:
    """An error for each text column that a generalisation cannot change: its type fits (text
    dates and postal codes are text) but none of its first `SAMPLE` values has the shape the
    generalisation changes (`generalize {column: nom, to: year}` would leave every name as it
    is, and the column would pass for minimised); a warning counting the values it would
    leave as they are when only some lack the shape. Values it already wrote (a department,
    `75`) are done, neither: a column the tool generalised whole is accepted, as is an empty
    one (nothing to change yet). Only counts are read, never a value."""
    problems = []
    for i, phase in enumerate(policy.phases):
        spec = spec_of(phase.action)
        for j, item in enumerate(phase.columns):
            shape = spec.shape(item.spec, item.column)
            if shape is None:
                continue
            shaped, done, seen = _shaped(conn, item, shape)
            where = policy.loaded.location(("phases", i, "columns", j))
            label = f"{item.table.name}.{item.column.name}"
            unshaped = seen - done - shaped
            if unshaped and not shaped:
                problems.append(
                    Problem(
                        where,
                        f"{phase.action} to {item.spec.to} cannot change {label}: none of its "
                        f"first {seen:,} value(s) has the shape it changes ({_SHAPES[shape]})",
                        "act on another column, or use another action (erase, pseudonymize)",
                    )
                )
            elif unshaped:  # an outside review: foreign postcodes stayed whole, unsaid
                problems.append(
                    Problem(
                        where,
                        f"{phase.action} to {item.spec.to} leaves {unshaped:,} of the "
                        f"first {seen:,} value(s) of {label} as they are: they are not "
                        f"{_SHAPES[shape]}",
                        "correct those values, or erase them in a phase of their own",
                        "warning",
                    )
                )
    return problems


_SHAPES = {
    TEXT_DATE_SHAPE: "a date written YYYY-MM-DD",
    POSTAL_CODE_SHAPE: "a postal code of 5 digits",
}
# What the generalisation leaves of a value of the shape, when that is not the shape itself
_DONE = {POSTAL_CODE_SHAPE: DEPARTMENT_SHAPE}


def _shaped(conn: Connection, item: BoundColumn, shape: str) -> tuple[int, int, int]:
    """(values with the shape, values the generalisation already wrote, values read) among
    the first `SAMPLE` non-NULL values."""
    dialect = engine_of(conn).dialect
    params = Params("s")
    # read exactly (PostgreSQL: COLLATE "C", pattern matching refuses nondeterministic
    # collations); the shapes are ASCII
    value = dialect.exact_text(sql.SQL("v"))
    matched = dialect.matches(value, shape, params)
    done_shape = _DONE.get(shape)
    done = sql.SQL("false") if done_shape is None else dialect.matches(value, done_shape, params)
    query = sql.SQL(
        "SELECT coalesce(sum(CASE WHEN {m} THEN 1 ELSE 0 END), 0), "
        "coalesce(sum(CASE WHEN {d} THEN 1 ELSE 0 END), 0), count(*) "
        "FROM (SELECT {c} AS v FROM {t} WHERE {c} IS NOT NULL LIMIT {n}) AS s"
    ).format(
        m=matched,
        d=done,
        c=sql.Identifier(item.column.name),
        t=sql.Identifier(*item.table.qname),
        n=params.add(SAMPLE),
    )
    row = conn.execute(query, params.values).fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)
