"""Values read from the tool's own tables, the same whichever engine stored them.

PostgreSQL gives a jsonb column as Python objects, a timestamptz with its zone and a uuid as a
`UUID`; MariaDB keeps JSON as LONGTEXT (its text comes back), instants as DATETIME(6) in UTC
(without a zone) and ids as CHAR(36) (docs/ENGINES.md 2.9). The report reads them through here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID


def document(value: Any) -> Any:
    """A JSON column's value as Python objects (None stays None)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def instant(value: datetime | None) -> datetime | None:
    """An instant with its zone: a value without one is UTC (MariaDB's DATETIME(6))."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def run_id(value: Any) -> UUID | None:
    """A run's id as a `UUID` (MariaDB: its text)."""
    return None if value is None else value if isinstance(value, UUID) else UUID(str(value))
