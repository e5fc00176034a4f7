"""The inventory as a heat map: tables × kinds of personal data, each cell covered or a gap.

Built from the last scan (`latest_inventory`) and `coverage`: a column is *covered* when a
policy phase minimises, archives or purges it, *kept* when a policy keeps it on purpose, and a
*gap* otherwise. A cell is the worst of its columns (gap, then kept, then covered).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from retention.discovery.coverage import Coverage, coverage
from retention.discovery.model import ColumnVerdict
from retention.policy.bound import BoundPolicy
from retention.report.moments import iso

# Kinds of personal data shown as heat map columns, in reading order, with their entities.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("name", ("PERSON",)),
    ("nir", ("FR_NIR", "FR_INS")),
    ("birth", ("DATE_OF_BIRTH",)),
    ("phone", ("PHONE_NUMBER",)),
    ("email", ("EMAIL_ADDRESS",)),
    ("address", ("ADDRESS", "LOCATION", "FR_POSTAL_CODE", "POSTAL_CODE")),
    ("identifier", ("UK_NHS", "PERSON_ID", "USERNAME")),
    ("professional", ("FR_RPPS", "FR_ADELI")),
    ("free_text", ("FREE_TEXT_PERSONAL",)),
    ("other", ("IP_ADDRESS", "IBAN_CODE")),
)
_KIND_OF = {entity: kind for kind, entities in KINDS for entity in entities}
_RANK = {"gap": 0, "kept": 1, "covered": 2}


@dataclass(frozen=True)
class InventoryColumn:
    """One personal column: its kind, the scan's confidence, what covers it."""

    schema: str
    table: str
    column: str
    entity: str
    kind: str
    score: float
    by: tuple[str, ...]  # "policy/phase (action)" or "policy (kept)"

    @property
    def status(self) -> str:
        if not self.by:
            return "gap"
        return "covered" if any(not b.endswith("(kept)") for b in self.by) else "kept"

    @property
    def table_label(self) -> str:
        return f"{self.schema}.{self.table}"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "table": self.table,
            "column": self.column,
            "entity": self.entity,
            "kind": self.kind,
            "confidence": self.score,
            "status": self.status,
            "covered_by": list(self.by),
        }


@dataclass(frozen=True)
class Cell:
    columns: tuple[InventoryColumn, ...]

    @property
    def status(self) -> str:
        return min((c.status for c in self.columns), key=_RANK.__getitem__)

    @property
    def confidence(self) -> float:
        """The lowest confidence of the cell's columns."""
        return min(c.score for c in self.columns)


@dataclass(frozen=True)
class Inventory:
    """The heat map's data (no scan: `scan_id` is None and there are no columns)."""

    scan_id: int | None
    scanned_at: datetime | None
    columns: tuple[InventoryColumn, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        present = {c.kind for c in self.columns}
        return tuple(kind for kind, _ in KINDS if kind in present)

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.table_label for c in self.columns))

    def cell(self, table: str, kind: str) -> Cell | None:
        found = tuple(c for c in self.columns if c.table_label == table and c.kind == kind)
        return Cell(found) if found else None

    @property
    def gaps(self) -> tuple[InventoryColumn, ...]:
        return tuple(c for c in self.columns if c.status == "gap")

    def to_json(self) -> dict[str, Any]:
        return {
            "scan_id": self.scan_id,
            "scanned_at": iso(self.scanned_at),
            "kinds": list(self.kinds),
            "columns": [c.to_json() for c in self.columns],
            "covered": sum(1 for c in self.columns if c.status != "gap"),
            "gaps": len(self.gaps),
        }


def build_inventory(
    scan_id: int | None,
    scanned_at: datetime | None,
    verdicts: Iterable[ColumnVerdict],
    policies: Sequence[BoundPolicy],
) -> Inventory:
    """The heat map of the last scan's personal columns against `policies`."""
    found = coverage(verdicts, policies)
    columns = tuple(_column(c) for c in found)
    return Inventory(scan_id, scanned_at, tuple(sorted(columns, key=_order)))


def _column(item: Coverage) -> InventoryColumn:
    by = tuple(_short(b) for b in item.by)
    kind = _KIND_OF.get(item.entity, "other")
    return InventoryColumn(item.schema, item.table, item.column, item.entity, kind, item.score, by)


def _short(description: str) -> str:
    """'policy keeps it: <reason>' becomes 'policy (kept)': the reason is the policy's text,
    read in the policy file; the report keeps to names."""
    if " keeps it: " in description:
        return description.split(" keeps it: ", 1)[0] + " (kept)"
    return description


def _order(column: InventoryColumn) -> tuple[str, str, int, str]:
    kinds = [kind for kind, _ in KINDS]
    return (column.schema, column.table, kinds.index(column.kind), column.column)
