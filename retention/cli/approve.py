"""`retention approve`: record an approver's signature of a policy file's exact content.

The approver signs with their own key: here with `--key` (ssh-keygen signs, so keys in an agent,
behind a passphrase or on a security token work as for git), or on another machine, from the
message `--print-message` writes, with `ssh-keygen -Y sign -n retention-approval`; the signature
file is then recorded with `--signature`. The signature is checked before it is recorded.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retention.audit.approvals import (
    DESTRUCTIVE,
    NAMESPACE,
    approval_state,
    judge,
    message,
    record_approval,
    rules_of,
)
from retention.audit.sshsig import AllowedSigner, SignatureFormatError, parse_signature
from retention.cli.common import ensure_schema, trail
from retention.cli.options import add_policies_option
from retention.db import connect
from retention.errors import UsageError
from retention.policy.load import LoadedPolicy, load_policies
from retention.settings import Settings

_SIGN_HINT = (
    "on the approver's machine: retention approve --policy NAME --print-message > approval.txt; "
    "ssh-keygen -Y sign -n retention-approval -f ~/.ssh/id_ed25519 approval.txt; then "
    "retention approve --policy NAME --signature approval.txt.sig"
)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "approve",
        description="Record, in the audit trail, an approver's OpenSSH signature of the exact "
        "content (SHA-256) of a policy file. Purge and archive phases run only once "
        "required_approvals distinct approvers of approvers_file, in the required_roles, "
        "signed the current content.",
    )
    add_policies_option(parser)
    parser.add_argument("--policy", required=True, metavar="NAME")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--key",
        type=Path,
        metavar="FILE",
        help="sign here with this private key (ssh-keygen -Y sign; a .pub file uses the agent)",
    )
    how.add_argument(
        "--signature",
        type=Path,
        metavar="FILE",
        help="record a signature made elsewhere (ssh-keygen -Y sign -n retention-approval)",
    )
    how.add_argument(
        "--print-message",
        action="store_true",
        help="print the message to sign for this policy's current content, and stop",
    )
    how.add_argument("--by", metavar="NAME", help=argparse.SUPPRESS)  # refused: see run()
    parser.add_argument(
        "--signer",
        metavar="PRINCIPAL",
        help="the approver's name in approvers_file (default: the one its key is listed under)",
    )
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.by is not None or args.role is not None:
        raise UsageError(
            "--by and --role are gone: an approval is now a signature by the approver's own key",
            hint=_SIGN_HINT,
        )
    policy = _policy(settings, args.policy)
    text = message(policy.name, policy.sha256)
    if args.print_message:
        print(text.decode(), end="")
        return 0
    signature = _sign(args.key, text) if args.key is not None else _read(args.signature)
    rules = rules_of(settings)
    if rules.signers is None:
        raise UsageError(
            "no approvers are configured",
            hint="setting approvers_file: an OpenSSH allowed_signers file naming each approver "
            "and their public key",
        )
    signer = args.signer or _principal(rules.signers, signature)
    problem = judge(rules, policy.name, policy.sha256, signer, signature, datetime.now(UTC))
    if problem is not None:
        raise UsageError(f"the signature of {signer} is not recorded: {problem}", hint=_SIGN_HINT)
    if not any(phase.action in DESTRUCTIVE for phase in policy.policy.phases):
        print(f"note: {policy.name} has no purge or archive phase; the approval is recorded anyway")
    with connect(settings) as conn:
        ensure_schema(conn, settings)
        record_approval(
            conn,
            trail(conn, settings),
            policy.name,
            policy.sha256,
            signer,
            rules.roles.get(signer, ""),
            signature,
        )
        state = approval_state(conn, settings.schema_name, policy.name, policy.sha256, rules)
    print(f"{policy.name} [sha256 {policy.sha256[:12]}]: {state.describe()}")
    return 0


def _policy(settings: Settings, name: str) -> LoadedPolicy:
    loaded = {p.name: p for p in load_policies(settings.policies_dir)}
    if name not in loaded:
        raise UsageError(f"no policy named '{name}'", hint=f"policies: {', '.join(loaded)}")
    return loaded[name]


def _sign(key: Path, text: bytes) -> str:
    """`ssh-keygen -Y sign` of the message, read from standard input, signature on stdout."""
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise UsageError("ssh-keygen is not installed (package openssh-client)", hint=_SIGN_HINT)
    done = subprocess.run(  # noqa: S603 (a fixed program, no shell)
        [keygen, "-q", "-Y", "sign", "-n", NAMESPACE, "-f", str(key)],
        input=text,
        capture_output=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise UsageError(
            f"ssh-keygen could not sign with {key}: {said[-1] if said else 'no reason given'}",
            hint="give the approver's private key, or its .pub file with the key in ssh-agent",
        )
    return done.stdout.decode("ascii", errors="replace")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UsageError(f"cannot read the signature {path}: {reason}", hint=_SIGN_HINT) from None


def _principal(signers: Sequence[AllowedSigner], signature: str) -> str:
    """The only principal the signature's key is listed under."""
    try:
        key = parse_signature(signature).public_key
    except SignatureFormatError as exc:
        raise UsageError(f"not a signature: {exc}", hint=_SIGN_HINT) from None
    names = sorted({p for s in signers if s.key == key for p in s.principals})
    if len(names) != 1:
        said = "no approver of approvers_file" if not names else ", ".join(names)
        raise UsageError(
            f"the signing key is listed under {said}",
            hint="name the approver with --signer (a principal of approvers_file)",
        )
    return names[0]
