"""Decide, purely, whether one column holds personal data: from its type, its name and what
Presidio found in its sampled values.

Identifiers that values show reliably (phones, e-mails, NIR, RPPS...) are decided by content,
helped by the name (given to Presidio as context). Names, places, addresses and birth dates
cannot be told from short values alone (a surname is just a word): there the name decides,
unless the values contradict it (too few distinct values, digits instead of letters). Free
text is personal when enough of its values mention someone. Organisations' phones and
addresses are not personal. Surrogate keys, booleans and types that cannot hold a name or an
identifier are not personal, and are not even read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from retention.catalog.introspect import Catalog, Column, Table
from retention.discovery.model import PERSONAL_ENTITIES, Content
from retention.discovery.names import (
    CONTACT_ENTITIES,
    MEDIUM,
    STRONG,
    NameEvidence,
    column_evidence,
    is_account_table,
    is_catalogue_table,
    is_identifier_column,
    is_label_column,
    is_organisation_table,
)
from retention.discovery.sample import ColumnSample

VERDICT_SCORE = 0.5
STRUCTURED_SHARE = 0.5
"""Share of values an identifier must cover for the column to be that identifier."""
WEAK_STRUCTURED_SHARE = 0.8
"""Same, when its hits are weak (Luhn-valid numbers without context: 1 in 10 pass by chance)."""
WEAK_PERSON_SHARE = 0.2
"""Share of values of a bare ``name`` column (table of unknown kind) that must be names the
database holds elsewhere, or that the model reads as names."""
NAMED_VALUES = 60
"""Values analysed of a column whose strong name decides (names, addresses, birth dates)."""
FREE_TEXT_SHARE = 0.05
"""Share of free-text values that must mention someone (at least two values)."""

# Recognised from values: decided by content.
_PATTERN_ENTITIES = (
    "FR_INS",
    "FR_NIR",
    "FR_RPPS",
    "FR_ADELI",
    "UK_NHS",  # before phones: a checked key, where 10 digits can also read as a US phone
    "IBAN_CODE",
    "EMAIL_ADDRESS",
    "IP_ADDRESS",
    "PHONE_NUMBER",
    "DATE_OF_BIRTH",
    "FR_POSTAL_CODE",
)
# Decided by the name and the shape of the values: identifiers a database assigns to people.
_ASSIGNED_IDS = frozenset({"PERSON_ID", "USERNAME"})
# Not personal in a type catalogue, whatever the name of the column says.
_CATALOGUE_FREE = frozenset({"PERSON", "FREE_TEXT_PERSONAL", "LOCATION", "ADDRESS", *_ASSIGNED_IDS})
IDENTIFIER_DISTINCT = 0.9
"""Share of distinct values (per row read) of a generic column holding people's identifiers."""
_IDENTIFIER = re.compile(r"^(?=[^\s]*\d)[\w./:#-]{2,40}$")
_LOGIN = re.compile(r"^[^\W\d_][\w.@\\-]{1,63}$")
_POSTAL = re.compile(r"^(?=.*\d)[A-Za-z0-9]{2,5}(?:[ -][A-Za-z0-9]{2,4})?$")
_SURROGATE = re.compile(
    r"^\{?(?:[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|[0-9a-f]{32,})\}?$",
    re.I,
)
# Not recognisable from short values: decided by the name.
_NAMED_ENTITIES = frozenset({"PERSON", "LOCATION", "ADDRESS", "DATE_OF_BIRTH"})
_KEY_NAME = re.compile(r"(?:^|_)(?:id|oid|uuid|guid|pk|fk|key|ref|seq)$|^id_|[a-z]Id$")
_TEXT_LIKE = ("inet", "cidr")


@dataclass(frozen=True)
class ColumnFacts:
    """A column with what is known before its values are read."""

    table: Table
    column: Column
    kind: str  # key, boolean, number, date, text, json, other
    name: NameEvidence | None
    organisation: bool
    catalogue: bool = False  # rows name kinds of things ("Home phone"), not people
    identifier: bool = False  # generic id/value column of a table of identifiers or people
    accounts: bool = False  # a table of user accounts
    label: bool = False  # the name or title of a row that is not a person

    @property
    def sampled(self) -> bool:
        return self.kind in ("text", "json", "number", "date")

    def worth_reading(self, got: ColumnSample) -> bool:
        """Dates say nothing by themselves (a birth date is known by its name); numbers matter
        only when long enough to be an identifier (9 digits and more)."""
        if self.kind == "date":
            return False
        if self.kind == "number":
            return any(sum(ch.isdigit() for ch in value) >= 9 for value in got.values)
        return self.sampled and not surrogates(got)

    def to_analyse(self, got: ColumnSample) -> tuple[str, ...]:
        """The values worth analysing: all of them, but a few dozen where a strong name
        decides and the values can only object by their shape (``prenom``, ``adresse``): the
        analysis then only gives the evidence and the examples, at a fraction of the cost."""
        name = self.name
        if name is not None and name.entity in _NAMED_ENTITIES and name.strength >= STRONG:
            return got.values[:NAMED_VALUES]
        return got.values


