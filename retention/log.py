"""Operator logs through loguru: readable on a terminal, JSON lines for journald or files.

Logs carry counts, table names and pseudonymised keys, never a personal value.
"""

from __future__ import annotations

import sys

from loguru import logger


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send logs to stderr (command output goes to stdout)."""
    logger.remove()
    if fmt == "json":
        logger.add(sys.stderr, level=level, serialize=True)
    else:
        logger.add(
            sys.stderr,
            level=level,
            colorize=sys.stderr.isatty(),
            format="<green>{time:YYYY-MM-DD HH:mm:ss}</green> <level>{level: <7}</level> {message}",
        )
