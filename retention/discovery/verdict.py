"""One column's verdict from its sample: Presidio over the values, then :mod:`.decide`.

The part of a scan that needs the analyzer (Presidio, spaCy): :mod:`.scan` reads the database
first and imports this module once the analyzer is built (:mod:`.preload`).

- :func:`known_names`: a recognizer of the database's own names, from the columns named as
  names, so that a name inside a file name or a JSON change log is found too;
- :func:`verdict`: analyse a column's distinct values (:mod:`.analyze`) with the column's and
  table's names as context, decide, keep the evidence, mask the examples (:mod:`.mask`).
"""

from __future__ import annotations

from typing import Any

from presidio_analyzer import EntityRecognizer

from retention.discovery.analyze import analyze_values
from retention.discovery.decide import ColumnFacts, decide, name_shaped
from retention.discovery.engine import LANGUAGES, Analyzer
from retention.discovery.mask import mask
from retention.discovery.model import ColumnVerdict, Content
from retention.discovery.names import STRONG, context_words
from retention.discovery.recognizers import CONTEXT, KnownNamesRecognizer
from retention.discovery.sample import ColumnSample, TableSample


def known_names(
    analyzer: Analyzer, columns: list[ColumnFacts], samples: dict[tuple[str, str], TableSample]
) -> dict[str, list[EntityRecognizer]]:
    """Per language, a recognizer of the names sampled from columns strongly named as
    people's names (none when there is no such column)."""
    names: list[str] = []
    for item in columns:
        got = samples[item.table.qname].columns.get(item.column.name)
        if (
            item.name
            and item.name.entity == "PERSON"
            and item.name.strength >= STRONG
            and item.kind == "text"
            and got
            and name_shaped(got)
        ):
            names.extend(got.values)
    if not names:
        return {}
    return {lang: [KnownNamesRecognizer(names, analyzer.lexicon, lang)] for lang in LANGUAGES}


def verdict(
    analyzer: Analyzer,
    item: ColumnFacts,
    table_sample: TableSample,
    known: dict[str, list[EntityRecognizer]],
    examples: bool,
) -> ColumnVerdict:
    """The verdict on one column, with its evidence (and masked examples if asked)."""
    evidence: dict[str, Any] = {"type": item.kind, "sql_type": item.column.type}
    if item.name is not None:
        evidence["name"] = {
            "entity": item.name.entity,
            "strength": item.name.strength,
            "words": item.name.matched,
        }
    got = table_sample.columns.get(item.column.name) if item.sampled else None
    content = None
    if got is not None and got.values and item.worth_reading(got):
        context = context_words(item.table.name, item.column.name)
        if item.name is not None and item.name.entity in CONTEXT:
            context.append(CONTEXT[item.name.entity][0])  # the name, as the recognizer says it
        content = analyze_values(
            analyzer, item.to_analyse(got), context, is_json=item.kind == "json", extra=known
        )
        evidence["sample"] = _sample_evidence(table_sample, got, content)
    elif item.sampled:
        evidence["sample"] = {
            "method": table_sample.method,
            "rows": table_sample.rows,
            "values": 0,
            "error": table_sample.error,
        }
    decision = decide(item, got, content, known=bool(known))
    entity = decision.entity
    evidence["reason"] = decision.reason
    shown: tuple[str, ...] = ()
    if examples and entity is not None and content is not None:
        picked = content.examples.get(entity) or content.examples.get("*") or []
        shown = tuple(mask(value) for value in picked)
    return ColumnVerdict(
        item.table.schema,
        item.table.name,
        item.column.name,
        entity,
        round(decision.score, 2),
        evidence,
        shown,
    )


def _sample_evidence(
    table_sample: TableSample, got: ColumnSample, content: Content
) -> dict[str, Any]:
    return {
        "method": table_sample.method,
        "rows": got.rows,
        "values": content.values,
        "language": content.language,
        "covered": {e: round(n / content.values, 2) for e, n in content.covered.most_common()},
        "mentioned": {e: round(n / content.values, 2) for e, n in content.mentioned.most_common()},
    }
