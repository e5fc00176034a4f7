"""At the start of a run, under the run lock: files whose batch never committed are discarded.

A file is catalogued in the transaction that deletes its rows. So, once no run is in progress
(the run lock is ours, and the lock of a killed run is only released when its server session has
ended, committed or rolled back), a file of ours that the catalogue does not know belongs to a
batch that rolled back: its rows are still in the database, and the file is a second copy. It is
deleted and the audit trail says so. Completing such a batch instead would mean proving that the
live rows are exactly those in the file, which the host cannot read; the next run archives the
subjects again, in a new file, if they are still due.

Also removed: temporary files of interrupted writes, and older or newer versions of a file
left by an expiry interrupted between its rewrite and its catalogue update.
"""

from __future__ import annotations

import json
import tarfile
from typing import Any
from uuid import UUID

from loguru import logger

from retention.archive import catalog, container
from retention.archive.errors import ArchiveStorageError
from retention.archive.model import parse_name
from retention.archive.storage import TEMP_SUFFIX, Storage
from retention.audit.trail import AuditTrail, Entry
from retention.engines import Connection


def reconcile(
    conn: Connection,
    storage: Storage,
    trail: AuditTrail,
    schema: str,
    run_id: UUID | None,
) -> list[str]:
    """Discard what no committed batch owns; returns the names removed."""
    known = catalog.known_ids(conn, schema)
    removed = []
    for name in storage.names():
        base = name.removesuffix(TEMP_SUFFIX)
        parsed = parse_name(base)
        if parsed is None:
            continue  # not a name this tool writes: `archive verify` reports it
        current = known.get(parsed.file_id)
        if name.endswith(TEMP_SUFFIX):
            reason = "incomplete write (temporary file of an interrupted batch or expiry)"
        elif current is None:
            reason = "its batch never committed: the rows are still in the database"
        elif current[0] != parsed.version or current[1]:
            reason = "superseded version left by an interrupted expiry"
        else:
            continue
        uncommitted = current is None and not name.endswith(TEMP_SUFFIX)
        counts = _counts(storage, name) if uncommitted else {}
        storage.delete(name)
        removed.append(name)
        logger.warning("archive {} discarded: {}", name, reason)
        trail.record(
            conn,
            Entry(
                event="archive_reconciled",
                outcome="discarded",
                run_id=run_id,
                policy=parsed.policy,
                subjects=len(counts.get("digests", ())),
                subject_digests=tuple(counts.get("digests", ())),
                rows=counts.get("rows", {}),
                detail={"file": name, "file_id": str(parsed.file_id), "reason": reason},
            ),
        )
    return removed


def _counts(storage: Storage, name: str) -> dict[str, Any]:
    """Subjects and rows of an uncommitted file, from its clear index (for the audit entry)."""
    try:
        index = json.loads(container.read_tar(storage.read(name))[container.INDEX])
    except (ArchiveStorageError, KeyError, ValueError, OSError, tarfile.TarError) as exc:
        logger.warning("archive {}: index unreadable ({})", name, type(exc).__name__)
        return {}
    digests: list[str] = []
    rows: dict[str, int] = {}
    for segment in index.get("segments", []):
        digests += segment.get("subject_digests", [])
        for table, count in segment.get("rows", {}).items():
            rows[table] = rows.get(table, 0) + int(count)
    return {"digests": digests, "rows": rows}
