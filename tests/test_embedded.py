"""The embedded PostgreSQL server starts from a data folder, is reused, and stops cleanly."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from retention.demo import embedded
from retention.errors import DatabaseError


@pytest.fixture
def datadir() -> Iterator[Path]:
    # A short path: the server's Unix socket lives in the data folder.
    base = Path(tempfile.mkdtemp(prefix="rt-emb-"))
    yield base / "pgdata"
    embedded.stop(base / "pgdata")
    shutil.rmtree(base, ignore_errors=True)


def select_one(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row is not None
    return int(row[0])


def reachable(url: str) -> bool:
    try:
        select_one(url)
    except psycopg.OperationalError:
        return False
    return True


def test_starts_answers_queries_and_stops(datadir: Path) -> None:
    with embedded.start(datadir) as server:
        assert select_one(server.url) == 1
        assert (datadir / "PG_VERSION").exists()
    assert not reachable(server.url)


def test_restarts_on_existing_data(datadir: Path) -> None:
    with embedded.start(datadir) as server, psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
    with embedded.start(datadir) as server, psycopg.connect(server.url) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)


def test_second_handle_in_the_same_process_shares_the_server(datadir: Path) -> None:
    first = embedded.start(datadir)
    second = embedded.start(datadir)
    assert second.url == first.url
    first.stop()
    assert reachable(second.url)
    second.stop()
    assert not reachable(first.url)


def test_reuses_a_server_left_running_by_another_process(datadir: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from retention.demo import embedded; "
        "print(embedded.start(Path(sys.argv[1]), keep_running=True).url)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(datadir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    url = done.stdout.strip()
    assert reachable(url)
    with embedded.start(datadir) as server:
        assert server.url == url
    assert reachable(url)  # a guest leaves the server running
    assert embedded.stop(datadir) is True
    assert not reachable(url)
    assert embedded.stop(datadir) is False


def test_unusable_folder_is_a_database_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(DatabaseError, match="could not start the embedded PostgreSQL server"):
        embedded.start(blocker / "pgdata")
