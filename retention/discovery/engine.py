"""The Presidio analyzer, built once per process, offline.

French (``fr``): spaCy ``fr_core_news_sm`` loaded by package name with only its NER kept (its
NER has its own token-to-vector layer; the tagger, parser, sentence splitter and lemmatizer are
excluded, which makes loading about 20 times faster and analysis 2.5 times faster), our French
recognizers and Presidio's own ones with French context words. The French words the scan and
the scrub need (:attr:`Analyzer.lexicon`, :func:`lemma_tables`) are read from the lemmatizer's
tables in the model's files, without loading the lemmatizer (about a second saved).

English (``en``): no English spaCy model is installable from PyPI here, so English is *pattern
recognizers only*: a blank spaCy English tokenizer (shipped with spaCy) and the same pattern
recognizers with English context words; people in English text are found by the database's
own names (:class:`.recognizers.KnownNamesRecognizer`), not by a model.

Presidio's context enhancement reads lemmas; a tiny component sets each token's lemma to its
lower-cased text, and context words are matched as whole words. Nothing is downloaded: the
French model is a Python package, tldextract uses its bundled suffix list.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import spacy
from presidio_analyzer import (
    AnalyzerEngine,
    BatchAnalyzerEngine,
    EntityRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from spacy.language import Language
from spacy.tokens import Doc
from srsly.msgpack import Unpacker  # spaCy's serialisation library: the model's own tables

from retention.discovery.names import fold
from retention.discovery.recognizers import (
    FrenchNerRecognizer,
    international_recognizers,
    pattern_recognizers,
)

LANGUAGES = ("fr", "en")
FRENCH_MODEL = "fr_core_news_sm"
_FRENCH_UNUSED = ["tok2vec", "morphologizer", "parser", "senter", "attribute_ruler", "lemmatizer"]
_LOOKUPS = "lemmatizer/lookups/lookups.bin"
_LEMMA_COMPONENT = "retention_lower_lemma"


@Language.component(_LEMMA_COMPONENT)
def _lower_lemma(doc: Doc) -> Doc:
    """Lemma = lower-cased text: enough for whole-word context matching, and free."""
    for token in doc:
        token.lemma_ = token.lower_
    return doc


class _OfflineSpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine over pipelines we load ourselves (never downloaded)."""

    def __init__(self) -> None:
        config = NerModelConfiguration(
            model_to_presidio_entity_mapping={"PER": "PERSON", "LOC": "LOCATION"},
            labels_to_ignore=["ORG", "MISC"],
        )
        super().__init__(
            models=[
                {"lang_code": "fr", "model_name": FRENCH_MODEL},
                {"lang_code": "en", "model_name": "blank:en"},
            ],
            ner_model_configuration=config,
        )

    def load(self) -> None:
        french = spacy.load(FRENCH_MODEL, exclude=_FRENCH_UNUSED)
        french.add_pipe(_LEMMA_COMPONENT)
        english = spacy.blank("en")
        english.add_pipe(_LEMMA_COMPONENT)
        self.pipelines = {"fr": french, "en": english}
        self.nlp = self.pipelines  # type: ignore[assignment]  # Presidio declares it None


@dataclass(frozen=True)
class Analyzer:
    """The engine and what the scan needs beside it."""

    engine: AnalyzerEngine
    batch: BatchAnalyzerEngine
    lexicon: frozenset[str] = field(repr=False)  # common French words, folded

    def analyze(self, texts: list[str], language: str, **kwargs: Any) -> Iterator[list[Any]]:
        """Presidio results per text (spaCy runs over the batch)."""
        yield from self.batch.analyze_iterator(texts, language, batch_size=256, **kwargs)


CONTEXT_SETTINGS: dict[str, Any] = {
    "context_prefix_count": 6,
    "context_suffix_count": 3,
    "context_matching_mode": "whole_word",
}
"""Presidio's context enhancement: six words before a span, three after, whole words."""


