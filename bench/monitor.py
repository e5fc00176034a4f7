"""Watch the transactions of `retention` in pg_stat_activity, every ~20 ms, from a thread.

Each transaction is identified by (backend pid, xact_start); its duration is the largest
`clock_timestamp() - xact_start` seen while it was open, so a transaction is undercounted by at
most one polling interval (plus the poll's own latency). A transaction is classified by the
statements seen in it: the plan's read-only snapshot, the due-set snapshot (autocommit `CREATE
TEMPORARY TABLE retention_due`), a batch (locks rows: `FOR UPDATE SKIP LOCKED`, DML), the
exposure snapshot stored after the run (`retention_exposure_*` temporary tables), or other.
Parallel workers are left out (they share their leader's transaction). `query` is cut at
`track_activity_query_size` (1 kB by default), so markers are statement prefixes.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from bench.db import connect

PLAN, SNAPSHOT, BATCH, EXPOSURE, OTHER = "plan", "snapshot", "batch", "exposure", "other"
_MARKERS: tuple[tuple[str, str], ...] = (  # first match wins
    (OTHER, '"runs" SET outcome'),
    (EXPOSURE, "retention_exposure_"),  # the exposure snapshot stored after the run (report trend)
    (PLAN, "WITH clock AS MATERIALIZED"),
    (PLAN, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
    (SNAPSHOT, "retention_due AS"),
    (SNAPSHOT, "CREATE INDEX ON pg_temp.retention_due"),
    (BATCH, "FOR UPDATE SKIP LOCKED"),
    (BATCH, "set_config('lock_timeout'"),
    (BATCH, "SELECT k FROM (SELECT *, would_be_due"),  # the locked re-check
    (BATCH, "DELETE FROM"),
    (BATCH, 'UPDATE "'),
    (BATCH, "retention_pseudonyms"),
)
_PRIORITY = {EXPOSURE: 4, PLAN: 3, SNAPSHOT: 2, BATCH: 1, OTHER: 0}
_QUERY = """
SELECT pid, xact_start, extract(epoch FROM clock_timestamp() - xact_start)::float8,
       backend_xid IS NOT NULL, query
FROM pg_stat_activity
WHERE application_name = %s AND datname = %s AND xact_start IS NOT NULL
  AND backend_type = 'client backend'
"""


@dataclass
class Xact:
    """One transaction seen open."""

    pid: int
    start: datetime
    seconds: float = 0.0
    kind: str = OTHER
    wrote: bool = False  # had a transaction id: it wrote or locked rows
    queries: list[str] = field(default_factory=list)  # distinct statements seen (shortened)


def classify(query: str) -> str:
    for kind, marker in _MARKERS:
        if marker in query:
            return kind
    return OTHER


@dataclass
class XactStats:
    """Durations of the transactions of one kind."""

    count: int
    max: float
    median: float
    p95: float
    total: float

    @staticmethod
    def of(durations: list[float]) -> XactStats:
        if not durations:
            return XactStats(0, 0.0, 0.0, 0.0, 0.0)
        ordered = sorted(durations)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return XactStats(len(ordered), ordered[-1], statistics.median(ordered), p95, sum(ordered))


@dataclass
class Monitor:
    """Polls pg_stat_activity until stopped; `summary()` gives per-kind statistics."""

    server: str
    dbname: str
    application_name: str = "retention"
    interval: float = 0.02
    xacts: dict[tuple[int, datetime], Xact] = field(default_factory=dict)
    polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self, ready: threading.Event) -> None:
        with connect(self.server) as conn:
            conn.execute("SET application_name = 'bench-monitor'")
            ready.set()
            while not self._stop.is_set():
                rows = conn.execute(_QUERY, (self.application_name, self.dbname)).fetchall()
                self.polls += 1
                for pid, start, seconds, has_xid, query in rows:
                    self._observe(pid, start, float(seconds), bool(has_xid), str(query or ""))
                time.sleep(self.interval)

    def _observe(self, pid: int, start: datetime, seconds: float, xid: bool, query: str) -> None:
        xact = self.xacts.setdefault((pid, start), Xact(pid, start))
        xact.seconds = max(xact.seconds, seconds)
        xact.wrote = xact.wrote or xid
        short = " ".join(query.split())[:120]
        if short not in xact.queries:
            xact.queries.append(short)
        kind = classify(query)
        if _PRIORITY[kind] > _PRIORITY[xact.kind]:
            xact.kind = kind

    def durations(self, kind: str) -> list[float]:
        return [x.seconds for x in self.xacts.values() if x.kind == kind]

    def listing(self) -> list[tuple[str, float, bool, list[str]]]:
        """Every transaction seen, in order: kind, seconds, wrote, statements."""
        ordered = sorted(self.xacts.values(), key=lambda x: x.start)
        return [(x.kind, round(x.seconds, 3), x.wrote, x.queries) for x in ordered]

    def summary(self) -> dict[str, XactStats]:
        kinds = (PLAN, SNAPSHOT, BATCH, EXPOSURE, OTHER)
        return {k: XactStats.of(self.durations(k)) for k in kinds}
