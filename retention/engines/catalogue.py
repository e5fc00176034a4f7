"""The catalogue every engine reads into: tables, columns with a neutral kind, keys, foreign
keys, indexes and hooks, as plain immutable data (binding a policy and computing a plan only
read it).

Each engine's `Catalogue` (the protocol in `retention/engines/__init__.py`) reads its own system
catalogue into these classes (`postgresql/catalogue.py` reads `pg_catalog`,
`mariadb/catalogue.py` reads `information_schema`); callers call
`retention.catalog.introspect.read_catalog`, which asks the connection's engine. What differs
between engines is said in the data: a column's `kind` (the type's meaning: a date, a
timestamp, text, JSON, a number), whether a table's changes are transactional, which columns
identify a row. This module imports nothing of the engines: they import it.
"""

from __future__ import annotations

import difflib
import enum
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field


class ColumnKind(enum.Enum):
    """What a column's values mean, whichever engine and type holds them."""

    DATE = "date"  # a calendar day (PG date; MariaDB date)
    DATETIME = "datetime"  # a day and a time without zone (PG timestamp; MariaDB datetime)
    TIMESTAMP = "timestamp"  # an instant (PG timestamptz; MariaDB timestamp, stored in UTC)
    TEXT = "text"  # PG text, varchar, char, citext, name; MariaDB char, varchar, *text, enum, set
    JSON = "json"  # PG json, jsonb; MariaDB longtext with a json_valid() check; MySQL json
    NUMBER = "number"  # integers signed or unsigned, decimal/numeric, float, double
    BOOLEAN = "boolean"  # PG boolean (MariaDB's BOOLEAN is tinyint(1), a number)
    OTHER = "other"  # bytes, uuid, arrays, a PG enum or domain of another kind, ...


DATE_KINDS = frozenset({ColumnKind.DATE, ColumnKind.DATETIME, ColumnKind.TIMESTAMP})


@dataclass(frozen=True)
class Column:
    """A column: `type` as declared ('character varying(40)', 'int(10) unsigned'), `base_type`
    the engine's type without modifiers ('character varying', 'int'), `kind` what it means."""

    name: str
    type: str
    base_type: str
    kind: ColumnKind
    max_length: int | None
    not_null: bool
    default: str | None
    generated: bool = False  # GENERATED ALWAYS AS (...) STORED / VIRTUAL: computed by the server
    unsigned: bool = False  # MariaDB/MySQL numbers: no negative values (twice the range)
    # an enum (MariaDB/MySQL `enum(...)`, a PostgreSQL enum type): the labels it accepts
    enum_values: tuple[str, ...] | None = None
    on_update: str | None = None  # MariaDB/MySQL `ON UPDATE current_timestamp()`: written by
    # the server whenever the row is updated (an UPDATE of any other column sets it)
    auto_increment: bool = False  # MariaDB/MySQL AUTO_INCREMENT: numbered by the server (on
    # PostgreSQL a serial column says so by its default, `nextval(...)`)
    collation: str | None = None  # MariaDB/MySQL text: its collation ('utf8mb4_unicode_ci'),
    # which a value compared with it must share (two implicit collations: error 1267)
    # the CHECK constraints that read the column (its table's, its domain's), by name: a value
    # a phase writes may break one, and then every batch fails (MariaDB's json_valid() that
    # makes a LONGTEXT column JSON is not listed)
    checks: tuple[str, ...] = ()
    # a PostgreSQL domain (`type` names it, `base_type` the type under its chain of domains)
    domain: bool = False
    # a generated column: the columns of its table its value is computed from (PostgreSQL:
    # pg_depend; MariaDB: the names in its GENERATION_EXPRESSION), so that a phase writing
    # one is seen to change it (policy/checks/clock_inputs.py)
    generated_from: tuple[str, ...] = ()

    @property
    def is_enum_domain(self) -> bool:
        """A PostgreSQL domain over an enum: it has no `=` of its own (the enums' operator is
        polymorphic, and a domain does not match anyenum); its values compare as the enum's."""
        return self.domain and self.enum_values is not None

    @property
    def is_date(self) -> bool:
        return self.kind in DATE_KINDS

    @property
    def is_text(self) -> bool:
        return self.kind is ColumnKind.TEXT

    @property
    def is_json(self) -> bool:
        return self.kind is ColumnKind.JSON

    @property
    def is_number(self) -> bool:
        return self.kind is ColumnKind.NUMBER


