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
from retention.engines.params import Json
from retention.engines.rows import dict_row
from retention.errors import DatabaseError

_SEGMENT_COLUMNS = (
    "file_id",
    "grp",
    "expires_on",
    "subjects",
    "subject_digests",
    "rows",
    "bytes",
    "sha256",
)


def installed(conn: Connection, schema: str) -> bool:
    return engine_of(conn).catalogue.table_exists(conn, schema, "archive_files")


def require(conn: Connection, schema: str) -> None:
    if not installed(conn, schema):
        raise DatabaseError(
            f"the archive catalogue ({schema}.archive_files) is not installed",
            hint="run 'retention init' once as the owner of the tool's schema",
        )


def insert(conn: Connection, schema: str, item: ArchiveFile) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (file_id, name, version, run_id, policy, policy_sha256, phase, "
            "created_at, bytes, sha256, recipients) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s)"
        ).format(sql.Identifier(schema, "archive_files")),
        (
            item.file_id,
            item.name,
            item.version,
            item.run_id,
            item.policy,
            item.policy_sha256,
            item.phase,
            item.created_at,
            item.bytes,
            item.sha256,
            list(item.recipients),
        ),
    )
    engine_of(conn).bulk.load(
        conn,
        sql.Identifier(schema, "archive_segments"),
        _SEGMENT_COLUMNS,
        (
            (
                item.file_id,
                s.group,
                s.expires_on,
                s.subjects,
                list(s.subject_digests),
                Json(s.rows),
                s.bytes,
                s.sha256,
            )
            for s in item.segments
        ),
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
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    if not include_destroyed:
        conditions.append(sql.SQL("f.destroyed_at IS NULL"))
    if policy is not None:
        conditions.append(sql.SQL("f.policy = %s"))
        params.append(policy)
    if file_ids is not None:
        conditions.append(sql.SQL("f.file_id = ANY(%s)"))
        params.append(list(file_ids))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT f.* FROM {} AS f WHERE {} ORDER BY f.created_at, f.file_id").format(
                sql.Identifier(schema, "archive_files"), sql.SQL(" AND ").join(conditions)
            ),
            params,
        )
        found = cur.fetchall()
        cur.execute(
            sql.SQL("SELECT * FROM {} WHERE file_id = ANY(%s) ORDER BY file_id, grp").format(
                sql.Identifier(schema, "archive_segments")
            ),
            ([row["file_id"] for row in found],),
        )
        segments: dict[UUID, list[Segment]] = {}
        for row in cur.fetchall():
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
    return {row[0]: (row[1], row[2]) for row in rows}


def replace_version(
    conn: Connection,
    schema: str,
    file_id: UUID,
    name: str,
    version: int,
    size: int,
    digest: str,
) -> None:
    conn.execute(
        sql.SQL(
            "UPDATE {} SET name = %s, version = %s, bytes = %s, sha256 = %s WHERE file_id = %s"
        ).format(sql.Identifier(schema, "archive_files")),
        (name, version, size, digest, file_id),
    )


def destroy(
    conn: Connection, schema: str, file_id: UUID, groups: Iterable[str], whole: bool
) -> None:
    conn.execute(
        sql.SQL(
            "UPDATE {} SET destroyed_at = now() WHERE file_id = %s AND grp = ANY(%s) "
            "AND destroyed_at IS NULL"
        ).format(sql.Identifier(schema, "archive_segments")),
        (file_id, list(groups)),
    )
    if whole:
        conn.execute(
            sql.SQL("UPDATE {} SET destroyed_at = now() WHERE file_id = %s").format(
                sql.Identifier(schema, "archive_files")
            ),
            (file_id,),
        )
