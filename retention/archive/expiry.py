"""Expiry: when a group's legal retention has ended, its archived copy is destroyed too.

Run at the start of every full run, after reconciliation. A segment expires once the last day of
its group has passed, plus the time any of its subjects was later under a legal hold (the clock
is suspended, R1112-7); while one of its subjects is held, it is kept. A file whose segments
have all expired is deleted; otherwise it is rewritten under its next version without the
expired segments (their ciphertext is dropped; the others are copied as they are).

Crash safety: the bytes go first, then the catalogue and the audit entry, in one transaction.
A rewrite interrupted before its transaction leaves a newer version that reconciliation removes
(the expiry is then redone); after it, an older version that reconciliation removes. A deletion
interrupted before its transaction is recorded at the next run (the file is already gone).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from loguru import logger

from retention.archive import catalog, container
from retention.archive.container import Member
from retention.archive.errors import ArchiveError
from retention.archive.model import ArchiveFile, Segment, next_name
from retention.archive.storage import Storage
from retention.archive.writer import index_document
from retention.audit.trail import AuditTrail, Entry, Stored, mirror, subject_digest
from retention.engines import Connection, engine_of, sql
from retention.keys import Key
from retention.store.holds import Person


def _utc(moment: datetime) -> datetime:
    """An instant of the holds table: the tool's DATETIME(6) columns hold UTC without a zone
    (MariaDB); PostgreSQL's timestamptz come with theirs."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class _Hold:
    held_since: datetime
    released_at: datetime | None


@dataclass(frozen=True)
class Status:
    """A segment's expiry as of a date."""

    expires_on: date | None  # hold extensions included; None: never by itself
    held: bool

    def due(self, at: date) -> bool:
        return not self.held and self.expires_on is not None and self.expires_on < at


class Holds:
    """Every hold, by policy and subject digest (holds store keys; segments store digests).

    A hold narrowed to a policy covers that policy's files. A hold on a person covers the files
    of every policy whose subject is that person's table and key (`subjects`: each policy's,
    from the policies loaded), and those of any policy not loaded, whose subject is unknown:
    such a file is kept while the held key is in it (fail closed)."""

    def __init__(
        self,
        conn: Connection,
        schema: str,
        key: Key,
        subjects: Mapping[str, Person] | None = None,
    ) -> None:
        self._key = key
        self._subjects = subjects or {}
        self._by_name = engine_of(conn).dialect.holds_by_table_name
        self._by: dict[tuple[str, str], list[_Hold]] = defaultdict(list)
        self._persons: list[tuple[Person, str, _Hold]] = []
        self._digested: set[str] = set()
        rows = conn.execute(
            sql.SQL(
                "SELECT policy, subject_key, held_since, released_at, subject_table, "
                "subject_column FROM {}"
            ).format(sql.Identifier(schema, "holds"))
        ).fetchall()
        for policy, held, since, released, table, column in rows:
            hold = _Hold(_utc(since), None if released is None else _utc(released))
            if policy is None:
                self._persons.append((Person(table, column), held, hold))
                continue
            self._by[(policy, subject_digest(self._key, policy, held))].append(hold)
            if table is None and policy in self._subjects:
                # recorded before holds had a scope (--policy was required): the person's
                self._persons.append((self._subjects[policy], held, hold))

    def _covering(self, policy: str, digest: str) -> list[_Hold]:
        if policy not in self._digested:  # the holds on persons, digested under this policy
            self._digested.add(policy)
            subject = self._subjects.get(policy)
            for person, held, hold in self._persons:
                if subject is None or subject.same(person, self._by_name):
                    self._by[(policy, subject_digest(self._key, policy, held))].append(hold)
        return self._by.get((policy, digest), [])

    def status(self, item: ArchiveFile, segment: Segment) -> Status:
        if segment.expires_on is None:
            return Status(None, False)
        extension = 0
        for digest in segment.subject_digests:
            for hold in self._covering(item.policy, digest):
                if hold.released_at is None:
                    return Status(segment.expires_on, True)
                if hold.held_since >= item.created_at:  # earlier holds are in retain_until
                    days = (hold.released_at.date() - hold.held_since.date()).days
                    extension = max(extension, days)
        return Status(segment.expires_on + timedelta(days=extension), False)


