"""Rules scrub reads free text with beside the model: names by their context, birth dates,
street addresses with their postal code and city, and doses that make a word a drug.

The spaCy model finds names written with capitals in running prose; hospital notes also
write them in lower case (``mme dupont refuse le rdv``), in header blocks (``Patient : GUYOT
LOUIS``), after a relative (``fille (Claire)``) or before one (``Nathalie (nièce)``). A word
there is a name when it does not read as a French word: :class:`Vocabulary` knows the 200,000
inflected forms of the model's lemmatizer tables (``refuse``, ``hospitalisée``), not only their
lemmas. A capitalised word is a name in those places whatever it means (``Mme Petit``).

A word followed by a dose (``Pentasa 4000``, ``Skenan LP 30``, ``Imurel 50 mg``) is a drug,
never a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from spacy.lang.fr.stop_words import STOP_WORDS as FRENCH_STOP_WORDS
from spacy.lookups import Table

from retention.discovery.names import fold

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_DOSE = re.compile(
    r" ?(?:(?:LP|LI|SR|XR|L\.P\.) ?)?(?:[1-9]\d{0,4}(?:[.,]\d+)?|0[.,]\d+)"
    r"(?: ?(?:mg|g|µg|mcg|ml|mL|UI|U|%|cp|gél|sachets?|/j))?(?![\w/.,:-]|[ .,/-]\d| ?ans?\b)"
    r"| (?:per os|(?:en )?(?:IV|IVD|IVL|IVSE|SC|IM|PO|SL)|inhalée?s?|en sous-cutanée?|LP|LI|SR"
    r"|XR|retard)(?![\w-])"
)
# Short forms of telegraphic notes that the lemmatizer's tables do not know.
_MEDICAL_SHORT = _words(
    "avis gastro abdo ortho cardio neuro pneumo uro hémato hemato onco rhumato dermato ophtalmo "
    "orl endoc diabéto diabeto néphro nephro gynéco gyneco psy pédia pedia géria geria réa rea "
    "ttt atcd hdm cs rdv pds smur ehpad ssr usld box ambu hdj hospit consult dextro kiné kine "
    "écho echo radio bio labo scan irm"
)
_PARTICLES = _words("de du des d' d’ le la les l' l’ van von ben el di da del dos")
_ACRONYMS = _words(
    "hta avc ait bpco irm tdm ecg eeg ssr ehpad ains vih vhb vhc rdv ras tel tél fc ta eva spo "
    "crp nfs inr sc iv im po chu ch ide as smur samu sau cr crh dr pr mme mlle mr ok nb"
)


# -- words --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Vocabulary:
    """French words: the lexicon's lemmas (folded) and the lemmatizer's table of about 200,000
    inflected forms (``refuse`` -> ``refuser``), looked up in lower case."""

    lexicon: frozenset[str]
    forms: Any = field(repr=False)  # spaCy's lemma_lookup table: form -> lemma

    @classmethod
    def of(cls, tables: dict[str, dict[int, Any]], lexicon: frozenset[str]) -> Vocabulary:
        """From the lemmatizer's tables as the model stores them (:func:`.engine.lemma_tables`)."""
        return cls(lexicon, Table("lemma_lookup", tables["lemma_lookup"]))

    def is_common(self, word: str) -> bool:
        lower = word.lower()
        return lower in FRENCH_STOP_WORDS or fold(word) in self.lexicon or lower in self.forms

    def is_inflected(self, word: str) -> bool:
        """An inflected form (``refuse``, ``hospitalisée``), not a base form (``petit``)."""
        lemmas = self.forms.get(word.lower())
        if isinstance(lemmas, list):
            return bool(lemmas) and word.lower() not in lemmas
        return lemmas is not None and lemmas != word.lower()

    def third_person(self, word: str) -> bool:
        """A verb in the third person of the present (``refuse``, ``demande``, ``est``)."""
        lower = word.lower()
        if lower in _THIRD_PERSON:
            return True
        return lower.endswith("e") and fold(lower + "r") in self.lexicon  # demande: demander

    def is_stop(self, word: str) -> bool:
        return word.lower() in FRENCH_STOP_WORDS or fold(word) in _ACRONYMS


