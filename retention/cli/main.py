"""The `retention` command: argument parsing and the mapping of errors to exit codes.

Exit codes: 0 success, 1 internal error, 2 invalid input (arguments, settings, policies),
3 coverage gaps, 4 database unreachable, in an unexpected state or refusing an operation,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
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
    parser = _parser(argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):  # a command _command did not see: build them all
        args = _parser([]).parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_settings(args.config, policies_dir=getattr(args, "policies", None))
        setup_logging(settings.log_level, settings.log_format, settings.audit_log)
        handler: Handler = args.handler
        return handler(args, settings)
    except RetentionError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except errors.Error as exc:  # last resort: an error no command turned into a message
        altered = _altered_schema(exc, settings)
        if altered is not None:
            print(altered.render(), file=sys.stderr)
            return altered.exit_code
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


_PRIVILEGE = "42501"  # insufficient privilege (MariaDB 1044, 1142... translated to it)
# An outside review: an account with SELECT only got 'Access denied ... to database' from
# `plan`, which needed CREATE TEMPORARY TABLES, and no word of it.
_PRIVILEGE_HINT = (
    "this account lacks a privilege the command needs; `retention grants --role ROLE` prints "
    "what the tool's roles need (plan, run and report also create temporary tables: CREATE "
    "TEMPORARY TABLES on MariaDB/MySQL, TEMPORARY on PostgreSQL)"
)


# a column or a table the statement named is not there (MariaDB's 1054 and 1146 translated)
_UNDEFINED = ("42703", "42P01")


def _altered_schema(exc: errors.Error, settings: Settings | None) -> RetentionError | None:
    """A command stopped because the tool's own tables were changed by hand (a column dropped
    or renamed, a table dropped): the error that says so, else None. Looked for only after
    such an error, on a connection of its own; whatever stops the look leaves the error as
    it was."""
    if exc.sqlstate not in _UNDEFINED or settings is None:
        return None
    from retention.db import connect
    from retention.store import schema as own

    # what the database said too (it names a column or a table, never a value): the cause may
    # be the application's table after all
    primary = exc.diag.message_primary
    safe = primary and server_text_is_safe(exc.sqlstate, exc.diag.context)
    said = f" (the database said: {primary})" if safe else ""
    try:
        with connect(settings) as conn:
            name = settings.schema_name
            if not _installed(conn, name):
                return None
            pending = own.pending_migrations(conn, name)
            if pending:  # a tool upgraded without its `init`: not a change by hand
                return own.not_upgraded_error(name, pending, said)
            if pending is None:  # which migrations were applied is unknown here
                return None
            problems = own.altered_tables(conn, name) + [
                f"{name}.{table} is missing" for table in own.missing_tables(conn, name)
            ]
    except Exception:  # the original error is the one to show then
        return None
    if not problems:
        return None
    return own.altered_error(settings.schema_name, problems, init=False, said=said)


def _installed(conn: Any, schema: str) -> bool:
    """Whether the tool's schema is there at all (its version table)."""
    from retention.engines import engine_of

    return bool(engine_of(conn).catalogue.table_exists(conn, schema, "schema_version"))


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
    # the privilege hint after the same choice of text as any error: a function's or a
    # trigger's RAISE ... USING ERRCODE = '42501' may quote a row (server_text_is_safe)
    hint = f"\n  hint: {_PRIVILEGE_HINT}" if code == _PRIVILEGE else ""
    if server_text_is_safe(code, exc.diag.context):
        return f"database error {code}: {primary}{hint}", 4
    if code in KNOWN_CONDITIONS:
        return f"database error {code}: {KNOWN_CONDITIONS[code]}{hint}", 4
    return (
        f"the database refused an operation ({type(exc).__name__}, SQLSTATE {code}); its "
        f"message is not shown: it may quote personal data{hint}",
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


# Every command: its module in retention.cli and its line in `retention --help`, in that order.
# Only the module of the command given is imported (each brings what it uses: policies and
# their expression language, the audit trail, the report...); the others are listed by name.
_COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("check", "validate policy files (schema and live catalogue)"),
    "plan": ("plan", "show what is due, per policy and phase (writes nothing)"),
    "run": ("run", "execute the due phases (short audited batches)"),
    "hold": ("hold", "legal holds: add, release, list"),
    "intents": ("intents", "batches cut short on tables without transactions: list, release"),
    "approve": ("approve", "sign a policy version's purge/archive phases"),
    "audit": ("audit", "verify and read the audit trail"),
    "archive": ("archive", "encrypted archives: list, verify, restore"),
    "scan": ("scan", "find personal data in every column and store the inventory"),
    "draft": (
        "draft",
        "propose a commented policy for a subject table (relations, dates, personal columns)",
    ),
    "report": (
        "report",
        "the compliance report: exposure, inventory, forecast, history (HTML or JSON)",
    ),
    "exposure": ("report", "what a breach of the live database would expose today (counts only)"),
    "grants": ("grants", "print the minimal SQL privileges for the daemon's role"),
    "schema": (
        "schema",
        "print the JSON Schema of policy files (editor completion and validation)",
    ),
    "daemon": ("service", "run on the configured schedule until stopped"),
    "init": ("store", "create or upgrade the tool's schema (run once as the owner)"),
    "demo": ("demo", "run the tool on a generated hospital database"),
}


class _Commands:
    """What a command module's `register` adds its parsers to: the subparsers, with each
    command's one-line help taken from _COMMANDS."""

    def __init__(self, subparsers: Any) -> None:
        self._subparsers = subparsers

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._subparsers.add_parser(
            name, help=_COMMANDS[name][1], **kwargs
        )
        return parser


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. With `argv`, only the command it names is built in full;
    without (or naming none), every command is (`retention --help` lists them all alike)."""
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
    subparsers = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    commands = _Commands(subparsers)
    named = _command(sys.argv[1:] if argv is None else argv)
    for name, (module, help_text) in _COMMANDS.items():
        if name in subparsers.choices:
            continue
        if named is None or _COMMANDS[named][0] == module:
            importlib.import_module(f"retention.cli.{module}").register(commands)
        else:  # listed, never parsed: its module is not imported
            subparsers.add_parser(name, help=help_text)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command `argv` names (its first word that is neither an option of `retention`
    itself nor `--config`'s value), or None when it names none that exists. argparse takes
    any unambiguous beginning of an option's name (`--conf FILE`) and `--config=FILE`."""
    words = iter(argv)
    for word in words:
        if word == "--":
            after = next(words, "")
            return after if after in _COMMANDS else None
        if len(word) >= 3 and "--config".startswith(word):
            next(words, None)  # its value, whatever it is
        elif not word.startswith("-"):
            return word if word in _COMMANDS else None
    return None


def fail_usage(message: str, hint: str | None = None) -> None:
    raise UsageError(message, hint=hint)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["logger", "main"]
