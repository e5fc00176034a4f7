"""Scrub throughput against Presidio's ``BatchAnalyzerEngine`` with its default settings.

``python -m bench.scrub [--texts 5000] [--seed 2026]``, or from Python::

    from bench.scrub import measure, sample_texts
    result = measure(sample_texts(5000))
    result.ratio, result.as_dict()

Both sides get the same texts, in the same order:

- *ours*: :meth:`retention.discovery.scrub.Scrubber.scrub_texts`, the whole scrub (analysis with
  the project's analyzer, replacement, and the re-analysis of changed texts that makes it
  idempotent), identical texts analysed once, a worker pool on every core (started before the
  clock, its start time reported apart); also timed on one process, and on the distinct texts
  only (what is left without the benefit of repeated texts);
- *baseline*: ``BatchAnalyzerEngine(AnalyzerEngine()).analyze_iterator(texts, "fr")`` with the
  default ``batch_size`` and ``n_process`` (analysis only, no replacement), default recognizers,
  ``fr_core_news_sm`` with all its components (Presidio's default English model is not
  installable offline; see :mod:`eval.baseline`).

Each engine is built and warmed up on a few texts before its clock starts.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from random import Random

from presidio_analyzer import BatchAnalyzerEngine

from eval.baseline import default_engine
from eval.texts import APPOINTMENT_NOTES, LAB_COMMENTS, PATIENT_NOTES, STAY_NOTES, TextFactory
from retention.discovery.scrub import Scrubber


@dataclass(frozen=True)
class ScrubThroughput:
    """Seconds each side took over the same texts."""

    texts: int
    distinct: int
    workers: int
    ours_seconds: float
    ours_one_process_seconds: float
    ours_distinct_seconds: float
    baseline_seconds: float
    pool_start_seconds: float

    @property
    def ratio(self) -> float:
        """How many times faster than the baseline (the target is 3)."""
        return self.baseline_seconds / self.ours_seconds

    @property
    def ratio_distinct(self) -> float:
        """The same, had every text been different (no gain from repeated texts)."""
        per_text = self.ours_distinct_seconds / self.distinct
        return self.baseline_seconds / (per_text * self.texts)

    @property
    def ratio_one_process(self) -> float:
        return self.baseline_seconds / self.ours_one_process_seconds

    def as_dict(self) -> dict[str, float]:
        return {
            **asdict(self),
            "ratio": round(self.ratio, 2),
            "ratio_distinct": round(self.ratio_distinct, 2),
            "ratio_one_process": round(self.ratio_one_process, 2),
            "ours_texts_per_second": round(self.texts / self.ours_seconds, 1),
            "baseline_texts_per_second": round(self.texts / self.baseline_seconds, 1),
        }


def sample_texts(count: int, seed: int = 2026) -> list[str]:
    """Hospital free texts as the evaluation database holds them (remarks, discharge notes,
    appointment notes, English lab comments), with planted names, phones, e-mails, NIRs."""
    from eval.generate import _names

    factory = TextFactory(Random(seed), _names(seed))  # noqa: S311  (reproducible texts)
    kinds = (PATIENT_NOTES, STAY_NOTES, APPOINTMENT_NOTES, LAB_COMMENTS)
    weights = (0.2, 0.35, 0.25, 0.2)
    return [factory.pick(factory.rng.choices(kinds, weights)[0]).text for _ in range(count)]


def measure(texts: Sequence[str], workers: int | None = None) -> ScrubThroughput:
    """Time the scrub and the baseline over ``texts``."""
    texts = list(texts)
    warm = texts[:20]
    scrubber = Scrubber(workers=workers)
    started = time.perf_counter()
    scrubber.start()
    pool_start = time.perf_counter() - started
    try:
        ours = _timed(lambda: scrubber.scrub_texts(texts))
        distinct = list(dict.fromkeys(texts))
        ours_distinct = _timed(lambda: scrubber.scrub_texts(distinct))
    finally:
        scrubber.close()
    single = Scrubber(workers=1)
    single.scrub_texts(warm)
    one_process = _timed(lambda: single.scrub_texts(texts))
    batch = BatchAnalyzerEngine(default_engine())
    list(batch.analyze_iterator(warm, "fr"))
    baseline = _timed(lambda: list(batch.analyze_iterator(texts, "fr")))
    return ScrubThroughput(
        texts=len(texts),
        distinct=len(distinct),
        workers=scrubber.workers,
        ours_seconds=round(ours, 3),
        ours_one_process_seconds=round(one_process, 3),
        ours_distinct_seconds=round(ours_distinct, 3),
        baseline_seconds=round(baseline, 3),
        pool_start_seconds=round(pool_start, 3),
    )


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scrub", description=__doc__)
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    result = measure(sample_texts(args.texts, args.seed), workers=args.workers)
    print(json.dumps(result.as_dict(), indent=2))


if __name__ == "__main__":
    main()
