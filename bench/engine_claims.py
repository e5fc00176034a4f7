"""What docs/ENGINES.md says of MariaDB, tried on a real server: `python -m bench.engine_claims`.

Each claim runs a few SQL statements (two sessions where locks are concerned) and prints what
the server answered. Needs PyMySQL (`pip install -e '.[mariadb-bench]'`) and a MariaDB or MySQL
server (`--url`, default mysql://root@127.0.0.1:3306). Creates the database `rt_engine_claims`
and drops it at the end. Not part of `make test`: the engine issue turns these into tests.
"""

# ruff: noqa: E501  (claims quote whole SQL statements, one a line)

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pymysql

DATABASE = "rt_engine_claims"


class Claims:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.params = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
                       "user": parts.username or "root", "password": parts.password or "",
                       "autocommit": True, "charset": "utf8mb4"}  # fmt: skip

    def connect(self, database: str | None = DATABASE) -> Any:
        return pymysql.connect(database=database, **self.params)

    @contextlib.contextmanager
    def session(self, database: str | None = DATABASE) -> Iterator[Any]:
        conn = self.connect(database)
        try:
            yield conn.cursor()
        finally:
            conn.close()


def rows(cur: Any, query: str, args: Any = None) -> Any:
    cur.execute(query, args)
    return cur.fetchall()


def error(cur: Any, query: str, args: Any = None) -> str:
    try:
        cur.execute(query, args)
    except pymysql.MySQLError as exc:
        return f"error {exc.args[0]}: {exc.args[1]}"
    return f"no error: {cur.fetchall()!r}"


def run(cur: Any, *statements: str) -> None:
    for statement in statements:
        cur.execute(statement)


def warnings(cur: Any) -> Any:
    return [(w[1], w[2]) for w in rows(cur, "SHOW WARNINGS")]


# ---------------------------------------------------------------- the claims


def clock(c: Claims) -> list[str]:
    with c.session() as cur:
        return [
            f"""end of month clamped: {rows(cur, "SELECT DATE_ADD('2020-02-29', INTERVAL 1 YEAR), DATE_ADD('2020-01-31', INTERVAL 1 MONTH), DATE_ADD('2019-01-31', INTERVAL 1 MONTH)")}""",
            f"interval as parameter, typed: {rows(cur, 'SELECT DATE_ADD(CAST(%s AS DATE), INTERVAL %s YEAR)', ('2020-02-29', 20))}",
            f"untyped text parameter gives text: {rows(cur, 'SELECT DATE_ADD(%s, INTERVAL 1 DAY)', ('2020-02-29',))}",
            f"""overflow past 9999-12-31 is NULL, not an error: {rows(cur, "SELECT DATE_ADD('9999-12-31', INTERVAL 1 DAY)")} {warnings(cur)}""",
            f"""GREATEST/LEAST propagate NULL: {rows(cur, "SELECT GREATEST(NULL, DATE '2020-01-01'), LEAST(DATE '2020-01-01', NULL)")}""",
            f"""PostgreSQL's greatest via COALESCE: {rows(cur, "SELECT GREATEST(COALESCE(NULL, DATE '2020-01-01'), COALESCE(DATE '2020-01-01', NULL)), GREATEST(COALESCE(NULL, NULL), COALESCE(NULL, NULL))")}""",
            f"""LAST_DAY / MAKEDATE for a strict make_date: {rows(cur, "SELECT LAST_DAY('2024-02-10'), MAKEDATE(2024, 60), STR_TO_DATE('2023-02-29', '%%Y-%%m-%%d')")} {warnings(cur)}""",
            f"""REGEXP: {rows(cur, "SELECT '1975-00-00' REGEXP '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', '75-1-1' REGEXP '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'")}""",
        ]


