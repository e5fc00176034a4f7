"""The locked re-check of a batch on MariaDB, timed three ways (a finding of bench/mariadb.py).

`python -m bench.mariadb_recheck [--database rt_bench_tpl_15178] [--batch 2000]
[--policies policies --policy dossier-medical]` on a template of `bench/mariadb.py` (read
only: no row is locked or changed):

0. as `retention run` sent it before the fence (engine/batch.py `_still_due`: the batch's keys
   as a bare `JSON_TABLE` in `k IN (...)`, in the subject's filter and in each aggregate's);
1. as it sends it now (`MariaDBDialect.key_array`: the `JSON_TABLE` fenced in a derived table);
2. the unfenced statement with `optimizer_switch='split_materialized=off'`;
3. the batch's keys in a temporary table with a primary key, `k IN (SELECT k FROM it)`.

With MariaDB's split materialization the aggregates (last stay, last consultation) become
LATERAL DERIVED tables, one index lookup per subject, whose bare `IN (JSON_TABLE)` filter
becomes a DEPENDENT SUBQUERY: the batch's JSON is parsed again for every child row, so a batch
costs (batch size)^2. Each variant must return the same keys.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.engine import ROOT
from retention.db import connect
from retention.engines import Connection, engine_of, sql
from retention.engines.clock import clock_sql
from retention.engines.mariadb.session import database_url
from retention.plan.clock import clock_query
from retention.policy.check import bound_policies
from retention.policy.expr import Params
from retention.settings import Settings


def _timed(
    conn: Connection, label: str, query: Any, params: dict[str, Any], runs: int
) -> list[Any]:
    rows: list[Any] = []
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        rows = conn.execute(query, params).fetchall()
        seconds.append(time.perf_counter() - started)
    shown = ", ".join(f"{s:.3f}" for s in seconds)
    print(f"{label}: {len(rows)} due, {shown} s")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mariadb_recheck", description=__doc__)
    parser.add_argument("--server", default="mariadb://root@127.0.0.1:3306/")
    parser.add_argument("--database", default="rt_bench_tpl_15178")
    parser.add_argument("--policies", type=Path, default=ROOT / "policies")
    parser.add_argument("--policy", default="dossier-medical")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    at = date.today()
    with connect(Settings(), url=database_url(args.server, args.database)) as conn:
        policy = bound_policies(conn, args.policies, only=args.policy, tool_schema="rt_none")[0]
        phase = policy.phases[0]
        key = sql.Identifier(policy.key.name)
        table = sql.Identifier(*policy.subject.qname)
        keys = [
            row[0]
            for row in conn.execute(
                sql.SQL("SELECT {} FROM {} ORDER BY {} LIMIT {}").format(
                    key, table, key, sql.Literal(args.batch)
                )
            ).fetchall()
        ]

        def recheck(keys_sql: sql.Composable) -> tuple[sql.Composed, dict[str, Any]]:
            clock = clock_query(
                policy, phase, at, holds_table=None, keys=keys_sql, dialect=clock_sql(conn)
            )
            query = sql.SQL("SELECT k FROM ({}) AS c WHERE is_due ORDER BY k").format(clock.query)
            return query, dict(clock.params)

        dialect = engine_of(conn).dialect
        params = Params(prefix="b")
        query, values = recheck(dialect.key_list(params, keys, policy.key))
        values |= params.values
        bare = _timed(conn, "0. bare JSON_TABLE (before the fence)", query, values, args.runs)
        conn.execute("SET SESSION optimizer_switch = 'split_materialized=off'")
        off = _timed(conn, "2. bare, split_materialized=off", query, values, args.runs)
        conn.execute("SET SESSION optimizer_switch = 'split_materialized=default'")
        params = Params(prefix="b")
        query, values = recheck(dialect.key_array(params, keys, policy.key))
        values |= params.values
        sent = _timed(conn, "1. as sent now (fenced)", query, values, args.runs)
        conn.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE rt_recheck_keys (k INT UNSIGNED PRIMARY KEY) AS "
                "SELECT {} AS k FROM {} ORDER BY {} LIMIT {}"
            ).format(key, table, key, sql.Literal(args.batch))
        )
        query, values = recheck(sql.SQL("SELECT k FROM rt_recheck_keys"))
        held = _timed(conn, "3. keys in a temporary table", query, values, args.runs)
        for r in conn.execute(sql.SQL("EXPLAIN ") + query, values).fetchall():
            print("   ", *r[:4], r[-1])
    found = [[tuple(r) for r in rows] for rows in (bare, sent, off, held)]
    same = all(rows == found[0] for rows in found)
    print("same keys:", same)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
