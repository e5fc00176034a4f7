"""What the server's own log of changes keeps of purged values (retention.engines.binlog), read
through each engine on the real servers: PostgreSQL's WAL archiving, MariaDB's binary log.

Neither setting can be turned on here (`archive_mode` and `log_bin` need a server restart): the
reading is tested against what each server says of itself, and the meaning of the settings
(horizon, no expiry, nowhere to archive to) from the settings as a server would give them.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from retention.cli.check import _note
from retention.engines import Connection, engine_of
from retention.engines.binlog import BinaryLog
from retention.engines.mariadb import binlog as mariadb_binlog
from retention.engines.postgresql import binlog as postgresql_binlog


def test_postgresql_reads_its_wal_archiving(conn: psycopg.Connection[Any]) -> None:
    log = engine_of(conn).binary_log(conn)
    mode = conn.execute("SHOW archive_mode").fetchone()
    assert mode is not None
    assert log.kind == "wal_archive"
    assert log.on == (mode[0] in ("on", "always"))
    assert log.settings["archive_mode"] == mode[0]
    # the command is never kept: it may name hosts or hold credentials
    assert log.settings["archive_command"] in ("set", "not set")
    assert log.horizon_days is None and not log.expires
    if not log.on:
        assert log.describe() is None


def test_archived_wal_has_no_horizon_the_server_knows() -> None:
    log = postgresql_binlog.interpret(
        {"archive_mode": "on", "archive_command": "scp %p backup@host:/wal/%f"}
    )
    assert log.on and log.horizon_days is None
    assert log.settings == {"archive_mode": "on", "archive_command": "set"}
    note = log.describe()
    assert note is not None and "backup@host" not in note
    assert "stay in the archived WAL for as long as the archive keeps it" in note
    assert "archive_mode=on, archive_command=set" in note
    assert postgresql_binlog.interpret({"archive_mode": "always"}).on
    nowhere = postgresql_binlog.interpret({"archive_mode": "on", "archive_command": ""})
    assert "keeps every WAL segment in pg_wal" in str(nowhere.describe())
    library = postgresql_binlog.interpret(
        {"archive_mode": "on", "archive_library": "basic_archive"}
    )
    assert library.archives_somewhere


@pytest.mark.mariadb_only("MariaDB's binary log variables")
def test_mariadb_reads_its_binary_log(mariadb_conn: Connection) -> None:
    log = engine_of(mariadb_conn).binary_log(mariadb_conn)
    row = mariadb_conn.execute("SELECT @@log_bin, @@binlog_expire_logs_seconds").fetchone()
    assert log.kind == "binlog"
    assert log.on == bool(row[0])
    assert log.settings["log_bin"] == ("ON" if row[0] else "OFF")
    assert log.settings["binlog_expire_logs_seconds"] == str(row[1])
    assert {"binlog_format", "expire_logs_days"} <= set(log.settings)
    if not log.on:
        assert log.describe() is None and log.horizon_days is None


@pytest.mark.parametrize(
    ("variables", "days"),
    [
        ({"binlog_expire_logs_seconds": "864000", "expire_logs_days": "10.000000"}, 10.0),
        ({"binlog_expire_logs_seconds": "43200"}, 0.5),
        # older MariaDB: days only
        ({"expire_logs_days": "7"}, 7.0),
        # MySQL 8's default
        ({"binlog_expire_logs_seconds": "2592000"}, 30.0),
        # no expiry: kept until PURGE BINARY LOGS
        ({"binlog_expire_logs_seconds": "0", "expire_logs_days": "0.000000"}, None),
        # MySQL 8.0.29+: automatic purge off
        ({"binlog_expire_logs_seconds": "2592000", "binlog_expire_logs_auto_purge": "OFF"}, None),
    ],
)
def test_the_binlog_horizon_from_the_servers_variables(
    variables: dict[str, str], days: float | None
) -> None:
    log = mariadb_binlog.interpret({"log_bin": "ON", "binlog_format": "ROW", **variables})
    assert log.on and log.horizon_days == days
    note = log.describe()
    assert note is not None
    if days is None:
        assert "with no expiry" in note and "PURGE BINARY LOGS" in note
    else:
        assert f"stay in the binary logs for {days:g} day(s) after each run" in note


def test_a_binlog_that_is_off_keeps_nothing() -> None:
    log = mariadb_binlog.interpret({"log_bin": "OFF", "binlog_expire_logs_seconds": "864000"})
    assert not log.on and log.horizon_days is None and log.describe() is None
    assert log.to_json()["on"] is False


def test_check_prints_the_note_only_when_the_log_is_on(capsys: pytest.CaptureFixture[str]) -> None:
    _note(BinaryLog("binlog", False, None, {"log_bin": "OFF"}))
    assert capsys.readouterr().out == ""
    _note(mariadb_binlog.interpret({"log_bin": "ON", "binlog_expire_logs_seconds": "864000"}))
    out = capsys.readouterr().out
    assert out.startswith("note: the binary log is on (log_bin=ON, binlog_expire_logs_seconds=")
    assert "for 10 day(s) after each run" in out


def test_a_statement_format_is_named_as_what_refuses_the_tools_changes() -> None:
    """MySQL 9.7 with binlog_format=STATEMENT refused the demo's first insert (error 1665:
    InnoDB logs READ COMMITTED changes by row only)."""
    log = mariadb_binlog.interpret(
        {"log_bin": "ON", "binlog_format": "STATEMENT", "binlog_expire_logs_seconds": "86400"}
    )
    note = str(log.describe())
    assert "for 1 day(s) after each run" in note
    assert "STATEMENT format refuses" in note and "set binlog_format=ROW" in note
    row = mariadb_binlog.interpret({"log_bin": "ON", "binlog_format": "ROW"})
    assert "STATEMENT" not in str(row.describe())
