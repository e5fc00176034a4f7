"""Arguments several commands share: `--policies DIR`, and dates given as YYYY-MM-DD."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path


def iso_date(text: str) -> date:
    """argparse type for `--at YYYY-MM-DD`."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (expected YYYY-MM-DD)") from None


def add_policies_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of policy files (default: settings policies_dir)",
    )
