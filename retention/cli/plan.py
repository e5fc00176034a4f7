"""`retention plan`: what each policy's phases would do at a date, without writing anything."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from retention.audit.approvals import rules_of
from retention.audit.holds import HINT, describe, unmatched_holds
from retention.cli.common import audit_key_if_set, public_keys
from retention.cli.options import add_policies_option, check_phase, iso_date
from retention.db import connect
from retention.plan.compute import compute_plan
from retention.plan.model import Plan
from retention.policy.check import bound_policies
from retention.settings import Settings


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "plan",
        description="Compute, without writing anything, the subjects and rows each phase "
        "would act on at a date (default: today in the settings' time zone).",
    )
    add_policies_option(parser)
    parser.add_argument(
        "--at",
        type=iso_date,
        default=None,
        metavar="DATE",
        help="forecast: what will be due on that date (YYYY-MM-DD)",
    )
    parser.add_argument("--policy", default=None, metavar="NAME", help="only this policy")
    parser.add_argument(
        "--phase", default=None, metavar="NAME", help="only this phase (what `run --phase` does)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from retention.engine.intents import with_intents  # the engine, only when the command runs

    at = args.at or settings.today()
    with connect(settings) as conn:
        policies = bound_policies(
            conn, settings.policies_dir, only=args.policy, tool_schema=settings.schema_name
        )
        check_phase(policies, args.phase)
        plan = compute_plan(
            conn,
            policies,
            at,
            schema=settings.schema_name,
            approvals=rules_of(settings),
            only_phase=args.phase,
        )
        plan = with_intents(conn, settings.schema_name, plan)
        lost = unmatched_holds(
            conn, settings.schema_name, audit_key_if_set(settings), public_keys(settings)
        )
    if lost:  # on stderr: the plan's output stays what it was (JSON readers)
        print(f"warning: {describe(lost)}; a run refuses", file=sys.stderr)
        print(f"  hint: {HINT}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(plan.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render_plan(plan, settings.timezone))
    return 0


def render_plan(plan: Plan, zone: str) -> str:
    """The plan for a person at a terminal."""
    lines = [f"Plan as of {plan.at.isoformat()} ({zone})"]
    if plan.intents:
        lines.append("")
        lines.append(
            "Left by batches cut short on tables without transactions: a run completes them "
            "first (retention intents list), then computes this plan again"
        )
        lines += [f"  {intent.describe()}" for intent in plan.intents]
    for policy in plan.policies:
        lines.append("")
        lines.append(
            f"{policy.name}  ({policy.subject_table}: {policy.subjects:,} subjects; "
            f"policy sha256 {policy.sha256[:12]})"
        )
        if policy.approval is not None:
            lines.append(f"  {policy.approval.describe()}")
        if policy.refused is not None:
            lines.append(f"  REFUSED: {policy.refused}")
        for phase in policy.phases:
            lines.append(f"  phase {phase.name} [{phase.action}]")
            lines.append(
                f"    due: {phase.due_subjects:,} subject(s)   "
                f"kept by a legal hold: {phase.held_subjects:,}   "
                f"undeterminable (kept): {phase.undeterminable_subjects:,}"
            )
            if phase.shared_subjects:
                lines.append(
                    f"      of which kept: {phase.shared_subjects:,}, whose record shares a row "
                    "with a record that is not due (retention check names the tables; the rows "
                    "below count them)"
                )
            if phase.undated_subjects:
                # a subject kept for sharing a row is not archived: it may be one of these
                among = "; those kept above may be among them" if phase.shared_subjects else ""
                lines.append(
                    f"      of which archived without an end of retention: "
                    f"{phase.undated_subjects:,} (their retain_until cannot be computed: group "
                    f"'undated', never destroyed by itself; retention archive list shows "
                    f"it{among})"
                )
            if phase.undeterminable_reasons:
                why = ", ".join(
                    f"{reason}: {n:,}" for reason, n in phase.undeterminable_reasons.items()
                )
                # a subject counts under each of its reasons: the figures may add up to more
                several = (
                    "; a subject may have several" if len(phase.undeterminable_reasons) > 1 else ""
                )
                lines.append(f"      undeterminable because of ({why}{several})")
            if phase.rows or not phase.due_subjects:
                touched = [f"{table} {n:,}" for table, n in phase.rows.items() if n]
                lines.append("    rows: " + (", ".join(touched) if touched else "none"))
    return "\n".join(lines)
