"""Execute a plan: every selected phase, batch after batch, until done, stopped or failed.

Order of a run: compute the plan, keeping each pass's due subjects in a temporary table (the
plan's proposal; see retention.plan.passes); under the run lock (retention.engine.gates, taken
by the caller), check clocks and limits (nothing has changed yet), record the run
(retention.engine.record), complete the batches an earlier run left half-done on tables without
transactions (retention.engine.intents; the plan is then computed again), then per pass walk
those subjects (retention.engine.passes), one short transaction per batch. A stop request is
honoured between batches. A crash at any instant leaves whole batches done or not done (on
tables without transactions, half-done batches with their intents); the next run recomputes
what is due and completes the work.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger

from retention.audit.holds import refuse_unmatched
from retention.audit.seal import trail_keys
from retention.audit.trail import AuditTrail
from retention.db import connection_lost
from retention.engine import gates, intents
from retention.engine.batch import BatchContext
from retention.engine.connections import Connections
from retention.engine.gates import PhaseGates
from retention.engine.journal import Journal
from retention.engine.outcome import RunOptions, RunReport
from retention.engine.passes import ContextOf, Passes
from retention.engine.progress import Reporter, reporter
from retention.engine.record import RunRecord
from retention.engine.runs import abandon_stale_runs
from retention.engine.safety import LimitExceeded, check_clock, privilege_warnings
from retention.engines import Connection, engine_of, errors
from retention.keys import Key
from retention.plan.clock import person_of
from retention.plan.compute import compute_plan
from retention.plan.model import Plan
from retention.plan.passes import DueTables
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.settings import Settings
from retention.store.schema import holds_table

if TYPE_CHECKING:
    from retention.archive.session import ArchiveSession


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
        self.connections = Connections(conn, settings, connect)
        self.record = RunRecord(conn, settings, trail)
        # intents of batches on tables without transactions: on a connection of their own
        connect = self.connections.connect
        self.journal = (
            Journal(
                connect,
                self.schema,
                lock_timeout_ms=settings.lock_timeout_ms,
                statement_timeout_ms=settings.statement_timeout_ms,
            )
            if connect
            else None
        )

    def plan(self, policies: list[BoundPolicy], options: RunOptions) -> Plan:
        """The plan this run executes; each pass's due subjects are kept in this session for
        the batches (the clock over the whole table is evaluated once per run)."""
        self.due.drop(self.conn)
        doing = "the plan is computed on one connection"
        with self.connections.helpers(doing, policies) as helpers:
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
        """Check, record, execute; always closes the run record. The caller holds the run
        lock (gates.run_lock). Coverage is judged against `all_policies` (default:
        `policies`), so a run restricted to one policy still reports what no policy covers.
        `plan`: the plan already shown to the operator (computed again otherwise); each batch
        re-checks under its locks anyway."""
        every = all_policies or policies
        left = intents.pending(self.conn, self.schema)  # batches cut short: completed first
        intents.refuse_unknown(left, every, pseudonym_key=self.pseudonym_key is not None)
        report, shown, violations = self._checked(policies, options, every, plan)
        report.abandoned = abandon_stale_runs(self.conn, self.schema, self.trail)
        self.record.open(report, options)
        with logger.contextualize(run_id=str(report.run_id)):
            if violations:
                gates.record_override(self.record, report.run_id, options, violations)
            self._execute(shown, policies, options, every, report, left)
        return report

    def _checked(
        self,
        policies: list[BoundPolicy],
        options: RunOptions,
        every: list[BoundPolicy],
        shown: Plan | None,
    ) -> tuple[RunReport, Plan, list[LimitExceeded]]:
        """The gates before the run (clocks, limits), its warnings and its plan."""
        check_clock(self.conn, self.settings)
        # a hold removed from the table outside `retention hold` would let its subject go
        refuse_unmatched(
            self.conn,
            self.schema,
            self.trail.key,
            trail_keys(self.settings.audit_public_keys, self.settings.audit_signing_key),
        )
        report = RunReport(uuid.uuid4())
        report.warnings = privilege_warnings(self.conn, policies)
        # the trail's triggers dropped or disabled: the chain still shows a change, nothing
        # refuses it any more
        unguarded = engine_of(self.conn).own_schema.trigger_problems(self.conn, self.schema)
        for text in unguarded:
            logger.warning(text)
        report.warnings += unguarded
        report.coverage_gaps = gates.coverage_gaps(self.conn, self.schema, every)
        plan = report.plan = shown or self.plan(policies, options)

        def refused(violations: list[LimitExceeded]) -> None:
            gates.record_refusal(self.record, report.run_id, violations)

        return report, plan, gates.over_limits(plan, self.settings, options.allow_large, refused)

    def _execute(
        self,
        plan: Plan,
        policies: list[BoundPolicy],
        options: RunOptions,
        every: list[BoundPolicy],
        report: RunReport,
        left: list[intents.Intent],
    ) -> None:
        """The intents left completed, then the passes, the run's outcome in `report`; the
        record closed whatever happens."""
        try:
            self.archives = self._prepare_archives(plan, options, report, every)
            context = self._contexts(options, report)
            if left:  # what is due once they are completed
                intents.replay(self.conn, left, every, context, self.journal)
                plan = report.plan = self.plan(policies, options)
            report.outcome = self._passes().execute(plan, policies, context, report)
        except errors.OperationalError as exc:
            report.outcome = "failed"
            if not connection_lost(self.conn, exc):
                raise
            connect, give_up = self.connections.connect, self.stop.wait
            raise self.record.lost(exc, report, connect, give_up) from None
        except BaseException:
            report.outcome = "failed"
            raise
        finally:
            if self.journal is not None:
                self.journal.close()
            self.record.close(report)

    def _passes(self) -> Passes:
        gates_ = PhaseGates(self.conn, self.settings, self.record)
        return Passes(
            self.connections,
            self.settings,
            self.record,
            gates_,
            self.due,
            self.stop,
            self.progress,
            self.journal,
        )

    def _contexts(self, options: RunOptions, report: RunReport) -> ContextOf:
        """What the batches of a phase share in this run."""
        holds = holds_table(self.conn, self.schema)

        def context(policy: BoundPolicy, phase: BoundPhase) -> BatchContext:
            return BatchContext(
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

        return context

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


__all__ = ["RunOptions", "RunReport", "Runner", "run_plan"]