class ScanContext(LemmaContextAwareEnhancer):
    """Presidio's context enhancement (:class:`LemmaContextAwareEnhancer`) with
    :data:`CONTEXT_SETTINGS`: the same rule and the same results (a test compares them), at a
    lower cost. Presidio deep-copies every text's results, looks for a span's token one token
    at a time and lower-cases every surrounding word once per context word of the recognizer;
    that was a tenth of a scan's analysis. Here the results are updated in place, the token is
    found by bisection (the first token ending after the span's start, as Presidio's search
    finds it) and the words are lower-cased once."""

    def __init__(self) -> None:
        super().__init__(**CONTEXT_SETTINGS)

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None:
            return raw_results
        by_id = {recognizer.id: recognizer for recognizer in recognizers}
        given = [word.lower() for word in context or ()]
        tokens: Any = nlp_artifacts.tokens or ()
        ends = [i + len(t) for i, t in zip(nlp_artifacts.tokens_indices, tokens, strict=True)]
        for result in raw_results:
            metadata = result.recognition_metadata or {}
            recognizer = by_id.get(metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
            if recognizer is None or not recognizer.context:
                continue
            if metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY):
                continue
            words = {word.lower() for word in self._around(result.start, nlp_artifacts, ends)}
            words.update(given)
            found = next((w for w in recognizer.context if w.lower() in words), "")
            if found:
                score = max(
                    result.score + self.context_similarity_factor,
                    self.min_score_with_context_similarity,
                )
                result.score = min(score, self.MAX_SCORE)
                result.analysis_explanation.set_supportive_context_word(found)
                result.analysis_explanation.set_improved_score(result.score)
        return raw_results

    def _around(self, start: int, nlp: NlpArtifacts, ends: list[int]) -> list[str]:
        """The lemmas around the token where a span starts (Presidio's window)."""
        if not ends:
            return []
        at = bisect_right(ends, start)
        if at == len(ends):
            raise ValueError("a span starts after the text's last token")
        return [
            *self._add_n_words_backward(at, self.context_prefix_count, nlp.lemmas, nlp.keywords),
            *self._add_n_words_forward(at, self.context_suffix_count, nlp.lemmas, nlp.keywords),
        ]


_lock = threading.Lock()
_cached: Analyzer | None = None


def get_analyzer() -> Analyzer:
    """The process-wide analyzer (about a second to build the first time)."""
    global _cached  # noqa: PLW0603  (one engine per process, built on first use)
    with _lock:
        if _cached is None:
            _cached = build_analyzer()
        return _cached


def build_analyzer() -> Analyzer:
    """A new analyzer (prefer :func:`get_analyzer`, which builds one per process)."""
    nlp_engine = _OfflineSpacyEngine()
    nlp_engine.load()
    lexicon = _lexicon(lemma_tables(nlp_engine.pipelines["fr"], "lemma_index"))
    recognizers = [
        *pattern_recognizers("fr"),
        *pattern_recognizers("en"),
        *international_recognizers("fr"),
        *international_recognizers("en"),
        FrenchNerRecognizer(lexicon, "fr"),
    ]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=list(LANGUAGES))
    engine = AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=list(LANGUAGES),
        context_aware_enhancer=ScanContext(),
    )
    _warm_up(engine)
    return Analyzer(engine, BatchAnalyzerEngine(engine), lexicon)


_WARM_UP = "M. Jean Martin, né le 01/02/1960, 12 rue des Lilas, 75011 Paris, tél. 06 12 34 56 78"


def _warm_up(engine: AnalyzerEngine) -> None:
    """Presidio compiles each pattern on its first use and spaCy sets up on its first text:
    both happen here, where the analyzer is built (on :mod:`.preload`'s thread for a scan),
    not while the first columns are analysed. The text is made up."""
    for language in LANGUAGES:
        engine.analyze(_WARM_UP, language)


def lemma_tables(french: Language, *names: str) -> dict[str, dict[int, Any]]:
    """Tables of the French lemmatizer (``lemma_index``: lemmas by part of speech,
    ``lemma_lookup``: about 200,000 inflected forms), keyed by spaCy's string hashes as the
    model stores them; read from its file without loading the lemmatizer, the tables not
    asked for skipped unread."""
    if french.path is None:
        raise OSError(f"{FRENCH_MODEL}: the model's folder is unknown")
    tables: dict[str, dict[int, Any]] = {}
    with (french.path / _LOOKUPS).open("rb") as stored:
        unpacker = Unpacker(stored, raw=False, strict_map_key=False)
        for _ in range(unpacker.read_map_header()):
            name = unpacker.unpack()
            if name in names:
                tables[name] = unpacker.unpack()
            else:
                unpacker.skip()
    if missing := set(names) - set(tables):
        raise OSError(f"{FRENCH_MODEL}: no lemmatizer table {', '.join(sorted(missing))}")
    return tables


def _lexicon(tables: dict[str, dict[int, Any]]) -> frozenset[str]:
    """Nouns, verbs, adjectives and adverbs of the French lemmatizer's tables, folded."""
    return frozenset(fold(word) for words in tables["lemma_index"].values() for word in words)
