"""Append to the audit trail and verify it.

Each entry is one row of `<schema>.audit`. Its hash is SHA-256 of the previous entry's hash
followed by the entry's canonical JSON (sorted keys, no spaces), so altering, removing,
inserting or reordering an entry breaks the chain at that entry. Entries are appended inside the
transaction whose work they describe: the entry commits if and only if the work does.
Subjects appear only as keyed digests (HMAC-SHA-256 with the audit key): an auditor holding the
key can check a given subject, the trail itself holds no key.

The chain has no secret, so each entry's hash is also signed with the trail's signing key
(retention.audit.seal), which the database never sees: an entry appended, inserted or rewritten
through the database alone carries no valid signature.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from loguru import logger

from retention.audit.anchor import Anchor
from retention.audit.seal import TrailKeys, TrailSigner
from retention.engines import Connection, engine_of, sql
from retention.engines.locks import TransactionLock
from retention.engines.params import Json
from retention.keys import Key

GENESIS = "0" * 64
_COLUMNS = (
    "seq",
    "recorded_at",
    "run_id",
    "event",
    "policy",
    "policy_sha256",
    "phase",
    "action",
    "rows",
    "subjects",
    "subject_digests",
    "key_id",
    "actor",
    "outcome",
    "detail",
    "prev_hash",
)


@dataclass(frozen=True)
class Entry:
    """What happened, as given by the caller (the trail adds sequence, time, actor, hashes)."""

    event: str
    outcome: str
    run_id: UUID | None = None
    policy: str | None = None
    policy_sha256: str | None = None
    phase: str | None = None
    action: str | None = None
    rows: Mapping[str, int] = field(default_factory=dict)
    subjects: int = 0
    subject_digests: tuple[str, ...] = ()
    key_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    """An entry as stored: its canonical content and its hash."""

    content: dict[str, Any]
    hash: str
    trail: dict[str, str] | None = None  # database and schema, told in the mirror

    @property
    def seq(self) -> int:
        return int(self.content["seq"])


def actor(conn: Connection) -> dict[str, Any]:
    """Who acts: database user, operating-system user, host and process."""
    row = conn.execute("SELECT current_user").fetchone()
    return {
        "db_user": row[0] if row else None,
        "os_user": _os_user(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def canonical(content: Mapping[str, Any]) -> str:
    """The canonical JSON text hashed for an entry."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    """SHA-256 of the previous hash and the canonical content. The sequence number is left out:
    order is proven by the chain, so a moved entry reads as moved, not as altered."""
    hashed = {k: v for k, v in content.items() if k != "seq"}
    return hashlib.sha256((prev_hash + canonical(hashed)).encode("utf-8")).hexdigest()


class AuditTrail:
    """Writes entries to `<schema>.audit` and mirrors them as JSON lines through loguru."""

    def __init__(
        self, schema: str, key: Key, actor_info: Mapping[str, Any], signer: TrailSigner
    ) -> None:
        self.table = sql.Identifier(schema, "audit")
        self.schema = schema
        self.key = key
        self.actor = dict(actor_info)
        self.signer = signer

    def subject_digest(self, policy: str, subject_key: object) -> str:
        """Keyed digest of one subject key (what the trail stores instead of the key)."""
        return subject_digest(self.key, policy, subject_key)

    def digests(self, policy: str, keys: Iterable[object]) -> tuple[str, ...]:
        return tuple(sorted(self.subject_digest(policy, k) for k in keys))

    def append(self, conn: Connection, entry: Entry) -> Stored:
        """Append inside the caller's transaction (one is opened if there is none)."""
        with conn.transaction():
            # one writer at a time keeps the chain linear
            engine = engine_of(conn)
            engine.locks.lock_in_transaction(conn, TransactionLock.AUDIT_CHAIN, schema=self.schema)
            last = conn.execute(
                sql.SQL("SELECT seq, hash FROM {} ORDER BY seq DESC LIMIT 1").format(self.table)
            ).fetchone()
            seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
            content = self._content(entry, seq, prev)
            arrays = engine.capabilities.arrays  # else the digests are a JSON array
            digest = entry_hash(prev, content)
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} ({}, hash, sig_key, signature) "
                    "VALUES ({}, %(hash)s, %(sig_key)s, %(signature)s)"
                ).format(
                    self.table,
                    sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
                    sql.SQL(", ").join(
                        # thousands of digests: binary, the text format escapes each one
                        sql.parameter(c, binary=c == "subject_digests")
                        for c in _COLUMNS
                    ),
                ),
                {
                    **dict(zip(_COLUMNS, _row(content, arrays=arrays), strict=True)),
                    "hash": digest,
                    "sig_key": self.signer.id,
                    "signature": self.signer.sign(digest),
                },
            )
        return Stored(content, digest, {"database": conn.info.dbname, "schema": self.schema})

    def record(self, conn: Connection, entry: Entry) -> Stored:
        """Append in a transaction of its own, then mirror."""
        stored = self.append(conn, entry)
        mirror(stored)
        return stored

    def _content(self, entry: Entry, seq: int, prev: str) -> dict[str, Any]:
        return {
            "seq": seq,
            "recorded_at": datetime.now(UTC).isoformat(),
            "run_id": str(entry.run_id) if entry.run_id else None,
            "event": entry.event,
            "policy": entry.policy,
            "policy_sha256": entry.policy_sha256,
            "phase": entry.phase,
            "action": entry.action,
            "rows": dict(entry.rows),
            "subjects": entry.subjects,
            "subject_digests": sorted(entry.subject_digests),
            "key_id": entry.key_id,
            "actor": self.actor,
            "outcome": entry.outcome,
            "detail": dict(entry.detail),
            "prev_hash": prev,
        }


