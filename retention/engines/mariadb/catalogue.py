"""MariaDB's catalogue: `information_schema` read into the neutral catalogue
(`retention/engines/catalogue.py`).

A MariaDB "schema" is a database: the catalogue holds the tables of the connection's database
(`DATABASE()`, named by the URL), as PostgreSQL's holds the schemas of one database; the tool's
own database and the system ones are never read. What the data says differently:

- a column's kind from `DATA_TYPE` (`enum` and `set` are text; integers signed or unsigned,
  decimal, float and double are numbers; `tinyint(1)`, MariaDB's BOOLEAN, too), its
  unsignedness and an enum's values from `COLUMN_TYPE`; MariaDB's JSON is LONGTEXT with a
  `json_valid()` CHECK, recognised by that check (MySQL 8's native `json` too);
- `Table.transactional` from `TABLES.ENGINE` joined to `ENGINES.TRANSACTIONS` (MyISAM, Aria,
  MEMORY: 'NO'; an engine the server does not list counts as not transactional);
- `Table.system_versioned` from `TABLES.TABLE_TYPE` ('SYSTEM VERSIONED': deleted and updated
  rows stay in the table's history);
- no row address (`Catalog.row_address` False): rows are told apart by `Table.row_key` only;
- `Table.estimated_rows` from `TABLES.TABLE_ROWS` (InnoDB's is an estimate);
- foreign keys from `KEY_COLUMN_USAGE` and `REFERENTIAL_CONSTRAINTS` (often none: Mediboard
  declares none; MyISAM ignores them);
- hooks are the DELETE and UPDATE triggers (always FOR EACH ROW; no rules, no partition
  moves that fire INSERT triggers, so no partition keys either).

`information_schema` is not read under one snapshot (it is not transactional): a table created
or altered while the catalogue is read may be seen half-way, as DDL racing any reader would.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from retention.engines import Connection, errors, sql
from retention.engines.catalogue import (
    Catalog,
    Column,
    ColumnKind,
    Footprint,
    ForeignKey,
    Hook,
    Table,
)
from retention.engines.errors import describe_error
from retention.engines.mariadb import flavour
from retention.engines.mariadb.grantee import CURRENT_GRANTEE
from retention.errors import DatabaseError

SYSTEM_DATABASES = ("information_schema", "mysql", "performance_schema", "sys")

KINDS = {
    "date": ColumnKind.DATE,
    "datetime": ColumnKind.DATETIME,
    "timestamp": ColumnKind.TIMESTAMP,
    **dict.fromkeys(
        ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"),
        ColumnKind.TEXT,
    ),
    "json": ColumnKind.JSON,  # MySQL 8 (MariaDB's JSON is longtext, see _JSON_CHECK)
    **dict.fromkeys(
        ("tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double"),
        ColumnKind.NUMBER,
    ),
}
_LENGTH_TYPES = frozenset({"char", "varchar"})  # max_length as PostgreSQL gives it

Qname = tuple[str, str]

_TABLES = """
SELECT t.TABLE_SCHEMA, t.TABLE_NAME, coalesce(t.TABLE_ROWS, 0), t.ENGINE,
       coalesce(e.TRANSACTIONS = 'YES', 0), t.TABLE_TYPE = 'SYSTEM VERSIONED'
FROM information_schema.TABLES AS t
LEFT JOIN information_schema.ENGINES AS e ON e.ENGINE = t.ENGINE
WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_SCHEMA <> %s
  AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