def zero_dates(c: Claims) -> list[str]:
    with c.session() as cur:
        mode = rows(cur, "SELECT @@sql_mode")[0][0]
        cur.execute(
            "CREATE TABLE z (id INT PRIMARY KEY, d DATE NOT NULL DEFAULT '0000-00-00', dn DATE)"
        )
        cur.execute(
            "INSERT INTO z (id, dn) VALUES (1, '0000-00-00'), (2, '2020-00-10'), (3, '2020-05-00'),"
            " (4, '2020-05-05')"
        )
        out = [
            f"sql_mode here: {mode}; zero dates and zero months/days accepted on INSERT",
            f"SELECT list: d IS NULL -> {rows(cur, 'SELECT id, d IS NULL, dn IS NULL FROM z ORDER BY id')}",
            f"WHERE d IS NULL on a NOT NULL date matches zero dates: {rows(cur, 'SELECT id FROM z WHERE d IS NULL ORDER BY id')}",
            f"arithmetic on a zero date or zero month/day is NULL: {rows(cur, 'SELECT id, DATE_ADD(dn, INTERVAL 20 YEAR), MONTH(dn), DAY(dn) FROM z ORDER BY id')}",
            f"PyMySQL reads them as text: {rows(cur, 'SELECT id, dn FROM z ORDER BY id')}",
            f"a test that catches them: {rows(cur, 'SELECT id, (MONTH(dn) = 0 OR DAY(dn) = 0) FROM z ORDER BY id')}",
        ]
        cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_ZERO_DATE,NO_ZERO_IN_DATE')")
        out.append(
            "the session's sql_mode does not change stored rows: "
            f"{rows(cur, 'SELECT id, dn FROM z WHERE id = 1')}; "
            f"""new ones refused: {error(cur, "INSERT INTO z (id, d, dn) VALUES (9, '2020-01-01', '0000-00-00')")}"""
        )
        return out


def time_zones(c: Claims) -> list[str]:
    with c.session() as cur:
        out = [
            f"time zone tables loaded: {rows(cur, 'SELECT COUNT(*) FROM mysql.time_zone_name')} rows",
            f"""named zone without them: {error(cur, "SET time_zone = 'Europe/Paris'")}""",
            f"""CONVERT_TZ named -> {rows(cur, "SELECT CONVERT_TZ('2024-03-31 01:30:00', 'UTC', 'Europe/Paris')")}; offsets work: {rows(cur, "SELECT CONVERT_TZ('2024-03-31 01:30:00', '+00:00', '+02:00')")}""",
        ]
        run(
            cur,
            "CREATE TABLE tz (id INT PRIMARY KEY, ts TIMESTAMP NULL, dt DATETIME)",
            "SET time_zone = '+00:00'",
            "INSERT INTO tz VALUES (1, '2024-06-30 23:30:00', '2024-06-30 23:30:00')",
            "SET time_zone = '+02:00'",
        )
        out.append(
            "TIMESTAMP follows the session's zone, DATETIME does not: "
            f"{rows(cur, 'SELECT DATE(ts), DATE(dt) FROM tz')}"
        )
        out.append(
            f"""TIMESTAMP range: {error(cur, "INSERT INTO tz VALUES (2, '2040-01-01 00:00:00', NULL)")}"""
        )
        return out


def quoting(c: Claims) -> list[str]:
    with c.session() as cur:
        cur.execute("CREATE TABLE `we``ird` (`select` INT)")
        return [
            f"backticks, doubled inside: {rows(cur, 'SELECT COUNT(*) FROM `we``ird`')}",
            f"""double quotes are a string by default: {rows(cur, 'SELECT "select" FROM `we``ird` UNION ALL SELECT 1')}""",
            f"""SET STATEMENT sql_mode=ANSI_QUOTES FOR ... (parsed before it applies): {error(cur, 'SET STATEMENT sql_mode = CONCAT(@@sql_mode, ",ANSI_QUOTES") FOR SELECT COUNT("select") FROM "we`ird"')}""",
            _ansi(cur),
            f"""no arrays; JSON_TABLE takes a key list as one parameter: {rows(cur, "SELECT k FROM JSON_TABLE(%s, '$[*]' COLUMNS (k INT PATH '$')) AS j", ("[3, 1, 2]",))}""",
            f"table value constructor (MariaDB; MySQL 8 writes VALUES ROW(...)): {rows(cur, 'WITH v (k, n) AS (VALUES (1, %s), (2, %s)) SELECT * FROM v', ('a', 'b'))}",
        ]


def _ansi(cur: Any) -> str:
    cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
    try:
        return f"""with the session's ANSI_QUOTES, double quotes name: {rows(cur, 'SELECT COUNT("select") FROM "we`ird"')}"""
    finally:
        cur.execute("SET SESSION sql_mode = REPLACE(@@sql_mode, 'ANSI_QUOTES', '')")


