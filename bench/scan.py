"""`python -m bench.scan [--scale 0.25,1.0] [--workers 1,2] [--command 3]`: the whole-schema
scan at the benchmark's scales, time per table, and the `retention scan` command end to end.

For each scale: build or reuse the template (:mod:`bench.db`), clone it, build the analyzer
(timed apart: once per process), scan once to warm the server's and spaCy's caches, then scan
once per ``--workers`` value and print, per table, its rows, the rows read and how
(``tablesample``, ``scan``), the seconds reading and the seconds analysing. Then run the
command ``--command`` times on the clone, each in a new process as a user would (Python's
start, the imports, the analyzer's build and the scan: issue 22's target is on that), with its
wall-clock and CPU seconds and the load average before it. Results are written to
``bench/data/scan-<patients>.json``. Only names and figures are printed, never a value.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
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

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
TARGET_SECONDS = 10.0
_COMMAND = "from retention.cli.main import main; raise SystemExit(main())"


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


def command(url: str) -> dict[str, float]:
    """`retention scan` once in a new process on ``url`` (this checkout's code): wall-clock
    and CPU seconds (user + system, every thread), the 1-minute load average before it."""
    env = {**os.environ, "RETENTION_DATABASE_URL": url, "RETENTION_WORKERS": "2"}
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(  # noqa: S603 (our own interpreter and fixed arguments)
        [sys.executable, "-c", _COMMAND, "scan", "--format", "json"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"wall": round(wall, 2), "cpu": round(cpu, 2), "load_before": round(load, 2)}


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
    parser.add_argument(
        "--command", type=int, default=3, metavar="N", help="runs of `retention scan` per scale"
    )
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
            commands = [command(url) for _ in range(args.command)]
        finally:
            with connect(args.server) as admin:
                drop_database(admin, name)
        runs = {w: result for w, (result, _) in measured.items()}
        cpu = {w: seconds for w, (_, seconds) in measured.items()}
        slowest = max([slowest, *(r.seconds for r in runs.values())])
        slowest = max([slowest, *(c["wall"] for c in commands)])
        print(render(patients, rows, runs, cpu), flush=True)
        for run in commands:
            print(
                f"`retention scan` (new process, workers 2): {run['wall']:.1f} s "
                f"({run['cpu']:.1f} s CPU), load average before {run['load_before']:.1f}",
                flush=True,
            )
        document = {
            "machine": facts,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "patients": patients,
            "rows": rows,
            "runs": {w: [asdict(t) for t in r.tables] for w, r in runs.items()},
            "seconds": {w: r.seconds for w, r in runs.items()},
            "cpu_seconds": cpu,
            "command": commands,
        }
        (DATA / f"scan-{patients}.json").write_text(json.dumps(document, indent=2, default=str))
    print(f"slowest whole scan or command {slowest:.1f} s (target < {TARGET_SECONDS:.0f} s)")
    return 0 if slowest < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
