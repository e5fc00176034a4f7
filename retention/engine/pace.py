"""How many subjects each batch takes, so that its transaction stays short (setting
`batch_seconds`).

A fixed number of subjects per batch gives transactions of very different lengths: a subject's
record may be one row or a thousand, a purge touches more tables than an erase, an archive writes,
encrypts and reads back a file, and the same batch takes longer on a server whose data no longer
fit in memory or that other work keeps busy. What a DBA bounds is the transaction: the locks it
holds, the undo it keeps, the replication lag it makes. So, as pt-archiver's and
pt-online-schema-change's `--chunk-time` do, the size follows the measured pace:

- the first batch of a pass takes an eighth of `batch_size`, at most 250 subjects (a pass's
  first transaction is not an experiment at full size);
- each batch that commits reports its subjects and its length; the pace is a moving average of
  subjects per second (half the last batch, half the history), and the next batch takes the
  pace times `batch_seconds`;
- never more than twice the last size (a batch whose subjects were mostly gone is quick, and
  says little), never more than `batch_size`, never fewer than one subject.

With `batch_seconds` unset (0), every batch takes `batch_size` subjects, as before. Batches side
by side share one pace (each reports its own transaction's length); a size is chosen when the
batch's keys are read, so the batches already handed out keep theirs.
"""

from __future__ import annotations

import threading

ALPHA = 0.5  # the last batch's weight in the moving average of the pace
FIRST_SHARE = 8  # a pass's first batch takes batch_size // FIRST_SHARE subjects,
FIRST_MOST = 250  # and at most this many
GROWTH = 2  # a batch takes at most this many times the last size


class Pace:
    """Subjects per batch for one pass (module docstring). Thread-safe."""

    def __init__(self, most: int, seconds: float | None) -> None:
        self.most = most
        self.seconds = seconds or None
        self._lock = threading.Lock()
        self._rate: float | None = None  # subjects per second
        first = max(1, min(most // FIRST_SHARE, FIRST_MOST))
        self._size = most if self.seconds is None else first

    def size(self) -> int:
        """The number of subjects the next batch takes."""
        with self._lock:
            return self._size

    def record(self, subjects: int, elapsed: float) -> None:
        """A batch of `subjects` committed after `elapsed` seconds."""
        if self.seconds is None or subjects <= 0:
            return
        rate = subjects / max(elapsed, 1e-6)
        with self._lock:
            self._rate = rate if self._rate is None else ALPHA * rate + (1 - ALPHA) * self._rate
            wanted = int(self._rate * self.seconds)
            self._size = max(1, min(wanted, GROWTH * subjects, self.most))
