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
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from retention.audit.seal import TrailKeys
from retention.audit.trail import SIGNED_COLUMNS, AuditTrail, Entry, entry_problem, subject_digest
from retention.engines import Connection, engine_of, sql
from retention.engines.rows import dict_row
from retention.errors import RetentionError
from retention.keys import Key
from retention.store.holds import Hold, Scope


class HoldsMismatchError(RetentionError):
    """A hold the trail records stands no more in the holds table: nothing runs."""

    exit_code = 5


@dataclass(frozen=True)
class TrailHold:
    """A `hold_add` or `hold_release` entry: its scope (a policy, or every policy on a table
    and key column) and subject; a release's days held."""

    seq: int
    hold_id: int | None
    policy: str | None  # narrowed to this policy (or a hold recorded before holds had a scope)
    table: str | None  # every policy on this table (policy None)
    column: str | None  # and this key column (recorded since the check compares it)
    policies: tuple[str, ...]  # the policies whose digests the entry recorded
    digests: frozenset[str]
    held_days: int | None = None  # a release's

    def same_scope(self, other: TrailHold) -> bool:
        return (self.policy, self.table) == (other.policy, other.table)

    def ends(self, added: TrailHold) -> bool:
        """Whether this release ends the hold `added`: its id, or its subject in its scope
        (a release ends every earlier hold of the subject there)."""
        if not self.same_scope(added):
            return False
        same_id = self.hold_id is not None and self.hold_id == added.hold_id
        return same_id or bool(self.digests & added.digests)

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
    column: str | None
    held_days: int | None  # released rows: whole days from held_since to released_at


@dataclass(frozen=True)
class Mismatch:
    """A hold of the trail the table does not keep as recorded."""

    hold: TrailHold
    what: str  # why, in words

    def describe(self) -> str:
        return f"{self.hold.describe()} {self.what}"


def unmatched_holds(
    conn: Connection, schema: str, key: Key | None, keys: TrailKeys | None = None
) -> list[Mismatch]:
    """The holds of the trail the holds table does not keep as recorded (module docstring),
    read from one snapshot; [] while either table is missing (nothing recorded yet). `keys`:
    the trail's public keys, a release counting only when its entry is signed with them."""
    engine = engine_of(conn)
    catalogue = engine.catalogue
    if not (
        catalogue.table_exists(conn, schema, "audit")
        and catalogue.table_exists(conn, schema, "holds")
    ):
        return []
    one_snapshot = (
        nullcontext()
        if engine.session.in_transaction(conn)
        else engine.snapshots.transaction(conn, read_only=True)
    )
    with one_snapshot:  # a release committed between two reads is no mismatch
        adds, releases = _entries(conn, schema, keys)
        rows = _rows(conn, schema)
    standing = [a for a in adds if not any(r.seq > a.seq and r.ends(a) for r in releases)]
    found = [
        Mismatch(h, "is no longer active there, yet the trail records no release")
        for h in standing
        if not _held(h, adds, rows, key)
    ]
    by_id = {r.hold_id: r for r in rows}
    for release in releases:
        row = by_id.get(release.hold_id) if release.hold_id is not None else None
        if release.held_days is None or release.hold_id is None:
            continue  # recorded before releases said their days: nothing to compare
        if row is None or row.held_days is None:
            what = "was released, and its row is gone (its days held no longer extend the clock)"
        elif row.held_days != release.held_days:
            what = (
                f"was released after {release.held_days} day(s), and its row now says "
                f"{row.held_days} (the clock's extension changed)"
            )
        else:
            continue
        added = next((a for a in adds if release.ends(a)), None)
        found.append(Mismatch(added or release, what))
    return found


def standing_hold(conn: Connection, schema: str, hold_id: int) -> TrailHold | None:
    """The hold the trail records under `hold_id` as still standing (added, not released),
    or None."""
    adds, releases = _entries(conn, schema, None)
    for added in adds:
        if added.hold_id == hold_id and not any(
            r.seq > added.seq and r.ends(added) for r in releases
        ):
            return added
    return None


def release_entry(hold: TrailHold, note: str) -> Entry:
    """The release of a hold the trail records as standing whose row is no longer active (an
    operator's decision, with `note`): the scope and digests of its `hold_add` entry."""
    detail: dict[str, Any] = {"hold_id": hold.hold_id, "note": note}
    if hold.table is not None:
        detail.update(scope="person", table=hold.table, policies=list(hold.policies))
        if hold.column is not None:
            detail["column"] = hold.column
    return Entry(
        event="hold_release",
        outcome="released",
        policy=hold.policy,
        subjects=1,
        subject_digests=tuple(sorted(hold.digests)),
        detail=detail,
    )


def refuse_unmatched(
    conn: Connection, schema: str, key: Key | None, keys: TrailKeys | None = None
) -> None:
    """Raise `HoldsMismatchError` when the holds table does not keep a hold of the trail."""
    missing = unmatched_holds(conn, schema, key, keys)
    if missing:
        raise HoldsMismatchError(describe(missing), hint=HINT)


