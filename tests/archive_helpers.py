"""Helpers for the archive tests: keys, an archive policy on the demo schema, settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage

from retention.settings import Settings
from tests.engine_helpers import ROOT, settings

_PHASES = re.compile(r"^phases:.*", re.MULTILINE | re.DOTALL)

ARCHIVE_PHASES = """phases:
  - name: archivage
    description: Archivage intermédiaire, 5 ans après la dernière venue
    due: derniere_venue + 5 years
    action: archive
"""


@dataclass(frozen=True)
class KeyPair:
    """An age identity written as `age-keygen` would, and its public key."""

    identity: pyrage.x25519.Identity
    recipient: str
    file: Path


def key_pair(folder: Path, name: str = "custodian") -> KeyPair:
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.key"
    path.write_text(f"# public key: {recipient}\n{identity}\n", encoding="utf-8")
    path.chmod(0o600)
    return KeyPair(identity, recipient, path)


def archive_policies(
    folder: Path, phases: str = ARCHIVE_PHASES, retain_until: str | None = None
) -> Path:
    """dossier-medical with an archive phase instead of its purge (and another clock)."""
    text = (ROOT / "policies" / "dossier-medical.yaml").read_text(encoding="utf-8")
    if retain_until is not None:
        start = text.index("retain_until: |")
        text = text[:start] + f"retain_until: {retain_until}\n\n" + text[text.index("phases:") :]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dossier-medical.yaml").write_text(_PHASES.sub(phases, text), encoding="utf-8")
    return folder


def archive_settings(
    url: str, policies: Path, archive_dir: Path, recipients: list[str], **extra: Any
) -> Settings:
    archive_dir.mkdir(parents=True, exist_ok=True)
    return settings(
        url,
        policies,
        archive_dir=archive_dir,
        archive_recipients=tuple(recipients),
        **extra,
    )
