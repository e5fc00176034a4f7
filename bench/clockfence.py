"""Time the engine's full-table clock statements as they are and with an `OFFSET 0` fence.

`python -m bench.clockfence --db COPY --policy dossier-medical [--policies policies] [--repeat 2]`

`clock_query` nests `SELECT *, is_due ... FROM (SELECT *, would_be_due ... FROM (SELECT *,
undeterminable ... FROM (<inner>) AS i) AS u) AS clock`. PostgreSQL flattens these subqueries and
substitutes each column by its expression, so the `due` expression (for R1112-7: the birth-date
parser, `greatest` over the visits, the death branches) is evaluated again for `why_0`,
`undeterminable`, `would_be_due` and `is_due`. `OFFSET 0` on `<inner>` keeps it a separate plan
node: every expression is computed once per subject and the outer layers read columns.

This runs, on a copy, the plan statements (`run_plan`, as `retention run` does) and the exposure
snapshot (`compute_exposure`, stored after each run), each as sent by the engine and with the
fence added to the text, and checks that both give the same figures.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import psycopg
from pydantic import SecretStr

from bench.db import DEFAULT_SERVER, url_for
from bench.engine import ROOT
from retention.db import connect
from retention.engine.runner import RunOptions, run_plan
from retention.engines.postgresql import raw
from retention.policy.check import bound_policies
from retention.report.exposure import compute_exposure
from retention.settings import Settings
from retention.store.schema import migrate

UNFENCED = ") AS i) AS u) AS clock"
FENCED = " OFFSET 0) AS i) AS u) AS clock"


@dataclass
class Timing:
    """Delegates to a connection, optionally fencing clock statements; times them."""

    conn: psycopg.Connection[Any]
    fence: bool
    clock_seconds: float = 0.0
    statements: int = 0
    results: list[tuple[Any, ...]] = field(default_factory=list)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(self.conn)
        clock = UNFENCED in text
        if clock and self.fence:
            text = text.replace(UNFENCED, FENCED, 1)
        started = time.perf_counter()
        cursor = self.conn.execute(text, params, **kwargs)
        if clock:
            self.clock_seconds += time.perf_counter() - started
            self.statements += 1
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def measure(url: str, policies_dir: Path, policy: str, repeat: int) -> list[str]:
    settings = Settings(database_url=SecretStr(url), policies_dir=policies_dir)
    at = datetime.now(ZoneInfo(settings.timezone)).date()
    lines = []
    with connect(settings) as real:
        migrate(real, settings.schema_name)
        chosen = bound_policies(real, policies_dir, only=policy)
        every = bound_policies(real, policies_dir)
        for _ in range(repeat):
            for fence in (False, True):
                timing = Timing(raw(real), fence)
                conn = cast(psycopg.Connection[Any], timing)
                plan = run_plan(conn, chosen, RunOptions(at), settings.schema_name)
                plan_seconds, timing.clock_seconds = timing.clock_seconds, 0.0
                exposure = compute_exposure(conn, every, at, schema=settings.schema_name)
                due = [p.due_subjects for pp in plan.policies for p in pp.phases]
                lines.append(
                    f"fence={'on ' if fence else 'off'} plan {plan_seconds:6.2f} s "
                    f"(due {due}), exposure clocks {timing.clock_seconds:6.2f} s "
                    f"({len(exposure.populations)} population(s))"
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clockfence", description=__doc__)
    parser.add_argument("--db", required=True, help="a copy of the template")
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--policies", type=Path, default=ROOT / "policies")
    parser.add_argument("--policy", required=True)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    for line in measure(url_for(args.server, args.db), args.policies, args.policy, args.repeat):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
