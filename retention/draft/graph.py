"""What belongs to a subject, guessed from the catalogue and the data, each guess with evidence.

From the subject table outwards: the foreign keys pointing at a table of the record (which a
policy follows by itself), the columns that look like a reference to the key of a table of the
record (by name and type, see :mod:`retention.catalog.references`) and whose values match
existing keys, and the polymorphic pairs (`object_class` + `object_id`) whose class names a
table of the record and whose ids match its keys. Until nothing new is found. A guess that the
data does not confirm, a class that names no table or a table outside the record, and a link
that would loop back are kept as doubts, for a human to decide.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from retention.catalog.introspect import Catalog, ForeignKey, Table
from retention.catalog.references import (
    CandidateReference,
    ClassMatch,
    MatchShare,
    PolymorphicPair,
    candidate_references,
    class_match,
    class_rows,
    class_tables,
    distinct_classes,
    match_share,
    polymorphic_pairs,
)
from retention.engines import Connection

QName = tuple[str, str]
Kind = Literal["foreign key", "column", "polymorphic"]

# A reference is taken when at least this share of the values read match an existing key:
# real change logs keep ids of rows deleted since, a column named like a key that holds
# something else matches far less.
MIN_SHARE = 0.9


@dataclass(frozen=True)
class Found:
    """Rows of `child` belong to the `parent` row whose key their `column` holds (for a
    polymorphic link: when their `class_column` is `class_value`). `evidence`: why, in words."""

    child: QName
    parent: QName
    kind: Kind
    column: str
    parent_key: str
    evidence: str
    class_column: str | None = None
    class_value: str | None = None


@dataclass(frozen=True)
class Doubt:
    """A guess not taken, with the evidence, for a human to decide. For a class of a
    polymorphic pair: the pair, the class, its rows, and the one table its name designates
    (None: none or several)."""

    table: QName
    what: str
    evidence: str
    pair: PolymorphicPair | None = None
    value: str | None = None
    target: QName | None = None


@dataclass(frozen=True)
class DraftGraph:
    """The subject, the tables found to belong to it (in the order found), how, and the doubts."""

    subject: Table
    key: str
    tables: tuple[QName, ...]
    links: tuple[Found, ...]
    doubts: tuple[Doubt, ...]
    excluded: tuple[tuple[QName, str], ...] = ()  # (table, why) for related.exclude

    def declared(self) -> tuple[Found, ...]:
        """The links a policy must declare (foreign keys are followed by themselves)."""
        return tuple(link for link in self.links if link.kind != "foreign key")


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.1f} %"


def _column_evidence(match: MatchShare) -> str:
    ref = match.reference
    return (
        f"{match.matching:,} of {match.values:,} values ({percent(match.share)}, {match.method}) "
        f"match {ref.target[1]}.{ref.target_key}; named like it ({ref.rule}); no foreign key"
    )


def _class_evidence(match: ClassMatch, rows: int) -> str:
    return (
        f"{rows:,} rows; {match.matching:,} of {match.values:,} ids ({percent(match.share)}, "
        f"{match.method}) match {match.target[1]}.{match.target_key}"
    )


@dataclass
class _Walk:
    conn: Connection
    catalog: Catalog
    subject: Table
    members: list[QName]
    links: list[Found] = field(default_factory=list)
    doubts: list[Doubt] = field(default_factory=list)
    seen: set[tuple[object, ...]] = field(default_factory=set)
    classes: dict[PolymorphicPair, dict[str, int]] = field(default_factory=dict)
    nullable: list[tuple[ForeignKey, QName]] = field(default_factory=list)

    def parents(self, child: QName) -> set[QName]:
        return {link.parent for link in self.links if link.child == child}

    def loops(self, child: QName, parent: QName) -> bool:
        """True when `child` is `parent` or one of its ancestors in the record."""
        todo, seen = [parent], set()
        while todo:
            table = todo.pop()
            if table == child:
                return True
            seen.add(table)
            todo += [p for p in self.parents(table) if p not in seen]
        return False

    def add(self, link: Found) -> None:
        self.links.append(link)
        if link.child not in self.members:
            self.members.append(link.child)

    def first(self, *key: object) -> bool:
        """True the first time `key` is asked about (each guess is weighed once)."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def draft_graph(conn: Connection, catalog: Catalog, subject: Table, key: str) -> DraftGraph:
    """Walk from `subject` until no new table is found (see the module's docstring)."""
    walk = _Walk(conn, catalog, subject, [subject.qname])
    candidates = candidate_references(catalog)
    pairs = [p for p in polymorphic_pairs(catalog) if p.table != subject.qname]
    grown = True
    while grown:
        before = (len(walk.members), len(walk.links))
        for parent in list(walk.members):
            _foreign_keys(walk, parent)
            _columns(walk, parent, [c for c in candidates if c.target == parent])
        for pair in pairs:
            _polymorphic(walk, pair)
        grown = (len(walk.members), len(walk.links)) != before
    for pair in pairs:
        walk.doubts += _classes_left(walk, pair)
    excluded = _nullable_keys(walk)
    return DraftGraph(
        subject, key, tuple(walk.members), tuple(walk.links), tuple(walk.doubts), excluded
    )


