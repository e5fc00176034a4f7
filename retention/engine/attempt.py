"""One batch of a pass attempted, and what came of it, for each phase of the pass:

- done: its figures are added to the phases' results (and its audit entries mirrored);
- skipped (a lock or statement timeout, a deadlock, records changed meanwhile): audited,
  retried on a later run, the pass goes on;
- failed (an archive that cannot be written, a table changed during the run): nothing of it
  changed, audited, the pass stops (its next batch would fail the same way);
- the run's connection lost: raised, nothing of the batch committed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from loguru import logger

from retention.archive.errors import ArchiveError
from retention.audit.trail import mirror
from retention.db import connection_lost
from retention.engine.batch import BatchContext, BatchResult, run_batch
from retention.engine.due_keys import Row, keys_and_flags
from retention.engine.outcome import PhaseResult
from retention.engine.pace import Pace
from retention.engine.progress import Reporter
from retention.engine.record import RunRecord
from retention.engines import Connection, errors
from retention.engines.errors import describe_error
from retention.rows.records import RecordsChangedError

SKIPPED = (
    errors.LockNotAvailable,
    errors.QueryCanceled,
    errors.DeadlockDetected,
    errors.SerializationFailure,
    RecordsChangedError,
)


@dataclass
class PassBatches:
    """The batches of one pass: its phases' contexts and results, and the indexes of the
    phases that run (`active`). Safe to use from several threads at once, each batch on its
    own connection; `guard` protects the results and the progress."""

    ctxs: list[BatchContext]
    results: list[PhaseResult]
    active: list[int]
    record: RunRecord
    progress: Reporter
    guard: threading.Lock
    pace: Pace  # told each committed batch's length

    def attempt(self, conn: Connection, rows: list[Row]) -> bool:
        """One batch of `rows` on `conn`; False stops the pass."""
        keys, flags = keys_and_flags(rows, self.active)
        started = time.monotonic()
        try:
            done = run_batch(conn, [self.ctxs[i] for i in self.active], keys, flags)
        except SKIPPED as exc:
            self._skipped(conn, len(keys), exc)
        except errors.OperationalError as exc:
            if connection_lost(conn, exc):
                raise  # nothing of this batch committed; the caller retries
            return self._failed(conn, len(keys), exc)
        except (errors.Error, ArchiveError) as exc:
            return self._failed(conn, len(keys), exc)
        else:
            self.pace.record(len(keys), time.monotonic() - started)
            with self.guard:
                self._tally(done)
        with self.guard:
            self.progress.advance(len(rows))
        return True

    def _tally(self, done: list[BatchResult | None]) -> None:
        for i, result in zip(self.active, done, strict=True):
            if result is None:
                continue
            if result.entry is not None:
                mirror(result.entry)
            phase = self.results[i]
            phase.batches += 1
            phase.acted += result.acted
            phase.locked_elsewhere += result.locked_elsewhere
            phase.gone += result.gone
            phase.no_longer_due += result.no_longer_due
            phase.shared += result.shared
            phase.rows.update(result.rows)

    def _skipped(self, conn: Connection, proposed: int, exc: Exception) -> None:
        """Audited for each phase; retried on a later run."""
        reason = describe_error(exc)
        logger.warning(
            "batch of {} subject(s) skipped, retried on a later run: {}", proposed, reason
        )
        for i in self.active:
            with self.guard:
                self.results[i].skipped_batches += 1
            self._audit(conn, i, "batch_skipped", "skipped", proposed=proposed, reason=reason)

    def _failed(self, conn: Connection, proposed: int, exc: Exception) -> bool:
        """Audited for each phase (nothing of the batch changed); the pass stops."""
        error = describe_error(exc)
        names = "/".join(self.ctxs[i].phase.name for i in self.active)
        logger.error(
            "{}/{}: batch failed, nothing of it was changed: {}",
            self.ctxs[0].policy.name,
            names,
            error,
        )
        for i in self.active:
            with self.guard:
                self.results[i].error = error
            self._audit(conn, i, "batch_failed", "error", proposed=proposed, error=error)
        return False

    def _audit(self, conn: Connection, i: int, event: str, outcome: str, **detail: Any) -> None:
        ctx = self.ctxs[i]
        self.record.entry(event, outcome, ctx.run_id, ctx=ctx, detail=detail, conn=conn)
