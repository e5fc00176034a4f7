"""Helpers for tests that execute policies with the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import threading
from datetime import date
from pathlib import Path
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from retention.audit.seal import load_signer
from retention.audit.trail import SIGNED_COLUMNS, AuditTrail
from retention.audit.writer import AuditKeys, open_trail
from retention.engine.outcome import RunOptions, RunReport
from retention.engine.progress import LogReporter, Reporter
from retention.engines import Connection, engine_of
from retention.keys import load_key
from retention.policy.check import bound_policies
from retention.service.run import RunKeys, run_policies
from retention.settings import Settings
from retention.store.schema import migrate
from tests import cli_zygote
from tests.key_helpers import APPROVERS_FILE, AUDIT_SIGNING_KEY, ROLES

PSEUDONYM_KEY = "a1" * 32
AUDIT_KEY = "b2" * 32
ROOT = Path(__file__).resolve().parent.parent


def settings(url: str, policies: Path = ROOT / "policies", **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": SecretStr(url),
        "policies_dir": policies,
        "pseudonym_key": SecretStr(PSEUDONYM_KEY),
        "audit_key": SecretStr(AUDIT_KEY),
        "audit_signing_key": SecretStr(AUDIT_SIGNING_KEY),
        "required_approvals": 0,  # the approval tests set it
        "batch_seconds": 0,  # batches of batch_size whatever the load (tests/test_pace.py)
        "approvers_file": APPROVERS_FILE,
        "approver_roles": ROLES,
        **extra,
    }
    return Settings(**values)


def insert_audit_row(conn: Connection, row: dict[str, Any], schema: str = "retention") -> None:
    """A row into the audit table as it is (forgeries: what an account with INSERT can do).
    JSON columns as documents; on MariaDB the digests' array is a JSON column too."""
    arrays_are_json = engine_of(conn).name != "postgresql"
    values = {
        k: Jsonb(v)
        if k in ("rows", "actor", "detail") or (arrays_are_json and isinstance(v, list))
        else v
        for k, v in row.items()
        if k in SIGNED_COLUMNS
    }
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(schema, "audit"),
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder(k) for k in values),
        ),
        values,
    )


def write_policy(folder: Path, text: str, name: str = "p.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def audit_keys(config: Settings) -> AuditKeys:
    assert config.audit_key is not None
    return AuditKeys(load_key(config.audit_key, "audit_key"), load_signer(config.audit_signing_key))


def trail(conn: Connection, config: Settings) -> AuditTrail:
    return open_trail(conn, config.schema_name, audit_keys(config))


def run(
    conn: Connection,
    config: Settings,
    *,
    only: str | None = None,
    phase: str | None = None,
    at: date | None = None,
    allow_large: bool = True,
    stop: threading.Event | None = None,
    progress: Reporter | None = None,
) -> RunReport:
    migrate(conn, config.schema_name)
    policies = bound_policies(conn, config.policies_dir, only=only)
    assert config.pseudonym_key is not None
    keys = RunKeys(audit_keys(config), load_key(config.pseudonym_key, "pseudonym_key"))
    options = RunOptions(at or date.today(), phase, allow_large, "test" if allow_large else None)
    report = run_policies(
        conn, config, policies, options, keys, stop=stop, progress=progress or LogReporter()
    )
    assert report is not None
    return report


def cli_env(url: str | None, policies: Path = ROOT / "policies", **extra: str) -> dict[str, str]:
    """The environment of a `retention` subprocess: this machine's, without RETENTION_*
    settings, plus test keys, the policies and `extra` (approvals off unless set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    if url is not None:
        env["RETENTION_DATABASE_URL"] = url
    env.update(
        RETENTION_AUDIT_KEY=AUDIT_KEY,
        RETENTION_PSEUDONYM_KEY=PSEUDONYM_KEY,
        RETENTION_POLICIES_DIR=str(policies),
        RETENTION_REQUIRED_APPROVALS="0",
        RETENTION_BATCH_SECONDS="0",  # batches of batch_size whatever the load (test_pace.py)
        RETENTION_AUDIT_SIGNING_KEY=AUDIT_SIGNING_KEY,
        RETENTION_APPROVERS_FILE=str(APPROVERS_FILE),
        RETENTION_APPROVER_ROLES=json.dumps(ROLES),
    )
    env.update(extra)
    return env


def cli(
    url: str | None,
    *args: str,
    policies: Path = ROOT / "policies",
    timeout: float = 300,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """Run `retention ARGS` as a user would, in a process of its own (tests/cli_zygote.py)."""
    return cli_zygote.run(list(args), cli_env(url, policies, **extra), timeout=timeout)
