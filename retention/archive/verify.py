"""`archive verify`: every file against the catalogue, its own index and the audit trail.

Without a private key: each catalogued file must exist with the size and SHA-256 the catalogue
and the latest audit entry about it give, its index must describe it, and each live segment must
be present with its recorded SHA-256 (an expired segment must be gone). Files on disk that no
committed batch owns are reported. With the custodian's identity (`--identity`), every segment is
also decrypted and its members checked against its manifest (SHA-256 and row counts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyrage

from retention.archive import catalog, container
from retention.archive.errors import ArchiveError
from retention.archive.model import ArchiveFile, parse_name
from retention.archive.restore import Found, open_segment
from retention.archive.storage import TEMP_SUFFIX, Storage
from retention.engines import Connection, engine_of
from retention.store import lock


@dataclass(frozen=True)
class Problem:
    name: str
    what: str

    def render(self) -> str:
        return f"{self.name}: {self.what}"


@dataclass
class Report:
    files: int = 0
    segments: int = 0
    decrypted: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    conn: Connection,
    storage: Storage,
    schema: str,
    identities: list[pyrage.x25519.Identity] | None = None,
) -> Report:
    report = Report()
    live = catalog.files(conn, schema)
    trail = _latest_entries(conn, schema)
    on_disk = set(storage.names())
    for item in live:
        report.files += 1
        _check_trail(item, trail.get(str(item.file_id)), report)
        if item.name not in on_disk:
            report.problems.append(Problem(item.name, "missing"))
            continue
        _check_file(storage, item, report, identities)
    _check_strays(conn, schema, on_disk - {f.name for f in live}, report)
    return report


def _check_file(
    storage: Storage,
    item: ArchiveFile,
    report: Report,
    identities: list[pyrage.x25519.Identity] | None,
) -> None:
    data = storage.read(item.name)
    if len(data) != item.bytes or container.sha256(data) != item.sha256:
        report.problems.append(
            Problem(item.name, "altered: its size or SHA-256 differs from the catalogue")
        )
        return
    members = container.read_tar(data)
    try:
        index = json.loads(members[container.INDEX])
    except (KeyError, ValueError):
        report.problems.append(Problem(item.name, "its index is missing or unreadable"))
        return
    if index.get("file_id") != str(item.file_id) or index.get("version") != item.version:
        report.problems.append(Problem(item.name, "its index describes another file"))
    expected = {container.README, container.INDEX}
    for segment in item.live_segments():
        member = container.segment_member(segment.group)
        expected.add(member)
        report.segments += 1
        stored = members.get(member)
        if stored is None or container.sha256(stored) != segment.sha256:
            report.problems.append(
                Problem(item.name, f"segment {segment.group} missing or altered")
            )
            continue
        if identities is not None:
            try:
                open_segment(storage, Found(item, segment), identities)
                report.decrypted += 1
            except ArchiveError as exc:
                report.problems.append(Problem(item.name, exc.message))
    for extra in sorted(set(members) - expected):
        report.problems.append(Problem(item.name, f"unexpected member {extra}"))


def _check_trail(item: ArchiveFile, entry: dict[str, Any] | None, report: Report) -> None:
    if entry is None:
        report.problems.append(Problem(item.name, "no audit entry records this file"))
        return
    recorded = (entry.get("file"), entry.get("sha256"), entry.get("bytes"))
    if recorded != (item.name, item.sha256, item.bytes):
        report.problems.append(
            Problem(item.name, "the catalogue differs from the audit trail (name, size or hash)")
        )


def _latest_entries(conn: Connection, schema: str) -> dict[str, dict[str, Any]]:
    """The latest audit entry about each file: its batch, or the expiry that rewrote it."""
    return engine_of(conn).archive.latest_file_entries(conn, schema)


def _check_strays(conn: Connection, schema: str, names: set[str], report: Report) -> None:
    known = catalog.known_ids(conn, schema)
    running = lock.in_progress(conn)
    for name in sorted(names):
        parsed = parse_name(name.removesuffix(TEMP_SUFFIX))
        if parsed is None:
            report.problems.append(Problem(name, "unknown file (not written by this tool)"))
            continue
        current = known.get(parsed.file_id)
        if current is not None and current[1]:
            what = "should have been destroyed (expired)"
        elif name.endswith(TEMP_SUFFIX) or current is None or current[0] != parsed.version:
            what = "not committed: an interrupted batch or expiry (removed by the next run)"
            if running:
                report.notes.append(Problem(name, what + "; a run is in progress"))
                continue
        else:
            what = "unknown version"
        report.problems.append(Problem(name, what))