def expire(
    conn: Connection,
    storage: Storage,
    trail: AuditTrail,
    schema: str,
    at: date,
    run_id: UUID | None,
    subjects: Mapping[str, Person] | None = None,
) -> int:
    """Destroy every expired segment; returns how many. `subjects`: each loaded policy's
    subject, for the holds on persons (see Holds)."""
    holds = Holds(conn, schema, trail.key, subjects)
    destroyed = 0
    for item in catalog.files(conn, schema):
        statuses = {s.group: holds.status(item, s) for s in item.live_segments()}
        due = [s for s in item.live_segments() if statuses[s.group].due(at)]
        for s in item.live_segments():
            if statuses[s.group].held and s.expires_on is not None and s.expires_on < at:
                logger.warning(
                    "archive {} group {}: expired but kept (legal hold)", item.name, s.group
                )
        if not due:
            continue
        try:
            _destroy(conn, storage, trail, schema, item, due, run_id)
        except ArchiveError as exc:
            logger.error("archive {}: expired groups not destroyed: {}", item.name, exc.message)
            trail.record(
                conn,
                Entry(
                    event="archive_expiry_failed",
                    outcome="error",
                    run_id=run_id,
                    policy=item.policy,
                    detail={"file": item.name, "groups": [s.group for s in due],
                            "error": exc.message},
                ),
            )  # fmt: skip
            continue
        destroyed += len(due)
    return destroyed


def _destroy(
    conn: Connection,
    storage: Storage,
    trail: AuditTrail,
    schema: str,
    item: ArchiveFile,
    due: list[Segment],
    run_id: UUID | None,
) -> None:
    remaining = [s for s in item.live_segments() if s not in due]
    groups = [s.group for s in due]
    detail: dict[str, Any] = {"file_id": str(item.file_id), "file": item.name, "groups": groups}
    if not remaining:
        storage.delete(item.name)
        detail["action"] = "deleted"
        with conn.transaction():
            catalog.destroy(conn, schema, item.file_id, groups, whole=True)
            stored = _record(conn, trail, item, due, run_id, detail)
        mirror(stored)
        return
    new_name, size, digest = _rewrite(storage, item, remaining)
    detail.update(
        action="rewritten",
        file=new_name,
        version=item.version + 1,
        sha256=digest,
        bytes=size,
        previous={"file": item.name, "sha256": item.sha256},
    )
    with conn.transaction():
        catalog.replace_version(
            conn, schema, item.file_id, new_name, item.version + 1, size, digest
        )
        catalog.destroy(conn, schema, item.file_id, groups, whole=False)
        stored = _record(conn, trail, item, due, run_id, detail)
    mirror(stored)
    storage.delete(item.name)


def _rewrite(storage: Storage, item: ArchiveFile, keep: list[Segment]) -> tuple[str, int, str]:
    """The file without the expired segments, under its next version (verified on disk)."""
    data = storage.read(item.name)
    if container.sha256(data) != item.sha256:
        raise ArchiveError(f"{item.name} is altered (SHA-256 differs from the catalogue)")
    members = container.read_tar(data)
    # the file keeps its own format: its segments are copied as they are
    previous = json.loads(members[container.INDEX])
    index = index_document(
        item.file_id,
        item.version + 1,
        item.created_at,
        item.run_id,
        item.policy,
        item.policy_sha256,
        item.phase,
        item.recipients,
        keep,
        format_version=int(previous.get("format_version", 1)),
    )
    new = container.build_tar(
        [
            Member(container.README, members.get(container.README, b"")),
            Member(container.INDEX, container.dumps(index)),
            *(
                Member(
                    container.segment_member(s.group), members[container.segment_member(s.group)]
                )
                for s in keep
            ),
        ],
        item.created_at.timestamp(),
    )
    name = next_name(item.name)
    written = storage.put(name, new)
    if written.sha256 != container.sha256(new):
        storage.delete(name)
        raise ArchiveError(f"{name}: the rewritten file read back differs")
    return name, written.size, written.sha256


def _record(
    conn: Connection,
    trail: AuditTrail,
    item: ArchiveFile,
    due: list[Segment],
    run_id: UUID | None,
    detail: dict[str, Any],
) -> Stored:
    rows: dict[str, int] = defaultdict(int)
    for segment in due:
        for table, count in segment.rows.items():
            rows[table] += count
    digests = tuple(d for s in due for d in s.subject_digests)
    return trail.append(
        conn,
        Entry(
            event="archive_expired",
            outcome="destroyed",
            run_id=run_id,
            policy=item.policy,
            policy_sha256=item.policy_sha256,
            phase=item.phase,
            rows=dict(rows),
            subjects=len(digests),
            subject_digests=digests,
            detail=detail,
        ),
    )
