"""References the schema does not declare: what the catalogue and the data say about them.

Real hospital schemas (Mediboard first) declare few foreign keys or none: `patient_id` is a
plain column, and `object_class` + `object_id` pairs point at any object by its class name.
This module finds such references and measures them; it knows nothing of policies:

- :func:`candidate_references`: columns whose name and type look like a reference to the key of
  a table (catalogue only, no SQL);
- :func:`match_share`: how many of a candidate column's values match an existing key (reads a
  bounded number of values);
- :func:`distinct_classes` and :func:`class_rows`: the values of a polymorphic class column, and
  how many rows each has.

Every query is built from catalogue names with :mod:`retention.engines.sql`, what differs
between engines asked of the engine; values go as parameters.
Results hold names and counts only, never a value of a reference column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from retention.catalog.introspect import Catalog, Column, Table
from retention.engines import Connection, engine_of, sql
from retention.engines.sql import Params

QName = tuple[str, str]
Rule = Literal["key name", "table name", "key suffix"]

# Keys too common to say anything by themselves: `<something>_id` is no reference to every
# table whose key is `id`; only `<table>_id` is.
GENERIC_KEYS = frozenset({"id", "oid", "uuid", "guid", "pk", "key", "code", "num", "no", "nr"})
SAMPLE_VALUES = 10_000
CLASS_LIMIT = 1_000


@dataclass(frozen=True)
class CandidateReference:
    """`table.column` looks like a reference to `target.target_key`, by `rule`:

    - 'key name': the column has the key's name (`consultations.patient_id` and
      `patients.patient_id`);
    - 'table name': the column is `<table>_id` or `<table>_<key>`, the table's name also taken
      without a final 's' (`stays.person_code` and `persons.code`, `visits.patient_id` and
      `patient.id`);
    - 'key suffix': the column ends with `_<key>` (`transfers.from_patient_id`), for a key
      that is not generic (see GENERIC_KEYS).

    The column's type fits the key's (both numbers, both text, or the same type)."""

    table: QName
    column: str
    target: QName
    target_key: str
    rule: Rule

    @property
    def label(self) -> str:
        """'public.consultations.patient_id -> public.patients.patient_id'."""
        return (
            f"{self.table[0]}.{self.table[1]}.{self.column} -> "
            f"{self.target[0]}.{self.target[1]}.{self.target_key}"
        )


@dataclass(frozen=True)
class MatchShare:
    """Of `values` non-NULL values of the candidate's column read, `matching` equal a key of
    the target table. `sampled`: only part of the table was read (see `method`), so both are
    counts in that part, not in the whole table. `method` says how, in words for a person."""

    reference: CandidateReference
    values: int
    matching: int
    sampled: bool
    method: str

    @property
    def share(self) -> float | None:
        """matching / values, or None when no value was read."""
        return self.matching / self.values if self.values else None


@dataclass(frozen=True)
class ClassValues:
    """The distinct non-NULL values of a polymorphic class column, sorted; `complete` is False
    when there were more than the limit asked for (then `values` holds the first ones)."""

    values: tuple[str, ...]
    complete: bool


@dataclass(frozen=True)
class ClassRows:
    """How many rows of a polymorphic table have `value` in their class column."""

    value: str
    rows: int


def single_keys(catalog: Catalog) -> dict[QName, str]:
    """Every table with a one-column primary key, and that column: the default targets of
    :func:`candidate_references`."""
    return {
        qname: table.primary_key[0]
        for qname, table in catalog.tables.items()
        if len(table.primary_key) == 1
    }


def candidate_references(
    catalog: Catalog,
    targets: Mapping[QName, str] | None = None,
    *,
    tables: Iterable[QName] | None = None,
) -> list[CandidateReference]:
    """Columns that look like references to the `targets` (table -> its key column; by
    default every table with a one-column primary key, :func:`single_keys`), found in `tables`
    (default: every table of the catalogue). Catalogue only: no SQL is run.

    Left out: a target's own key column; a table's own one-column primary key filled by a
    sequence (`serial`, MariaDB's AUTO_INCREMENT: its values are made here, not copied from
    another table); columns already part of a foreign key of their table (declared
    references); columns whose type cannot hold the key's values. A column may look like a
    reference to several targets: one candidate each. Sorted by table, column and target."""
    wanted = single_keys(catalog) if targets is None else dict(targets)
    where = sorted(catalog.tables if tables is None else set(tables))
    declared = {(fk.table, c) for fk in catalog.foreign_keys for c in fk.columns}
    found: list[CandidateReference] = []
    for qname in where:
        table = catalog.tables.get(qname)
        if table is None:
            continue
        for column in table.columns.values():
            if (qname, column.name) in declared:
                continue
            for target, key in sorted(wanted.items()):
                rule = _rule(column, table, catalog.tables.get(target), key)
                if rule is not None:
                    found.append(CandidateReference(qname, column.name, target, key, rule))
    return found


def _rule(column: Column, table: Table, target: Table | None, key: str) -> Rule | None:
    """Why `column` of `table` looks like a reference to `target.key`, or None."""
    key_column = target.columns.get(key) if target is not None else None
    if target is None or key_column is None or not _fits(column, key_column):
        return None
    if table.qname == target.qname and column.name == key:
        return None
    numbered = column.auto_increment or (column.default or "").startswith("nextval(")
    if table.primary_key == (column.name,) and numbered:
        return None  # the table's own generated key, not a copy of another's
    name, lower_key = column.name.lower(), key.lower()
    if table.primary_key == (column.name,) and name != lower_key and _names_itself(name, table):
        # `correspondant_patient.correspondant_patient_id`: the table's own key, named after
        # it; in a 1:1 table its values often equal the patients' keys, which would make it
        # look like a link (an outside review: draft proposed it, and a purge following it
        # would delete another patient's row)
        return None
    generic = lower_key in GENERIC_KEYS or len(lower_key) <= 2
    if name == lower_key and not generic:
        return "key name"
    table_names = {target.name.lower()}
    if target.name.lower().endswith("s") and len(target.name) > 3:
        table_names.add(target.name.lower()[:-1])
    if name in {f"{t}_{k}" for t in table_names for k in ("id", lower_key)}:
        return "table name"
    if not generic and name.endswith(f"_{lower_key}") and len(name) > len(lower_key) + 1:
        return "key suffix"
    return None


def _names_itself(name: str, table: Table) -> bool:
    """`name` is `<table>_id` or `<table>_key`... (the table's name also without a final
    's'): the table's own identifier."""
    own = table.name.lower()
    names = {own, own[:-1]} if own.endswith("s") and len(own) > 3 else {own}
    return any(name.startswith(f"{t}_") and "_" not in name[len(t) + 1 :] for t in names)