_THIRD_PERSON = _words("est a va vient doit veut sort dit part revient prend attend")


def dose_after(text: str, end: int) -> bool:
    """A dose or a route right after ``end`` (``Pentasa 4000``, ``Spiriva per os``): the word
    before it is a drug."""
    return _DOSE.match(text, end) is not None


# -- names by their context ---------------------------------------------------------------------
_CIVILITY = (
    r"(?:(?i:m\.|mr\.?|mme\.?|mlle\.?|madame|monsieur|mademoiselle|dr\.?|docteur|professeur)"
    r"|Pr\.?)"
)
_RELATIVES = (
    r"fils|fille|époux|épouse|epoux|epouse|mari|femme|frère|frere|sœur|soeur|neveu|nièce|niece"
    r"|gendre|belle-fille|beau-fils|petit-fils|petite-fille|compagnon|compagne|conjoint|conjointe"
    r"|tuteur|tutrice|curateur|curatrice|voisin|voisine|ami|amie|cousin|cousine|oncle|tante"
    r"|mère|mere|père|pere|belle-mère|beau-père|belle-sœur|beau-frère"
)
_HEADERS = (
    r"patiente?|nom(?: de naissance| d'usage| marital| usuel)?|prénoms?|prenoms?|identité"
    r"|personne (?:à|a) prévenir|personne de confiance|médecin traitant|medecin traitant"
    r"|destinataire|copie|cc|à l'attention de|contact"
)
_WEAK = (
    r"adressée?|votre patiente?|patient\(e\)|dossier|demande de|demande|visite de|appel de"
    r"|message de|part de|accompagnée? (?:de|par)|chez|avec|prévenue?|informée?|called to"
    r"|phoned to|reported to|discussed with|spoke (?:to|with)|informed"
)
_NAMED_BEFORE = re.compile(
    rf"(?<![\w-])(?:(?P<civility>{_CIVILITY})(?=[ .])\.?|(?i:{_HEADERS}) ?:|(?i:{_RELATIVES})"
    r"(?: ?[(:]|,)) ?"
)
_CIVILITY_AT = re.compile(rf"{_CIVILITY}\.? ")
_RELATIVE_BEFORE = re.compile(rf"(?<![\w-])(?i:{_RELATIVES})(?:,? )")
_WEAK_BEFORE = re.compile(rf"(?<![\w'’-])(?i:{_WEAK}) \(?")
_RELATIVE_AFTER = re.compile(rf" \((?i:{_RELATIVES})\)")
_INITIAL = re.compile(r"[A-ZÀ-ÖØ-Þ]\.(?:-?[A-ZÀ-ÖØ-Þ]\.)? ?")


