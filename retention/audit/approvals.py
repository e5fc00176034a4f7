"""Approval of destructive phases (R1112-7: destruction is decided by the director after the
opinion of the medical-information physician).

An approval is an OpenSSH signature (`ssh-keygen -Y sign -n retention-approval`) by an
approver's own key over a short message naming a policy and the SHA-256 of its file's exact
content (see `message`). Who may approve, with which key, is the OpenSSH `allowed_signers` file
of setting `approvers_file`; each approver's role comes from setting `approver_roles`. The
signature is recorded in the audit trail (event `approval`), and verified again whenever it
counts: by `check`, `plan`, `run`, `report` and `audit verify`. A purge or archive phase runs
only with valid signatures by `required_approvals` distinct signers covering `required_roles`.
Editing the file changes its SHA-256 and so withdraws every approval.

A signature by an unknown or revoked key, over another content, made for another purpose,
repeated, or an approval without a signature (the free-text approvals of earlier versions)
counts for nothing, and is reported with the name it claims.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retention.audit.anchor import Anchor, read_heads
from retention.audit.seal import TrailKeys, trail_keys
from retention.audit.sshsig import (
    AllowedSigner,
    SignatureFormatError,
    find_signer,
    parse_signature,
    read_allowed_signers,
)
from retention.audit.trail import (
    SIGNED_COLUMNS,
    AuditTrail,
    Entry,
    Stored,
    Unlinked,
    chain_to,
    entry_problem,
)
from retention.engines import Connection, engine_of, sql
from retention.engines.rows import dict_row
from retention.errors import UsageError
from retention.policy.actions import SPECS
from retention.settings import Settings

# the actions that need approval: they remove whole records
DESTRUCTIVE = tuple(n for n, s in SPECS.items() if s.removes_records)
NAMESPACE = "retention-approval"


def message(policy: str, sha256: str) -> bytes:
    """What an approver signs: the policy's name and its file's SHA-256."""
    return f"retention approval v1\npolicy: {policy}\nsha256: {sha256}\n".encode()


@dataclass(frozen=True)
class Rules:
    """Who may approve: the allowed_signers lines (None: no file is configured), each
    principal's role, the roles that must sign and the number of distinct signers; `keys`:
    the trail's public keys, which an approval's own audit entry must verify with (None: not
    checked)."""

    required: int
    signers: tuple[AllowedSigner, ...] | None = None
    roles: Mapping[str, str] = field(default_factory=dict)
    required_roles: tuple[str, ...] = ()
    keys: TrailKeys | None = None
    head_file: Path | None = None  # its lines shorten the walk that links an approval in
    signed_from: int | None = None  # setting audit_signed_from (see trail.chain_to)


def rules(
    required: int,
    approvers_file: Path | None,
    roles: Mapping[str, str] | None = None,
    required_roles: Sequence[str] = (),
    keys: TrailKeys | None = None,
) -> Rules:
    signers = read_allowed_signers(approvers_file) if approvers_file is not None else None
    return Rules(required, signers, dict(roles or {}), tuple(required_roles), keys)


@dataclass(frozen=True)
class Approval:
    """One approval entry and what it is worth: `problem` None when it counts."""

    by: str
    role: str
    at: datetime
    problem: str | None = None
    key: str | None = None

    @property
    def valid(self) -> bool:
        return self.problem is None

    @property
    def unsigned(self) -> bool:
        return self.problem == UNSIGNED

    def describe(self) -> str:
        said = f"{self.by} ({self.role})" if self.role else self.by
        return said if self.valid else f"{said}: {self.problem}"


UNSIGNED = "unsigned"


@dataclass(frozen=True)
class ApprovalState:
    """Approvals of one policy version against the number and roles required."""

    policy: str
    sha256: str
    approvals: tuple[Approval, ...]
    required: int
    required_roles: tuple[str, ...] = ()
    configured: bool = True  # an approvers file is set

    @property
    def counted(self) -> tuple[Approval, ...]:
        return tuple(a for a in self.approvals if a.valid)

    @property
    def missing_roles(self) -> tuple[str, ...]:
        held = {a.role for a in self.counted}
        return tuple(r for r in self.required_roles if r not in held)

    @property
    def approved(self) -> bool:
        if self.required == 0:
            return True
        return len(self.counted) >= self.required and not self.missing_roles

    def describe(self) -> str:
        if self.required == 0:
            return "approval not required"
        people = ", ".join(a.describe() for a in self.counted) or "nobody"
        state = "approved" if self.approved else "NOT approved"
        text = (
            f"{state}: {len(self.counted)}/{self.required} valid signature(s) of this version, "
            f"by {people}"
        )
        if self.missing_roles:
            text += f"; no valid signature by the role(s) {', '.join(self.missing_roles)}"
        rejected = [a.describe() for a in self.approvals if not a.valid]
        if rejected:
            text += "; not counted: " + "; ".join(rejected)
        if not self.configured:
            text += "; no approvers are configured (setting approvers_file)"
        return text


def record_approval(
    conn: Connection,
    trail: AuditTrail,
    policy: str,
    sha256: str,
    signer: str,
    role: str,
    signature: str,
) -> Stored:
    """Record a signature (already checked by the caller) in the trail."""
    key = parse_signature(signature).fingerprint
    return trail.record(
        conn,
        Entry(
            event="approval",
            outcome="signed",
            policy=policy,
            policy_sha256=sha256,
            detail={"by": signer, "role": role, "key": key, "signature": signature},
        ),
    )


def judge(
    rules_: Rules, policy: str, sha256: str, by: str, signature: object, at: datetime
) -> str | None:
    """Why a signature by `by` of (policy, sha256) counts for nothing; None when it counts."""
    if not signature:
        return UNSIGNED
    if not isinstance(signature, str):  # written into the table by hand
        return "the signature is not text"
    try:
        parsed = parse_signature(signature)
    except SignatureFormatError as exc:
        return str(exc)
    if rules_.signers is None:
        return "no approvers file to check it with"
    line = find_signer(rules_.signers, by, parsed.public_key)
    if line is None:
        other = next((s for s in rules_.signers if s.key == parsed.public_key), None)
        if other is not None:
            return f"signed with the key of another approver ({parsed.fingerprint})"
        return f"signed with an unknown key {parsed.fingerprint}"
    if not line.allows(NAMESPACE):
        return f"the key may not sign approvals (namespaces of line {line.line})"
    expired = line.validity_problem(at)
    if expired is not None:
        return expired
    problem = parsed.problem(NAMESPACE, message(policy, sha256))
    if problem == "the signature does not match":
        return "the signature is not of this policy content (another version, or forged)"
    return problem


def _detail(value: object) -> dict[str, Any]:
    """An approval entry's detail; an object only (anything else was written by hand).
    MariaDB gives a JSON column as its text (LONGTEXT): decoded here, where approvals read it."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _at(conn: Connection, value: datetime) -> datetime:
    """When an entry was recorded, in the session's zone as PostgreSQL gives a timestamptz;
    MariaDB's DATETIME(6) holds UTC without a zone."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC).astimezone(conn.info.timezone)
    return value


def approval_state(
    conn: Connection,
    schema: str,
    policy: str,
    sha256: str,
    rules_: Rules,
) -> ApprovalState:
    """The approvals of one policy version, each judged now; with the rules' `keys`, an
    approval's audit entry must also carry a valid trail signature (an entry inserted through
    the database alone counts for nothing)."""
    rows: list[dict[str, Any]] = []
    if engine_of(conn).catalogue.table_exists(conn, schema, "audit"):
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                sql.SQL(
                    "SELECT {} FROM {} WHERE event = 'approval' "
                    "AND policy = %s AND policy_sha256 = %s ORDER BY seq"
                ).format(
                    sql.SQL(", ").join(map(sql.Identifier, SIGNED_COLUMNS)),
                    sql.Identifier(schema, "audit"),
                ),
                (policy, sha256),
            ).fetchall()
    now = datetime.now(UTC)
    approvals: list[Approval] = []
    unlinked = _unlinked(conn, schema, rows, rules_)
    for row in rows:
        detail = _detail(row["detail"])
        by = str(detail.get("by") or detail.get("signer") or "?")
        problem = judge(rules_, policy, sha256, by, detail.get("signature"), now)
        if problem is None and rules_.keys is not None:
            forged = entry_problem(row, rules_.keys)
            problem = f"its audit entry is forged ({forged})" if forged else None
        if problem is None and unlinked is not None and int(row["seq"]) >= unlinked.seq:
            problem = (
                f"its audit entry is not linked into this trail (at entry {unlinked.seq}: "
                f"{unlinked.problem}): copied from another trail, or the trail was changed"
            )
        # the key, read from the signature that verified (not the entry's own say)
        key = parse_signature(detail["signature"]).fingerprint if problem is None else None
        if problem is None and any(a.valid and a.by == by for a in approvals):
            problem = f"a repeated signature by {by} (counted once)"
        same_key = next((a for a in approvals if a.valid and key and a.key == key), None)
        if problem is None and same_key is not None:
            # one key listed under several principals (or a wildcard) is one signer
            problem = f"signed with the key {key}, already counted under {same_key.by}"
        role = rules_.roles.get(by, "") if problem is None else ""  # a claimed role is no role
        at = _at(conn, row["recorded_at"])
        approvals.append(Approval(by, role, at, problem, key or detail.get("key")))
    return ApprovalState(
        policy,
        sha256,
        tuple(approvals),
        rules_.required,
        rules_.required_roles,
        rules_.signers is not None,
    )


def rules_of(settings: Settings) -> Rules:
    """The approval rules of the settings, with the trail's public keys and head file."""
    found = rules(
        settings.required_approvals,
        settings.approvers_file,
        settings.approver_roles,
        settings.required_roles,
        trail_keys(settings.audit_public_keys, settings.audit_signing_key),
    )
    return replace(
        found, head_file=settings.audit_head_file, signed_from=settings.audit_signed_from
    )


