"""What a run learns about the one before, it says: a run killed earlier is reported by the next
one (which run, when, how many batches it committed) and closed at its last sign of life; a run
whose connection is terminated ends with the known condition's message and a run_failed entry."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from retention.settings import Settings
from tests.engine_helpers import cli_env
from tests.fix_db import DemoTemplate, temporary_database
from tests.test_crash import _count


def _start(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "retention.cli.main", "run", "--yes", "--allow-large",
         "--reason", "recovery test"],
        env=cli_env(url, RETENTION_BATCH_SIZE="3", RETENTION_WORKERS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


@contextmanager
def _run_after_batches(
    admin_url: str, template: DemoTemplate, n: int
) -> Iterator[tuple[str, psycopg.Connection[Any], subprocess.Popen[str]]]:
    """A run on a copy of the demo database, once it has committed `n` batches; the URL, a
    connection watching it, and the running process."""
    with (
        temporary_database(admin_url, template.dbname) as url,
        psycopg.connect(url, autocommit=True) as watch,
    ):
        process = _start(url)
        while process.poll() is None and _count(watch) < n:
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before the test could stop it"
        yield url, watch, process


def test_the_run_after_a_kill_9_says_which_run_died_and_what_it_committed(
    pg_admin_url: str, demo_template: DemoTemplate
) -> None:
    with _run_after_batches(pg_admin_url, demo_template, 4) as (url, watch, killed):
        os.kill(killed.pid, signal.SIGKILL)
        killed.communicate(timeout=60)
        run_id, started = watch.execute(
            "SELECT run_id, started_at FROM retention.runs WHERE outcome = 'running'"
        ).fetchone()  # type: ignore[misc]
        committed, last_seen = watch.execute(
            "SELECT count(*) FILTER (WHERE event = 'batch'), max(recorded_at) "
            "FROM retention.audit WHERE run_id = %s",
            (run_id,),
        ).fetchone()  # type: ignore[misc]
        assert committed >= 4
        time.sleep(1.1)  # the next run starts visibly later than the killed run's last entry
        nxt = _start(url)
        out, err = nxt.communicate(timeout=300)
        assert nxt.returncode == 0, err
        said = f"an earlier run died: run {run_id} (run, pid {killed.pid}"
        assert said in out  # at the terminal
        assert said in err  # and in the log
        assert f"after {committed} committed batch entr(ies)" in out
        zone = ZoneInfo(Settings.model_fields["timezone"].default)  # the run's calendar
        assert f"started {started.astimezone(zone):%Y-%m-%d %H:%M:%S}" in out
        row = watch.execute(
            "SELECT outcome, ended_at FROM retention.runs WHERE run_id = %s", (run_id,)
        ).fetchone()
        assert row == ("abandoned", last_seen)  # its last sign of life, not when it was found
        entry = watch.execute(
            "SELECT (detail->>'batches')::int FROM retention.audit "
            "WHERE event = 'run_abandoned' AND run_id = %s",
            (run_id,),
        ).fetchone()
        assert entry == (committed,)


def test_a_terminated_connection_ends_the_run_with_a_clear_message_and_a_run_failed_entry(
    pg_admin_url: str, demo_template: DemoTemplate
) -> None:
    with _run_after_batches(pg_admin_url, demo_template, 3) as (_, watch, process):
        watch.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'retention'"
        )
        _, err = process.communicate(timeout=120)
        assert process.returncode == 4, err
        assert "Traceback" not in err
        # the server's notice, or the closed socket when the client was sending at that moment
        assert any(
            "error: the database connection was lost during the run: " + said + "; recorded in "
            "the audit trail (run_failed)" in err
            for said in (
                "the database server was shut down by an administrator (SQLSTATE 57P01)",
                "the server closed the connection (restarted, backend terminated, or network)",
            )
        ), err
        assert re.search(r"\): stopped at \d+/\d+ subjects", err), err  # not "finished"
        assert "hint: the batch under way was rolled back, every earlier batch is committed" in err
        run_id, outcome = watch.execute("SELECT run_id, outcome FROM retention.runs").fetchone()  # type: ignore[misc]
        assert outcome == "failed"
        failed = watch.execute(
            "SELECT detail->'errors'->>-1 FROM retention.audit "
            "WHERE event = 'run_failed' AND run_id = %s",
            (run_id,),
        ).fetchone()
        assert failed is not None and "connection was lost during the run" in failed[0]
