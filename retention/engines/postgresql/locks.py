"""PostgreSQL's locks: advisory locks, keyed by constants (the tool's name in ASCII).

The run lock is session-scoped (`pg_try_advisory_lock`): the server releases it when the
session ends, so holding it proves that no other run is alive. Transaction locks are
`pg_advisory_xact_lock`, released at commit or rollback. Advisory locks are per database.
"""

from __future__ import annotations

from retention.engines import Connection
from retention.engines.locks import Holder, TransactionLock

RUN_LOCK = 0x7274_6E5F_7275_6E  # "rtn_run"
_IN_TRANSACTION = {
    TransactionLock.AUDIT_CHAIN: 0x6175_6469_7400,  # "audit"
    TransactionLock.MIGRATIONS: 0x7265_7465_6E74,  # "retent"
}


class Locks:
    def try_run_lock(self, conn: Connection) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK,)).fetchone()
        return bool(row and row[0])

    def release_run_lock(self, conn: Connection) -> None:
        conn.execute("SELECT pg_advisory_unlock(%s)", (RUN_LOCK,))

    def run_lock_holder(self, conn: Connection) -> Holder | None:
        row = conn.execute(
            "SELECT a.pid, a.client_addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.granted AND (l.classid::bigint << 32 | l.objid::bigint) = %s LIMIT 1",
            (RUN_LOCK,),
        ).fetchone()
        if row is None:
            return None
        return Holder(int(row[0]), None if row[1] is None else str(row[1]), row[2])

    def lock_in_transaction(
        self, conn: Connection, lock: TransactionLock, *, schema: str = "retention"
    ) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_IN_TRANSACTION[lock],))
