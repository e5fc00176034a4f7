"""Which Python driver for MariaDB/MySQL: bulk reads, bulk writes, SKIP LOCKED batches, memory.

`python -m bench.drivers` (not part of `make test`; needs `pip install -e '.[mariadb-bench]'`,
and `libmariadb-dev` + `pkg-config` to build mysqlclient and mariadb) measures PyMySQL,
mysqlclient and MariaDB Connector/Python on the same data in the same run, against the MariaDB
server of `--url`'s host (default 127.0.0.1:3306, root, no password). It creates the database
`rt_bench_drivers` and drops it at the end.

Each measurement runs in a child process (`python -m bench.drivers --one DRIVER TEST`) so that
its peak resident memory (VmHWM) is its own; the parent alternates the drivers' order in each
round and prints the medians over the rounds and the ratios to the fastest driver.

- read_stream / read_buffered: 1 M rows of 6 columns (int, varchar, varchar, date, datetime,
  text) through an unbuffered cursor, then a buffered one (the whole result in memory).
- write_*: the pseudonyms of 100,000 rows (two columns) computed here and written back in one
  transaction: executemany of UPDATE; executemany of INSERT into a temporary table + one
  UPDATE ... JOIN; UPDATE ... JOIN (VALUES ...) in statements of 1,000 rows; executemany of
  INSERT ... ON DUPLICATE KEY UPDATE; LOAD DATA LOCAL INFILE into a temporary table + JOIN.
- skip_locked: 25 transactions of `SELECT ... WHERE id IN (2,000 keys) FOR UPDATE SKIP LOCKED`
  then `UPDATE ... WHERE id IN (the locked keys)`.
- checks (once per driver): whether values travel as server-side prepared-statement parameters
  or are interpolated into the text (read from the server's general query log), DELETE ...
  RETURNING, and what an error carries (errno, sqlstate) for a duplicate key, a lock wait
  timeout and max_statement_time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.rss import rss_mb

DATABASE = "rt_bench_drivers"
READ_ROWS = 1_000_000
WRITE_ROWS = 100_000
BATCH = 2_000
BATCHES = 25
VALUES_CHUNK = 1_000
FETCH = 5_000

DRIVERS = ("pymysql", "mysqlclient", "mariadb")
WRITES = ("write_update_many", "write_temp_join", "write_values_join", "write_upsert", "write_load")
TESTS = ("read_stream", "read_buffered", *WRITES, "skip_locked")


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str


def _server(url: str) -> Server:
    parts = urlsplit(url)
    return Server(
        parts.hostname or "127.0.0.1",
        parts.port or 3306,
        parts.username or "root",
        parts.password or "",
    )


# ---------------------------------------------------------------- drivers


def _params(s: Server, db: str) -> dict[str, Any]:
    """The connection parameters the three drivers name alike."""
    return {"host": s.host, "port": s.port, "user": s.user, "password": s.password,
            "database": db, "autocommit": True}  # fmt: skip


@dataclass(frozen=True)
class Driver:
    """One driver: how to connect, its parameter marker, its two kinds of cursor."""

    name: str
    package: str
    marker: str
    connect: Callable[[Server, str], Any]
    stream_cursor: Callable[[Any], Any]
    buffered_cursor: Callable[[Any], Any]


def _pymysql() -> Driver:
    import pymysql
    import pymysql.cursors

    def connect(s: Server, db: str) -> Any:
        return pymysql.connect(**_params(s, db), local_infile=True, charset="utf8mb4")

    return Driver(
        "pymysql",
        "PyMySQL",
        "%s",
        connect,
        lambda c: c.cursor(pymysql.cursors.SSCursor),
        lambda c: c.cursor(),
    )


def _mysqlclient() -> Driver:
    import MySQLdb
    import MySQLdb.cursors

    def connect(s: Server, db: str) -> Any:
        return MySQLdb.connect(**_params(s, db), local_infile=1, charset="utf8mb4")

    return Driver(
        "mysqlclient",
        "mysqlclient",
        "%s",
        connect,
        lambda c: c.cursor(MySQLdb.cursors.SSCursor),
        lambda c: c.cursor(),
    )


def _mariadb() -> Driver:
    import mariadb

    def connect(s: Server, db: str) -> Any:
        return mariadb.connect(**_params(s, db), local_infile=True)

    return Driver(
        "mariadb",
        "mariadb",
        "?",
        connect,
        lambda c: c.cursor(buffered=False),
        lambda c: c.cursor(buffered=True),
    )


def driver(name: str) -> Driver:
    return {"pymysql": _pymysql, "mysqlclient": _mysqlclient, "mariadb": _mariadb}[name]()


def _q(drv: Driver, text: str) -> str:
    """`text` written with `%s` markers, in the driver's own marker."""
    return text.replace("%s", drv.marker)


