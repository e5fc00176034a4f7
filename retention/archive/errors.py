"""What can go wrong with archives, each with a message for the operator and an exit code.

Every one of these is raised before the batch's transaction commits: the rows stay in the
database (nothing is deleted) whenever an archive cannot be written and verified.
"""

from __future__ import annotations

from retention.errors import RetentionError


class ArchiveError(RetentionError):
    """Root of the archive errors."""

    exit_code = 6


class ArchiveConfigError(ArchiveError):
    """Missing or invalid archive settings: no directory, no or bad public keys."""

    exit_code = 2


class ArchiveStorageError(ArchiveError):
    """The destination cannot be written (full, read-only, permissions) or read."""


class ArchiveVerifyError(ArchiveError):
    """What was read back differs from what was written: nothing is deleted."""


class ArchiveAlteredError(ArchiveError):
    """A file on disk differs from the catalogue and the audit trail."""


class IdentityError(ArchiveError):
    """The custodian's private key file is missing, unreadable or not an age identity."""

    exit_code = 2
