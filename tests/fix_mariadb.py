"""Pytest plugin: a real MariaDB server and a fresh database per test (as fix_db for PostgreSQL).

Fixtures:

- ``mariadb_admin_url`` (session): URL of the server the tests use, connected to no database.
- ``mariadb_url`` / ``mariadb_conn``: a brand-new empty database for one test, and the tool's own
  connection to it (``retention.db.connect``).

The server: ``$RETENTION_TEST_MARIADB_URL`` when set; else 127.0.0.1:3306 as root with an empty
password when it answers (these machines run one); else, as root, Debian's ``mariadb-server``
installed if missing and started, reached through its socket. When none of that works the
MariaDB tests are skipped, and the summary says so in capitals with the reason; in CI (``CI=true``)
they fail instead: a skip there would hide that the engine went untested.

Database names carry the xdist worker id and the pid, so parallel workers and other people's test
sessions on the same server never collide.
"""

from __future__ import annotations

import fcntl
import functools
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from retention.engines.mariadb.target import parse_url
from retention.settings import Settings

if TYPE_CHECKING:  # the driver may be missing: the plugin must load all the same
    from retention.engines.mariadb.connection import MariaDBConnection

ENV_URL = "RETENTION_TEST_MARIADB_URL"
LOCAL_URL = "mariadb://root@127.0.0.1:3306/"
SOCKET = "/run/mysqld/mysqld.sock"
SOCKET_URL = f"mariadb://root@localhost/?unix_socket={SOCKET}"
SERVER = "/usr/sbin/mariadbd"
START_SECONDS = 180  # InnoDB's crash recovery after a kill -9 of a loaded server

SKIP_MARK = "MariaDB tests not run: "

_counter = itertools.count(1)


def _driver() -> Any:
    import mariadb

    return mariadb


def _admin(url: str) -> Any:
    """A plain driver connection (the fixtures do not depend on the code under test)."""
    return _driver().connect(**parse_url(url).driver_kwargs(), connect_timeout=3, autocommit=True)


def _answers(url: str) -> str | None:
    """None when the server accepts the URL, else why not."""
    try:
        _admin(url).close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _run(command: list[str], seconds: int) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=seconds)


def _install_server() -> None:
    if Path(SERVER).exists():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, timeout=300)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "mariadb-server"],
        check=True,
        capture_output=True,
        timeout=600,
        env=env,
    )


def _start_server() -> None:
    """What this kind of machine runs at boot (start-stop-daemon, no systemd needed).

    ``--oknodo``: a server already running (another worker started it, or it is still recovering
    after a crash) is left alone."""
    _run(["install", "-d", "-o", "mysql", "-g", "mysql", str(Path(SOCKET).parent)], 30)
    _run(
        ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", SERVER],
        30,
    )


def _answering_url(seconds: float) -> str | None:
    """The first of LOCAL_URL and SOCKET_URL that the server accepts within ``seconds``.

    Not "the socket file exists": a server killed without a shutdown leaves its socket file
    behind, and a server in crash recovery has not opened its port yet. Only an accepted login
    says the server is ready."""
    deadline = time.monotonic() + seconds
    while True:
        problems = []
        for url in (LOCAL_URL, SOCKET_URL):
            problem = _answers(url)
            if problem is None:
                return url
            problems.append(problem)
        if time.monotonic() >= deadline or any("Access denied" in p for p in problems):
            return None
        time.sleep(0.5)


