"""Presidio recognizers for French hospital data, and French context for Presidio's own ones.

Pattern recognizers find identifiers by shape and check their key (:mod:`.checks`). Identifiers
that a shape alone cannot tell apart (a postal code is any 5 digits, ADELI any 9) start with a
score below :data:`REPORT_SCORE` and only count with a context word nearby, or the column's name
given as context. Every recognizer exists for French (``fr``) and English (``en``) texts, with
context words in both languages.

The e-mail recognizer checks domains with ``tldextract`` configured offline: no suffix-list URL,
no disk cache, the snapshot bundled with the package. Nothing here opens a connection.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

import phonenumbers
import tldextract
from presidio_analyzer import (
    AnalysisExplanation,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    SpacyRecognizer,
)

from retention.discovery import checks
from retention.discovery.names import fold

REPORT_SCORE = 0.4
"""Spans scoring below this are ignored by the scan (Presidio's context floor is 0.4)."""

_CASE_SENSITIVE = re.DOTALL | re.MULTILINE
# The public suffix list bundled with tldextract: never fetched, never cached on disk.
OFFLINE_TLD_EXTRACT = tldextract.TLDExtract(
    suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Context words: single words (the engine matches whole words), French and English.
CONTEXT: dict[str, tuple[str, ...]] = {
    "FR_NIR": _words(
        "nir sécu secu sécurité securite sociale insee matricule nss immatriculation "
        "assuré assure ssn social"
    ),
    "FR_INS": _words("ins nia insi oid 1.2.250.1.213.1.4.8 1.2.250.1.213.1.4.9 identité identite"),
    "PHONE_NUMBER": _words(
        "tél tel téléphone telephone portable mobile fixe joindre appeler contacter gsm "
        "fax phone cell call"
    ),
    "FR_POSTAL_CODE": _words("cp postal codepostal cedex zip zipcode postcode"),
    "FR_RPPS": _words("rpps idpp praticien médecin medecin docteur dr"),
    "FR_ADELI": _words("adeli"),
    "FR_FINESS": _words("finess établissement etablissement"),
    "DATE_OF_BIRTH": _words(
        "né née nee naissance naiss ddn anniversaire birth born dob birthdate birthday"
    ),
    "EMAIL_ADDRESS": _words("mail email e-mail courriel mél mel adresse"),
    "IBAN_CODE": _words("iban rib bancaire banque compte virement bank account"),
    "IP_ADDRESS": _words(
        "ip ipv4 ipv6 adresse hôte hote host connexion serveur server remote client"
    ),
    "ADDRESS": _words("adresse domicile habite demeurant résidant address street"),
    "UK_NHS": _words("nhs"),
    "PERSON": _words(
        "m. mme mlle mr dr pr monsieur madame mademoiselle docteur professeur fils fille "
        "époux épouse epoux epouse mari femme mère mere père pere frère frere sœur soeur "
        "tuteur tutrice curateur conjoint conjointe compagnon compagne ami amie voisin "
        "voisine prévenir prevenir nom prénom mrs ms mister wife husband son daughter "
        "mother father"
    ),
}

# 15 characters, spaces or dots anywhere between them (the check rule decides).
_NIR_SHAPE = r"(?<![\w.])[1-478](?:[ .]?[0-9AaBb]){14}(?![\w]|[ .]\d)"
_NIA_SHAPE = r"(?<![\w.])[1-8](?:[ .]?[0-9AaBb]){14}(?![\w]|[ .]\d)"
_STREET_TYPES = (
    r"rue|avenue|av\.|boulevard|bd|bld|chemin|impasse|allée|allee|place|route|quai|cours|square"
    r"|voie|passage|lotissement|résidence|residence|hameau|lieu-dit|chaussée|sentier|faubourg"
    r"|cité|cite|esplanade|parvis|promenade|villa|ruelle|traverse|montée|rond-point|street|road"
)
_CAPITALIZED = r"[A-ZÀ-ÖØ-Þ][\w'’-]+"


class DigitsRecognizer(PatternRecognizer):
    """A pattern recognizer whose every pattern needs a digit: a text without one (a name, a
    label) is not run through its expressions, the most costly part of a column's analysis."""

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        if not _DIGIT.search(text):
            return []
        found: list[RecognizerResult] = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return found


_DIGIT = re.compile(r"\d")


class FrNirRecognizer(DigitsRecognizer):
    """FR_NIR: the social security number, 15 characters, spaces allowed, key checked."""

    def __init__(self, language: str = "fr") -> None:
        super().__init__(
            supported_entity="FR_NIR",
            name="FR_NIR",
            supported_language=language,
            patterns=[Pattern("NIR", _NIR_SHAPE, 0.5)],
            context=list(CONTEXT["FR_NIR"]),
        )

    def validate_result(self, pattern_text: str) -> bool:
        return checks.is_nir(pattern_text)


class FrInsRecognizer(DigitsRecognizer):
    """FR_INS: a NIR or NIA whose key is right, only with its context (INS, NIA, the OIDs).

    The INS number is the NIR (OID 1.2.250.1.213.1.4.8) or a temporary NIA
    (OID 1.2.250.1.213.1.4.9); without such context the number is reported as a NIR.
    """

    def __init__(self, language: str = "fr") -> None:
        super().__init__(
            supported_entity="FR_INS",
            name="FR_INS",
            supported_language=language,
            patterns=[Pattern("NIR or NIA", _NIA_SHAPE, 0.3)],
            context=list(CONTEXT["FR_INS"]),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return None if checks.is_nir_or_nia(pattern_text) else False


# A phone number is not part of a longer run of digit groups.
_NOT_AFTER_DIGITS = r"(?<![\w+])(?<!\d[ .\-/])"
_NOT_BEFORE_DIGITS = r"(?![\w]|[ .\-/]\d)"


class FrPhoneRecognizer(DigitsRecognizer):
    """PHONE_NUMBER (recognizer FR_PHONE): ``0X XX XX XX XX`` with spaces, dots, dashes,
    slashes or nothing, ``+33 X XX XX XX XX``, ``+33 (0)X ...``, ``0033 X ...``."""

    PATTERNS = (
        Pattern(
            "FR phone, grouped",
            _NOT_AFTER_DIGITS + r"0[1-9](?:[ .\-/]\d{2}){4}" + _NOT_BEFORE_DIGITS,
            0.6,
        ),
        Pattern("FR phone, compact", _NOT_AFTER_DIGITS + r"0[1-9]\d{8}" + _NOT_BEFORE_DIGITS, 0.5),
        Pattern(
            "FR phone, international",
            _NOT_AFTER_DIGITS
            + r"(?:\+|00)33[ .\-]?(?:\(0\)[ .\-]?)?[1-9](?:[ .\-]?\d{2}){4}"
            + _NOT_BEFORE_DIGITS,
            0.7,
        ),
    )

    def __init__(self, language: str = "fr") -> None:
        super().__init__(
            supported_entity="PHONE_NUMBER",
            name="FR_PHONE",
            supported_language=language,
            patterns=list(self.PATTERNS),
            context=list(CONTEXT["PHONE_NUMBER"]),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return None if checks.is_french_phone(pattern_text) else False


class FrPostalCodeRecognizer(DigitsRecognizer):
    """FR_POSTAL_CODE: 5 digits with a real department, counted only with context."""

    def __init__(self, language: str = "fr") -> None:
        super().__init__(
            supported_entity="FR_POSTAL_CODE",
            name="FR_POSTAL_CODE",
            supported_language=language,
            patterns=[Pattern("postal code", r"(?<![\w.,])\d{5}(?![\w]|[.,]\d)", 0.1)],
            context=list(CONTEXT["FR_POSTAL_CODE"]),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return None if checks.is_postal_code(pattern_text) else False


class FrRppsRecognizer(DigitsRecognizer):
    """FR_RPPS: 11 digits with a Luhn key (1 in 10 random numbers pass: context helps)."""

    def __init__(self, language: str = "fr") -> None:
        super().__init__(
            supported_entity="FR_RPPS",
            name="FR_RPPS",
            supported_language=language,
            patterns=[Pattern("RPPS", r"(?<![\w.,])\d{11}(?![\w]|[.,]\d)", 0.3)],
            context=list(CONTEXT["FR_RPPS"]),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return None if checks.is_rpps(pattern_text) else False


class FrAdeliRecognizer(DigitsRecognizer):
    """FR_ADELI: 9 digits starting with a department; no public key, so context only."""

    def __init__(self, language: str = "fr") -> None:
        super().__init__(
            supported_entity="FR_ADELI",
            name="FR_ADELI",
            supported_language=language,
            patterns=[Pattern("ADELI", r"(?<![\w.,])\d{9}(?![\w]|[.,]\d)", 0.05)],
            context=list(CONTEXT["FR_ADELI"]),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return None if checks.is_adeli(pattern_text) else False


class FrFinessRecognizer(DigitsRecognizer):
    """FR_FINESS: an establishment number, 9 characters, Luhn key on numeric ones."""

    def __init__(self, language: str = "fr") -> None:
        super().__init__(
            supported_entity="FR_FINESS",
            name="FR_FINESS",
            supported_language=language,
            patterns=[
                Pattern("FINESS", r"(?<![\w.,])(?:\d{2}|2[AB]|9[A-F])\d{7}(?![\w]|[.,]\d)", 0.1)
            ],
            context=list(CONTEXT["FR_FINESS"]),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return None if checks.is_finess(pattern_text) else False


_MONTHS = (
    r"janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre"
    r"|novembre|décembre|decembre|january|february|march|april|may|june|july|august"
    r"|september|october|november|december"
)


class FrDateOfBirthRecognizer(DigitsRecognizer):
    """DATE_OF_BIRTH: a calendar date, counted only with context (*né le*, *date de
    naissance*, *DDN*, *born*), or in a column whose name says so."""

    PATTERNS = (
        Pattern(
            "DD/MM/YYYY", r"(?<![\w/.-])\d{1,2}[/.\-]\d{1,2}[/.\-](?:18|19|20)\d{2}(?![\w])", 0.1
        ),
        Pattern("YYYY-MM-DD", r"(?<![\w/.-])(?:18|19|20)\d{2}[/.\-]\d{2}[/.\-]\d{2}(?![\w:])", 0.1),
        Pattern(
            "D month YYYY",
            rf"(?<![\w])\d{{1,2}}(?:er)? (?:{_MONTHS}) (?:18|19|20)\d{{2}}"
            r"(?![\w])",
            0.1,
        ),
    )

    def __init__(self, language: str = "fr") -> None:
        super().__init__(
            supported_entity="DATE_OF_BIRTH",
            name="DATE_OF_BIRTH",
            supported_language=language,
            patterns=list(self.PATTERNS),
            context=list(CONTEXT["DATE_OF_BIRTH"]),
        )


class FrAddressRecognizer(PatternRecognizer):
    """ADDRESS: a street address, ``12 bis, rue des Lilas``, ``chemin de Peron``."""

    PATTERNS = (
        Pattern(
            "number and street",
            rf"(?<![\w])\d{{1,4}}(?: ?(?:bis|ter|[A-Da-d]))?,? (?i:{_STREET_TYPES}) "
            r"[\w'’ -]{2,60}",
            0.6,
        ),
        Pattern(
            "street",
            rf"(?<![\w])(?i:{_STREET_TYPES}) (?:(?:de la|de l'|du|des|de|d'|la|le|les) ?)?"
            rf"{_CAPITALIZED}",
            0.45,
        ),
    )

    def __init__(self, language: str = "fr") -> None:
        super().__init__(
            supported_entity="ADDRESS",
            name="FR_ADDRESS",
            supported_language=language,
            patterns=list(self.PATTERNS),
            context=list(CONTEXT["ADDRESS"]),
            global_regex_flags=_CASE_SENSITIVE,
        )


class CivilityPersonRecognizer(PatternRecognizer):
    """PERSON after a civility: ``Mme DUPONT``, ``M. Jean Martin``, ``Dr Leroy``."""

    def __init__(self, language: str = "fr") -> None:
        civility = (
            r"(?:M\.|Mme\.?|Mlle\.?|Mr\.?|Mrs\.?|Ms\.?|Dr\.?|Pr\.?|Monsieur|Madame"
            r"|Mademoiselle|Docteur|Professeur)"
        )
        super().__init__(
            supported_entity="PERSON",
            name="CIVILITY_PERSON",
            supported_language=language,
            patterns=[
                Pattern(
                    "civility and name",
                    rf"(?<![\w]){civility} {_CAPITALIZED}(?: {_CAPITALIZED})?",
                    0.7,
                )
            ],
            global_regex_flags=_CASE_SENSITIVE,
        )


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer, its domain check done with the bundled suffix list."""

    def __init__(self, language: str = "fr") -> None:
        super().__init__(context=list(CONTEXT["EMAIL_ADDRESS"]), supported_language=language)

    def validate_result(self, pattern_text: str) -> bool:
        return OFFLINE_TLD_EXTRACT(pattern_text).fqdn != ""


class StrictIpRecognizer(IpRecognizer):
    """Presidio's IP recognizer, whose IPv4 pattern no longer matches inside longer dotted
    numbers such as the OID ``1.2.250.1.213.1.4.8``."""

    _IPV4 = Pattern(
        "IPv4",
        r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
        r"(?:/(?:[0-2]?\d|3[0-2]))?(?![\w]|\.\d)",
        0.6,
    )

    def __init__(self, language: str = "fr") -> None:
        patterns = [p for p in IpRecognizer.PATTERNS if not p.name.startswith("IPv4")]
        super().__init__(
            patterns=[*patterns, self._IPV4],
            context=list(CONTEXT["IP_ADDRESS"]),
            supported_language=language,
        )


def french_iban_recognizer(language: str = "fr") -> IbanRecognizer:
    """Presidio's IBAN recognizer (checksum verified) with French context words."""
    return IbanRecognizer(context=list(CONTEXT["IBAN_CODE"]), supported_language=language)


# -- people ---------------------------------------------------------------------------------
_PARTICLES = frozenset(
    {
        "de",
        "du",
        "des",
        "d'",
        "d’",
        "la",
        "le",
        "van",
        "von",
        "ben",
        "el",
        "di",
        "da",
        "del",
        "dos",
        "y",
        "-",
    }
)
_NAME_TOKEN = re.compile(r"^[A-ZÀ-ÖØ-Þ][\w'’-]*$")


class FrenchNerRecognizer(SpacyRecognizer):
    """PERSON from spaCy's French NER, scored by the shape of the span.

    ``fr_core_news_sm`` labels many capitalised medical words as persons ("Cholécystectomie",
    "Pollen"). A person span counts (0.7) when it has two or more capitalised words (first
    name and SURNAME); a single word scores 0.3 and counts only next to a civility or a
    relative (*fils*, *épouse*, *tuteur*); a single word of the French lexicon is dropped.
    Places are not used: on short values the model calls half of the medical vocabulary a
    place; street addresses have their own recognizer.
    """

    def __init__(self, lexicon: Collection[str], language: str = "fr") -> None:
        super().__init__(
            supported_language=language,
            supported_entities=["PERSON"],
            context=list(CONTEXT["PERSON"]),
            name="FR_NER",
        )
        self.lexicon = lexicon

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None or "PERSON" not in entities:
            return []
        results = []
        for span in nlp_artifacts.entities:
            score = self._person_score(span) if span.label_ == "PERSON" else 0.0
            if score > 0:
                explanation = AnalysisExplanation("FR_NER", score, textual_explanation="spaCy PER")
                results.append(
                    RecognizerResult("PERSON", span.start_char, span.end_char, score, explanation)
                )
        return results

    def _person_score(self, span: Any) -> float:
        words = [token.text for token in span if not token.is_punct]
        names = [w for w in words if _NAME_TOKEN.match(w) and fold(w) not in _PARTICLES]
        if not names or any(not _NAME_TOKEN.match(w) and fold(w) not in _PARTICLES for w in words):
            return 0.0
        if len(names) >= 2:
            return 0.7
        return 0.0 if fold(names[0]) in self.lexicon else 0.3


_WORD = re.compile(r"[^\W\d_]{3,}(?:['’-][^\W\d_]+)*")


class KnownNamesRecognizer(EntityRecognizer):
    """PERSON: capitalised words that are names found in the database's own name columns.

    Built per scan from the sampled values of columns already judged to hold names, so a
    file name ``ecg_BOUTIN.png`` or a JSON change log mentioning a patient is recognised.
    Names that are also common French words (*Rose*, *Blanc*) are left out. Kept in memory
    only.
    """

    def __init__(
        self, names: Iterable[str], lexicon: Collection[str], language: str = "fr"
    ) -> None:
        super().__init__(
            supported_entities=["PERSON"],
            supported_language=language,
            name="KNOWN_NAMES",
            context=list(CONTEXT["PERSON"]),
        )
        self.names = frozenset(
            key
            for name in names
            for word in _WORD.findall(name)
            if len(key := fold(word)) >= 3 and key not in lexicon
        )

    def load(self) -> None:
        """Nothing to load: the names are given."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if "PERSON" not in entities or not self.names:
            return []
        results = []
        for match in _WORD.finditer(text):
            word = match.group()
            if word[0].isupper() and fold(word) in self.names:
                explanation = AnalysisExplanation(
                    "KNOWN_NAMES", 0.6, textual_explanation="a name of the database"
                )
                results.append(
                    RecognizerResult("PERSON", match.start(), match.end(), 0.6, explanation)
                )
        return results


_PHONE_CANDIDATE = re.compile(
    r"(?<![\w.+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,5}\)[ .\-]?)?\d[\d .\-]{5,15}\d(?![\w]|[.\-]\d)"
)


# dates (2019-01-02, 02.01.2019), dotted numbers (IP addresses, OIDs)
_NOT_A_PHONE = re.compile(r"^\d{1,4}[.\-/]\d{1,2}[.\-/]\d{1,4}$|^\d+(?:\.\d+){3,}$")


class InternationalPhoneRecognizer(EntityRecognizer):
    """PHONE_NUMBER of North America and the UK (``(206) 342-8631``, ``020 7946 0018``,
    ``+44 20 7946 0018``): runs of digits shaped as phone numbers that libphonenumber holds
    valid there. Presidio's own recognizer runs libphonenumber's matcher once per region over
    the whole text, about 2 ms a text; parsing the candidates only is cheaper."""

    REGIONS = ("US", "GB")
    SCORE = 0.4

    def __init__(self, language: str = "en") -> None:
        super().__init__(
            supported_entities=["PHONE_NUMBER"],
            supported_language=language,
            name="INTL_PHONE",
            context=list(CONTEXT["PHONE_NUMBER"]),
        )

    def load(self) -> None:
        """Nothing to load: libphonenumber's metadata comes with the package."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if "PHONE_NUMBER" not in entities:
            return []
        results = []
        for match in _PHONE_CANDIDATE.finditer(text):
            if self._valid(match.group()):
                explanation = AnalysisExplanation(
                    "INTL_PHONE", self.SCORE, textual_explanation="valid phone number"
                )
                results.append(
                    RecognizerResult(
                        "PHONE_NUMBER", match.start(), match.end(), self.SCORE, explanation
                    )
                )
        return results

    def _valid(self, candidate: str) -> bool:
        digits = sum(ch.isdigit() for ch in candidate)
        if not 7 <= digits <= 15 or _NOT_A_PHONE.match(candidate):
            return False
        # as people write them: international (+44...), national with a trunk 0 (020...,
        # 07700...), or North American (10 digits, or 11 with the leading 1)
        north_american = digits == 10 or (digits == 11 and candidate[0] == "1")
        if candidate[0] not in "+(0" and not north_american:
            return False
        for region in self.REGIONS:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                return True
        return False


class UkNhsRecognizer(DigitsRecognizer):
    """UK_NHS: the NHS number, 10 digits with a mod-11 key, counted where the number says it
    is one.

    Written in its layout (``943 476 5919``, ``943-476-5919``: 3, 3 and 4 digits, the same
    separator twice) it counts in any text. A bare run of 10 digits is also a French phone
    number written without spaces (``0612345678``), whose key passes one time in eleven: it
    counts in English text (and in values without words, read as English, where a column is
    judged by the share of its values that pass), elsewhere only next to a context word
    (*NHS*) or in a column so named, like an RPPS number. Neither counts inside a longer run
    of digit groups. A valid key keeps the pattern's score (Presidio's own recognizer raises it
    to 1 whatever the text, which made French remarks with phone numbers mention NHS numbers)."""

    _LAID_OUT = _NOT_AFTER_DIGITS + r"\d{3}([ \-])\d{3}\1\d{4}" + _NOT_BEFORE_DIGITS
    _COMPACT = _NOT_AFTER_DIGITS + r"\d{10}" + _NOT_BEFORE_DIGITS

    def __init__(self, language: str = "en") -> None:
        super().__init__(
            supported_entity="UK_NHS",
            name="UK_NHS",
            supported_language=language,
            patterns=[
                Pattern("NHS, laid out", self._LAID_OUT, 0.5),
                Pattern("NHS, 10 digits", self._COMPACT, 0.5 if language == "en" else 0.3),
            ],
            context=list(CONTEXT["UK_NHS"]),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return None if checks.is_nhs_number(pattern_text) else False


def international_recognizers(language: str) -> list[EntityRecognizer]:
    """Identifiers of other countries the scan looks for (English-speaking first): phones,
    the NHS number (10 digits, mod-11 key checked)."""
    return [InternationalPhoneRecognizer(language), UkNhsRecognizer(language)]


def pattern_recognizers(language: str) -> list[EntityRecognizer]:
    """Every recognizer that needs no NLP model, for one language."""
    return [
        FrNirRecognizer(language),
        FrInsRecognizer(language),
        FrPhoneRecognizer(language),
        FrPostalCodeRecognizer(language),
        FrRppsRecognizer(language),
        FrAdeliRecognizer(language),
        FrFinessRecognizer(language),
        FrDateOfBirthRecognizer(language),
        FrAddressRecognizer(language),
        CivilityPersonRecognizer(language),
        OfflineEmailRecognizer(language),
        StrictIpRecognizer(language),
        french_iban_recognizer(language),
    ]
