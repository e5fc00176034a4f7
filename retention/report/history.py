"""The history: runs, what each did per policy and action, incidents, the audit trail's
verification, and the policy versions with their approvals. Read from the tool's schema.

Free text typed by people (hold reasons, the reason given for overriding a limit) stays in the
audit trail: the report names the entry instead. Error messages are the server's primary
message only, as the runner records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

from retention.audit.anchor import Anchor
from retention.audit.approvals import Rules, judge
from retention.audit.trail import Verification, verify
from retention.engines import Connection, engine_of, sql
from retention.policy.bound import BoundPolicy
from retention.policy.expr import Params
from retention.report.moments import iso
from retention.report.stored import document, instant, run_id
from retention.store.schema import TrailMissingError

RUNS_SHOWN = 30
INCIDENTS_SHOWN = 50
INCIDENT_EVENTS = (
    "run_interrupted",
    "run_failed",
    "run_abandoned",
    "batch_failed",
    "batch_skipped",
    "phase_not_approved",
    "phase_refused",
    "limit_override",
    "limits_refused",
    "archive_reconciled",
    "archive_expiry_failed",
)
# Detail keys whose values are machine-made messages (never free text typed by someone).
_MESSAGE_KEYS = {"batch_failed": "error", "batch_skipped": "reason"}


@dataclass(frozen=True)
class PhaseWork:
    """What one run did for one policy phase: subjects and rows per table."""

    policy: str
    phase: str
    action: str
    subjects: int
    batches: int
    rows: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "phase": self.phase,
            "action": self.action,
            "subjects": self.subjects,
            "batches": self.batches,
            "rows": dict(self.rows),
        }


@dataclass(frozen=True)
class Run:
    run_id: UUID
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    command: str
    work: tuple[PhaseWork, ...] = ()

    @property
    def subjects(self) -> int:
        return sum(w.subjects for w in self.work)

    @property
    def rows(self) -> int:
        return sum(sum(w.rows.values()) for w in self.work)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": str(self.run_id),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "outcome": self.outcome,
            "command": self.command,
            "subjects": self.subjects,
            "rows": self.rows,
            "work": [w.to_json() for w in self.work],
        }


@dataclass(frozen=True)
class Incident:
    """An interruption, error, skipped batch, refusal or override, from the audit trail."""

    seq: int
    recorded_at: datetime
    event: str
    run_id: UUID | None
    policy: str | None
    phase: str | None
    message: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "recorded_at": iso(self.recorded_at),
            "event": self.event,
            "run_id": str(self.run_id) if self.run_id else None,
            "policy": self.policy,
            "phase": self.phase,
            "message": self.message,
        }


@dataclass(frozen=True)
class Approval:
    by: str
    role: str
    at: datetime
    problem: str | None = None  # why it does not count (unsigned, unknown key...); None: counts

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "role": self.role, "at": iso(self.at), "problem": self.problem}


@dataclass(frozen=True)
class PolicyVersion:
    """One content of a policy file (its SHA-256): when it acted, who approved it."""

    policy: str
    sha256: str
    current: bool
    first_seen: datetime | None
    last_seen: datetime | None
    batches: int
    approvals: tuple[Approval, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "sha256": self.sha256,
            "current": self.current,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "batches": self.batches,
            "approvals": [a.to_json() for a in self.approvals],
        }


@dataclass(frozen=True)
class History:
    installed: bool
    total_runs: int
    runs: tuple[Run, ...]
    incidents: tuple[Incident, ...]
    verification: Verification | None
    versions: tuple[PolicyVersion, ...]
    required_approvals: int
    outcomes: dict[str, int] = field(default_factory=dict)
    anchored: bool = False  # checked against the head file outside the database

    def to_json(self) -> dict[str, Any]:
        check = self.verification
        return {
            "installed": self.installed,
            "total_runs": self.total_runs,
            "outcomes": dict(self.outcomes),
            "runs": [r.to_json() for r in self.runs],
            "incidents": [i.to_json() for i in self.incidents],
            "audit": None
            if check is None
            else {
                "intact": check.intact,
                "checked": check.checked,
                "broken_seq": check.broken_seq,
                "problem": check.problem,
                "checked_against_head_file": self.anchored,
                "signatures_checked": check.keys is not None,
                "written_before_signing": check.unsigned,
            },
            "required_approvals": self.required_approvals,
            "policy_versions": [v.to_json() for v in self.versions],
        }


def read_history(
    conn: Connection,
    schema: str,
    policies: Sequence[BoundPolicy],
    *,
    approvals: Rules | None = None,
    runs_shown: int = RUNS_SHOWN,
    anchors: Sequence[Anchor] | None = None,
) -> History:
    """Everything the History section shows (empty while `retention init` has not run)."""
    current = {p.name: p.loaded.sha256 for p in policies}
    rules = approvals or Rules(0)
    required_approvals = rules.required
    present = {t for t in ("runs", "audit", "holds", "schema_version") if _exists(conn, schema, t)}
    if not {"runs", "audit"} <= present and present:
        # the schema is there, a table of its history is not (dropped, or not readable by
        # this account): an auditor must not read "not installed" (an outside review)
        if "audit" not in present:
            raise TrailMissingError(
                f"the audit trail {schema}.audit is missing, or this account cannot read it, "
                f"while the tool's other tables are in {schema}",
                hint="restore it from a backup; 'retention audit verify --head FILE' on the "
                "restored trail tells which entries the head file knew",
            )
        raise TrailMissingError(
            f"the run records {schema}.runs are missing, or this account cannot read them, "
            f"while the tool's other tables are in {schema}",
            hint="restore the table from a backup, or grant SELECT on it to this account",
        )
    if not {"runs", "audit"} <= present:
        versions = tuple(PolicyVersion(n, s, True, None, None, 0) for n, s in current.items())
        return History(False, 0, (), (), None, versions, required_approvals)
    audit = sql.Identifier(schema, "audit")
    runs = _runs(conn, sql.Identifier(schema, "runs"), audit, runs_shown)
    return History(
        installed=True,
        total_runs=_count(
            conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "runs"))
        ),
        runs=runs,
        incidents=_incidents(conn, audit),
        verification=verify(conn, schema, anchors or (), rules.keys),
        anchored=bool(anchors),
        versions=_versions(conn, audit, current, rules),
        required_approvals=required_approvals,
        outcomes=_outcomes(conn, sql.Identifier(schema, "runs")),
    )


def _exists(conn: Connection, schema: str, table: str) -> bool:
    return engine_of(conn).catalogue.table_exists(conn, schema, table)


def _count(conn: Connection, query: sql.Composed) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _outcomes(conn: Connection, runs: sql.Identifier) -> dict[str, int]:
    rows = conn.execute(
        sql.SQL("SELECT outcome, count(*) FROM {} GROUP BY 1 ORDER BY 1").format(runs)
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def _runs(
    conn: Connection, runs: sql.Identifier, audit: sql.Identifier, limit: int
) -> tuple[Run, ...]:
    found = conn.execute(
        sql.SQL(
            "SELECT run_id, started_at, ended_at, outcome, command FROM {} "
            "ORDER BY started_at DESC LIMIT %s"
        ).format(runs),
        (limit,),
    ).fetchall()
    work = _work(conn, audit, [r[0] for r in found])
    return tuple(
        Run(
            _run_id(r[0]),
            _instant(r[1]),
            instant(r[2]),
            r[3],
            r[4],
            tuple(work.get(_run_id(r[0]), ())),
        )
        for r in found
    )


def _one_of(expr: sql.Composable, values: Sequence[Any], params: Params) -> sql.Composable:
    """`expr` is one of `values` (each a parameter; false for none)."""
    if not values:
        return sql.SQL("1 = 0")
    return sql.SQL("{} IN ({})").format(expr, sql.SQL(", ").join(map(params.add, values)))


def _work(
    conn: Connection, audit: sql.Identifier, run_ids: list[Any]
) -> dict[UUID, list[PhaseWork]]:
    """Subjects, batches and rows per table of each run, policy and phase (batch entries)."""
    params = Params(prefix="w")
    totals = conn.execute(
        sql.SQL(
            "SELECT run_id, policy, phase, action, sum(subjects), count(*) FROM {} "
            "WHERE event = 'batch' AND {} GROUP BY 1, 2, 3, 4 ORDER BY 2, 3"
        ).format(audit, _one_of(sql.SQL("run_id"), run_ids, params)),
        params.values,
    ).fetchall()
    params = Params(prefix="r")
    counts = engine_of(conn).dialect.json_counts(sql.SQL("a.rows"), "r")
    rows: dict[tuple[Any, ...], dict[str, int]] = {}
    for run, policy, phase, table, count in conn.execute(
        sql.SQL(
            "SELECT a.run_id, a.policy, a.phase, {key}, sum({count}) "
            "FROM {audit} AS a CROSS JOIN {counts} "
            "WHERE a.event = 'batch' AND {runs} GROUP BY 1, 2, 3, 4 ORDER BY 4"
        ).format(
            key=counts.columns["key"],
            count=counts.columns["count"],
            audit=audit,
            counts=counts.source,
            runs=_one_of(sql.SQL("a.run_id"), run_ids, params),
        ),
        params.values,
    ):
        rows.setdefault((_run_id(run), policy, phase), {})[table] = int(count)
    out: dict[UUID, list[PhaseWork]] = {}
    for run, policy, phase, action, subjects, batches in totals:
        out.setdefault(_run_id(run), []).append(
            PhaseWork(
                policy,
                phase,
                action,
                int(subjects),
                int(batches),
                rows.get((_run_id(run), policy, phase), {}),
            )
        )
    return out


def _incidents(conn: Connection, audit: sql.Identifier) -> tuple[Incident, ...]:
    params = Params(prefix="i")
    detail = engine_of(conn).dialect.json_text
    found = conn.execute(
        sql.SQL(
            "SELECT seq, recorded_at, event, run_id, coalesce(policy, {}), coalesce(phase, {}), "
            "detail FROM {} WHERE {} ORDER BY seq DESC LIMIT {}"
        ).format(
            detail(sql.SQL("detail"), "policy"),
            detail(sql.SQL("detail"), "phase"),
            audit,
            _one_of(sql.SQL("event"), INCIDENT_EVENTS, params),
            params.add(INCIDENTS_SHOWN),
        ),
        params.values,
    ).fetchall()
    return tuple(
        Incident(
            seq, _instant(at), event, run_id(run), policy, phase, _message(event, document(text))
        )
        for seq, at, event, run, policy, phase, text in found
    )


def _message(event: str, detail: dict[str, Any]) -> str | None:
    if event in _MESSAGE_KEYS:
        value = detail.get(_MESSAGE_KEYS[event])
        return str(value) if value else None
    if event == "run_failed":
        errors = [str(e) for e in detail.get("errors", ()) if e]
        return "; ".join(errors) or None
    if event == "phase_not_approved":
        return f"{detail.get('approvals', 0)}/{detail.get('required', '?')}"
    if event == "limits_refused":
        phases = [str(p) for p in detail.get("phases", ()) if p]
        return "; ".join(phases) or None
    if event == "phase_refused" and detail.get("reason") == "non_transactional":
        tables = [str(t) for t in detail.get("tables", ()) if t]
        return f"{', '.join(tables)}: no transactions" if tables else None
    if event == "phase_refused":
        columns = [c for c in detail.get("columns", ()) if isinstance(c, dict)]
        return (
            "; ".join(
                f"{c.get('table')}.{c.get('column')}: {', '.join(map(str, c.get('classes', {})))}"
                for c in columns
            )
            or None
        )
    return None


def _versions(
    conn: Connection, audit: sql.Identifier, current: dict[str, str], rules: Rules
) -> tuple[PolicyVersion, ...]:
    seen = conn.execute(
        sql.SQL(
            "SELECT policy, policy_sha256, min(recorded_at), max(recorded_at), "
            "count(CASE WHEN event = 'batch' THEN 1 END) FROM {} "
            "WHERE policy IS NOT NULL AND policy_sha256 IS NOT NULL GROUP BY 1, 2"
        ).format(audit)
    ).fetchall()
    approvals: dict[tuple[str, str], list[Approval]] = {}
    now = datetime.now(UTC)
    detail = partial(engine_of(conn).dialect.json_text, sql.SQL("detail"))
    for policy, sha, by, role, signature, at in conn.execute(
        sql.SQL(
            "SELECT policy, policy_sha256, {}, {}, {}, recorded_at FROM {} "
            "WHERE event = 'approval' ORDER BY seq"
        ).format(detail("by"), detail("role"), detail("signature"), audit)
    ):
        problem = judge(rules, policy, sha, str(by), signature, now)
        approvals.setdefault((policy, sha), []).append(
            Approval(str(by), str(role or ""), _instant(at), problem)
        )
    versions = {
        (p, s): PolicyVersion(p, s, current.get(p) == s, instant(first), instant(last), int(n))
        for p, s, first, last, n in seen
    }
    for name, sha in current.items():
        versions.setdefault((name, sha), PolicyVersion(name, sha, True, None, None, 0))
    out = [
        PolicyVersion(
            v.policy,
            v.sha256,
            v.current,
            v.first_seen,
            v.last_seen,
            v.batches,
            tuple(approvals.get(key, ())),
        )
        for key, v in versions.items()
    ]
    return tuple(sorted(out, key=lambda v: (v.policy, not v.current, v.first_seen or _EPOCH)))


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def _instant(value: datetime) -> datetime:
    """A moment of a NOT NULL column, with its zone (see `stored.instant`)."""
    found = instant(value)
    assert found is not None
    return found


def _run_id(value: Any) -> UUID:
    """A NOT NULL run id (see `stored.run_id`)."""
    found = run_id(value)
    assert found is not None
    return found