def _fits(column: Column, key: Column) -> bool:
    """`column` can hold `key`'s values: both numbers, both text, or the same type."""
    if column.is_number or key.is_number:
        return column.is_number and key.is_number
    if column.is_text or key.is_text:
        return column.is_text and key.is_text
    return column.base_type == key.base_type


def match_share(
    conn: Connection,
    catalog: Catalog,
    reference: CandidateReference,
    *,
    limit: int = SAMPLE_VALUES,
) -> MatchShare:
    """Read at most `limit` non-NULL values of the candidate's column and count those equal to
    a key of the target table, each looked up in the key's unique index (one index probe per
    value: the cost is bounded by `limit`, whatever the tables' sizes).

    A table estimated (`Table.estimated_rows`) at more than `limit` rows is sampled, the same
    rows for the same data (`Sampler.spread_rows`: PostgreSQL random blocks, `TABLESAMPLE
    SYSTEM ... REPEATABLE`; MariaDB ranges of its key from random starts), about twice `limit`
    rows, of which `limit` non-NULL values are kept in the order of a hash of their value (not
    the first ones: blocks are read in table order, and the first would all come from the
    start of the table). A smaller table is read from its start up to
    `limit` values (all of it when it holds fewer). Runs in the caller's transaction state
    (autocommit: one statement)."""
    values, matching, sampled, method = _match(
        conn,
        catalog.tables[reference.table],
        reference.column,
        catalog.tables[reference.target],
        reference.target_key,
        limit,
    )
    return MatchShare(reference, values, matching, sampled, method)


