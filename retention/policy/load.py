"""Read policy files: YAML with positions, validated against :mod:`retention.policy.model`.

Every problem of every file is collected, with file, line and column, before anything fails.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from retention.errors import Location, PolicyError, Problem
from retention.policy.model import Policy
from retention.policy.source import Document, PathKey, decode, parse_yaml

_PYDANTIC_HINTS = {
    "missing": "add this key",
    "string_type": "write it as text",
    "list_type": "write it as a YAML list ('- item' lines)",
    "dict_type": "write it as a YAML mapping ('key: value' lines)",
    "string_pattern_mismatch": "use lower-case letters, digits, '-' and '_'",
    "too_short": "give at least one item",
}

# A phase's own checks (policy/model.Phase) said at the key they are about, with a hint:
# error type -> (key of the phase, hint; None: the hint the check gives)
_AT_PHASE_KEY: dict[str, tuple[str, str | None]] = {
    "unknown_action": ("action", None),
    "columns_needed": (
        "action",
        "list the columns it changes under 'columns:' (e.g. columns: [tel, email])",
    ),
    "columns_forbidden": (
        "columns",
        "a purge or an archive removes the subject's whole record: it takes no column",
    ),
    "generalize_to": ("columns", "e.g. - {column: naissance, to: year}"),
    "range_width": ("columns", "e.g. - {column: poids, to: range, width: 10}"),
}


@dataclass(frozen=True)
class LoadedPolicy:
    """A valid policy with its source (for positions) and the SHA-256 of its exact bytes."""

    policy: Policy
    document: Document
    sha256: str

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def file(self) -> str:
        return self.document.file

    def location(self, path: PathKey) -> Location:
        return self.document.location(path)


def policy_files(directory: Path) -> list[Path]:
    """The `*.yaml` / `*.yml` files of a folder, sorted; a missing folder is an error."""
    if not directory.is_dir():
        what = "is a file, not a folder" if directory.exists() else "does not exist"
        raise PolicyError(
            [
                Problem(
                    Location(str(directory)),
                    f"policy folder {what}",
                    "pass --policies DIR (the folder of the *.yaml files) or set "
                    "RETENTION_POLICIES_DIR",
                )
            ]
        )
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise PolicyError(
            [Problem(Location(str(directory)), "no policy file (*.yaml) in this folder")]
        )
    return files


def load_policies(directory: Path) -> list[LoadedPolicy]:
    """Load every policy of a folder, or raise one :class:`PolicyError` listing all problems."""
    loaded: list[LoadedPolicy] = []
    problems: list[Problem] = []
    for path in policy_files(directory):
        try:
            loaded.append(load_policy_bytes(path.read_bytes(), str(path)))
        except PolicyError as exc:
            problems += exc.problems
        except OSError as exc:
            problems.append(Problem(Location(str(path)), f"cannot read file: {exc.strerror}"))
    problems += _duplicate_names(loaded)
    if problems:
        raise PolicyError(problems)
    return loaded


def load_policy_bytes(data: bytes, name: str) -> LoadedPolicy:
    """Validate one policy file's content (`name` is used in messages)."""
    document = parse_yaml(decode(data, name), name)
    if not isinstance(document.value, dict):
        raise PolicyError(
            [
                Problem(
                    Location(name, 1, 1),
                    "a policy file must be a YAML mapping",
                    "start with 'name: my-policy'",
                )
            ]
        )
    try:
        policy = Policy.model_validate(document.value)
    except ValidationError as exc:
        raise PolicyError(_problems(exc, document)) from None
    return LoadedPolicy(policy, document, hashlib.sha256(data).hexdigest())


def _problems(exc: ValidationError, document: Document) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        path = _clean_path(error["loc"])
        ctx = error.get("ctx") or {}
        if error["type"] == "unknown_key":
            key = str(ctx.get("key"))
            where = document.spans.get((*path, key, "__key__"))
            location = Location(document.file, where.line, where.column) if where else None
            key_hint = str(ctx.get("hint"))
            if key.count(")") > key.count("("):  # the rest of `f(a, b)` cut at its comma
                key_hint = (
                    "inside { }, YAML ends an entry at each comma, and this looks like the rest "
                    "of an expression cut at one: quote the expression, as in "
                    "{latest: 'coalesce(sortie, today)', over: sejours}"
                )
            problems.append(
                Problem(location or document.location(path), f"unknown key '{key}'", key_hint)
            )
            continue
        placed = _AT_PHASE_KEY.get(error["type"])
        if placed is not None:
            key, hint = placed
            message = error["msg"]
            if error["type"] == "unknown_action":
                message = message.split("; ")[0]  # its hint apart
            problems.append(
                Problem(
                    document.location((*path, key)),
                    message,
                    hint or str(ctx.get("hint") or "") or None,
                )
            )
            continue
        message = error["msg"].removeprefix("Value error, ")
        label = ".".join(str(p) for p in path)
        text = f"{label}: {message}" if label else message
        problems.append(Problem(document.location(path), text, _PYDANTIC_HINTS.get(error["type"])))
    return _dedupe(problems)


def _clean_path(loc: tuple[int | str, ...]) -> PathKey:
    """Drop pydantic's union-member tags ('column', 'spec', ...) from an error location."""
    tags = {"column", "aggregate", "expression", "spec", "name", "function-after"}
    out: list[str | int] = []
    for index, part in enumerate(loc):
        if isinstance(part, str) and part in tags and index > 0 and _is_union_slot(loc, index):
            continue
        out.append(part)
    return tuple(out)


def _is_union_slot(loc: tuple[int | str, ...], index: int) -> bool:
    parent = loc[index - 1]
    grand = loc[index - 2] if index >= 2 else None
    return isinstance(parent, int) or grand == "dates"


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for problem in problems:
        key = (str(problem.location), problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def _duplicate_names(loaded: list[LoadedPolicy]) -> list[Problem]:
    first: dict[str, LoadedPolicy] = {}
    problems = []
    for item in loaded:
        if item.name in first:
            problems.append(
                Problem(
                    item.location(("name",)),
                    f"policy name '{item.name}' is already used by {first[item.name].file}",
                    "each policy needs its own name",
                )
            )
        else:
            first[item.name] = item
    return problems
