"""`retention audit verify|show|find`: the audit trail for auditors."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from retention.audit.anchor import Anchor, Copy, read_copy, read_heads
from retention.audit.approvals import UNSIGNED, Recorded, recorded_approvals, rules_of
from retention.audit.holds import describe, unmatched_holds
from retention.audit.trail import Verification, stored_content, subject_digest, verify
from retention.cli.common import audit_key, audit_key_if_set, public_keys
from retention.cli.options import iso_date
from retention.db import connect
from retention.engines import engine_for, engine_of, sql
from retention.engines.rows import dict_row
from retention.errors import UsageError
from retention.keys import Key
from retention.report.stored import document
from retention.settings import Settings
from retention.store.schema import require_installed

_SHOW = (
    "seq",
    "recorded_at",
    "event",
    "outcome",
    "policy",
    "phase",
    "action",
    "subjects",
    "rows",
    "policy_sha256",
    "run_id",
)


def register(commands: Any) -> None:
    parser = commands.add_parser("audit")
    sub = parser.add_subparsers(required=True, metavar="ACTION")
    check = sub.add_parser(
        "verify",
        help="recompute the hash chain (exit 0 intact, 1 broken)",
        description="Recompute the hash chain and check it against the entries known from "
        "outside the database: the head file each run writes (setting audit_head_file) and "
        "any copy of the audit log given with --against. Only those show that the last "
        "entries were removed, or that the whole chain was rewritten.",
    )
    check.add_argument(
        "--against",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a copy of the audit log (the audit_log file, or 'journalctl -u retention -o cat' "
        "output; '-' reads standard input); repeatable",
    )
    check.add_argument(
        "--head",
        type=Path,
        default=None,
        metavar="FILE",
        help="the head file to check, e.g. a copy kept off the host (default: setting "
        "audit_head_file)",
    )
    check.add_argument(
        "--trail",
        default=None,
        metavar="DATABASE",
        help="the database whose trail the head file and the copies name, when checking a "
        "copy restored under another name (default: the database connected to)",
    )
    check.set_defaults(handler=_verify)
    show = sub.add_parser("show", help="list entries")
    show.add_argument("--since", type=iso_date, default=None, metavar="DATE")
    show.add_argument("--policy", default=None, metavar="NAME")
    show.add_argument("--format", choices=("text", "json", "csv"), default="text")
    show.set_defaults(handler=_show)
    find = sub.add_parser("find", help="what happened to one subject under one policy")
    find.add_argument("--subject", required=True, metavar="KEY")
    find.add_argument("--policy", required=True, metavar="NAME")
    find.add_argument("--format", choices=("text", "json"), default="text")
    find.set_defaults(handler=_find)


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    anchors: list[Anchor] = []
    notes: list[str] = []
    if str(args.head) == "-" and any(str(p) == "-" for p in args.against):
        raise UsageError("standard input ('-') can be read once: give --head or --against it")
    if args.head is not None and str(args.head) != "-" and not _exists(args.head):
        raise UsageError(
            f"no audit head file at {args.head}",
            hint="give the path of the head file (setting audit_head_file; the systemd units "
            "use /var/lib/retention/audit-head.jsonl), or a copy of it",
        )
    with connect(settings) as conn:
        database = args.trail or conn.info.dbname
        head_path = args.head or settings.audit_head_file
        if head_path is not None:
            heads = read_heads(head_path, database, settings.schema_name)
            if args.head is not None and heads is not None and not heads.anchors:
                # given by hand, and of no use: said, not passed over in a note
                raise UsageError(
                    f"the head file {head_path} holds no line of the trail "
                    f"{database}.{settings.schema_name}",
                    hint=_other_trails(heads.trails),
                )
            notes.append(_heads(head_path, heads, anchors))
        for path in args.against:
            copy = read_copy(path, database, settings.schema_name)
            if not copy.anchors:
                raise UsageError(
                    f"{path} holds no audit entry of the trail {database}.{settings.schema_name}",
                    hint=_other_trails(copy.trails)
                    if copy.trails
                    else "give the audit_log file, or 'journalctl -u retention -u "
                    "retention-run -o cat' output",
                )
            anchors.extend(copy.anchors)
            left_out = f", {copy.describe()}" if copy.describe() else ""
            notes.append(f"copy {path}: {len(copy.anchors)} entries{left_out}")
        require_installed(conn, settings.schema_name)  # the files given first: the user's input
        keys = public_keys(settings)
        result = verify(conn, settings.schema_name, anchors, keys, settings.audit_signed_from)
        rules = rules_of(settings)
        approvals = (
            recorded_approvals(conn, settings.schema_name, rules)
            if rules.signers is not None
            else None
        )
        key = audit_key_if_set(settings)
        lost_holds = unmatched_holds(conn, settings.schema_name, key, keys)
        unguarded = engine_of(conn).own_schema.trigger_problems(conn, settings.schema_name)
    _print_verification(result, bool(anchors))
    for note in notes:
        print(f"  {note}")
    forged = _print_approvals(approvals, result.broken_seq)
    for problem in unguarded:
        print(f"  WARNING: {problem}")
    if lost_holds:
        print(f"  HOLDS: {describe(lost_holds)}")
    elif key is None:
        print("  note: holds compared with the trail by id only (the audit key is not set)")
    if not anchors:
        print(
            "  note: no entry of this trail is known from outside the database (head file, "
            "--against): removing the last entries would not be detected"
        )
    if result.unsigned and settings.audit_signed_from is None:
        print(
            f"  note: the first {result.unsigned} entries are not signed and taken for entries "
            "written before signing began; set audit_signed_from (1 on a trail signed from its "
            "start) so that a trail rewritten whole without signatures is refused"
        )
    return 0 if result.intact and not forged and not lost_holds else 1


def _print_approvals(approvals: list[Recorded] | None, broken: int | None) -> bool:
    """The approvals of the trail against the approvers file; whether one is forged. Those
    at or after the first broken entry (`broken`) are not counted: the chain does not lead to
    them (one copied from another trail signed with the same key verifies in itself)."""
    if approvals is None:
        print("  note: approvals not checked (setting approvers_file is not set)")
        return False
    if broken is not None:
        approvals = [
            a
            if a.seq < broken or a.problem is not None
            else replace(a, problem=f"after the broken entry {broken}: not linked to the trail")
            for a in approvals
        ]
    valid = [a for a in approvals if a.problem is None]
    old = [a for a in approvals if a.problem == UNSIGNED and a.before_signing]
    forged = [a for a in approvals if a.problem is not None and a not in old]
    print(
        f"  approvals: {len(valid)} signature(s) verify with the approvers file"
        + (f", {len(old)} unsigned from before signatures (they enable nothing)" if old else "")
    )
    for approval in forged:
        print(
            f"  FORGED approval at entry {approval.seq}: '{approval.by}' for "
            f"{approval.policy}: {approval.problem}"
        )
    return bool(forged)


def _other_trails(trails: tuple[str, ...]) -> str:
    if not trails:
        return "check the file: it names no trail"
    named = ", ".join(trails[:5]) + (", ..." if len(trails) > 5 else "")
    return (
        f"it names {named}: checking a copy restored under another name, give the original "
        "database with --trail (and its schema with RETENTION_SCHEMA_NAME)"
    )


def _heads(path: Path, heads: Copy | None, anchors: list[Anchor]) -> str:
    """Add the head file's entries for this trail to `anchors`; what to say about it."""
    if heads is None:
        return f"no head file at {path} yet (each run appends to it)"
    anchors.extend(heads.anchors)
    left_out = f", {heads.describe()}" if heads.describe() else ""
    last = f"last entry {heads.anchors[-1].seq}" if heads.anchors else "no entry of this trail"
    return f"head file {path}: {len(heads.anchors)} run(s), {last}{left_out}"


