"""EXPLAIN ANALYZE every statement the engine sends for a plan, a due snapshot and one batch.

`python -m bench.explain --db retention_bench_189728_purge_engine --policy dossier-medical
[--policies policies] [--batch-size 2000] [--skip-batches 0] [--out FILE]`

Runs on a copy (e.g. one kept by `python -m bench.run --keep`, or a fresh clone of the template)
the engine's own code (`compute_plan`, `Runner.plan`, `run_batch`) through a
connection proxy that, before each query or DML statement, runs `EXPLAIN (ANALYZE, BUFFERS)` of
it in a savepoint that is rolled back, then runs the statement for real. Everything the batch
does is rolled back at the end, so the copy is left as it was.
"""

from __future__ import annotations

import argparse
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import psycopg
from pydantic import SecretStr

from bench.db import DEFAULT_SERVER, url_for
from bench.engine import AUDIT_KEY, PSEUDONYM_KEY, ROOT
from retention.audit.seal import TrailSigner
from retention.audit.writer import AuditKeys, open_trail
from retention.db import connect as retention_connect
from retention.engine.batch import BatchContext, run_batch
from retention.engine.due_keys import keys_and_flags, next_keys, place
from retention.engine.outcome import RunOptions as EngineOptions
from retention.engine.progress import LogReporter
from retention.engine.runner import Runner
from retention.engines.postgresql import raw
from retention.keys import load_key
from retention.plan.passes import group_phases
from retention.policy.check import bound_policies
from retention.settings import Settings
from retention.store.schema import holds_table, migrate

_EXPLAINABLE = re.compile(
    r"^\s*(WITH|DELETE|UPDATE|CREATE TEMPORARY TABLE \S+ AS|SELECT (?!set_config|pg_advisory))",
    re.IGNORECASE,
)
_EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")
_LONG_ARRAY = re.compile(r"'\{([0-9,]{100,})\}'")


def _elide(plan: str) -> str:
    """Key arrays shortened to their size: plans stay readable."""
    return _LONG_ARRAY.sub(lambda m: f"'{{...{m.group(1).count(',') + 1} keys}}'", plan)


@dataclass
class Explained:
    """One statement: where it was sent from, its time and its plan."""

    stage: str
    query: str
    plan: str
    milliseconds: float


@dataclass
class ExplainingConnection:
    """Delegates to a real connection; explains each query or DML statement first."""

    conn: psycopg.Connection[Any]
    stage: str = ""
    found: list[Explained] = field(default_factory=list)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(self.conn)
        if _EXPLAINABLE.match(text):
            self._explain(text, params)
        return self.conn.execute(query, params, **kwargs)

    def _explain(self, text: str, params: Any) -> None:
        with self.conn.transaction(force_rollback=True):
            rows = self.conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + text, params).fetchall()
        plan = _elide("\n".join(str(r[0]) for r in rows))
        match = _EXECUTION.search(plan)
        ms = float(match.group(1)) if match else float("nan")
        self.found.append(Explained(self.stage, text, plan, ms))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # the engine seam asks isinstance
        """The real connection's class: `engine_of` finds PostgreSQL's engine by it."""
        return type(self.conn)


def _settings(url: str, policies: Path, batch_size: int) -> Settings:
    return Settings(
        database_url=SecretStr(url),
        policies_dir=policies,
        pseudonym_key=SecretStr(PSEUDONYM_KEY),
        audit_key=SecretStr(AUDIT_KEY),
        batch_size=batch_size,
        workers=1,  # every statement on the explained connection (helpers would bypass it)
    )


def explain(
    url: str, policies_dir: Path, policy_name: str, batch_size: int, skip: int
) -> list[Explained]:
    """The plan (keeping the due subjects), then batch `skip` (0-based) of the first pass."""
    settings = _settings(url, policies_dir, batch_size)
    at = datetime.now(ZoneInfo(settings.timezone)).date()
    with retention_connect(settings) as real:
        migrate(real, settings.schema_name)
        proxy = ExplainingConnection(raw(real))
        conn = cast(psycopg.Connection[Any], proxy)
        policies = bound_policies(real, policies_dir, only=policy_name)
        writing = AuditKeys(load_key(settings.audit_key, "audit_key"), TrailSigner.throwaway())
        trail = open_trail(real, settings.schema_name, writing)
        pseudonym_key = load_key(settings.pseudonym_key, "pseudonym_key")
        runner = Runner(conn, settings, trail, pseudonym_key=pseudonym_key, progress=LogReporter())
        proxy.stage = "plan (keeps the due subjects)"
        runner.plan(policies, EngineOptions(at, allow_large=True))
        policy = policies[0]
        phases = group_phases(policy.phases)[0]
        ctxs = [
            BatchContext(
                policy, phase, at, holds_table(real, settings.schema_name), settings, trail,
                uuid.uuid4(), pseudonym_key,
            )
            for phase in phases
        ]  # fmt: skip
        table = runner.due.get(policy.name, tuple(p.name for p in phases))
        assert table is not None
        rows: list[tuple[Any, ...]] = []
        last: Any = None
        for _ in range(skip + 1):
            rows = next_keys(conn, table, len(phases), last, settings.batch_size)
            last = place(rows[-1]) if rows else None
        keys, flags = keys_and_flags(rows, range(len(phases)))
        proxy.stage = f"batch {skip} ({len(keys)} subjects)"
        with real.transaction(force_rollback=True):
            started = time.perf_counter()
            run_batch(conn, ctxs, keys, flags)
            elapsed = (time.perf_counter() - started) * 1000
        proxy.found.append(Explained(proxy.stage, "(whole batch, EXPLAINs included)", "", elapsed))
    return proxy.found


def render(found: list[Explained]) -> str:
    lines = []
    for item in found:
        first = " ".join(item.query.split())[:160]
        lines += [f"== {item.stage}: {item.milliseconds:,.1f} ms", f"   {first}", item.plan, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explain", description=__doc__)
    parser.add_argument("--db", required=True, help="database to explain on (a copy)")
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--policies", type=Path, default=ROOT / "policies")
    parser.add_argument("--policy", required=True)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--skip-batches", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    found = explain(
        url_for(args.server, args.db), args.policies, args.policy, args.batch_size,
        args.skip_batches,
    )  # fmt: skip
    text = render(found)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    for item in found:
        print(f"{item.milliseconds:10,.1f} ms  {item.stage:28} {' '.join(item.query.split())[:90]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
