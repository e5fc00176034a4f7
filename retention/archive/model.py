"""Archive files and their segments as plain data: what the catalogue and the audit trail hold.

Nothing here is personal: subjects appear as keyed digests (HMAC-SHA-256 under the audit key,
as in the audit trail), tables by name, rows as counts, contents as hashes of ciphertext.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

NAME_PATTERN = re.compile(
    r"^(?P<policy>[a-z0-9][a-z0-9_-]{0,62})/(?P<year>[0-9]{4})/"
    r"(?P<stamp>[0-9]{8}T[0-9]{6}Z)-(?P<id>[0-9a-f]{32})\.v(?P<version>[0-9]+)\.tar$"
)


@dataclass(frozen=True)
class Segment:
    """One expiry group inside a file."""

    group: str
    expires_on: date | None
    subjects: int
    subject_digests: tuple[str, ...]
    rows: dict[str, int]
    bytes: int
    sha256: str  # of the encrypted segment, as stored in the file
    destroyed_at: datetime | None = None

    def index_entry(self, member: str) -> dict[str, Any]:
        return {
            "group": self.group,
            "member": member,
            "expires_on": self.expires_on.isoformat() if self.expires_on else None,
            "subjects": self.subjects,
            "subject_digests": list(self.subject_digests),
            "rows": dict(self.rows),
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class ArchiveFile:
    """One file: the archive of one batch (several groups)."""

    file_id: UUID
    name: str
    version: int
    run_id: UUID | None
    policy: str
    policy_sha256: str
    phase: str
    created_at: datetime
    bytes: int
    sha256: str
    recipients: tuple[str, ...]
    segments: tuple[Segment, ...] = ()
    destroyed_at: datetime | None = None

    @property
    def rows(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for segment in self.segments:
            for table, count in segment.rows.items():
                totals[table] = totals.get(table, 0) + count
        return totals

    def live_segments(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.destroyed_at is None)

    def audit_detail(self) -> dict[str, Any]:
        """What the audit entry says about this file (no personal value)."""
        return {
            "file_id": str(self.file_id),
            "file": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "groups": {s.group: s.subjects for s in self.live_segments()},
            "recipients": list(self.recipients),
        }


@dataclass(frozen=True)
class ParsedName:
    policy: str
    file_id: UUID
    version: int


def parse_name(name: str) -> ParsedName | None:
    """The parts of an archive file name, or None for a name this tool does not write."""
    found = NAME_PATTERN.match(name)
    if found is None:
        return None
    return ParsedName(found["policy"], UUID(found["id"]), int(found["version"]))


def file_name(policy: str, file_id: UUID, created: datetime, version: int) -> str:
    return f"{policy}/{created:%Y}/{created:%Y%m%dT%H%M%SZ}-{file_id.hex}.v{version}.tar"


def next_name(name: str) -> str:
    """The same file's name at the next version (after an expired group was removed)."""
    found = NAME_PATTERN.match(name)
    if found is None:
        raise ValueError(f"not an archive name: {name}")
    return f"{name[: found.start('version')]}{int(found['version']) + 1}.tar"


@dataclass
class Totals:
    """Counts for `archive list`."""

    files: set[UUID] = field(default_factory=set)
    segments: int = 0
    subjects: int = 0
    rows: int = 0
    bytes: int = 0