ORDER BY t.TABLE_NAME
"""

_TRANSACTIONAL = """
SELECT t.TABLE_NAME, coalesce(e.TRANSACTIONS = 'YES', 0)
FROM information_schema.TABLES AS t
LEFT JOIN information_schema.ENGINES AS e ON e.ENGINE = t.ENGINE
WHERE t.TABLE_SCHEMA = %s AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
"""

_COLUMNS = """
SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH,
       IS_NULLABLE = 'NO', COLUMN_DEFAULT, IS_GENERATED = 'ALWAYS', EXTRA, COLLATION_NAME,
       GENERATION_EXPRESSION
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE()
ORDER BY TABLE_NAME, ORDINAL_POSITION
"""
# MySQL: no IS_GENERATED (EXTRA says `VIRTUAL GENERATED`, `STORED GENERATED`), and a literal
# default unquoted (`abc` where MariaDB writes `'abc'`; an expression's EXTRA says
# `DEFAULT_GENERATED`): quoted here, so that both give the default as SQL
_COLUMNS_MYSQL = """
SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH,
       IS_NULLABLE = 'NO',
       CASE WHEN COLUMN_DEFAULT IS NULL OR LOCATE('DEFAULT_GENERATED', EXTRA) > 0
            THEN COLUMN_DEFAULT
            ELSE QUOTE(COLUMN_DEFAULT) END,
       EXTRA IN ('VIRTUAL GENERATED', 'STORED GENERATED'), EXTRA, COLLATION_NAME,
       GENERATION_EXPRESSION
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE()
ORDER BY TABLE_NAME, ORDINAL_POSITION
"""

# MariaDB 10.5+: a JSON column is LONGTEXT with the column-level check json_valid(`c`)
_CHECKS = """
SELECT TABLE_NAME, CHECK_CLAUSE, CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = DATABASE()
"""
# MySQL's CHECK_CONSTRAINTS has no TABLE_NAME (its check names are unique in a database)
_CHECKS_MYSQL = """
SELECT t.TABLE_NAME, c.CHECK_CLAUSE, c.CONSTRAINT_NAME
FROM information_schema.CHECK_CONSTRAINTS AS c
JOIN information_schema.TABLE_CONSTRAINTS AS t
  ON t.CONSTRAINT_SCHEMA = c.CONSTRAINT_SCHEMA AND t.CONSTRAINT_NAME = c.CONSTRAINT_NAME
 AND t.CONSTRAINT_TYPE = 'CHECK'
WHERE c.CONSTRAINT_SCHEMA = DATABASE()
"""

# IGNORED (MariaDB 10.6+): an index the optimizer may not use, that still enforces uniqueness
_INDEXES = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE = 0, COLUMN_NAME,
       INDEX_TYPE IN ('FULLTEXT', 'SPATIAL') OR IGNORED = 'YES'
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE()
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
"""
# MySQL: invisible indexes (8.0+), and functional key parts (8.0.13+) have no COLUMN_NAME
_INDEXES_MYSQL = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE = 0, COLUMN_NAME,
       INDEX_TYPE IN ('FULLTEXT', 'SPATIAL') OR IS_VISIBLE = 'NO'
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE()
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
"""

_FOREIGN_KEYS = """
SELECT k.CONSTRAINT_NAME, k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA,
       k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE
FROM information_schema.KEY_COLUMN_USAGE AS k
LEFT JOIN information_schema.REFERENTIAL_CONSTRAINTS AS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
 AND r.TABLE_NAME = k.TABLE_NAME
