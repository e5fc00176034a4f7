"""One root exception type for everything a user can cause.

Each error carries data (where, what, a hint), never a string to parse. The CLI turns any
:class:`RetentionError` into one clear message and an exit code; anything else is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a file the user wrote: 1-based line and column."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class RetentionError(Exception):
    """Root of every error caused by input, configuration or database state."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(RetentionError):
    """Bad command-line arguments."""

    exit_code = 2


class SettingsError(RetentionError):
    """Invalid settings: every problem found, listed at once."""

    exit_code = 2

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        where = f" in {source}" if source else ""
        super().__init__(f"invalid settings{where}:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Problem:
    """One problem found in a policy file."""

    location: Location
    message: str
    hint: str | None = None
    severity: str = "error"  # "error" or "warning"

    def render(self) -> str:
        text = f"{self.location}: {self.severity}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class SchemaNameError(RetentionError):
    """The setting schema_name names no schema of the tool, while another one exists."""

    exit_code = 2


class PolicyError(RetentionError):
    """One or more policy files are invalid."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = [p for p in problems if p.severity == "error"]
        super().__init__("\n".join(p.render() for p in self.problems) or "invalid policy")

    def render(self) -> str:
        return self.message


class DatabaseError(RetentionError):
    """The database cannot be reached or is not in the state the tool needs."""

    exit_code = 4


# SQLSTATE classes whose server messages name objects, privileges or the server's state and
# never quote a row's value (a data error, a constraint or a trigger's RAISE may).
NAMING_CLASSES = ("08", "28", "3D", "3F", "42", "53", "55", "57", "58")


def server_text_is_safe(sqlstate: str | None, context: str | None = None) -> bool:
    """The server's message for this SQLSTATE may be shown and kept (see NAMING_CLASSES),
    unless the error has a CONTEXT (`context`): it was raised inside the database's own code
    (a function, a trigger, an SQL statement of one), where a RAISE can say anything under
    any SQLSTATE ('... USING ERRCODE = 42501') and dynamic SQL built from a row fails with the
    row's values in 'syntax error at or near ...'. Whatever the context says does not matter:
    its language follows the server's lc_messages."""
    if sqlstate is None or sqlstate[:2] not in NAMING_CLASSES:
        return False
    # any CONTEXT at all: its wording follows the server's lc_messages ('fonction PL/pgSQL')
    return not context


# Conditions whose server message is a fixed text: said in the tool's own words, so that the
# operator knows what happened even when the server's text is not kept (it had a CONTEXT).
KNOWN_CONDITIONS = {
    "55P03": "lock timeout: rows or a table held by another session",
    "57014": "statement timeout, or cancelled by an administrator",
    "40P01": "deadlock with another session",
    "40001": "serialization failure (a concurrent change)",
    "53100": "disk full on the database server",
    "53200": "out of memory on the database server",
    "53300": "too many connections to the database server",
    "57P01": "the database server was shut down by an administrator",
    "57P02": "the database server restarted after another server process crashed",
    "57P03": "the database server is starting up or shutting down",
    "23503": "a foreign key refused the change: rows of another table still refer to these "
    "rows, or a row refers to one that is gone (for a purge, a table the policy does not "
    "follow: declare it under related.links, then check)",
}
