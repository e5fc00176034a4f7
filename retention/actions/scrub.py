"""`scrub`: remove the personal spans of free-text and JSON columns, keep the rest.

For each table of the phase: the rows of the batch's subjects are read (and locked, since they
are written back from what was read), their texts scrubbed in this process
(:mod:`retention.discovery.scrub`: Presidio, French recognizers, identical texts analysed once,
a worker pool for large batches), and only the rows whose text changed are written back
set-based (retention.actions.writeback: staged in a temporary table, one UPDATE). A column is
replaced by a French tag (``<PERSONNE>``, ``<TEL>``...) or, with ``replace_with: pseudonym``, by
the keyed pseudonym of each span (the pseudonymisation key never leaves this process).

Idempotent by construction: a scrubbed text is a fixed point of the scrubber, so a second pass
writes nothing. The plan cannot tell a scrubbed text from a raw one without analysing it: every
text a batch analysed and left clean is therefore recorded in the scrub ledger
(`retention.store.ledger`: the SHA-256 of the text as it stands, per column and analyser), and
a text found there is not pending any more, for the plan, the exposure figures and later runs.
Without the ledger (`retention init` not run since it was added) every non-null value is
pending, as before.

A scrubbed text can be longer than the original (``Léa`` becomes ``<PERSONNE>``); in a
``varchar(n)`` column it is cut at ``n`` characters, never inside a tag or a pseudonym.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from typing import Any, ClassVar

from loguru import logger

from retention.actions.base import Batch
from retention.actions.pseudonymize import pseudonym
from retention.actions.writeback import write_back
from retention.discovery.scrub import PROTECTED, Replace, get_scrubber, tag
from retention.engines import Connection, engine_of, sql
from retention.engines.dialect import Typed
from retention.errors import RetentionError
from retention.keys import Key
from retention.policy.bound import BoundColumn
from retention.policy.expr import Params
from retention.policy.relations import QName
from retention.rows.members import members
from retention.rows.values import ledger_target, pending
from retention.store.ledger import TABLE as LEDGER_TABLE


def pseudonym_of_span(key: Key, _entity: str, text: str) -> str:
    """The keyed pseudonym of a personal span (the same as the column action's)."""
    return pseudonym(key, text)


def fit(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters, never inside a tag or a pseudonym."""
    if limit is None or len(text) <= limit:
        return text
    for match in PROTECTED.finditer(text):
        if match.start() < limit < match.end():
            return text[: match.start()].rstrip()
    return text[:limit]


class Scrub:
    """Replace the personal spans of texts with tags or pseudonyms."""

    name: ClassVar[str] = "scrub"

    def apply(self, conn: Connection, batch: Batch) -> dict[str, int]:
        return {batch.table_name(t): self._table(conn, batch, t) for t in batch.phase.tables}

    def _table(self, conn: Connection, batch: Batch, table: QName) -> int:
        items = [i for i in batch.phase.columns if i.table.qname == table]
        primary = batch.policy.table(table).primary_key
        with batch.on(conn, table) as changing:  # a table without transactions: aside
            rows = self._read(changing, batch, table, primary, items)
            if not rows:
                return 0
            changed, columns = self._scrub(changing, batch, table, primary, items, rows)
        _record_clean(conn, batch, table, items, rows, columns)  # the ledger: the batch's
        return changed

    def _scrub(
        self,
        conn: Connection,
        batch: Batch,
        table: QName,
        primary: tuple[str, ...],
        items: list[BoundColumn],
        rows: list[tuple[Any, ...]],
    ) -> tuple[int, list[list[str | None]]]:
        """Rows changed, and per column the new value of each row (None: unchanged)."""
        width = len(primary)
        columns = [
            self._column(batch, item, [row[width + j] for row in rows])
            for j, item in enumerate(items)
        ]
        staged = [
            (*row[:width], *(column[n] for column in columns))
            for n, row in enumerate(rows)
            if any(column[n] is not None for column in columns)
        ]
        if not staged:
            return 0, columns
        names = [i.column.name for i in items]
        return write_back(conn, batch.policy.table(table), names, staged), columns

    @staticmethod
    def _read(
        conn: Connection,
        batch: Batch,
        table: QName,
        primary: tuple[str, ...],
        items: list[BoundColumn],
    ) -> list[tuple[Any, ...]]:
        """Key and texts of the batch's rows with something to scrub, locked until commit."""
        dialect = engine_of(conn).dialect
        params = Params(prefix="s")
        refs = [sql.Identifier("r", i.column.name) for i in items]
        todo = sql.SQL(" OR ").join(
            pending("scrub", i, r, params, dialect=dialect)
            for i, r in zip(items, refs, strict=True)
        )
        rows_of = members(
            batch.policy, table, "r", batch.keys_sql(params, dialect), params, dialect=dialect
        )
        query = sql.SQL("SELECT {}, {} FROM {} WHERE {} AND ({}) ORDER BY {} {}").format(
            sql.SQL(", ").join(sql.Identifier("r", c) for c in primary),
            sql.SQL(", ").join(dialect.as_text(r) for r in refs),
            dialect.member_rows(sql.Identifier(*table), "r", rows_of),
            rows_of.condition,
            todo,
            sql.SQL(", ").join(sql.Identifier("r", c) for c in primary),
            dialect.lock(no_key=True, of="r"),
        )
        return conn.execute(query, params.values).fetchall()

    @staticmethod
    def _column(batch: Batch, item: BoundColumn, values: list[str | None]) -> list[str | None]:
        """The new value of each row, or None where it does not change."""
        scrubbed = get_scrubber().scrub_values(
            values, is_json=item.column.is_json, replace=_replacer(batch, item)
        )
        limit = None if item.column.is_json else item.column.max_length
        out: list[str | None] = []
        cut = 0
        for old, new in zip(values, scrubbed, strict=True):
            if new is None or new == old:
                out.append(None)
                continue
            fitted = fit(new, limit)
            cut += fitted != new
            out.append(fitted)
        if cut:
            logger.warning(
                "scrub: {} value(s) of {}.{} cut to {} characters after replacement",
                cut,
                item.table.name,
                item.column.name,
                limit,
            )
        return out


def _record_clean(
    conn: Connection,
    batch: Batch,
    table: QName,
    items: list[BoundColumn],
    rows: list[tuple[Any, ...]],
    columns: list[list[str | None]],
) -> None:
    """The texts of `rows` (primary key, then the texts read) in which this batch's analysis
    found nothing go into the scrub ledger (their digest), in the batch's transaction, so a
    later run does not analyse them again (retention.store.ledger). Only where the column still
    holds exactly that text: a row changed since it was read is analysed again next time."""
    dialect = engine_of(conn).dialect
    target = batch.policy.table(table)
    primary = target.primary_key
    width = len(primary)
    for j, item in enumerate(items):
        if item.ledger is None:
            continue
        chosen = []
        for row, new in zip(rows, columns[j], strict=True):
            text = row[width + j]
            # only a text an analysis found nothing in (one that changed is recorded by the next
            # run's analysis of its new form), and not a JSON text with a key twice (parsed,
            # the first value is lost: it was not analysed)
            if new is None and text is not None and not _duplicate_keys(text):
                chosen.append((*row[:width], hashlib.sha256(text.encode("utf-8")).digest()))
        if not chosen:
            continue
        params = Params(prefix="l")
        names = [f"k{i}" for i in range(width)]
        typed: list[tuple[str, Typed]] = [
            *((n, target.columns[c]) for n, c in zip(names, primary, strict=True)),
            ("d", "bytes"),
        ]
        found = dialect.row_set(params, chosen, typed, "u")
        query = sql.SQL(
            "SELECT DISTINCT {t}, {a}, {d} FROM {rows} JOIN {table} AS r ON {on} "
            "WHERE {digest} = {d}"
        ).format(
            t=params.add(ledger_target(item)),
            a=params.add(item.ledger.analyser),
            d=found.columns["d"],
            rows=found.source,
            table=sql.Identifier(*table),
            on=sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier("r", c), found.columns[n])
                for c, n in zip(primary, names, strict=True)
            ),
            digest=dialect.digest(sql.Identifier("r", item.column.name)),
        )
        conn.execute(
            dialect.insert_missing(
                sql.Identifier(item.ledger.schema, LEDGER_TABLE),
                ["target", "analyser", "digest"],
                query,
            ),
            params.values,
        )


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _DuplicateKeyError
    return dict(pairs)


def _duplicate_keys(text: str) -> bool:
    """A JSON text with a key twice in one object (json.loads keeps the last value only)."""
    if text.lstrip()[:1] not in ("{", "["):
        return False
    try:
        json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError:
        return True
    except ValueError:
        return False
    return False


def _replacer(batch: Batch, item: BoundColumn) -> Replace:
    if item.spec.replace_with == "tag":
        return tag
    if batch.pseudonym_key is None:
        raise RetentionError(
            f"scrub of {item.table.name}.{item.column.name} with replace_with: pseudonym needs "
            "the pseudonymisation key (pseudonym_key)"
        )
    return partial(pseudonym_of_span, batch.pseudonym_key)