def _exists(path: Path) -> bool:
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    return True


def _print_verification(result: Verification, anchored: bool) -> None:
    """`anchored`: entries known from outside the database were given (head file, copies)."""
    if result.intact:
        print(f"audit trail intact: {result.checked} entries verified")
        print(f"  {_signatures(result, anchored)}")
    elif result.anchored:
        print(f"audit trail BROKEN from entry {result.broken_seq}: {result.problem}")
    else:
        print(
            f"audit trail BROKEN at entry {result.broken_seq}: {result.problem} "
            f"({result.checked} entries before it are intact)"
        )
        print(f"  {_signatures(result, anchored)}")


def _signatures(result: Verification, anchored: bool = True) -> str:
    vouch = "the chain and the head file vouch" if anchored else "only the chain vouches"
    before = (
        f"; entries 1..{result.unsigned} were written before signing began ({vouch} for them)"
        if result.unsigned
        else ""
    )
    if result.keys is None:
        return (
            "signatures NOT checked: no public key (settings audit_public_keys, or "
            f"audit_signing_key){before}"
        )
    used = ", ".join(result.signers) or "none yet"
    return f"signatures checked with {result.keys} (keys that signed: {used}){before}"


def _entries(settings: Settings, where: sql.Composable, params: list[Any]) -> list[dict[str, Any]]:
    with connect(settings) as conn:
        require_installed(conn, settings.schema_name)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                sql.SQL("SELECT *, {h} FROM {t} WHERE {w} ORDER BY seq").format(
                    h=sql.Identifier("hash"),
                    t=sql.Identifier(settings.schema_name, "audit"),
                    w=where,
                ),
                params,
            )
            return [{**stored_content(row), "hash": row["hash"]} for row in cur.fetchall()]


def _show(args: argparse.Namespace, settings: Settings) -> int:
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    if args.since:
        conditions.append(sql.SQL("recorded_at >= %s"))
        params.append(args.since)
    if args.policy:
        conditions.append(sql.SQL("policy = %s"))
        params.append(args.policy)
    entries = _entries(settings, sql.SQL(" AND ").join(conditions), params)
    if not entries and args.format == "text":  # JSON and CSV stay empty documents
        print("no entry" + (" (filtered by --since or --policy)" if conditions[1:] else ""))
        return 0
    _print(entries, args.format)
    return 0


