"""Execute a plan: every selected phase, batch after batch, until done, stopped or failed.

Order of a run: compute the plan, keeping each pass's due subjects in a temporary table (the
plan's proposal; see retention.plan.passes), take the run lock, check clocks and limits (nothing
has changed yet), record the run, then per pass walk those subjects (in key order; for
archives, in windows of keys, each by end of retention), one short transaction per batch. A
stop request is honoured between batches. A crash at any instant leaves whole batches done or
not done; the next run recomputes what is due and completes the work.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

from loguru import logger
from psycopg.pq import TransactionStatus

from retention import db
from retention.archive.errors import ArchiveError
from retention.audit.anchor import append_head, read_heads
from retention.audit.approvals import DESTRUCTIVE, approval_state, rules_of
from retention.audit.seal import TrailSigner
from retention.audit.trail import AuditTrail, Entry, Stored, actor, mirror, verify_anchors
from retention.db import connection_lost
from retention.discovery.coverage import current_gaps
from retention.engine.batch import BatchContext, BatchResult, run_batch
from retention.engine.progress import Reporter, reporter
from retention.engine.runs import (
    AbandonedRun,
    abandon_stale_runs,
    connection_lost_error,
    record_failed_run,
)
from retention.engine.safety import (
    check_clock,
    limit_violations,
    privilege_warnings,
    refuse_large,
)
from retention.engine.workers import walk
from retention.engines import Connection, errors, sql
from retention.errors import KNOWN_CONDITIONS, RetentionError, server_text_is_safe
from retention.keys import Key
from retention.plan.clock import person_of
from retention.plan.compute import compute_plan, snapshot_pass
from retention.plan.model import Plan
from retention.plan.passes import DueTables, flag, group_phases, temp
from retention.plan.slices import worth_slicing
from retention.policy.actions import spec_of
from retention.policy.bound import BoundPolicy
from retention.policy.data_checks import UnmappedClasses, unmapped_classes
from retention.report.snapshots import record_after_run
from retention.rows.records import RecordsChangedError
from retention.settings import Settings
from retention.store import lock
from retention.store.schema import holds_table

if TYPE_CHECKING:
    from retention.archive.session import ArchiveSession


@dataclass
class PhaseResult:
    """What a phase did in this run."""

    policy: str
    phase: str
    action: str
    proposed: int
    acted: int = 0
    locked_elsewhere: int = 0
    gone: int = 0  # proposed, but no longer in the database when their batch came
    no_longer_due: int = 0
    batches: int = 0
    skipped_batches: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    not_approved: str | None = None
    refused: str | None = None  # not run: the record's links no longer cover the data


@dataclass
class RunReport:
    """The outcome of a run."""

    run_id: uuid.UUID
    outcome: str = "running"
    phases: list[PhaseResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    plan: Plan | None = None
    coverage_gaps: list[str] | None = None  # None: no scan stored yet
    abandoned: list[AbandonedRun] = field(default_factory=list)  # earlier runs found dead


@dataclass(frozen=True)
class RunOptions:
    """What to run and how."""

    at: date
    phase: str | None = None
    allow_large: bool = False
    reason: str | None = None
    command: str = "run"
    lock_wait_seconds: float = 0.0


class Runner:
    """Runs phases of bound policies against one connection."""

    archives: ArchiveSession | None = None  # set at run start when archive phases are due

    def __init__(
        self,
        conn: Connection,
        settings: Settings,
        trail: AuditTrail,
        *,
        pseudonym_key: Key | None = None,
        stop: threading.Event | None = None,
        progress: Reporter | None = None,
        connect: Callable[[], Connection] | None = None,
    ) -> None:
        """`connect` opens the connections of concurrent batches (setting workers); by
        default, connections like the run's, from the settings' database_url."""
        self.conn = conn
        self.settings = settings
        self.trail = trail
        self.pseudonym_key = pseudonym_key
        self.stop = stop or threading.Event()
        self.progress = progress or reporter()
        self.schema = settings.schema_name
        self.due = DueTables()
        self._unmapped: dict[str, list[UnmappedClasses]] = {}  # per policy, once per run
        self._guard = threading.Lock()  # results and progress, shared by concurrent batches
        if connect is None and settings.database_url is not None:
            connect = partial(db.connect, settings)
        self.connect = connect

    def plan(self, policies: list[BoundPolicy], options: RunOptions) -> Plan:
        """The plan this run executes; each pass's due subjects are kept in this session for
        the batches (the clock over the whole table is evaluated once per run)."""
        self.due.drop(self.conn)
        with self._helpers("the plan is computed on one connection", policies) as helpers:
            return compute_plan(
                self.conn,
                policies,
                options.at,
                schema=self.schema,
                rows=False,
                only_phase=options.phase,
                keep=self.due,
                helpers=helpers,
            )

    def run(
        self,
        policies: list[BoundPolicy],
        options: RunOptions,
        *,
        all_policies: list[BoundPolicy] | None = None,
        plan: Plan | None = None,
    ) -> RunReport:
        """Lock, check, execute; always releases the lock and closes the run record.
        Coverage is judged against `all_policies` (default: `policies`), so a run restricted
        to one policy still reports what no policy covers. `plan`: the plan already shown to
        the operator (computed again otherwise); each batch re-checks under its locks anyway."""
        lock.acquire(self.conn, self.schema, options.lock_wait_seconds)
        try:
            return self._run_locked(policies, options, all_policies or policies, plan)
        finally:
            lock.release(self.conn)

    def _run_locked(
        self,
        policies: list[BoundPolicy],
        options: RunOptions,
        all_policies: list[BoundPolicy],
        shown: Plan | None,
    ) -> RunReport:
        check_clock(self.conn, self.settings)
        report = RunReport(uuid.uuid4())
        report.warnings = privilege_warnings(self.conn, policies)
        report.coverage_gaps = self._coverage_gaps(all_policies)
        plan = shown or self.plan(policies, options)
        report.plan = plan
        violations = limit_violations(plan, self.settings)
        if violations and not options.allow_large:
            refuse_large(violations)
        report.abandoned = abandon_stale_runs(self.conn, self.schema, self.trail)
        self._open_run(report, options)
        with logger.contextualize(run_id=str(report.run_id)):
            if violations:
                self._record(
                    "limit_override",
                    "allowed",
                    report,
                    detail={
                        "reason": options.reason or "",
                        "phases": [v.describe() for v in violations],
                    },
                )
            try:
                self.archives = self._prepare_archives(plan, options, report, all_policies)
                report.outcome = self._execute(plan, policies, options, report)
            except errors.OperationalError as exc:
                report.outcome = "failed"
                if not connection_lost(self.conn, exc):
                    raise
                raise connection_lost_error(
                    exc,
                    lambda conn, what: record_failed_run(
                        conn, self.schema, self.trail, report.run_id, self._detail(report, what)
                    ),
                    self.connect,
                    give_up=self.stop.wait,
                ) from None
            except BaseException:
                report.outcome = "failed"
                raise
            finally:
                self._close_run(report)
            # the exposure after this run, for the report's trend (never fails the run)
            with self._helpers(
                "the exposure is computed on one connection", all_policies
            ) as helpers:
                record_after_run(
                    self.conn,
                    all_policies,
                    options.at,
                    report.run_id,
                    schema=self.schema,
                    helpers=helpers,
                )
        return report

    def _prepare_archives(
        self,
        plan: Plan,
        options: RunOptions,
        report: RunReport,
        all_policies: list[BoundPolicy],
    ) -> ArchiveSession | None:
        """Reconcile interrupted archives, expire groups; the session of the archive batches.
        Without archive_dir nor archive phase there is nothing to do, and the archive code
        (and its encryption library) is not loaded."""
        if self.settings.archive_dir is None and not any(
            phase.action == "archive" for policy in plan.policies for phase in policy.phases
        ):
            return None
        from retention.archive.session import prepare_archives

        return prepare_archives(
            self.conn,
            self.settings,
            self.trail,
            plan,
            options.at,
            report.run_id,
            expire_groups=options.phase is None,
            subjects={p.name: person_of(p) for p in all_policies},
        )

    def _coverage_gaps(self, policies: list[BoundPolicy]) -> list[str] | None:
        """Personal columns of the last scan that no policy covers (logged at every run)."""
        gaps = current_gaps(self.conn, self.schema, policies)
        if gaps:
            logger.warning(
                "{} personal column(s) covered by no policy: {}",
                len(gaps),
                ", ".join(g.label for g in gaps),
            )
        return None if gaps is None else [g.render() for g in gaps]

    def _execute(
        self, plan: Plan, policies: list[BoundPolicy], options: RunOptions, report: RunReport
    ) -> str:
        holds = holds_table(self.conn, self.schema)
        self._unmapped = {}
        by_name = {p.name: p for p in policies}
        try:
            for policy_plan in plan.policies:
                policy = by_name[policy_plan.name]
                planned = {p.name: p for p in policy_plan.phases}
                group = group_phases(policy.phase(p.name) for p in policy_plan.phases)
                for phases in group:
                    if self.stop.is_set():
                        return "interrupted"
                    results = [
                        PhaseResult(policy.name, p.name, p.action, planned[p.name].due_subjects)
                        for p in phases
                    ]
                    report.phases += results
                    active = [
                        i
                        for i, (phase, result) in enumerate(zip(phases, results, strict=True))
                        if result.proposed
                        and self._approved(policy, phase.action, result, report)
                        and self._classes_known(policy, phase.action, result, report)
                    ]
                    if not active:
                        continue
                    ctxs = [
                        BatchContext(
                            policy,
                            phase,
                            options.at,
                            holds,
                            self.settings,
                            self.trail,
                            report.run_id,
                            self.pseudonym_key,
                            self.archives,
                        )
                        for phase in phases
                    ]
                    self._pass(ctxs, results, active)
                    if self.stop.is_set():
                        return "interrupted"
        finally:
            if not (self.conn.closed or self.conn.broken):
                self.due.drop(self.conn)
        return "failed" if any(r.error or r.refused for r in report.phases) else "completed"

    def _approved(
        self, policy: BoundPolicy, action: str, result: PhaseResult, report: RunReport
    ) -> bool:
        """Purge and archive run only for a policy version approved by enough people."""
        if action not in DESTRUCTIVE:
            return True
        state = approval_state(
            self.conn, self.schema, policy.name, policy.loaded.sha256, rules_of(self.settings)
        )
        if state.approved:
            return True
        result.not_approved = state.describe()
        logger.warning("{}/{}: not run, {}", policy.name, result.phase, result.not_approved)
        self._record(
            "phase_not_approved",
            "skipped",
            report,
            detail={
                "policy": policy.name,
                "phase": result.phase,
                "approvals": len(state.counted),
                "required": state.required,
                "not_counted": [a.describe() for a in state.approvals if not a.valid],
                "policy_sha256": policy.loaded.sha256,
            },
        )
        return False

    def _classes_known(
        self, policy: BoundPolicy, action: str, result: PhaseResult, report: RunReport
    ) -> bool:
        """Before the first batch of a purge or an archive, every class of the record's
        polymorphic columns must still be mapped or declared unrelated (read once per policy
        and run): a class that appeared since `check` has rows no record holds, and purging
        would leave those of purged subjects behind. The phase is refused otherwise."""
        if action not in DESTRUCTIVE:
            return True
        if policy.name not in self._unmapped:
            self._unmapped[policy.name] = unmapped_classes(self.conn, policy)
        unmapped = self._unmapped[policy.name]
        if not unmapped:
            return True
        result.refused = "classes neither mapped nor declared unrelated: " + "; ".join(
            f"{u.column.label} {u.describe()}" for u in unmapped
        )
        logger.error(
            "{}/{}: not run, {} (map them in the policy, or declare them under "
            "unrelated_classes, then run 'retention check')",
            policy.name,
            result.phase,
            result.refused,
        )
        self._record(
            "phase_refused",
            "refused",
            report,
            detail={
                "policy": policy.name,
                "phase": result.phase,
                "reason": "unmapped_classes",
                "columns": [u.to_json() for u in unmapped],
                "policy_sha256": policy.loaded.sha256,
            },
        )
        return False

    def _pass(
        self, ctxs: list[BatchContext], results: list[PhaseResult], active: list[int]
    ) -> None:
        """Walk a pass's due subjects in order (key order; for archives, windows of keys each
        by end of retention, see retention.plan.passes), one batch after the other."""
        policy, phases = ctxs[0].policy, tuple(c.phase for c in ctxs)
        names = tuple(p.name for p in phases)
        table = self.due.get(policy.name, names)
        if table is None:  # the plan came from elsewhere: snapshot the due subjects now
            table = self.due.new(policy.name, names)
            self.due.sizes[table] = snapshot_pass(
                self.conn, policy, phases, ctxs[0].at, ctxs[0].holds, table
            )
        total = self.due.sizes[table]
        label = ", ".join(f"{p.name} ({p.action})" for p in (phases[i] for i in active))
        self.progress.start(f"{policy.name}/{label}", total)
        workers: list[Connection] = []
        try:
            if total > self.settings.batch_size and all(
                spec_of(phases[i].action).side_by_side for i in active
            ):
                workers = self._open_workers()
            batches = self._walk(table, len(phases))
            if len(workers) > 1:
                try:
                    walk(
                        workers,
                        batches,
                        lambda conn, rows: self._batch(ctxs, results, active, rows, conn),
                        self.stop,
                        cancel=lambda conn: conn.cancel_safe(),
                    )
                except KeyboardInterrupt:
                    # aborted: a cancelled batch may still be rolling back on its connection;
                    # closing it under its thread is unsafe, the process exit closes it
                    workers = []
                    raise
                return
            for rows in batches:
                if not self._batch(ctxs, results, active, rows):
                    break
        finally:
            for conn in workers:
                conn.close()
            self.progress.finish()

    def _walk(self, table: str, phases: int) -> Iterator[list[tuple[Any, ...]]]:
        """The pass's batches from its due table, in walk order, until done or stopped."""
        last: Any = None
        while not self.stop.is_set():
            rows = self._next_keys(table, phases, last)
            if not rows:
                return
            last = place(rows[-1])
            yield rows

    def _open_workers(
        self, count: int | None = None, doing: str = "batches run one after the other"
    ) -> list[Connection]:
        """`count` more connections (default: the setting workers) for a pass's concurrent
        batches, or for the slices of the plan and the exposure snapshot; none (`doing`, on the
        run's connection alone) with workers = 1, or when they cannot all be opened (e.g.
        max_connections reached) or do not reach the run's own database and server: the run
        goes on, more slowly."""
        count = self.settings.workers if count is None else count
        if count < 1 or self.settings.workers < 2 or self.connect is None:
            return []
        opened: list[Connection] = []
        try:
            home = _identity(self.conn)
            # the run's calendar zone and search path: a batch's re-check and an archive's
            # timestamps must read dates as the plan did
            pinned = [
                (name, self.conn.execute(f"SHOW {name}").fetchone())
                for name in ("TimeZone", "search_path")
            ]
            for _ in range(count):
                opened.append(self.connect())
                if _identity(opened[-1]) != home:
                    raise RetentionError(
                        "they would reach another database than the run's (database_url)"
                    )
                for name, row in pinned:
                    if row is not None:
                        opened[-1].execute("SELECT set_config(%s, %s, false)", (name, str(row[0])))
        except (RetentionError, errors.Error) as exc:
            for conn in opened:
                conn.close()
            reason = exc.message if isinstance(exc, RetentionError) else type(exc).__name__
            logger.warning(
                "{}: {} more connection(s) could not be opened ({})", doing, count, reason
            )
            return []
        return opened

    @contextmanager
    def _helpers(self, doing: str, policies: list[BoundPolicy]) -> Iterator[list[Connection]]:
        """workers - 1 more connections while the block runs, closed after it; none once
        the run's connection is lost, or when no subject table is large enough to slice."""
        try:
            wanted = (
                not (self.conn.closed or self.conn.broken)
                and self.settings.workers > 1
                and worth_slicing(self.conn, policies)
            )
        except errors.Error:  # the run's connection reports it where it matters
            wanted = False
        if not wanted:
            yield []
            return
        opened = self._open_workers(self.settings.workers - 1, doing)
        try:
            yield opened
        except KeyboardInterrupt:
            # aborted: a helper's cancelled statement may still be ending under its thread;
            # closing its connection then is unsafe, the process exit closes it
            opened = []
            raise
        finally:
            for conn in opened:
                conn.close()

    def _batch(
        self,
        ctxs: list[BatchContext],
        results: list[PhaseResult],
        active: list[int],
        rows: list[tuple[Any, ...]],
        conn: Connection | None = None,
    ) -> bool:
        """One batch, on `conn` (default: the run's connection); False stops the pass (an
        error that another batch would repeat). Safe to call from several threads at once,
        each with its own connection."""
        conn = conn or self.conn
        chosen = [ctxs[i] for i in active]
        keys, flags = keys_and_flags(rows, active)
        try:
            done = run_batch(conn, chosen, keys, flags)
        except (
            errors.LockNotAvailable,
            errors.QueryCanceled,
            errors.DeadlockDetected,
            errors.SerializationFailure,
            RecordsChangedError,
        ) as exc:
            logger.warning(
                "batch of {} subject(s) skipped, retried on a later run: {}",
                len(keys),
                _describe(exc),
            )
            for i in active:
                with self._guard:
                    results[i].skipped_batches += 1
                self._record(
                    "batch_skipped",
                    "skipped",
                    None,
                    ctx=ctxs[i],
                    detail={"proposed": len(keys), "reason": _describe(exc)},
                    conn=conn,
                )
            self._advance(len(rows))
            return True
        except errors.OperationalError as exc:
            if connection_lost(conn, exc):
                raise  # nothing of this batch committed; the caller retries
            return self._failed(ctxs, results, active, keys, exc, conn)
        except (errors.Error, ArchiveError) as exc:
            # an archive that cannot be written or verified, a table changed during the run:
            # the batch rolled back; the pass stops (its next batch would fail the same way),
            # the other passes and policies go on
            return self._failed(ctxs, results, active, keys, exc, conn)
        with self._guard:
            self._tally(results, active, done)
        self._advance(len(rows))
        return True

    def _advance(self, count: int) -> None:
        with self._guard:
            self.progress.advance(count)

    @staticmethod
    def _tally(
        results: list[PhaseResult], active: list[int], done: list[BatchResult | None]
    ) -> None:
        for i, result in zip(active, done, strict=True):
            if result is None:
                continue
            if result.entry is not None:
                mirror(result.entry)
            phase = results[i]
            phase.batches += 1
            phase.acted += result.acted
            phase.locked_elsewhere += result.locked_elsewhere
            phase.gone += result.gone
            phase.no_longer_due += result.no_longer_due
            phase.rows.update(result.rows)

    def _failed(
        self,
        ctxs: list[BatchContext],
        results: list[PhaseResult],
        active: list[int],
        keys: list[Any],
        exc: Exception,
        conn: Connection,
    ) -> bool:
        """Record a failed batch (nothing of it changed) for each of its phases; stop the pass."""
        error = _describe(exc)
        names = "/".join(ctxs[i].phase.name for i in active)
        logger.error(
            "{}/{}: batch failed, nothing of it was changed: {}",
            ctxs[0].policy.name,
            names,
            error,
        )
        for i in active:
            with self._guard:
                results[i].error = error
            self._record(
                "batch_failed",
                "error",
                None,
                ctx=ctxs[i],
                detail={"proposed": len(keys), "error": error},
                conn=conn,
            )
        return False

    def _next_keys(self, table: str, phases: int, last: Any) -> list[tuple[Any, ...]]:
        """The next batch in walk order after `last` (see `place`): rows of (key, window, end
        of retention, flag per phase), read with `place` and `keys_and_flags`."""
        size = self.settings.batch_size
        columns = sql.SQL(", ").join([sql.SQL("k, w, o"), *(flag(i) for i in range(phases))])
        if last is None:
            query = sql.SQL("SELECT {} FROM {} ORDER BY w, o, k LIMIT %s").format(
                columns, temp(table)
            )
            params: tuple[Any, ...] = (size,)
        else:
            query = sql.SQL(
                "SELECT {} FROM {} WHERE (w, o, k) > (%s, %s, %s) ORDER BY w, o, k LIMIT %s"
            ).format(columns, temp(table))
            params = (last[1], last[2], last[0], size)  # last = place(row)
        # not prepared: the table is recreated per run, with another key type
        return list(self.conn.execute(query, params, prepare=False))

    # -- run records and audit entries ------------------------------------------------------
    def _open_run(self, report: RunReport, options: RunOptions) -> None:
        self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (run_id, command, host, os_user, pid) VALUES (%s, %s, %s, %s, %s)"
            ).format(sql.Identifier(self.schema, "runs")),
            (
                report.run_id,
                options.command,
                socket.gethostname(),
                self.trail.actor.get("os_user", ""),
                os.getpid(),
            ),
        )
        self._record(
            "run_start",
            "started",
            report,
            detail={
                "at": options.at.isoformat(),
                "phase": options.phase,
                "command": options.command,
            },
        )

    def _close_run(self, report: RunReport) -> None:
        if self.conn.closed or self.conn.broken:
            return
        event = {"interrupted": "run_interrupted", "failed": "run_failed"}.get(
            report.outcome, "run_end"
        )
        last = self._record(event, report.outcome, report, detail=self._detail(report))
        self.conn.execute(
            sql.SQL("UPDATE {} SET outcome = %s, ended_at = now() WHERE run_id = %s").format(
                sql.Identifier(self.schema, "runs")
            ),
            (report.outcome, report.run_id),
        )
        self._write_head(last)

    @staticmethod
    def _detail(report: RunReport, error: str | None = None) -> dict[str, Any]:
        """What the run's closing entry says: its totals and errors."""
        totals: Counter[str] = Counter()
        for phase in report.phases:
            totals.update(phase.rows)
        errors = [p.error for p in report.phases if p.error] + [
            f"{p.policy}/{p.phase} not run: {p.refused}" for p in report.phases if p.refused
        ]
        return {
            "subjects": sum(p.acted for p in report.phases),
            "rows": dict(totals),
            "skipped_batches": sum(p.skipped_batches for p in report.phases),
            "errors": [*errors, error] if error else errors,
        }

    def _write_head(self, last: Stored) -> None:
        """Append the trail's last entry, once committed, to the head file outside the
        database (setting audit_head_file); a failure is logged and never fails the run."""
        path = self.settings.audit_head_file
        if path is None or self.conn.info.transaction_status != TransactionStatus.IDLE:
            return
        try:
            earlier = read_heads(path, self.conn.info.dbname, self.schema)
            if earlier is not None:
                problem = verify_anchors(self.conn, self.schema, earlier.anchors[-1:])
                if problem is not None:
                    logger.error(
                        "the audit trail no longer holds the last entry the head file records: "
                        "{} (run 'retention audit verify')",
                        problem,
                    )
            append_head(path, self.conn.info.dbname, self.schema, last.seq, last.hash)
        except (OSError, RetentionError) as exc:
            reason = exc.message if isinstance(exc, RetentionError) else exc.strerror
            logger.warning(
                "audit head not appended to {}: {} (audit verify cannot detect removed last "
                "entries without it)",
                path,
                reason or type(exc).__name__,
            )

    def _record(
        self,
        event: str,
        outcome: str,
        report: RunReport | None,
        *,
        ctx: BatchContext | None = None,
        detail: dict[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> Stored:
        run_id = report.run_id if report else (ctx.run_id if ctx else None)
        return self.trail.record(
            conn or self.conn,
            Entry(
                event=event,
                outcome=outcome,
                run_id=run_id,
                policy=ctx.policy.name if ctx else None,
                policy_sha256=ctx.policy.loaded.sha256 if ctx else None,
                phase=ctx.phase.name if ctx else None,
                action=ctx.phase.action if ctx else None,
                detail=detail or {},
            ),
        )


def _identity(conn: Connection) -> tuple[Any, ...]:
    """What tells a database apart: its name and oid, and its server's start time."""
    row = conn.execute(
        "SELECT current_database(), (SELECT oid FROM pg_database "
        "WHERE datname = current_database()), pg_postmaster_start_time()"
    ).fetchone()
    return tuple(row) if row else ()


def run_plan(
    conn: Connection,
    policies: list[BoundPolicy],
    options: RunOptions,
    schema: str,
    *,
    rows: bool = False,
) -> Plan:
    """The plan a run executes: the same computation as `retention plan` (rows per table only
    when asked: a dry run shows them, a run only needs the subjects for its limits)."""
    return compute_plan(
        conn, policies, options.at, schema=schema, rows=rows, only_phase=options.phase
    )


def _describe(exc: Exception) -> str:
    """What went wrong, without any value: ours are names and counts only; the server's text
    only for classes that name objects and never quote values (a denied privilege, a timeout);
    otherwise (a data error quotes the value, a trigger's RAISE can say anything, and the
    audit trail keeps what it is given forever) the error's class, SQLSTATE and the names of
    the objects involved."""
    if isinstance(exc, RetentionError):
        return exc.message
    if not isinstance(exc, errors.Error):
        return type(exc).__name__
    diag = exc.diag
    if server_text_is_safe(exc.sqlstate, diag.context) and diag.message_primary:
        # names a table, a privilege, a timeout: what the operator needs, never a value
        return f"{diag.message_primary} (SQLSTATE {exc.sqlstate})"
    names = [
        f"{what} {name}"
        for what, name in (
            ("table", diag.table_name),
            ("column", diag.column_name),
            ("constraint", diag.constraint_name),
        )
        if name
    ]
    where = f" on {', '.join(names)}" if names else ""
    said = KNOWN_CONDITIONS.get(exc.sqlstate or "")
    known = f"{said}: " if said else ""
    return f"{known}{type(exc).__name__} (SQLSTATE {exc.sqlstate or 'none'}){where}"


def make_trail(
    conn: Connection, settings: Settings, audit_key: Key, signer: TrailSigner
) -> AuditTrail:
    return AuditTrail(settings.schema_name, audit_key, actor(conn), signer)


def place(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Where a row of `Runner._next_keys` is in the walk: (key, window, end of retention)."""
    return row[:3]


def keys_and_flags(
    rows: Sequence[tuple[Any, ...]], phases: Iterable[int]
) -> tuple[list[Any], list[list[bool]]]:
    """A batch's keys, and per phase (by index) whether each key is due for it, from rows of
    `Runner._next_keys`: (key, window, end of retention, flag per phase)."""
    return [row[0] for row in rows], [[bool(row[3 + i]) for row in rows] for i in phases]


__all__ = [
    "PhaseResult",
    "RunOptions",
    "RunReport",
    "Runner",
    "keys_and_flags",
    "make_trail",
    "place",
    "run_plan",
]
