"""`pseudonymize`: keyed, deterministic pseudonyms computed in this process.

The same value gives the same pseudonym in every table and every run (HMAC-SHA-256 of the
normalised value under the pseudonymisation key), so joins and statistics survive. The key never
reaches the database server: values are read, pseudonyms computed here, then written back
set-based (retention.actions.writeback: staged in a temporary table, one UPDATE per table and
batch). A pseudonym is
recognisable (`PSN-` and base32), so a value already pseudonymised is never pseudonymised again.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, ClassVar

from retention.actions.base import Batch, per_table
from retention.actions.writeback import write_back
from retention.engines import Connection, engine_of, sql
from retention.errors import RetentionError
from retention.keys import Key
from retention.policy.bound import BoundColumn
from retention.policy.expr import Params
from retention.policy.relations import QName
from retention.rows.members import members
from retention.rows.values import PSEUDONYM_PATTERN, pending

PREFIX = "PSN-"
DEFAULT_LENGTH = 24  # PSN- and 20 base32 characters: 100 bits
_RECOGNISED = re.compile(PSEUDONYM_PATTERN)


@lru_cache(maxsize=1 << 16)
def pseudonym(key: Key, value: str, length: int = DEFAULT_LENGTH) -> str:
    """The pseudonym of `value`, `length` characters long (at least 12). Cached: names repeat
    (a bounded cache, so memory does not grow with the table)."""
    normalised = unicodedata.normalize("NFC", value).strip().casefold()
    # 20 bytes of the digest give its first 32 base32 characters, without padding
    body = base64.b32encode(key.digest(normalised.encode("utf-8"))[:20]).decode("ascii")
    return PREFIX + body[: max(8, min(length, 32) - len(PREFIX))]


def is_pseudonym(value: str) -> bool:
    # fullmatch: Python's `$` also matches before a final line feed, PostgreSQL's does not
    return _RECOGNISED.fullmatch(value) is not None


def _length(item: BoundColumn) -> int:
    limit = item.column.max_length
    return DEFAULT_LENGTH if limit is None else min(DEFAULT_LENGTH, limit)


class Pseudonymize:
    """Replace values with keyed pseudonyms."""

    name: ClassVar[str] = "pseudonymize"

    def apply(self, conn: Connection, batch: Batch) -> dict[str, int]:
        return per_table(conn, batch, lambda changing, t: self.table(changing, batch, t))

    def table(self, conn: Connection, batch: Batch, table: QName) -> int:
        """Apply the phase to one table; returns the rows changed."""
        key = needs_key(batch)
        dialect = engine_of(conn).dialect
        items = [i for i in batch.phase.columns if i.table.qname == table]
        primary = batch.policy.table(table).primary_key
        params = Params(prefix="s")
        refs = [sql.Identifier("r", i.column.name) for i in items]
        todo = sql.SQL(" OR ").join(
            pending("pseudonymize", i, r, params, dialect=dialect)
            for i, r in zip(items, refs, strict=True)
        )
        rows_of = members(
            batch.policy, table, "r", batch.keys_sql(params, dialect), params, dialect=dialect
        )
        # Locked until the batch commits: a concurrent edit cannot slip between read and write.
        select = sql.SQL("SELECT {}, {} FROM {} WHERE {} AND ({}) {}").format(
            sql.SQL(", ").join(sql.Identifier("r", c) for c in primary),
            sql.SQL(", ").join(refs),
            dialect.member_rows(sql.Identifier(*table), "r", rows_of),
            rows_of.condition,
            todo,
            dialect.lock(no_key=True),
        )
        rows = conn.execute(select, params.values).fetchall()
        if not rows:
            return 0
        width = len(primary)
        new = pseudonymiser(items, key)
        staged = [(*row[:width], *new(row[width:])) for row in rows]
        columns = [i.column.name for i in items]
        return write_back(conn, batch.policy.table(table), columns, staged)


def needs_key(batch: Batch) -> Key:
    if batch.pseudonym_key is None:
        raise RetentionError("pseudonymize needs the pseudonymisation key (pseudonym_key)")
    return batch.pseudonym_key


def pseudonymiser(items: Sequence[BoundColumn], key: Key) -> Callable[[Sequence[Any]], list[Any]]:
    """A function giving the pseudonyms of one row's values (of the columns `items`); NULLs
    and values that are already pseudonyms are kept as they are. What depends on the columns
    only is worked out once, not once per row."""
    # char(n) comes padded with spaces, which its cast to text (the SQL side) drops
    columns = [(_length(i), i.column.base_type == "character") for i in items]

    def one(values: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for (length, padded), value in zip(columns, values, strict=True):
            if value is None:
                out.append(None)
                continue
            text = value if type(value) is str else str(value)
            # most values are not pseudonyms: the prefix alone says so, without the pattern
            if text.startswith(PREFIX) and is_pseudonym(text.rstrip(" ") if padded else text):
                out.append(value)
            else:
                out.append(pseudonym(key, text, length))
        return out

    return one
