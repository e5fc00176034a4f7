"""What the server keeps of changed rows outside the tables, and for how long: MariaDB/MySQL
binary logs, PostgreSQL's archived WAL (docs/ENGINES.md, 2.12).

A purge deletes rows and a minimisation rewrites values in the tables; the server's own logs of
changes still hold the old values: the binary log (`log_bin`) keeps every row written (with
ROW format, the deleted and updated rows too) until it expires, and PostgreSQL's archived WAL as
long as the archive keeps it. `check` and the report state that horizon; each engine reads its
own settings (`Engine.binary_log`). Only setting names and values are kept, never a command
line (an `archive_command` may name hosts or hold credentials): whether it is set, that is all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class BinaryLog:
    """The server's log of changes that outlives the rows: `kind` 'binlog' (MariaDB/MySQL) or
    'wal_archive' (PostgreSQL); `on` whether it is written; `horizon_days` how long the server
    keeps it before removing it by itself, None when it never does (binlogs without an expiry,
    kept until `PURGE BINARY LOGS`; archived WAL, kept as long as the archive's own retention,
    which the server does not know); `settings` the settings read, by name."""

    kind: Literal["binlog", "wal_archive"]
    on: bool
    horizon_days: float | None = None
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def expires(self) -> bool:
        """The server removes it by itself after `horizon_days`."""
        return self.horizon_days is not None

    @property
    def archives_somewhere(self) -> bool:
        """WAL archiving has a command or a library to hand segments to."""
        return self.settings.get("archive_command") == "set" or bool(
            self.settings.get("archive_library")
        )

    def describe(self) -> str | None:
        """One line for `retention check` (English, as the command's output), or None when
        nothing is kept."""
        if not self.on:
            return None
        shown = ", ".join(f"{name}={value}" for name, value in self.settings.items())
        if self.kind == "wal_archive":
            if not self.archives_somewhere:
                return (
                    f"WAL archiving is on ({shown}) with nothing to archive to: PostgreSQL keeps "
                    "every WAL segment in pg_wal until one is set, purged and pseudonymised "
                    "values with them"
                )
            return (
                f"WAL archiving is on ({shown}): purged and pseudonymised values stay in the "
                "archived WAL for as long as the archive keeps it (its retention is set in the "
                "backup tool, not in PostgreSQL)"
            )
        if self.horizon_days is None:
            note = (
                f"the binary log is on ({shown}) with no expiry: purged and pseudonymised "
                "values stay in the binary logs until they are removed by hand (PURGE BINARY "
                "LOGS); set binlog_expire_logs_seconds"
            )
        else:
            note = (
                f"the binary log is on ({shown}): purged and pseudonymised values stay in the "
                f"binary logs for {days(self.horizon_days)} day(s) after each run"
            )
        if self.settings.get("binlog_format", "").upper() == "STATEMENT":
            note += (
                "; and its STATEMENT format refuses every InnoDB change of a READ COMMITTED "
                "session, which the tool's are (error 1665): set binlog_format=ROW"
            )
        return note

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "on": self.on,
            "horizon_days": self.horizon_days,
            "expires": self.expires,
            "settings": dict(self.settings),
        }


def days(value: float) -> str:
    """'30', '0.5': whole days without decimals."""
    return f"{value:g}"
