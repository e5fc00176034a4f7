"""The daemon as systemd runs it: a subprocess on a fast schedule, signals, two instances,
metrics, and a database that goes away in the middle of a run."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from retention.daemon.schedule import Schedule
from retention.demo import embedded
from retention.demo.generate import generate
from retention.demo.schema import create_schema
from tests.engine_helpers import AUDIT_KEY, PSEUDONYM_KEY, ROOT
from tests.key_helpers import AUDIT_SIGNING_KEY
from tests.test_action_needs import scrub_policies

EVERY_2S = "* * * * * */2"  # six fields: seconds last


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaemonProcess:
    def __init__(
        self,
        url: str,
        folder: Path,
        policies: Path = ROOT / "policies",
        without: tuple[str, ...] = (),  # settings left unset
        **env: str,
    ) -> None:
        self.log = folder / f"daemon-{time.monotonic_ns()}.log"
        self.port = _free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
        environ.update(
            RETENTION_DATABASE_URL=url,
            RETENTION_AUDIT_KEY=AUDIT_KEY,
            RETENTION_AUDIT_SIGNING_KEY=AUDIT_SIGNING_KEY,
            RETENTION_PSEUDONYM_KEY=PSEUDONYM_KEY,
            RETENTION_POLICIES_DIR=str(policies),
            RETENTION_SCHEDULE=EVERY_2S,
            RETENTION_REQUIRED_APPROVALS="0",
            RETENTION_MAX_SHARE_PER_PHASE="1",
            RETENTION_RETRY_MAX_SECONDS="2",
            RETENTION_METRICS_LISTEN=f"127.0.0.1:{self.port}",
        )
        environ.update(env)
        for name in without:
            del environ[name]
        self.handle = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "retention.cli.main", "daemon"],
            env=environ,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        self.handle.close()
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return str(r.read().decode())


def _until(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _query(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('retention.runs') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            return []
        return conn.execute(query).fetchall()


def _runs(url: str, outcome: str = "completed") -> int:
    rows = _query(url, f"SELECT count(*) FROM retention.runs WHERE outcome = '{outcome}'")
    return int(rows[0][0]) if rows else 0


def _batches(url: str) -> int:
    rows = _query(url, "SELECT count(*) FROM retention.audit WHERE event = 'batch'")
    return int(rows[0][0]) if rows else 0


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop()


def test_schedule_fires_once_when_clocks_go_back_and_after_a_missing_hour() -> None:
    paris = ZoneInfo("Europe/Paris")
    nightly = Schedule.parse("30 2 * * *", "Europe/Paris")
    autumn = nightly.upcoming(datetime(2026, 10, 24, 12, tzinfo=paris), 2)
    assert [f.date().day for f in autumn] == [25, 26]
    spring = nightly.next_after(datetime(2026, 3, 28, 12, tzinfo=paris))
    assert spring.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST


def test_print_schedule_and_a_bad_expression() -> None:
    env = {
        **os.environ,
        "RETENTION_SCHEDULE": "30 2 * * 1-5",
        "RETENTION_AUDIT_KEY": AUDIT_KEY,
        "RETENTION_AUDIT_SIGNING_KEY": AUDIT_SIGNING_KEY,
        "RETENTION_POLICIES_DIR": str(ROOT / "policies"),
    }
    shown = subprocess.run(
        [sys.executable, "-m", "retention.cli.main", "daemon", "--print-schedule", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("T02:30:00") == 3
    env["RETENTION_SCHEDULE"] = "every night"
    bad = subprocess.run(
        [sys.executable, "-m", "retention.cli.main", "daemon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "is not a cron expression" in bad.stderr and "Traceback" not in bad.stderr


def test_runs_fire_on_schedule_and_metrics_report_them(
    demo_db_url: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    textfile = tmp_path / "retention.prom"
    daemon = DaemonProcess(demo_db_url, tmp_path, RETENTION_METRICS_TEXTFILE=str(textfile))
    daemons.append(daemon)
    _until(lambda: _runs(demo_db_url) >= 3, what="three scheduled runs")
    metrics = daemon.metrics()
    assert 'retention_last_run_outcome{outcome="completed"} 1.0' in metrics
    assert "retention_rows_total{" in metrics and 'policy="dossier-medical"' in metrics
    assert "retention_last_success_timestamp_seconds" in metrics
    assert "retention_daemon_up 1.0" in metrics
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    # the textfile collector reads the file after the daemon stopped: it says so
    written = textfile.read_text(encoding="utf-8")
    assert "retention_daemon_up 0.0" in written and "retention_runs_total{" in written


def test_a_metrics_port_in_use_stops_the_daemon_with_a_message_not_a_traceback(
    demo_db_url: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """An outside review: the port of `metrics_listen` already taken raised OSError's
    traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = DaemonProcess(demo_db_url, tmp_path, RETENTION_METRICS_LISTEN=f"127.0.0.1:{port}")
        daemons.append(daemon)
        assert daemon.wait() == 2
    text = daemon.text()
    assert f"metrics_listen: cannot listen on 127.0.0.1:{port}: Address already in use" in text
    assert "Traceback" not in text