def _unlinked(
    conn: Connection, schema: str, rows: Sequence[Mapping[str, Any]], rules_: Rules
) -> Unlinked | None:
    """Where the chain leading to the last of these approval entries breaks, if it does (with
    the trail's public keys only: without them nothing is signed to link). An entry valid in
    itself, signed by the approver and by a trail key, was counted even when copied from
    another trail signed with the same key (a staging copy): it must follow this trail's
    entries, from the last one the head file records before it, or from the first."""
    if rules_.keys is None or not rows:
        return None
    anchors: list[Anchor] = []
    if rules_.head_file is not None:
        try:
            heads = read_heads(rules_.head_file, conn.info.dbname, schema)
        except UsageError:  # unreadable by this account: the walk starts at the first entry
            heads = None
        anchors = heads.anchors if heads is not None else []
    last = max(int(r["seq"]) for r in rows)
    return chain_to(conn, schema, last, rules_.keys, anchors, rules_.signed_from)


@dataclass(frozen=True)
class Recorded:
    """An approval entry of the trail as `audit verify` judges it: `problem` None when its
    signature verifies (with the approver keys valid when it was recorded); `before_signing`
    for the free-text approvals written before entries were signed."""

    seq: int
    policy: str
    by: str
    problem: str | None
    before_signing: bool


def recorded_approvals(conn: Connection, schema: str, rules_: Rules) -> list[Recorded]:
    """Every approval entry of the trail, judged against the approvers file. An unsigned entry
    before the first signed one was written before signing began; any later one is forged."""
    table = sql.Identifier(schema, "audit")
    row = conn.execute(
        sql.SQL("SELECT min(seq) FROM {} WHERE sig_key IS NOT NULL").format(table)
    ).fetchone()
    signing_began = int(row[0]) if row and row[0] is not None else None
    out = []
    for seq, policy, sha, detail, at in conn.execute(
        sql.SQL(
            "SELECT seq, policy, policy_sha256, detail, recorded_at FROM {} "
            "WHERE event = 'approval' ORDER BY seq"
        ).format(table)
    ):
        said = _detail(detail)
        by = str(said.get("by") or "?")
        problem = judge(rules_, str(policy), str(sha), by, said.get("signature"), _at(conn, at))
        before = signing_began is None or int(seq) < signing_began
        out.append(Recorded(int(seq), str(policy), by, problem, before))
    return out
