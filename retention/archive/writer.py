"""Archive one batch: delete its rows into an encrypted file, durable and verified, before the
transaction commits.

Inside the batch's transaction, after the subjects were locked and re-checked:

1. each subject's expiry group is computed (month of its `retain_until`);
2. the link values of the batch's rows are collected once, parents first, each with its
   group (retention.rows.records); then each table, children first, is emptied of the
   batch's rows with `COPY (DELETE ... RETURNING group, columns) TO STDOUT (FORMAT csv)`
   (another engine its own way, engines/archive.py; records grouped and sorted bytewise
   here): what is written is exactly what is deleted, and a table that cannot be deleted
   from stops the batch before any file;
3. per group, a segment (manifest and gzip'd CSV per table) is encrypted with age to the
   custodian's public keys and to a verification key that exists only in this process, for
   this batch;
4. the file is written durably (temporary name, fsync, rename, fsync of the folder), read back,
   and checked: size and SHA-256 of the bytes on disk, its index, then every segment decrypted
   with the verification key and every member's SHA-256 and row count compared with what was
   deleted. The verification key is then dropped: from now on only the custodian can read it;
5. the file is catalogued; the caller appends the audit entry (file name and SHA-256) and commits.

Any failure raises before the commit: the transaction rolls back, no row is deleted, and the
file (if it was written) is removed now or by the next run's reconciliation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyrage
from loguru import logger

from retention.archive import catalog, codec, container, groups
from retention.archive.container import Member
from retention.archive.errors import ArchiveStorageError, ArchiveVerifyError
from retention.archive.model import ArchiveFile, Segment, file_name
from retention.archive.storage import Storage, Written
from retention.audit.trail import AuditTrail
from retention.engines import Connection
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.policy.relations import QName
from retention.rows import records


@dataclass(frozen=True)
class Target:
    """Where and for whom a run's archives are written."""

    storage: Storage
    recipients: tuple[str, ...]
    granularity: groups.Granularity
    schema: str
    trail: AuditTrail


@dataclass(frozen=True)
class _Produced:
    """A segment as produced, with what its read-back must show."""

    segment: Segment
    ciphertext: bytes
    manifest: bytes


def archive_batch(
    conn: Connection,
    target: Target,
    policy: BoundPolicy,
    phase: BoundPhase,
    keys: Sequence[Any],
    *,
    at: date,
    holds: Any,
    run_id: uuid.UUID | None,
    ends: Mapping[Any, date | None] | None = None,
    digests: Mapping[Any, str] | None = None,
) -> ArchiveFile:
    """Delete the batch's rows into one verified archive file; see the module docstring.
    `ends`: each subject's end of retention, as the batch's re-check computed it; `digests`:
    each subject's keyed digest, as the batch's audit entry has them."""
    codec.set_session(conn)
    if ends is None or set(ends) != set(keys):
        ends = groups.retain_until(conn, policy, at, holds, keys)
    group_of = {key: groups.label(end, target.granularity) for key, end in ends.items()}
    keys_table = codec.create_keys_table(conn, policy, group_of)
    found = records.collect(conn, policy, keys, groups=keys_table)
    lines: dict[QName, dict[str, list[bytes]]] = {}
    for qname in policy.graph.deletion_order():
        lines[qname] = {}
        statements = codec.takings(conn, found, qname, keys_table)
        for taking in statements:
            for group, chosen in codec.deleted_rows(conn, policy.table(qname), taking).items():
                lines[qname].setdefault(group, []).extend(chosen)
        if len(statements) > 1:  # each statement's lines are sorted, not their union
            for chosen in lines[qname].values():
                chosen.sort()
        unknown = set(lines[qname]) - set(group_of.values())
        if unknown:
            raise ArchiveVerifyError(
                f"{qname[0]}.{qname[1]}: rows of group(s) {', '.join(sorted(unknown))} that no "
                "subject of this batch has; rolled back"
            )
        found.check_deleted(qname, sum(len(v) for v in lines[qname].values()))
    codec.check_tables(conn, policy)
    records.no_late_rows(conn, found)  # before the file: a rollback leaves none to discard
    subject_rows = sum(len(v) for v in lines[policy.subject.qname].values())
    if subject_rows != len(keys):
        raise ArchiveVerifyError(
            f"{subject_rows} subject rows deleted for {len(keys)} locked subjects; rolled back"
        )
    created = datetime.now(UTC).replace(microsecond=0)
    file_id = uuid.uuid4()
    verifier = pyrage.x25519.Identity.generate()
    recipients = [
        *(pyrage.x25519.Recipient.from_str(r) for r in target.recipients),
        verifier.to_public(),
    ]
    by_group: dict[str, list[Any]] = {}
    for key, group in group_of.items():
        by_group.setdefault(group, []).append(key)
    produced = []
    for group, members in sorted(by_group.items()):
        listed = (
            tuple(sorted(digests[k] for k in members))
            if digests is not None and all(k in digests for k in members)
            else target.trail.digests(policy.name, members)
        )
        produced.append(
            _segment(policy, phase, group, listed, lines, recipients, file_id, created, run_id)
        )
    name = file_name(policy.name, file_id, created, 1)
    index = _index(policy, phase, file_id, 1, created, run_id, target.recipients, produced)
    data = container.build_tar(
        [
            Member(container.README, container.README_TEXT.encode()),
            Member(container.INDEX, container.dumps(index)),
            *(Member(container.segment_member(p.segment.group), p.ciphertext) for p in produced),
        ],
        created.timestamp(),
    )
    written = target.storage.put(name, data)
    try:
        verify_written(written, data, produced, verifier)
    except ArchiveVerifyError:
        _discard(target.storage, name)
        raise
    item = ArchiveFile(
        file_id=file_id,
        name=name,
        version=1,
        run_id=run_id,
        policy=policy.name,
        policy_sha256=policy.loaded.sha256,
        phase=phase.name,
        created_at=created,
        bytes=written.size,
        sha256=written.sha256,
        recipients=target.recipients,
        segments=tuple(p.segment for p in produced),
    )
    catalog.insert(conn, target.schema, item)
    logger.debug("archive {} written: {} bytes, {} group(s)", name, written.size, len(produced))
    undated = len(by_group.get(groups.UNDATED, ()))
    if undated:  # an outside review: only `archive list` showed them
        logger.warning(
            "policy {}, phase {}: {} subject(s) archived without an end of retention (their "
            "retain_until cannot be computed): group '{}' of {} never expires by itself; "
            "`retention archive list` shows it for review",
            policy.name,
            phase.name,
            undated,
            groups.UNDATED,
            name,
        )
    return item