def test_sigterm_mid_run_finishes_the_batch_and_audits_the_interruption(
    demo_db_url: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    daemon = DaemonProcess(demo_db_url, tmp_path, RETENTION_BATCH_SIZE="1")
    daemons.append(daemon)
    _until(lambda: _batches(demo_db_url) >= 5, what="a few batches")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    events = _query(demo_db_url, "SELECT event FROM retention.audit ORDER BY seq")
    assert events[-1][0] == "run_interrupted"
    assert _runs(demo_db_url, "interrupted") == 1
    assert "stopping after the batches under way" in daemon.text()


def test_sighup_with_a_broken_policy_keeps_the_previous_ones(
    demo_db_url: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    daemon = DaemonProcess(demo_db_url, tmp_path, policies)
    daemons.append(daemon)
    _until(lambda: _runs(demo_db_url) >= 1, what="a first run")
    broken = policies / "contacts-patients.yaml"
    broken.write_text(broken.read_text().replace("- tel_portable", "- tel_portabel"))
    daemon.signal(signal.SIGHUP)
    _until(lambda: "reload refused" in daemon.text(), what="the reload to be refused")
    assert "unknown column 'tel_portabel'" in daemon.text()
    before = _runs(demo_db_url)
    _until(lambda: _runs(demo_db_url) >= before + 2, what="runs with the previous policies")
    shas = {
        r[0]
        for r in _query(
            demo_db_url,
            "SELECT DISTINCT policy_sha256 FROM retention.audit WHERE policy = 'contacts-patients'",
        )
    }
    original = (
        __import__("hashlib")
        .sha256((ROOT / "policies" / "contacts-patients.yaml").read_bytes())
        .hexdigest()
    )
    assert shas <= {original}


def test_two_daemons_never_overlap(
    demo_db_url: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    daemons += [
        DaemonProcess(demo_db_url, tmp_path, RETENTION_BATCH_SIZE="5"),
        DaemonProcess(demo_db_url, tmp_path, RETENTION_BATCH_SIZE="5"),
    ]
    _until(lambda: _runs(demo_db_url) >= 6, what="several runs")
    for daemon in daemons:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    runs = _query(
        demo_db_url, "SELECT started_at, ended_at FROM retention.runs ORDER BY started_at"
    )
    for (_, end), (start, _) in itertools.pairwise(runs):
        assert end <= start, "two runs overlapped"
    assert any("another run is in progress" in d.text() for d in daemons)


def _start_server(datadir: Path) -> str:
    """Start (or restart) the embedded server from another process, which leaves it running
    (in this process the server object would be cached and not restarted)."""
    code = (
        "import sys; from pathlib import Path; from retention.demo.embedded import start; "
        "print(start(Path(sys.argv[1]), keep_running=True).url)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(datadir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def own_server() -> Iterator[tuple[Path, str]]:
    """A PostgreSQL server of the test's own, so that it can be stopped and restarted."""
    base = Path(tempfile.mkdtemp(prefix="rt-restart-"))
    try:
        yield base / "pgdata", _start_server(base / "pgdata")
    finally:
        embedded.stop(base / "pgdata")
        shutil.rmtree(base, ignore_errors=True)


def test_database_restarted_mid_run_the_daemon_waits_resumes_and_completes(
    own_server: tuple[Path, str], tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    datadir, url = own_server
    with psycopg.connect(url, autocommit=True) as conn:
        create_schema(conn)
        generate(conn, patients=300, seed=7)
    daemon = DaemonProcess(
        url, tmp_path, RETENTION_BATCH_SIZE="1", RETENTION_SCHEDULE="0 3 1 1 *"
    )  # only the catch-up run at start
    daemons.append(daemon)
    _until(lambda: _batches(url) >= 5, what="the run to be under way")
    embedded.stop(datadir)
    # noticed at once; the run then waits (up to RECORD_LOST_SECONDS) for the database to
    # record its failure: restarted meanwhile, so that it does (waiting for "database
    # unavailable", logged only once that wait is over, cost this test 30 s)
    lost = "the database connection was lost during the run"
    _until(lambda: lost in daemon.text(), what="the daemon to notice")
    time.sleep(1)
    assert _start_server(datadir) == url
    _until(lambda: _runs(url) >= 1, timeout=120, what="the resumed run to complete")
    assert _runs(url, "abandoned") + _runs(url, "failed") >= 1
    with psycopg.connect(url, autocommit=True) as conn:
        from tests.clock_helpers import policy, statuses

        left = [
            k
            for k, s in statuses(
                conn, policy(conn, "dossier-medical"), datetime.now(UTC).date()
            ).items()
            if s.is_due
        ]
    assert left == []  # everything due was done, nothing lost
    verify = subprocess.run(
        [sys.executable, "-m", "retention.cli.main", "audit", "verify"],
        env={**os.environ, "RETENTION_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_daemon_of_a_scrub_with_pseudonyms_loads_the_key(
    demo_conn: psycopg.Connection[Any],
    demo_db_url: str,
    tmp_path: Path,
    daemons: list[DaemonProcess],
) -> None:
    """The daemon loads the key for a scrub with pseudonyms and completes its run; without the
    key it refuses to start, saying which setting is missing."""
    policies = scrub_policies(tmp_path / "policies")
    missing = DaemonProcess(demo_db_url, tmp_path, policies, without=("RETENTION_PSEUDONYM_KEY",))
    daemons.append(missing)
    assert missing.wait(120) == 2
    assert "pseudonym_key is not set" in missing.text()
    assert _runs(demo_db_url) == 0
    started = DaemonProcess(demo_db_url, tmp_path, policies)
    daemons.append(started)
    _until(lambda: _runs(demo_db_url) >= 1, 240, "a completed run")
    failed = demo_conn.execute("SELECT count(*) FROM retention.runs WHERE outcome <> 'completed'")
    assert failed.fetchone() == (0,)


def test_an_account_the_server_refuses_is_an_error_not_a_restart(
    db_url: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """A wrong account retried forever at WARNING looked like a restart to the journal's
    filters: once the back-off reaches its ceiling, each attempt is an ERROR with the time
    since the first failure; the daemon keeps retrying (a password can be fixed live)."""
    refused = make_conninfo(db_url, user=f"rt_nobody_{os.getpid()}")
    daemon = DaemonProcess(refused, tmp_path, RETENTION_SCHEDULE=EVERY_2S)
    daemons.append(daemon)
    _until(lambda: "ERROR" in daemon.text(), what="the daemon to give the error")
    text = daemon.text()
    assert "WARNING - database unavailable (cannot connect to the database" in text
    error = next(line for line in text.splitlines() if "ERROR" in line)
    assert "ERROR   - database unavailable for " in error
    assert "retrying every 2 s. Hint: check database_url (its account" in error
    assert f'role "rt_nobody_{os.getpid()}" does not exist' in error
    assert daemon.process.poll() is None  # still retrying
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
