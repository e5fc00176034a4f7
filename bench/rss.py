"""Resident memory of a process over time, read from /proc every 100 ms in a thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def rss_mb(pid: int) -> float | None:
    """VmRSS of `pid` in MB, None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


@dataclass
class RssSampler:
    """(seconds since start, MB) samples of one process until it exits or `stop()`."""

    pid: int
    interval: float = 0.1
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            value = rss_mb(self.pid)
            if value is None:
                return
            self.samples.append((round(time.perf_counter() - started, 2), round(value, 1)))
            time.sleep(self.interval)