@dataclass(frozen=True)
class ForeignKey:
    """`table(columns) REFERENCES ref_table(ref_columns)`."""

    name: str
    table: tuple[str, str]
    columns: tuple[str, ...]
    ref_table: tuple[str, str]
    ref_columns: tuple[str, ...]
    on_delete: str
    on_update: str = "no action"


@dataclass(frozen=True)
class Hook:
    """A user trigger or rule that fires when rows of `table` are deleted or updated: code
    the tool's statements set off, which may change or copy other rows. `kind` is 'trigger'
    or 'rule'; `events` holds 'delete' and/or 'update'. `on` is the table it is declared on:
    `table` itself, or one of its partitions or inheritance children (a DELETE or UPDATE of
    `table` reaches their rows and fires it). `columns`: an `UPDATE OF` trigger's columns.
    `events` may hold 'insert' too (a row moved to another partition is inserted there)."""

    table: tuple[str, str]
    name: str
    kind: str
    events: frozenset[str]
    function: str | None  # the trigger's function (regprocedure); None for a rule, and on
    # MariaDB/MySQL (a trigger's body is its own)
    on: tuple[str, str]
    columns: frozenset[str] | None = None
    per_row: bool = True  # FOR EACH ROW (a rule acts per statement, but sees the rows)
    sees_old_rows: bool = True  # a row trigger or rule; a statement trigger with OLD TABLE

    def label(self) -> str:
        """'public.visits' or 'public.visits (its partition or child public.visits_2001)'."""
        where = f"{self.table[0]}.{self.table[1]}"
        if self.on != self.table:
            where += f" (its partition or child table {self.on[0]}.{self.on[1]})"
        return where


@dataclass(frozen=True)
class Table:
    """A table with what the tool needs to know about it. On MariaDB/MySQL a schema is a
    database."""

    schema: str
    name: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    unique_keys: tuple[tuple[str, ...], ...]
    indexes: tuple[tuple[str, ...], ...]
    estimated_rows: int  # PG reltuples, MariaDB TABLES.TABLE_ROWS: an estimate, 0 when unknown
    owner: str  # PG the owning role; '' on MariaDB/MySQL (tables have no owner)
    oid: int = 0  # pg_class.oid when read (a name may later point to another relation)
    # False where a ROLLBACK keeps the changes (MariaDB/MySQL MyISAM, Aria, MEMORY, ...; a
    # table whose storage engine is unknown counts as not transactional)
    transactional: bool = True
    storage: str | None = None  # MariaDB/MySQL storage engine ('InnoDB', 'MyISAM'); None on PG
    # MariaDB `WITH SYSTEM VERSIONING`: a DELETE or an UPDATE keeps the old row in the table's
    # history, readable by `SELECT ... FOR SYSTEM_TIME ALL`
    system_versioned: bool = False
    # PostgreSQL row-level security hides rows of the table from this session's role (sessions
    # run with row_security = off, so a statement it would filter fails instead)
    row_security: bool = False
    # PostgreSQL tables that inherit from it at any depth, as 'schema.name' (old-style
    # inheritance, not partitions): reading or deleting from it reads or deletes their rows too
    inheritors: tuple[str, ...] = ()

    @property
    def qname(self) -> tuple[str, str]:
        return (self.schema, self.name)

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def row_key(self) -> tuple[str, ...]:
        """Columns that identify one row: the primary key, else the first unique key whose
        columns are all NOT NULL; () when there is none (on an engine without a row address,
        such a table's rows cannot be told apart one by one)."""
        if self.primary_key:
            return self.primary_key
        for key in self.unique_keys:
            if all(c in self.columns and self.columns[c].not_null for c in key):
                return key
        return ()

    def is_unique(self, columns: Iterable[str]) -> bool:
        """True when these columns name one row at most: they hold the primary key or a
        unique key (in any order)."""
        wanted = set(columns)
        return any(key and set(key) <= wanted for key in (self.primary_key, *self.unique_keys))

    def is_indexed(self, columns: Iterable[str]) -> bool:
        """True when some index starts with these columns (in any order)."""
        wanted = set(columns)
        return any(set(index[: len(wanted)]) == wanted for index in self.indexes)

    def suggest_column(self, name: str) -> str | None:
        close = difflib.get_close_matches(name, list(self.columns), n=1, cutoff=0.6)
        return close[0] if close else None


