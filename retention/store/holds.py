"""Legal holds: add, release, list. A hold protects a person: without a policy it holds one key
of a subject table under every policy whose subject is that table and key (archive expiry
included); with a policy it is narrowed to that policy. A held subject is excluded from every
phase the hold covers; once released, its clock is extended by the time it was held (computed
by the clock)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from retention.engines import Connection, engine_of, sql
from retention.engines.inserted import insert_returning
from retention.errors import RetentionError


class HoldError(RetentionError):
    exit_code = 2


@dataclass(frozen=True)
class Person:
    """Whom a hold without a policy protects: one key column of one subject table."""

    table: str  # schema.table
    column: str

    @classmethod
    def of(cls, qname: tuple[str, str], column: str) -> Person:
        return cls(".".join(qname), column)

    def compared(self, by_name: bool) -> str:
        """What a holds row's `subject_table` is compared with (see :func:`covers`): the whole
        name, or `.table` (the end of any `schema.table` of that table's name)."""
        return "." + self.table.split(".", 1)[-1] if by_name else self.table

    def same(self, other: Person, by_name: bool) -> bool:
        """Whether a hold on `other` protects this person (`by_name`: see :func:`covers`)."""
        if not by_name:
            return self == other
        return self.column == other.column and other.table.endswith(self.compared(True))


@dataclass(frozen=True)
class Scope:
    """What a hold covers: one policy (narrowed), or the person under every policy."""

    person: Person
    policy: str | None = None

    def describe(self) -> str:
        if self.policy is not None:
            return f"policy {self.policy} only"
        return f"every policy on {self.person.table} ({self.person.column})"


@dataclass(frozen=True)
class Hold:
    hold_id: int
    policy: str | None  # None: every policy on subject_table (see Person)
    subject_key: str
    reason: str
    held_since: datetime
    held_by: str
    released_at: datetime | None
    released_by: str | None
    subject_table: str | None
    subject_column: str | None

    @property
    def scope(self) -> str:
        if self.policy is None:
            return f"* {self.subject_table}"
        return self.policy if self.subject_table is not None else f"{self.policy}+"

    @property
    def legacy(self) -> bool:
        """Recorded before holds had a scope, when `--policy` was required: it holds the
        person under every policy on the same subject table and key as that policy."""
        return self.policy is not None and self.subject_table is None


def _hold(conn: Connection, row: Sequence[Any]) -> Hold:
    """A holds row; its instants in the session's zone, as PostgreSQL gives a timestamptz
    (MariaDB's DATETIME(6) columns hold UTC without a zone)."""
    zone = conn.info.timezone
    values: list[Any] = [
        v.replace(tzinfo=UTC).astimezone(zone)
        if isinstance(v, datetime) and v.tzinfo is None
        else v
        for v in row
    ]
    return Hold(*values)


def covers(
    policy: sql.Composable,
    table: sql.Composable,
    column: sql.Composable,
    alias: str | None = None,
    *,
    by_name: bool = False,
) -> sql.Composable:
    """The condition on a holds row: it covers a policy (`policy`, a condition on the column
    `policy`, e.g. `policy = %s`) or holds the person everywhere on that policy's subject
    (`table` and `column`: named placeholders for `Person.compared(by_name)` and the
    `Person`'s column). `by_name` (the dialect's `holds_by_table_name`): the row's table
    compared by its end, `.patients`, whatever database name it was recorded under."""

    def col(name: str) -> sql.Composable:
        return sql.Identifier(alias, name) if alias else sql.Identifier(name)

    same_table = (
        sql.SQL("RIGHT({t}, CHAR_LENGTH({table})) = {table}")
        if by_name
        else sql.SQL("{t} = {table}")
    ).format(t=col("subject_table"), table=table)
    return sql.SQL("({policy} OR ({p} IS NULL AND {same_table} AND {c} = {column}))").format(
        policy=policy,
        p=col("policy"),
        same_table=same_table,
        c=col("subject_column"),
        column=column,
    )


def _where(conn: Connection, scope: Scope, subject: str) -> tuple[sql.Composable, dict[str, Any]]:
    """The holds rows of `scope` on `subject`, its key compared exactly (on MariaDB too, whose
    collations ignore trailing spaces: `dialect.same_text`)."""
    dialect = engine_of(conn).dialect
    key = dialect.same_text(sql.Identifier("subject_key"), sql.SQL("%(subject)s"))
    if scope.policy is not None:
        return sql.SQL("policy = %(policy)s AND {}").format(key), {
            "policy": scope.policy,
            "subject": subject,
        }
    by_name = dialect.holds_by_table_name
    person = covers(
        sql.SQL("false"),
        sql.SQL("%(table)s"),
        sql.SQL("%(column)s"),
        by_name=by_name,
    )
    return sql.SQL("{} AND {}").format(person, key), {
        "table": scope.person.compared(by_name),
        "column": scope.person.column,
        "subject": subject,
    }


def add_hold(conn: Connection, schema: str, scope: Scope, subject: str, reason: str) -> Hold:
    """A new hold (one active hold per scope and subject)."""
    if active(conn, schema, scope, subject):
        raise HoldError(
            f"this subject is already on hold for {scope.describe()}",
            hint="'retention hold list' shows the active holds",
        )
    person = scope.person
    table = sql.Identifier(schema, "holds")
    row = insert_returning(
        conn,
        table,
        sql.SQL(
            "INSERT INTO {} (policy, subject_key, reason, subject_table, subject_column) "
            "VALUES (%s, %s, %s, %s, %s)"
        ).format(table),
        (scope.policy, subject, reason, person.table, person.column),
        key="hold_id",
    )
    return _hold(conn, row)


def release_hold(conn: Connection, schema: str, scope: Scope, subject: str) -> Hold:
    """End the active hold of `scope` on `subject`: its row locked, updated and read again in
    one transaction (MariaDB has no UPDATE ... RETURNING), so that two releases at once end
    it once (the second finds no active hold)."""
    where, params = _where(conn, scope, subject)
    table = sql.Identifier(schema, "holds")
    with conn.transaction():
        locked = conn.execute(
            sql.SQL(
                "SELECT hold_id FROM {} WHERE {} AND released_at IS NULL ORDER BY hold_id "
                "FOR UPDATE"
            ).format(table, where),
            params,
        ).fetchall()
        if not locked:
            raise HoldError(
                f"no active hold for this subject on {scope.describe()}",
                hint="'retention hold list' shows the active holds and their scope "
                "(a policy, or * for every policy on a table)",
            )
        conn.execute(  # MariaDB's sessions run in UTC, as its DATETIME(6) columns hold
            sql.SQL(
                "UPDATE {} SET released_at = CURRENT_TIMESTAMP(6), released_by = current_user "
                "WHERE {} AND released_at IS NULL"
            ).format(table, where),
            params,
        )
        row = conn.execute(
            sql.SQL("SELECT * FROM {} WHERE hold_id = %s").format(table), (locked[0][0],)
        ).fetchone()
    assert row is not None
    return _hold(conn, row)


def active(conn: Connection, schema: str, scope: Scope, subject: str) -> bool:
    where, params = _where(conn, scope, subject)
    row = conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE {} AND released_at IS NULL").format(
            sql.Identifier(schema, "holds"), where
        ),
        params,
    ).fetchone()
    return row is not None


def list_holds(
    conn: Connection,
    schema: str,
    policy: str | None = None,
    include_released: bool = False,
    person: Person | None = None,
) -> list[Hold]:
    """Holds, all or those covering `policy` (whose subject is `person`, when given)."""
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {}
    if policy:
        narrowed = sql.SQL("policy = %(policy)s")
        params["policy"] = policy
        if person is None:
            conditions.append(narrowed)
        else:
            by_name = engine_of(conn).dialect.holds_by_table_name
            conditions.append(
                covers(narrowed, sql.SQL("%(table)s"), sql.SQL("%(column)s"), by_name=by_name)
            )
            params.update(table=person.compared(by_name), column=person.column)
    if not include_released:
        conditions.append(sql.SQL("released_at IS NULL"))
    rows = conn.execute(
        sql.SQL("SELECT * FROM {} WHERE {} ORDER BY hold_id").format(
            sql.Identifier(schema, "holds"), sql.SQL(" AND ").join(conditions)
        ),
        params,
    ).fetchall()
    return [_hold(conn, row) for row in rows]
