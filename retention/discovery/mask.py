"""Masked examples: enough to recognise the kind of value, never the value.

Every word keeps its first letter, the rest becomes ``***``; of all the digits only the
first one is kept, the others become ``*``. An e-mail domain keeps its last label:
``jean.dupont@orange.fr`` -> ``j***.d***@o***.fr``, ``06 12 34 56 78`` -> ``0* ** ** ** **``.
Free text is masked word by word, whatever it says.
"""

from __future__ import annotations

import re

_RUN = re.compile(r"[^\W_]+")
# Line breaks and other control characters: a masked example is one line of a YAML comment
# (`draft`) or of a terminal (`scan --show-examples`): an outside review found an address's
# line break splitting a draft's comment, and the file no longer parsed.
_BREAK = re.compile(r"\r\n|[\r\n\u2028\u2029\x0b\x0c\x85]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")


def mask(value: str, *, limit: int = 60) -> str:
    """The value with every word reduced to its first letter (e-mail TLDs kept), on one line:
    a line break shown as `↵`, another control character as a space."""
    text = _CONTROL.sub(" ", _BREAK.sub("↵", value[:limit]))
    digits = _Digits()
    parts = []
    last = 0
    for match in _EMAIL.finditer(text):
        parts.append(_mask_words(text[last : match.start()], digits))
        parts.append(_mask_email(match.group(), digits))
        last = match.end()
    parts.append(_mask_words(text[last:], digits))
    return "".join(parts) + ("…" if len(value) > limit else "")


class _Digits:
    """Shows the first digit of the value, hides every other one."""

    def __init__(self) -> None:
        self.shown = False

    def mask(self, run: str) -> str:
        if self.shown:
            return "*" * len(run)
        self.shown = True
        return run[0] + "*" * (len(run) - 1)


def _mask_words(text: str, digits: _Digits) -> str:
    return _RUN.sub(lambda m: _mask_run(m.group(), digits), text)


def _mask_run(run: str, digits: _Digits) -> str:
    if run.isdigit():
        return digits.mask(run)
    return run[0] + "***" if len(run) > 1 else run


def _mask_email(address: str, digits: _Digits) -> str:
    local, _, domain = address.partition("@")
    labels = domain.split(".")
    return f"{_mask_words(local, digits)}@{_mask_words('.'.join(labels[:-1]), digits)}.{labels[-1]}"
