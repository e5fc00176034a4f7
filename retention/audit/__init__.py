"""The audit trail: append-only, hash-chained entries that hold no personal value."""
