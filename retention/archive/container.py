"""The archive file format, version 2: standard containers only (tar, age, gzip, CSV).

One file per batch, `<policy>/<year>/<UTC time>-<file id>.v<version>.tar`, a POSIX tar (pax)
that is **not** encrypted and holds nothing personal:

    README.txt          how to open the file with standard tools
    index.json          what the segments hold: groups, counts, keyed subject digests, hashes
    groups/<G>.age      one segment per expiry group G (month of retain_until), age-encrypted

Each segment is an age file (X25519 recipients: the custodian's public keys) whose plaintext is
a gzip-compressed tar (`.tar.gz`):

    manifest.json                  policy and its SHA-256, run, tables, columns and types,
                                   relations between tables, row counts, SHA-256 of each member
    tables/<schema>.<table>.csv    the rows: CSV (RFC 4180) as PostgreSQL's COPY writes it,
                                   a header line of the column names first

Version 1 (written until 2026-11-29) held `tables/<schema>.<table>.jsonl` instead: one JSON
object per row (PostgreSQL's row_to_json). Both are read.

An expired group's segment is removed by rewriting the outer tar under the next version number
(the segments are copied as they are: the host never decrypts anything).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from isal import igzip

FORMAT = "retention-archive"
FORMAT_VERSION = 2
INDEX = "index.json"
README = "README.txt"
MANIFEST = "manifest.json"
SEGMENT_DIR = "groups"
TABLE_DIR = "tables"
# ISA-L's gzip (the `isal` package): standard gzip, read by `gzip`, `tar -xz` and zlib, at about
# five times zlib's speed. Level 2 gives the size zlib gave at level 3 on the bench's rows
# (0.317-0.426 of the CSV against 0.320-0.426) in 23-37 ms against 175-208 ms for 9-13 MB; its
# inflate takes half of zlib's time when a batch verifies its file (bench/RESULTS.md).
GZIP_LEVEL = 2

README_TEXT = """\
Retention archive (format retention-archive, version 2)

This tar file is not encrypted. index.json lists its segments: one per expiry group (month in
which the records' legal retention ends). Each segment groups/<G>.age is encrypted with age
(https://age-encryption.org/v1) to the custodian's X25519 public keys listed in index.json, and
to one more key, made for the writing batch to read the file back and then forgotten.

To read a segment (age and tar are standard tools; on Debian: apt-get install age):

    tar -xf THIS-FILE.tar groups/2041-03.age
    age -d -i custodian.key groups/2041-03.age > segment.tar.gz
    tar -xzf segment.tar.gz        # manifest.json and tables/*.csv

Each tables/<schema>.<table>.csv is CSV (RFC 4180, UTF-8) as PostgreSQL's COPY ... (FORMAT csv)
writes it: a first line with the column names, then one record per row. A NULL is an empty
unquoted field, an empty string is "", a value with a comma, a quote or a line break is quoted
(a record may then span lines). Each value is PostgreSQL's own text for it: numbers exactly as
stored (read numeric columns as decimals, not binary floats), dates and timestamps in ISO 8601
(timestamps with time zone with their offset), bytea as \\x followed by hexadecimal, arrays,
json and ranges as PostgreSQL literals. PostgreSQL loads a file back with
COPY <table> (<columns>) FROM '<file>' (FORMAT csv, HEADER true); a generated column's value is
in the file but the server computes it: load such a table through a staging table without it.

manifest.json gives every table's columns and PostgreSQL types, how tables relate to each
other, row counts and the SHA-256 of each tables/*.csv file.
"""


@dataclass(frozen=True)
class Member:
    """One file inside a tar."""

    name: str
    data: bytes


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(value: Mapping[str, Any]) -> bytes:
    """JSON as stored in archives: UTF-8, sorted keys, compact (`jq .` indents it)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return (text + "\n").encode()


def gzip_member(data: bytes) -> bytes:
    return igzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def build_tar(members: Iterable[Member], mtime: float) -> bytes:
    """A pax tar of `members`, in order, owned by nobody in particular, mode 0600."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.size = len(member.data)
            info.mtime = int(mtime)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(member.data))
    return out.getvalue()


def read_tar(data: bytes) -> dict[str, bytes]:
    """Regular members of a tar, by name, in order; never extracted to disk."""
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            if not info.isfile():
                continue
            handle = tar.extractfile(info)
            if handle is not None:
                members[info.name] = handle.read()
    return members


def segment_member(group: str) -> str:
    return f"{SEGMENT_DIR}/{group}.age"


def table_member(table: str) -> str:
    return f"{TABLE_DIR}/{table}.csv"


def pack_segment(members: Iterable[Member], mtime: float) -> bytes:
    """The plaintext of a segment: a gzip-compressed tar."""
    return gzip_member(build_tar(members, mtime))


def unpack_segment(plaintext: bytes) -> dict[str, bytes]:
    data: bytes = igzip.decompress(plaintext)  # type: ignore[no-untyped-call]  # isal 1.9
    return read_tar(data)
