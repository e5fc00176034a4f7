"""Content evidence: run Presidio over a column's sampled values and count what it finds.

For each entity, two shares of the sampled values: *covered* (the entity's spans cover most of
the value: a column of phone numbers) and *mentioned* (the entity appears somewhere in it: a
remark that names a relative). JSON values are analysed leaf by leaf, each leaf with its key as
context; a leaf whose key names a person, an address or a birth date counts as a mention of it
(``{"nom": "DUPONT"}`` in a change log keeping old values).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from presidio_analyzer import EntityRecognizer
from spacy.lang.en.stop_words import STOP_WORDS as ENGLISH_STOP_WORDS
from spacy.lang.fr.stop_words import STOP_WORDS as FRENCH_STOP_WORDS

from retention.discovery.engine import Analyzer
from retention.discovery.model import PERSONAL_ENTITIES, Content
from retention.discovery.names import STRONG, column_evidence, words
from retention.discovery.recognizers import REPORT_SCORE

COVERED = 0.6
"""A value is covered by an entity when its spans cover this share of its characters."""
MIN_SCORE: dict[str, float] = {"FR_RPPS": 0.3}
"""Per-entity score floors; a Luhn-valid 11-digit number scores 0.3 without context."""
_KEY_ENTITIES = frozenset({"PERSON", "ADDRESS", "LOCATION", "DATE_OF_BIRTH"})
_FRENCH_ONLY = frozenset(FRENCH_STOP_WORDS - ENGLISH_STOP_WORDS)
_ENGLISH_ONLY = frozenset(ENGLISH_STOP_WORDS - FRENCH_STOP_WORDS)
_TOKEN = re.compile(r"[^\W\d_]+")


def language_of(values: Sequence[str]) -> str:
    """``en`` when the values use more English-only than French-only stop words."""
    french = english = 0
    for value in values[:200]:
        for token in _TOKEN.findall(value.lower()):
            french += token in _FRENCH_ONLY
            english += token in _ENGLISH_ONLY
    return "en" if english > max(french, 2) else "fr"


def analyze_values(
    analyzer: Analyzer,
    values: Sequence[str],
    context: list[str],
    *,
    is_json: bool,
    extra: dict[str, list[EntityRecognizer]],
) -> Content:
    """Count covered and mentioned entities over ``values`` (distinct, non-null)."""
    language = language_of(values)
    content = Content(values=len(values), language=language)
    if not any(_TOKEN.search(value) for value in values):
        language, content.language = "en", "none"  # no word: the pattern-only pipeline will do
    ad_hoc = extra.get(language, [])
    if is_json:
        found = _analyze_json(analyzer, values, context, language, ad_hoc)
    else:
        results = analyzer.analyze(
            list(values), language, context=context, ad_hoc_recognizers=ad_hoc or None
        )
        found = [_spans(value, result) for value, result in zip(values, results, strict=True)]
    for value, (covered, mentioned) in zip(values, found, strict=True):
        _count(content, value, covered, mentioned)
    return content


def _count(
    content: Content, value: str, covered: dict[str, float], mentioned: dict[str, float]
) -> None:
    content.personal_covered += any(e in PERSONAL_ENTITIES for e in covered)
    for entity, score in covered.items():
        content.covered[entity] += 1
        content.scores[entity].append(score)
        if len(content.examples[entity]) < 3:
            content.examples[entity].append(value)
    for entity in mentioned:
        content.mentioned[entity] += 1
    personal = [s for e, s in mentioned.items() if e in PERSONAL_ENTITIES]
    if personal:
        content.personal_mentions += 1
        content.mention_scores.append(max(personal))
        if len(content.examples["*"]) < 3:
            content.examples["*"].append(value)


def _spans(value: str, results: list[Any]) -> tuple[dict[str, float], dict[str, float]]:
    """Entities covering the value, and entities mentioned in it, with their best score."""
    by_entity: dict[str, list[Any]] = defaultdict(list)
    for result in results:
        if result.score >= MIN_SCORE.get(result.entity_type, REPORT_SCORE):
            by_entity[result.entity_type].append(result)
    length = len(value.strip()) or 1
    covered, mentioned = {}, {}
    for entity, found in by_entity.items():
        best = max(r.score for r in found)
        mentioned[entity] = best
        chars: set[int] = set()
        for r in found:
            chars.update(range(r.start, r.end))
        if len(chars) >= COVERED * length:
            covered[entity] = best
    return covered, mentioned


def _analyze_json(
    analyzer: Analyzer,
    values: Sequence[str],
    context: list[str],
    language: str,
    ad_hoc: list[EntityRecognizer],
) -> list[tuple[dict[str, float], dict[str, float]]]:
    """Per value: no entity covers a JSON document; leaves' entities are mentions."""
    leaves: dict[str, list[tuple[int, str]]] = defaultdict(list)
    mentions: list[dict[str, float]] = [{} for _ in values]
    for i, value in enumerate(values):
        for key, text in _leaves(value):
            leaves[key].append((i, text))
            evidence = column_evidence("", key)
            if (
                evidence
                and evidence.entity in _KEY_ENTITIES
                and evidence.strength >= STRONG
                and _TOKEN.search(text)
            ):
                _merge(mentions[i], evidence.entity, 0.6)
    for key, items in leaves.items():
        texts = [text for _, text in items]
        results = analyzer.analyze(
            texts, language, context=[*words(key), *context], ad_hoc_recognizers=ad_hoc or None
        )
        for (i, text), result in zip(items, results, strict=True):
            for entity, score in _spans(text, result)[1].items():
                _merge(mentions[i], entity, score)
    return [({}, found) for found in mentions]


def _merge(found: dict[str, float], entity: str, score: float) -> None:
    found[entity] = max(found.get(entity, 0.0), score)


def _leaves(value: str) -> Iterator[tuple[str, str]]:
    """(key, text) of every string or number leaf; a value that is not JSON is one leaf."""
    try:
        document = json.loads(value)
    except ValueError:
        yield "", value
        return
    yield from _walk("", document)


def _walk(key: str, node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for name, child in node.items():
            yield from _walk(str(name), child)
    elif isinstance(node, list):
        for child in node:
            yield from _walk(key, child)
    elif isinstance(node, str | int | float) and not isinstance(node, bool):
        text = str(node).strip()
        if text:
            yield key, text[:500]
