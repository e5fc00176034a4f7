"""Work run side by side in threads, each one's exception handed back to the test's thread."""

from __future__ import annotations

import threading
from collections.abc import Callable


def in_threads(work: Callable[[int], None], count: int) -> list[BaseException]:
    """`work(0)` ... `work(count - 1)`, each in its own thread, all joined; what they raised."""
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:  # raised again by the test, in its own thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures
