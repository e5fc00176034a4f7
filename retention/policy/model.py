"""The policy file's schema: what a compliance officer can write, checked before any database.

A policy names its subject (the table whose rows are data subjects), how other rows relate to
it, named dates, the retention expression (`retain_until`) and phases. Expressions stay text
here; :mod:`retention.policy.bind` parses them and resolves every name against the catalogue.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from retention.policy.actions import ACTIONS, SPECS

GENERALIZATIONS: tuple[str, ...] = ("year", "month", "department", "range")
DATE_FORMATS: tuple[str, ...] = ("YYYY-MM-DD", "DD/MM/YYYY", "YYYYMMDD")
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class _Strict(BaseModel):
    """Unknown keys are errors, with a suggestion (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = [f.alias or n for n, f in cls.model_fields.items()]
            for key in data:
                if key not in allowed:
                    close = difflib.get_close_matches(str(key), allowed, n=1)
                    hint = (
                        f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
                    )
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key '{key}'; {hint}",
                        {"key": str(key), "hint": hint},
                    )
        return data


class Subject(_Strict):
    """The table whose rows are the data subjects, and its key column."""

    table: str = Field(
        description="Table, optionally schema-qualified: 'public.patients'.",
        examples=["patients", "public.patients"],
    )
    key: str = Field(
        description="Unique key column of the subject table (primary key or unique key).",
        examples=["patient_id"],
    )


class Polymorphic(_Strict):
    """`class_column = '<class>' AND id_column = <key of the table for that class>`.

    Every class the column holds must be mapped (`classes`) or declared outside the record
    with the reason (`unrelated_classes`): `check` reads the column, and a purge or archive
    refuses to run while a class is in neither (its rows would be left behind silently)."""

    class_column: str = Field(
        description="Column naming the class of the row referred to.", examples=["object_class"]
    )
    id_column: str = Field(
        description="Column holding the key of the row referred to.", examples=["object_id"]
    )
    classes: dict[str, str] = Field(
        min_length=1,
        description="Class value -> table whose key `id_column` holds (the subject or a "
        "related table).",
        examples=[{"CSejour": "sejours", "CConsultation": "consultations"}],
    )
    unrelated_classes: dict[str, str] = Field(
        default_factory=dict,
        description="class value -> why its rows are not part of the record",
        examples=[{"CMedecin": "journal des fiches praticiens, hors dossier patient"}],
    )

    @model_validator(mode="after")
    def _classes_apart(self) -> Polymorphic:
        for cls, reason in self.unrelated_classes.items():
            if cls in self.classes:
                raise PydanticCustomError(
                    "class_twice",
                    "class '{cls}' is both mapped in 'classes' and listed in 'unrelated_classes'",
                    {"cls": cls},
                )
            if len(reason.strip()) < 3:
                raise PydanticCustomError(
                    "class_reason",
                    "'unrelated_classes' needs the reason why the rows of class '{cls}' are "
                    "not part of the record",
                    {"cls": cls},
                )
        return self


