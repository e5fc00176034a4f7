"""`python -m bench.scan [--scale 0.25,1.0] [--workers 1,2]`: the whole-schema scan at the
benchmark's scales, time per table.

For each scale: build or reuse the template (:mod:`bench.db`), clone it, build the analyzer
(timed apart: once per process), scan once to warm the server's and spaCy's caches, then scan
once per ``--workers`` value and print, per table, its rows, the rows read and how
(``tablesample``, ``scan``), the seconds reading and the seconds analysing. Results are written
to ``bench/data/scan-<patients>.json``. Only names and figures are printed, never a value.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg

from bench import checks
from bench.db import DEFAULT_SERVER, SEED_PATIENTS, clone, connect, drop_database, ensure_template
from bench.report import machine
from retention.discovery.engine import get_analyzer
from retention.discovery.model import ScanResult
from retention.discovery.scan import scan

DATA = Path(__file__).resolve().parent / "data"
TARGET_SECONDS = 10.0


def _open(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, application_name="bench-scan")


def _rows(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows of every table of the public schema, as the planner knows them."""
    query = (
        "SELECT c.relname, c.reltuples::bigint FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
    )
    return {str(name): int(rows) for name, rows in conn.execute(query)}


def measure(url: str, workers: int) -> tuple[ScanResult, float]:
    """One whole scan, and the CPU seconds this process spent on it (every thread): on a
    shared machine the wall-clock time also counts the other work's share of the cores."""
    cpu = time.process_time()
    with _open(url) as conn:
        result = scan(conn, workers=workers, connect=lambda: _open(url))
    return result, time.process_time() - cpu


def render(
    patients: int, rows: dict[str, int], runs: dict[int, ScanResult], cpu: dict[int, float]
) -> str:
    lines = [f"### {patients:,} patients", ""]
    header = "| table | rows | read (method) |"
    rule = "|---|---|---|"
    for workers in runs:
        header += f" workers {workers}: read / analyse s |"
        rule += "---|"
    lines += [header, rule]
    first = next(iter(runs.values()))
    for n, table in enumerate(first.tables):
        line = f"| {table.table} | {rows.get(table.table, 0):,} | {table.rows:,} ({table.method}) |"
        for result in runs.values():
            t = result.tables[n]
            line += f" {t.read_seconds:.2f} / {t.analyse_seconds:.2f} |"
        lines.append(line)
    total = "| **whole scan** (CPU of the scanning process) | | |"
    for workers, result in runs.items():
        total += f" **{result.seconds:.1f} s** ({cpu[workers]:.1f} s CPU) |"
    lines += [total, "", f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__)
    parser.add_argument("--scale", default="0.25,1.0", help="scale factor(s), comma-separated")
    parser.add_argument("--workers", default="1,2", help="connections sampling side by side")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="admin URL of the server")
    args = parser.parse_args(argv)
    DATA.mkdir(exist_ok=True)
    started = time.monotonic()
    get_analyzer()
    print(f"analyzer built in {time.monotonic() - started:.1f} s (once per process)")
    facts = {**machine(), "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    slowest = 0.0
    for scale in (float(s) for s in args.scale.split(",")):
        patients = round(SEED_PATIENTS * scale)
        template = ensure_template(args.server, patients, checks.legal_today())
        name = f"{template.name}_scan"
        url = clone(args.server, template, name)
        try:
            with _open(url) as conn:
                rows = _rows(conn)
            measure(url, 1)  # warm-up: server cache, spaCy's first batches
            measured = {int(w): measure(url, int(w)) for w in args.workers.split(",")}
        finally:
            with connect(args.server) as admin:
                drop_database(admin, name)
        runs = {w: result for w, (result, _) in measured.items()}
        cpu = {w: seconds for w, (_, seconds) in measured.items()}
        slowest = max([slowest, *(r.seconds for r in runs.values())])
        print(render(patients, rows, runs, cpu), flush=True)
        document = {
            "machine": facts,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "patients": patients,
            "rows": rows,
            "runs": {w: [asdict(t) for t in r.tables] for w, r in runs.items()},
            "seconds": {w: r.seconds for w, r in runs.items()},
            "cpu_seconds": cpu,
        }
        (DATA / f"scan-{patients}.json").write_text(json.dumps(document, indent=2, default=str))
    print(f"slowest whole scan {slowest:.1f} s (target < {TARGET_SECONDS:.0f} s)")
    return 0 if slowest < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