@dataclass(frozen=True)
class Footprint:
    """What some tables take on disk (rows and indexes, the server's estimate) and what the
    server keeps of its tables' pages in memory: how many pages a walk may touch before it
    reads and writes the same pages again (retention.plan.passes.window_size)."""

    table_bytes: int
    cache_bytes: int


_PLAIN_POSTGRESQL = re.compile(r"[a-z_][a-z0-9_$]*")
_PLAIN_MARIADB = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# the reserved words a table or column of a hospital schema is likeliest to be named by
# fmt: off
_RESERVED = frozenset({
    "all", "and", "analyse", "analyze", "as", "asc", "authorization", "both", "case", "cast",
    "check", "collate", "column", "constraint", "create", "current_date", "current_time",
    "current_timestamp", "current_user", "default", "delete", "desc", "distinct", "do", "else",
    "end", "except", "false", "fetch", "for", "foreign", "from", "grant", "group", "having",
    "in", "index", "initially", "insert", "interval", "into", "is", "join", "key", "leading",
    "left", "like", "limit", "localtime", "natural", "not", "null", "offset", "on", "only",
    "or", "order", "outer", "primary", "references", "right", "select", "session_user", "some",
    "symmetric", "table", "then", "to", "trailing", "true", "union", "unique", "update", "user",
    "using", "values", "when", "where", "window", "with"
})
# fmt: on


