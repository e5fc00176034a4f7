"""Scrub free text: replace the personal spans Presidio finds with a tag or another value.

The core of the ``scrub`` action, independent of SQL. A text keeps everything but its personal
spans (names, phones, e-mails, NIR, addresses, birth dates...), each replaced with a French tag
(``<PERSONNE>``, ``<TEL>``...) or with what the caller's ``replace`` function returns (a keyed
pseudonym). JSON documents are scrubbed leaf by leaf: keys are kept; a value under a key that
says what it is (``nom``, ``tel``, ``email``, ``adresse``, ``naissance``...) is replaced whole;
other string values are scrubbed as text.

**Idempotent by construction.** Tags and pseudonyms are never replaced again (spans are trimmed
off them), and a changed text is analysed again until nothing more is found (at most
:data:`MAX_ROUNDS` rounds), so what :meth:`Scrubber.scrub_texts` returns is a fixed point: a
second pass changes nothing. No marker is added to the text.

**People** are read span by span (:func:`person_bounds`): the scan's model and lexicon, with
rules for what a remark looks like (SURNAMES in capitals, names after a relative, drug names
and eponyms kept).

**Fast.** The spaCy model loaded by :func:`.engine.get_analyzer` is reused (NER only, no
tagger, parser or lemmatizer); identical texts are analysed once; large inputs are analysed by
a pool of worker processes (one per core, one BLAS thread each), started once per process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from loguru import logger
from presidio_analyzer import (
    AnalysisExplanation,
    AnalyzerEngine,
    BatchAnalyzerEngine,
    EntityRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts
from spacy.lang.fr.stop_words import STOP_WORDS as FRENCH_STOP_WORDS

from retention.discovery.names import MEDIUM, column_evidence, fold
from retention.discovery.recognizers import (
    CONTEXT,
    REPORT_SCORE,
    FrAddressRecognizer,
    FrenchNerRecognizer,
    pattern_recognizers,
)
from retention.discovery.scrub_rules import (
    BIRTH_BEFORE,
    EPONYM_BEFORE,
    BirthDateRecognizer,
    ContextNameRecognizer,
    RuleRecognizer,
    StreetAddressRecognizer,
    Vocabulary,
    dose_after,
)

TAGS: dict[str, str] = {
    "PERSON": "<PERSONNE>",
    "PHONE_NUMBER": "<TEL>",
    "EMAIL_ADDRESS": "<EMAIL>",
    "FR_NIR": "<NIR>",
    "FR_INS": "<INS>",
    "ADDRESS": "<ADRESSE>",
    "LOCATION": "<LIEU>",
    "DATE_OF_BIRTH": "<DATE_NAISSANCE>",
    "FR_POSTAL_CODE": "<CODE_POSTAL>",
    "FR_RPPS": "<RPPS>",
    "FR_ADELI": "<ADELI>",
    "IP_ADDRESS": "<IP>",
    "IBAN_CODE": "<IBAN>",
}
"""What each personal entity becomes. FR_FINESS (an establishment) is not personal: kept."""

SCRUB_SCORE = REPORT_SCORE
"""Spans scoring at least this are replaced (the scan's threshold: context words count)."""
MAX_ROUNDS = 3
"""Analyses of one text at most: the first, and checks that its scrubbed form is clean."""
PARALLEL_FROM = 40_000
"""Characters of distinct texts from which the worker pool is used (about 400 short remarks,
or 60 letters; below, sending them to the workers costs more than it saves)."""

# Tags, and pseudonyms as retention.actions.pseudonymize writes them (PSEUDONYM_PATTERN).
PROTECTED = re.compile(r"<[A-Z][A-Z_]{1,30}>|(?<![\w-])PSN-[A-Z2-7]{8,28}(?!\w)")
_ALNUM = re.compile(r"\w")
# A date is a birth date only right after its context word ("née le", "DDN :"): Presidio's
# context window spans six words, which would take the dates of care of the same sentence
# (BIRTH_BEFORE).
_CAPS = r"[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'’]*[A-ZÀ-ÖØ-Þ](?:-[A-ZÀ-ÖØ-Þ]{2,})*"
_CAPS_AFTER = re.compile(rf"[ -]({_CAPS})(?![\w<])")
_CAPS_BEFORE = re.compile(rf"(?<![\w>])({_CAPS})[ -]$")
_DIGIT_RUN = 9  # numbers this long in JSON may be identifiers: analysed as text
_BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

Replace = Callable[[str, str], str]
"""``replace(entity, personal_text) -> replacement``."""


def tag(entity: str, _text: str) -> str:
    """The French tag of ``entity`` (the default replacement)."""
    return TAGS[entity]


@dataclass(frozen=True)
class Span:
    """A personal span of a text, to be replaced."""

    entity: str
    start: int
    end: int


# -- spans ----------------------------------------------------------------------------------
def clean_spans(text: str, found: Sequence[tuple[str, int, int, float]]) -> list[Span]:
    """Presidio's results for ``text`` → the spans to replace: scored high enough, personal,
    trimmed off tags and pseudonyms, overlapping ones merged (the best-scored entity names
    the merged span), neighbours of the same entity separated by blanks joined."""
    protected = [m.span() for m in PROTECTED.finditer(text)]
    pieces: list[tuple[int, int, float, str]] = []
    for entity, start, end, score in found:
        if score < SCRUB_SCORE or entity not in TAGS:
            continue
        if entity == "DATE_OF_BIRTH" and not BIRTH_BEFORE.search(text, 0, start):
            continue
        bounds = _person_span(text, start, end) if entity == "PERSON" else (start, end)
        for part in _outside(*bounds, protected):
            s, e = _strip(text, *part)
            if e > s and _ALNUM.search(text, s, e):
                pieces.append((s, e, score, entity))
    return _merge(text, sorted(pieces))


def _person_span(text: str, start: int, end: int) -> tuple[int, int]:
    """A person's span with the SURNAMES beside it, cut before a word a dose follows
    (``Pentasa 4000`` is a drug, not a name)."""
    start, end = _with_surnames(text, start, end)
    end = _first_line_end(text, start, end)
    if EPONYM_BEFORE.search(text, max(0, start - 40), start):
        return start, start  # "syndrome de Guillain Barré": a disease
    for word in _NAME_WORD.finditer(text, start, end):
        if dose_after(text, word.end()):
            return start, word.start()
    return start, end


def _with_surnames(text: str, start: int, end: int) -> tuple[int, int]:
    """A person's span grown over the SURNAMES in capitals right beside it: the model often
    stops at the first name ("Paul" of "Paul LE GOFF"), French usage capitalises surnames."""
    while (match := _CAPS_AFTER.match(text, end)) and fold(match.group(1)) not in _ACRONYMS:
        end = match.end()
    while (match := _CAPS_BEFORE.search(text, 0, start)) and fold(match.group(1)) not in _ACRONYMS:
        start = match.start()
    return start, end


def _outside(start: int, end: int, protected: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The parts of [start, end) outside every protected interval."""
    for p_start, p_end in protected:
        if p_end <= start or p_start >= end:
            continue
        if p_start > start:
            yield start, p_start
        start = max(start, p_end)
    if start < end:
        yield start, end


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and not text[start].isalnum() and text[start] not in "+(":
        start += 1
    while end > start and not (text[end - 1].isalnum() or text[end - 1] in ")."):
        end -= 1
    return start, end


def _merge(text: str, pieces: list[tuple[int, int, float, str]]) -> list[Span]:
    merged: list[list[Any]] = []  # [start, end, best score, entity]
    for start, end, score, entity in pieces:
        last = merged[-1] if merged else None
        if last is not None and (
            start < last[1] or (entity == last[3] and not text[last[1] : start].strip())
        ):
            last[1] = max(last[1], end)
            if score > last[2]:
                last[2], last[3] = score, entity
        else:
            merged.append([start, end, score, entity])
    return [Span(entity, start, end) for start, end, _, entity in merged]


def apply_spans(text: str, spans: Sequence[Span], replace: Replace = tag) -> str:
    """``text`` with each span replaced; the rest is left exactly as it was."""
    return _join(text, spans, [replace(s.entity, text[s.start : s.end]) for s in spans])


def _join(text: str, spans: Sequence[Span], replacements: Sequence[str]) -> str:
    parts, at = [], 0
    for span, replacement in zip(spans, replacements, strict=True):
        parts += [text[at : span.start], replacement]
        at = span.end
    parts.append(text[at:])
    return "".join(parts)


def _analyze(texts: list[str], language: str) -> list[list[Span]]:
    """Spans of each text, with this process's scrub engine."""
    engine = scrub_engine()
    supported = engine.engine.get_supported_entities(language)
    entities = [entity for entity in TAGS if entity in supported]
    out = []
    results = engine.batch.analyze_iterator(texts, language, batch_size=256, entities=entities)
    for text, found in zip(texts, results, strict=True):
        out.append(clean_spans(text, [(r.entity_type, r.start, r.end, r.score) for r in found]))
    return out


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Workers started here use one BLAS thread each: one worker per core already, more
    threads would compete for the same cores (the environment is read when they start)."""
    saved = {name: os.environ.get(name) for name in _BLAS_THREADS}
    os.environ.update(dict.fromkeys(_BLAS_THREADS, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _warm_worker() -> None:
    """Worker start: Ctrl-C is for the parent; build the engine once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    scrub_engine()


# -- people, as scrub reads them ------------------------------------------------------------
# The scan's person recognizer scores whole columns; scrub decides span by span, so it reads
# the model's PER spans itself (same loaded model, same lexicon):
# - a capitalised common word opening a sentence is not a name ("Relais Metformine", "Reprise
#   de Spiriva": the model reads two capitalised words as a person);
# - two name words or more make a person; a single one only right after a civility or a
#   relative ("Dr Lemoine", "fille Claire", "tuteur : LAFITTE"), so eponyms ("maladie de
#   Crohn") and drug names stay;
# - names the model misses in the French order of a SURNAME in capitals and a first name
#   ("LEROY Marie", "Marie LEROY") are found by their shape, unless the capitals are a
#   medical abbreviation or the other word opens a sentence and is a common word.
_NAME_WORD = re.compile(r"[^\W\d_][\w'’]*(?:-[^\W\d_][\w'’]*)*")


def _vocabulary(words: str) -> frozenset[str]:
    return frozenset(words.split())


_PARTICLE_WORDS = _vocabulary("de du des d d' d’ la le les van von ben el di da del dos y")
_ACRONYMS = _vocabulary(
    "hta avc ait bpco irm tdm ecg eeg emg ssr ehpad ains vih vhb vhc tca fa iec ara ivg ivd "
    "sc im iv po cr crh cro rdv ras cat ide as ash smur samu sau usc uhcd chu ch ght dim dmp "
    "ins nir rpps ipp dr pr mme mlle nb ok pa fc spo tp inr crp nfs bu ecbu pcr covid sida "
    "tep rx echo avk aod hbpm sng sad pic picc cip ucd ald cmu ame mdph apa udaf lp li sr xr "
    "cp gel inj sol buv mg ml ui"
)
_PERSON_CONTEXT = frozenset(w.rstrip(".") for w in CONTEXT["PERSON"]) | {
    "tuteur", "tutrice", "curatrice", "contact", "confiance", "appel", "accompagné",
    "accompagnée", "gendre", "belle-fille", "neveu", "nièce", "compagnon", "compagne",
}  # fmt: skip
_CAPS_WORD = r"[A-ZÀ-ÖØ-Þ]{2,}(?:['’-][A-ZÀ-ÖØ-Þ]{2,})*"
_CAPITALISED = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+(?:-[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+)?"
_NEXT_WORD = re.compile(rf" ({_CAPITALISED}|{_CAPS_WORD})(?![\w<-])")
_PREVIOUS_WORD = re.compile(rf"(?<![\w>'’-])({_CAPITALISED}|{_CAPS_WORD}) $")
_RELATIVE = re.compile(
    r"(?i:(?<!\w)(?:fils|fille|époux|épouse|epoux|epouse|mari|femme|mère|mere|père|pere|frère"
    r"|frere|sœur|soeur|tuteur|tutrice|curateur|curatrice|conjoint|conjointe|compagnon|compagne"
    r"|ami|amie|voisin|voisine|gendre|belle-fille|beau-fils|neveu|nièce|niece|cousin|cousine"
    r"|petit-fils|petite-fille|confiance|wife|husband|son|daughter|mother|father))"
    rf"\s?[:(,–-]?\s?((?:{_CAPITALISED}|{_CAPS_WORD})(?: (?:{_CAPITALISED}|{_CAPS_WORD})){{0,2}})"
    r"(?![\w-])"
)
_SURNAME_FIRST = re.compile(
    rf"(?<![\w'’-])((?:{_CAPS_WORD} )*{_CAPS_WORD}) ({_CAPITALISED})(?![\w-])"
)
_FIRST_SURNAME = re.compile(
    rf"(?<![\w'’-])({_CAPITALISED}) ((?:{_CAPS_WORD} )*{_CAPS_WORD})(?![\w-])"
)


def _sentence_start(text: str, at: int) -> bool:
    before = text[:at].rstrip(" \t")
    return not before or before[-1] in ".!?\n" or before.endswith("\n")


def _after_person_word(text: str, at: int) -> bool:
    """One of the two words before ``at`` is a civility or a relative."""
    line = text[max(0, at - 40) : at].rsplit("\n", 1)[-1]
    line = PROTECTED.split(line)[-1]  # not across a tag: "fille <PERSONNE> <TEL> Antécédents"
    before = re.findall(r"[^\s:(),;\-–]+", line)[-2:]
    return any(fold(word).rstrip(".") in _PERSON_CONTEXT for word in before)


def _common(word: str, words: Vocabulary) -> bool:
    """A capitalised word of the language (*Visite*, *Sous*), not one in capitals."""
    return not word.isupper() and words.is_common(word)


def person_bounds(text: str, start: int, end: int, lexicon: Vocabulary) -> tuple[int, int] | None:
    """Where a PER span of the model really names someone, or None (see above)."""
    start, end = _with_first_names(text, *_with_surnames(text, start, end), lexicon)
    words = [
        word
        for word in _NAME_WORD.finditer(text, start, _first_line_end(text, start, end))
        if not any(a < word.end() and word.start() < b for a, b in _protected(text, start, end))
    ]
    for n, word in enumerate(words):  # "Jean a appelé": the name stops at "a"
        if dose_after(text, word.end()):  # "Relais Spiriva per os": a drug
            words = words[:n]
            break
        if word.group()[0].islower() and fold(word.group()) not in _PARTICLE_WORDS:
            words = words[:n]
            break
    while (
        len(words) > 1
        and _common(words[0].group(), lexicon)
        and _sentence_start(text, words[0].start())
    ):
        words = words[1:]
        while words and fold(words[0].group()) in _PARTICLE_WORDS:
            words = words[1:]
    names = [w for w in words if fold(w.group()) not in _PARTICLE_WORDS]
    if not names or fold(names[0].group()) in _ACRONYMS:
        return None
    if len(names) >= 2:
        return words[0].start(), names[-1].end()
    alone = names[0]
    if _common(alone.group(), lexicon) and _sentence_start(text, alone.start()):
        return None
    if _after_person_word(text, alone.start()):
        return words[0].start(), alone.end()
    return None


def _protected(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Tags and pseudonyms around [start, end) (the model reads ``TEL>`` as a word)."""
    return [m.span() for m in PROTECTED.finditer(text, max(0, start - 40), end + 40)]


def _first_line_end(text: str, start: int, end: int) -> int:
    """A name never runs over a line break (the model's spans sometimes do)."""
    newline = text.find("\n", start, end)
    return end if newline < 0 else newline


def _with_first_names(text: str, start: int, end: int, lexicon: Vocabulary) -> tuple[int, int]:
    """The span grown over up to two capitalised words on each side ("Anastasie" of
    "Anastasie Bertrand" when the model saw only "Bertrand"); not over stop words,
    abbreviations, or a common word opening the sentence."""
    for _ in range(2):
        after = _NEXT_WORD.match(text, end)
        if after is None or not _may_be_name(after.group(1), lexicon):
            break
        end = after.end()
    for _ in range(2):
        before = _PREVIOUS_WORD.search(text, 0, start)
        if before is None or not _may_be_name(before.group(1), lexicon):
            break
        if _common(before.group(1), lexicon) and _sentence_start(text, before.start(1)):
            break
        start = before.start(1)
    return start, end


def _may_be_name(word: str, lexicon: Vocabulary) -> bool:
    return word.lower() not in FRENCH_STOP_WORDS and fold(word) not in _ACRONYMS


class _ScrubPersonRecognizer(FrenchNerRecognizer):
    """PERSON: the model's PER spans as :func:`person_bounds` reads them."""

    def __init__(self, words: Vocabulary, language: str) -> None:
        super().__init__(words.lexicon, language)
        self.words = words

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None or "PERSON" not in entities:
            return []
        results = []
        for span in nlp_artifacts.entities:
            if span.label_ != "PERSON":
                continue
            bounds = person_bounds(text, span.start_char, span.end_char, self.words)
            if bounds is not None:
                results.append(_person(*bounds, 0.7, "scrub: model PER span"))
        return results


class _NameShapeRecognizer(RuleRecognizer):
    """PERSON: ``NOM Prénom`` and ``Prénom NOM`` that the model missed (see above)."""

    ENTITY, NAME = "PERSON", "SCRUB_NAME_SHAPE"

    def find(self, text: str) -> list[RecognizerResult]:
        results = []
        for match in _RELATIVE.finditer(text):
            words = match.group(1).split()
            if _may_be_name(words[0], self.words) and (
                len(words) > 1 or not _common(words[0], self.words)
            ):
                results.append(_person(*match.span(1), 0.6, "scrub: name after a relative"))
        for pattern in (_SURNAME_FIRST, _FIRST_SURNAME):
            for match in pattern.finditer(text):
                if self._names(match, caps=1 if pattern is _SURNAME_FIRST else 2):
                    results.append(_person(match.start(), match.end(), 0.6, "scrub: name shape"))
        return results

    def _names(self, match: re.Match[str], caps: int) -> bool:
        surname, first = match.group(caps), match.group(3 - caps)
        parts = surname.split()
        if any(fold(w) in _ACRONYMS for w in parts) or all(
            fold(w) in _PARTICLE_WORDS for w in parts
        ):
            return False  # "LE ROUX" is a name, "LE" alone is not
        if first.lower() in FRENCH_STOP_WORDS:
            return False
        return not (
            _common(first, self.words) and _sentence_start(match.string, match.start(3 - caps))
        )


def _person(start: int, end: int, score: float, why: str) -> RecognizerResult:
    explanation = AnalysisExplanation("SCRUB_PERSON", score, textual_explanation=why)
    return RecognizerResult("PERSON", start, end, score, explanation)


class _QuickContext(LemmaContextAwareEnhancer):
    """Presidio's context enhancement with the scan's settings, at a fraction of its cost: the
    token of a span is found by bisection instead of a scan of every token, and the results
    are updated in place instead of deep-copied (on notes of a few hundred words, Presidio's
    own took as long as the model)."""

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None or not nlp_artifacts.tokens:
            return raw_results
        by_id = {recognizer.id: recognizer for recognizer in recognizers}
        starts = nlp_artifacts.tokens_indices
        for result in raw_results:
            metadata = result.recognition_metadata or {}
            recognizer = by_id.get(metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
            if recognizer is None or not recognizer.context:
                continue
            if metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY):
                continue
            self._enhance(result, recognizer, nlp_artifacts, bisect_right(starts, result.start) - 1)
        return raw_results

    def _enhance(
        self, result: RecognizerResult, recognizer: EntityRecognizer, nlp: NlpArtifacts, at: int
    ) -> None:
        at = max(at, 0)
        words = [
            *self._add_n_words_backward(at, self.context_prefix_count, nlp.lemmas, nlp.keywords),
            *self._add_n_words_forward(at, self.context_suffix_count, nlp.lemmas, nlp.keywords),
        ]
        found = self._find_supportive_word_in_context(
            words, recognizer.context, self.context_matching_mode
        )
        if found:
            score = max(
                result.score + self.context_similarity_factor,
                self.min_score_with_context_similarity,
            )
            result.score = min(score, self.MAX_SCORE)
            result.analysis_explanation.set_supportive_context_word(found)
            result.analysis_explanation.set_improved_score(result.score)


@dataclass(frozen=True)
class ScrubEngine:
    """Presidio's engine as scrub uses it: the scan's model, lexicon and pattern recognizers,
    people read by :func:`person_bounds` and by their shape."""

    engine: AnalyzerEngine
    batch: BatchAnalyzerEngine


_engine: ScrubEngine | None = None
_engine_lock = threading.Lock()


def scrub_engine() -> ScrubEngine:
    """This process's scrub engine (shares :func:`.engine.get_analyzer`'s loaded model)."""
    global _engine  # noqa: PLW0603  (one engine per process)
    with _engine_lock:
        if _engine is None:
            _engine = _build_engine()
        return _engine


def _build_engine() -> ScrubEngine:
    from retention.discovery.engine import CONTEXT_SETTINGS, LANGUAGES, get_analyzer, lemma_tables

    analyzer = get_analyzer()
    french = analyzer.engine.nlp_engine.pipelines["fr"]  # type: ignore[attr-defined]
    words = Vocabulary.of(lemma_tables(french, "lemma_lookup"), analyzer.lexicon)
    recognizers: list[EntityRecognizer] = [
        _ScrubPersonRecognizer(words, "fr"),
        _NameShapeRecognizer(words, "fr"),
        _NameShapeRecognizer(words, "en"),
    ]
    for language in LANGUAGES:
        # street addresses: StreetAddressRecognizer, whose spans stop where the address does
        recognizers += [
            r for r in pattern_recognizers(language) if not isinstance(r, FrAddressRecognizer)
        ]
        recognizers += [
            ContextNameRecognizer(words, language),
            BirthDateRecognizer(words, language),
            StreetAddressRecognizer(words, language),
        ]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=list(LANGUAGES))
    engine = AnalyzerEngine(
        registry=registry,
        nlp_engine=analyzer.engine.nlp_engine,
        supported_languages=list(LANGUAGES),
        context_aware_enhancer=_QuickContext(**CONTEXT_SETTINGS),
    )
    return ScrubEngine(engine, BatchAnalyzerEngine(engine))


# -- the scrubber ---------------------------------------------------------------------------
class Scrubber:
    """Scrubs texts and JSON documents; owns the worker pool (see :func:`get_scrubber`)."""

    def __init__(self, workers: int | None = None, parallel_from: int = PARALLEL_FROM) -> None:
        self.workers = workers if workers is not None else len(os.sched_getaffinity(0))
        self.parallel_from = parallel_from
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    # pool
    def start(self) -> None:
        """Start the worker pool now (else on the first large input); returns once every
        worker has built its analyzer."""
        if self.workers <= 1:
            return
        pool = self._executor()
        ready: set[int] = set()
        for _ in range(50):
            ready.update(pool.map(_worker_pid, range(self.workers * 2)))
            if len(ready) >= self.workers:
                return

    def close(self) -> None:
        """Stop the worker pool (a later large input starts a new one)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the parent may hold connections, threads and locks
                pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_warm_worker,
                )
                with _one_blas_thread():  # workers are started by submits, one each
                    for n in range(self.workers):
                        pool.submit(_worker_pid, n)
                self._pool = pool
            return self._pool

    # analysis
    def spans(self, texts: Sequence[str], language: str = "fr") -> list[list[Span]]:
        """The personal spans of each text; identical texts are analysed once."""
        distinct = list(dict.fromkeys(texts))
        found = dict(zip(distinct, self._spans_of_distinct(distinct, language), strict=True))
        return [found[text] for text in texts]

    def _spans_of_distinct(self, texts: list[str], language: str) -> list[list[Span]]:
        if self.workers <= 1 or sum(map(len, texts)) < self.parallel_from:
            return _analyze(texts, language)
        size = max(64, -(-len(texts) // (self.workers * 4)))
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        try:
            pool = self._executor()
            results = pool.map(_analyze, chunks, [language] * len(chunks))
            return [spans for chunk in results for spans in chunk]
        except BrokenProcessPool:
            logger.warning("scrub worker pool failed; analysing in this process")
            self.close()
            return _analyze(texts, language)

    # scrubbing
    def scrub_texts(
        self, texts: Sequence[str], replace: Replace = tag, language: str | None = None
    ) -> list[str]:
        """Each text scrubbed to a fixed point (a second call returns it unchanged)."""
        done = self._fixpoint(texts, replace, language, trace=False)
        return [done[text].text for text in texts]

    def scrub_traced(
        self, texts: Sequence[str], replace: Replace = tag, language: str | None = None
    ) -> list[Traced]:
        """Like :meth:`scrub_texts`, with the positions of the original characters removed
        (for evaluations against planted spans)."""
        done = self._fixpoint(texts, replace, language, trace=True)
        return [done[text].traced(text) for text in texts]

    def _fixpoint(
        self, texts: Sequence[str], replace: Replace, language: str | None, *, trace: bool
    ) -> dict[str, _State]:
        language = language or "fr"
        states = {text: _State(text, list(range(len(text))) if trace else None) for text in texts}
        todo = list(states)
        for _ in range(MAX_ROUNDS):
            found = self.spans([states[t].text for t in todo], language)
            todo_next = []
            for text, spans in zip(todo, found, strict=True):
                if spans:
                    states[text].apply(spans, replace)
                    todo_next.append(text)
            todo = todo_next
            if not todo:
                break
        return states

    def scrub_values(
        self,
        values: Sequence[str | None],
        *,
        is_json: bool = False,
        replace: Replace = tag,
        language: str | None = None,
    ) -> list[str | None]:
        """Column values scrubbed: texts, and JSON documents leaf by leaf (``is_json``: the
        column is JSON; a text value that holds a JSON object or array is read as JSON too).
        A value with nothing personal is returned as it came (the same string)."""
        documents: dict[int, tuple[str, Any]] = {}
        texts: dict[int, str] = {}
        for i, value in enumerate(values):
            if value is None:
                continue
            document = _json_document(value, force=is_json)
            if document is _NOT_JSON:
                texts[i] = value
            else:
                documents[i] = (value, document)
        leaves = _Leaves(replace)
        collected = {i: leaves.collect(document) for i, (_, document) in documents.items()}
        scrubbed = self.scrub_texts([*texts.values(), *leaves.texts], replace, language)
        out: dict[int, str] = dict(zip(texts, scrubbed, strict=False))
        leaves.results = scrubbed[len(texts) :]
        for i, (value, document) in documents.items():
            new = leaves.build(collected[i])
            out[i] = value if new == document else _dump(new)
        return [out.get(i) for i in range(len(values))]


@dataclass(frozen=True)
class Traced:
    """A scrubbed text, and the positions in the original of the characters it lost."""

    text: str
    removed: frozenset[int]


class _State:
    """A text being scrubbed; ``origin[i]``: the original position of character ``i`` (-1 for
    replacement characters), when traced."""

    def __init__(self, text: str, origin: list[int] | None) -> None:
        self.text = text
        self.origin = origin

    def apply(self, spans: Sequence[Span], replace: Replace) -> None:
        new = [replace(span.entity, self.text[span.start : span.end]) for span in spans]
        if self.origin is not None:
            origin: list[int] = []
            at = 0
            for span, replacement in zip(spans, new, strict=True):
                origin += self.origin[at : span.start] + [-1] * len(replacement)
                at = span.end
            self.origin = origin + self.origin[at:]
        self.text = _join(self.text, spans, new)

    def traced(self, original: str) -> Traced:
        kept = set(self.origin or ())
        return Traced(self.text, frozenset(i for i in range(len(original)) if i not in kept))


_NOT_JSON = object()


def _json_document(value: str, *, force: bool) -> Any:
    stripped = value.lstrip()
    if not force and not stripped.startswith(("{", "[")):
        return _NOT_JSON
    try:
        document = json.loads(value)
    except ValueError:
        return _NOT_JSON
    if not force and not isinstance(document, dict | list):
        return _NOT_JSON
    return document


def _dump(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False)


@dataclass(frozen=True)
class _Text:
    """A leaf to scrub as text: its index in :attr:`_Leaves.texts`, and the original type."""

    index: int
    number: bool


class _Leaves:
    """JSON leaves: those replaced whole by their key, those scrubbed as text."""

    def __init__(self, replace: Replace) -> None:
        self.replace = replace
        self.texts: list[str] = []
        self.results: list[str] = []

    def collect(self, node: Any, entity: str | None = None) -> Any:
        """A copy of ``node`` whose text leaves are placeholders (:class:`_Text`)."""
        if isinstance(node, dict):
            named = _named_field(node)
            return {
                key: self.collect(
                    child,
                    named if named and _is_value_key(str(key)) else _key_entity(str(key), entity),
                )
                for key, child in node.items()
            }
        if isinstance(node, list):
            return [self.collect(child, entity) for child in node]
        if isinstance(node, bool) or node is None:
            return node
        if isinstance(node, str | int | float):
            return self._leaf(node, entity)
        return node

    def _leaf(self, node: str | int | float, entity: str | None) -> Any:
        text = str(node)
        if entity is not None:
            if not text.strip() or PROTECTED.fullmatch(text.strip()):
                return node
            return self.replace(entity, text)
        if isinstance(node, str) and text.strip():
            self.texts.append(text)
            return _Text(len(self.texts) - 1, number=False)
        if not isinstance(node, str) and sum(ch.isdigit() for ch in text) >= _DIGIT_RUN:
            self.texts.append(text)
            return _Text(len(self.texts) - 1, number=True)
        return node

    def build(self, node: Any) -> Any:
        """The scrubbed document from a collected copy."""
        if isinstance(node, dict):
            return {key: self.build(child) for key, child in node.items()}
        if isinstance(node, list):
            return [self.build(child) for child in node]
        if isinstance(node, _Text):
            result = self.results[node.index]
            if node.number and result == self.texts[node.index]:
                return json.loads(result)  # unchanged number: keep its type
            return result
        return node


def _key_entity(key: str, inherited: str | None) -> str | None:
    """The entity a JSON key names (``nom``, ``tel``, ``email``...), else the parent's."""
    evidence = column_evidence("", key)
    if evidence is not None and evidence.entity in TAGS and evidence.strength >= MEDIUM:
        return evidence.entity
    return inherited


# A change described by its field's name and generic keys for the values:
# {"field": "nom", "old": "...", "new": "..."}, {"champ": "tel", "avant": ..., "apres": ...}.
_FIELD_KEYS = frozenset(
    {"field", "champ", "column", "colonne", "attribute", "attribut", "key", "cle", "property",
     "propriete", "field name", "nom champ", "column name", "nom colonne", "name", "path"}
)  # fmt: skip
_VALUE_WORDS = _vocabulary(
    "old new value values valeur valeurs val ancien ancienne nouveau nouvelle avant apres "
    "before after from to previous prev current initial final original updated was now de la"
)


def _key_words(key: str) -> str:
    """``oldValue``, ``old_value``, ``Old-Value`` -> ``old value``."""
    return " ".join(re.split(r"[^a-z0-9]+", fold(re.sub(r"([a-z])([A-Z])", r"\1 \2", key)))).strip()


def _named_field(node: dict[Any, Any]) -> str | None:
    """The entity of the field a change names by a generic key (``"field": "nom"``)."""
    for key, value in node.items():
        if isinstance(value, str) and _key_words(str(key)) in _FIELD_KEYS:
            entity = _key_entity(value, None)
            if entity is not None:
                return entity
    return None


def _is_value_key(key: str) -> bool:
    words = _key_words(key).split()
    return bool(words) and all(word in _VALUE_WORDS for word in words)


def _worker_pid(_: int) -> int:
    """Used by :meth:`Scrubber.start` to see every worker ready (after its initializer)."""
    time.sleep(0.05)
    return os.getpid()


_scrubber: Scrubber | None = None
_scrubber_lock = threading.Lock()


def get_scrubber() -> Scrubber:
    """The process-wide scrubber (its worker pool starts on the first large input)."""
    global _scrubber  # noqa: PLW0603  (one pool per process)
    with _scrubber_lock:
        if _scrubber is None:
            _scrubber = Scrubber()
        return _scrubber
