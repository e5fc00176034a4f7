"""Discovery of personal data: which columns hold it, kept as an inventory, checked against
the policies (coverage).

- :func:`retention.discovery.scan.scan` samples every column and returns a
  :class:`~retention.discovery.model.ScanResult` (one verdict per column, never a value);
- :mod:`retention.discovery.inventory` stores scans, gives the latest verdict per column and
  the changes since the previous scan;
- :func:`retention.discovery.coverage.coverage_gaps` lists the personal columns no policy
  minimises or keeps.

This package imports nothing heavy: Presidio and spaCy load with :mod:`.scan` (the engine is
built once per process, on first use).
"""
