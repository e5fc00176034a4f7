"""The archive's segments are standard gzip'd tars: the writer's compressor (ISA-L) against the
standard tools, and segments written by earlier versions (zlib) read back."""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

from retention.archive import container
from retention.archive.container import Member

MEMBERS = [
    Member("manifest.json", b'{"format_version":2}\n'),
    Member("tables/public.patients.csv", b'"patient_id","nom"\n' + b"1,XXXX\n" * 5000),
]


def test_a_segment_is_read_by_the_standard_library_and_by_tar(tmp_path: Path) -> None:
    packed = container.pack_segment(MEMBERS, 0)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(packed)), mode="r:") as tar:
        assert {m.name for m in tar} == {m.name for m in MEMBERS}
    segment = tmp_path / "segment.tar.gz"
    segment.write_bytes(packed)
    (tmp_path / "out").mkdir()
    subprocess.run(["tar", "-xzf", str(segment), "-C", str(tmp_path / "out")], check=True)
    for member in MEMBERS:
        assert (tmp_path / "out" / member.name).read_bytes() == member.data


def test_a_segment_of_an_earlier_version_is_read() -> None:
    """Until 2026-12-07 segments were compressed by zlib (the standard library's gzip)."""
    earlier = gzip.compress(container.build_tar(MEMBERS, 0), compresslevel=3, mtime=0)
    assert container.unpack_segment(earlier) == {m.name: m.data for m in MEMBERS}


def test_the_same_members_give_the_same_bytes() -> None:
    first = container.pack_segment(MEMBERS, 1_700_000_000)
    assert container.pack_segment(MEMBERS, 1_700_000_000) == first
    assert len(first) < sum(len(m.data) for m in MEMBERS) // 10  # compressed, not stored
