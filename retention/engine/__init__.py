"""The engine: executes a plan in short, locked, re-checked, audited batches."""
