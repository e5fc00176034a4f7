"""PyYAML's syntax errors said in the words of the person who writes a policy.

"expected <block end>, but found '<block mapping start>'" is what PyYAML says of a line indented
one space off; "mapping values are not allowed here" of a colon inside a value. A compliance
officer reads neither. The common cases get a message naming the line, and a hint giving the
indentation to use, read from the lines above it; anything else keeps PyYAML's own words.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class Said:
    """Where the problem is (1-based line and column), what it is, and what to do."""

    line: int
    column: int
    message: str
    hint: str


GENERIC_HINT = "check the indentation (spaces only) and that each ':' is followed by a space"


def explain(exc: yaml.MarkedYAMLError, text: str) -> Said:
    """The problem of `exc`, a syntax error of `text`, in plain words."""
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    lines = text.splitlines()
    problem = exc.problem or ""
    context = exc.context or ""
    if "'\\t'" in problem:
        return Said(
            line,
            column,
            "a tab character: a policy file is indented with spaces only",
            "replace the tab with spaces (most editors can insert spaces for the Tab key)",
        )
    if problem.startswith("found unexpected end of stream") and "quoted scalar" in context:
        start = exc.context_mark
        where = start.line + 1 if start else line
        col = start.column + 1 if start else column
        quote = _char(lines, where, col) or "'"
        return Said(
            where,
            col,
            f"the text opened by {quote} on line {where} is never closed",
            f"close it with {quote} on the same line",
        )
    if context.startswith("while parsing a flow") and exc.context_mark is not None:
        first = exc.context_mark.line + 1
        col = exc.context_mark.column + 1
        opened = _char(lines, first, col) or "["
        closing = {"[": "]", "{": "}"}.get(opened, "]")
        return Said(
            first,
            col,
            f"the {'list' if opened == '[' else 'mapping'} opened by {opened} on line {first} "
            f"is not closed where YAML expects it",
            f"close it with {closing} and separate its values with ', '",
        )
    if problem.startswith("could not find expected ':'") and exc.context_mark is not None:
        key = exc.context_mark.line + 1
        return Said(
            key,
            exc.context_mark.column + 1,
            f"line {key} has no ':' after its name",
            "write 'name: value', with a colon and a space",
        )
    if problem.startswith("mapping values are not allowed here"):
        return _colon(lines, line, column)
    if problem.startswith(("expected <block end>", "did not find expected")):
        return _misaligned(lines, line, column, exc.context_mark)
    what = problem or context or "invalid YAML"
    return Said(line, column, f"invalid YAML: {what}", GENERIC_HINT)


def _colon(lines: list[str], line: int, column: int) -> Said:
    """A ': ' where YAML cannot start a key: a second one on a line (inside a value), or a
    line indented deeper than the one above, read as the rest of that line's value."""
    text = _text(lines, line)
    before = text[: column - 1]
    if ": " in before or before.rstrip().endswith(":"):
        key, _, value = text.strip().partition(": ")
        return Said(
            line,
            column,
            f"a second ': ' on line {line}: YAML would read the rest as a new name",
            f"put the value in quotes: {key}: '{value.replace(chr(39), chr(39) * 2)}'",
        )
    above = _previous(lines, line)
    if above is not None and _indent(text) > _indent(_text(lines, above)):
        return Said(
            line,
            _indent(text) + 1,
            f"line {line} is indented deeper than line {above}, so YAML reads it as the rest "
            f"of line {above}'s value",
            f"indent it with {_indent(_text(lines, above))} spaces, as line {above}",
        )
    return Said(line, column, "a ': ' where no name can start", GENERIC_HINT)


def _misaligned(lines: list[str], line: int, column: int, context: yaml.Mark | None) -> Said:
    """A line whose indentation matches no block above it: the indentations it could have,
    those of the line before it and of the block PyYAML was reading."""
    text = _text(lines, line)
    spaces = _indent(text)
    listed = text.lstrip().startswith("- ")
    above = _previous(lines, line)
    if above is None:
        return Said(line, column, f"line {line} is not where YAML expects it", GENERIC_HINT)
    prior = _text(lines, above)
    item_above = prior.lstrip().startswith("- ")
    if not listed and item_above and spaces == _indent(prior):
        return Said(
            line,
            spaces + 1,
            f"line {line} is at the level of the '- ' of the list item on line {above}, "
            "without one of its own",
            f"indent it with {_key_indent(prior)} spaces to belong to that item, or start a "
            "new item with '- '",
        )
    # a list item goes with the items above it (their '- '), a name with the names above
    choices = {(_indent(prior) if listed and item_above else _key_indent(prior)): above}
    if context is not None and context.line + 1 < line:
        choices.setdefault(context.column, context.line + 1)
    choices.pop(spaces, None)
    if not choices:
        return Said(line, column, f"line {line} is not where YAML expects it", GENERIC_HINT)
    options = " or ".join(f"{n} spaces as line {at}" for n, at in sorted(choices.items()))
    what = "this list item" if listed else "this line"
    return Said(
        line,
        spaces + 1,
        f"{what} is indented {spaces} space(s), which matches no block above it",
        f"YAML reads the nesting from the spaces: indent it with {options}",
    )


def _text(lines: list[str], line: int) -> str:
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _char(lines: list[str], line: int, column: int) -> str:
    text = _text(lines, line)
    return text[column - 1] if 0 < column <= len(text) else ""


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _key_indent(text: str) -> int:
    """Where the names of the line's block start: after '- ' on a list item's first line."""
    spaces = _indent(text)
    rest = text[spaces:]
    while rest.startswith("- "):
        spaces += 2
        rest = rest[2:]
    return spaces


def _previous(lines: list[str], line: int) -> int | None:
    """The nearest line above `line` with content (not blank, not a comment)."""
    for at in range(line - 1, 0, -1):
        stripped = _text(lines, at).strip()
        if stripped and not stripped.startswith("#"):
            return at
    return None