@dataclass(frozen=True)
class Catalog:
    """Every user table of the database (on MariaDB/MySQL: of the connection's database)."""

    tables: dict[tuple[str, str], Table]
    foreign_keys: tuple[ForeignKey, ...]
    search_path: tuple[str, ...] = ("public",)
    hooks: tuple[Hook, ...] = ()
    # every foreign key, partitions mapped to their partitioned table, a key referencing an
    # inheritance child also listed for each of its ancestors (postgresql/catalogue.py)
    rooted_keys: tuple[ForeignKey, ...] = ()
    partition_keys: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    # whether a row can be addressed without a key of its own (PG `ctid`); on MariaDB/MySQL a
    # table's rows are told apart one by one only through its `Table.row_key`
    row_address: bool = True
    engine: str = "postgresql"  # whose syntax the statements in a hint take ("mariadb")
    # the views (PostgreSQL: and materialized views), only to say so when a policy names one
    views: frozenset[tuple[str, str]] = frozenset()
    _by_name: dict[str, list[Table]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for table in self.tables.values():
            self._by_name.setdefault(table.name, []).append(table)

    @property
    def other_engines_dates(self) -> tuple[str, ...]:
        """The special dates only the other engine spells, which a column of this one cannot
        hold: MariaDB's zero date on PostgreSQL, PostgreSQL's infinities on MariaDB/MySQL."""
        return ("infinity", "-infinity") if self.engine == "mariadb" else ("0000-00-00",)

    @property
    def engine_label(self) -> str:
        """The engine as a message names it."""
        return "MariaDB/MySQL" if self.engine == "mariadb" else "PostgreSQL"

    def written(self, *parts: str) -> str:
        """A name as a hint's statement writes it for this engine: quoted where it must be
        (PostgreSQL folds an unquoted name to lower case; either engine needs quotes around
        other characters or a reserved word)."""
        plain = _PLAIN_MARIADB if self.engine == "mariadb" else _PLAIN_POSTGRESQL
        return ".".join(
            part if plain.fullmatch(part) and part.lower() not in _RESERVED else self._quoted(part)
            for part in parts
        )

    def policy_name(self, *parts: str) -> str:
        """A table's name as a policy writes it so that `find` reads it back: a part holding a
        dot, or starting with a quote, quoted as the engine quotes it; any other as stored."""
        return ".".join(
            self._quoted(part) if "." in part or part[:1] in ('"', "`") else part for part in parts
        )

    def _quoted(self, part: str) -> str:
        """`part` in the engine's identifier quotes, a quote inside doubled."""
        quote = "`" if self.engine == "mariadb" else '"'
        return quote + part.replace(quote, quote * 2) + quote

    def index_statement(self, table: Table, columns: Iterable[str]) -> str:
        """`CREATE INDEX` on `columns` of `table`, as this engine writes it."""
        names = list(columns)
        listed = ", ".join(self.written(c) for c in names)
        if self.engine == "mariadb":  # an index needs a name there; 64 characters at most
            index = self.written(f"{table.name}_{'_'.join(names)}_idx"[:64])
            return f"CREATE INDEX {index} ON {self.written(table.name)} ({listed})"
        return f"CREATE INDEX ON {self.written(table.schema, table.name)} ({listed})"

    def find(self, name: str) -> Table | None:
        """A table by `name` or `schema.name`, each part as stored or quoted as SQL quotes it
        (`"Soins"."Patients"`, `` `soins`.`patients` ``); unqualified names follow the search
        path."""
        parts = split_name(name) or (name.split(".", 1) if "." in name else [name])
        if len(parts) == 2:
            return self.tables.get((parts[0], parts[1]))
        (name,) = parts
        for schema in self.search_path:
            if (schema, name) in self.tables:
                return self.tables[(schema, name)]
        candidates = self._by_name.get(name, [])
        return candidates[0] if len(candidates) == 1 else None

    def is_view(self, name: str) -> bool:
        """Whether `name` (as `find` reads it) names a view rather than a table."""
        parts = split_name(name) or (name.split(".", 1) if "." in name else [name])
        if len(parts) == 2:
            return (parts[0], parts[1]) in self.views
        return any(view[1] == parts[0] for view in self.views)

    def suggest_table(self, name: str) -> str | None:
        parts = split_name(name)
        bare = parts[-1] if parts else name.rpartition(".")[2]
        close = difflib.get_close_matches(bare, list(self._by_name), n=1, cutoff=0.6)
        return self.policy_name(close[0]) if close else None

    def referencing(self, table: tuple[str, str]) -> list[ForeignKey]:
        """Foreign keys whose referenced table is `table`."""
        return [fk for fk in self.foreign_keys if fk.ref_table == table]

    def outgoing(self, table: tuple[str, str]) -> list[ForeignKey]:
        """Foreign keys declared on `table`."""
        return [fk for fk in self.foreign_keys if fk.table == table]


def split_name(name: str) -> list[str] | None:
    """`name` or `schema.name` as its parts, a part that starts with a double quote or a
    backtick read as SQL quotes it (a doubled quote inside stands for one), any other as
    stored; None when it is neither (the caller may then take the name as stored)."""
    if '"' not in name and "`" not in name:
        return name.split(".", 1) if "." in name else [name]
    parts: list[str] = []
    i = 0
    while True:
        if i < len(name) and name[i] in '"`':
            quote, part, i = name[i], "", i + 1
            while True:
                end = name.find(quote, i)
                if end < 0:
                    return None  # not closed
                part += name[i:end]
                if name.startswith(quote * 2, end):
                    part, i = part + quote, end + 2
                    continue
                i = end + 1
                break
        else:
            end = name.find(".", i)
            end = len(name) if end < 0 else end
            part, i = name[i:end], end  # unquoted: as stored, quotes inside included
            if not part:
                return None
        parts.append(part)
        if i == len(name):
            return parts if len(parts) <= 2 else None
        if name[i] != "." or len(parts) == 2:
            return None
        i += 1


def _folded(text: str) -> str:
    """`text` without case and accents (how a MariaDB `_ci`/`_ai` collation compares it; a
    trailing space does not count either under PAD SPACE collations)."""
    decomposed = unicodedata.normalize("NFD", text.rstrip(" ").casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def enum_label(column: Column, value: str) -> str | None:
    """The label of the enum `column` that the server takes `value` for, None when none:
    PostgreSQL compares labels exactly (its columns carry no collation here); MariaDB/MySQL
    as the column's collation compares them, without regard to case or accents unless it is
    binary or case-sensitive."""
    labels = column.enum_values or ()
    if value in labels:
        return value
    collation = (column.collation or "").lower()
    if not collation or collation.endswith(("_bin", "_cs")):
        return None
    folded = _folded(value)
    return next((label for label in labels if _folded(label) == folded), None)
