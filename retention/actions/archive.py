"""`archive`: the record leaves the live database into an encrypted archive, in the batch's
transaction (see retention.archive.writer). The file name and SHA-256 go into the batch's audit
entry; the transaction commits only once the file is durable and verified."""

from __future__ import annotations

from typing import ClassVar

from retention.actions.base import Batch
from retention.archive.errors import ArchiveConfigError
from retention.engines import Connection


class Archive:
    """Move whole records to an encrypted archive."""

    name: ClassVar[str] = "archive"

    def apply(self, conn: Connection, batch: Batch) -> dict[str, int]:
        if batch.archive is None:
            raise ArchiveConfigError(
                "archive needs archive_dir and archive_recipients; nothing was deleted"
            )
        written = batch.archive.archive(
            conn, batch.policy, batch.phase, batch.keys, batch.ends, batch.digests
        )
        batch.detail["archive"] = written.audit_detail()
        rows = written.rows
        return {
            batch.table_name(t): rows.get(batch.table_name(t), 0)
            for t in batch.policy.graph.deletion_order()
        }