WHERE k.CONSTRAINT_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION
"""

_TRIGGERS = """
SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, EVENT_MANIPULATION
FROM information_schema.TRIGGERS
WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_MANIPULATION IN ('DELETE', 'UPDATE')
ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME
"""


_ESTIMATES = "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"


class Catalogue:
    def read(self, conn: Connection, *, tool_schema: str) -> Catalog:
        return read(conn, tool_schema=tool_schema)

    def table_exists(self, conn: Connection, schema: str, name: str) -> bool:
        # information_schema compares names without case; on Linux, names have case
        rows = conn.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (schema, name),
        ).fetchall()
        return any((str(row[0]), str(row[1])) == (schema, name) for row in rows)

    def may(
        self, conn: Connection, schema: str, name: str, privileges: Collection[str]
    ) -> bool | None:
        """Whether the account may use the table so, however it holds the privilege (itself,
        on the database or the table, or through a role it has enabled): the server is asked
        to EXPLAIN a statement of each kind, which it checks as it would the statement and
        never runs. (`information_schema` lists no privilege held through a role.) Other
        privileges than SELECT, INSERT and DELETE: as information_schema shows them."""
        if not self.table_exists(conn, schema, name):
            return None
        table = sql.Identifier(schema, name)
        probes = {
            "SELECT": sql.SQL("EXPLAIN SELECT 1 FROM {}").format(table),
            "INSERT": sql.SQL("EXPLAIN INSERT INTO {} () VALUES ()").format(table),
            "DELETE": sql.SQL("EXPLAIN DELETE FROM {} WHERE 1 = 0").format(table),
        }
        wanted = {p.upper() for p in privileges}
        for privilege in sorted(wanted & probes.keys()):
            try:
                conn.execute(probes[privilege]).fetchall()
            except errors.InsufficientPrivilege:
                return False
        others = wanted - probes.keys()
        return not others or others <= self._listed(conn, schema, name)

    def cannot_update(
        self, conn: Connection, schema: str, name: str, columns: Sequence[str]
    ) -> list[str] | None:
        """Asked as `may` asks: an EXPLAIN of an UPDATE of each column, which the server
        checks against the table's and the column's privileges, a role's included."""
        if not self.table_exists(conn, schema, name):
            return None
        table = sql.Identifier(schema, name)
        refused = []
        for column in columns:
            probe = sql.SQL("EXPLAIN UPDATE {} SET {} = NULL WHERE 1 = 0").format(
                table, sql.Identifier(column)
            )
            try:
                conn.execute(probe).fetchall()
            except errors.InsufficientPrivilege:
                refused.append(column)
        return refused

    def may_lock(self, conn: Connection, schema: str, name: str) -> bool | None:
        """An EXPLAIN of a locking read (MariaDB wants SELECT for it, MySQL 8 UPDATE too)."""
        if not self.table_exists(conn, schema, name):
            return None
        probe = sql.SQL("EXPLAIN SELECT 1 FROM {} WHERE 1 = 0 FOR UPDATE").format(
            sql.Identifier(schema, name)
        )
        try:
            conn.execute(probe).fetchall()
        except errors.InsufficientPrivilege:
            return False
        return True

    def may_create_temporary(self, conn: Connection) -> bool:
        """A temporary table of the session made and dropped at once (no EXPLAIN of a
        CREATE): CREATE TEMPORARY TABLES on the database, however held."""
        name = sql.Identifier("retention_privilege_probe")
        try:
            conn.execute(sql.SQL("CREATE TEMPORARY TABLE {} (x int)").format(name))
        except errors.InsufficientPrivilege:
            return False
        conn.execute(sql.SQL("DROP TEMPORARY TABLE {}").format(name))
        return True

    def _listed(self, conn: Connection, schema: str, name: str) -> set[str]:
        """Privileges granted to the account itself (globally, on the database, on the table),
        as information_schema shows them (none held through a role)."""
        rows = conn.execute(
            f"SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = "
            f"{CURRENT_GRANTEE} UNION SELECT PRIVILEGE_TYPE FROM "
            f"information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = {CURRENT_GRANTEE} "
            f"AND TABLE_SCHEMA = %s UNION SELECT PRIVILEGE_TYPE FROM "
            f"information_schema.TABLE_PRIVILEGES WHERE GRANTEE = {CURRENT_GRANTEE} "
            f"AND TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (schema, schema, name),
        ).fetchall()
        return {str(row[0]).upper() for row in rows}

    def transactional(self, conn: Connection, tables: Collection[Qname]) -> dict[Qname, bool]:
        found: dict[Qname, bool] = {}
        for schema in sorted({schema for schema, _ in tables}):
            for name, transactional in conn.execute(_TRANSACTIONAL, (schema,)).fetchall():
                if (schema, str(name)) in tables:  # names compared with their case
                    found[(schema, str(name))] = bool(transactional)
        return found

    def existing_columns(
        self, conn: Connection, columns: Collection[tuple[str, str, str]], *, tool_schema: str
    ) -> set[tuple[str, str, str]]:
        tables = read(conn, tool_schema=tool_schema).tables
        return {c for c in columns if c[:2] in tables and c[2] in tables[c[:2]].columns}

    def may_be_large(self, conn: Connection, tables: Collection[Qname], rows: int) -> bool:
        # InnoDB's estimate (NULL when unknown: large)
        for schema in sorted({schema for schema, _ in tables}):
            for name, estimate in conn.execute(_ESTIMATES, (schema,)).fetchall():
                if (schema, str(name)) in tables and (estimate is None or estimate >= rows):
                    return True
        return False

    def footprint(self, conn: Connection, tables: Collection[Qname]) -> Footprint | None:
        """InnoDB's estimate of the tables' rows and indexes, and its buffer pool: the pages
        a server reads and writes in place (O_DIRECT), not through the system's cache."""
        if not tables:
            return None
        row = conn.execute(
            sql.SQL(
                "SELECT coalesce(sum(DATA_LENGTH + INDEX_LENGTH), 0), @@innodb_buffer_pool_size "
                "FROM information_schema.TABLES WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({})"
            ).format(sql.SQL(", ").join(sql.SQL("(%s, %s)") for _ in tables)),
            [part for table in tables for part in table],
        ).fetchone()
        if row is None or row[1] is None:
            return None
        return Footprint(int(row[0]), int(row[1]))


