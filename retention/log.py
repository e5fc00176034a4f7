"""Operator logs through loguru: readable on a terminal, JSON lines for journald or files.

Every line carries the run id (`-` outside a run). Audit entries are mirrored as JSON lines to
`audit_log` when it is set. Logs carry counts, table names and keyed digests, never a personal
value.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from loguru import logger

_TEXT = (
    "<green>{time:YYYY-MM-DD HH:mm:ssZ}</green> <level>{level: <7}</level> "
    "<cyan>{extra[run_id]}</cyan> {message}"
)


def setup_logging(level: str = "INFO", fmt: str = "text", audit_log: Path | None = None) -> None:
    """Operator logs to stderr (command output goes to stdout), audit mirror to a file."""
    logger.remove()
    logger.configure(extra={"run_id": "-"})
    if fmt == "json":
        logger.add(sys.stderr, level=level, serialize=True, filter=_not_audit)
    else:
        logger.add(
            sys.stderr, level=level, colorize=sys.stderr.isatty(), format=_TEXT, filter=_not_audit
        )
    if audit_log is not None and str(audit_log) == "-":  # journald: the service's stderr
        logger.add(sys.stderr, level="INFO", serialize=True, filter=_audit_only)
    elif audit_log is not None:
        logger.add(audit_log, level="INFO", serialize=True, filter=_audit_only, enqueue=False)


def _not_audit(record: Any) -> bool:
    return not record["extra"].get("audit", False)


def _audit_only(record: Any) -> bool:
    return bool(record["extra"].get("audit", False))


def log_from_signal_handler(level: str, message: str, *args: Any) -> None:
    """Log from a signal handler: on a thread of its own, which writes once the main thread,
    interrupted perhaps in the middle of a line, has released the handlers' lock. Logging in the
    handler itself fails on that lock (loguru's handlers are not re-entrant) and printed a
    traceback (an outside review: SIGTERM sent just after a line was written)."""
    threading.Thread(target=logger.log, args=(level, message, *args), daemon=True).start()
