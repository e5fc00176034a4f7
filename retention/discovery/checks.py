"""Check rules of identifiers, as pure functions (the recognizers and the tests use them).

- NIR (social security number, also the INS number): sex, year, month, department, commune,
  order, then a key ``97 - (N mod 97)`` where N is the 13-character body read as a number after
  replacing Corsica's ``2A`` by ``19`` and ``2B`` by ``18``.
- NIA (the INS's temporary number): same length and key, no calendar constraint.
- RPPS (health professional): 11 digits, Luhn.
- FINESS (establishment): 9 characters, department first; numeric ones end with a Luhn key
  (checked on the public examples 010003820 and 010003812). Corsican (2A/2B) and overseas
  (9A-9F) numbers are accepted on their shape only.
- ADELI: 9 digits, department first; no public check rule, so shape only.
- NHS number (England, Wales): 10 digits, the last one ``11 - (S mod 11)`` where S weighs the
  first nine by 10 down to 2 (11 gives 0; 10 is never issued).
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s.\-]")
_NIR_SHAPE = re.compile(r"^[1-478]\d{4}(?:\d{2}|2[AB])\d{6}\d{2}$")
_NIA_SHAPE = re.compile(r"^[1-8]\d{4}(?:\d{2}|2[AB])\d{6}\d{2}$")
_FINESS_SHAPE = re.compile(r"^(?:0[1-9]|[1-8]\d|9[0-5]|2[AB]|9[7-8A-F])\d{7}$")
_ADELI_SHAPE = re.compile(r"^(?:0[1-9]|[1-8]\d|9[0-5]|97)\d{7}$")


def compact(text: str) -> str:
    """The identifier without spaces, dots or dashes, upper-cased."""
    return _SEPARATORS.sub("", text).upper()


def nir_key(body: str) -> int:
    """The key of a 13-character NIR body (Corsica's 2A/2B read as 19/18)."""
    number = int(body.upper().replace("2A", "19").replace("2B", "18"))
    return 97 - number % 97


def _key_ok(nir: str) -> bool:
    return nir[13:].isdigit() and int(nir[13:]) == nir_key(nir[:13])


def is_nir(text: str) -> bool:
    """A NIR: sex 1, 2 (3, 4, 7, 8 for temporary numbers), month 01-12 or 20 and above, key."""
    nir = compact(text)
    if not _NIR_SHAPE.match(nir):
        return False
    month = int(nir[3:5])
    if not (1 <= month <= 12 or month >= 20):
        return False
    return _key_ok(nir)


def is_nir_or_nia(text: str) -> bool:
    """A NIR or a NIA (temporary INS number): 15 characters whose key is right."""
    nir = compact(text)
    return bool(_NIA_SHAPE.match(nir)) and _key_ok(nir)


def luhn_ok(digits: str) -> bool:
    """True when the last digit is the Luhn check digit of the others."""
    if not digits.isdigit():
        return False
    total = 0
    for i, char in enumerate(reversed(digits)):
        digit = int(char)
        if i % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def is_rpps(text: str) -> bool:
    """An RPPS number: 11 digits with a Luhn check digit."""
    number = compact(text)
    return len(number) == 11 and luhn_ok(number)


def is_finess(text: str) -> bool:
    """A FINESS number: 9 characters, department first; numeric ones carry a Luhn key."""
    number = compact(text)
    if not _FINESS_SHAPE.match(number):
        return False
    return luhn_ok(number) if number.isdigit() else True


def is_adeli(text: str) -> bool:
    """An ADELI number: 9 digits starting with a department (shape only)."""
    return bool(_ADELI_SHAPE.match(compact(text)))


def is_nhs_number(text: str) -> bool:
    """An NHS number: 10 digits whose last one is the mod-11 key of the others."""
    digits = compact(text)
    if len(digits) != 10 or not digits.isdigit():
        return False
    key = (
        11
        - sum(int(d) * weight for d, weight in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    )
    return (0 if key == 11 else key) == int(digits[9])


def is_french_phone(text: str) -> bool:
    """A French phone number: 0 + 9 digits, or +33/0033 + 9 digits (an optional '(0)')."""
    digits = re.sub(r"\D", "", text.replace("(0)", ""))
    if digits.startswith("0033"):
        digits = "0" + digits[4:]
    elif digits.startswith("33") and text.lstrip().startswith("+"):
        digits = "0" + digits[2:]
    return len(digits) == 10 and digits[0] == "0" and digits[1] != "0"


def is_postal_code(text: str) -> bool:
    """A French postal code: 5 digits, a real department first (01-95, 97, 98)."""
    code = text.strip()
    if len(code) != 5 or not code.isdigit():
        return False
    department = int(code[:2])
    return 1 <= department <= 95 or department in (97, 98)