def read(conn: Connection, *, tool_schema: str) -> Catalog:
    """The user tables of the connection's database (none when it is a system database or
    the tool's own)."""
    row = conn.execute("SELECT DATABASE()").fetchone()
    database = row[0] if row else None
    if database is None:
        raise DatabaseError(
            "the MariaDB connection has no database selected",
            hint="name the database in database_url, e.g. mariadb://user@host:3306/dbname",
        )
    database = str(database)
    if database.lower() in SYSTEM_DATABASES:
        return Catalog({}, (), (database,), row_address=False, engine="mariadb")
    table_rows = conn.execute(_TABLES, (tool_schema,)).fetchall()
    names = {str(r[1]) for r in table_rows}
    if not names:
        return Catalog({}, (), (database,), row_address=False, engine="mariadb")
    mysql = flavour.of(conn).server == "mysql"
    check_rows = conn.execute(_CHECKS_MYSQL if mysql else _CHECKS).fetchall()
    json_columns = _json_columns(check_rows)
    columns = _columns(
        conn.execute(_COLUMNS_MYSQL if mysql else _COLUMNS).fetchall(),
        names,
        json_columns,
        _checked_columns(check_rows),
    )
    indexes = _indexes(conn.execute(_INDEXES_MYSQL if mysql else _INDEXES).fetchall(), names)
    tables = {
        (database, str(r[1])): _table(database, r, columns.get(str(r[1]), {}), indexes)
        for r in table_rows
    }
    keys = _foreign_keys(_with_rules(conn, conn.execute(_FOREIGN_KEYS).fetchall()), database, names)
    hooks = tuple(
        Hook(
            (database, str(t)),
            str(name),
            "trigger",
            frozenset({str(event).lower()}),
            None,
            (database, str(t)),
        )
        for t, name, event in conn.execute(_TRIGGERS).fetchall()
        if str(t) in names
    )
    views = frozenset(
        (database, str(r[0]))
        for r in conn.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'VIEW'"
        ).fetchall()
    )
    return Catalog(
        tables,
        keys,
        (database,),
        hooks=hooks,
        rooted_keys=keys,
        row_address=False,
        engine="mariadb",
        views=views,
    )


def _table(
    database: str,
    row: Sequence[Any],
    columns: dict[str, Column],
    indexes: dict[str, list[tuple[str, bool, bool, tuple[str, ...]]]],
) -> Table:
    own = indexes.get(str(row[1]), [])
    return Table(
        schema=database,
        name=str(row[1]),
        columns=columns,
        primary_key=next((cols for name, _, _, cols in own if name == "PRIMARY"), ()),
        unique_keys=tuple(cols for _, unique, _, cols in own if unique),
        indexes=tuple(cols for _, _, usable, cols in own if usable),
        estimated_rows=int(row[2]),
        owner="",
        transactional=bool(row[4]),
        storage=None if row[3] is None else str(row[3]),
        system_versioned=bool(row[5]),
    )


