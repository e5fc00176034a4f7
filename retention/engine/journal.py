"""The intent journal, written by batches whose phase changes a table without transactions.

A ROLLBACK, a crash or `kill -9` in the middle of such a batch (an accepted MyISAM or Aria
table, `accept_non_transactional`) keeps its changes there and undoes the rest, its audit entry
included. A purge whose subject or parent table has no transactions is the worst case: its
row is deleted, the children's deletes roll back, and a subject that no longer exists is never
due again. So such a batch, once its subjects are locked and re-checked (the keys are those
verified due under lock), writes what it decided into `<schema>.intents` on a connection of
its own, in a transaction that commits before the batch changes anything; then it acts, and
deletes the intent in its own transaction, with its audit entry: the intent is gone if and
only if the batch committed. The next run completes what is left (retention.engine.intents)
before anything else.

The batch changes its tables without transactions on the journal's connection too (`Aside`,
`Journal.aside`), outside its transaction, each statement committed by itself: MySQL under
`enforce_gtid_consistency` refuses a change to such a table in a transaction that changes an
InnoDB table (error 1785), and inside the transaction the change was no more atomic (a
ROLLBACK kept it). A purge deletes those rows first; its other rows, the intent's deletion
and the audit entry commit together after, in the batch's transaction, which holds the
subjects' row locks throughout.

An intent holds the batch's policy, its version (SHA-256), its phases and its subject keys
per phase; for a purge, also the link values of the rows of its tables without transactions
that other rows point to (what finds their children once those rows are deleted). Keys and
link values are internal identifiers needed to complete the batch: they live in the tool's
own schema until its commit, and are never logged, printed or written to the audit trail.

A batch whose phases change only tables with transactions (every batch on PostgreSQL) writes
nothing here.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from retention.engines import Connection, engine_of, sql
from retention.engines.inserted import insert_returning
from retention.engines.params import Json
from retention.errors import RetentionError
from retention.policy.bound import BoundPolicy
from retention.policy.relations import QName
from retention.rows import records

if TYPE_CHECKING:
    from retention.actions import Batch

TABLE = "intents"


class IntentError(RetentionError):
    """An intent cannot be written, or a run cannot complete one: nothing more is changed."""

    exit_code = 5


class Journal:
    """Where the batches of one run write their intents: a connection of its own (autocommit:
    each intent commits before its batch acts), opened on first use, shared by the run's
    batches one write at a time, closed with the run. The same connection changes the
    batches' tables without transactions, one batch at a time (`aside`)."""

    def __init__(
        self,
        connect: Callable[[], Connection],
        schema: str,
        *,
        lock_timeout_ms: int = 0,
        statement_timeout_ms: int = 0,
    ) -> None:
        self.schema = schema
        self._connect = connect
        self._limits = (lock_timeout_ms, statement_timeout_ms)
        self._conn: Connection | None = None
        self._guard = threading.Lock()

    def _connection(self) -> Connection:
        """The journal's connection, opened again when lost (the caller holds the guard)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._connect()
            lock_ms, statement_ms = self._limits
            engine_of(self._conn).session.autocommit_limits(
                self._conn, lock_timeout_ms=lock_ms, statement_timeout_ms=statement_ms
            )
        return self._conn

    @contextmanager
    def aside(self) -> Iterator[Connection]:
        """The connection, for one batch's changes to its tables without transactions until
        the block ends, in autocommit: each statement commits by itself, outside the batch's
        transaction (retention.actions.base.Aside). Its temporary tables are the batch's
        meanwhile: other batches wait, for this or to write their intents."""
        with self._guard:
            yield self._connection()

    def write(
        self, run_id: uuid.UUID, batch: Batch, keys: dict[str, list[Any]], values: Any
    ) -> int:
        """The intent of a batch, committed; its id."""
        table = sql.Identifier(self.schema, TABLE)
        query = sql.SQL(
            "INSERT INTO {} (run_id, policy, policy_sha256, phases, subject_keys, link_values) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(table)
        params = (
            str(run_id),
            batch.policy.name,
            batch.policy.loaded.sha256,
            Json(list(keys)),
            Json(keys),
            Json(values),
        )
        with self._guard:
            conn = self._connection()
            with conn.transaction():
                row = insert_returning(
                    conn,
                    table,
                    query,
                    params,
                    key="intent_id",
                    returning=sql.Identifier("intent_id"),
                )
        return int(row[0])

    def close(self) -> None:
        with self._guard:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


@dataclass(frozen=True)
class Aside:
    """A batch's tables without transactions, changed on the journal's connection."""

    journal: Journal
    tables: frozenset[QName]

    def connection(self) -> AbstractContextManager[Connection]:
        return self.journal.aside()


@dataclass(frozen=True)
class Replaying:
    """A batch that completes intent `intent_id` (left by run `run_id`) instead of writing one.
    `recheck`: its subjects are re-checked as in any batch (column actions: a subject's rows
    are all still reachable, and one that came back or was put on hold since is left alone);
    otherwise (purge) every subject of the intent is completed, present or gone, except those
    under a legal hold now, which stay in the intent."""

    intent_id: int
    run_id: str
    recheck: bool
    kept: Mapping[QName, Sequence[Sequence[Any]]] = field(default_factory=dict)
    held: list[Any] = field(default_factory=list)  # filled by the batch: kept for later

    @property
    def detail(self) -> dict[str, Any]:
        return {"completes": {"intent": self.intent_id, "run": self.run_id}}

    def kept_rows(self) -> dict[QName, list[list[Any]]]:
        """The link values of the rows to complete: those of subjects not held now."""
        held = {subject_of(k) for k in self.held}
        return {
            table: [list(row[:-1]) for row in rows if row[-1] not in held]
            for table, rows in self.kept.items()
        }


def begin(
    conn: Connection,
    run_id: uuid.UUID,
    batches: Sequence[Batch],
    unatomic: frozenset[QName],
    journal: Journal | None,
) -> int | None:
    """Before a batch acts: its intent, committed on the journal's connection, when its phases
    change tables without transactions (`unatomic`); its id (None: nothing written)."""
    if not unatomic or not any(b.keys for b in batches):
        return None
    first = batches[0]
    if journal is None or first.phase.action == "archive":  # the gate refuses archives
        raise IntentError(
            f"{first.policy.name}/{first.phase.name}: changes tables without transactions and "
            "its batches cannot write their intents (no connection of their own for the "
            "journal, or an archive)"
        )
    keys = {b.phase.name: [_plain(k) for k in b.keys] for b in batches if b.keys}
    values = _link_values(conn, first, unatomic) if first.phase.action == "purge" else []
    return journal.write(run_id, first, keys, values)


def end(conn: Connection, schema: str, intent_id: int | None, held: Sequence[Any] = ()) -> None:
    """In the batch's transaction, before its commit: the intent deleted (atomic with the
    batch's changes to tables with transactions and its audit entry), or, when some of its
    subjects are held now, narrowed to them."""
    if intent_id is None:
        return
    table = sql.Identifier(schema, TABLE)
    if held:
        conn.execute(
            sql.SQL("UPDATE {} SET subject_keys = %s WHERE intent_id = %s").format(table),
            (Json(_narrowed(conn, schema, intent_id, held)), intent_id),
        )
        return
    conn.execute(sql.SQL("DELETE FROM {} WHERE intent_id = %s").format(table), (intent_id,))


def _narrowed(conn: Connection, schema: str, intent_id: int, held: Sequence[Any]) -> Any:
    row = conn.execute(
        sql.SQL("SELECT subject_keys FROM {} WHERE intent_id = %s").format(
            sql.Identifier(schema, TABLE)
        ),
        (intent_id,),
    ).fetchone()
    keys = decode(row[0]) if row else {}
    kept = {_plain(k) for k in held}
    return {phase: [k for k in found if k in kept] for phase, found in keys.items()}


def _link_values(
    conn: Connection, batch: Batch, unatomic: frozenset[QName]
) -> list[dict[str, Any]]:
    """For a purge: the link values of the member rows of its tables without transactions
    that other tables point to (read as the purge will read them, in this transaction), each
    row with the subject it belongs to (one of them, when several of the batch share it), so
    that a subject held since can be left out. Once such a row is deleted and the batch cut
    short, nothing else finds its children. The subject table's keys are the intent's keys."""
    policy = batch.policy
    needed = records.needed_columns(policy)
    wanted = {
        t: c
        for t, c in needed.items()
        if t in unatomic and not (t == policy.subject.qname and c == [policy.key.name])
    }
    if not wanted:
        return []
    found = records.collect(conn, policy, batch.keys, groups=_subjects(conn, batch))
    values: list[dict[str, Any]] = []
    for table, columns in wanted.items():
        query = sql.SQL("SELECT {}, grp FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), found.sources[table]
        )
        rows = [[_plain(v) for v in row] for row in conn.execute(query).fetchall()]
        values.append({"table": list(table), "columns": columns, "rows": rows})
    return values


def _subjects(conn: Connection, batch: Batch) -> sql.Composable:
    """A temporary table (k, grp) of the batch's subjects, each its own group (its key as
    JSON text): what attributes a member row to a subject (retention.rows.records)."""
    engine = engine_of(conn)
    table = engine.dialect.temporary_table(
        "retention_intent_subjects", [("k", batch.policy.key), ("grp", "text")]
    )
    for statement in table.renew:
        conn.execute(statement)
    engine.bulk.load(conn, table.name, ["k", "grp"], [(k, subject_of(k)) for k in batch.keys])
    return table.name


def subject_of(key: Any) -> str:
    """How an intent's link values name the subject they belong to."""
    return json.dumps(_plain(key))


