"""What every labelled schema of the evaluation gives: its name, its language, its truth (the
entity of every personal column; every other column is not personal), and how to fill a
database with it. The French ``dpi`` schema (:mod:`eval.generate`) also has free texts with
planted values; the others (:mod:`eval.openmrs`, :mod:`eval.gp_practice`) are scored column by
column only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from random import Random
from typing import Any

import phonenumbers
import psycopg
from psycopg import sql

Rows = dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True)
class LabelledSchema:
    """A schema of another software, labelled column by column."""

    name: str
    language: str
    shape: str  # one line: what the schema is like, for the report
    truth: dict[str, tuple[str, ...]]  # "schema.table.column" -> right entities
    fill: Callable[[psycopg.Connection[Any], int, int], dict[str, int]]  # patients, seed -> rows


def copy_table(conn: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]]) -> None:
    """``COPY`` rows into ``schema.table``."""
    schema, name = table.split(".")
    with conn.cursor().copy(
        sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(schema, name))
    ) as copy:
        for row in rows:
            copy.write_row(row)


def copy_rows(conn: psycopg.Connection[Any], tables: Rows) -> dict[str, int]:
    """``COPY`` every table's rows in (tables in dependency order), then ``ANALYZE``; the row
    counts."""
    for table, rows in tables.items():
        copy_table(conn, table, rows)
    conn.execute("ANALYZE")
    return {table: len(rows) for table, rows in tables.items()}


def valid_phone(rng: Random, region: str, patterns: Iterable[str]) -> str:
    """A phone number in one of ``patterns`` (``#``: a random digit) that libphonenumber
    holds valid for ``region``: what a real admission desk types."""
    choices = tuple(patterns)
    while True:
        number = "".join(str(rng.randrange(10)) if c == "#" else c for c in rng.choice(choices))
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(number, region)):
                return number
        except phonenumbers.NumberParseException:
            continue
