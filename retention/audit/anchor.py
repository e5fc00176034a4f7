"""Anchors: audit entries known from outside the database.

The hash chain proves the order and content of the entries it holds, but an account that can
delete rows behind the append-only trigger can delete the *last* entries, or rewrite the whole
chain with fresh hashes (a plain SHA-256 chain has no secret): what remains is a shorter or a
different chain that is valid in itself. Records kept outside the database tie it down:

- the **head file** (setting `audit_head_file`): after each run, the sequence number and hash
  of the trail's last entry, written atomically on the host that runs `retention`;
- the **mirror** (setting `audit_log`: a file, or journald with `-`): every entry as a JSON line;
  `journalctl -u retention -o cat` gives the same lines back.

`retention audit verify` checks that every anchored entry is still in the chain with the same
hash. Neither record holds anything personal: sequence numbers, hashes, counts and digests.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retention.errors import UsageError

HEAD_FORMAT = 1


@dataclass(frozen=True)
class Anchor:
    """An entry known from outside the database: its sequence number, its hash, and where
    that knowledge comes from (shown when the chain disagrees)."""

    seq: int
    hash: str
    source: str


@dataclass(frozen=True)
class Copy:
    """The entries of a mirror file, and how many of its lines were not audit entries."""

    anchors: list[Anchor]
    skipped: int


def write_head(path: Path, seq: int, entry_hash: str, recorded_at: str) -> None:
    """Record the trail's last entry in `path`: written to a temporary file in the same
    folder, flushed to disk, then renamed over the old one (never half written)."""
    text = json.dumps(
        {"format": HEAD_FORMAT, "seq": seq, "hash": entry_hash, "recorded_at": recorded_at},
        sort_keys=True,
    )
    folder = path.parent
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _sync_folder(folder)


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


def read_head(path: Path) -> Anchor | None:
    """The entry the head file records; None when there is no such file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read the audit head file {path}: {_reason(exc)}",
            hint="check the path (setting audit_head_file or --head) and its permissions",
        ) from None
    anchor = _anchor(_json(text), f"the head file {path}")
    if anchor is None:
        raise UsageError(
            f"{path} is not an audit head file (expected JSON with 'seq' and 'hash')",
            hint="it is written by 'retention run' after each run; do not edit it",
        )
    return anchor


def read_copy(path: Path) -> Copy:
    """The entries of a mirror of the trail (`audit_log` file, or `journalctl -o cat` /
    `journalctl -o json` output; `-` reads standard input). Lines that are not audit entries
    (other log lines, truncated lines of a rotated file) are counted and skipped."""
    name = "standard input" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":
            lines: Iterable[str] = sys.stdin.read().splitlines()
        else:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise UsageError(
            f"cannot read the audit log copy {name}: {_reason(exc)}",
            hint="give a file written through the audit_log setting, or journalctl output",
        ) from None
    anchors, skipped = [], 0
    for number, line in enumerate(lines, start=1):
        content = _entry_of_line(line)
        anchor = _anchor(content, f"{name}, line {number}") if content is not None else None
        if anchor is None:
            skipped += 1 if line.strip() else 0
        else:
            anchors.append(anchor)
    return Copy(anchors, skipped)


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
    except ValueError:
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