def _local_server() -> tuple[str | None, str]:
    """A URL of a local server once installed and started here, or None and why not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "not root, or no apt-get: cannot install and start mariadb-server"
    with open("/tmp/retention-test-mariadb.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers: one install and start at a time
        url = _answering_url(0)  # another worker may have started it while this one waited
        if url is not None:
            return url, ""
        try:
            _install_server()
            _start_server()
        except (subprocess.SubprocessError, OSError) as exc:
            return None, f"installing or starting mariadb-server failed: {exc}"
        url = _answering_url(START_SECONDS)
    if url is not None:
        return url, ""
    return None, (
        f"mariadb-server started but did not accept root within {START_SECONDS} s: "
        f"{_answers(SOCKET_URL)}"
    )


def _find_server() -> tuple[str | None, str]:
    env_url = os.environ.get(ENV_URL)
    if env_url:
        problem = _answers(env_url)
        return (env_url, "") if problem is None else (None, f"${ENV_URL} refused: {problem}")
    if _answers(LOCAL_URL) is None:
        return LOCAL_URL, ""
    return _local_server()


def _unavailable(reason: str) -> None:
    message = SKIP_MARK + reason
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI must test the MariaDB engine)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def mariadb_admin_url() -> str:
    """The server to use (see the module docstring), connected to no database."""
    try:
        _driver()
    except ImportError as exc:
        _unavailable(f"the driver cannot be imported ({exc}); run `make venv`")
    url, reason = _find_server()
    if url is None:
        _unavailable(reason)
    assert url is not None
    return url


def with_database(url: str, name: str) -> str:
    """The same server and account as ``url``, another default database."""
    target = parse_url(url)
    head, _, query = url.partition("?")
    base = head.split("://", 1)[1].split("/", 1)[0]
    return f"{target.scheme}://{base}/{name}" + (f"?{query}" if query else "")


def _new_name() -> str:
    return f"rt_m{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}_{next(_counter)}"


@pytest.fixture
def mariadb_url(mariadb_admin_url: str) -> Iterator[str]:
    """A brand-new empty database for this test, dropped afterwards."""
    name = _new_name()
    admin = _admin(mariadb_admin_url)
    try:
        admin.cursor().execute(f"CREATE DATABASE `{name}`")
        yield with_database(mariadb_admin_url, name)
    finally:
        with suppress(Exception):
            admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def mariadb_conn(mariadb_url: str) -> Iterator[MariaDBConnection]:
    """The tool's autocommit connection to :func:`mariadb_url`."""
    from retention.db import connect
    from retention.engines.mariadb.connection import MariaDBConnection

    with connect(Settings(), url=mariadb_url) as connection:
        assert isinstance(connection, MariaDBConnection)
        yield connection


@pytest.fixture
def mysql_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MariaDB engine chooses its statements as on a MySQL 8 server (no server here: its
    paths are valid MariaDB SQL, tests/test_mysql_paths_mariadb.py)."""
    from retention.engines.mariadb import ENGINE
    from retention.engines.mariadb.flavour import MYSQL_CAPABILITIES

    monkeypatch.setattr(type(ENGINE), "capabilities", MYSQL_CAPABILITIES)


@functools.cache
def server_is_mysql() -> bool:
    """The tests' server is MySQL (only through $RETENTION_TEST_MARIADB_URL: the local one and
    the one installed here are MariaDB)."""
    url = os.environ.get(ENV_URL)
    if not url or _answers(url) is not None:
        return False
    admin = _admin(url)
    try:
        cursor = admin.cursor()
        cursor.execute("SELECT VERSION(), @@version_comment")
        version, comment = cursor.fetchone()
    finally:
        admin.close()
    return "mariadb" not in f"{version} {comment}".lower()


def sessions() -> tuple[str, str, str]:
    """(table, session id column, statement text column) of the server's live sessions:
    MySQL fails any read of its PROCESSLIST while a session's statement text holds bytes that
    utf8mb3 cannot hold (a pseudonymising batch's, a test's), performance_schema.threads does
    not fail so; MariaDB's performance_schema is off by default."""
    if server_is_mysql():
        return "performance_schema.threads", "PROCESSLIST_ID", "PROCESSLIST_INFO"
    return "information_schema.PROCESSLIST", "ID", "INFO"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked `mariadb_only(why)` tests what only MariaDB has or does (Aria, system
    versioning, its plans and messages): skipped, with why, on a MySQL server; with
    `params=[ids]`, only its cases of those parameter ids."""
    mark = item.get_closest_marker("mariadb_only")
    if mark is None or not server_is_mysql():
        return
    params = mark.kwargs.get("params")  # only these parameters' cases (their ids)
    callspec = getattr(item, "callspec", None)
    if params and not (callspec and any(p in callspec.id.split("-") for p in params)):
        return
    pytest.skip(f"MariaDB only, the server is MySQL: {mark.args[0]}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Skipped MariaDB tests are said loudly, with why (xdist workers' skips included)."""
    reasons = sorted(
        {
            report.longrepr[2].split(SKIP_MARK, 1)[1]
            for report in terminalreporter.stats.get("skipped", [])
            if isinstance(report.longrepr, tuple) and SKIP_MARK in str(report.longrepr[2])
        }
    )
    if reasons:
        terminalreporter.section("MARIADB TESTS SKIPPED", sep="!", red=True, bold=True)
        for reason in reasons:
            terminalreporter.line(f"the MariaDB engine was NOT tested: {reason}", red=True)
