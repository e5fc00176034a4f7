"""The exposure snapshot (or a run's due set) on MariaDB, each statement timed.

`python -m bench.mariadb_exposure --database <copy> [--prepare rt_bench_tpl_758912] [--plan]
[--runs 2] [--explain] [--json out.json] [--policies bench/policies/minimise]` on a copy of a
template of `bench/mariadb.py`. With `--prepare`, the copy is made first (`clone`; its name
starts with `rt_bench_` or `h_`) and the minimisation run on it as bench/mariadb.py's
measurement runs it (`retention run`, its own exposure snapshot included, the log in
bench/data); the copy is kept for the timings that follow, and dropped by hand. Then
`compute_exposure` as `retention run` calls it after a run (with `--plan`: `compute_plan` as a
run computes its due set), each statement timed (its first words and the seconds), then the
total; `--explain` prints `ANALYZE FORMAT=JSON` of the clock's SELECT (it runs it again);
`--json` writes the figures (counts, and a digest of the due subjects' keys), to compare two
codes on the same copy. Reads only: the temporary tables are dropped at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.engine import ROOT
from bench.mariadb import connect as mariadb_connect
from retention.db import connect
from retention.engines import Connection, engine_of, sql
from retention.engines.mariadb.render import bind, render
from retention.engines.mariadb.session import database_url
from retention.plan.compute import compute_plan
from retention.plan.passes import DueTables
from retention.policy.bound import BoundPolicy
from retention.policy.check import bound_policies
from retention.report.exposure import compute_exposure
from retention.settings import Settings

_CREATE = re.compile(
    r"^CREATE TEMPORARY TABLE \S+ (?:\(UNIQUE \(\S+\)\) )?(?:ENGINE=InnoDB )?AS ", re.S
)


def _label(text: str) -> str:
    return " ".join(text.split())[:150]


def _digest(rows: list[Any]) -> str:
    return f"{len(rows)} {hashlib.sha256(repr([r[0] for r in rows]).encode()).hexdigest()}"


def _prepare(server: str, template: str, name: str, tool_db: str) -> None:
    """`name`: a fresh copy of `template` after the minimisation's `retention run`."""
    from bench import mariadb
    from bench.engine import EngineJob
    from bench.run import MEASUREMENTS

    prefix = "h_" if name.startswith("h_") else mariadb.PREFIX
    patients = int(template.rsplit("_", 1)[1])
    found = mariadb._reusable(server, template, patients)
    if found is None:
        raise SystemExit(f"{template}: no complete template of {patients} patients")
    mariadb.PREFIX = prefix  # drop_database's guard: the copies' own prefix
    url, seconds = mariadb.clone(server, found, name)
    with mariadb.connect(server) as admin:
        mariadb.drop_database(admin, tool_db)
    print(f"copy {name} made in {seconds:.1f} s", flush=True)
    m = MEASUREMENTS["pseudo"]
    job = EngineJob(
        server,
        name,
        m.policies_dir,
        m.policy,
        None,
        mariadb.DATA / f"{name}-run.log",
        (),
        url=url,
        environment=(("RETENTION_SCHEMA_NAME", tool_db), ("RETENTION_REQUIRED_APPROVALS", "0")),
    )
    run = mariadb.run_engine(job, tool_db)
    print(f"retention run {run.seconds:.1f} s (exit {run.returncode}); log {job.log}")
    for event in run.events:
        print(f"  {event.at:7.1f} s  {event.what}")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mariadb_exposure", description=__doc__)
    parser.add_argument("--server", default="mariadb://root@127.0.0.1:3306/")
    parser.add_argument("--database", required=True)
    parser.add_argument("--tool-schema", default=None, help="the tool's database (figures, holds)")
    parser.add_argument("--policies", type=Path, default=ROOT / "bench" / "policies" / "minimise")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--at", type=date.fromisoformat, default=None)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--optimizer-switch", default=None, help="e.g. split_materialized=off")
    parser.add_argument("--plan", action="store_true", help="the run's due set instead")
    parser.add_argument("--prepare", default=None, help="template to copy and minimise first")
    return parser.parse_args(argv)


def _compute(
    conn: Connection, policies: list[BoundPolicy], at: date, schema: str, plan: bool
) -> dict[str, Any]:
    """The exposure's figures, or the plan of a run (`Runner.plan`: its due subjects kept)
    with a digest of the subjects it kept."""
    if not plan:
        return compute_exposure(conn, policies, at, schema=schema).to_json()
    due = DueTables()
    found = compute_plan(conn, policies, at, schema=schema, rows=False, keep=due).to_json()
    dialect = engine_of(conn).dialect
    found["kept"] = {
        name: _digest(
            conn.execute(
                sql.SQL("SELECT k FROM {} ORDER BY k").format(dialect.temporary(name))
            ).fetchall()
        )
        for name in due.tables.values()
    }
    due.drop(conn)
    return found


def _analyze(url: str, statements: list[tuple[str, Any]]) -> None:
    """`ANALYZE FORMAT=JSON` of each rendered SELECT with its values, as the driver's."""
    with mariadb_connect(url) as raw:
        for text, values in statements:
            cursor = raw.cursor()
            cursor.execute("ANALYZE FORMAT=JSON " + text, values)
            print(cursor.fetchone()[0])
            cursor.close()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    at = args.at or Settings().today()
    schema = args.tool_schema or f"{args.database}_tool"
    if args.prepare:
        _prepare(args.server, args.prepare, args.database, schema)
    figures: list[dict[str, Any]] = []
    with connect(Settings(), url=database_url(args.server, args.database)) as conn:
        policies = bound_policies(conn, args.policies, tool_schema=schema)
        if args.optimizer_switch:
            conn.execute("SET SESSION optimizer_switch = %s", (args.optimizer_switch,))
        execute = conn.execute
        explained: list[tuple[str, Any]] = []

        def timed(query: Any, params: Any = None, **kwargs: Any) -> Any:
            rendered = render(query, params)
            started = time.perf_counter()
            cursor = execute(query, params, **kwargs)
            print(f"  {time.perf_counter() - started:8.3f} s  {_label(rendered.text)}", flush=True)
            if args.explain and _CREATE.match(rendered.text):
                explained.append((_CREATE.sub("", rendered.text), bind(rendered, params)))
            return cursor

        conn.execute = timed  # type: ignore[method-assign]
        for run in range(args.runs):
            print(f"run {run + 1}:")
            started = time.perf_counter()
            figures.append(_compute(conn, policies, at, schema, args.plan))
            print(f"  total {time.perf_counter() - started:.2f} s", flush=True)
        conn.execute = execute  # type: ignore[method-assign]
    if explained:
        _analyze(database_url(args.server, args.database), explained[: len(explained) // args.runs])
    same = all(f == figures[0] for f in figures)
    print("same figures in every run:", same)
    if args.json is not None:
        args.json.write_text(json.dumps(figures[0], indent=2, sort_keys=True) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