def _match(
    conn: Connection,
    table: Table,
    column: str,
    target: Table,
    key: str,
    limit: int,
    only: tuple[str, str] | None = None,
) -> tuple[int, int, bool, str]:
    """(values read, values matching a key, sampled, method) for :func:`match_share`; `only`:
    read the rows whose column `only[0]` equals `only[1]` (a polymorphic class) only."""
    engine = engine_of(conn)
    columns = [column] if only is None else [column, only[0]]
    spread = engine.sampler.spread_rows(conn, table, columns, limit)
    name = sql.Identifier(column)
    source, order = (
        (spread.source, sql.SQL("ORDER BY {}").format(engine.sampler.spread_order(name)))
        if spread is not None
        else (sql.Identifier(*table.qname), sql.SQL(""))
    )
    params: list[object] = []
    condition: sql.Composable = sql.SQL("")
    if only is not None:
        # the class as written, exactly (as distinct_classes and class_rows read it), after
        # the column's own equality, which an index on it answers
        by = sql.Identifier(only[0])
        exact = engine_of(conn).dialect.exact_text(by)
        condition = sql.SQL("AND {} = %s AND {} = %s").format(by, exact)
        params += [only[1], only[1]]
    query = sql.SQL(
        "SELECT count(*), coalesce(sum(CASE WHEN EXISTS "
        "(SELECT 1 FROM {target} AS k WHERE k.{key} = v.c) THEN 1 ELSE 0 END), 0) "
        "FROM (SELECT {column} AS c FROM {source} WHERE {column} IS NOT NULL "
        "{condition} {order} LIMIT %s) AS v"
    ).format(
        target=sql.Identifier(*target.qname),
        key=sql.Identifier(key),
        column=name,
        source=source,
        condition=condition,
        order=order,
    )
    row = conn.execute(query, (*params, limit)).fetchone()
    values, matching = (int(row[0]), int(row[1])) if row else (0, 0)
    if spread is not None:
        return values, matching, True, f"{spread.method}, at most {limit:,} values"
    if values >= limit:
        return values, matching, True, f"the first {limit:,} values"
    return values, matching, False, "every value"


def distinct_classes(
    conn: Connection, table: Table, column: str, *, limit: int = CLASS_LIMIT
) -> ClassValues:
    """The distinct non-NULL values of `table.column` (a polymorphic class column), at most
    `limit` of them. With an index whose first column is `column`, a loose index scan (one
    index probe per distinct value, so cheap on a change log of millions of rows); without,
    one `SELECT DISTINCT` over the table (its cost grows with the table). Each value is read
    as text, as the links compare it (`object_class = 'CPatient'::text`): a `char(n)` value
    without its padding, and 'cpatient' apart from 'CPatient' in a `citext` column."""
    name = sql.Identifier(column)
    source = sql.Identifier(*table.qname)
    dialect = engine_of(conn).dialect
    # citext's own equality folds case, the links' (as text) does not: no loose scan on it;
    # nor under a collation that folds case (MariaDB): the scan would step over 'cpatient'
    # after 'CPatient', and each value is read exactly
    loose = dialect.compares_text_exactly and table.columns[column].base_type != "citext"
    if table.is_indexed([column]) and loose:
        query = sql.SQL(
            "WITH RECURSIVE d(v) AS ("
            "(SELECT {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1) "
            "UNION ALL "
            "SELECT (SELECT {c} FROM {t} WHERE {c} > d.v ORDER BY {c} LIMIT 1) "
            "FROM d WHERE d.v IS NOT NULL) "
            "SELECT {v} FROM d WHERE v IS NOT NULL LIMIT %s"
        ).format(c=name, t=source, v=dialect.as_text(sql.SQL("v")))
    else:
        query = sql.SQL(
            "SELECT DISTINCT {v} FROM {t} WHERE {c} IS NOT NULL ORDER BY 1 LIMIT %s"
        ).format(c=name, t=source, v=dialect.exact_text(name))
    values = [str(v) for (v,) in conn.execute(query, (limit + 1,))]
    return ClassValues(tuple(values[:limit]), len(values) <= limit)


def class_rows(
    conn: Connection,
    table: Table,
    column: str,
    classes: Iterable[str] | None = None,
) -> tuple[ClassRows, ...]:
    """Rows per value of `table.column`: of the `classes` given (each counted through an
    index on the column when there is one; a class with no row is left out), or of every
    non-NULL value (one pass over the whole table). Compared and read as text, as the links
    compare them. Sorted by value."""
    name = sql.Identifier(column)
    source = sql.Identifier(*table.qname)
    dialect = engine_of(conn).dialect
    params = Params("c")
    wanted = None if classes is None else sorted(set(classes))
    which = (
        sql.SQL("IS NOT NULL")
        if wanted is None
        else sql.SQL("IN ({})").format(
            sql.SQL(", ").join(dialect.text_parameter(params, v) for v in wanted)
        )
    )
    query = sql.SQL("SELECT {v}, count(*) FROM {t} WHERE {c} {which} GROUP BY 1 ORDER BY 1")
    value = dialect.exact_text(name) if wanted is not None else dialect.as_text(name)
    rows = conn.execute(
        query.format(v=value, c=name, t=source, which=which), params.values
    ).fetchall()
    # under a collation that folds case, `IN` also finds the other spellings: counted apart
    return tuple(ClassRows(str(v), int(n)) for v, n in rows if wanted is None or str(v) in wanted)


# -- polymorphic pairs ----------------------------------------------------------------------
# `object_class` + `object_id` (Mediboard), `commentable_type` + `commentable_id` (Rails).
CLASS_SUFFIXES = ("_class", "_type", "_classname", "_model")


