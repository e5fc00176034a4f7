"""The legal holds the audit trail records, against the holds table the clocks read.

A run excludes held subjects by reading `holds`, a plain table: an account that may write it
(a database superuser, the schema's owner) could delete a hold, or end it, or move it to another
key, and the next run would purge the person the hold protected, with a trail that still
verified. Every hold is also recorded in the trail (`hold_add`, `hold_release`, signed and
chained, in the transaction that writes the row), so the two are compared:

- the trail's holds still standing: each `hold_add` not followed by a `hold_release` of the same
  scope and subject (a release ends every earlier hold of that subject in its scope, so a hold
  added again after a tampering, then released, ends both);
- each must have an active row of the same scope, one of the ids the trail gave that subject's
  holds and, when the audit key is at hand (the trail holds keyed digests, never a key), a
  subject whose digest the entry recorded.

A hold standing in the trail without such a row is reported (`unmatched_holds`): `run` then
refuses to act at all (`HoldsMismatchError`), `plan` and `check` say so, `audit verify` reports the
trail and the table apart. Rows without a trail entry (holds added before the tool recorded
them, or written by hand) only hold more: they are not reported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retention.audit.trail import AuditTrail, Entry, subject_digest
from retention.engines import Connection, engine_of, sql
from retention.errors import RetentionError
from retention.keys import Key
from retention.store.holds import Hold, Scope


class HoldsMismatchError(RetentionError):
    """A hold the trail records stands no more in the holds table: nothing runs."""

    exit_code = 5


@dataclass(frozen=True)
class TrailHold:
    """A `hold_add` entry: its scope (a policy, or every policy on a table) and subject."""

    seq: int
    hold_id: int | None
    policy: str | None  # narrowed to this policy (or a hold recorded before holds had a scope)
    table: str | None  # every policy on this table (policy None)
    policies: tuple[str, ...]  # the policies whose digests the entry recorded
    digests: frozenset[str]

    def same_subject(self, other: TrailHold) -> bool:
        return (self.policy, self.table) == (other.policy, other.table) and bool(
            self.digests & other.digests
        )

    def describe(self) -> str:
        scope = f"policy {self.policy}" if self.policy else f"every policy on {self.table}"
        held = f"hold {self.hold_id}, " if self.hold_id is not None else ""
        return f"the hold added at entry #{self.seq} ({held}{scope})"


@dataclass(frozen=True)
class _Row:
    hold_id: int
    policy: str | None
    subject_key: str
    table: str | None


def unmatched_holds(conn: Connection, schema: str, key: Key | None) -> list[TrailHold]:
    """The holds the trail records as standing that the holds table does not hold (module
    docstring); [] while either table is missing (nothing recorded yet)."""
    catalogue = engine_of(conn).catalogue
    if not (
        catalogue.table_exists(conn, schema, "audit")
        and catalogue.table_exists(conn, schema, "holds")
    ):
        return []
    standing, every = _standing(conn, schema)
    if not standing:
        return []
    rows = _active_rows(conn, schema)
    return [h for h in standing if not _held(h, every, rows, key)]


def refuse_unmatched(conn: Connection, schema: str, key: Key | None) -> None:
    """Raise `HoldsMismatchError` when a hold of the trail is missing from the holds table."""
    missing = unmatched_holds(conn, schema, key)
    if missing:
        raise HoldsMismatchError(describe(missing), hint=HINT)


HINT = (
    "if the hold stands, add it again with 'retention hold add' (the case's reason); to end "
    "it, add it again then release it with 'retention hold release': both are recorded. "
    "'retention audit show --format json' shows the hold entries (event hold_add)"
)


def describe(missing: Sequence[TrailHold]) -> str:
    """What the operator is told: which holds, and why nothing runs."""
    listed = "; ".join(h.describe() for h in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return (
        f"the holds table does not match the audit trail: {listed}{more} "
        f"{'is' if len(missing) == 1 else 'are'} no longer active there, yet the trail records "
        "no release (a hold removed outside 'retention hold' would let its subject be purged); "
        "nothing runs until the table and the trail agree"
    )


def hold_entry(
    trail: AuditTrail, scope: Scope, policies: Sequence[str], subject: str, hold: Hold
) -> Entry:
    """The trail's entry for `hold`, just added (`hold_add`) or released (`hold_release`):
    its scope, the policies it covers and the subject's digest under each (never the key)."""
    detail: dict[str, Any] = {"hold_id": hold.hold_id}
    if scope.policy is None:
        detail.update(scope="person", table=scope.person.table, policies=list(policies))
    adding = hold.released_at is None
    if not adding:
        assert hold.released_at is not None
        detail["held_days"] = (hold.released_at - hold.held_since).days
    return Entry(
        event="hold_add" if adding else "hold_release",
        outcome="held" if adding else "released",
        policy=scope.policy,
        subjects=1,
        subject_digests=tuple(sorted({trail.subject_digest(p, subject) for p in policies})),
        detail=detail,
    )


def _standing(conn: Connection, schema: str) -> tuple[list[TrailHold], list[TrailHold]]:
    """The trail's holds still standing, and every hold it ever recorded, in order."""
    rows = conn.execute(
        sql.SQL(
            "SELECT seq, event, policy, subject_digests, detail FROM {} "
            "WHERE event IN ('hold_add', 'hold_release') ORDER BY seq"
        ).format(sql.Identifier(schema, "audit"))
    ).fetchall()
    standing: list[TrailHold] = []
    every: list[TrailHold] = []
    for seq, event, policy, digests, detail in rows:
        hold = _trail_hold(int(seq), policy, digests, detail)
        if event == "hold_add":
            standing.append(hold)
            every.append(hold)
        else:
            standing = [h for h in standing if not h.same_subject(hold)]
    return standing, every


def _trail_hold(seq: int, policy: object, digests: object, detail: object) -> TrailHold:
    said = _json(detail)
    found = _json(digests)
    listed = found if isinstance(found, list) else []
    if not isinstance(said, dict):
        said = {}
    person = said.get("scope") == "person"
    hold_id = said.get("hold_id")
    named = said.get("policies") if person else [policy]
    return TrailHold(
        seq,
        int(hold_id) if isinstance(hold_id, int) else None,
        None if person else (str(policy) if policy is not None else None),
        str(said.get("table")) if person else None,
        tuple(str(p) for p in named or () if p is not None),
        frozenset(str(d) for d in listed),
    )


def _json(value: object) -> Any:
    """A JSON column as PostgreSQL gives it (a value), or as MariaDB does (its text)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _active_rows(conn: Connection, schema: str) -> list[_Row]:
    return [
        _Row(int(r[0]), r[1], str(r[2]), r[3])
        for r in conn.execute(
            sql.SQL(
                "SELECT hold_id, policy, subject_key, subject_table FROM {} "
                "WHERE released_at IS NULL"
            ).format(sql.Identifier(schema, "holds"))
        ).fetchall()
    ]


def _held(hold: TrailHold, every: list[TrailHold], rows: list[_Row], key: Key | None) -> bool:
    """Whether an active row stands for the trail's `hold`: same scope, an id the trail gave
    a hold of this subject in this scope, and (with the key) the subject's digest."""
    ids = {h.hold_id for h in every if h.same_subject(hold) and h.hold_id is not None}
    for row in rows:
        if row.hold_id not in ids:
            continue
        if hold.table is not None and (row.policy is not None or row.table != hold.table):
            continue
        if hold.policy is not None and row.policy != hold.policy:
            continue
        if key is None or any(
            subject_digest(key, p, row.subject_key) in hold.digests for p in hold.policies
        ):
            return True
    return False