def _segment(
    policy: BoundPolicy,
    phase: BoundPhase,
    group: str,
    digests: tuple[str, ...],
    lines: dict[QName, dict[str, list[bytes]]],
    recipients: list[pyrage.x25519.Recipient],
    file_id: uuid.UUID,
    created: datetime,
    run_id: uuid.UUID | None,
) -> _Produced:
    tables = []
    members = []
    rows: dict[str, int] = {}
    for qname in policy.graph.tables:  # parents first: the order of a restore
        label = ".".join(qname)
        chosen = lines[qname].get(group, [])
        table = policy.table(qname)
        plain = codec.csv_header(list(table.columns)) + b"".join(chosen)
        member = container.table_member(label)
        tables.append(
            {
                "name": label,
                "member": member,
                "rows": len(chosen),
                "bytes": len(plain),
                "sha256": container.sha256(plain),
                "primary_key": list(table.primary_key),
                "columns": codec.describe_columns(table),
            }
        )
        rows[label] = len(chosen)
        members.append(Member(member, plain))
    expires = groups.expires_on(group)
    manifest = container.dumps(
        {
            "format": container.FORMAT,
            "format_version": container.FORMAT_VERSION,
            "file_id": str(file_id),
            "group": group,
            "expires_on": expires.isoformat() if expires else None,
            "created_at": created.isoformat(),
            "run_id": str(run_id) if run_id else None,
            "policy": {
                "name": policy.name,
                "sha256": policy.loaded.sha256,
                "phase": phase.name,
                "title": policy.loaded.policy.title,
                "legal_basis": policy.loaded.policy.legal_basis,
            },
            "subject": {"table": ".".join(policy.subject.qname), "key": policy.key.name},
            "subjects": len(digests),
            "subject_digests": list(digests),
            "tables": tables,
            "relations": _relations(policy),
            "values": {
                "writer": f"{codec.CSV_FORMAT}: a header line of the column names, then one "
                "record per row, records sorted bytewise",
                "null": 'an empty unquoted field (an empty string is "")',
                "text": "each value as PostgreSQL writes it (its text output) with these settings",
                "session": codec.SESSION,
            },
        }
    )
    plaintext = container.pack_segment(
        [Member(container.MANIFEST, manifest), *members], created.timestamp()
    )
    ciphertext = pyrage.encrypt(plaintext, recipients)
    segment = Segment(
        group=group,
        expires_on=expires,
        subjects=len(digests),
        subject_digests=digests,
        rows=rows,
        bytes=len(ciphertext),
        sha256=container.sha256(ciphertext),
    )
    return _Produced(segment, ciphertext, manifest)


