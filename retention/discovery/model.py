"""The result of a scan as plain data: one verdict per column, and its stable JSON shape.

``{"scanned_at": "...", "columns": [{"schema": "public", "table": "patients", "column": "nom",
"entity": "PERSON", "score": 0.97, "evidence": {...}}]}``; columns judged not personal have
``"entity": null``. No value ever appears here: examples are masked before they are stored.
Also what the analysis found in one column's sample (:class:`Content`), which :mod:`.analyze`
fills and :mod:`.decide` reads.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PERSONAL_ENTITIES: tuple[str, ...] = (
    "PERSON",
    "DATE_OF_BIRTH",
    "ADDRESS",
    "LOCATION",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "FR_NIR",
    "FR_INS",
    "FR_RPPS",
    "FR_ADELI",
    "FR_POSTAL_CODE",
    "IP_ADDRESS",
    "IBAN_CODE",
    "FREE_TEXT_PERSONAL",
    "UK_NHS",
    "PERSON_ID",
    "USERNAME",
    "POSTAL_CODE",
)
"""Column verdicts. FR_FINESS is recognised (see the evidence) but identifies an
establishment, not a person, so it is never a verdict."""

FAMILIES: dict[str, str] = {
    "ADDRESS": "LOCATION",
    "FR_POSTAL_CODE": "LOCATION",
    "POSTAL_CODE": "LOCATION",
    "FR_INS": "FR_NIR",
}
"""Entities of the same family (for comparing with a labelled truth)."""

DEFAULT_SAMPLE = 300  # distinct values read per column


@dataclass(frozen=True)
class ColumnVerdict:
    """Whether one column holds personal data, which kind, how sure, and why."""

    schema: str
    table: str
    column: str
    entity: str | None
    score: float
    evidence: dict[str, Any]
    examples: tuple[str, ...] = field(default=(), compare=False)  # masked

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.schema, self.table, self.column)

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table}.{self.column}"

    @property
    def personal(self) -> bool:
        return self.entity is not None

    def to_json(self, *, examples: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": self.schema,
            "table": self.table,
            "column": self.column,
            "entity": self.entity,
            "score": self.score,
            "evidence": self.evidence,
        }
        if examples:
            out["examples"] = list(self.examples)
        return out


@dataclass(frozen=True)
class TableTime:
    """What one table cost the scan: rows read (and how), seconds reading and analysing."""

    schema: str
    table: str
    rows: int
    method: str
    read_seconds: float
    analyse_seconds: float

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class ScanResult:
    """Every column scanned, in catalogue order, and when; the time each table took."""

    scanned_at: datetime
    columns: tuple[ColumnVerdict, ...]
    seconds: float = field(default=0.0, compare=False)
    tables: tuple[TableTime, ...] = field(default=(), compare=False)

    @property
    def personal(self) -> tuple[ColumnVerdict, ...]:
        return tuple(c for c in self.columns if c.personal)

    def to_json(self, *, examples: bool = False) -> dict[str, Any]:
        return {
            "scanned_at": self.scanned_at.isoformat(),
            "columns": [c.to_json(examples=examples) for c in self.columns],
        }


@dataclass
class Content:
    """What Presidio found in one column's sample."""

    values: int = 0
    language: str = "fr"  # "none": no word in the values, read with the pattern recognizers
    covered: Counter[str] = field(default_factory=Counter)
    mentioned: Counter[str] = field(default_factory=Counter)
    scores: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    personal_mentions: int = 0
    personal_covered: int = 0  # values covered by some personal entity, whichever
    mention_scores: list[float] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def share(self, entity: str) -> float:
        return self.covered[entity] / self.values if self.values else 0.0

    def mention_share(self) -> float:
        return self.personal_mentions / self.values if self.values else 0.0

    def mean_score(self, entity: str) -> float:
        found = self.scores.get(entity) or [0.0]
        return sum(found) / len(found)
