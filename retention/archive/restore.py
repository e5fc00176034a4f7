"""Restore one subject's record from its archive: for the key custodian, with the private key.

The segments holding the subject are found by its keyed digest in the catalogue; the file is
checked against the catalogue (SHA-256) before anything is decrypted; the segment is decrypted
with the custodian's identity and its members checked against its manifest. The subject's rows
are picked with the relations recorded in the manifest (not the current policy), parents first,
and either loaded into the live database in one transaction (every constraint applies; nothing
is inserted if one row fails) or written as files (CSV; JSON Lines for a version 1 archive).
Both are audited.

A version 2 segment's rows are picked by the engine (`ArchiveRows.pick`): PostgreSQL loads each
table's CSV into a temporary table of text columns (in a transaction rolled back at once), so
that NULLs, quoting and values compare exactly as the archive wrote them; nothing read from the
archive is pasted into SQL (names are quoted identifiers, values bound parameters). MariaDB
picks them in this process (engines/archive_pick.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage

from retention.archive import catalog, codec, container
from retention.archive.errors import ArchiveAlteredError, ArchiveError, IdentityError
from retention.archive.model import ArchiveFile, Segment
from retention.archive.storage import Storage
from retention.archive.writer import check_members
from retention.audit.trail import AuditTrail, Entry, Stored, mirror, subject_digest
from retention.catalog.introspect import read_catalog
from retention.db import connection_lost
from retention.engines import Connection, engine_of, errors, sql
from retention.engines.archive import ManifestError


@dataclass(frozen=True)
class Found:
    """A segment holding the subject, and the policy it was archived under."""

    file: ArchiveFile
    segment: Segment


@dataclass(frozen=True)
class SubjectRecord:
    """One subject's rows, per table (parents first): the archived text of those rows (CSV
    with its header line; JSON lines in a version 1 archive) and how many there are."""

    found: Found
    manifest: dict[str, Any]
    tables: dict[str, bytes]
    rows: dict[str, int]

    @property
    def version(self) -> int:
        return int(self.manifest.get("format_version", 1))


def find(
    conn: Connection, schema: str, trail: AuditTrail, subject: str, policy: str | None
) -> list[Found]:
    """Live segments listing the subject's digest, newest first."""
    policies = [policy] if policy else _policies(conn, schema)
    found = []
    for name in policies:
        digest = subject_digest(trail.key, name, subject)
        rows = engine_of(conn).archive.segments_of(conn, schema, name, digest)
        files = {f.file_id: f for f in catalog.files(conn, schema, file_ids=[r[0] for r in rows])}
        for file_id, group in rows:
            item = files[file_id]
            found.append(Found(item, next(s for s in item.segments if s.group == group)))
    return sorted(found, key=lambda f: f.file.created_at, reverse=True)


def _policies(conn: Connection, schema: str) -> list[str]:
    rows = conn.execute(
        sql.SQL("SELECT DISTINCT policy FROM {} ORDER BY 1").format(
            sql.Identifier(schema, "archive_files")
        )
    ).fetchall()
    return [row[0] for row in rows]


