"""Batches side by side: a pass's batches on several connections at once (setting `workers`).

Each batch is one short transaction on its own subjects, so batches of different subjects can
run at the same time. The run's connection reads the next batch of keys from the pass's due
table (a temporary table of its session) and hands it to the first free worker; each worker runs
whole batches on its own connection, one after the other. While the server executes one batch's
statements, this process computes another's pseudonyms and audit digests, and a second server
process works on a third: on the benchmark's two cores, the batches of a minimisation ran in
about half the time with two workers (bench/RESULTS.md).

What does not change: every batch still locks, re-checks, acts and audits in one transaction; the
audit trail serialises its appends (an advisory lock held until the batch commits), so the
entries form one chain; a stop request is honoured between batches (the batches under way
finish); a batch whose error would repeat stops the pass, the others under way finish first.

Which actions' batches go side by side is a trait of each action (`side_by_side` in
retention.policy.actions): column passes, purges and archives (each archive batch writes, reads
back and verifies a file of its own, then catalogues it on its own connection); scrub batches
stay one after the other (they share the analyser).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from retention.threads import CANCELLED_WAIT, POLL, wait_all

C = TypeVar("C")  # a connection
T = TypeVar("T")  # a batch


def walk(
    conns: Sequence[C],
    batches: Iterable[T],
    handle: Callable[[C, T], bool],
    stop: threading.Event,
    cancel: Callable[[C], None] | None = None,
) -> None:
    """Run `handle(conn, batch)` for each of `batches` on the first free of `conns`, one batch
    per connection at a time. `handle` returning False stops the walk (no new batch starts);
    `stop` too. Returns once every batch started has ended; an exception raised by `handle` or
    by `batches` is raised again here, after the other batches under way have ended. An
    interrupt while they end (a second Ctrl-C) calls `cancel` on each connection: their
    batches roll back."""
    halt = threading.Event()  # no new batch: a batch asked to stop, or something failed
    fed = threading.Event()  # every batch has been handed out
    waiting: queue.Queue[T] = queue.Queue(maxsize=len(conns))
    failures: list[BaseException] = []

    finished = [threading.Event() for _ in conns]  # set by each worker as it ends

    def work(conn: C, done: threading.Event) -> None:
        try:
            while not (halt.is_set() or stop.is_set()):
                try:
                    batch = waiting.get(timeout=POLL)
                except queue.Empty:
                    # fed is set after the last batch is queued: checked with the queue, a
                    # batch queued between the timeout and this test is not left behind
                    if fed.is_set() and waiting.empty():
                        return
                    continue
                if halt.is_set() or stop.is_set():  # queued before the stop: left for later
                    return
                if not handle(conn, batch):
                    halt.set()
        except BaseException as exc:  # raised again by the walking thread
            failures.append(exc)
            halt.set()
        finally:
            done.set()

    threads = [
        threading.Thread(target=work, args=(conn, done), name=f"retention-batches-{i}", daemon=True)
        for i, (conn, done) in enumerate(zip(conns, finished, strict=True))
    ]
    for thread in threads:
        thread.start()
    try:
        for batch in batches:
            if not _hand_out(waiting, batch, halt, stop):
                break
    except BaseException:
        halt.set()
        raise
    finally:
        fed.set()
        try:
            wait_all(finished)
        except BaseException:
            halt.set()
            if cancel is not None:
                for conn in conns:
                    cancel(conn)
            wait_all(finished, CANCELLED_WAIT)
            raise
    if failures:
        raise failures[0]


def _hand_out(
    waiting: queue.Queue[T], batch: T, halt: threading.Event, stop: threading.Event
) -> bool:
    """Queue `batch` for the next free worker; False when the walk must end instead."""
    while not (halt.is_set() or stop.is_set()):
        try:
            waiting.put(batch, timeout=POLL)
            return True
        except queue.Full:
            continue
    return False