def _find(args: argparse.Namespace, settings: Settings) -> int:
    key = audit_key(settings)
    _check_find(settings, args.policy, key)
    digest = subject_digest(key, args.policy, args.subject)
    entries = _entries(
        # a hold on a person (no policy) lists the subject's digest under every policy it covers
        settings,
        sql.SQL("(policy = %s OR policy IS NULL) AND {}").format(_holds_digest(settings)),
        [args.policy, digest],
    )
    if not entries:
        print(f"no entry for this subject under policy {args.policy}")
        return 0
    _print(entries, args.format)
    return 0


def _check_find(settings: Settings, policy: str, key: Key) -> None:
    """ "No entry" must mean no entry: not a policy name the trail never saw, nor an audit key
    other than the one the trail's digests were made with (the latest run_start entry names
    its id; older trails do not, and are not checked)."""
    with connect(settings) as conn:
        require_installed(conn, settings.schema_name)
        table = sql.Identifier(settings.schema_name, "audit")
        named = conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE policy = %s LIMIT 1").format(table), (policy,)
        ).fetchone()
        # a person's holds name their policies in their detail only
        covered = {
            str(p)
            for (detail,) in conn.execute(
                sql.SQL(
                    "SELECT detail FROM {} WHERE event IN ('hold_add', 'hold_release') "
                    "AND policy IS NULL"
                ).format(table)
            ).fetchall()
            for p in _policies_of(detail)
        }
        if named is None and policy not in covered:
            known = [
                str(r[0])
                for r in conn.execute(
                    sql.SQL(
                        "SELECT DISTINCT policy FROM {} WHERE policy IS NOT NULL ORDER BY policy"
                    ).format(table)
                ).fetchall()
            ]
            known = sorted({*known, *covered})
            raise UsageError(
                f"the trail holds no entry of a policy named '{policy}'",
                hint=f"policies in the trail: {', '.join(known) or 'none'}",
            )
        row = conn.execute(
            sql.SQL(
                "SELECT detail FROM {} WHERE event = 'run_start' ORDER BY seq DESC LIMIT 1"
            ).format(table)
        ).fetchone()
    said = document(row[0]) if row else {}
    recorded = said.get("audit_key_id") if isinstance(said, dict) else None
    if recorded is not None and recorded != key.id:
        raise UsageError(
            f"this audit key (id {key.id}) is not the one the trail's digests were made with "
            f"(id {recorded}): no subject could be found with it",
            hint="set audit_key to the installation's key (RETENTION_AUDIT_KEY_FILE)",
        )


def _policies_of(detail: object) -> list[object]:
    """The policies a person's hold entry lists."""
    said = document(detail)
    found = said.get("policies") if isinstance(said, dict) else None
    return list(found) if isinstance(found, list) else []


def _holds_digest(settings: Settings) -> sql.Composable:
    """An entry's subject digests hold the parameter (an array, or a JSON array)."""
    dialect = engine_for(settings.require_database_url()).dialect
    return dialect.list_holds(sql.Identifier("subject_digests"), sql.SQL("%s"))


def _print(entries: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        print(
            json.dumps(
                [_public(e) for e in entries], indent=2, default=_json_default, ensure_ascii=False
            )
        )
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(_SHOW))
        writer.writeheader()
        for entry in entries:
            writer.writerow(
                {k: json.dumps(entry[k]) if isinstance(entry[k], dict) else entry[k] for k in _SHOW}
            )
        return
    for e in entries:
        rows = ", ".join(f"{t} {n}" for t, n in e["rows"].items() if n) or "-"
        where = "/".join(x for x in (e["policy"], e["phase"]) if x) or "-"
        if e["action"]:
            where += f" [{e['action']}]"
        print(
            f"#{e['seq']:<6} {e['recorded_at'][:19]}Z  {e['event']:<15} {e['outcome']:<11} "
            f"{where:<36} subjects {e['subjects']:<6} rows: {rows}"
            + (f"  [policy sha256 {e['policy_sha256'][:12]}]" if e["policy_sha256"] else "")
            + _who(e)
        )


def _who(entry: dict[str, Any]) -> str:
    """Who approved (an approval entry), and why limits were overridden: what an auditor
    reads the text view for (`--format json` has every field)."""
    detail = entry["detail"] if isinstance(entry["detail"], dict) else {}
    if entry["event"] == "approval" and detail.get("by"):
        role = f" ({detail['role']})" if detail.get("role") else ""
        return f"  by {detail['by']}{role}"
    if entry["event"] == "limit_override" and detail.get("reason"):
        return f"  reason: {detail['reason']}"
    return ""


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    out["subject_digests"] = len(out["subject_digests"])
    return out


def _json_default(value: object) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)
