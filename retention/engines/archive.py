"""An archive batch's rows: deleted and given back as CSV records, exactly as they were.

The archive's file format is the same on every engine (docs/ARCHIVE.md): each table is CSV as
PostgreSQL's `COPY ... (FORMAT csv)` writes it, each value its text. How the rows leave the
database differs (docs/ENGINES.md, 2.5):

- PostgreSQL: `COPY (DELETE ... RETURNING <group>, r.<column>...) TO STDOUT (FORMAT csv)`, one
  statement per link (`postgresql/archive.py`), its values set first with `set_config` and read
  with `current_setting` (COPY takes no bound parameters);
- MariaDB: the batch's rows of the table are read with their group through the same joins,
  then deleted by key, `DELETE ... RETURNING` their keys, link values and CSV record, whose
  fields the server writes where their type bounds their text, this process the others
  (`mariadb/archive.py`): the rows written are those the DELETE returned. An engine without
  `DELETE ... RETURNING` (MySQL 8; capability `delete_returning`) reads the rows by key `FOR
  UPDATE`, then deletes them by key, and the DELETE's row count must equal the rows read.

The caller (`retention.archive.codec`) says which rows with a `Taking`: the rows of `table AS
r` matching `where` with the FROM items `using`, each row's group `group`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, Protocol
from uuid import UUID

from retention.engines import sql
from retention.engines.catalogue import Column, Table
from retention.engines.connection import Connection
from retention.errors import DatabaseError, RetentionError

QName = tuple[str, str]
# the output settings under which PostgreSQL writes each value's exact, stable text; the
# archive's manifest records them, and every engine writes values as PostgreSQL would so
TEXT_SETTINGS = {
    "DateStyle": "ISO",
    "IntervalStyle": "iso_8601",
    "bytea_output": "hex",
    "extra_float_digits": "3",
}
# (child table, parent table, child columns, parent columns) -> the foreign key is a link of
# the record (its delete is the archive's own)
IsLink = Callable[[QName, QName, Sequence[str], Sequence[str]], bool]


class Values(Protocol):
    """Values bound for a statement (`retention.policy.expr.Params`' interface)."""

    def add(self, value: object, *, binary: bool = False) -> sql.Composable: ...

    @property
    def values(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class Taking:
    """The batch's rows of one table: `<table> AS r` joined to `using` (FROM items, each
    aliased) where `where` holds; `group` is each row's archive group (a text column of
    `using`). A row matches at most one row of `using`. `links`: the row's columns on which
    that depends (its link columns and class column): an engine that reads the rows before
    deleting them by key checks that these did not change in between (MariaDB)."""

    using: sql.Composable
    where: sql.Composable
    group: sql.Composable
    params: Mapping[str, object]
    links: tuple[str, ...]


@dataclass(frozen=True)
class TableProblem:
    """Why a batch must not delete from a table (it rolls back): the message and a hint."""

    message: str
    hint: str


class ArchiveRows(Protocol):
    def prepare(self, conn: Connection) -> None:
        """Before the batch's first read, in its transaction: values will be read as their
        exact text (PostgreSQL: UTF-8 and the output styles of `codec.SESSION`)."""
        ...

    def values(self, prefix: str) -> Values:
        """Where a `Taking`'s values go (PostgreSQL: transaction settings, as COPY takes no
        bound parameters)."""
        ...

    def keys_table(
        self, conn: Connection, key: Column, groups: Mapping[Any, str]
    ) -> sql.Composable:
        """A temporary table `(k, grp)` of the batch's subjects and their group, filled; its
        name."""
        ...

    def take(self, conn: Connection, table: Table, taking: Taking) -> dict[str, list[bytes]]:
        """Delete the rows of `taking` from `table`; their CSV records (each ending with a line
        break, values in the order of `table.columns`) by group, sorted bytewise. A value that
        cannot be read exactly stops the batch (an error) before anything of it is deleted."""
        ...

    def check_tables(
        self, conn: Connection, tables: Sequence[Table], is_link: IsLink
    ) -> TableProblem | None:
        """After the batch's deletes: each table is still the relation the run read (its
        columns, in order, of the same types), and no live foreign key that is not a link of
        the record (`is_link`) carries the delete further or changes other rows."""
        ...

    # -- the archive catalogue in the tool's schema (archive_files, archive_segments) ----------
    def insert_file(
        self,
        conn: Connection,
        schema: str,
        file: Mapping[str, Any],
        segments: Sequence[Mapping[str, Any]],
    ) -> None:
        """Catalogue one file (`file`: the columns of archive_files) and its segments (the
        columns of archive_segments, `subject_digests` a list), in the caller's transaction."""
        ...

    def read_files(
        self,
        conn: Connection,
        schema: str,
        conditions: Sequence[tuple[str, Any]],
        file_ids: Sequence[UUID] | None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Catalogued files (ordered by creation time then id) and their segments (ordered by
        file, group), by column name: ids as UUIDs, `recipients` and `subject_digests` lists,
        `rows` a dict. `conditions`: `("destroyed", None)` for files not destroyed, `("policy",
        name)`; `file_ids`: only those files."""
        ...

    def latest_file_entries(self, conn: Connection, schema: str) -> dict[str, dict[str, Any]]:
        """The latest audit entry about each file id (text): its batch's `archive` detail, or
        the expiry that rewrote it."""
        ...

    def replace_version(
        self,
        conn: Connection,
        schema: str,
        file_id: UUID,
        name: str,
        version: int,
        size: int,
        digest: str,
    ) -> None:
        """A file rewritten under its next version (expiry)."""
        ...

    def destroy(
        self, conn: Connection, schema: str, file_id: UUID, groups: Sequence[str], whole: bool
    ) -> None:
        """Segments `groups` of a file marked destroyed now (and the file when `whole`)."""
        ...

    def segments_of(
        self, conn: Connection, schema: str, policy: str, digest: str
    ) -> list[tuple[UUID, str]]:
        """The live segments (file id, group) of `policy`'s files listing a subject's digest."""
        ...

    # -- restore -------------------------------------------------------------------------------
    def pick(
        self, conn: Connection, manifest: dict[str, Any], inner: dict[str, bytes], subject: str
    ) -> dict[str, tuple[bytes, int]]:
        """One subject's rows of a version 2 segment (`manifest` and its decrypted members),
        per table (CSV with its header line, and how many), parents first, following the
        manifest's relations, values compared as the database that archived them compared
        them. Raises ManifestError when the manifest does not describe its tables."""
        ...

    def load(self, conn: Connection, table: Table, names: Sequence[str], data: bytes) -> int:
        """Insert archived CSV (its header first; `names` its columns, each a column of the
        live `table`) in the caller's transaction: every value takes its column's type, every
        constraint applies, generated columns are computed again; how many rows."""
        ...


class ManifestError(RetentionError):
    """A manifest that does not describe its segment's tables as this version writes them."""


def collation_no_pad(collation: str) -> bool:
    """Whether trailing spaces count under a MariaDB/MySQL collation recorded in a manifest
    (MariaDB's `_nopad_` collations, MySQL's UCA 9.0.0 `_0900_` ones); every other one
    compares as PAD SPACE."""
    return "_nopad_" in collation or "_0900_" in collation


def collation_exact(collation: str) -> bool:
    """Whether a MariaDB/MySQL collation compares text exactly, as PostgreSQL compares text:
    binary and NO PAD."""
    return collation.endswith("_bin") and collation_no_pad(collation)


class RowsChangedError(DatabaseError):
    """Rows of the batch changed (by another transaction) while the batch took them: nothing
    of it is kept (it rolls back) and the next run does it again."""


class UnreadableValueError(DatabaseError):
    """A value of a table could not be read exactly as its text: the batch keeps every row
    (it rolls back) and the failure names the table and column, never the value."""


# -- floats as PostgreSQL writes them, for engines whose server does not -----------------------


def float8_text(value: float) -> str:
    """A double as PostgreSQL writes it with `extra_float_digits` > 0: the shortest digits
    that read back as the same double (a decimal exactly halfway between two doubles is not
    taken), in fixed notation for decimal exponents -4 to 14, otherwise `d.ddde+XX`
    (PostgreSQL's src/common/d2s.c)."""
    if math.isnan(value) or math.isinf(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return _pg_notation(_shortest(value, _double), math.copysign(1, value) < 0, 15)


def float4_text(value: float) -> str:
    """A single-precision float (read widened to a double) as PostgreSQL's float4 text: the
    same rules, for float4 values, fixed notation for exponents -4 to 5 (src/common/f2s.c)."""
    if math.isnan(value) or math.isinf(value):
        return float8_text(value)
    single = _single(value)
    return _pg_notation(_shortest(single, _single), math.copysign(1, single) < 0, 6)


def _double(value: float) -> float:
    return value


def _single(value: float) -> float:
    rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    return rounded


def _shortest(value: float, rounding: Callable[[float], float]) -> Decimal:
    if value == 0:
        return Decimal(0)
    exact = Decimal(value)
    # the neighbours in the value's own precision, and the midpoints a decimal must avoid
    up, down = math.nextafter(value, math.inf), math.nextafter(value, -math.inf)
    if rounding is _single:
        up = _single_next(value, 1)
        down = _single_next(value, -1)
    with localcontext() as context:
        context.prec = 80
        midpoints = {(exact + Decimal(up)) / 2, (exact + Decimal(down)) / 2}
        for precision in range(1, 18):
            text = f"{value:.{precision - 1}e}"
            if rounding(float(text)) == value and Decimal(text) not in midpoints:
                return Decimal(text)
    return exact


def _single_next(value: float, direction: int) -> float:
    """The next float4 after `value` (a float4) towards `direction`."""
    bits: int = struct.unpack("<i", struct.pack("<f", value))[0]
    bits += direction if bits >= 0 else -direction
    following: float = struct.unpack("<f", struct.pack("<i", bits))[0]
    return following


def _pg_notation(number: Decimal, negative: bool, fixed_below: int) -> str:
    sign = "-" if negative else ""
    if number == 0:
        return sign + "0"
    _, digit_tuple, exponent = abs(number).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    first = len(digits) - 1 + exponent  # the decimal exponent of the first digit
    if -4 <= first < fixed_below:
        if first < 0:
            return sign + "0." + "0" * (-first - 1) + digits
        whole, rest = digits[: first + 1].ljust(first + 1, "0"), digits[first + 1 :]
        return sign + whole + ("." + rest if rest else "")
    tail = "." + digits[1:] if len(digits) > 1 else ""
    return f"{sign}{digits[0]}{tail}e{'-' if first < 0 else '+'}{abs(first):02d}"