class Link(_Strict):
    """A reference the schema does not declare as a foreign key."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["column"]}, {"required": ["polymorphic"]}]}
    )

    table: str = Field(description="The child table whose rows belong to the parent's.")
    column: str | None = Field(
        default=None,
        description="Plain column holding the parent key (no foreign key).",
        examples=["patient_id"],
    )
    references: str | None = Field(
        default=None, description="Parent table (default: the subject table)."
    )
    polymorphic: Polymorphic | None = Field(
        default=None, description="A class column and an id column naming the parent row."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Link:
        if (self.column is None) == (self.polymorphic is None):
            raise PydanticCustomError(
                "link_kind", "a link needs exactly one of 'column' or 'polymorphic'"
            )
        if self.polymorphic is not None and self.references is not None:
            raise PydanticCustomError(
                "link_kind", "'references' is for column links; polymorphic links use 'classes'"
            )
        return self


class Related(_Strict):
    """Rows that belong to a subject: foreign keys are followed automatically, plus these."""

    links: list[Link] = Field(
        default_factory=list,
        description="References without a foreign key: plain columns and polymorphic pairs.",
    )
    exclude: list[str] = Field(default_factory=list, description="Tables never followed.")
    follow_foreign_keys: bool = Field(
        default=True,
        description="Follow the foreign keys pointing at the subject and at related tables.",
    )


class ColumnDate(_Strict):
    """A date stored in a column of the subject table (possibly as text)."""

    column: str = Field(description="Column of the subject table.", examples=["naissance"])
    format: Literal["YYYY-MM-DD", "DD/MM/YYYY", "YYYYMMDD"] | None = Field(
        default=None,
        description="Format of a date stored as text; anything else in it is unreadable "
        "(the subject is then undeterminable: kept and reported).",
    )
    if_missing: Literal["undeterminable", "null"] = Field(
        default="undeterminable",
        description="A missing value makes the subject undeterminable, or counts as null "
        "(e.g. no death date: alive).",
    )


class AggregateDate(_Strict):
    """The latest (or earliest) date over the subject's related rows, with a filter."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["latest"]}, {"required": ["earliest"]}]}
    )

    latest: str | None = Field(
        default=None,
        description="Expression over the related rows; its latest value is taken.",
        examples=["coalesce(sortie, today)", "plagesconsult.date"],
    )
    earliest: str | None = Field(
        default=None, description="Expression over the related rows; its earliest value."
    )
    over: str | None = Field(
        default=None, description="Related table the rows come from.", examples=["sejours"]
    )
    where: str | None = Field(
        default=None, description="Condition on those rows.", examples=["annule = '0'"]
    )
    format: Literal["YYYY-MM-DD", "DD/MM/YYYY", "YYYYMMDD"] | None = Field(
        default=None,
        description="Format of the dates stored as text in the columns these rows are read "
        "from (each text column the expressions read is read as a date in it); a value in "
        "another shape is unreadable, and its subject undeterminable.",
    )
    if_missing: Literal["undeterminable", "null"] = Field(
        default="undeterminable",
        description="A row (that passes 'where') whose value is missing, e.g. a stay still open "
        'with no discharge date, makes the subject undeterminable; with "null" such rows are '
        "left out (write coalesce(sortie, today) when an open stay counts as today).",
    )

    @model_validator(mode="after")
    def _one_direction(self) -> AggregateDate:
        if (self.latest is None) == (self.earliest is None):
            raise PydanticCustomError(
                "aggregate_kind", "give exactly one of 'latest' or 'earliest'"
            )
        return self

    @property
    def value(self) -> str:
        """The expression aggregated."""
        return self.latest if self.latest is not None else str(self.earliest)

    @property
    def function(self) -> str:
        return "max" if self.latest is not None else "min"


def _date_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "aggregate" if {"latest", "earliest"} & value.keys() else "column"
    if isinstance(value, ColumnDate):
        return "column"
    return "aggregate" if isinstance(value, AggregateDate) else "expression"


DateSpec = Annotated[
    Annotated[ColumnDate, Tag("column")]
    | Annotated[AggregateDate, Tag("aggregate")]
    | Annotated[str, Tag("expression")],
    Discriminator(_date_kind),
]


class ColumnSpec(_Strict):
    """One column an action applies to, with its parameters."""

    column: str = Field(
        description="'column' of the subject table or 'table.column' of a related table.",
        examples=["tel", "contacts_urgence.tel"],
    )
    value: str | int | None = Field(default=None, description="erase: neutral value.")
    to: Literal["year", "month", "department", "range"] | None = Field(
        default=None, description="generalize: to the year, month, department or a range."
    )
    width: int | None = Field(default=None, gt=0, description="generalize to range: bucket.")
    replace_with: Literal["tag", "pseudonym"] = Field(
        default="tag", description="scrub: what replaces a personal span."
    )


ColumnItem = Annotated[
    Annotated[ColumnSpec, Tag("spec")] | Annotated[str, Tag("name")],
    Discriminator(lambda v: "name" if isinstance(v, str) else "spec"),
]


