"""The catalogue of archive files in the tool's schema (`archive_files`, `archive_segments`).

Rows are inserted in the batch's transaction, with the DELETE and the audit entry: a file is in
the catalogue if and only if its rows left the database. Expiry marks segments and files
destroyed once their bytes are gone from the storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from retention.archive.model import ArchiveFile, Segment
from retention.engines import Connection, engine_of, sql
from retention.errors import DatabaseError


def installed(conn: Connection, schema: str) -> bool:
    return engine_of(conn).catalogue.table_exists(conn, schema, "archive_files")


def require(conn: Connection, schema: str) -> None:
    if not installed(conn, schema):
        raise DatabaseError(
            f"the archive catalogue ({schema}.archive_files) is not installed",
            hint="run 'retention init' once as the owner of the tool's schema",
        )


def insert(conn: Connection, schema: str, item: ArchiveFile) -> None:
    engine_of(conn).archive.insert_file(
        conn,
        schema,
        {
            "file_id": item.file_id,
            "name": item.name,
            "version": item.version,
            "run_id": item.run_id,
            "policy": item.policy,
            "policy_sha256": item.policy_sha256,
            "phase": item.phase,
            "created_at": item.created_at,
            "bytes": item.bytes,
            "sha256": item.sha256,
            "recipients": list(item.recipients),
        },
        [
            {
                "file_id": item.file_id,
                "grp": s.group,
                "expires_on": s.expires_on,
                "subjects": s.subjects,
                "subject_digests": list(s.subject_digests),
                "rows": s.rows,
                "bytes": s.bytes,
                "sha256": s.sha256,
            }
            for s in item.segments
        ],
    )


def files(
    conn: Connection,
    schema: str,
    *,
    include_destroyed: bool = False,
    policy: str | None = None,
    file_ids: Iterable[UUID] | None = None,
) -> list[ArchiveFile]:
    """Files with their segments, oldest first."""
    conditions: list[tuple[str, Any]] = []
    if not include_destroyed:
        conditions.append(("destroyed", None))
    if policy is not None:
        conditions.append(("policy", policy))
    found, rows = engine_of(conn).archive.read_files(
        conn, schema, conditions, None if file_ids is None else list(file_ids)
    )
    segments: dict[UUID, list[Segment]] = {}
    for row in rows:
        segments.setdefault(row["file_id"], []).append(_segment(row))
    return [_file(row, segments.get(row["file_id"], [])) for row in found]


def _segment(row: dict[str, Any]) -> Segment:
    return Segment(
        group=row["grp"],
        expires_on=row["expires_on"],
        subjects=row["subjects"],
        subject_digests=tuple(row["subject_digests"]),
        rows=dict(row["rows"]),
        bytes=row["bytes"],
        sha256=row["sha256"],
        destroyed_at=row["destroyed_at"],
    )


def _file(row: dict[str, Any], segments: list[Segment]) -> ArchiveFile:
    return ArchiveFile(
        file_id=row["file_id"],
        name=row["name"],
        version=row["version"],
        run_id=row["run_id"],
        policy=row["policy"],
        policy_sha256=row["policy_sha256"],
        phase=row["phase"],
        created_at=row["created_at"],
        bytes=row["bytes"],
        sha256=row["sha256"],
        recipients=tuple(row["recipients"]),
        segments=tuple(segments),
        destroyed_at=row["destroyed_at"],
    )


def known_ids(conn: Connection, schema: str) -> dict[UUID, tuple[int, bool]]:
    """Every file id ever catalogued: (current version, destroyed)."""
    rows = conn.execute(
        sql.SQL("SELECT file_id, version, destroyed_at IS NOT NULL FROM {}").format(
            sql.Identifier(schema, "archive_files")
        )
    ).fetchall()
    return {UUID(str(row[0])): (int(row[1]), bool(row[2])) for row in rows}


def replace_version(
    conn: Connection,
    schema: str,
    file_id: UUID,
    name: str,
    version: int,
    size: int,
    digest: str,
) -> None:
    engine_of(conn).archive.replace_version(conn, schema, file_id, name, version, size, digest)


def destroy(
    conn: Connection, schema: str, file_id: UUID, groups: Iterable[str], whole: bool
) -> None:
    engine_of(conn).archive.destroy(conn, schema, file_id, list(groups), whole)