def _values(drv: Driver, rows: int, types: Sequence[str]) -> str:
    """`(?, ?), (?, ?)...`, the first row's markers cast: in a prepared statement, a table value
    constructor takes its column types from the first row's values (an id of one digit makes a
    column too narrow for the next)."""
    first = ", ".join(f"CAST({drv.marker} AS {t})" for t in types)
    other = "(" + ", ".join([drv.marker] * len(types)) + ")"
    return ", ".join([f"({first})", *[other] * (rows - 1)])


# ---------------------------------------------------------------- data


def setup(s: Server) -> None:
    """The database and its tables, generated by the server (sequence engine)."""
    drv = driver("pymysql")
    conn = drv.connect(s, "")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
        cur.execute(f"USE {DATABASE}")
        cur.execute(
            "CREATE TABLE src (id INT PRIMARY KEY, nom VARCHAR(64) NOT NULL, ville VARCHAR(64),"
            " naissance DATE, vu DATETIME, note TEXT) ENGINE=InnoDB"
        )
        cur.execute(
            "INSERT INTO src SELECT seq, CONCAT('Nom', seq), CONCAT('Ville', seq % 997),"
            " DATE '1930-01-01' + INTERVAL (seq % 30000) DAY,"
            " TIMESTAMP '2000-01-01 00:00:00' + INTERVAL seq MINUTE,"
            f" REPEAT('remarque ', 1 + seq % 12) FROM seq_1_to_{READ_ROWS}"
        )
        for table in ("pat", "q"):
            cur.execute(
                f"CREATE TABLE {table} (id INT PRIMARY KEY, nom VARCHAR(64), prenom VARCHAR(64),"
                " tel VARCHAR(20), done TINYINT NOT NULL DEFAULT 0) ENGINE=InnoDB"
            )
            cur.execute(
                f"INSERT INTO {table} (id, nom, prenom, tel) SELECT seq, CONCAT('Nom', seq),"
                f" CONCAT('Prenom', seq), '0102030405' FROM seq_1_to_{WRITE_ROWS}"
            )
        cur.execute("CREATE TABLE scratch (id INT PRIMARY KEY, nom VARCHAR(64)) ENGINE=InnoDB")
    conn.close()


def teardown(s: Server) -> None:
    conn = driver("pymysql").connect(s, "")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    conn.close()


# ---------------------------------------------------------------- measurements


def read(drv: Driver, conn: Any, *, stream: bool) -> dict[str, float]:
    cur = drv.stream_cursor(conn) if stream else drv.buffered_cursor(conn)
    rows = chars = 0
    cur.execute("SELECT id, nom, ville, naissance, vu, note FROM src")
    while batch := cur.fetchmany(FETCH):
        rows += len(batch)
        chars += sum(len(r[1]) + len(r[5]) for r in batch)
    cur.close()
    if rows != READ_ROWS or chars == 0:
        raise SystemExit(f"{drv.name}: read {rows} rows")
    return {"rows": rows}


def _pseudonyms(salt: str) -> list[tuple[str, str, int]]:
    """(nom, prenom, id) for every row of `pat`: keyed hashes computed here, as the tool does."""
    out = []
    for i in range(1, WRITE_ROWS + 1):
        digest = hashlib.blake2b(f"{i}".encode(), key=salt.encode(), digest_size=12).hexdigest()
        out.append((f"{salt}{digest}", f"{salt}{digest[::-1]}", i))
    return out


def _temp_table(cur: Any) -> None:
    cur.execute(
        "CREATE TEMPORARY TABLE tmp_pseudo (id INT PRIMARY KEY, nom VARCHAR(64),"
        " prenom VARCHAR(64)) ENGINE=InnoDB"
    )


def _join_update(cur: Any) -> None:
    cur.execute(
        "UPDATE pat JOIN tmp_pseudo t USING (id) SET pat.nom = t.nom, pat.prenom = t.prenom"
    )
    cur.execute("DROP TEMPORARY TABLE tmp_pseudo")


