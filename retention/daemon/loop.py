"""`retention daemon`: runs on a schedule until told to stop.

- SIGTERM / SIGINT: the batches under way finish and commit, the interruption is audited, the
  process exits 0. SIGHUP: settings and policies are reloaded, validated first; invalid ones
  are logged and the previous ones kept.
- A fire missed while the daemon was down (the last run started before the previous fire
  time) triggers one run at start.
- The database away or restarted: retry with exponential back-off up to a ceiling; the next
  attempt recomputes what is due, so nothing is lost or done twice. Warnings while the delay
  grows; once it reaches the ceiling (`retry_max_seconds`), an error at each attempt, with the
  time since the first failure: an account refused or a server gone for good is not a restart.
- systemd `Type=notify`: READY once started, STATUS of what it does, WATCHDOG pings.
- A catch-all around each cycle logs the error and goes on; only invalid settings at start
  are fatal.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from loguru import logger

from retention.daemon.metrics import Metrics
from retention.daemon.notify import Notifier
from retention.daemon.schedule import Schedule
from retention.db import connect
from retention.engine.outcome import RunOptions
from retention.engine.progress import LogReporter
from retention.engine.runs import stored_utc
from retention.engines import Connection, errors, sql
from retention.engines.errors import describe_error
from retention.errors import DatabaseError, PolicyError, RetentionError
from retention.log import log_from_signal_handler
from retention.policy.check import bind_all, log_warnings
from retention.policy.load import LoadedPolicy, load_policies
from retention.service.run import RunKeys, run_keys, run_policies
from retention.settings import Settings, load_settings
from retention.store.lock import RunInProgressError, StoppedWaitingError
from retention.store.schema import (
    altered_error,
    altered_tables,
    migrate,
    pending_migrations,
    refuse_a_stray_schema,
)


@dataclass(frozen=True)
class Config:
    """What a reload replaces at once: settings, schedule, keys and policy files."""

    settings: Settings
    schedule: Schedule
    policies: list[LoadedPolicy]
    keys: RunKeys


def load_config(config_file: Path | None) -> Config:
    """Read and validate everything; raises a :class:`RetentionError` on any problem."""
    settings = load_settings(config_file)
    schedule = Schedule.parse(settings.schedule, settings.timezone, settings.random_delay_seconds)
    policies = load_policies(settings.policies_dir)
    keys = run_keys(settings, (p for lp in policies for p in lp.policy.phases))
    return Config(settings, schedule, policies, keys)


class _Heartbeat(LogReporter):
    """Progress lines, and a watchdog ping after each batch."""

    def __init__(self, notifier: Notifier) -> None:
        super().__init__(every_seconds=30)
        self.notifier = notifier

    def start(self, label: str, total: int) -> None:
        super().start(label, total)
        self.notifier.status(f"running {label}: {total} subject(s)")

    def advance(self, count: int) -> None:
        super().advance(count)
        self.notifier.watchdog()


class Daemon:
    """The scheduling loop around :func:`retention.service.run.run_policies`."""

    def __init__(self, config: Config, config_file: Path | None) -> None:
        self.config = config
        self.config_file = config_file
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.notifier = Notifier()
        self.metrics = Metrics()

    # -- signals ---------------------------------------------------------------------------
    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
        log_from_signal_handler(
            "INFO", "{} received: stopping after the batches under way", signal.Signals(signum).name
        )

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload.set()

    def _apply_reload(self) -> None:
        self.reload.clear()
        try:
            fresh = load_config(self.config_file)
            self._check_against_database(fresh)
        except RetentionError as exc:
            logger.error(
                "reload refused, the previous settings and policies stay in force:\n{}",
                exc.render(),
            )
            return
        self.config = fresh
        logger.info(
            "reloaded: {} policies, schedule '{}'", len(fresh.policies), fresh.settings.schedule
        )

    def _check_against_database(self, config: Config) -> None:
        try:
            with connect(config.settings) as conn:
                result = bind_all(conn, config.policies, tool_schema=config.settings.schema_name)
        except DatabaseError as exc:
            logger.warning("policies checked without the database (unreachable): {}", exc.message)
            return
        if result.errors:
            raise PolicyError(result.errors)

    # -- main loop -------------------------------------------------------------------------
    def serve(self) -> int:
        settings = self.config.settings
        if settings.metrics_listen:
            listening = self.metrics.serve(settings.metrics_listen)
            logger.info("metrics on http://{}/metrics", listening)
        self.notifier.ready("started")
        logger.info("daemon started; schedule '{}' ({})", settings.schedule, settings.timezone)
        if self._missed_a_fire():
            logger.info("a scheduled run was missed while the daemon was down: running now")
            self._cycle()
        while not self.stop.is_set():
            fire = self.config.schedule.next_after(datetime.now(UTC))
            self.notifier.status(f"idle; next run at {fire.isoformat()}")
            logger.info("next run at {}", fire.isoformat())
            if self._sleep_until(fire.timestamp() + self.config.schedule.delay()):
                self._cycle()
        self.notifier.stopping()
        self.metrics.up.set(0)  # a textfile read after the stop says so
        self.metrics.write_textfile(self.config.settings.metrics_textfile)  # as last reloaded
        logger.info("daemon stopped")
        return 0

    def _sleep_until(self, deadline: float) -> bool:
        """Wait for the fire time; False when stopped. Reloads and watchdog pings meanwhile."""
        while not self.stop.is_set():
            if self.reload.is_set():
                self._apply_reload()
                return False  # recompute the next fire with the new schedule
            remaining = deadline - time.time()
            if remaining <= 0:
                return True
            self.notifier.watchdog()
            self.stop.wait(min(remaining, 1.0))
        return False

    def _missed_a_fire(self) -> bool:
        previous = self.config.schedule.previous_before(datetime.now(UTC))
        try:
            with connect(self.config.settings) as conn:
                row = conn.execute(
                    sql.SQL("SELECT max(started_at) FROM {}").format(
                        sql.Identifier(self.config.settings.schema_name, "runs")
                    )
                ).fetchone()
        except errors.UndefinedTable:
            return True  # never ran on this database: the previous fire was missed
        except (DatabaseError, errors.Error) as exc:
            logger.warning("cannot tell whether a run was missed: {}", _short(exc))
            return False
        last = row[0] if row else None
        return last is None or stored_utc(last) < previous

    def _cycle(self) -> None:
        """One scheduled run, retried while the database is away; never raises."""
        delay = 1.0
        failed_since: float | None = None
        attempts = 0
        while not self.stop.is_set():
            try:
                self._run_once()
                return
            except (DatabaseError, errors.OperationalError) as exc:
                ceiling = self.config.settings.retry_max_seconds
                attempts += 1
                failed_since = failed_since or time.monotonic()
                if delay < ceiling:
                    logger.warning(
                        "database unavailable ({}); retrying in {:.0f} s", _short(exc), delay
                    )
                else:  # not a restart: a wrong password, a dropped account, a server down
                    logger.error(
                        "database unavailable for {:.0f} s ({} attempts): {}; retrying every "
                        "{:.0f} s. Hint: check database_url (its account, password and "
                        "database), that the server runs, and that it accepts this host",
                        time.monotonic() - failed_since,
                        attempts,
                        _short(exc),
                        delay,
                    )
                self.metrics.errors.labels("database").inc()
                self.notifier.status(f"database unavailable, retrying in {delay:.0f} s")
                if self.stop.wait(delay):
                    return
                delay = min(delay * 2, ceiling)
            except RunInProgressError as exc:
                logger.warning("{}: skipping this run", exc.message)
                return
            except StoppedWaitingError as exc:  # a stop, not a failure
                logger.info("{}", exc.message)
                return
            except RetentionError as exc:
                logger.error("run refused:\n{}", exc.render())
                self.metrics.failed("refused")
                return
            except Exception:  # the catch-all of a long-running daemon
                logger.exception("run failed unexpectedly; the daemon goes on")
                self.metrics.failed("internal")
                return
            finally:
                self.metrics.write_textfile(self.config.settings.metrics_textfile)

    def _run_once(self) -> None:
        config = self.config
        settings = config.settings
        with connect(settings) as conn:
            _ensure_schema(conn, settings)
            result = bind_all(conn, config.policies, tool_schema=settings.schema_name)
            if result.errors:
                raise PolicyError(result.errors)
            log_warnings(result.problems)
            options = RunOptions(
                settings.today(), command="daemon", lock_wait_seconds=settings.lock_wait_seconds
            )
            started = self.metrics.run_started()
            self.notifier.status("computing the plan")
            report = run_policies(
                conn,
                settings,
                result.bound,
                options,
                config.keys,
                stop=self.stop,
                progress=_Heartbeat(self.notifier),
            )
        assert report is not None  # nothing to review: the run always happens
        self.metrics.run_ended(report, started, report.plan)
        logger.info(
            "run {} {}: {} subject(s) acted on",
            report.run_id,
            report.outcome,
            sum(p.acted for p in report.phases),
        )


def _ensure_schema(conn: Connection, settings: Settings) -> None:
    refuse_a_stray_schema(conn, settings.schema_name)
    # A least-privilege role cannot migrate; the run then fails clearly if it must.
    with contextlib.suppress(DatabaseError):
        migrate(conn, settings.schema_name)
    # a column of the tool's tables dropped or renamed by hand: said as such at every fire,
    # not as the bare database error a batch would meet (on a schema every migration was
    # applied to: a role that cannot migrate runs on an older one, as before)
    if pending_migrations(conn, settings.schema_name) == []:
        altered = altered_tables(conn, settings.schema_name)
        if altered:
            raise altered_error(settings.schema_name, altered, init=False)


def _short(exc: BaseException) -> str:
    if isinstance(exc, RetentionError):
        return exc.message
    if isinstance(exc, errors.Error) and exc.sqlstate is not None:
        # the server's text only where it never quotes a value (MariaDB's OperationalError
        # covers "Incorrect datetime value: '<value>' ..." too)
        return describe_error(exc)
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
