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
from retention.policy.yaml_errors import explain

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


MAX_DEPTH = 100  # nesting levels of mappings and sequences; a policy needs fewer than 10
MAX_NODES = 100_000  # values once aliases are expanded; a large policy has a few thousand


def read_yaml(path: Path) -> Document:
    """Parse one file; a syntax error becomes a :class:`PolicyError` at its position."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError([Problem(Location(name), f"cannot read file: {exc.strerror}")]) from None
    return parse_yaml(decode(data, name), name)


def decode(data: bytes, name: str) -> str:
    """The file's text; bytes that are not UTF-8 are an error at their line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        where = Location(name, data.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1)
        problem = Problem(
            where,
            f"file is not UTF-8 text: byte 0x{data[exc.start]:02X} is not valid UTF-8 here",
            "save the file as UTF-8 (e.g. 'iconv -f latin1 -t utf-8' for a Latin-1 file)",
        )
        raise PolicyError([problem]) from None


def parse_yaml(text: str, name: str) -> Document:
    """Parse YAML text (named `name` in messages), in bounded time and memory: nesting deeper
    than MAX_DEPTH, aliases expanding past MAX_NODES values and duplicate keys are errors."""
    try:
        loader = _Loader(text, name)
    except yaml.reader.ReaderError as exc:
        raise PolicyError([_unprintable(exc, text, name)]) from None
    try:
        node = loader.get_single_node()
        value = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        said = explain(exc, text)
        where = Location(name, said.line, said.column) if said.line else Location(name)
        raise PolicyError([Problem(where, said.message, said.hint)]) from None
    finally:
        loader.dispose()
    doc = Document(name, value, text=text)
    if node is not None:
        _walk(node, (), doc.spans)
    return doc


def _unprintable(exc: yaml.reader.ReaderError, text: str, name: str) -> Problem:
    position = exc.position if isinstance(exc.position, int) else 0
    line_start = text.rfind("\n", 0, position) + 1
    character = exc.character if isinstance(exc.character, int) else ord(text[position])
    return Problem(
        Location(name, text.count("\n", 0, position) + 1, position - line_start + 1),
        f"character U+{character:04X} is not allowed in a policy file (a control character)",
        "remove it: a policy file is plain text (binary data or a stray paste?)",
    )


def _mark(mark: yaml.Mark | None, name: str) -> Location:
    return Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)


class _Loader(yaml.SafeLoader):
    """The safe loader, counting as it composes: nesting depth, values once aliases are
    expanded (an alias counts the values of what it names, so "billion laughs" stops at
    MAX_NODES instead of growing without bound), and keys given twice in one mapping."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self._file = name
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}  # values of a composed node, aliases expanded

    def _count(self, values: int, mark: yaml.Mark | None) -> None:
        self._nodes += values
        if self._nodes > MAX_NODES:
            raise PolicyError(
                [
                    Problem(
                        _mark(mark, self._file),
                        f"this file expands to more than {MAX_NODES:,} values "
                        "(YAML aliases repeating aliases)",
                        "write the values out, or use fewer nested aliases (*name)",
                    )
                ]
            )

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        mark: yaml.Mark | None = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            self._count(self._sizes.get(id(node), 1), mark)
            return node
        if self._depth >= MAX_DEPTH:
            raise PolicyError(
                [
                    Problem(
                        _mark(mark, self._file),
                        f"values nested more than {MAX_DEPTH} levels deep",
                        "a policy needs a few levels: check the brackets and indentation",
                    )
                ]
            )
        before = self._nodes
        self._count(1, mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._sizes[id(node)] = self._nodes - before
        return node

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], yaml.Node] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            first = seen.setdefault((key.tag, key.value), key)
            if first is not key:
                raise PolicyError(
                    [
                        Problem(
                            _mark(key.start_mark, self._file),
                            f"duplicate key '{key.value}' (first at line "
                            f"{first.start_mark.line + 1})",
                            "a key appears once per mapping (YAML would keep only the last "
                            "value): remove one of them",
                        )
                    ]
                )
        return node


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