def kept_values(
    batch_policy: BoundPolicy, values: Sequence[Mapping[str, Any]]
) -> dict[QName, list[list[Any]]]:
    """An intent's link values, per table, each row ending with its subject (`subject_of`), for
    the purge that completes it; the columns must be those the policy's links compare with now
    (the same policy version: the same)."""
    needed = records.needed_columns(batch_policy)
    kept: dict[QName, list[list[Any]]] = {}
    for item in values:
        table = (str(item["table"][0]), str(item["table"][1]))
        if needed.get(table) != list(item["columns"]):
            raise IntentError(
                f"{table[0]}.{table[1]}: the links of policy {batch_policy.name} no longer "
                "compare the columns its intent kept (the schema changed since)"
            )
        kept[table] = [list(row) for row in item["rows"]]
    return kept


def _plain(value: Any) -> Any:
    """A key or link value as JSON keeps it: numbers and text as they are, exact numbers and
    dates as their text (the server converts them back to the column's type)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal | date | datetime | uuid.UUID):
        return value.isoformat() if isinstance(value, date | datetime) else str(value)
    raise IntentError(
        f"a key or link value of type {type(value).__name__} cannot be kept in the intent journal",
        hint="convert the table to a transactional engine (ALTER TABLE ... ENGINE=InnoDB)",
    )


def decode(value: Any) -> Any:
    """A JSON column as read back (MariaDB: its text; PostgreSQL: already decoded)."""
    return json.loads(value) if isinstance(value, str | bytes) else value
