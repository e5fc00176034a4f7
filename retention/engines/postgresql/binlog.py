"""PostgreSQL's archived WAL: whether WAL segments are archived (`archive_mode`), and how.

`pg_settings` shows these settings to every role (PostgreSQL 15). The archive's retention is set
in the backup tool that receives the segments (barman, pgBackRest, a script), not in
PostgreSQL: no horizon is known. The command itself is never kept (it may name hosts or hold
credentials): only whether one is set.
"""

from __future__ import annotations

from collections.abc import Mapping

from retention.engines import Connection
from retention.engines.binlog import BinaryLog

_READ = (
    "SELECT name, setting FROM pg_settings "
    "WHERE name IN ('archive_mode', 'archive_command', 'archive_library')"
)


def binary_log(conn: Connection) -> BinaryLog:
    rows = conn.execute(_READ).fetchall()
    return interpret({str(name): str(value or "") for name, value in rows})


def interpret(values: Mapping[str, str]) -> BinaryLog:
    """The WAL archiving the settings describe."""
    mode = values.get("archive_mode", "off")
    command = values.get("archive_command", "")
    settings = {
        "archive_mode": mode,
        "archive_command": "set" if command and command != "(disabled)" else "not set",
    }
    if values.get("archive_library"):
        settings["archive_library"] = values["archive_library"]
    return BinaryLog("wal_archive", mode in ("on", "always"), None, settings)
