"""A run's archive session: checked settings, reconciliation and expiry at the start of the run,
then what each `archive` batch needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from retention.archive import catalog
from retention.archive.errors import ArchiveConfigError
from retention.archive.expiry import expire
from retention.archive.keys import parse_recipients
from retention.archive.model import ArchiveFile
from retention.archive.reconcile import reconcile
from retention.archive.storage import LocalStorage
from retention.archive.writer import Target, archive_batch
from retention.audit.trail import AuditTrail
from retention.engines import Connection, sql
from retention.plan.model import Plan
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.settings import Settings
from retention.store.holds import Person
from retention.store.schema import holds_table


@dataclass(frozen=True)
class ArchiveSession:
    """Where this run's `archive` batches write, and the run's date and holds."""

    target: Target
    at: date
    run_id: UUID
    holds: sql.Composable | None

    def archive(
        self,
        conn: Connection,
        policy: BoundPolicy,
        phase: BoundPhase,
        keys: Sequence[Any],
        ends: Mapping[Any, date | None] | None = None,
        digests: Mapping[Any, str] | None = None,
    ) -> ArchiveFile:
        """Archive `keys`; `ends`: their end of retention, when the batch's re-check computed
        it (otherwise computed here); `digests`: their keyed digests, when already computed."""
        return archive_batch(
            conn,
            self.target,
            policy,
            phase,
            keys,
            at=self.at,
            holds=self.holds,
            run_id=self.run_id,
            ends=ends,
            digests=digests,
        )


def archives_due(plan: Plan) -> bool:
    return any(
        phase.action == "archive" and phase.due_subjects > 0
        for policy in plan.policies
        for phase in policy.phases
    )


def prepare_archives(
    conn: Connection,
    settings: Settings,
    trail: AuditTrail,
    plan: Plan,
    at: date,
    run_id: UUID,
    *,
    expire_groups: bool = True,
    subjects: Mapping[str, Person] | None = None,
) -> ArchiveSession | None:
    """Check the archive settings (before anything changes), reconcile interrupted batches,
    destroy expired groups; the session for `archive` batches, or None if none is due.
    `subjects`: every loaded policy's subject, for the holds on persons (see expiry.Holds)."""
    due = archives_due(plan)
    if settings.archive_dir is None:
        if due:
            raise ArchiveConfigError(
                "an archive phase is due but archive_dir is not set; nothing was changed",
                hint="set archive_dir (a local directory) and archive_recipients (age public "
                "keys), see docs/ARCHIVE.md",
            )
        return None
    recipients = tuple(settings.archive_recipients)
    if due:
        parse_recipients(recipients)
    storage = LocalStorage.open(settings.archive_dir)
    catalog.require(conn, settings.schema_name)
    reconcile(conn, storage, trail, settings.schema_name, run_id)
    if expire_groups:
        expire(conn, storage, trail, settings.schema_name, at, run_id, subjects)
    if not due:
        return None
    target = Target(storage, recipients, settings.archive_group, settings.schema_name, trail)
    return ArchiveSession(target, at, run_id, holds_table(conn, settings.schema_name))