def temporary_tables(c: Claims) -> list[str]:
    with c.session() as cur:
        run(
            cur,
            "CREATE TEMPORARY TABLE due (k INT PRIMARY KEY)",
            "INSERT INTO due VALUES (1), (2)",
            "CREATE TABLE base (k INT PRIMARY KEY, v INT)",
            "INSERT INTO base VALUES (1, 0), (2, 0), (3, 0)",
        )
        return [
            f"a temporary table twice in one query: {error(cur, 'SELECT COUNT(*) FROM due a JOIN due b USING (k)')}",
            f"temporary table shadows a base table of the same name, no pg_temp schema: {error(cur, 'CREATE TEMPORARY TABLE base (k INT)')} -> {rows(cur, 'SELECT COUNT(*) FROM base')}",
            "UPDATE ... JOIN instead of UPDATE ... FROM: "
            + error(cur, "DROP TEMPORARY TABLE base")
            + f" / {error(cur, 'UPDATE base JOIN due USING (k) SET base.v = 1')} -> {rows(cur, 'SELECT k, v FROM base ORDER BY k')}",
            f"UPDATE reading its own table in a subquery: {error(cur, 'UPDATE base SET v = 2 WHERE k IN (SELECT k FROM base WHERE v = 1)')} -> {rows(cur, 'SELECT k, v FROM base ORDER BY k')}",
        ]


