"""YAML documents that remember where every value came from.

Policy errors must name file, line and column. PyYAML's composer keeps a mark on every node;
:func:`read_yaml` builds the plain Python value and, beside it, a map from each value's path
(`("phases", 0, "columns")`) to its position, so any later check can point at the right line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from retention.errors import Location, PolicyError, Problem

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Span:
    """Where a scalar starts, and how its text maps to lines (for expressions)."""

    line: int  # 1-based
    column: int  # 1-based
    block: bool = False  # `|` or `>` scalar: text starts on the next line
    indent: int = 0  # column of the block's text, 0-based


@dataclass
class Document:
    """One YAML file: its value and the position of every node in it."""

    file: str
    value: Any
    spans: dict[PathKey, Span] = field(default_factory=dict)
    text: str = ""

    def location(self, path: PathKey) -> Location:
        """The closest known position of `path` (or of its nearest parent)."""
        for cut in range(len(path), -1, -1):
            span = self.spans.get(path[:cut])
            if span is not None:
                return Location(self.file, span.line, span.column)
        return Location(self.file)

    def text_location(self, path: PathKey, line: int, column: int) -> Location:
        """Position in the file of (line, column), counted inside the scalar at `path`."""
        span = self.spans.get(path)
        if span is None:
            return self.location(path)
        if span.block:
            return Location(self.file, span.line + line, span.indent + column)
        if line == 1:
            return Location(self.file, span.line, span.column + column - 1)
        return Location(self.file, span.line + line - 1, column)


def read_yaml(path: Path) -> Document:
    """Parse one file; a syntax error becomes a :class:`PolicyError` at its position."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([Problem(Location(name), f"cannot read file: {exc}")]) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> Document:
    """Parse YAML text (named `name` in messages)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        value = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
        what = exc.problem or exc.context or "invalid YAML"
        hint = "check indentation and that ':' is followed by a space"
        raise PolicyError([Problem(where, f"invalid YAML: {what}", hint)]) from None
    finally:
        loader.dispose()
    doc = Document(name, value, text=text)
    if node is not None:
        _walk(node, (), doc.spans)
    return doc


def _walk(node: yaml.Node, path: PathKey, spans: dict[PathKey, Span]) -> None:
    spans[path] = _span(node)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            _walk(value_node, (*path, key), spans)
            # A missing or wrong value is best reported at its key.
            spans[(*path, key)] = spans.get((*path, key), _span(key_node))
            spans[(*path, key, "__key__")] = _span(key_node)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), spans)


def _span(node: yaml.Node) -> Span:
    mark = node.start_mark
    style = getattr(node, "style", None)
    if style in ("|", ">"):
        return Span(mark.line + 1, mark.column + 1, block=True, indent=_block_indent(node))
    offset = 1 if style in ("'", '"') else 0
    return Span(mark.line + 1, mark.column + 1 + offset)


def _block_indent(node: yaml.Node) -> int:
    """Column of the first character of a block scalar's text (0-based)."""
    buffer = node.start_mark.buffer
    if buffer is None:
        return 0
    start = buffer.find("\n", node.start_mark.pointer)
    if start < 0:
        return 0
    line = buffer[start + 1 :].split("\n", 1)[0]
    return len(line) - len(line.lstrip(" "))