@dataclass(frozen=True)
class Decision:
    """The verdict on one column: entity (None: not personal), confidence, reason."""

    entity: str | None
    score: float
    reason: str


def describe(catalog: Catalog, table: Table, column: Column) -> ColumnFacts:
    """Type and name evidence of one column."""
    foreign = {c for fk in catalog.outgoing(table.qname) for c in fk.columns}
    return ColumnFacts(
        table,
        column,
        _kind(table, column, foreign),
        column_evidence(table.name, column.name),
        is_organisation_table(table.name),
        is_catalogue_table(table.name),
        is_identifier_column(table.name, column.name),
        is_account_table(table.name),
        is_label_column(table.name, column.name),
    )


def _kind(table: Table, column: Column, foreign: set[str]) -> str:
    keyish = column.name in table.primary_key or column.name in foreign
    if (keyish or _KEY_NAME.search(column.name)) and (
        column.is_number or column.base_type == "uuid"
    ):
        return "key"
    if column.base_type == "boolean":
        return "boolean"
    if column.is_number:
        return "number"
    if column.is_date:
        return "date"
    if column.is_json:
        return "json"
    if column.is_text or column.base_type in _TEXT_LIKE or column.base_type.endswith("[]"):
        return "text"
    return "other"


def surrogates(got: ColumnSample) -> bool:
    """UUIDs or hex digests (``uuid char(38)``, password hashes, salts): keys and secrets
    stored as text, never a person's data, and costly to analyse for nothing."""
    return bool(got.values) and _share(got, _SURROGATE) >= 0.9


def name_shaped(sample: ColumnSample) -> bool:
    """Mostly letters, a few words: what names (and places) look like."""
    values = sample.values
    if not values:
        return False
    letters = sum(1 for v in values if re.search(r"[^\W\d_]", v))
    digits = sum(sum(ch.isdigit() for ch in v) for v in values)
    chars = sum(len(v) for v in values) or 1
    wordy = sum(len(v.split()) for v in values) / len(values)
    return letters >= 0.8 * len(values) and digits <= 0.2 * chars and wordy <= 5


def enum_like(sample: ColumnSample) -> bool:
    """Few distinct values repeated over many rows: a code list, not people."""
    distinct = len(sample.values)
    return distinct < 10 and sample.non_null >= 3 * distinct


def decide(
    item: ColumnFacts, got: ColumnSample | None, content: Content | None, *, known: bool
) -> Decision:
    """The verdict; ``known``: the database's own names were available to the analysis."""
    return Decision(*_decide(item, got, content, known=known))


def _decide(
    item: ColumnFacts, got: ColumnSample | None, content: Content | None, *, known: bool
) -> tuple[str | None, float, str]:
    if not item.sampled:
        return (
            None,
            0.0,
            {
                "key": "surrogate key",
                "boolean": "boolean",
                "other": f"type {item.column.type} holds no personal data",
            }[item.kind],
        )
    name = item.name
    if got is None or not got.values:
        return _name_only(item)
    if item.kind == "text" and surrogates(got):
        return None, 0.0, "UUIDs or hex digests: keys or secrets stored as text"
    content = content or Content()
    decided = _by_content(item, content)
    if decided is None:
        decided = _by_assigned_id(item, got)
    if decided is None:
        decided = _by_name(item, got, content, known)
    if decided is None:
        decided = _by_free_text(item, got, content)
    if decided is None:
        decided = _by_mixed_values(item, content)
    if decided is None:
        hint = f"; the name suggests {name.entity}" if name else ""
        if item.kind == "date":
            return None, 0.0, "a date whose name does not say birth"
        return None, 0.0, f"nothing personal in {len(got.values)} sampled values{hint}"
    entity, score, reason = decided
    if item.organisation and entity in CONTACT_ENTITIES:
        return None, 0.0, f"{entity} of an organisation, not of a person"
    if item.catalogue and entity in _CATALOGUE_FREE:
        return None, 0.0, "a catalogue of types: its rows name kinds of information, not people"
    return entity, score, reason