def subject_digest(key: Key, policy: str, subject_key: object) -> str:
    return key.digest(f"{policy}\x00{subject_key}".encode()).hex()[:32]


def mirror(stored: Stored) -> None:
    """The entry as one JSON line in the operator logs (sinks filter on `audit`)."""
    content = dict(stored.content)
    content["subject_digests"] = len(content["subject_digests"])  # counts only, lines stay short
    # `trail`: which database and schema, so that a copy shared by several trails (one
    # journald for several databases) can be read trail by trail
    extra = {"trail": stored.trail} if stored.trail else {}
    logger.bind(audit=True, run_id=content["run_id"]).info(
        "audit " + canonical({**content, "hash": stored.hash, **extra})
    )


def _row(content: Mapping[str, Any], *, arrays: bool = True) -> list[Any]:
    """The entry's column values; `arrays`: the engine stores subject_digests as an array
    (PostgreSQL's text[]), else as a JSON array (MariaDB)."""
    out = []
    for name in _COLUMNS:
        value = content[name]
        if name in ("rows", "actor", "detail") or (name == "subject_digests" and not arrays):
            value = Json(value)
        elif name == "recorded_at":
            value = datetime.fromisoformat(value)
        out.append(value)
    return out


def stored_content(row: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the canonical content of an entry read from the table. PostgreSQL gives jsonb
    and text[] as Python values and timestamptz with its zone; MariaDB gives JSON as its text
    and DATETIME(6), which holds UTC, without a zone."""
    content = {name: row[name] for name in _COLUMNS}
    for name in _JSON_COLUMNS:
        if isinstance(content[name], str):  # never on PostgreSQL: these are objects, arrays
            content[name] = json.loads(content[name])
    recorded = row["recorded_at"]
    if recorded.tzinfo is None:
        recorded = recorded.replace(tzinfo=UTC)
    content["recorded_at"] = recorded.astimezone(UTC).isoformat()
    content["run_id"] = str(row["run_id"]) if row["run_id"] else None
    content["subject_digests"] = list(content["subject_digests"])
    return content


_JSON_COLUMNS = ("rows", "actor", "detail", "subject_digests")


@dataclass(frozen=True)
class Verification:
    """Result of `audit verify`: how many entries were checked and the first broken one.
    `anchored`: the chain is valid in itself, a record outside the database contradicts it
    (`checked` entries verified; `broken_seq` the first that may have been changed).
    `keys`: where the public keys came from (None: signatures were not checked); `unsigned`:
    entries at the start written before signing began; `signers`: the keys that signed, in
    the order they took over."""

    checked: int
    broken_seq: int | None = None
    problem: str | None = None
    anchored: bool = False
    keys: str | None = None
    unsigned: int = 0
    signers: tuple[str, ...] = ()

    @property
    def intact(self) -> bool:
        return self.broken_seq is None


class _Signatures:
    """The signature of each entry, in chain order: unsigned entries only before the first
    signed one (written before signing began), and keys used oldest first (a retired key
    cannot sign after a newer one did). Without public keys only that order is checked."""

    def __init__(self, keys: TrailKeys | None, signed_from: int | None = None) -> None:
        self.keys = keys
        self.signed_from = signed_from
        self.unsigned = 0
        self.signers: list[str] = []
        self.newest = -1

    def problem(self, row: Mapping[str, Any]) -> str | None:
        key_id, signature = row["sig_key"], row["signature"]
        if key_id is None and signature is None:
            if self.signers:
                return (
                    "it is not signed while the entries before it are: it was written "
                    "without the trail's signing key"
                )
            if self.signed_from is not None and int(row["seq"]) >= self.signed_from:
                return (
                    f"it is not signed, and every entry from {self.signed_from} on must be "
                    "(setting audit_signed_from)"
                )
            self.unsigned += 1
            return None
        if self.keys is None:
            if str(key_id) not in self.signers:
                self.signers.append(str(key_id))
            return None
        problem = self.keys.check(str(key_id), str(row["hash"]), str(signature))
        if problem is not None:
            return problem
        index = self.keys.index(str(key_id))
        assert index is not None  # checked above
        if index < self.newest:
            return (
                f"it is signed with the retired key {key_id} after the newer key "
                f"{self.signers[-1]} took over"
            )
        if index > self.newest:
            self.signers.append(str(key_id))
            self.newest = index
        return None


def _content_problem(row: Mapping[str, Any]) -> str | None:
    """An entry written before signing began: does its content give its hash?"""
    if entry_hash(str(row["prev_hash"]), stored_content(row)) != row["hash"]:
        return "its content was altered"
    return None


def entry_problem(row: Mapping[str, Any], keys: TrailKeys | None) -> str | None:
    """One entry read from the table, alone (not its place in the chain): does its content
    give its hash, and is that hash signed? None when it is."""
    altered = _content_problem(row)
    if altered is not None:
        return altered
    if row["sig_key"] is None and row["signature"] is None:
        return "it is not signed"
    if keys is None:
        return None
    return keys.check(str(row["sig_key"]), str(row["hash"]), str(row["signature"]))


SIGNED_COLUMNS = (*_COLUMNS, "hash", "sig_key", "signature")


def verify(
    conn: Connection,
    schema: str,
    anchors: Sequence[Anchor] = (),
    keys: TrailKeys | None = None,
    signed_from: int | None = None,
) -> Verification:
    """Recompute the chain; name the first entry altered, removed, inserted, reordered, or not
    signed by the trail's key (`keys`: the public keys; None checks no signature). Unsigned
    entries are accepted only before the first signed one, and before `signed_from` when given
    (setting audit_signed_from: without it, a trail rewritten whole without signatures looks
    like one written before signing began).
    `anchors` (entries known from outside the database, see retention.audit.anchor) must
    still be in the chain with the same hash: this is what shows that the last entries were
    removed, or that the chain was rewritten whole."""
    table = sql.Identifier(schema, "audit")
    wanted = {a.seq for a in anchors}
    seen: dict[int, str] = {}
    signatures = _Signatures(keys, signed_from)
    prev_hash, prev_seq, checked = GENESIS, 0, 0

    def broken(seq: int, problem: str) -> Verification:
        return Verification(
            checked,
            seq,
            problem,
            keys=keys.source if keys else None,
            unsigned=signatures.unsigned,
            signers=tuple(signatures.signers),
        )

    query = sql.SQL("SELECT {} FROM {} ORDER BY seq").format(
        sql.SQL(", ").join(map(sql.Identifier, SIGNED_COLUMNS)), table
    )
    with conn.transaction(), engine_of(conn).rows.stream(conn, query) as rows:
        for row in rows:
            content = stored_content(row)
            seq = int(row["seq"])
            if entry_hash(str(row["prev_hash"]), content) != row["hash"]:
                return broken(seq, "its content was altered")
            if row["prev_hash"] != prev_hash:
                if seq != prev_seq + 1:
                    return broken(seq, f"entries {prev_seq + 1}..{seq - 1} were removed")
                return broken(
                    seq,
                    "it does not follow the previous entry "
                    "(an entry was inserted, removed or reordered here)",
                )
            if seq != prev_seq + 1:
                return broken(seq, "its sequence number does not follow")
            signed = signatures.problem(row)
            if signed is not None:
                return broken(seq, signed)
            if seq in wanted:
                seen[seq] = str(row["hash"])
            prev_hash, prev_seq, checked = str(row["hash"]), seq, checked + 1
    found = _against(checked, prev_seq, seen, anchors)
    return replace(
        found,
        keys=keys.source if keys else None,
        unsigned=signatures.unsigned,
        signers=tuple(signatures.signers),
    )


def _against(
    checked: int, last: int, seen: Mapping[int, str], anchors: Sequence[Anchor]
) -> Verification:
    """The intact chain of `checked` entries (1..last) against the anchors. An entry's hash
    covers every entry before it: an anchor that matches vouches for entries 1..its seq."""
    ordered = sorted(anchors, key=lambda a: a.seq)
    for anchor in ordered:
        if anchor.seq > last:
            return Verification(
                checked,
                last + 1,
                f"the trail ends at entry {last} but {anchor.source} records entry "
                f"{anchor.seq}: entries {last + 1}..{anchor.seq} at least were removed",
                anchored=True,
            )
    matched = [a for a in ordered if seen[a.seq] == a.hash]
    for anchor in ordered:
        if seen[anchor.seq] == anchor.hash:
            continue
        before = [a for a in matched if a.seq < anchor.seq]
        first = before[-1].seq + 1 if before else 1
        vouched = f"; entries 1..{before[-1].seq} match {before[-1].source}" if before else ""
        agrees = next((a for a in matched if a.seq == anchor.seq), None)
        also = f" ({agrees.source} agrees with the database)" if agrees else ""
        return Verification(
            checked,
            first,
            f"entry {anchor.seq} differs from the one {anchor.source} records{also}: an "
            f"entry in {first}..{anchor.seq} was changed and the hashes after it recomputed"
            + vouched,
            anchored=True,
        )
    return Verification(checked)


@dataclass(frozen=True)
class Unlinked:
    """Where the chain leading to an entry breaks (`seq`) and how."""

    seq: int
    problem: str


def chain_to(
    conn: Connection,
    schema: str,
    up_to: int,
    keys: TrailKeys,
    anchors: Sequence[Anchor] = (),
    signed_from: int | None = None,
) -> Unlinked | None:
    """Whether entry `up_to` is linked into this trail: every entry from the nearest anchor
    at or before it (an entry the head file records, whose hash the database still holds) or
    from the first entry, to it, gives its hash, follows the one before and is signed with the
    trail's keys (unsigned entries accepted before the first signed one, and before
    `signed_from` when set, as `verify` accepts them: written before signing began). An entry
    valid in itself but copied from another trail (one signed with the same key) does not
    follow this one's entries. None when linked."""
    table = sql.Identifier(schema, "audit")
    row = conn.execute(
        sql.SQL("SELECT min(seq) FROM {} WHERE sig_key IS NOT NULL").format(table)
    ).fetchone()
    began = int(row[0]) if row and row[0] is not None else up_to + 1
    if signed_from is not None:
        began = min(began, signed_from)
    start, prev_hash = 1, GENESIS
    for anchor in sorted((a for a in anchors if a.seq <= up_to), key=lambda a: -a.seq):
        row = conn.execute(
            sql.SQL("SELECT hash FROM {} WHERE seq = %s").format(table), (anchor.seq,)
        ).fetchone()
        if row is not None and row[0] == anchor.hash:
            start, prev_hash = anchor.seq + 1, anchor.hash
            break
    query = sql.SQL("SELECT {} FROM {} WHERE seq >= %s AND seq <= %s ORDER BY seq").format(
        sql.SQL(", ").join(map(sql.Identifier, SIGNED_COLUMNS)), table
    )
    expected = start
    # streamed (a long trail walked from its first entry stays out of memory)
    with conn.transaction(), engine_of(conn).rows.stream(conn, query, (start, up_to)) as rows:
        for row in rows:
            seq = int(row["seq"])
            if seq != expected:
                return Unlinked(expected, f"entries {expected}..{seq - 1} are missing")
            if row["prev_hash"] != prev_hash:
                return Unlinked(seq, "it does not follow the entry before it in this trail")
            unsigned = row["sig_key"] is None and row["signature"] is None
            problem = (
                _content_problem(row) if unsigned and seq < began else entry_problem(row, keys)
            )
            if problem is not None:
                return Unlinked(seq, problem)
            prev_hash, expected = str(row["hash"]), seq + 1
    if expected <= up_to:
        return Unlinked(expected, f"entries {expected}..{up_to} are missing")
    return None


def verify_anchors(conn: Connection, schema: str, anchors: Sequence[Anchor]) -> str | None:
    """A quick check, without recomputing the chain: is each anchored entry still in the
    trail with the same hash? The first problem, or None."""
    table = sql.Identifier(schema, "audit")
    for anchor in anchors:
        row = conn.execute(
            sql.SQL("SELECT hash FROM {} WHERE seq = %s").format(table), (anchor.seq,)
        ).fetchone()
        if row is None:
            return f"entry {anchor.seq}, which {anchor.source} records, is missing"
        if row[0] != anchor.hash:
            return f"entry {anchor.seq} differs from the one {anchor.source} records"
    return None