def _chunks(rows: Sequence[tuple[str, str, int]], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield [v for r in rows[start : start + size] for v in (r[2], r[0], r[1])]


def write(drv: Driver, conn: Any, method: str, salt: str) -> dict[str, float]:
    rows = _pseudonyms(salt)
    by_key = [(r[2], r[0], r[1]) for r in rows]
    workdir = tempfile.mkdtemp(prefix="rt-bench-")  # mode 0700
    try:
        started = time.perf_counter()
        cur = conn.cursor()
        cur.execute("START TRANSACTION")
        if method == "write_update_many":
            cur.executemany(_q(drv, "UPDATE pat SET nom = %s, prenom = %s WHERE id = %s"), rows)
        elif method == "write_temp_join":
            _temp_table(cur)
            sql = _q(drv, "INSERT INTO tmp_pseudo (id, nom, prenom) VALUES (%s, %s, %s)")
            cur.executemany(sql, by_key)
            _join_update(cur)
        elif method == "write_values_join":
            for params in _chunks(rows, VALUES_CHUNK):
                cur.execute(
                    "UPDATE pat JOIN (WITH v (id, nom, prenom) AS (VALUES "
                    + _values(drv, len(params) // 3, ("SIGNED", "CHAR(64)", "CHAR(64)"))
                    + ") SELECT * FROM v) AS v USING (id)"
                    " SET pat.nom = v.nom, pat.prenom = v.prenom",
                    params,
                )
        elif method == "write_upsert":
            cur.executemany(
                _q(drv, "INSERT INTO pat (id, nom, prenom) VALUES (%s, %s, %s)")
                + " ON DUPLICATE KEY UPDATE nom = VALUES(nom), prenom = VALUES(prenom)",
                by_key,
            )
        elif method == "write_load":
            path = Path(workdir, "pseudo.tsv")
            # hex values: no tab, newline or backslash to escape (the tool would have to)
            path.write_text("".join(f"{i}\t{n}\t{p}\n" for i, n, p in by_key), encoding="utf-8")
            if not re.fullmatch(r"[/\w.-]+", str(path)):
                raise SystemExit(f"unexpected temporary path {path}")
            _temp_table(cur)
            cur.execute(
                f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE tmp_pseudo CHARACTER SET utf8mb4"
                " FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (id, nom, prenom)"
            )
            _join_update(cur)
        else:
            raise SystemExit(f"unknown write method {method}")
        cur.execute("COMMIT")
        elapsed = time.perf_counter() - started
        cur.execute(
            _q(drv, "SELECT COUNT(*) FROM pat WHERE LEFT(nom, CHAR_LENGTH(%s)) = %s"), (salt, salt)
        )
        (written,) = cur.fetchone()
        cur.close()
    finally:
        shutil.rmtree(workdir)
    if written != WRITE_ROWS:
        raise SystemExit(f"{drv.name} {method}: {written} rows written, not {WRITE_ROWS}")
    return {"seconds": elapsed}


def skip_locked(drv: Driver, conn: Any) -> dict[str, float]:
    cur = conn.cursor()
    cur.execute("UPDATE q SET done = 0, nom = NULL")
    per_batch = []
    started = time.perf_counter()
    for n in range(BATCHES):
        keys = list(range(n * BATCH + 1, (n + 1) * BATCH + 1))
        t0 = time.perf_counter()
        cur.execute("START TRANSACTION")
        cur.execute(
            f"SELECT id FROM q WHERE id IN ({', '.join([drv.marker] * BATCH)})"
            " ORDER BY id FOR UPDATE SKIP LOCKED",
            keys,
        )
        locked = [r[0] for r in cur.fetchall()]
        cur.execute(
            f"UPDATE q SET done = 1, nom = CONCAT('p', id) WHERE id IN"
            f" ({', '.join([drv.marker] * len(locked))})",
            locked,
        )
        cur.execute("COMMIT")
        per_batch.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    cur.execute("SELECT COUNT(*) FROM q WHERE done = 1")
    (done,) = cur.fetchone()
    cur.close()
    if done != BATCH * BATCHES:
        raise SystemExit(f"{drv.name} skip_locked: {done} rows done")
    return {
        "seconds": elapsed,
        "batch_ms_median": 1000 * statistics.median(per_batch),
        "batch_ms_max": 1000 * max(per_batch),
    }


def one(name: str, test: str, s: Server, salt: str) -> dict[str, Any]:
    """One measurement in this process: seconds, resident memory before and at the peak."""
    drv = driver(name)
    conn = drv.connect(s, DATABASE)
    base = rss_mb(os.getpid()) or 0.0
    started = time.perf_counter()
    if test.startswith("read_"):
        out: dict[str, Any] = read(drv, conn, stream=test == "read_stream")
        out["seconds"] = time.perf_counter() - started
    elif test.startswith("write_"):
        out = write(drv, conn, test, salt)
    elif test == "skip_locked":
        out = skip_locked(drv, conn)
    else:
        raise SystemExit(f"unknown test {test}")
    conn.close()
    return {**out, "rss_base_mb": base, "rss_peak_mb": rss_mb(os.getpid(), "VmHWM") or 0.0}


# ---------------------------------------------------------------- checks


@contextmanager
def general_log(s: Server) -> Iterator[Any]:
    """The server's general query log into mysql.general_log while the block runs, restored after
    (a global setting: nothing else uses this server's log here)."""
    conn = driver("pymysql").connect(s, "")
    cur = conn.cursor()
    cur.execute("SELECT @@global.general_log, @@global.log_output")
    was_on, was_output = cur.fetchone()
    cur.execute("SET GLOBAL log_output = 'TABLE'")
    cur.execute("SET GLOBAL general_log = 1")
    try:
        yield cur
    finally:
        cur.execute("SET GLOBAL general_log = %s", (was_on,))
        cur.execute("SET GLOBAL log_output = %s", (was_output,))
        conn.close()


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "class": f"{type(exc).__module__}.{type(exc).__name__}",
        "errno": getattr(exc, "errno", None),
        "sqlstate": getattr(exc, "sqlstate", None),
        "args0": exc.args[0] if exc.args else None,
    }


def check(name: str, s: Server) -> dict[str, Any]:
    """Binding, DELETE ... RETURNING, errors, row counts and zero dates of one driver."""
    drv = driver(name)
    out: dict[str, Any] = {"version": metadata.version(drv.package)}
    out["general_log"] = _binding(drv, s)
    conn = drv.connect(s, DATABASE)
    cur = conn.cursor()
    try:
        cur.execute("DELETE FROM scratch WHERE id IN (1, 2) RETURNING id, nom")
        out["delete_returning"] = [list(r) for r in cur.fetchall()]
    except Exception as exc:  # the driver's own error classes
        out["delete_returning"] = _error(exc)
    out.update(_errors(drv, s, cur))
    cur.execute("DELETE FROM scratch")
    cur.execute("INSERT INTO scratch (id, nom) VALUES (1, 'x'), (2, 'x')")
    cur.execute("UPDATE scratch SET nom = 'x'")
    out["rowcount_of_unchanged_rows"] = cur.rowcount  # 2 with the FOUND_ROWS client flag
    cur.execute("DELETE FROM scratch")
    out["zero_dates_read_as"] = _zero_dates(cur)
    conn.close()
    return out


def _binding(drv: Driver, s: Server) -> list[str]:
    """What the server's general query log shows of values sent as parameters."""
    marker = f"rt-marker-{drv.name}"
    with general_log(s) as log:
        conn = drv.connect(s, DATABASE)
        cur = conn.cursor()
        cur.execute(_q(drv, "SELECT COUNT(*) FROM scratch WHERE nom = %s"), (marker,))
        cur.fetchall()
        cur.executemany(
            _q(drv, "INSERT INTO scratch (id, nom) VALUES (%s, %s)"),
            [(1, marker + "-a"), (2, marker + "-b")],
        )
        cur.executemany(
            _q(drv, "UPDATE scratch SET nom = %s WHERE id = %s"),
            [(marker + "-c", 1), (marker + "-d", 2)],
        )
        conn.close()
        log.execute(
            "SELECT command_type, CONVERT(argument USING utf8mb4) FROM mysql.general_log"
            " WHERE argument LIKE %s OR (command_type IN ('Prepare', 'Execute')"
            " AND argument LIKE %s) ORDER BY event_time",
            (f"%{marker}%", "%scratch%"),
        )
        lines = [f"{kind}: {text}" for kind, text in log.fetchall()]
        log.execute("TRUNCATE mysql.general_log")
    return lines


def _errors(drv: Driver, s: Server, cur: Any) -> dict[str, Any]:
    """A duplicate key, a statement over max_statement_time, a lock wait timeout."""
    out: dict[str, Any] = {}
    cur.execute(_q(drv, "INSERT INTO scratch (id, nom) VALUES (%s, %s)"), (7, "x"))
    try:
        cur.execute(_q(drv, "INSERT INTO scratch (id, nom) VALUES (%s, %s)"), (7, "x"))
    except Exception as exc:
        out["duplicate_key"] = _error(exc)
    try:
        cur.execute("SET STATEMENT max_statement_time = 0.2 FOR SELECT COUNT(*) FROM src a, src b")
        cur.fetchall()
    except Exception as exc:
        out["max_statement_time"] = _error(exc)
    holder = drv.connect(s, DATABASE)
    hcur = holder.cursor()
    hcur.execute("START TRANSACTION")
    hcur.execute("SELECT id FROM scratch WHERE id = 7 FOR UPDATE")
    hcur.fetchall()
    cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
    try:
        cur.execute("UPDATE scratch SET nom = 'y' WHERE id = 7")
    except Exception as exc:
        out["lock_wait_timeout"] = _error(exc)
    cur.execute("SELECT id FROM scratch WHERE id = 7 FOR UPDATE SKIP LOCKED")
    out["skip_locked_rows_while_held"] = len(cur.fetchall())
    hcur.execute("ROLLBACK")
    holder.close()
    return out


def _zero_dates(cur: Any) -> Any:
    """What the driver makes of a zero date and of a zero month or day (the server's default
    sql_mode accepts them)."""
    cur.execute("CREATE TEMPORARY TABLE zd (d DATE)")
    cur.execute("INSERT INTO zd VALUES ('0000-00-00'), ('2020-00-10'), ('2020-05-00')")
    try:
        cur.execute("SELECT d FROM zd")
        return [repr(r[0]) for r in cur.fetchall()]
    except Exception as exc:  # the driver's own error classes
        return _error(exc)
    finally:
        cur.execute("DROP TEMPORARY TABLE zd")


# ---------------------------------------------------------------- the parent


def _child(name: str, test: str, url: str, salt: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.drivers", "--url", url, "--one", name, test, salt]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"{name} {test} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _table(results: dict[str, dict[str, list[dict[str, Any]]]], drivers: Sequence[str]) -> str:
    lines = [
        "| test | " + " | ".join(drivers) + " | peak RSS MB (" + ", ".join(drivers) + ") |",
        "|---|" + "---|" * (len(drivers) + 1),
    ]
    for test in TESTS:
        medians = {d: statistics.median(r["seconds"] for r in results[d][test]) for d in drivers}
        best = min(medians.values())
        cells = [f"{medians[d]:.2f} s ({medians[d] / best:.2f}×)" for d in drivers]
        peaks = [
            f"{statistics.median(r['rss_peak_mb'] for r in results[d][test]):.0f}" for d in drivers
        ]
        lines.append(f"| {test} | " + " | ".join(cells) + " | " + ", ".join(peaks) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drivers", description=__doc__)
    parser.add_argument("--url", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--rounds", type=int, default=3, help="0: the checks only")
    parser.add_argument("--drivers", default=",".join(DRIVERS))
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--json", type=Path, help="write every measurement to this file")
    parser.add_argument(
        "--one", nargs=3, metavar=("DRIVER", "TEST", "SALT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    s = _server(args.url)
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], s, args.one[2])))
        return
    drivers = [d for d in args.drivers.split(",") if d]
    setup(s)
    try:
        checks = {d: check(d, s) for d in drivers}
        print(json.dumps(checks, indent=1, default=str))
        results: dict[str, dict[str, list[dict[str, Any]]]] = {
            d: {t: [] for t in TESTS} for d in drivers
        }
        for rnd in range(args.rounds):
            order = drivers[rnd % len(drivers) :] + drivers[: rnd % len(drivers)]
            for test in TESTS:
                for name in order:
                    r = _child(name, test, args.url, f"s{rnd}{name[:2]}")
                    r["round"] = rnd
                    results[name][test].append(r)
                    print(
                        f"round {rnd + 1} {test:18} {name:12} {r['seconds']:7.2f} s "
                        f"rss {r['rss_base_mb']:.0f} -> {r['rss_peak_mb']:.0f} MB",
                        flush=True,
                    )
        if args.rounds:
            print(_table(results, drivers))
        if args.json:
            args.json.write_text(
                json.dumps({"checks": checks, "results": results}, indent=1, default=str)
            )
    finally:
        if not args.keep:
            teardown(s)


if __name__ == "__main__":
    main()
