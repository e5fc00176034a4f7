"""A draft as data: what `retention draft` found, before it is written as YAML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from retention.catalog.introspect import Catalog
from retention.discovery.model import ColumnVerdict
from retention.draft.columns import PersonalColumn
from retention.draft.dates import DateCandidate
from retention.draft.graph import DraftGraph

QName = tuple[str, str]


@dataclass(frozen=True)
class DatedTable:
    """Candidate dates of a table of the record, or of a table one of them references
    through a foreign key (`via`: '<child> through foreign key <name>')."""

    table: QName
    via: str | None
    dates: tuple[DateCandidate, ...]


@dataclass(frozen=True)
class Draft:
    """Everything a draft policy says, as data (see :func:`retention.draft.render.render_draft`)."""

    catalog: Catalog
    graph: DraftGraph
    dated: tuple[DatedTable, ...]
    personal: tuple[PersonalColumn, ...]
    outside: tuple[ColumnVerdict, ...]
    scan: tuple[int, datetime] | None
