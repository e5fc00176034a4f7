"""The demo's archive step: a copy of the medical-record policy with an intermediate-archiving
phase, a custodian key pair made on the spot, one run, the archive list, and the restore of one
patient by the custodian.

Part of the `demo` command, beside it: it replays the `run` and `archive` commands, so it lives
with them (the demo package below holds the data, the schema, the keys and the server)."""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
from pathlib import Path
from typing import Any

import pyrage
from pydantic import SecretStr

from retention.audit.writer import audit_keys
from retention.cli import archive as archive_cli
from retention.cli.common import trail
from retention.cli.plan import render_plan
from retention.cli.run import render_report
from retention.demo.keys import sign_as_demo_approvers
from retention.engine.outcome import RunOptions
from retention.engine.progress import LogReporter
from retention.engines import Connection, sql
from retention.engines.clock import clock_sql
from retention.keys import load_key
from retention.plan.clock import clock_query
from retention.plan.compute import compute_plan
from retention.policy.check import bound_policies
from retention.service.run import RunKeys, run_policies
from retention.settings import Settings
from retention.store.schema import holds_table

ARCHIVE_PHASE = """\
  - name: archivage
    description: Archivage intermédiaire, 5 ans après la dernière venue
    due: derniere_venue + 5 years
    action: archive
"""


def archive_and_restore(conn: Connection, settings: Settings, url: str, folder: Path) -> None:
    """Archive the patients not seen for 5 years, then restore one of them."""
    print("\n== intermediate archiving (policy copy with a phase 'archive' at 5 years)")
    identity = pyrage.x25519.Identity.generate()
    key_file = folder / "keys" / "custodian.key"
    key_file.write_text(str(identity) + "\n", encoding="ascii")
    key_file.chmod(0o600)
    archives = folder / "archives"
    shutil.rmtree(archives, ignore_errors=True)
    archives.mkdir(parents=True)
    policies = _policies_with_archive(settings.policies_dir, folder / "policies-archive")
    config = settings.model_copy(
        update={
            "policies_dir": policies,
            "archive_dir": archives,
            "archive_recipients": (str(identity.to_public()),),
            "database_url": SecretStr(url),
        }
    )
    record = bound_policies(conn, policies, only="dossier-medical")
    print(
        f"  custodian key pair made; the host keeps only the public key "
        f"({str(identity.to_public())[:16]}...)"
    )
    audit = trail(conn, config)
    sign_as_demo_approvers(
        conn,
        audit,
        folder / "keys",
        record[0].name,
        record[0].loaded.sha256,
        dict(config.approver_roles),
    )
    subject = _first_due(conn, config, record[0])
    # what a compliance officer reads before: how many go, and how many without an end of
    # retention (their archives are never destroyed by themselves)
    print("\n== retention plan --policy dossier-medical (its archive phase)")
    plan = compute_plan(
        conn, record, config.today(), schema=config.schema_name, only_phase="archivage"
    )
    print(render_plan(plan, config.timezone))
    report = run_policies(
        conn,
        config,
        record,
        RunOptions(
            config.today(), allow_large=True, reason="demo: first archiving", command="demo"
        ),
        RunKeys(audit_keys(config), load_key(config.pseudonym_key, "p")),
        progress=LogReporter(every_seconds=60),
    )
    assert report is not None  # nothing to review: the run always happens
    print(render_report(report).lstrip("\n"))
    print("\n== retention archive list (first groups)")
    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):
        archive_cli._list(argparse.Namespace(all=False, policy=None), config)
    lines = listing.getvalue().splitlines()
    print("\n".join(lines[:6]))
    if len(lines) > 6:
        print(f"  ... {len(lines) - 1} groups in all (one per month of retain_until)")
    if subject is None:
        return
    print(
        "\n== retention archive restore --subject <one archived patient> "
        "--identity custodian.key --into-database"
    )
    archive_cli._restore(
        argparse.Namespace(
            subject=str(subject),
            identity=key_file,
            policy="dossier-medical",
            into_database=True,
            to=None,
        ),
        config,
    )


def _policies_with_archive(source: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    path = target / "dossier-medical.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("phases:\n", "phases:\n" + ARCHIVE_PHASE, 1), encoding="utf-8")
    return target


def _first_due(conn: Connection, settings: Settings, policy: Any) -> Any:
    phase = policy.phase("archivage")
    clock = clock_query(
        policy,
        phase,
        settings.today(),
        holds_table=holds_table(conn, settings.schema_name),
        dialect=clock_sql(conn),
    )
    row = conn.execute(
        sql.SQL("SELECT min(k) FROM ({}) AS c WHERE is_due").format(clock.query), clock.params
    ).fetchone()
    return row[0] if row else None
