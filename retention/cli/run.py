"""`retention run`: execute the plan on the live database."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Any

from retention.cli.common import ensure_schema
from retention.cli.options import add_policies_option, check_phase
from retention.cli.plan import render_plan
from retention.db import connect
from retention.errors import UsageError
from retention.log import log_from_signal_handler
from retention.policy.bound import BoundPolicy
from retention.policy.check import bound_policies, choose
from retention.settings import Settings

if TYPE_CHECKING:
    from retention.engine.outcome import PhaseResult, RunOptions, RunReport
    from retention.engines import Connection
    from retention.plan.model import Plan


INTERRUPTED = 130  # as a shell reports a command ended by SIGINT


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        description="Execute what `retention plan` shows: every due phase, in short batches "
        "that lock, re-check, act and audit. Safe to interrupt and to rerun.",
    )
    add_policies_option(parser)
    parser.add_argument("--policy", default=None, metavar="NAME", help="only this policy")
    parser.add_argument("--phase", default=None, metavar="NAME", help="only this phase")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--allow-large",
        action="store_true",
        help="go beyond the safety limits (needs --reason; audited)",
    )
    parser.add_argument("--reason", default=None, help="why the limits are overridden")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from retention.engine.outcome import RunOptions
    from retention.service.run import run_keys, run_policies

    if args.allow_large and not (args.reason and args.reason.strip()):
        raise UsageError("--allow-large needs --reason 'why' (it is recorded in the audit trail)")
    if args.reason is not None and not args.allow_large:
        raise UsageError(
            "--reason is read only with --allow-large: add --allow-large to go beyond the "
            "safety limits, or remove --reason"
        )
    at = settings.today()
    with connect(settings) as conn:
        every = bound_policies(
            conn, settings.policies_dir, tool_schema=settings.schema_name, warn=True
        )
        policies = choose(every, args.policy)
        check_phase(policies, args.phase)
        if args.dry_run:
            return _dry_run(conn, settings, policies, RunOptions(at, args.phase))
        ensure_schema(conn, settings)
        options = RunOptions(
            at,
            args.phase,
            args.allow_large,
            args.reason,
            lock_wait_seconds=settings.lock_wait_seconds,
        )
        with _stop_on_signals() as stop:
            report = run_policies(
                conn,
                settings,
                policies,
                options,
                run_keys(settings, (p for policy in policies for p in policy.phases)),
                all_policies=every,
                stop=stop,
                review=partial(_review, settings, args),
            )
    if report is None:
        print("nothing was changed")
        return 1
    print(render_report(report))
    # interrupted: the batches done are committed, the next run completes the rest; 130 tells a
    # wrapper that this one did not (an outside review: 0 told it nothing)
    return {"completed": 0, "interrupted": INTERRUPTED}.get(report.outcome, 1)


def _dry_run(
    conn: Connection, settings: Settings, policies: list[BoundPolicy], options: RunOptions
) -> int:
    """The plan with its rows per table; nothing changes."""
    from retention.audit.approvals import rules_of
    from retention.engine.intents import with_intents
    from retention.plan.compute import compute_plan

    # as `retention plan` computes it (approvals included: a run skips what is not approved)
    plan = compute_plan(
        conn,
        policies,
        options.at,
        schema=settings.schema_name,
        rows=True,
        only_phase=options.phase,
        approvals=rules_of(settings),
    )
    plan = with_intents(conn, settings.schema_name, plan)
    print(render_plan(plan, settings.timezone))
    print("\ndry run: nothing was changed")
    return 0


def _review(settings: Settings, args: argparse.Namespace, plan: Plan) -> bool:
    """The plan shown, the limits held (or overridden), then the operator's yes."""
    from retention.engine.gates import over_limits

    print(render_plan(plan, settings.timezone))
    over_limits(plan, settings, args.allow_large)
    return _confirmed(args.yes)


def _confirmed(yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to change data without confirmation",
            hint="pass --yes (scripts, timers) or run it on a terminal",
        )
    answer = input("\nExecute this plan? [y/N] ")
    return answer.strip().lower() in ("y", "yes", "o", "oui")


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM finish the batches under way, then stop; a second one aborts them.
    The handlers before are put back at the end (a command run in-process, as the tests do,
    left its own behind: a later Ctrl-C only set a stop nobody read)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log_from_signal_handler(
            "WARNING", "stop requested: finishing the batches under way (again to abort them)"
        )

    before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, previous in before.items():
            signal.signal(signum, previous)


def render_report(report: RunReport) -> str:
    """The run's outcome for the person at the terminal."""
    lines = [f"\nrun {report.run_id}: {report.outcome}"]
    for earlier in report.abandoned:
        lines.append(f"  an earlier run died: {earlier.describe()}")
    if report.coverage_gaps is None:
        lines.append("  coverage: no scan stored yet (retention scan)")
    elif report.coverage_gaps:
        lines.append(
            f"  coverage: {len(report.coverage_gaps)} personal column(s) covered by no policy:"
        )
        lines += [f"    {gap}" for gap in report.coverage_gaps]
    for phase in report.phases:
        rows = ", ".join(f"{t} {n:,}" for t, n in sorted(phase.rows.items()) if n) or "none"
        lines.append(
            f"  {phase.policy}/{phase.phase} [{phase.action}]: {phase.acted:,} of "
            f"{phase.proposed:,} subject(s) in {phase.batches} batch(es); rows: {rows}"
        )
        if phase.locked_elsewhere:
            lines.append(
                f"    {phase.locked_elsewhere:,} subject(s) locked by the application: "
                "retried on the next run"
            )
        if phase.gone:
            lines.append(
                f"    {phase.gone:,} subject(s) no longer in the database "
                "(removed by an earlier phase of this run, or by the application)"
            )
        if phase.no_longer_due:
            lines.append(
                f"    {phase.no_longer_due:,} subject(s) no longer due when locked "
                "(new activity or legal hold): kept"
            )
        if phase.shared:
            lines.append(
                f"    {phase.shared:,} subject(s) kept: their record shares a row with another "
                "subject's (a row with two links towards the subject: retention check names them)"
            )
        if phase.skipped_batches:
            lines.append(
                f"    {phase.skipped_batches} batch(es) skipped (a lock or statement timeout, "
                "or rows changed under the batch: the log says which): retried on the next run"
            )
        if phase.not_approved:
            lines.append(
                f"    not run: {phase.not_approved} "
                "(retention approve --policy ... --key ... or --signature ...)"
            )
        if phase.refused:
            lines.append(f"    not run, nothing changed: {phase.refused} ({_remedy(phase)})")
        if phase.error:
            lines.append(f"    error: {phase.error} (that batch changed nothing)")
    return "\n".join(lines)


def _remedy(phase: PhaseResult) -> str:
    """What to do about a refused phase."""
    if phase.refusal == "non_transactional":
        return (
            "convert them to InnoDB, or accept them under 'accept_non_transactional', then "
            "retention check"
        )
    return (
        "map them under 'classes' or declare them under 'unrelated_classes', then retention check"
    )