class _Names:
    """Reads the name run that starts (or ends) at a position, by the rules above.

    How sure the context is decides what the first word may be:

    - ``civility``: any capitalised word, a lower-case word that is not an inflected form
      (``mme petit``, not ``madame refuse``);
    - ``named`` (a header label, a relative before ``(`` or ``:``): any capitalised word, a
      lower-case word that is not French;
    - ``relative``: a capitalised word that is not French, or is followed by another name word;
    - ``weak`` (``adressé``, ``visite de``): two name words at least, one not French.
    """

    def __init__(self, words: Vocabulary) -> None:
        self.words = words

    def foreign(self, word: str) -> bool:
        """Not a French word, an abbreviation or a short medical form: maybe a name."""
        key = fold(word)
        return not self.words.is_common(word) and key not in _ACRONYMS and key not in _MEDICAL_SHORT

    def forward(self, text: str, at: int, level: str) -> int | None:
        """End of the name starting at ``at``, or None."""
        initial = _INITIAL.match(text, at)
        words = list(self._words(text, initial.end() if initial else at))
        closed = bool(words) and not _LETTER_NEXT.match(text, words[-1].end())
        taken = self._taken([m.group() for m in words], level, initial is not None, closed)
        if taken:
            return words[taken - 1].end()
        return None

    def _words(self, text: str, at: int) -> Iterator[re.Match[str]]:
        for _ in range(4):
            match = _WORD.match(text, at)
            if match is None or dose_after(text, match.end()):
                return
            yield match
            if text[match.end() : match.end() + 1] != " ":
                return
            at = match.end() + 1

    def _taken(self, words: list[str], level: str, initial: bool, closed: bool) -> int:
        """How many of ``words`` make the name."""
        n = 0
        while n < len(words) and fold(words[n]) in _PARTICLES:
            n += 1
        if n == len(words) or (n and not words[n][0].isupper()):
            return 0
        word, nxt = words[n], words[n + 1] if n + 1 < len(words) else ""
        if fold(word) in _ACRONYMS or (word.islower() and word in FRENCH_STOP_WORDS):
            return 0
        lower = word.islower()
        if not self._first_ok(word, nxt, level, initial):
            return 0
        loose = lower and (self.foreign(word) or level == "civility")
        taken = n + 1 + self._rest(words[n + 1 :], lower, loose, closed)
        if level == "weak" and (taken - n < 2 or not any(map(self.foreign, words[n:taken]))):
            return 0
        return taken

    def _first_ok(self, word: str, nxt: str, level: str, initial: bool) -> bool:
        if word.islower():
            if self.foreign(word):
                return True
            if nxt.islower() and self.foreign(nxt):  # gilles lebrun
                return True
            return level == "civility" and not self.words.is_inflected(word)
        if level in ("civility", "named") or initial or word.isupper():
            return True
        return self.foreign(word) or nxt[:1].isupper()

    def _rest(self, words: list[str], lower: bool, loose: bool, closed: bool) -> int:
        """How many of ``words`` continue a name. ``loose``: after a first name that is not
        French, in lower case, a word of the lexicon continues it when it is no form of the
        lemmatizer's table (``m. roger grondin``) or when it closes the clause (``tuteur :
        céline morin, UDAF``); not ``mme leconte demande un transport``."""
        taken = pending = 0
        for n, word in enumerate(words):
            if fold(word) in _PARTICLES:
                pending += 1
                continue
            if fold(word) in _ACRONYMS or (word.islower() and word in FRENCH_STOP_WORDS):
                break
            if lower and not self.foreign(word):
                last = closed and n == len(words) - 1
                base = word.lower() not in self.words.forms or (
                    last and not self.words.is_inflected(word)
                )
                if not (loose and word.islower() and base and not self.words.is_stop(word)):
                    break
            elif not lower and not word[0].isupper():
                break
            taken += pending + 1
            pending = 0
        return taken

    def backward(self, text: str, end: int) -> int | None:
        """Start of the name that ends at ``end`` (before `` (fille)``), or None."""
        start = None
        at = end
        for _ in range(3):
            match = _LAST_WORD.search(text, max(0, at - 40), at)
            if match is None:
                break
            word = match.group()
            if (
                word.islower()
                and not self.foreign(word)
                and not self._loose_last(text, match, start)
            ):
                break
            if fold(word) in _ACRONYMS or (word.islower() and word in FRENCH_STOP_WORDS):
                break
            opens = not text[: match.start()].strip() or text[: match.start()].rstrip()[-1] in ".!?"
            if start is None and not word.isupper() and self.words.is_common(word) and opens:
                break  # "Appel (fille)": a common word opening a sentence
            start = match.start()
            if match.start() == 0 or text[match.start() - 1] != " ":
                break
            at = match.start() - 1
        return start

    def _loose_last(self, text: str, match: re.Match[str], start: int | None) -> bool:
        """A lower-case surname that is a French word, right before the relative, after a
        first name that is not French (``zacharie chevalier (mari)``)."""
        word = match.group()
        if start is not None or self.words.is_inflected(word) or self.words.is_stop(word):
            return False
        before = _LAST_WORD.search(text, max(0, match.start() - 41), max(0, match.start() - 1))
        return (
            before is not None
            and text[before.end() : match.start()] == " "
            and before.group().islower()
            and self.foreign(before.group())
        )


_LETTER_NEXT = re.compile(r" [^\W\d_]")
_LAST_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*$")


def _result(start: int, end: int, score: float, why: str) -> RecognizerResult:
    explanation = AnalysisExplanation("SCRUB_CONTEXT", score, textual_explanation=why)
    return RecognizerResult("PERSON", start, end, score, explanation)


class RuleRecognizer(EntityRecognizer):
    """A recognizer of one entity by rules on the text alone (no model, nothing to load)."""

    ENTITY = ""
    NAME = ""

    def __init__(self, words: Vocabulary, language: str) -> None:
        super().__init__([self.ENTITY], name=self.NAME, supported_language=language)
        self.words = words

    def load(self) -> None:
        """Nothing to load."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return self.find(text) if self.ENTITY in entities else []

    def find(self, text: str) -> list[RecognizerResult]:
        """The entity's spans in ``text``."""
        raise NotImplementedError


def _level(match: re.Match[str], pattern: re.Pattern[str]) -> str:
    if pattern is _NAMED_BEFORE:
        return "civility" if match.group("civility") else "named"
    return "relative" if pattern is _RELATIVE_BEFORE else "weak"


class ContextNameRecognizer(RuleRecognizer):
    """PERSON: names after a civility, a relative or a header label, in any case, and names
    right before a relative in brackets."""

    ENTITY, NAME = "PERSON", "SCRUB_CONTEXT_NAME"

    def __init__(self, words: Vocabulary, language: str) -> None:
        super().__init__(words, language)
        self.names = _Names(words)

    def find(self, text: str) -> list[RecognizerResult]:
        found: list[RecognizerResult] = []
        for pattern, score in ((_NAMED_BEFORE, 0.8), (_RELATIVE_BEFORE, 0.7), (_WEAK_BEFORE, 0.6)):
            for match in pattern.finditer(text):
                level = _level(match, pattern)
                start = match.end()
                civility = _CIVILITY_AT.match(text, start)
                if civility is not None:
                    if pattern is not _NAMED_BEFORE:
                        continue  # the civility's own match reads it
                    start, level = civility.end(), "civility"
                end = self.names.forward(text, start, level)
                if end is not None:
                    found.append(_result(start, end, score, f"scrub: name after context ({level})"))
        found += self._pairs(text)
        found += self._lower_subjects(text)
        for match in _RELATIVE_AFTER.finditer(text):
            begin = self.names.backward(text, match.start())
            if begin is not None:
                found.append(_result(begin, match.start(), 0.7, "scrub: name before a relative"))
        return found

    def _pairs(self, text: str) -> list[RecognizerResult]:
        """Two capitalised words side by side (a particle may come between), neither French
        nor an abbreviation nor before a dose, not after *maladie de*: a first name and a
        name (``Célina Lopez``)."""
        found = []
        for match in _TITLE_PAIR.finditer(text):
            one, two = match.group(1), match.group(3)
            end = match.start(1) + len(one) + len(match.group(2)) + len(two)
            if len(one) < 3 or len(two) < 3 or dose_after(text, end):
                continue
            if not (self.names.foreign(one) and self.names.foreign(two)):
                continue
            if EPONYM_BEFORE.search(text, max(0, match.start(1) - 40), match.start(1)):
                continue
            found.append(_result(match.start(1), end, 0.55, "scrub: two name words"))
        return found

    def _lower_subjects(self, text: str) -> list[RecognizerResult]:
        """``éric lacombe demande un transport``: two lower-case words opening a clause, one
        not French, neither a short medical form, then a verb in the third person."""
        found = []
        for match in _LOWER_SUBJECT.finditer(text):
            a, b, verb = match.group(1), match.group(2), match.group(3)
            if {fold(a), fold(b)} & (_MEDICAL_SHORT | _ACRONYMS) or self.words.is_stop(a):
                continue
            if self.words.is_stop(b) or not (self.names.foreign(a) or self.names.foreign(b)):
                continue
            if self.words.third_person(verb):
                found.append(_result(match.start(1), match.end(2), 0.55, "scrub: subject"))
        return found