def _name_only(item: ColumnFacts) -> tuple[str | None, float, str]:
    """No value to read (empty column, or the table could not be sampled): trust the name."""
    name = item.name
    if (
        name is not None
        and name.entity in PERSONAL_ENTITIES
        and name.entity != "FREE_TEXT_PERSONAL"
        and name.strength >= MEDIUM
        and not (item.organisation and name.entity in CONTACT_ENTITIES)
        and not (item.catalogue and name.entity in _CATALOGUE_FREE)
        and (item.kind == "text" or name.entity not in _ASSIGNED_IDS)
    ):
        return name.entity, name.strength * 0.6, "name only: no value could be sampled"
    return None, 0.0, "no value could be sampled"


def _combine(content: float, name: float) -> float:
    return 1 - (1 - content) * (1 - name)


def _name_strength(item: ColumnFacts, entity: str) -> float:
    name = item.name
    if name is None:
        return 0.0
    same = name.entity == entity or {name.entity, entity} == {"FR_NIR", "FR_INS"}
    return name.strength if same else 0.0


def _by_content(item: ColumnFacts, content: Content) -> tuple[str, float, str] | None:
    """Identifiers the values show: the most covered one, the more specific on a near tie."""
    best: tuple[float, str] | None = None
    for entity in _PATTERN_ENTITIES:
        share = content.share(entity)
        needed = STRUCTURED_SHARE if content.mean_score(entity) >= 0.4 else WEAK_STRUCTURED_SHARE
        if share >= needed and (best is None or share > best[0] + 0.2):
            best = (share, entity)
    if best is None:
        return None
    share, entity = best
    score = _combine(share * content.mean_score(entity), _name_strength(item, entity))
    return entity, score, f"{share:.0%} of sampled values are {entity}"


def _by_assigned_id(item: ColumnFacts, got: ColumnSample) -> tuple[str, float, str] | None:
    """Identifiers a database assigns to people: medical record numbers (named so, or in a
    generic column of a table of identifiers or people: ``patient_identifier.identifier``)
    and login names (named so, or the identifier of an account: ``users.system_id``)."""
    name = item.name
    if name is not None and name.entity in _ASSIGNED_IDS and name.strength >= MEDIUM:
        entity, why, named = name.entity, f"name '{name.matched}'", True
    elif item.identifier and item.kind == "text":
        entity = "USERNAME" if item.accounts else "PERSON_ID"
        holder = "accounts" if item.accounts else "identifiers or people"
        why, named = f"identifier column of a table of {holder}", False
    else:
        return None
    if item.kind not in ("text", "number") or (entity == "USERNAME" and item.kind != "text"):
        return None
    shaped = _share(got, _IDENTIFIER, _LOGIN) if entity == "USERNAME" else _share(got, _IDENTIFIER)
    surrogate = _share(got, _SURROGATE)
    if shaped < 0.8 or surrogate > 0.2 or enum_like(got):
        return None
    if not named and got.distinct_share < IDENTIFIER_DISTINCT:
        return None  # a value column of mixed attributes (phones, races, places), not an id
    score = _combine(0.5 * shaped, name.strength if named and name else MEDIUM)
    return entity, score, f"{why}, {shaped:.0%} of values shaped as identifiers"


def _share(got: ColumnSample, *shapes: re.Pattern[str]) -> float:
    """Share of the sampled values matching one of ``shapes``."""
    return sum(1 for v in got.values if any(s.match(v) for s in shapes)) / len(got.values)


def _by_name(
    item: ColumnFacts, got: ColumnSample, content: Content, known: bool
) -> tuple[str, float, str] | None:
    """Names, places, addresses, birth dates: the name decides unless the values object."""
    name = item.name
    if name is None or name.strength < MEDIUM:
        return None
    if name.entity == "FR_POSTAL_CODE":
        return _postal_code(item, got)
    if name.entity not in _NAMED_ENTITIES:
        return None
    if not _values_fit(name.entity, item.kind, got):
        return None
    share = content.share(name.entity)
    if name.entity == "PERSON" and name.strength < STRONG and known and share < WEAK_PERSON_SHARE:
        return None  # a bare "name" in a table of unknown kind: the values must look like names
    score = _combine(share * content.mean_score(name.entity), name.strength)
    return name.entity, score, f"name '{name.matched}', values fit"


