"""Running policies: the one function that `retention run`, the daemon and the demo call.

Open the audit trail, compute the plan (shown for review first when the caller asks), then
under the run lock: the run itself (gates, record, passes: retention.engine.runner), and the
exposure after it, stored for the report's trend (retention.report.snapshots; it never fails
the run). The keys a run writes with are loaded by `run_keys`, for every caller alike.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from loguru import logger

from retention.audit.writer import AuditKeys, audit_keys, open_trail
from retention.engine.gates import record_refusal, run_lock
from retention.engine.intents import with_intents
from retention.engine.outcome import RunOptions, RunReport
from retention.engine.progress import Reporter
from retention.engine.runner import Runner
from retention.engine.safety import LimitsRefusedError
from retention.engines import Connection
from retention.keys import Key, load_key
from retention.plan.model import Plan
from retention.policy.bound import BoundPolicy
from retention.report.snapshots import record_after_run
from retention.settings import Settings


class _Phase(Protocol):
    @property
    def needs_pseudonym_key(self) -> bool: ...


@dataclass(frozen=True)
class RunKeys:
    """The keys a run writes with: the audit trail's, and the pseudonym key when a phase
    needs it (None otherwise: it is not loaded)."""

    audit: AuditKeys
    pseudonym: Key | None


def run_keys(settings: Settings, phases: Iterable[_Phase]) -> RunKeys:
    """The keys for `phases`; a clear error when one they need is missing."""
    audit = audit_keys(settings)
    needed = any(p.needs_pseudonym_key for p in phases)
    pseudonym = load_key(settings.pseudonym_key, "pseudonym_key") if needed else None
    return RunKeys(audit, pseudonym)


def run_policies(
    conn: Connection,
    settings: Settings,
    policies: list[BoundPolicy],
    options: RunOptions,
    keys: RunKeys,
    *,
    all_policies: list[BoundPolicy] | None = None,
    stop: threading.Event | None = None,
    progress: Reporter | None = None,
    review: Callable[[Plan], bool] | None = None,
    connect: Callable[[], Connection] | None = None,
) -> RunReport | None:
    """Run `policies` (their phases due at `options.at`); coverage is judged against
    `all_policies` (default: `policies`). `review`: shown the plan before the run lock is
    taken; False changes nothing and returns None. `stop` is honoured between batches;
    `connect` opens the helpers of setting workers (default: from database_url)."""
    trail = open_trail(conn, settings.schema_name, keys.audit)
    runner = Runner(
        conn,
        settings,
        trail,
        pseudonym_key=keys.pseudonym,
        stop=stop,
        progress=progress,
        connect=connect,
    )
    shown = None
    if review is not None:
        shown = runner.plan(policies, options)
        try:
            if not review(with_intents(conn, settings.schema_name, shown)):
                return None
        except LimitsRefusedError as exc:  # the operator's review holds the limits too: audited
            record_refusal(runner.record, uuid.uuid4(), exc.violations)
            raise
    every = all_policies or policies
    with run_lock(conn, settings.schema_name, options.lock_wait_seconds, runner.stop):
        report = runner.run(policies, options, all_policies=every, plan=shown)
        with logger.contextualize(run_id=str(report.run_id)):
            _exposure_after(runner, every, options, report)
    return report


def _exposure_after(
    runner: Runner, policies: list[BoundPolicy], options: RunOptions, report: RunReport
) -> None:
    """The exposure after the run, for the report's trend (never fails the run)."""
    doing = "the exposure is computed on one connection"
    with runner.connections.helpers(doing, policies) as helpers:
        record_after_run(
            runner.conn,
            policies,
            options.at,
            report.run_id,
            schema=runner.schema,
            helpers=helpers,
        )