@dataclass(frozen=True)
class PolymorphicPair:
    """`table.class_column` names a class and `table.id_column` the key of a row of it."""

    table: QName
    class_column: str
    id_column: str

    @property
    def label(self) -> str:
        return f"{self.table[1]}.{self.class_column} + {self.id_column}"


@dataclass(frozen=True)
class ClassMatch:
    """Of the rows of `pair.table` whose class column is `value`: `values` non-NULL ids read,
    `matching` equal to a key of `target.target_key` (see :func:`match_share` for `sampled`
    and `method`)."""

    pair: PolymorphicPair
    value: str
    target: QName
    target_key: str
    values: int
    matching: int
    sampled: bool
    method: str

    @property
    def share(self) -> float | None:
        return self.matching / self.values if self.values else None


def polymorphic_pairs(
    catalog: Catalog, tables: Iterable[QName] | None = None
) -> list[PolymorphicPair]:
    """Pairs of a text column `<p>_class` (or `_type`, `_classname`, `_model`) and a column
    `<p>_id` of the same table (a number or text), not declared in a foreign key. Catalogue
    only. Sorted by table and columns."""
    declared = {(fk.table, c) for fk in catalog.foreign_keys for c in fk.columns}
    found: list[PolymorphicPair] = []
    for qname in sorted(catalog.tables if tables is None else set(tables)):
        table = catalog.tables.get(qname)
        if table is None:
            continue
        by_name = {name.lower(): column for name, column in table.columns.items()}
        for lower, column in sorted(by_name.items()):
            prefix = next((lower[: -len(s)] for s in CLASS_SUFFIXES if lower.endswith(s)), "")
            ids = by_name.get(f"{prefix}_id") if prefix else None
            if not column.is_text or ids is None or not (ids.is_number or ids.is_text):
                continue
            if (qname, ids.name) not in declared:
                found.append(PolymorphicPair(qname, column.name, ids.name))
    return found


def class_tables(catalog: Catalog, value: str) -> list[QName]:
    """Tables a class name designates, by the table's name or its key's: 'CSejour' (a
    Mediboard class: a leading C) -> `sejours` or a table keyed `sejour_id`; a namespaced
    'App.Models.MedicalFile' -> `medical_files`, `medicalfiles`, `medical_file_id`... Several
    when the name is ambiguous, none when no table fits; tables matched by name first, by key
    only when none is."""
    stems = _class_stems(value)
    if not stems:
        return []
    by_name, by_key = [], []
    plurals = {f"{stem}{end}" for stem in stems for end in ("", "s", "es", "x")}
    keys = {f"{stem}{end}" for stem in stems for end in ("_id", "id")}
    for qname, table in sorted(catalog.tables.items()):
        name = table.name.lower()
        if {name, name.replace("_", "")} & plurals:
            by_name.append(qname)
        elif len(table.primary_key) == 1 and table.primary_key[0].lower() in keys:
            by_key.append(qname)
    return by_name or by_key


def _class_stems(value: str) -> set[str]:
    """'CConsultAnesth' -> {'consult_anesth', 'consultanesth', 'cconsult_anesth', ...}."""
    last = re.split(r"[\\./:]+", value.strip())[-1]
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", last):
        return set()
    bases = {last}
    if re.match(r"C[A-Z]", last) or re.fullmatch(r"c[a-z]+", last):
        bases.add(last[1:])  # Mediboard's classes: CPatient, CSejour (also written csejour)
    stems = set()
    for base in bases:
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()
        stems |= {snake, snake.replace("_", "")}
    return stems


def class_match(
    conn: Connection,
    catalog: Catalog,
    pair: PolymorphicPair,
    value: str,
    target: QName,
    *,
    limit: int = SAMPLE_VALUES,
) -> ClassMatch:
    """How many ids of the rows of class `value` equal a key of `target` (its one-column
    primary key), read as :func:`match_share` reads a column."""
    table = catalog.tables[target]
    key = table.primary_key[0]
    values, matching, sampled, method = _match(
        conn,
        catalog.tables[pair.table],
        pair.id_column,
        table,
        key,
        limit,
        (pair.class_column, value),
    )
    return ClassMatch(pair, value, target, key, values, matching, sampled, method)


__all__ = [
    "CandidateReference",
    "ClassMatch",
    "ClassRows",
    "ClassValues",
    "MatchShare",
    "PolymorphicPair",
    "candidate_references",
    "class_match",
    "class_rows",
    "class_tables",
    "distinct_classes",
    "match_share",
    "polymorphic_pairs",
    "single_keys",
]
