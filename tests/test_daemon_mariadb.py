"""The daemon on MariaDB, as systemd runs it: scheduled runs, one at a time (`GET_LOCK`),
SIGTERM after the batches under way with the interruption audited, metrics."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retention.db import connect
from retention.engines import sql
from retention.settings import Settings
from tests.test_daemon import DaemonProcess, _until
from tests.test_run_mariadb import _drop, _hospital, _name


@pytest.fixture
def hospital(mariadb_admin_url: str) -> Iterator[tuple[str, str]]:
    """The demo hospital on MariaDB and the name of the tool's database."""
    from retention.engines.mariadb.session import database_url

    name, tool = _name("dh"), _name("dt")
    _drop(mariadb_admin_url, name, tool)
    with connect(Settings(), url=mariadb_admin_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(mariadb_admin_url, name)
    try:
        with connect(Settings(), url=url) as conn:
            _hospital(conn)
        yield url, tool
    finally:
        _drop(mariadb_admin_url, name, tool)


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop()


def _query(url: str, tool: str, query: str) -> list[tuple[Any, ...]]:
    with connect(Settings(), url=url) as conn:
        exists = conn.execute(
            "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = 'audit'",
            (tool,),
        ).fetchone()
        if not (exists and exists[0]):
            return []
        return conn.execute(sql.SQL(query).format(tool=sql.Identifier(tool))).fetchall()


def _runs(url: str, tool: str, outcome: str = "completed") -> int:
    rows = _query(url, tool, f"SELECT count(*) FROM {{tool}}.runs WHERE outcome = '{outcome}'")
    return int(rows[0][0]) if rows else 0


def _batches(url: str, tool: str) -> int:
    rows = _query(url, tool, "SELECT count(*) FROM {tool}.audit WHERE event = 'batch'")
    return int(rows[0][0]) if rows else 0


def test_two_daemons_on_mariadb_never_overlap_and_report_metrics(
    hospital: tuple[str, str], tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    url, tool = hospital
    daemons += [
        DaemonProcess(url, tmp_path, RETENTION_BATCH_SIZE="5", RETENTION_SCHEMA_NAME=tool),
        DaemonProcess(url, tmp_path, RETENTION_BATCH_SIZE="5", RETENTION_SCHEMA_NAME=tool),
    ]
    _until(lambda: _runs(url, tool) >= 4, what="several runs")
    metrics = daemons[0].metrics() + daemons[1].metrics()
    assert 'retention_last_run_outcome{outcome="completed"} 1.0' in metrics
    assert "retention_rows_total{" in metrics and 'policy="dossier-medical"' in metrics
    for daemon in daemons:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    runs = _query(url, tool, "SELECT started_at, ended_at FROM {tool}.runs ORDER BY started_at")
    assert len(runs) >= 4
    for (_, end), (start, _) in itertools.pairwise(runs):
        assert end <= start, "two runs overlapped"
    assert any("another run is in progress" in d.text() for d in daemons)
    assert not any("Traceback" in d.text() for d in daemons)


def test_sigterm_mid_run_on_mariadb_finishes_the_batch_and_audits_it(
    hospital: tuple[str, str], tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    url, tool = hospital
    daemon = DaemonProcess(url, tmp_path, RETENTION_BATCH_SIZE="1", RETENTION_SCHEMA_NAME=tool)
    daemons.append(daemon)
    _until(lambda: _batches(url, tool) >= 5, what="a few batches")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    events = _query(url, tool, "SELECT event FROM {tool}.audit ORDER BY seq")
    assert events[-1][0] == "run_interrupted"
    assert _runs(url, tool, "interrupted") == 1
    assert "stopping after the batches under way" in daemon.text()


def test_a_daemon_started_after_a_run_reads_its_start_on_mariadb(
    hospital: tuple[str, str], tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """At start the daemon compares the last run's start (DATETIME, UTC without a zone on
    MariaDB) with the schedule's previous fire (aware): it used to crash there with a
    TypeError once any run existed."""
    from tests.test_run_mariadb import RUN, _cli, _policies

    url, tool = hospital
    first = _cli(url, tool, _policies(tmp_path / "policies"), *RUN)
    assert first.returncode == 0, first.stderr[-3000:]
    assert _runs(url, tool) == 1
    daemon = DaemonProcess(url, tmp_path, RETENTION_SCHEMA_NAME=tool)
    daemons.append(daemon)
    _until(lambda: _runs(url, tool) >= 2, what="a scheduled run after the first")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert "Traceback" not in daemon.text()
