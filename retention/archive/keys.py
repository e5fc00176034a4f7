"""age X25519 keys: the public keys archives are encrypted to, and the custodian's private keys.

The host holds public keys only (`age1...`). Several recipients are allowed (e.g. the custodian
and a sealed backup key): any one of them decrypts. Changing the recipients applies to new
archives; existing ones stay readable with the keys they were written for (listed in each
archive's index). Private keys (`AGE-SECRET-KEY-1...`) are read only by `archive restore` and
`archive verify --identity`, from a file the custodian brings, and never logged or stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyrage

from retention.archive.errors import ArchiveConfigError, IdentityError
from retention.settings import recipient_problem

IDENTITY_PREFIX = "AGE-SECRET-KEY-1"


def parse_recipients(texts: Sequence[str]) -> list[pyrage.x25519.Recipient]:
    """The recipients of new archives; at least one, every one valid."""
    if not texts:
        raise ArchiveConfigError(
            "archive_recipients is empty: archives must be encrypted to at least one public key",
            hint="generate a key pair on the custodian's offline machine with 'age-keygen -o "
            "custodian.key' and set archive_recipients to the 'age1...' public key it prints",
        )
    problems = [
        f"archive_recipients[{i}] {problem}"
        for i, text in enumerate(texts)
        if (problem := recipient_problem(text)) is not None
    ]
    if problems:
        raise ArchiveConfigError("; ".join(problems))
    return [pyrage.x25519.Recipient.from_str(text) for text in texts]


def read_identities(path: Path) -> list[pyrage.x25519.Identity]:
    """The X25519 identities of an age key file (`age-keygen` output); comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IdentityError(f"identity file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityError(f"cannot read identity file {path}: {exc}") from None
    identities = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(IDENTITY_PREFIX):
            raise IdentityError(
                f"{path}:{number}: not an age X25519 private key (AGE-SECRET-KEY-1...)"
            )
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise IdentityError(f"{path}:{number}: invalid age private key") from None
    if not identities:
        raise IdentityError(f"{path} holds no age private key")
    return identities