def _columns(
    rows: Iterable[Sequence[Any]],
    tables: set[str],
    json_columns: set[tuple[str, str]],
    checks: dict[tuple[str, str], tuple[str, ...]],
) -> dict[str, dict[str, Column]]:
    found: dict[str, dict[str, Column]] = {}
    names_by_table: dict[str, set[str]] = {}
    rows = list(rows)
    for row in rows:
        names_by_table.setdefault(str(row[0]), set()).add(str(row[1]))
    for row in rows:
        table, name, column_type, data_type, length, not_null, default, generated, extra = row[:9]
        if str(table) not in tables:
            continue
        base = str(data_type).lower()
        kind = KINDS.get(base, ColumnKind.OTHER)
        if kind is ColumnKind.TEXT and (str(table), str(name)) in json_columns:
            kind = ColumnKind.JSON
        words = str(column_type).lower().split()
        found.setdefault(str(table), {})[str(name)] = Column(
            name=str(name),
            type=str(column_type),
            base_type=base,
            kind=kind,
            max_length=int(length) if base in _LENGTH_TYPES and length is not None else None,
            not_null=bool(not_null),
            default=None if generated or default is None or default == "NULL" else str(default),
            generated=bool(generated),
            unsigned="unsigned" in words[1:],
            enum_values=enum_values(str(column_type)) if base == "enum" else None,
            on_update=_on_update(str(extra or "")),
            auto_increment="auto_increment" in str(extra or "").lower(),
            collation=None if row[9] is None else str(row[9]),
            checks=checks.get((str(table), str(name)), ()),
            generated_from=_named_in(row[10], names_by_table[str(table)] - {str(name)})
            if generated
            else (),
        )
    return found


_NAME_TOKEN = re.compile(r"`((?:[^`]|``)+)`|([A-Za-z_][A-Za-z0-9_$]*)")


def _named_in(expression: object, columns: set[str]) -> tuple[str, ...]:
    """The columns of `columns` a generation expression names (backticked or bare; a word that
    is also a function's name counts too: more columns, never fewer)."""
    if expression is None:
        return ()
    found = set()
    for quoted, bare in _NAME_TOKEN.findall(str(expression)):
        name = quoted.replace("``", "`") if quoted else bare
        found |= {c for c in columns if c.lower() == name.lower()}
    return tuple(sorted(found))


def enum_values(column_type: str) -> tuple[str, ...]:
    """The values of "enum('a','it''s','back\\\\slash')" as the column stores them."""
    values: list[str] = []
    inside = column_type[column_type.index("(") + 1 : column_type.rindex(")")]
    i = 0
    while i < len(inside):
        if inside[i] != "'":
            i += 1  # the commas between values
            continue
        value, i = _quoted(inside, i + 1)
        values.append(value)
    return tuple(values)


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The string literal starting after the quote at i - 1, and the index after its end."""
    out: list[str] = []
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif char == "'" and text[i + 1 : i + 2] == "'":
            out.append("'")
            i += 2
        elif char == "'":
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    return "".join(out), i


_ON_UPDATE = re.compile(r"\bon update (.+)$", re.IGNORECASE)


def _on_update(extra: str) -> str | None:
    match = _ON_UPDATE.search(extra)
    return match.group(1).strip() if match else None


def _json_columns(rows: Iterable[Sequence[Any]]) -> set[tuple[str, str]]:
    """(table, column) of each `json_valid(`column`)` check."""
    found = set()
    for table, clause, _ in rows:
        match = _JSON_CHECK.fullmatch(str(clause).strip())
        if match:
            found.add((str(table), match.group(1).replace("``", "`")))
    return found


def _checked_columns(rows: Iterable[Sequence[Any]]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(table, column) -> the CHECK constraints whose clause names the column (the server
    writes every column name of a clause in backticks), but the `json_valid()` that makes a
    LONGTEXT column JSON."""
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for table, clause, name in rows:
        text = str(clause).strip()
        if _JSON_CHECK.fullmatch(text):
            continue
        for column in dict.fromkeys(m.replace("``", "`") for m in _NAMED.findall(text)):
            key = (str(table), column)
            found[key] = (*found.get(key, ()), str(name))
    return found


_NAMED = re.compile(r"`((?:[^`]|``)+)`")
_JSON_CHECK = re.compile(r"json_valid\(`((?:[^`]|``)+)`\)", re.IGNORECASE)


