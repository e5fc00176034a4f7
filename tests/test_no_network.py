"""Hospital servers are offline: importing the discovery code, building the analyzer and
scanning must never try to reach the network (tldextract, spaCy, Presidio).

Python's socket functions are replaced by a guard that records and refuses every connection
or name lookup except to the test PostgreSQL server (libpq, used by psycopg, does not go
through Python's sockets anyway). A control proves the guard sees what a library would do.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from retention.discovery import engine
from retention.discovery.scan import scan

ROOT = Path(__file__).resolve().parent.parent

GUARD = r"""
import json, socket, sys

ALLOWED = set(json.loads(sys.argv[1]))
attempts = []
_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
_create, _getaddrinfo = socket.create_connection, socket.getaddrinfo


def _host(address):
    return address[0] if isinstance(address, tuple) else address


def _allowed(sock, address):
    return sock.family == socket.AF_UNIX or str(_host(address)) in ALLOWED


def connect(self, address):
    if not _allowed(self, address):
        attempts.append(f"connect {address}")
        raise ConnectionRefusedError("network disabled by test_no_network")
    return _connect(self, address)


def connect_ex(self, address):
    if not _allowed(self, address):
        attempts.append(f"connect_ex {address}")
        return 111
    return _connect_ex(self, address)


def create_connection(address, *args, **kwargs):
    if str(_host(address)) not in ALLOWED:
        attempts.append(f"create_connection {address}")
        raise ConnectionRefusedError("network disabled by test_no_network")
    return _create(address, *args, **kwargs)


def getaddrinfo(host, *args, **kwargs):
    if host is not None and str(host) not in ALLOWED:
        attempts.append(f"getaddrinfo {host}")
        raise socket.gaierror("network disabled by test_no_network")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
socket.create_connection, socket.getaddrinfo = create_connection, getaddrinfo
"""

SCAN = r"""
import psycopg
from retention.discovery.engine import get_analyzer
from retention.discovery.scan import scan

analyzer = get_analyzer()
texts = ["jean.dupont@orange.fr", "courriel m.durand@chu-rennes.fr", "http://example.org"]
emails = sum(r.entity_type == "EMAIL_ADDRESS" for res in analyzer.analyze(texts, "fr") for r in res)
with psycopg.connect(sys.argv[2], autocommit=True) as conn:
    personal = len(scan(conn).personal)
during = list(attempts)

import tldextract  # control: the library's default configuration fetches the suffix list
tldextract.TLDExtract(cache_dir=None)("someone@example.org")
print(json.dumps({"during": during, "control": attempts[len(during):], "emails": emails,
                  "personal": personal}))
"""


def _allowed_hosts(url: str) -> list[str]:
    host = conninfo_to_dict(url).get("host") or "localhost"
    return [str(host), "localhost", "127.0.0.1", "::1"]


def test_import_engine_and_scan_make_no_connection_attempt(demo_db_url: str) -> None:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("RETENTION_", "TLDEXTRACT_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", GUARD + SCAN, json.dumps(_allowed_hosts(demo_db_url)), demo_db_url],
        capture_output=True, text=True, env=environ, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["during"] == []
    assert report["emails"] == 2 and report["personal"] >= 20
    assert any("publicsuffix" in attempt or "github" in attempt for attempt in report["control"])


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, demo_db_url: str) -> Iterator[list[str]]:
    """In this process: refuse and record connections except to the test server."""
    allowed = set(_allowed_hosts(demo_db_url))
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if self.family != socket.AF_UNIX and str(host) not in allowed:
            attempts.append(f"connect {address}")
            raise ConnectionRefusedError("network disabled by test_no_network")
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and str(host) not in allowed:
            attempts.append(f"getaddrinfo {host}")
            raise socket.gaierror("network disabled by test_no_network")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts


def test_building_a_new_engine_and_scanning_stay_offline(
    no_network: list[str], demo_conn: psycopg.Connection[TupleRow]
) -> None:
    analyzer = engine.build_analyzer()
    results = next(iter(analyzer.analyze(["écrire à jean.dupont@orange.fr"], "fr")))
    assert any(r.entity_type == "EMAIL_ADDRESS" for r in results)
    assert scan(demo_conn, analyzer=analyzer).personal
    assert no_network == []
    with pytest.raises(OSError):
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # the guard is active
