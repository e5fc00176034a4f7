"""`retention report` (the compliance report, HTML or JSON) and `retention exposure` (its first
section's figures, in the terminal). Both read only; French labels unless `--lang en`."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from retention.audit.anchor import Anchor, read_heads
from retention.audit.approvals import rules_of
from retention.cli.options import add_policies_option, iso_date
from retention.db import connect
from retention.engines import Connection
from retention.errors import RetentionError, UsageError
from retention.policy.bound import BoundPolicy
from retention.policy.check import bound_policies
from retention.report import labels
from retention.settings import Settings

if TYPE_CHECKING:
    from retention.report.build import Report
    from retention.report.exposure import Exposure


class ReportError(RetentionError):
    """The report cannot be written where asked."""

    exit_code = 2


def register(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        description="Write one self-contained HTML page (no script, font or link outside the "
        "file; printable) or its figures as JSON: what a breach would expose today and after "
        "each past run, the inventory of personal data and its coverage, the subjects each "
        "phase will act on over the next 24 months, and the history of runs and approvals. "
        "Reads only.",
    )
    add_policies_option(report)
    report.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="write to FILE (default: stdout)"
    )
    report.add_argument("--format", choices=("html", "json"), default="html")
    _common(report, iso_date)
    report.set_defaults(handler=run_report)

    exposure = commands.add_parser(
        "exposure",
        description="The first section of the report in the terminal: data subjects in the "
        "live database, carrying direct identifiers, past their legal retention, keeping "
        "contact data beyond minimisation, in archives, held, undeterminable. Reads only.",
    )
    add_policies_option(exposure)
    exposure.add_argument("--format", choices=("text", "json"), default="text")
    _common(exposure, iso_date)
    exposure.set_defaults(handler=run_exposure)


def _common(parser: argparse.ArgumentParser, iso_date: Any) -> None:
    parser.add_argument(
        "--lang",
        choices=labels.LANGUAGES,
        default=labels.DEFAULT_LANGUAGE,
        help="labels in French (default) or English",
    )
    parser.add_argument(
        "--at",
        type=iso_date,
        default=None,
        metavar="DATE",
        help="read the clocks as of DATE (default: today in the settings' time zone)",
    )


def run_report(args: argparse.Namespace, settings: Settings) -> int:
    from retention.report.html import render_html

    at = args.at or settings.today()
    with connect(settings) as conn:
        policies = bound_policies(conn, settings.policies_dir, tool_schema=settings.schema_name)
        report = make_report(conn, settings, policies, at)
    text = (
        json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
        if args.format == "json"
        else render_html(report, args.lang)
    )
    if args.out is None:
        print(text, end="")
        return 0
    write_file(args.out, text)
    print(f"report written to {args.out}")
    return 0


def run_exposure(args: argparse.Namespace, settings: Settings) -> int:
    from retention.report.exposure import compute_exposure
    from retention.report.text import render_exposure

    at = args.at or settings.today()
    with connect(settings) as conn:
        policies = bound_policies(conn, settings.policies_dir, tool_schema=settings.schema_name)
        exposure = compute_exposure(conn, policies, at, schema=settings.schema_name)
    if args.format == "json":
        print(json.dumps(exposure.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render_exposure(exposure, args.lang, settings.timezone))
    return 0


def make_report(
    conn: Connection, settings: Settings, policies: list[BoundPolicy], at: Any
) -> Report:
    from retention.report.build import build_report

    return build_report(
        conn,
        policies,
        at,
        schema=settings.schema_name,
        timezone=settings.timezone,
        approvals=rules_of(settings),
        anchors=_head_anchors(conn, settings),
    )


def _head_anchors(conn: Connection, settings: Settings) -> list[Anchor] | None:
    """The head file's entries for this database, so that the report's audit check sees what
    `audit verify` sees; None without a readable head file (the report says so)."""
    if settings.audit_head_file is None:
        return None
    try:
        heads = read_heads(settings.audit_head_file, conn.info.dbname, settings.schema_name)
    except RetentionError as exc:
        logger.warning("report: the audit head file is not used: {}", exc.message)
        return None
    return None if heads is None else heads.anchors


def write_file(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (a temporary file in the same folder, renamed)."""
    if path.is_dir():
        raise UsageError(f"--out {path} is a directory", hint="give a file name, e.g. report.html")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=".report-", dir=folder)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        raise ReportError(
            f"cannot write the report to {path}: {exc.strerror or exc}",
            hint="check that the folder exists and is writable",
        ) from None


# -- the demo's steps -------------------------------------------------------------------------
def demo_exposure_before(
    conn: Connection, settings: Settings, policies: list[BoundPolicy]
) -> Exposure:
    """The exposure before the demo's run, printed and stored as the trend's first point."""
    from retention.report.exposure import compute_exposure
    from retention.report.snapshots import installed as snapshots_installed
    from retention.report.snapshots import save_snapshot
    from retention.report.text import render_exposure

    exposure = compute_exposure(conn, policies, settings.today(), schema=settings.schema_name)
    if snapshots_installed(conn, settings.schema_name):
        save_snapshot(conn, settings.schema_name, exposure)
    print("\n== retention exposure, before the run")
    print(render_exposure(exposure, "en", settings.timezone))
    return exposure


def demo_report(
    conn: Connection,
    settings: Settings,
    policies: list[BoundPolicy],
    before: Exposure,
    path: Path,
) -> Path:
    """After the demo's run: the exposure before and after, and the report written to `path`."""
    from retention.report.exposure import compute_exposure
    from retention.report.html import render_html
    from retention.report.text import render_comparison

    after = compute_exposure(conn, policies, settings.today(), schema=settings.schema_name)
    print("\n== retention exposure: before and after the run")
    print(render_comparison(before, after, "en", ("before", "after")))
    report = make_report(conn, settings, policies, settings.today())
    write_file(path, render_html(report))
    print(f"\n== retention report --out {path}")
    print(f"report written to {path.resolve()} (open it in a browser; it prints to PDF)")
    return path