def _relations(policy: BoundPolicy) -> list[dict[str, Any]]:
    return [
        {
            "child": ".".join(e.child),
            "child_columns": list(e.child_columns),
            "parent": ".".join(e.parent),
            "parent_columns": list(e.parent_columns),
            "class_column": e.class_column,
            "class_value": e.class_value,
            "kind": e.kind,
        }
        for e in policy.graph.edges
    ]


def _index(
    policy: BoundPolicy,
    phase: BoundPhase,
    file_id: uuid.UUID,
    version: int,
    created: datetime,
    run_id: uuid.UUID | None,
    recipients: tuple[str, ...],
    produced: list[_Produced],
) -> dict[str, Any]:
    return index_document(
        file_id,
        version,
        created,
        run_id,
        policy.name,
        policy.loaded.sha256,
        phase.name,
        recipients,
        [p.segment for p in produced],
    )


def index_document(
    file_id: uuid.UUID,
    version: int,
    created: datetime,
    run_id: uuid.UUID | None,
    policy: str,
    policy_sha256: str,
    phase: str,
    recipients: Sequence[str],
    segments: Sequence[Segment],
    *,
    format_version: int = container.FORMAT_VERSION,
) -> dict[str, Any]:
    """The clear index of a file: counts, keyed digests and hashes only."""
    return {
        "format": container.FORMAT,
        "format_version": format_version,
        "file_id": str(file_id),
        "version": version,
        "created_at": created.isoformat(),
        "run_id": str(run_id) if run_id else None,
        "policy": policy,
        "policy_sha256": policy_sha256,
        "phase": phase,
        "recipients": list(recipients),
        "subject_digests": "HMAC-SHA-256 of '<policy>\\0<subject key>' under the audit key, "
        "first 32 hexadecimal digits (as in the audit trail)",
        "segments": [s.index_entry(container.segment_member(s.group)) for s in segments],
    }


def verify_written(
    written: Written,
    data: bytes,
    produced: list[_Produced],
    verifier: pyrage.x25519.Identity,
) -> None:
    """The bytes on disk are the bytes produced, and each segment decrypts to what was deleted."""
    if written.size != len(data) or written.sha256 != container.sha256(data):
        raise ArchiveVerifyError(
            f"archive {written.name}: the file read back differs from what was written "
            f"({written.size} bytes, {len(data)} expected)"
        )
    members = container.read_tar(written.data)
    for item in produced:
        stored = members.get(container.segment_member(item.segment.group))
        if stored is None or container.sha256(stored) != item.segment.sha256:
            raise ArchiveVerifyError(
                f"archive {written.name}: segment {item.segment.group} differs"
            )
        try:
            inner = container.unpack_segment(pyrage.decrypt(stored, [verifier]))
        except pyrage.DecryptError:
            raise ArchiveVerifyError(
                f"archive {written.name}: segment {item.segment.group} does not decrypt"
            ) from None
        if inner.get(container.MANIFEST) != item.manifest:
            raise ArchiveVerifyError(f"archive {written.name}: manifest of {item.segment.group}")
        check_members(written.name, item.segment.group, item.manifest, inner)


def check_members(name: str, group: str, manifest: bytes, inner: dict[str, bytes]) -> None:
    """Every table member has the SHA-256 and row count its manifest gives."""
    try:
        document = json.loads(manifest)
        csv = int(document.get("format_version", 1)) >= 2
        tables = [
            (str(t["name"]), str(t["member"]), t["sha256"], int(t["rows"]))
            for t in document["tables"]
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ArchiveVerifyError(f"archive {name}: the manifest of {group} is unreadable") from None
    for label, member, digest, count in tables:
        plain = inner.get(member)
        if plain is None or container.sha256(plain) != digest:
            raise ArchiveVerifyError(f"archive {name}: {group}/{label} is altered")
        rows = codec.csv_records(plain) - 1 if csv else plain.count(b"\n")
        if rows != count:
            raise ArchiveVerifyError(f"archive {name}: {group}/{label} row count differs")


def _discard(storage: Storage, name: str) -> None:
    try:
        storage.delete(name)
    except ArchiveStorageError as exc:
        logger.warning("could not remove unverified archive {}: {}", name, exc.message)
