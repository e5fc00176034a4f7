"""Anchors: audit entries known from outside the database.

The hash chain proves the order and content of the entries it holds, but an account that can
delete rows behind the append-only trigger can delete the *last* entries, or rewrite the whole
chain with fresh hashes (a plain SHA-256 chain has no secret): what remains is a shorter or a
different chain that is valid in itself. Records kept outside the database tie it down:

- the **head file** (setting `audit_head_file`): after each run, one line with the database,
  the schema, the sequence number and the hash of the trail's last entry, appended and flushed
  to disk on the host that runs `retention`; lines are never rewritten, so a run after a
  tampering cannot erase what an earlier run recorded;
- the **mirror** (setting `audit_log`: a file, or journald with `-`): every entry as a JSON line,
  once committed; `journalctl -u retention -u retention-run -o cat` gives the lines back.

`retention audit verify` checks that every anchored entry is still in the chain with the same
hash. Neither record holds anything personal: sequence numbers, hashes, counts and digests.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from retention.errors import UsageError

HEAD_FORMAT = 1
MAX_LINE = 1 << 16  # longer lines are not entries (journald's own limit is 48 KiB by default)


@dataclass(frozen=True)
class Anchor:
    """An entry known from outside the database: its sequence number, its hash, and where
    that knowledge comes from (shown when the chain disagrees)."""

    seq: int
    hash: str
    source: str


@dataclass(frozen=True)
class Copy:
    """The entries read from a file outside the database, with what was left out: lines that
    are not entries (`skipped`), entries of another database or schema (`other`), and lines
    that should be entries but cannot be read (`unreadable`: a head line cut short by a full
    disk, or altered)."""

    anchors: list[Anchor]
    skipped: int = 0
    other: int = 0
    unreadable: int = 0
    trails: tuple[str, ...] = ()  # the other trails' names (database.schema), in file order

    def describe(self) -> str:
        parts = [
            f"{n} {what}"
            for n, what in (
                (self.other, "line(s) of another database or schema skipped"),
                (self.unreadable, "UNREADABLE line(s) skipped"),
                (self.skipped, "other line(s) skipped"),
            )
            if n
        ]
        return ", ".join(parts)


def append_head(path: Path, database: str, schema: str, seq: int, entry_hash: str) -> None:
    """Append the trail's last entry to the head file: one JSON line per run, never
    rewritten, so that a later run cannot erase what an earlier one recorded. Mode 0644
    whatever the umask (it holds sequence numbers and hashes only, and auditors read it);
    flushed to disk before returning. A line cut short earlier (a full disk) is closed first,
    so that this one stays readable."""
    line = json.dumps(
        {
            "format": HEAD_FORMAT,
            "database": database,
            "schema": schema,
            "seq": seq,
            "hash": entry_hash,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        sort_keys=True,
    )
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            os.fchmod(fd, 0o644)
        data = (line + "\n").encode("utf-8")
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)  # no torn line left behind
            raise
    finally:
        os.close(fd)
    if size == 0:
        _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_heads(path: Path, database: str, schema: str) -> Copy | None:
    """The entries the head file records for this database and schema; None when there is no
    such file yet ('-': standard input)."""
    if str(path) != "-":
        try:
            path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(
                f"cannot read the audit head file {path}: {_reason(exc)}", hint=_HEAD_HINT
            ) from None
    anchors: list[Anchor] = []
    other = unreadable = 0
    trails: dict[str, None] = {}
    for number, line in _lines(path, "the audit head file", _HEAD_HINT):
        if not line.strip():
            continue
        data = _json(line)
        anchor = _anchor(data, f"the head file {path}, line {number}")
        if anchor is None:
            unreadable += 1  # cut short by a full disk, or altered
        elif data.get("database") != database or data.get("schema") != schema:
            other += 1
            trails[f"{data.get('database')}.{data.get('schema')}"] = None
        else:
            anchors.append(anchor)
    return Copy(anchors, other=other, unreadable=unreadable, trails=tuple(trails))


_HEAD_HINT = "check the path (setting audit_head_file or --head) and its permissions"


def read_copy(path: Path, database: str | None = None, schema: str | None = None) -> Copy:
    """The entries of a mirror of the trail (`audit_log` file, or `journalctl -o cat` /
    `journalctl -o json` output; `-` reads standard input). Lines that are not audit entries
    (other log lines, truncated lines of a rotated file) are counted and skipped, and so are
    the entries of another database or schema when `database` is given (a mirror line names
    its trail; lines written before it did are taken)."""
    name = "standard input" if str(path) == "-" else str(path)
    hint = "give the audit_log file, or 'journalctl -u retention -u retention-run -o cat' output"
    anchors: list[Anchor] = []
    skipped = other = 0
    trails: dict[str, None] = {}
    for number, line in _lines(path, "the audit log copy", hint):
        content = _entry_of_line(line)
        anchor = _anchor(content, f"{name}, line {number}") if content is not None else None
        if anchor is None or content is None:
            skipped += 1 if line.strip() else 0
            continue
        trail = content.get("trail")
        if (
            database is not None
            and isinstance(trail, dict)
            and trail
            != {
                "database": database,
                "schema": schema,
            }
        ):
            other += 1
            trails[f"{trail.get('database')}.{trail.get('schema')}"] = None
            continue
        anchors.append(anchor)
    return Copy(anchors, skipped=skipped, other=other, trails=tuple(trails))


def _lines(path: Path, what: str, hint: str) -> Iterator[tuple[int, str]]:
    """The file's lines (numbered from 1), read as a stream; undecodable bytes replaced, lines
    longer than MAX_LINE given as empty (they are not entries)."""
    name = "standard input" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":
            stream: BinaryIO = sys.stdin.buffer
            yield from _numbered(stream)
            return
        with path.open("rb") as stream:
            yield from _numbered(stream)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {name}: {_reason(exc)}", hint=hint) from None


def _numbered(stream: BinaryIO) -> Iterator[tuple[int, str]]:
    number = 0
    while True:
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of an overlong line
                raw = stream.readline(MAX_LINE)
            yield number, ""
            continue
        yield number, raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _entry_of_line(line: str) -> dict[str, Any] | None:
    """The entry a mirror line carries: loguru's serialised record (`record.message` is
    'audit {...}'), journald's JSON export (`MESSAGE` holds that record), or the bare text."""
    data = _json(line)
    if isinstance(data, dict) and isinstance(data.get("MESSAGE"), str):  # journalctl -o json
        data = _json(data["MESSAGE"])
    message: Any = None
    if isinstance(data, dict) and isinstance(data.get("record"), dict):
        message = data["record"].get("message")
    elif data is None:
        message = line.strip()
    if not isinstance(message, str) or not message.startswith("audit {"):
        return None
    entry = _json(message[len("audit ") :])
    return entry if isinstance(entry, dict) else None


def _anchor(data: Any, source: str) -> Anchor | None:
    if not isinstance(data, dict):
        return None
    seq, digest = data.get("seq"), data.get("hash")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        return None
    if not isinstance(digest, str) or len(digest) != 64:
        return None
    return Anchor(seq, digest, source)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: deeply nested brackets
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
