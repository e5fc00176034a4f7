"""Check every policy against the live catalogue and return the bound ones.

Used by `check` (which prints every problem) and by every command that acts on policies (which
refuse to start while any policy is invalid: a purge tool must never run half-configured).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from loguru import logger

from retention.catalog.introspect import read_catalog
from retention.engines import Connection
from retention.errors import PolicyError, Problem, UsageError
from retention.policy.bind import bind_policy
from retention.policy.bound import BoundPolicy
from retention.policy.checks.clock_inputs import clock_input_problems
from retention.policy.data_checks import data_problems, unchangeable_columns
from retention.policy.load import LoadedPolicy, load_policies
from retention.policy.privileges import privilege_problems
from retention.store.ledger import Ledger, find_ledger


@dataclass(frozen=True)
class CheckResult:
    """Bound policies and every problem (errors and warnings) found."""

    loaded: list[LoadedPolicy]
    bound: list[BoundPolicy]
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def check_policies(
    conn: Connection,
    directory: Path,
    *,
    tool_schema: str = "retention",
    read_data: bool = False,
) -> CheckResult:
    """Load every policy file, then bind each against the catalogue. `read_data` (the `check`
    command): also read the data of the bound policies, for the classes of their polymorphic
    columns and the columns that look like links (retention.policy.data_checks)."""
    result = bind_all(conn, load_policies(directory), tool_schema=tool_schema)
    if not read_data:
        return result
    found = data_problems(conn, result.bound) + privilege_problems(conn, result.bound, tool_schema)
    return replace(result, problems=result.problems + found)


def bind_all(
    conn: Connection, loaded: list[LoadedPolicy], *, tool_schema: str = "retention"
) -> CheckResult:
    """Bind policies already loaded (the daemon keeps the last valid files in memory)."""
    catalog = read_catalog(conn, tool_schema=tool_schema)
    bound: list[BoundPolicy] = []
    problems: list[Problem] = []
    for item in loaded:
        result, found = bind_policy(item, catalog)
        if result is not None:
            unchangeable = unchangeable_columns(conn, result)
            found += unchangeable
            if not any(p.severity == "error" for p in unchangeable):
                bound.append(result)  # a warning informs; it never unbinds a policy
        problems += found
    clock_inputs = clock_input_problems(bound)  # across policies: one's phase, another's clock
    for found in clock_inputs.values():
        problems += found
    bound = [policy for policy in bound if policy.name not in clock_inputs]
    if any(p.action == "scrub" for policy in bound for p in policy.phases):
        ledger = find_ledger(conn, tool_schema)
        if ledger is not None:
            bound = [_with_ledger(policy, ledger) for policy in bound]
    return CheckResult(loaded, _with_siblings(bound), problems)


def _with_siblings(bound: list[BoundPolicy]) -> list[BoundPolicy]:
    """Each policy learns the names of those on the same subject table and key (its own
    included): the holds recorded under any of them before holds had a scope hold the person."""
    by_subject: dict[tuple[tuple[str, str], str], list[str]] = defaultdict(list)
    for policy in bound:
        by_subject[(policy.subject.qname, policy.key.name)].append(policy.name)
    return [
        replace(policy, siblings=tuple(by_subject[(policy.subject.qname, policy.key.name)]))
        for policy in bound
    ]


def _with_ledger(policy: BoundPolicy, ledger: Ledger) -> BoundPolicy:
    """Scrub columns read the ledger: a text already left clean is not pending."""
    phases = tuple(
        replace(phase, columns=tuple(replace(c, ledger=ledger) for c in phase.columns))
        if phase.action == "scrub"
        else phase
        for phase in policy.phases
    )
    return replace(policy, phases=phases)


def bound_policies(
    conn: Connection,
    directory: Path,
    *,
    only: str | None = None,
    tool_schema: str = "retention",
    warn: bool = False,
) -> list[BoundPolicy]:
    """Every valid policy (or only `only`); any error anywhere raises :class:`PolicyError`.
    `warn`: log the check's warnings (a run does, so that the daemon's journal shows them)."""
    result = check_policies(conn, directory, tool_schema=tool_schema)
    if result.errors:
        raise PolicyError(result.errors)
    if warn:
        log_warnings(result.problems)
    return choose(result.bound, only)


def choose(bound: list[BoundPolicy], only: str | None) -> list[BoundPolicy]:
    """The policy named `only` among `bound` (every one when None); a clear error when none
    has that name."""
    if only is None:
        return bound
    chosen = [p for p in bound if p.name == only]
    if not chosen:
        names = ", ".join(p.name for p in bound)
        raise UsageError(f"no policy named '{only}'", hint=f"policies: {names}")
    return chosen


def log_warnings(problems: list[Problem]) -> None:
    """One log line per warning of `retention check` (names of files, tables and triggers,
    never a value)."""
    for problem in problems:
        if problem.severity == "warning":
            logger.warning("policy check: {}: {}", problem.location, problem.message)
