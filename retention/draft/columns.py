"""The personal columns the last scan found in a record's tables, each with a suggested
minimisation that `retention check` accepts for it, and masked examples (never a value)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from retention.catalog.introspect import Catalog, Column
from retention.discovery.mask import mask
from retention.discovery.model import ColumnVerdict
from retention.engines import Connection, engine_of, sql

QName = tuple[str, str]
EXAMPLES = 2


@dataclass(frozen=True)
class Minimisation:
    """An action on a column, with its parameter (`to` of generalize)."""

    action: str
    to: str | None = None

    @property
    def label(self) -> str:
        return self.action if self.to is None else f"{self.action} to {self.to}"


_ERASE = Minimisation("erase")
_PSEUDONYMIZE = Minimisation("pseudonymize")
_SCRUB = Minimisation("scrub")
# What each kind of personal data suggests, best first: names keep joins and counts through a
# keyed pseudonym, contact data is no longer needed, a birth date keeps its year, a postal code
# its department, free text loses its personal spans only.
PLANS: dict[str, tuple[Minimisation, ...]] = {
    "PERSON": (_PSEUDONYMIZE, _ERASE),
    "DATE_OF_BIRTH": (Minimisation("generalize", "year"), _ERASE),
    "FR_POSTAL_CODE": (Minimisation("generalize", "department"), _ERASE),
    "FREE_TEXT_PERSONAL": (_SCRUB, _ERASE),
}
DEFAULT_PLAN = (_ERASE, _PSEUDONYMIZE)
# Identifiers of health professionals, public registers: kept, with the reason.
KEPT = {"FR_RPPS": "identifiant professionnel public (RPPS)", "FR_ADELI": "identifiant ADELI"}

Fits = Callable[[str, Minimisation], str | None]
"""(column as the policy names it, minimisation) -> None when `check` accepts it, else why
not (the first problem `check` reports)."""


@dataclass(frozen=True)
class PersonalColumn:
    """A personal column of the record: `choice` is the first minimisation `check` accepts
    (None: none does, see `refused`); `kept`: a reason to keep it instead."""

    verdict: ColumnVerdict
    ref: str
    choice: Minimisation | None
    refused: tuple[str, ...]
    kept: str | None
    examples: tuple[str, ...]


def plan_for(verdict: ColumnVerdict, column: Column) -> tuple[Minimisation, ...]:
    if column.is_json:
        return (_SCRUB, _ERASE)
    return PLANS.get(verdict.entity or "", DEFAULT_PLAN)


def personal_columns(
    conn: Connection,
    catalog: Catalog,
    inventory: list[ColumnVerdict],
    refs: dict[QName, str],
    fits: Fits,
) -> tuple[list[PersonalColumn], list[ColumnVerdict]]:
    """The personal columns in the tables of `refs` (table -> how the policy names it, ''
    for the subject) with their minimisation, and the personal columns of other tables."""
    inside, outside = [], []
    for verdict in inventory:
        qname = (verdict.schema, verdict.table)
        table = catalog.tables.get(qname)
        if not verdict.personal or table is None or verdict.column not in table.columns:
            continue
        if qname not in refs:
            outside.append(verdict)
            continue
        column = table.columns[verdict.column]
        ref = f"{refs[qname]}.{column.name}" if refs[qname] else column.name
        refused: list[str] = []
        choice = None
        kept = KEPT.get(verdict.entity or "")
        for option in () if kept else plan_for(verdict, column):
            why = fits(ref, option)
            if why is None:
                choice = option
                break
            said = why if why.startswith(f"{option.label}:") else f"{option.label}: {why}"
            refused.append(said)
        examples = masked_examples(conn, qname, column.name)
        inside.append(PersonalColumn(verdict, ref, choice, tuple(refused), kept, examples))
    return inside, outside


def masked_examples(conn: Connection, table: QName, column: str) -> tuple[str, ...]:
    """A few values of the column, masked (every word reduced to its first letter), the
    masks told apart: of the first 50 values, the first EXAMPLES distinct masks."""
    ref = sql.Identifier(column)
    query = sql.SQL("SELECT left({v}, 80) FROM {t} WHERE {c} IS NOT NULL LIMIT 50").format(
        v=engine_of(conn).dialect.as_text(ref), c=ref, t=sql.Identifier(*table)
    )
    masks = dict.fromkeys(mask(str(value), limit=40) for (value,) in conn.execute(query))
    return tuple(masks)[:EXAMPLES]