def _postal_code(item: ColumnFacts, got: ColumnSample) -> tuple[str, float, str] | None:
    """Postal codes of other countries (``SW1A 1AA``, ``10115``, ``1012 AB``): the name says
    so and the values are short codes with digits (French ones are checked by content)."""
    shaped = _share(got, _POSTAL)
    if item.kind != "text" or shaped < 0.8 or enum_like(got):
        return None
    score = _combine(0.5 * shaped, item.name.strength if item.name else 0.0)
    return "POSTAL_CODE", score, f"name '{item.name.matched if item.name else ''}', values fit"


def _values_fit(entity: str, kind: str, got: ColumnSample) -> bool:
    if entity == "DATE_OF_BIRTH":
        return kind == "date" or (kind in ("text", "number") and _date_like(got))
    if kind != "text" or enum_like(got):
        return False
    return entity != "PERSON" or name_shaped(got)


def _date_like(got: ColumnSample) -> bool:
    """Values that read as dates or birth years (4 to 10 digits, a year in 1880-2100)."""
    fit = 0
    for value in got.values:
        digits = re.sub(r"\D", "", value)
        years = re.findall(r"(?:18[89]\d|19\d\d|20\d\d|2100)", value)
        fit += 4 <= len(digits) <= 10 and bool(years)
    return fit >= 0.8 * len(got.values)


def _wordy(got: ColumnSample) -> bool:
    """Most values hold a word: text, not numbers (11-digit invoice numbers pass the RPPS
    key one time in ten, which is not a mention of a doctor)."""
    return sum(1 for v in got.values if re.search(r"[^\W\d_]", v)) >= 0.5 * len(got.values)


def _code_list(got: ColumnSample) -> bool:
    """A few dozen values repeated over the rows: a list of labels (``lien``: Fils, Épouse,
    Voisine...), not free text, whatever the model reads in some of them."""
    distinct = len(got.values)
    return enum_like(got) or (distinct <= 30 and got.non_null >= 20 * distinct)


def _by_mixed_values(item: ColumnFacts, content: Content) -> tuple[str, float, str] | None:
    """The value column of a table of typed attributes (``person_attribute.value``,
    ``PatientContacts.Value``): phones on some rows, e-mails or names on others, none of them
    most of the values, together most of them."""
    share = content.personal_covered / content.values if content.values else 0.0
    if not item.identifier or item.kind != "text" or share < STRUCTURED_SHARE:
        return None
    kinds = [(n, e) for e, n in content.covered.most_common() if e in PERSONAL_ENTITIES]
    entity = kinds[0][1]
    detail = ", ".join(f"{n / content.values:.0%} {e}" for n, e in kinds)
    return entity, share * content.mean_score(entity), f"values of several kinds: {detail}"


def _by_free_text(
    item: ColumnFacts, got: ColumnSample, content: Content
) -> tuple[str, float, str] | None:
    """Text whose values name people or carry their identifiers (not the label of a thing)."""
    if item.label:
        return None
    # a code list ("M." / "Mme") is not people, unless its name says it holds names
    labels = enum_like(got) and not _name_strength(item, "PERSON")
    person = content.share("PERSON")
    if item.kind == "text" and person >= STRUCTURED_SHARE and not labels:
        return (
            "PERSON",
            _combine(person * content.mean_score("PERSON"), 0.0),
            f"{person:.0%} of sampled values are names",
        )
    address = content.share("ADDRESS")
    if item.kind == "text" and address >= STRUCTURED_SHARE and not enum_like(got):
        return (
            "ADDRESS",
            address * content.mean_score("ADDRESS"),
            f"{address:.0%} of sampled values are addresses",
        )
    share = content.mention_share()
    if (
        item.kind not in ("text", "json")
        or share < FREE_TEXT_SHARE
        or content.personal_mentions < 2
        or not _wordy(got)
        or _code_list(got)
    ):
        return None
    scores = content.mention_scores
    strength = min(1.0, share / 0.2) * sum(scores) / len(scores)
    score = _combine(strength, _name_strength(item, "FREE_TEXT_PERSONAL"))
    kinds = ", ".join(e for e, _ in content.mentioned.most_common() if e in PERSONAL_ENTITIES)
    return (
        "FREE_TEXT_PERSONAL",
        max(score, VERDICT_SCORE),
        f"{share:.0%} of sampled values mention {kinds}",
    )