def _indexes(
    rows: Iterable[Sequence[Any]], tables: set[str]
) -> dict[str, list[tuple[str, bool, bool, tuple[str, ...]]]]:
    """table -> (index name, unique, usable for lookups, columns) of each index."""
    by_index: dict[tuple[str, str], tuple[bool, bool, list[str]]] = {}
    for table, name, unique, column, unusable in rows:
        if str(table) not in tables:
            continue
        entry = by_index.setdefault((str(table), str(name)), (bool(unique), not unusable, []))
        if column is None:  # a key part that is an expression (MySQL): no key of columns
            entry = by_index[str(table), str(name)] = (False, False, entry[2])
        entry[2].append(str(column))
    found: dict[str, list[tuple[str, bool, bool, tuple[str, ...]]]] = {}
    for (table, name), (unique, usable, columns) in by_index.items():
        found.setdefault(table, []).append((name, unique, usable, tuple(columns)))
    return found


# a foreign key's line in SHOW CREATE TABLE, as the server writes it; RESTRICT is not written
_KEY_LINE = re.compile(
    r"^\s*CONSTRAINT `(?P<name>(?:[^`]|``)+)` FOREIGN KEY .*? REFERENCES .*?\)"
    r"(?: ON DELETE (?P<delete>RESTRICT|CASCADE|SET NULL|NO ACTION|SET DEFAULT))?"
    r"(?: ON UPDATE (?P<update>RESTRICT|CASCADE|SET NULL|NO ACTION|SET DEFAULT))?,?$"
)


def _with_rules(conn: Connection, rows: list[Sequence[Any]]) -> list[Sequence[Any]]:
    """`rows` with every foreign key's ON DELETE and ON UPDATE rules. MariaDB hides a key from
    REFERENTIAL_CONSTRAINTS unless the account holds a column privilege other than SELECT on
    its table (a least-privilege role often does not; KEY_COLUMN_USAGE shows the key to any
    privilege): those rules are read from the table's SHOW CREATE TABLE. A rule that cannot
    be read is an error, never a guess: a cascade the tool did not see would delete rows it
    did not archive or count."""
    hidden = sorted({str(r[1]) for r in rows if r[6] is None})
    if not hidden:
        return rows
    rules: dict[tuple[str, str], tuple[str, str]] = {}
    for table in hidden:
        try:
            found = conn.execute(
                sql.SQL("SHOW CREATE TABLE {}").format(sql.Identifier(table))
            ).fetchone()
        except errors.Error as exc:
            raise DatabaseError(
                f"the rules (ON DELETE, ON UPDATE) of the foreign keys of {table} cannot be read "
                f"by this account: {describe_error(exc)}",
                hint="grant it SELECT on the table (retention grants --role ... lists it)",
            ) from None
        for line in str(found[1] if found else "").splitlines():
            if match := _KEY_LINE.match(line):
                name = match["name"].replace("``", "`")
                rules[(table, name)] = (
                    match["delete"] or "RESTRICT",
                    match["update"] or "RESTRICT",
                )
    out: list[Sequence[Any]] = []
    for row in rows:
        rule = None if row[6] is not None else rules.get((str(row[1]), str(row[0])))
        if row[6] is None and rule is None:
            raise DatabaseError(
                f"the rules of the foreign key {row[0]} of {row[1]} cannot be read",
                hint="connect as an account that can read SHOW CREATE TABLE of that table",
            )
        out.append(row if rule is None else (*row[:6], *rule))
    return out


def _foreign_keys(
    rows: Iterable[Sequence[Any]], database: str, tables: set[str]
) -> tuple[ForeignKey, ...]:
    """Foreign keys between the catalogue's tables (one row per column, in key order)."""
    found: dict[tuple[str, str, str, str, str], tuple[list[str], list[str]]] = {}
    for name, table, column, ref_schema, ref_table, ref_column, on_delete, on_update in rows:
        if str(table) not in tables or str(ref_schema) != database or str(ref_table) not in tables:
            continue
        head = (str(name), str(table), str(ref_table), str(on_delete), str(on_update))
        columns, ref_columns = found.setdefault(head, ([], []))
        columns.append(str(column))
        ref_columns.append(str(ref_column))
    return tuple(
        ForeignKey(
            name,
            (database, table),
            tuple(columns),
            (database, ref_table),
            tuple(ref_columns),
            on_delete.lower(),  # 'CASCADE', 'SET NULL', 'SET DEFAULT', 'RESTRICT', 'NO ACTION'
            on_update.lower(),
        )
        for (name, table, ref_table, on_delete, on_update), (columns, ref_columns) in found.items()
    )
