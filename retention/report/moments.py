"""Moments in the JSON report: ISO 8601 in UTC, whatever the session's time zone, so that the
same database gives the same JSON from any client."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime | None) -> str | None:
    """`2025-06-01T10:00:00+00:00`, or None."""
    return None if value is None else value.astimezone(UTC).isoformat()
