"""`retention check`: validate policy files against their schema and the live catalogue."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from retention.audit.approvals import DESTRUCTIVE, approval_state, rules_of
from retention.audit.holds import HINT, describe, unmatched_holds
from retention.cli.common import audit_key_if_set, public_keys
from retention.cli.options import add_policies_option
from retention.db import connect
from retention.discovery.coverage import Gap, current_gaps
from retention.engines import Connection, engine_of
from retention.engines.binlog import BinaryLog
from retention.errors import PolicyError, RetentionError, SettingsError, UsageError
from retention.keys import load_key
from retention.plan.explain import explain_graph, render_tree
from retention.policy.bound import BoundPolicy
from retention.policy.check import check_policies
from retention.policy.load import load_policies
from retention.policy.offline import expression_problems
from retention.settings import Settings


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "check",
        description="Validate every policy file; exit 0 when valid, 2 when not.",
    )

    add_policies_option(parser)
    parser.add_argument(
        "--coverage",
        action="store_true",
        help="also list personal columns of the last scan that no policy covers (exit 3)",
    )
    parser.add_argument(
        "--no-database", action="store_true", help="check the files only, without the catalogue"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="show each policy's relation graph as a tree: table, link, rows it reaches",
    )
    parser.set_defaults(handler=run)


def _missing_keys(settings: Settings, policies: list[BoundPolicy]) -> list[str]:
    """The pseudonym key, when a phase needs it and it cannot be loaded: check (the daemon
    unit's ExecStartPre) passed, then the daemon stopped at once (exit 2)."""
    needing = [
        f"{policy.name}/{phase.name}"
        for policy in policies
        for phase in policy.phases
        if phase.needs_pseudonym_key
    ]
    if not needing:
        return []
    try:
        load_key(settings.pseudonym_key, "pseudonym_key")
    except RetentionError as exc:
        said = "; ".join(exc.problems) if isinstance(exc, SettingsError) else exc.message
        return [
            f"{', '.join(needing)} need(s) the pseudonym key, and {said}: run and daemon "
            "refuse to start"
        ]
    return []


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.no_database:
        loaded = load_policies(settings.policies_dir)
        problems = [p for item in loaded for p in expression_problems(item)]
        if problems:
            raise PolicyError(problems)
        print(f"{len(loaded)} policy file(s) valid (files only, catalogue not checked)")
        return 0
    with connect(settings) as conn:
        result = check_policies(
            conn, settings.policies_dir, tool_schema=settings.schema_name, read_data=True
        )
        gaps = (
            current_gaps(conn, settings.schema_name, result.bound)
            if args.coverage and not result.errors
            else None
        )
        approvals = rules_of(settings)
        states = {
            p.name: approval_state(conn, settings.schema_name, p.name, p.loaded.sha256, approvals)
            for p in result.bound
            if any(ph.action in DESTRUCTIVE for ph in p.phases)
        }
        trees = (
            {p.name: explain_graph(conn, p) for p in result.bound}
            if args.explain and not result.errors
            else {}
        )
        binary_log = engine_of(conn).binary_log(conn)
        trail = _trail_problems(conn, settings.schema_name)
        lost = unmatched_holds(
            conn, settings.schema_name, audit_key_if_set(settings), public_keys(settings)
        )
        if lost:
            trail.append(f"{describe(lost)}; a run refuses. Hint: {HINT}")
    for problem in result.warnings:
        print(problem.render(), file=sys.stderr)
    for line in [*trail, *_missing_keys(settings, result.bound)]:
        print(f"warning: {line}", file=sys.stderr)
    if result.errors:
        _note(binary_log)
        raise PolicyError(result.errors)
    for policy in result.bound:
        tables = len(policy.graph.tables)
        phases = ", ".join(f"{p.name} ({p.action})" for p in policy.phases)
        print(
            f"ok  {policy.name}: subject {policy.subject.label}, {tables} table(s) related, "
            f"phases: {phases}  [sha256 {policy.loaded.sha256[:12]}]"
        )
        if policy.name in states:
            print(f"    {states[policy.name].describe()}")
        if policy.name in trees:
            print("    what its records hold (rows of every subject, in one snapshot):")
            print("\n".join(f"      {line}" for line in render_tree(trees[policy.name])))
    _note(binary_log)
    warned = f", {len(result.warnings)} warning(s)" if result.warnings else ""
    print(f"{len(result.bound)} policy file(s) valid{warned}")
    if args.coverage:
        return _coverage(gaps)
    return 0


def _trail_problems(conn: Connection, schema: str) -> list[str]:
    """What would let this account rewrite the audit trail, where the engine checks it
    (MariaDB: the append-only triggers, DROP which TRUNCATE needs, ...); nothing before
    `retention init` created the trail."""
    engine = engine_of(conn)
    if not engine.catalogue.table_exists(conn, schema, "audit"):
        return []
    return engine.own_schema.append_only_problems(conn, schema) or []


def _note(binary_log: BinaryLog) -> None:
    """What the server's own log of changes keeps of purged and pseudonymised values."""
    note = binary_log.describe()
    if note is not None:
        print(f"note: {note}")


def _coverage(gaps: list[Gap] | None) -> int:
    if gaps is None:
        raise UsageError(
            "no scan is stored yet: coverage cannot be checked", hint="run 'retention scan' first"
        )
    if not gaps:
        print("coverage: every personal column of the last scan is covered by a policy")
        return 0
    print(f"coverage: {len(gaps)} personal column(s) that no policy covers:")
    for gap in gaps:
        print(f"  {gap.render()}")
    print("  hint: add a phase that acts on them, or a 'keep' entry with the reason")
    return 3
