"""Parameters that need more than their Python value: JSON documents.

`Json(value)` sends `value` (dicts, lists, scalars) as a JSON document (PostgreSQL: jsonb). The
class is psycopg's, as `retention.engines.sql` is psycopg's composition: PostgreSQL's driver
adapts it; another engine's connection translates it into its JSON text. Values worth sending in
binary are `sql.parameter(name, binary=True)`.
"""

from __future__ import annotations

from psycopg.types.json import Jsonb as Json

__all__ = ["Json"]
