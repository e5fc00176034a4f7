"""Progress: a bar per phase on a terminal, a log line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Protocol

from loguru import logger

if TYPE_CHECKING:
    from rich.progress import TaskID


class Reporter(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self, count: int) -> None: ...
    def finish(self) -> None: ...


class LogReporter:
    """Periodic log lines (daemons, pipes, journald)."""

    def __init__(self, every_seconds: float = 10.0) -> None:
        self.every = every_seconds
        self.label, self.total, self.done, self.last = "", 0, 0, 0.0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.last = label, total, 0, time.monotonic()
        logger.info("{}: {} subject(s) to process", label, total)

    def advance(self, count: int) -> None:
        self.done += count
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            logger.info("{}: {}/{} subjects", self.label, self.done, self.total)

    def finish(self) -> None:
        if self.done < self.total:  # stopped, or a failed batch ended the pass
            logger.info("{}: stopped at {}/{} subjects", self.label, self.done, self.total)
        else:
            logger.info("{}: finished, {}/{} subjects", self.label, self.done, self.total)


class BarReporter:
    """A rich progress bar on the terminal (stderr)."""

    def __init__(self) -> None:
        # loaded on a terminal only: a daemon or a pipe never draws a bar
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task: TaskID | None = None

    def start(self, label: str, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(label, total=total)

    def advance(self, count: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, count)

    def finish(self) -> None:
        self.progress.stop()
        self.task = None


def reporter() -> Reporter:
    return BarReporter() if sys.stderr.isatty() else LogReporter()