def _foreign_keys(walk: _Walk, parent: QName) -> None:
    # in the order of their names, whichever order the engine's catalogue lists them in
    for fk in sorted(walk.catalog.referencing(parent), key=lambda fk: (fk.table, fk.name)):
        if fk.table == parent or not walk.first("fk", fk.name, fk.table):
            continue
        columns = ", ".join(fk.columns)
        child = walk.catalog.tables[fk.table]
        if any(not child.columns[c].not_null for c in fk.columns):
            walk.nullable.append((fk, parent))  # decided once the record is known
            continue
        if fk.table == walk.subject.qname or walk.loops(fk.table, parent):
            walk.doubts.append(
                Doubt(
                    fk.table,
                    f"{fk.table[1]}.{columns} -> {parent[1]} (foreign key {fk.name})",
                    "makes the relation graph loop: list one table under related.exclude",
                )
            )
            continue
        walk.add(
            Found(
                fk.table,
                parent,
                "foreign key",
                columns,
                ", ".join(fk.ref_columns),
                f"foreign key {fk.name}, followed by the policy by itself",
            )
        )


def _nullable_keys(walk: _Walk) -> tuple[tuple[QName, str], ...]:
    """Foreign keys whose column may be NULL: a row that may refer to no parent refers to one
    (a stay's practitioner, a patient's family doctor) rather than belongs to it. Its table is
    excluded, unless another link makes it part of the record (the policy then follows the
    key too)."""
    excluded: dict[QName, str] = {}
    for fk, parent in walk.nullable:
        what = f"{fk.table[1]}.{', '.join(fk.columns)} -> {parent[1]} (foreign key {fk.name})"
        if fk.table in walk.members and not walk.loops(fk.table, parent):
            evidence = (
                f"nullable foreign key {fk.name}, followed by the policy by itself (the table "
                "belongs to the record through another link)"
            )
            walk.add(
                Found(
                    fk.table,
                    parent,
                    "foreign key",
                    ", ".join(fk.columns),
                    ", ".join(fk.ref_columns),
                    evidence,
                )
            )
        elif fk.table not in walk.members:
            excluded.setdefault(fk.table, what)
            walk.doubts.append(
                Doubt(
                    fk.table,
                    what,
                    f"nullable: its rows may refer to a {parent[1]} row without belonging to "
                    "it; listed under related.exclude (remove it there if they belong to it)",
                )
            )
    return tuple(excluded.items())


