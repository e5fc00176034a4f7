"""Scoring free texts against their planted values: what a scrub removed, what it kept.

A personal value counts as removed when none of its letters or digits is left; a medical term
counts as kept when none of its characters was replaced. In a JSON document, where positions
move, a value counts as removed when it no longer occurs in the output, kept when it does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from eval.texts import Planted


@dataclass
class TextScore:
    """Planted values removed (personal kinds) or kept (medical kinds), per kind."""

    tool: str
    total: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, ok: bool) -> None:
        self.total[kind] += 1
        self.ok[kind] += ok

    def share(self, kinds: Collection[str]) -> float:
        total = sum(self.total[k] for k in kinds)
        return sum(self.ok[k] for k in kinds) / total if total else 1.0


def score_text(
    score: TextScore,
    text: str,
    planted: tuple[Planted, ...],
    removed: set[int],
    personal: Collection[str],
) -> None:
    """``removed``: positions of ``text`` the tool replaced."""
    for item in planted:
        chars = [i for i in range(item.start, item.end) if text[i].isalnum()]
        if item.kind in personal:
            score.add(item.kind, all(i in removed for i in chars))
        else:
            score.add(item.kind, not any(i in removed for i in chars))


def score_json(
    score: TextScore, output: str, planted: list[tuple[str, str]], personal: Collection[str]
) -> None:
    for kind, value in planted:
        present = value in output
        score.add(kind, not present if kind in personal else present)


def replaced(text: str, spans: list[tuple[int, int]]) -> str:
    """What Presidio's anonymizer (default: replace with ``<ENTITY>``) leaves."""
    out, at = [], 0
    for start, end in merge(spans):
        out += [text[at:start], "<X>"]
        at = end
    return "".join([*out, text[at:]])


def covered(spans: list[tuple[int, int]]) -> set[int]:
    return {i for start, end in spans for i in range(start, end)}


def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]