_LOWER_SUBJECT = re.compile(
    r"(?:^|(?<=[.;!?\n])|(?<=[.;!?,] ))([a-zß-öø-ÿ][a-zß-öø-ÿ'’-]+) ([a-zß-öø-ÿ][a-zß-öø-ÿ'’-]+)"
    r" ([a-zß-öø-ÿ]+)\b"
)
_TITLE = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+(?:-[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+)*"
_TITLE_PAIR = re.compile(  # in a lookahead: pairs overlap ("Anne Marie Dupont")
    rf"(?<![\w'’.-])(?=({_TITLE})( (?:de |du |des |d['’]|le |la |van |von )?)({_TITLE})"
    r"(?![\w'’-]))"
)


EPONYM_BEFORE = re.compile(
    r"(?i)(?:maladie|syndrome|signe|test|score|classification|manœuvre|manoeuvre|méthode"
    r"|technique|opération|intervention|procédure|échelle|critères|loi|sonde|kyste|tumeur)"
    r" (?:de |d['’]|du )?$"
)
"""What an eponym follows (``maladie de``): the name there is a disease's, not a person's."""


# -- birth dates --------------------------------------------------------------------------------
_MONTHS = (
    r"janvier|janv\.?|février|fevrier|févr\.?|fevr\.?|mars|avril|avr\.?|mai|juin|juillet"
    r"|juil\.?|août|aout|septembre|sept\.?|octobre|oct\.?|novembre|nov\.?|décembre|decembre"
    r"|déc\.?|dec\.?|january|february|march|april|may|june|july|august|september|october"
    r"|november|december"
)
_DATE = (
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:(?:18|19|20)\d{2}|\d{2})(?![\w/])"
    r"|(?:18|19|20)\d{2}-\d{2}-\d{2}(?![\w:])"
    rf"|\d{{1,2}}(?:er)? (?i:{_MONTHS}) (?:18|19|20)\d{{2}}(?!\w))"
)
BIRTH_CONTEXT = (
    r"(?i:(?<!\w)(?:né\(e\)|née?s?|nee|ne\(e\)|naissance|naiss\.?|ddn|d\.d\.n\.?|dob|born"
    r"|birth ?date|date of birth|birth)(?!\w)\)?)[^\n\d.;!?,]{0,25}"
)
BIRTH_BEFORE = re.compile(BIRTH_CONTEXT + r"$")
"""What a birth date follows: a context word, then at most 25 characters of the same clause."""
_BIRTH_DATE = re.compile(f"({BIRTH_CONTEXT})({_DATE})")


class BirthDateRecognizer(RuleRecognizer):
    """DATE_OF_BIRTH: a date right after *né(e) le*, *DDN :*, *date de naissance*, *born*,
    in every layout (``14/02/1951``, ``14.02.51``, ``1951-02-14``, ``3 mars 1948``)."""

    ENTITY, NAME = "DATE_OF_BIRTH", "SCRUB_BIRTH_DATE"

    def find(self, text: str) -> list[RecognizerResult]:
        out = []
        for match in _BIRTH_DATE.finditer(text):
            explanation = AnalysisExplanation(
                "SCRUB_BIRTH_DATE", 0.85, textual_explanation="scrub: date after a birth word"
            )
            start, end = match.span(2)
            out.append(RecognizerResult("DATE_OF_BIRTH", start, end, 0.85, explanation))
        return out


