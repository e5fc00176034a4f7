"""Arguments several commands share: `--policies DIR`, `--phase NAME`, and dates given as
YYYY-MM-DD."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from retention.errors import UsageError

if TYPE_CHECKING:
    from retention.policy.bound import BoundPolicy

# `--at` within these: the clock adds durations to its dates and compares them with `--at`,
# and the servers' dates end in 9999 (an outside review: `--at 9990-01-01` made MariaDB
# refuse the plan with 'DatetimeFieldOverflow', no hint)
EARLIEST_AT, LATEST_AT = date(1900, 1, 1), date(8999, 12, 31)


def iso_date(text: str) -> date:
    """argparse type for `--at YYYY-MM-DD`."""
    try:
        found = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (expected YYYY-MM-DD)") from None
    if not EARLIEST_AT <= found <= LATEST_AT:
        raise argparse.ArgumentTypeError(
            f"'{text}' is out of range: give a date from {EARLIEST_AT} to {LATEST_AT}"
        )
    return found


def add_policies_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of policy files (default: settings policies_dir)",
    )


def check_phase(policies: Sequence[BoundPolicy], phase: str | None) -> None:
    """`--phase NAME` names a phase of the chosen policies (a usage error listing them)."""
    if phase is None:
        return
    names = {p.name for policy in policies for p in policy.phases}
    if phase not in names:
        raise UsageError(f"no phase named '{phase}'", hint=f"phases: {', '.join(sorted(names))}")