def open_segment(
    storage: Storage, found: Found, identities: list[pyrage.x25519.Identity]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Check the file, decrypt the segment; its manifest and members (plaintext, in memory)."""
    data = storage.read(found.file.name)
    if container.sha256(data) != found.file.sha256:
        raise ArchiveAlteredError(
            f"archive {found.file.name} is altered: its SHA-256 differs from the catalogue "
            "and the audit trail",
            hint="restore from a backup copy of that file; 'retention archive verify' lists "
            "every altered file",
        )
    stored = container.read_tar(data).get(container.segment_member(found.segment.group))
    if stored is None or container.sha256(stored) != found.segment.sha256:
        raise ArchiveAlteredError(
            f"archive {found.file.name}: segment {found.segment.group} altered"
        )
    try:
        plaintext = pyrage.decrypt(stored, identities)
    except pyrage.DecryptError:
        raise IdentityError(
            f"no given identity decrypts {found.file.name} (group {found.segment.group})",
            hint=f"it was encrypted to: {', '.join(found.file.recipients)}",
        ) from None
    inner = container.unpack_segment(plaintext)
    manifest_bytes = inner.get(container.MANIFEST, b"{}")
    check_members(found.file.name, found.segment.group, manifest_bytes, inner)
    return json.loads(manifest_bytes), inner


def subject_rows(
    manifest: dict[str, Any], inner: dict[str, bytes], subject: str
) -> dict[str, list[str]]:
    """Version 1 (JSON Lines): the subject's rows per table, parents first, following the
    manifest's relations."""
    decoded: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for table in manifest["tables"]:
        text = inner[table["member"]].decode("utf-8")
        # split at \n only: JSON leaves U+2028 and U+0085 unescaped, splitlines() splits there
        decoded[table["name"]] = [(line, json.loads(line)) for line in text.split("\n") if line]
    key = manifest["subject"]["key"]
    chosen: dict[str, list[tuple[str, dict[str, Any]]]] = {
        manifest["subject"]["table"]: [
            row for row in decoded[manifest["subject"]["table"]] if str(row[1][key]) == subject
        ]
    }
    for table in manifest["tables"]:
        name = table["name"]
        if name in chosen:
            continue
        edges = [r for r in manifest["relations"] if r["child"] == name]
        chosen[name] = [
            row for row in decoded[name] if any(_linked(row[1], e, chosen) for e in edges)
        ]
    return {t["name"]: [line for line, _ in chosen[t["name"]]] for t in manifest["tables"]}


def subject_csv(
    conn: Connection, manifest: dict[str, Any], inner: dict[str, bytes], subject: str
) -> dict[str, tuple[bytes, int]]:
    """Version 2 (CSV): the subject's rows per table, parents first, following the manifest's
    relations, each table as CSV with its header line; picked by the server, see above.

    Values compare as the database that archived them compared them: each side of a link (and
    the subject's key) is cast to the type the manifest gives it, as this server resolves that
    name (schema and type, without modifier: a cast never truncates), so `1.00` = `1` between
    numeric and integer and `'P1      '` = `'P1'` between char(n) and varchar; both sides
    compare as text when a type is unknown here. The live tables are not needed (restore to
    files works after they were dropped or changed)."""
    codec.require_utf8(conn)
    subject_table = manifest["subject"]["table"]
    if subject_table not in {t["name"] for t in manifest["tables"]}:
        raise ArchiveError(f"the manifest's subject table {subject_table} is not in it")
    try:
        picked = engine_of(conn).archive.pick(conn, manifest, inner, subject)
    except ManifestError as exc:
        raise ArchiveError(exc.message) from None
    if picked[subject_table][1] > 1:
        raise ArchiveError(
            f"{picked[subject_table][1]} rows of {subject_table} have this key in the archive; "
            "nothing was restored"
        )
    return picked


def _linked(row: dict[str, Any], edge: dict[str, Any], chosen: dict[str, list[Any]]) -> bool:
    if edge["class_column"] is not None and row.get(edge["class_column"]) != edge["class_value"]:
        return False
    value = tuple(row.get(c) for c in edge["child_columns"])
    return any(
        tuple(parent.get(c) for c in edge["parent_columns"]) == value
        for _, parent in chosen.get(edge["parent"], [])
    )


def load(
    conn: Connection,
    storage: Storage,
    found: Found,
    identities: list[pyrage.x25519.Identity],
    subject: str,
) -> SubjectRecord:
    manifest, inner = open_segment(storage, found, identities)
    try:
        return _pick(conn, found, manifest, inner, subject)
    except (KeyError, TypeError, ValueError, AttributeError):
        # the file's hashes matched the catalogue: it was written so (by another tool, or
        # altered before it was catalogued)
        raise ArchiveError(
            f"{found.file.name} (group {found.segment.group}): its manifest does not describe "
            "its tables as this version writes them; nothing was restored"
        ) from None
    except errors.Error as exc:
        if connection_lost(conn, exc):
            raise
        # never the server's message: it may quote a value of the file
        raise ArchiveError(
            f"{found.file.name} (group {found.segment.group}): its rows do not load "
            f"(SQLSTATE {exc.sqlstate}); nothing was restored"
        ) from None


def _pick(
    conn: Connection,
    found: Found,
    manifest: dict[str, Any],
    inner: dict[str, bytes],
    subject: str,
) -> SubjectRecord:
    if int(manifest.get("format_version", 1)) >= 2:
        picked = subject_csv(conn, manifest, inner, subject)
        return SubjectRecord(
            found,
            manifest,
            {t: data for t, (data, _) in picked.items()},
            {t: n for t, (_, n) in picked.items()},
        )
    lines = subject_rows(manifest, inner, subject)
    return SubjectRecord(
        found,
        manifest,
        {t: "".join(f"{line}\n" for line in chosen).encode() for t, chosen in lines.items()},
        {t: len(chosen) for t, chosen in lines.items()},
    )


def into_database(
    conn: Connection,
    schema: str,
    trail: AuditTrail,
    record: SubjectRecord,
    subject: str,
) -> dict[str, int]:
    """Load the rows, parents first, in one transaction with the audit entry."""
    live = read_catalog(conn, tool_schema=schema)
    columns = {t["name"]: t["columns"] for t in record.manifest["tables"]}
    counts: dict[str, int] = {}
    name = ""
    try:
        with conn.transaction():
            for name, data in record.tables.items():
                if not record.rows.get(name):
                    continue
                table = live.tables.get(_qname(name))
                if table is None:
                    raise ArchiveError(f"table {name} does not exist any more; use --to DIR")
                if record.version >= 2:
                    names = [str(c["name"]) for c in columns[name]]
                    counts[name] = codec.copy_into(conn, table, names, data)
                else:
                    lines = data.decode("utf-8").split("\n")[:-1]  # each line ends with \n
                    counts[name] = codec.restore_rows(conn, table, columns[name], lines)
            stored = _audit(conn, trail, record, subject, counts, "database")
    except errors.UniqueViolation:
        raise ArchiveError(
            "some of these rows are already in the database: nothing was restored"
        ) from None
    except errors.IntegrityError as exc:
        # the constraint's name, never the server's text (a trigger's may quote a value)
        constraint = exc.diag.constraint_name or "a constraint or trigger"
        raise ArchiveError(
            f"the database refused the rows of {name} ({constraint}, SQLSTATE {exc.sqlstate}): "
            "nothing was restored",
            hint="restore with --to DIR and load the rows by hand",
        ) from None
    except errors.Error as exc:
        if connection_lost(conn, exc):
            raise
        # the message or its context would quote the value: the table and the SQLSTATE only
        raise ArchiveError(
            f"the database refused the rows of {name} (SQLSTATE {exc.sqlstate}): nothing was "
            "restored",
            hint="a value that does not fit a changed table (class 22), or a trigger; restore "
            "with --to DIR and load the rows by hand",
        ) from None
    mirror(stored)  # committed: now in the copy outside the database too
    return counts


def to_directory(
    conn: Connection,
    trail: AuditTrail,
    record: SubjectRecord,
    subject: str,
    folder: Path,
) -> dict[str, int]:
    """Write the rows (CSV, or JSON Lines from a version 1 archive; mode 0600 in a new 0700
    folder) and a manifest describing those files. Nothing is left half-written: on an error
    the files already written are removed."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ArchiveError(f"{folder} is not an empty folder", hint="give a new or empty folder")
    suffix = "csv" if record.version >= 2 else "jsonl"
    files = {
        f"{name}.{suffix}": data for name, data in record.tables.items() if record.rows.get(name)
    }
    manifest = _export_manifest(record, trail, subject, files)
    written: list[Path] = []
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, data in {**files, container.MANIFEST: container.dumps(manifest)}.items():
            _write(folder / name, data)
            written.append(folder / name)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise ArchiveError(
            f"cannot write the restored rows to {folder}: {exc.strerror or type(exc).__name__}; "
            "nothing was left there",
            hint="give a writable folder with enough space",
        ) from None
    with conn.transaction():
        stored = _audit(conn, trail, record, subject, record.rows, "directory")
    mirror(stored)
    return record.rows


def _export_manifest(
    record: SubjectRecord, trail: AuditTrail, subject: str, files: dict[str, bytes]
) -> dict[str, Any]:
    """The segment's manifest made to describe the exported files: this subject only, each
    table's file, row count and SHA-256 (the segment's own figures cover every subject)."""
    manifest = dict(record.manifest)
    by_name = {f.rsplit(".", 1)[0]: (f, data) for f, data in files.items()}
    tables = []
    for table in record.manifest["tables"]:
        name = str(table["name"])
        file, data = by_name.get(name, (None, b""))
        tables.append(
            {
                **table,
                "member": file,
                "rows": record.rows.get(name, 0),
                "bytes": len(data),
                "sha256": container.sha256(data) if file else None,
            }
        )
    manifest.update(
        tables=tables,
        subjects=1,
        subject_digests=list(trail.digests(record.found.file.policy, [subject])),
        exported_from={
            "file": record.found.file.name,
            "group": record.found.segment.group,
            "note": "restored rows of one subject; 'member' is the file beside this manifest",
        },
    )
    return manifest


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _qname(name: str) -> tuple[str, str]:
    schema, _, table = name.partition(".")
    return schema, table


def _audit(
    conn: Connection,
    trail: AuditTrail,
    record: SubjectRecord,
    subject: str,
    rows: dict[str, int],
    destination: str,
) -> Stored:
    item = record.found.file
    return trail.append(
        conn,
        Entry(
            event="archive_restored",
            outcome="restored" if destination == "database" else "exported",
            policy=item.policy,
            policy_sha256=item.policy_sha256,
            phase=item.phase,
            rows={k: v for k, v in rows.items() if v},
            subjects=1,
            subject_digests=trail.digests(item.policy, [subject]),
            detail={
                "file_id": str(item.file_id),
                "file": item.name,
                "group": record.found.segment.group,
                "destination": destination,
            },
        ),
    )
