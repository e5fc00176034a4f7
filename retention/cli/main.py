"""The `retention` command: argument parsing and the mapping of errors to exit codes.

Exit codes: 0 success, 1 internal error, 2 invalid input (arguments, settings, policies),
3 coverage gaps, 4 database unreachable, in an unexpected state or refusing an operation,
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loguru import logger

from retention.engines import errors
from retention.errors import KNOWN_CONDITIONS, RetentionError, UsageError, server_text_is_safe
from retention.log import setup_logging
from retention.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, policies_dir=getattr(args, "policies", None))
        setup_logging(settings.log_level, settings.log_format, settings.audit_log)
        handler: Handler = args.handler
        return handler(args, settings)
    except RetentionError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except errors.Error as exc:  # last resort: an error no command turned into a message
        message, code = _database_error(exc)
        logger.error(message)
        print(f"error: {message}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `retention plan | head`
        sys.stderr.close()
        return 0


def _database_error(exc: errors.Error) -> tuple[str, int]:
    """The message and exit code of a database error no command handled. The server's text is
    shown only for classes that never quote a value (a data error, a constraint or a trigger's
    RAISE may quote the row); otherwise its class and SQLSTATE."""
    code = exc.sqlstate
    primary = exc.diag.message_primary or (str(exc).strip().splitlines() or [""])[0]
    if code is None and isinstance(exc, errors.OperationalError):
        return f"database connection lost or refused: {primary}", 4
    if code is None:  # raised by the client library itself: a defect of this tool
        return f"internal error ({type(exc).__name__}); please report it", 1
    if server_text_is_safe(code, exc.diag.context):
        return f"database error {code}: {primary}", 4
    if code in KNOWN_CONDITIONS:
        return f"database error {code}: {KNOWN_CONDITIONS[code]}", 4
    return (
        f"the database refused an operation ({type(exc).__name__}, SQLSTATE {code}); its "
        "message is not shown: it may quote personal data",
        4,
    )


class _Version(argparse.Action):
    """`--version`: the version looked up only when asked (not on every command's start)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"retention {_version()}")
        parser.exit()


def _version() -> str:
    """The installed distribution's version (what a DBA reports with a problem)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("retention")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    from retention.cli import (
        approve,
        archive,
        audit,
        check,
        demo,
        draft,
        grants,
        hold,
        intents,
        plan,
        report,
        run,
        scan,
        schema,
        service,
        store,
    )

    parser = argparse.ArgumentParser(
        prog="retention",
        description="Data-minimisation and retention enforcement for patient databases "
        "on PostgreSQL and MariaDB/MySQL.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML settings file (default: /etc/retention/retention.toml if present)",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for module in (
        check,
        plan,
        run,
        hold,
        intents,
        approve,
        audit,
        archive,
        scan,
        draft,
        report,
        grants,
        schema,
        service,
        store,
        demo,
    ):
        module.register(commands)
    return parser


def fail_usage(message: str, hint: str | None = None) -> None:
    raise UsageError(message, hint=hint)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["logger", "main"]