HINT = (
    "if the hold stands, add it again with 'retention hold add' (the case's reason); if it "
    "has ended, release it by its id: 'retention hold release --hold-id N' (recorded); a "
    "released hold's row must be restored as it was (from a backup) for its days held to "
    "extend the clock again. 'retention audit show --format json' shows the hold entries"
)


def describe(missing: Sequence[Mismatch]) -> str:
    """What the operator is told: which holds, and why nothing runs."""
    listed = "; ".join(m.describe() for m in missing[:5])
    more = f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
    return (
        f"the holds table does not match the audit trail: {listed}{more} (a hold changed "
        "outside 'retention hold' would let its subject be purged early); nothing runs until "
        "the table and the trail agree"
    )


def hold_entry(
    trail: AuditTrail,
    scope: Scope,
    policies: Sequence[str],
    subject: str,
    hold: Hold,
    note: str | None = None,
) -> Entry:
    """The trail's entry for `hold`, just added (`hold_add`) or released (`hold_release`):
    its scope, the policies it covers and the subject's digest under each (never the key)."""
    detail: dict[str, Any] = {"hold_id": hold.hold_id}
    if scope.policy is None:
        detail.update(
            scope="person",
            table=scope.person.table,
            column=scope.person.column,
            policies=list(policies),
        )
    adding = hold.released_at is None
    if not adding:
        assert hold.released_at is not None
        detail["held_days"] = (hold.released_at - hold.held_since).days
    if note:
        detail["note"] = note
    return Entry(
        event="hold_add" if adding else "hold_release",
        outcome="held" if adding else "released",
        policy=scope.policy,
        subjects=1,
        subject_digests=tuple(sorted({trail.subject_digest(p, subject) for p in policies})),
        detail=detail,
    )


def _entries(
    conn: Connection, schema: str, keys: TrailKeys | None
) -> tuple[list[TrailHold], list[TrailHold]]:
    """The trail's hold_add and hold_release entries, in order; a release whose entry is not
    signed with `keys` (when given) ends nothing (written through the database alone)."""
    adds: list[TrailHold] = []
    releases: list[TrailHold] = []
    query = sql.SQL(
        "SELECT {} FROM {} WHERE event IN ('hold_add', 'hold_release') ORDER BY seq"
    ).format(
        sql.SQL(", ").join(map(sql.Identifier, SIGNED_COLUMNS)), sql.Identifier(schema, "audit")
    )
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(query).fetchall():
            hold = _trail_hold(
                int(row["seq"]), row["policy"], row["subject_digests"], row["detail"]
            )
            if row["event"] == "hold_add":
                adds.append(hold)
            elif keys is None or entry_problem(row, keys) is None:
                releases.append(hold)
    return adds, releases


def _trail_hold(seq: int, policy: object, digests: object, detail: object) -> TrailHold:
    said = _json(detail)
    found = _json(digests)
    listed = found if isinstance(found, list) else []
    if not isinstance(said, dict):
        said = {}
    person = said.get("scope") == "person"
    hold_id, days = said.get("hold_id"), said.get("held_days")
    named = said.get("policies") if person else [policy]
    column = said.get("column")
    return TrailHold(
        seq,
        int(hold_id) if isinstance(hold_id, int) else None,
        None if person else (str(policy) if policy is not None else None),
        str(said.get("table")) if person else None,
        str(column) if person and column is not None else None,
        tuple(str(p) for p in named or () if p is not None),
        frozenset(str(d) for d in listed),
        int(days) if isinstance(days, int) else None,
    )


def _json(value: object) -> Any:
    """A JSON column as PostgreSQL gives it (a value), or as MariaDB does (its text)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _rows(conn: Connection, schema: str) -> list[_Row]:
    """Every holds row; a released one with its whole days held (as `hold release` records
    them: the instants' difference, whatever zone they are read in)."""
    out = []
    for hold_id, policy, key, table, column, since, released in conn.execute(
        sql.SQL(
            "SELECT hold_id, policy, subject_key, subject_table, subject_column, held_since, "
            "released_at FROM {}"
        ).format(sql.Identifier(schema, "holds"))
    ).fetchall():
        days = (released - since).days if released is not None and since is not None else None
        out.append(_Row(int(hold_id), policy, str(key), table, column, days))
    return out


def _held(hold: TrailHold, adds: list[TrailHold], rows: list[_Row], key: Key | None) -> bool:
    """Whether an active row stands for the trail's `hold`: same scope (and key column when
    recorded), an id the trail gave a hold of this subject in this scope and (with the key) the
    subject's digest."""
    ids = {
        h.hold_id
        for h in adds
        if h.same_scope(hold) and h.digests & hold.digests and h.hold_id is not None
    }
    for row in rows:
        if row.hold_id not in ids or row.held_days is not None:
            continue  # another subject's, or released
        if hold.table is not None and (row.policy is not None or row.table != hold.table):
            continue
        if hold.column is not None and row.column != hold.column:
            continue
        if hold.policy is not None and row.policy != hold.policy:
            continue
        if key is None or any(
            subject_digest(key, p, row.subject_key) in hold.digests for p in hold.policies
        ):
            return True
    return False