def returning(c: Claims) -> list[str]:
    with c.session() as cur:
        run(
            cur,
            "CREATE TABLE r (k INT PRIMARY KEY, v VARCHAR(10))",
            "INSERT INTO r VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        )
        ss = c.connect().cursor(pymysql.cursors.SSCursor)
        ss.execute("DELETE FROM r WHERE k <= 2 RETURNING k, v")
        streamed = list(ss.fetchall_unbuffered())
        ss.connection.close()
        return [
            f"DELETE ... RETURNING, read unbuffered: {streamed}; left {rows(cur, 'SELECT k FROM r')}",
            f"""INSERT ... RETURNING (MariaDB 10.5+): {rows(cur, "INSERT INTO r VALUES (7, 'x') RETURNING k")}""",
            f"""UPDATE ... RETURNING: {error(cur, "UPDATE r SET v = 'y' WHERE k = 7 RETURNING k")}""",
        ]


def row_locks(c: Claims) -> list[str]:
    with c.session() as cur, c.session() as other:
        run(
            cur,
            "CREATE TABLE q (k INT PRIMARY KEY, due TINYINT, INDEX (due))",
            "INSERT INTO q SELECT seq, seq % 2 FROM seq_1_to_1000",
            "START TRANSACTION",
        )
        held = rows(cur, "SELECT k FROM q WHERE k IN (1, 2, 3) FOR UPDATE")
        out = [
            f"session A locks {held}; B, keys 1-6 SKIP LOCKED: {rows(other, 'SELECT k FROM q WHERE k IN (1, 2, 3, 4, 5, 6) ORDER BY k FOR UPDATE SKIP LOCKED')}",
            f"B NOWAIT: {error(other, 'SELECT k FROM q WHERE k = 1 FOR UPDATE NOWAIT')}",
        ]
        run(
            other,
            "SET SESSION innodb_lock_wait_timeout = 1",
            "START TRANSACTION",
        )
        started = time.monotonic()
        out.append(
            f"B waits innodb_lock_wait_timeout=1: {error(other, 'UPDATE q SET due = 0 WHERE k = 1')}"
            f" after {time.monotonic() - started:.1f} s; B's transaction still open (only the statement was rolled back): {rows(other, 'SELECT @@in_transaction, @@innodb_rollback_on_timeout')}"
        )
        cur.execute("ROLLBACK")
        other.execute("ROLLBACK")
        # REPEATABLE READ: a locking read by a non-unique index locks the gaps too
        cur.execute("START TRANSACTION")
        rows(cur, "SELECT k FROM q WHERE due = 1 FOR UPDATE")
        out.append(
            "REPEATABLE READ, A locks due = 1 by an index; B inserts a due = 1 row: "
            + error(
                other,
                "SET STATEMENT innodb_lock_wait_timeout = 1 FOR INSERT INTO q VALUES (1001, 1)",
            )
        )
        run(
            cur,
            "ROLLBACK",
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "START TRANSACTION",
        )
        rows(cur, "SELECT k FROM q WHERE due = 1 FOR UPDATE")
        out.append(
            "READ COMMITTED, the same: "
            + error(
                other,
                "SET STATEMENT innodb_lock_wait_timeout = 1 FOR INSERT INTO q VALUES (1002, 1)",
            )
        )
        cur.execute("ROLLBACK")
        return out


def skip_locked_small_table(c: Claims) -> list[str]:
    out = []
    with c.session() as cur, c.session() as other:
        for n in (10, 100):
            run(
                cur,
                "DROP TABLE IF EXISTS tiny",
                "CREATE TABLE tiny (k INT PRIMARY KEY)",
                f"INSERT INTO tiny SELECT seq FROM seq_1_to_{n}",
                "START TRANSACTION",
            )
            rows(cur, "SELECT k FROM tiny WHERE k IN (1, 2, 3) FOR UPDATE")
            other.execute("START TRANSACTION")
            found = rows(other, "SELECT k FROM tiny WHERE k IN (4, 5, 6) FOR UPDATE SKIP LOCKED")
            plan = rows(other, "EXPLAIN SELECT k FROM tiny WHERE k = 4 FOR UPDATE SKIP LOCKED")
            other.execute("ROLLBACK")
            cur.execute("ROLLBACK")
            out.append(
                f"{n} rows, A locks 1-3, B keys 4-6 SKIP LOCKED: {found}; "
                f"EXPLAIN of k = 4 says {plan[0][-1]!r}"
            )
    return out


def statement_time(c: Claims) -> list[str]:
    with c.session() as cur:
        started = time.monotonic()
        slow = error(cur, "SET STATEMENT max_statement_time = 0.5 FOR SELECT SLEEP(3)")
        out = [
            f"SET STATEMENT max_statement_time=0.5 FOR SELECT SLEEP(3): {slow} after {time.monotonic() - started:.1f} s"
        ]
        run(
            cur,
            "CREATE TABLE big (k INT PRIMARY KEY)",
            "INSERT INTO big SELECT seq FROM seq_1_to_2000",
        )
        out.append(
            "and on a DELETE (MySQL's max_execution_time bounds SELECT only): "
            + error(
                cur,
                "SET STATEMENT max_statement_time = 0.2 FOR DELETE FROM big WHERE k IN (SELECT a.k FROM big a, big b, big c WHERE a.k = b.k + c.k)",
            )
            + f"; rows left {rows(cur, 'SELECT COUNT(*) FROM big')}"
        )
        out.append(
            f"MySQL's hint (error 1969 if applied; SLEEP's 0 if it ran to its end): {error(cur, 'SELECT /*+ MAX_EXECUTION_TIME(100) */ SLEEP(0.5)')}"
        )
        return out


def named_locks(c: Claims) -> list[str]:
    with c.session() as cur, c.session(None) as other:
        me = rows(cur, "SELECT CONNECTION_ID()")[0][0]
        out = [
            f"A GET_LOCK('rtn_run.{DATABASE}', 0): {rows(cur, 'SELECT GET_LOCK(%s, 0)', (f'rtn_run.{DATABASE}',))}",
            f"B, connected to no database, same name: {rows(other, 'SELECT GET_LOCK(%s, 0)', (f'rtn_run.{DATABASE}',))} (names are server-wide)",
            f"IS_USED_LOCK tells who holds it: {rows(other, 'SELECT IS_USED_LOCK(%s)', (f'rtn_run.{DATABASE}',))} = A's CONNECTION_ID {me}",
        ]
        run(
            cur,
            "START TRANSACTION",
            "ROLLBACK",
        )
        out.append(
            "a rolled-back transaction keeps it (session-scoped, no xact variant): "
            f"{rows(other, 'SELECT IS_USED_LOCK(%s)', (f'rtn_run.{DATABASE}',))}"
        )
        out.append(
            "names longer than 64 characters: "
            + error(other, "SELECT GET_LOCK(%s, 0)", ("x" * 65,))
        )
    with c.session() as other:
        out.append(
            "released when A's connection closes: "
            f"{rows(other, 'SELECT IS_USED_LOCK(%s)', (f'rtn_run.{DATABASE}',))}"
        )
    return out


def snapshots(c: Claims) -> list[str]:
    with c.session() as a, c.session() as b, c.session() as w:
        run(
            w,
            "CREATE TABLE s (k INT PRIMARY KEY)",
            "INSERT INTO s VALUES (1)",
        )
        a.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        w.execute("INSERT INTO s VALUES (2)")
        b.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        out = [
            "two helpers START TRANSACTION WITH CONSISTENT SNAPSHOT around a commit see "
            f"{rows(a, 'SELECT COUNT(*) FROM s')} and {rows(b, 'SELECT COUNT(*) FROM s')} rows",
            f"no snapshot export: {error(a, 'SELECT pg_export_snapshot()')}",
        ]
        a.execute("COMMIT")
        b.execute("COMMIT")
        return out


def ddl(c: Claims) -> list[str]:
    with c.session() as cur:
        run(
            cur,
            "CREATE TABLE d1 (k INT)",
            "START TRANSACTION",
            "INSERT INTO d1 VALUES (1)",
            "CREATE TABLE d2 (k INT)",
            "ROLLBACK",
        )
        return [
            "CREATE TABLE inside a transaction commits it: after ROLLBACK, d1 has "
            f"{rows(cur, 'SELECT COUNT(*) FROM d1')} row and d2 exists: "
            f"{rows(cur, 'SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s', ('d2',))}",
        ]


def audit(c: Claims) -> list[str]:
    with c.session() as cur:
        cur.execute("CREATE TABLE audit (seq BIGINT PRIMARY KEY, what TEXT) ENGINE=InnoDB")
        cur.execute(
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW SIGNAL SQLSTATE"
            " '45000' SET MESSAGE_TEXT = 'the audit trail is append-only: UPDATE is not allowed'"
        )
        cur.execute(
            "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW SIGNAL SQLSTATE"
            " '45000' SET MESSAGE_TEXT = 'the audit trail is append-only: DELETE is not allowed'"
        )
        cur.execute("INSERT INTO audit VALUES (1, 'a'), (2, 'b')")
        return [
            f"""UPDATE: {error(cur, "UPDATE audit SET what = 'x'")}""",
            f"DELETE: {error(cur, 'DELETE FROM audit')}",
            f"TRUNCATE fires no trigger: {error(cur, 'TRUNCATE audit')} -> {rows(cur, 'SELECT COUNT(*) FROM audit')} rows",
        ]


def grants(c: Claims) -> list[str]:
    with c.session() as cur:
        run(
            cur,
            "CREATE TABLE g (k INT PRIMARY KEY)",
            "INSERT INTO g VALUES (1)",
            "DROP USER IF EXISTS 'rt_claims'@'127.0.0.1'",
            "CREATE USER 'rt_claims'@'127.0.0.1'",
            f"GRANT SELECT, INSERT, DELETE ON {DATABASE}.g TO 'rt_claims'@'127.0.0.1'",
        )
        try:
            limited = pymysql.connect(**{**c.params, "user": "rt_claims"}, database=DATABASE)
            lcur = limited.cursor()
            out = [
                f"DELETE granted, TRUNCATE: {error(lcur, 'TRUNCATE g')}",
                f"SELECT ... FOR UPDATE with SELECT only: {error(lcur, 'SELECT k FROM g FOR UPDATE')}",
                f"GET_LOCK needs no privilege: {rows(lcur, 'SELECT GET_LOCK(%s, 0)', ('rt_claims_lock',))}",
                f"CREATE TEMPORARY TABLE needs its privilege: {error(lcur, 'CREATE TEMPORARY TABLE t (k INT)')}",
            ]
            limited.close()
        finally:
            cur.execute("DROP USER 'rt_claims'@'127.0.0.1'")
        return out


def non_transactional(c: Claims) -> list[str]:
    with c.session() as cur:
        run(
            cur,
            "CREATE TABLE m (k INT PRIMARY KEY) ENGINE=MyISAM",
            "CREATE TABLE i (k INT PRIMARY KEY) ENGINE=InnoDB",
            "START TRANSACTION",
            "INSERT INTO m VALUES (1)",
            "INSERT INTO i VALUES (1)",
            "ROLLBACK",
        )
        return [
            f"ROLLBACK after writing MyISAM and InnoDB: {warnings(cur)}; MyISAM kept "
            f"{rows(cur, 'SELECT COUNT(*) FROM m')}, InnoDB kept {rows(cur, 'SELECT COUNT(*) FROM i')}",
            "found from the catalogue: "
            + str(
                rows(
                    cur,
                    "SELECT t.table_name, t.engine, e.transactions FROM information_schema.tables t JOIN information_schema.engines e USING (engine) WHERE t.table_schema = DATABASE() AND t.table_name IN ('m', 'i') ORDER BY 1",
                )
            ),
        ]


def binlogs(c: Claims) -> list[str]:
    with c.session() as cur:
        return [
            "log_bin, binlog_expire_logs_seconds, expire_logs_days: "
            + str(rows(cur, "SELECT @@log_bin, @@binlog_expire_logs_seconds, @@expire_logs_days")),
        ]


def collations(c: Claims) -> list[str]:
    with c.session() as cur:
        run(
            cur,
            "CREATE TABLE k (cls VARCHAR(20), s CHAR(5))",
            "INSERT INTO k VALUES ('CPatient', 'ab')",
        )
        return [
            f"defaults: {rows(cur, 'SELECT @@character_set_server, @@collation_server, @@collation_database')}",
            f"""case-insensitive: {rows(cur, "SELECT cls = 'cpatient', cls = 'CPATIENT ', cls = BINARY 'cpatient', cls COLLATE utf8mb4_bin = 'cpatient' FROM k")}""",
            f"""accents under utf8mb4_general_ci: {rows(cur, "SELECT 'é' = 'e', 'É' = 'é'")}""",
            f"""IN with a case variant finds the row: {rows(cur, "SELECT COUNT(*) FROM k WHERE cls IN ('CPATIENT')")}""",
        ]


def catalogue(c: Claims) -> list[str]:
    with c.session() as cur:
        cur.execute("CREATE TABLE p (id INT UNSIGNED PRIMARY KEY, e ENUM('0', '1'), j JSON)")
        cur.execute(
            "CREATE TABLE ch (id INT PRIMARY KEY, p_id INT UNSIGNED,"
            " FOREIGN KEY (p_id) REFERENCES p (id) ON DELETE CASCADE)"
        )
        return [
            "columns: "
            + str(
                rows(
                    cur,
                    "SELECT table_name, column_name, data_type, column_type, is_nullable, column_key FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name IN ('p', 'ch') ORDER BY table_name, ordinal_position",
                )
            ),
            "foreign keys: "
            + str(
                rows(
                    cur,
                    "SELECT k.constraint_name, k.table_name, k.column_name, k.referenced_table_name, k.referenced_column_name, r.delete_rule FROM information_schema.key_column_usage k JOIN information_schema.referential_constraints r USING (constraint_schema, constraint_name) WHERE k.table_schema = DATABASE() ORDER BY k.ordinal_position",
                )
            ),
            "JSON is LONGTEXT with a CHECK in MariaDB: "
            + str(
                rows(
                    cur,
                    "SELECT check_clause FROM information_schema.check_constraints WHERE constraint_schema = DATABASE() AND table_name = 'p'",
                )
            ),
        ]


CLAIMS: list[Callable[[Claims], list[str]]] = [
    clock, zero_dates, time_zones, quoting, temporary_tables, returning, row_locks,
    skip_locked_small_table, statement_time, named_locks, snapshots, ddl, audit, grants, non_transactional, binlogs,
    collations, catalogue,
]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_claims", description=__doc__)
    parser.add_argument("--url", default="mysql://root@127.0.0.1:3306")
    args = parser.parse_args(argv)
    c = Claims(args.url)
    admin = c.connect(None)
    with admin.cursor() as cur:
        run(
            cur,
            f"DROP DATABASE IF EXISTS {DATABASE}",
            f"CREATE DATABASE {DATABASE}",
        )
        print(f"server: {rows(cur, 'SELECT VERSION()')[0][0]}")
    try:
        for claim in CLAIMS:
            print(f"\n## {claim.__name__}")
            for line in claim(c):
                print(f"- {line}")
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        admin.close()


if __name__ == "__main__":
    main()
