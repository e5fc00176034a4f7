"""`retention schema`: print the JSON Schema of policy files (for editors)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from retention.errors import UsageError
from retention.policy.schema import MODELINE, SCHEMA_FILE, render_schema
from retention.settings import Settings


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "schema",
        description=f"Print the JSON Schema of policy files. Save it as {SCHEMA_FILE} beside "
        f"the policies and start each policy with the line '{MODELINE}'.",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="write to FILE instead of stdout"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    text = render_schema()
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror}") from None
    print(f"policy schema written to {args.out}", file=sys.stderr)
    return 0
