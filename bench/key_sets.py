"""A batch's keys on MariaDB: one JSON parameter (`JSON_TABLE`) or one parameter per key (`IN`
list)? `python -m bench.key_sets` (docs/ENGINES.md 2.2; figures in bench/RESULTS.md).

PostgreSQL binds a batch's keys as one array (`k = ANY(%s)`); MariaDB has no arrays. Measured
here, through the tool's own MariaDB connection (rendering, binding, a server-side prepared
statement per execution, as a batch runs them), for batches of `--keys` keys, the statements a
batch runs with them, each in a transaction rolled back:

- `lock`: the subjects locked `FOR UPDATE SKIP LOCKED` in key order (engine/batch.py);
- `update`: a column of the subjects updated (erase on the subject table);
- `members`: a related table's member rows read and locked (pseudonymize, scrub);
- `delete`: a related table's rows deleted by the link to the subjects (purge).

Each statement in its two forms: the IN list of `--keys` placeholders, and `JSON_TABLE` of one
JSON parameter, in the form MariaDB 10.11 plans best for each (a single-table UPDATE or
DELETE with an `IN (SELECT ... FROM JSON_TABLE(...))` scans the whole table: the JSON form joins
instead). Creates the database `rt_bench_key_sets` (`--subjects` subjects, two related rows
each) and drops it at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from retention.db import connect
from retention.engines import Connection, sql
from retention.settings import Settings

DATABASE = "rt_bench_key_sets"
JSON_KEYS = "SELECT k FROM JSON_TABLE(%s, '$[*]' COLUMNS (k int PATH '$')) AS j"


def _in_list(keys: Sequence[int]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Placeholder() for _ in keys)


Statement = Callable[[Sequence[int]], tuple[sql.Composed, Sequence[Any]]]


def _forms() -> dict[str, dict[str, Statement]]:
    """statement -> form -> (SQL, parameters) for a batch of keys."""
    json_keys = sql.SQL(JSON_KEYS)
    return {
        "lock": {
            "in list": lambda ks: (
                sql.SQL(
                    "SELECT id FROM people WHERE id IN ({}) ORDER BY id FOR UPDATE SKIP LOCKED"
                ).format(_in_list(ks)),
                list(ks),
            ),
            "json_table": lambda ks: (
                sql.SQL(
                    "SELECT id FROM people WHERE id IN ({}) ORDER BY id FOR UPDATE SKIP LOCKED"
                ).format(json_keys),
                [json.dumps(list(ks))],
            ),
        },
        "update": {
            "in list": lambda ks: (
                sql.SQL("UPDATE people AS r SET r.name = NULL WHERE r.id IN ({})").format(
                    _in_list(ks)
                ),
                list(ks),
            ),
            "json_table": lambda ks: (
                sql.SQL("UPDATE people AS r JOIN ({}) AS m ON r.id = m.k SET r.name = NULL").format(
                    json_keys
                ),
                [json.dumps(list(ks))],
            ),
        },
        "members": {
            "in list": lambda ks: (
                sql.SQL(
                    "SELECT r.id, r.tel FROM visits AS r JOIN (SELECT DISTINCT t.id FROM visits "
                    "AS t WHERE t.person_id IN ({})) AS m ON r.id = m.id FOR UPDATE"
                ).format(_in_list(ks)),
                list(ks),
            ),
            "json_table": lambda ks: (
                sql.SQL(
                    "SELECT r.id, r.tel FROM visits AS r JOIN (SELECT DISTINCT t.id FROM visits "
                    "AS t WHERE t.person_id IN ({})) AS m ON r.id = m.id FOR UPDATE"
                ).format(json_keys),
                [json.dumps(list(ks))],
            ),
        },
        "delete": {
            "in list": lambda ks: (
                sql.SQL("DELETE r FROM visits AS r WHERE r.person_id IN ({})").format(_in_list(ks)),
                list(ks),
            ),
            "json_table": lambda ks: (
                sql.SQL("DELETE r FROM visits AS r WHERE r.person_id IN ({})").format(json_keys),
                [json.dumps(list(ks))],
            ),
        },
    }


def _populate(conn: Connection, subjects: int) -> None:
    for statement in (
        "CREATE TABLE people (id int PRIMARY KEY, name varchar(40)) ENGINE=InnoDB",
        "CREATE TABLE visits (id int PRIMARY KEY, person_id int NOT NULL, tel varchar(20), "
        "KEY (person_id), FOREIGN KEY (person_id) REFERENCES people (id)) ENGINE=InnoDB",
    ):
        conn.execute(statement)
    # MariaDB's sequence engine: seq_1_to_<n> is a table of the numbers 1 to n
    conn.execute(
        sql.SQL("INSERT INTO people SELECT seq, CONCAT('n', seq) FROM {}").format(
            sql.Identifier(f"seq_1_to_{subjects}")
        )
    )
    conn.execute(
        sql.SQL("INSERT INTO visits SELECT seq, (seq - 1) %% %s + 1, 'x' FROM {}").format(
            sql.Identifier(f"seq_1_to_{2 * subjects}")
        ),
        (subjects,),
    )
    conn.execute("ANALYZE TABLE people, visits").fetchall()


def _time(conn: Connection, make: Statement, keys: Sequence[int], *, reads: bool) -> float:
    query, params = make(keys)
    start = time.perf_counter()
    with conn.transaction(force_rollback=True):
        cursor = conn.execute(query, params)
        if reads:
            assert len(cursor.fetchall()) >= len(keys)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mariadb://root@127.0.0.1:3306/")
    parser.add_argument("--subjects", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    admin = connect(Settings(), url=args.url)
    admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    admin.execute(f"CREATE DATABASE {DATABASE}")
    try:
        with connect(Settings(), url=args.url.rstrip("/") + "/" + DATABASE) as conn:
            _populate(conn, args.subjects)
            _measure(conn, args.subjects, args.keys, args.rounds)
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        admin.close()


def _measure(conn: Connection, subjects: int, size: int, rounds: int) -> None:
    print(f"{subjects:,} subjects, {2 * subjects:,} related rows, batches of {size:,} keys")
    step = max(1, (subjects - size) // rounds)
    batches = [list(range(1 + i * step, 1 + i * step + size)) for i in range(rounds)]
    for name, forms in _forms().items():
        for form, make in forms.items():
            reads = name in ("lock", "members")
            _time(conn, make, batches[0], reads=reads)  # warm the pages
            spent = [_time(conn, make, keys, reads=reads) for keys in batches]
            print(
                f"- {name:8} {form:10} median {statistics.median(spent) * 1000:7.1f} ms, "
                f"min {min(spent) * 1000:7.1f} ms, max {max(spent) * 1000:7.1f} ms"
            )


if __name__ == "__main__":
    main()
