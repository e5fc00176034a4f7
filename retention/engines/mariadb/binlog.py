"""MariaDB's binary log: whether it is written and when the server removes it by itself.

`SHOW GLOBAL VARIABLES` needs no privilege (docs/ENGINES.md, 2.10) and answers on MariaDB and
MySQL alike, whichever of the expiry variables the version has: `binlog_expire_logs_seconds`
(MariaDB 10.6+, MySQL 8), `expire_logs_days` (older MariaDB, linked to the former in 10.6+;
deprecated in MySQL 8), `binlog_expire_logs_auto_purge` (MySQL 8.0.29+: OFF, nothing expires).
0 in both means no expiry: the logs stay until `PURGE BINARY LOGS` or a hand removes them.
"""

from __future__ import annotations

from collections.abc import Mapping

from retention.engines import Connection
from retention.engines.binlog import SECONDS_PER_DAY, BinaryLog

VARIABLES = (
    "log_bin",
    "binlog_format",
    "binlog_row_image",
    "binlog_expire_logs_seconds",
    "expire_logs_days",
    "binlog_expire_logs_auto_purge",
)
_READ = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ({})".format(
    ", ".join(f"'{name}'" for name in VARIABLES)  # constant names, no value from outside
)


def binary_log(conn: Connection) -> BinaryLog:
    rows = conn.execute(_READ).fetchall()
    return interpret({str(name).lower(): str(value) for name, value in rows})


def interpret(values: Mapping[str, str]) -> BinaryLog:
    """The binary log the server's variables describe (names in lower case)."""
    settings = {name: values[name] for name in VARIABLES if name in values}
    if not _on(values.get("log_bin", "OFF")):
        return BinaryLog("binlog", False, None, settings)
    if not _on(values.get("binlog_expire_logs_auto_purge", "ON")):
        return BinaryLog("binlog", True, None, settings)
    seconds = _number(values.get("binlog_expire_logs_seconds"))
    if seconds <= 0:
        seconds = _number(values.get("expire_logs_days")) * SECONDS_PER_DAY
    return BinaryLog("binlog", True, seconds / SECONDS_PER_DAY if seconds > 0 else None, settings)


def _on(value: str) -> bool:
    return value.strip().upper() in ("ON", "1", "YES", "TRUE")


def _number(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0