# -- street addresses ---------------------------------------------------------------------------
_STREET = (
    r"rue|avenue|av\.|boulevard|bd|bld|chemin|impasse|allée|allee|place|route|quai|cours|square"
    r"|voie|passage|lotissement|résidence|residence|hameau|lieu-dit|chaussée|sentier|faubourg"
    r"|cité|cite|esplanade|parvis|promenade|villa|ruelle|traverse|montée|rond-point"
)
_STREET_START = re.compile(
    rf"(?<![\w])(?:\d{{1,4}}(?: ?(?i:bis|ter|quater|[a-d]))?,? )?(?i:{_STREET}) "
)
_TITLES = _words(
    "général general maréchal marechal président president docteur professeur abbé abbe "
    "saint sainte colonel commandant capitaine lieutenant amiral"
)
_CITY_WORD = r"[^\W\d_]+(?:['’-][^\W\d_]+)*"
_POSTCODE_CITY = re.compile(
    r",? ?[-–]? ?(?:0[1-9]|[1-8]\d|9[0-5]|97|98) ?\d{3}(?!\d) "
    rf"(?:(?i:le|la|les|l['’]) ?)?{_CITY_WORD}"
    rf"(?: (?:(?i:sur|sous|en|lès|les|le|la|de|du|des) )?[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:['’-][^\W\d_]+)*)*"
    r"(?: (?i:cedex)(?: \d{1,2})?)?"
)
_STREET_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_MONTH = re.compile(rf"(?i:{_MONTHS})")
_ADDRESS_CONTEXT = re.compile(
    r"(?i)(?<!\w)(?:adresse|domicile|domiciliée?|demeurant|habite|réside|resides?|lives? at)"
    r"[^\n\d.;!?]{0,12}$"
)


class StreetAddressRecognizer(RuleRecognizer):
    """ADDRESS: a street (``12 bis, rue du Général de Gaulle``) with the postal code and city
    that follow it; a postal code and city after *adresse*, *domicile*, *demeurant*. The street's
    name stops at the first word that is not part of a name, never inside a word."""

    ENTITY, NAME = "ADDRESS", "SCRUB_STREET_ADDRESS"

    def find(self, text: str) -> list[RecognizerResult]:
        out = []
        for match in _STREET_START.finditer(text):
            numbered = match.group()[0].isdigit()
            end = self._street_name(text, match.end(), numbered)
            if end is None:
                continue
            score = 0.75 if numbered else 0.5
            city = _POSTCODE_CITY.match(text, end)
            out.append(self._result(match.start(), city.end() if city else end, score))
        for match in re.finditer(r"(?<![\w,.])\d{5}(?!\d)", text):
            if _ADDRESS_CONTEXT.search(text, 0, match.start()):
                city = _POSTCODE_CITY.match(text, match.start())
                if city is not None:
                    out.append(self._result(match.start(), city.end(), 0.6))
        return out

    def _street_name(self, text: str, at: int, numbered: bool) -> int | None:
        """End of the street's name starting at ``at``: its first word (capitalised unless a
        number came before the street), then capitalised words, numbers, a month after a
        number (``8 mai 1945``), titles (*général*), particles before a name, and lower-case
        words that are not French."""
        end, previous = None, ""
        for _ in range(7):
            match = _STREET_WORD.match(text, at)
            if match is None:
                break
            word = match.group()
            key = fold(word)
            if key in _PARTICLES:
                pass  # a particle needs a name after it
            elif end is None:
                if self.words.is_stop(word) or not (numbered or word[0].isupper()):
                    return None
                end = match.end()
            elif (
                word[0].isupper()
                or (word.isdigit() and len(word) <= 4)
                or key in _TITLES
                or (previous.isdigit() and _MONTH.fullmatch(word))
                or not self.words.is_common(word)
            ):
                end = match.end()
            else:
                break
            previous = word
            if text[match.end() : match.end() + 1] != " ":
                break
            at = match.end() + 1
        return end

    @staticmethod
    def _result(start: int, end: int, score: float) -> RecognizerResult:
        explanation = AnalysisExplanation(
            "SCRUB_STREET_ADDRESS", score, textual_explanation="scrub: street address"
        )
        return RecognizerResult("ADDRESS", start, end, score, explanation)