class Phase(_Strict):
    """A step of the record's life: when it is due and what happens then."""

    name: str = Field(pattern=NAME_PATTERN, examples=["destruction", "coordonnees"])
    due: str = Field(
        description="Date expression, the last day before the phase: it is due the day after.",
        examples=["retain_until", "derniere_venue + 3 years"],
    )
    action: str = Field(
        description="erase, pseudonymize, generalize, scrub (on columns); archive, purge "
        "(on whole records).",
        json_schema_extra={"enum": list(ACTIONS)},
    )
    columns: list[ColumnItem] = Field(
        default_factory=list, description="Columns of a column action (not for archive/purge)."
    )
    description: str | None = None
    triggers: list[str] = Field(
        default_factory=list,
        description="Triggers and rules on this phase's tables that were reviewed and are "
        "accepted, by name (they fire for every row the phase deletes or rewrites).",
    )
    accept_non_transactional: list[str] = Field(
        default_factory=list,
        description="Tables without transactions (MariaDB/MySQL MyISAM, Aria, MEMORY) that this "
        "phase may change, accepted by name once the risk is reviewed: a batch cut short keeps "
        "what it already changed there while the rest of it, its audit entry included, is "
        "rolled back (a batch is not atomic).",
        examples=[["sejour", "user_log"]],
    )

    @model_validator(mode="after")
    def _action_fits(self) -> Phase:
        if self.action not in ACTIONS:
            close = difflib.get_close_matches(self.action, ACTIONS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"one of {', '.join(ACTIONS)}"
            raise PydanticCustomError(
                "unknown_action",
                "unknown action '{action}'; {hint}",
                {"action": self.action, "hint": hint},
            )
        on_columns = SPECS[self.action].on_columns
        if on_columns and not self.columns:
            raise PydanticCustomError(
                "columns_needed", "action '{action}' needs 'columns'", {"action": self.action}
            )
        if not on_columns and self.columns:
            raise PydanticCustomError(
                "columns_forbidden",
                "action '{action}' acts on whole rows; remove 'columns'",
                {"action": self.action},
            )
        for spec in self.column_specs():
            if self.action == "generalize" and spec.to is None:
                raise PydanticCustomError(
                    "generalize_to",
                    "generalize needs 'to' for column '{column}' (year, month, department, range)",
                    {"column": spec.column},
                )
            if spec.to == "range" and spec.width is None:
                raise PydanticCustomError(
                    "range_width",
                    "'to: range' needs 'width' for column '{column}'",
                    {"column": spec.column},
                )
        return self

    @property
    def needs_pseudonym_key(self) -> bool:
        return SPECS[self.action].needs_pseudonym_key(self.column_specs())

    def column_specs(self) -> list[ColumnSpec]:
        """Columns as specs (a bare string is a column with default parameters)."""
        return [ColumnSpec(column=c) if isinstance(c, str) else c for c in self.columns]


class KeptColumn(_Strict):
    """A personal column deliberately kept as it is, with the reason (for coverage)."""

    column: str = Field(examples=["medecins.rpps"])
    reason: str = Field(min_length=3, description="Why this personal column is kept.")


class Policy(_Strict):
    """One policy file."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="How commands, plans and the audit trail name the policy.",
        examples=["dossier-medical"],
    )
    title: str | None = None
    description: str | None = None
    legal_basis: str | None = Field(default=None, examples=["CSP art. R1112-7"])
    subject: Subject = Field(description="The table whose rows are the data subjects.")
    related: Related = Field(
        default_factory=Related, description="Which other rows belong to a subject."
    )
    dates: dict[str, DateSpec] = Field(
        default_factory=dict,
        description="Named dates: a column of the subject, the latest/earliest value over "
        "related rows, or an expression over other dates.",
        examples=[{"derniere_venue": "greatest(dernier_sejour, derniere_consultation)"}],
    )
    retain_until: str = Field(
        description="End of the legal retention, its last day kept: a date expression "
        "(null: undeterminable).",
        examples=["derniere_venue + 20 years"],
    )
    phases: list[Phase] = Field(
        min_length=1, description="Steps of the record's life, each with its due date."
    )
    keep: list[KeptColumn] = Field(
        default_factory=list, description="Personal columns deliberately kept (for coverage)."
    )

    @model_validator(mode="after")
    def _unique_phases(self) -> Policy:
        seen: set[str] = set()
        for phase in self.phases:
            if phase.name in seen:
                raise PydanticCustomError(
                    "duplicate_phase", "phase '{name}' is defined twice", {"name": phase.name}
                )
            seen.add(phase.name)
        return self