def _columns(walk: _Walk, parent: QName, candidates: list[CandidateReference]) -> None:
    for ref in candidates:
        if ref.table in (walk.subject.qname, parent) or not walk.first("column", ref):
            continue
        match = match_share(walk.conn, walk.catalog, ref)
        evidence = _column_evidence(match)
        what = f"{ref.table[1]}.{ref.column} -> {parent[1]}.{ref.target_key}"
        if match.share is None or match.share < MIN_SHARE:
            walk.doubts.append(Doubt(ref.table, what, f"not linked: {evidence}"))
        elif walk.loops(ref.table, parent):
            walk.doubts.append(Doubt(ref.table, what, f"not linked, it would loop: {evidence}"))
        else:
            walk.add(Found(ref.table, parent, "column", ref.column, ref.target_key, evidence))


def _class_counts(walk: _Walk, pair: PolymorphicPair) -> dict[str, int]:
    if pair not in walk.classes:
        table = walk.catalog.tables[pair.table]
        values = distinct_classes(walk.conn, table, pair.class_column).values
        rows = class_rows(walk.conn, table, pair.class_column, values) if values else ()
        walk.classes[pair] = {r.value: r.rows for r in rows}
    return walk.classes[pair]


def _polymorphic(walk: _Walk, pair: PolymorphicPair) -> None:
    for value, rows in _class_counts(walk, pair).items():
        targets = class_tables(walk.catalog, value)
        if len(targets) != 1 or targets[0] not in walk.members:
            continue  # decided later, or left for a human (see _classes_left)
        target = targets[0]
        if not walk.first("class", pair, value):
            continue
        what = f"{pair.table[1]}.{pair.class_column} = '{value}' -> {target[1]}"
        if len(walk.catalog.tables[target].primary_key) != 1 or target == pair.table:
            why = "the table has no one-column key to link to"
            walk.doubts.append(Doubt(pair.table, what, why, pair, value))
            continue
        match = class_match(walk.conn, walk.catalog, pair, value, target)
        evidence = _class_evidence(match, rows)
        if match.share is None or match.share < MIN_SHARE:
            why = f"not linked: {evidence}"
            walk.doubts.append(Doubt(pair.table, what, why, pair, value, target))
        elif walk.loops(pair.table, target):
            why = f"not linked, it would loop: {evidence}"
            walk.doubts.append(Doubt(pair.table, what, why, pair, value))
        else:
            walk.add(
                Found(
                    pair.table,
                    target,
                    "polymorphic",
                    pair.id_column,
                    match.target_key,
                    evidence,
                    pair.class_column,
                    value,
                )
            )


def _classes_left(walk: _Walk, pair: PolymorphicPair) -> Iterator[Doubt]:
    """The classes of a pair that no link took: each on its own line when the table is part of
    the record, else one line for the table."""
    counts = _class_counts(walk, pair)
    left = {v: n for v, n in counts.items() if ("class", pair, v) not in walk.seen}
    if not left:
        return
    reasons = {v: _why_not(walk, v) for v in left}
    if pair.table in walk.members:
        for value, rows in left.items():
            yield Doubt(
                pair.table,
                f"{pair.table[1]}.{pair.class_column} = '{value}'",
                f"{rows:,} rows; {reasons[value]}",
                pair,
                value,
            )
        return
    shown = ", ".join(f"'{v}' ({n:,} rows: {reasons[v]})" for v, n in list(left.items())[:8])
    more = f", and {len(left) - 8} more" if len(left) > 8 else ""
    yield Doubt(
        pair.table,
        f"{pair.table[1]}.{pair.class_column} + {pair.id_column}",
        f"no class links it to this record: {shown}{more}",
    )


def _why_not(walk: _Walk, value: str) -> str:
    targets = class_tables(walk.catalog, value)
    if not targets:
        return "no table is named like this class"
    if len(targets) > 1:
        return "several tables fit: " + ", ".join(t[1] for t in targets)
    return f"names {targets[0][1]}, which is not part of this record"
