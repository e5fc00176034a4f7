"""Resident memory of a process over time, read from /proc every 100 ms in a thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """`field` of /proc/<pid>/status (VmRSS: resident now; VmHWM: its peak) in MB, None once
    the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith(f"{field}:"):
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
    # VmHWM: the peak of the process's own address space (exec starts a new one), unlike
    # wait4's ru_maxrss, which also counts the parent's pages the child shared until exec
    peak_mb: float = 0.0
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
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid, "VmHWM") or 0.0)
            self.samples.append((round(time.perf_counter() - started, 2), round(value, 1)))
            time.sleep(self.interval)
