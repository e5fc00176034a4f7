"""The French recognizers, through the real Presidio engine and spaCy model, on valid and
invalid values; and the check rules they rely on."""

from __future__ import annotations

import pytest
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

from retention.discovery import checks
from retention.discovery.analyze import analyze_values
from retention.discovery.engine import (
    CONTEXT_SETTINGS,
    LANGUAGES,
    Analyzer,
    ScanContext,
    get_analyzer,
)
from retention.discovery.mask import mask
from retention.discovery.recognizers import REPORT_SCORE, KnownNamesRecognizer


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return get_analyzer()


def found(analyzer: Analyzer, text: str, context: list[str] | None = None) -> dict[str, str]:
    """Entity -> the text it covers, for results that the scan counts."""
    results = next(iter(analyzer.analyze([text], "fr", context=context)))
    return {
        r.entity_type: text[r.start : r.end]
        for r in sorted(results, key=lambda r: r.score)
        if r.score >= REPORT_SCORE
    }


# -- FR_NIR --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "185057800608491",
        "1 85 05 78 006 084 91",
        "Numéro de sécurité sociale : 2 85 05 78 006 084 41",
        "185052A00608435",  # Corsica 2A: key computed with 19
        "2 85 05 2B 012 345 56",  # Corsica 2B: key computed with 18
        "385057800608488",  # temporary numbers: sex 3, 4, 7, 8
        "485057800608438",
        "785057800608482",
        "885057800608432",
        "185257800608423",  # month 20 and above: unknown month
        "185997800608443",
    ],
)
def test_nir_valid_numbers_are_found(analyzer: Analyzer, text: str) -> None:
    assert "FR_NIR" in found(analyzer, text)


@pytest.mark.parametrize(
    "text",
    [
        "1 85 05 78 006 084 36",  # wrong key
        "185057800608492",  # wrong key
        "185052A00608491",  # 2A read as 20 instead of 19
        "585057800608400",  # sex digit 5
        "185137800608491",  # month 13
        "185007800608491",  # month 00
        "18505780060849",  # 14 characters
        "1850578006084910",  # 16 characters
        "18505780060849A",
    ],
)
def test_nir_invalid_numbers_are_rejected(analyzer: Analyzer, text: str) -> None:
    assert "FR_NIR" not in found(analyzer, text)


def test_nir_key_reads_corsica_as_19_and_18() -> None:
    assert checks.nir_key("185052A006084") == checks.nir_key("1850519006084")
    assert checks.nir_key("285052B012345") == checks.nir_key("2850518012345")


# -- FR_INS --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "INS 1 85 05 78 006 084 91 (OID 1.2.250.1.213.1.4.8)",
        "matricule INS : 185057800608491",
        "NIA 712345678901220 OID 1.2.250.1.213.1.4.9",  # a NIA: no calendar, key checked
    ],
)
def test_ins_with_its_context_is_found(analyzer: Analyzer, text: str) -> None:
    assert "FR_INS" in found(analyzer, text)


@pytest.mark.parametrize(
    "text",
    [
        "1 85 05 78 006 084 91",  # a NIR without INS context stays a NIR
        "INS 1 85 05 78 006 084 36",  # wrong key
        "NIA 712345678901221 OID 1.2.250.1.213.1.4.9",  # wrong key
        "OID 1.2.250.1.213.1.4.8",  # the OID alone
    ],
)
def test_ins_without_context_or_key_is_not_found(analyzer: Analyzer, text: str) -> None:
    assert "FR_INS" not in found(analyzer, text)


def test_ins_column_name_is_context() -> None:
    assert "FR_INS" in found(get_analyzer(), "185057800608491", context=["ins", "nir"])


# -- FR_PHONE ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "06 12 34 56 78",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "0612345678",
        "02 99 12 34 56",
        "+33 6 12 34 56 78",
        "+33612345678",
        "+33 (0)6 12 34 56 78",
        "0033 6 12 34 56 78",
        "Prévenir sa fille au 07 61 83 25 38 après 18h",
    ],
)
def test_french_phone_formats_are_found(analyzer: Analyzer, text: str) -> None:
    assert "PHONE_NUMBER" in found(analyzer, text)


@pytest.mark.parametrize(
    "text",
    [
        "00 12 34 56 78",  # no area digit
        "06 12 34 56",  # 8 digits
        "061234567",  # 9 digits
        "06123456789",  # 11 digits
        "+33 06 12 34 56 78 9",
        "Posologie : 1 g toutes les 6 heures",
    ],
)
def test_non_phone_numbers_are_rejected(analyzer: Analyzer, text: str) -> None:
    assert "PHONE_NUMBER" not in found(analyzer, text)


def test_phone_context_words_raise_the_score(analyzer: Analyzer) -> None:
    def score(text: str) -> float:
        results = next(iter(analyzer.analyze([text], "fr")))
        return float(max(r.score for r in results if r.entity_type == "PHONE_NUMBER"))

    assert score("portable : 0612345678") > score("0612345678")
    assert score("tél 06 12 34 56 78") > score("06 12 34 56 78")


# -- FR_POSTAL_CODE ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "context"),
    [("CP 35000", None), ("code postal : 97400", None), ("35000", ["cp"]), ("75013", ["zip"])],
)
def test_postal_code_with_context_is_found(
    analyzer: Analyzer, text: str, context: list[str] | None
) -> None:
    assert "FR_POSTAL_CODE" in found(analyzer, text, context)


@pytest.mark.parametrize(
    ("text", "context"),
    [("35000", None), ("Patient 35000", None), ("CP 00123", None), ("CP 96000", None),
     ("CP 350001", None), ("3500", ["cp"])],
)  # fmt: skip
def test_postal_code_alone_or_invalid_is_not_found(
    analyzer: Analyzer, text: str, context: list[str] | None
) -> None:
    assert "FR_POSTAL_CODE" not in found(analyzer, text, context)


# -- FR_RPPS, FR_ADELI, FR_FINESS ----------------------------------------------------------
@pytest.mark.parametrize("text", ["RPPS 10001234565", "n° RPPS : 10123456781", "10001234565"])
def test_rpps_with_luhn_key_is_found(analyzer: Analyzer, text: str) -> None:
    results = next(iter(analyzer.analyze([text], "fr")))
    assert any(r.entity_type == "FR_RPPS" for r in results)


@pytest.mark.parametrize("text", ["RPPS 10001234566", "RPPS 1000123456", "RPPS 100012345650"])
def test_rpps_with_wrong_key_or_length_is_rejected(analyzer: Analyzer, text: str) -> None:
    results = next(iter(analyzer.analyze([text], "fr")))
    assert not any(r.entity_type == "FR_RPPS" for r in results)


def test_rpps_needs_context_to_be_reported(analyzer: Analyzer) -> None:
    assert "FR_RPPS" in found(analyzer, "RPPS 10001234565")
    assert "FR_RPPS" not in found(analyzer, "10001234565")  # 1 in 10 numbers pass Luhn


@pytest.mark.parametrize("text", ["ADELI 351234567", "n° ADELI : 971012345"])
def test_adeli_with_context_is_found(analyzer: Analyzer, text: str) -> None:
    assert "FR_ADELI" in found(analyzer, text)


@pytest.mark.parametrize(
    "text", ["351234567", "ADELI 001234567", "ADELI 35123456", "ADELI 96123456"]
)
def test_adeli_without_context_or_department_is_not_found(analyzer: Analyzer, text: str) -> None:
    assert "FR_ADELI" not in found(analyzer, text)


@pytest.mark.parametrize("text", ["FINESS 010003820", "FINESS 010003812", "FINESS 2A0000012"])
def test_finess_with_context_is_found(analyzer: Analyzer, text: str) -> None:
    assert "FR_FINESS" in found(analyzer, text)


@pytest.mark.parametrize("text", ["010003820", "FINESS 010003821", "FINESS 000003820"])
def test_finess_without_context_or_with_bad_key_is_not_found(analyzer: Analyzer, text: str) -> None:
    assert "FR_FINESS" not in found(analyzer, text)


# -- dates of birth, e-mail, IP, IBAN, addresses, persons ---------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "né le 12/03/1985 à Rennes",
        "Née le 1er mars 1985",
        "date de naissance : 1985-03-12",
        "DDN 12.03.1985",
        "born 03/12/1985",
    ],
)
def test_date_of_birth_with_context_is_found(analyzer: Analyzer, text: str) -> None:
    assert "DATE_OF_BIRTH" in found(analyzer, text)


@pytest.mark.parametrize(
    "text", ["entré le 12/03/2020", "12/03/1985", "naissance prévue", "né le 45/99/1985x"]
)
def test_other_dates_are_not_birth_dates(analyzer: Analyzer, text: str) -> None:
    assert "DATE_OF_BIRTH" not in found(analyzer, text)


@pytest.mark.parametrize(
    "text", ["jean.dupont@orange.fr", "courriel : m.durand@chu-rennes.fr", "x_y+z@laposte.net"]
)
def test_email_is_found(analyzer: Analyzer, text: str) -> None:
    assert "EMAIL_ADDRESS" in found(analyzer, text)


@pytest.mark.parametrize("text", ["jean.dupont@orange", "jean@localhost", "@orange.fr"])
def test_email_without_real_domain_is_rejected(analyzer: Analyzer, text: str) -> None:
    assert "EMAIL_ADDRESS" not in found(analyzer, text)


@pytest.mark.parametrize("text", ["192.168.1.10", "adresse IP : 10.0.0.1", "2001:db8::1"])
def test_ip_address_is_found(analyzer: Analyzer, text: str) -> None:
    assert "IP_ADDRESS" in found(analyzer, text)


@pytest.mark.parametrize("text", ["1.2.250.1.213.1.4.8", "999.1.1.1", "version 1.2.3", "3.14"])
def test_oids_and_versions_are_not_ip_addresses(analyzer: Analyzer, text: str) -> None:
    assert "IP_ADDRESS" not in found(analyzer, text)


def test_iban_checksum_decides(analyzer: Analyzer) -> None:
    assert "IBAN_CODE" in found(analyzer, "IBAN FR76 3000 6000 0112 3456 7890 189")
    assert "IBAN_CODE" not in found(analyzer, "IBAN FR76 3000 6000 0112 3456 7890 188")


@pytest.mark.parametrize(
    "text", ["12 rue des Lilas", "8, rue Hubert", "chemin de Peron", "3 bis avenue Jean Jaurès"]
)
def test_street_address_is_found(analyzer: Analyzer, text: str) -> None:
    assert "ADDRESS" in found(analyzer, text)


@pytest.mark.parametrize(
    "text", ["mise en place de la sonde", "1 cp le matin", "2 bouffées si besoin", "Rue"]
)
def test_medical_text_is_not_an_address(analyzer: Analyzer, text: str) -> None:
    assert "ADDRESS" not in found(analyzer, text)


@pytest.mark.parametrize(
    "text",
    [
        "Prévenir fils Jules COUTURIER au 0761832538",
        "Sous tutelle, tuteur Grégoire LAROCHE",
        "Vue par Mme DUPONT ce matin",
        "Appeler Dr Leroy",
    ],
)
def test_people_in_free_text_are_found(analyzer: Analyzer, text: str) -> None:
    assert "PERSON" in found(analyzer, text)


@pytest.mark.parametrize(
    "text",
    [
        "AVC ischémique, Cholécystectomie, Appendicectomie",
        "Allergie à l'iode, voir dossier",
        "Patient désorienté la nuit",
        "Infarctus du myocarde",
        "Pollen",
    ],
)
def test_medical_words_are_not_people(analyzer: Analyzer, text: str) -> None:
    assert "PERSON" not in found(analyzer, text)


def test_known_names_recognizer_finds_database_names_in_identifiers(analyzer: Analyzer) -> None:
    known = KnownNamesRecognizer(["BOUTIN", "Rose", "Le Goff"], analyzer.lexicon)
    hits = known.analyze("ecg_BOUTIN.png vu par GOFF", ["PERSON"])
    assert ["ecg_BOUTIN.png vu par GOFF"[r.start : r.end] for r in hits] == ["BOUTIN", "GOFF"]
    assert known.analyze("ecg_boutin.png", ["PERSON"]) == []  # not capitalised
    assert known.analyze("Rose", ["PERSON"]) == []  # a common French word


# -- check rules and masking -------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "valid", "invalid"),
    [
        (checks.luhn_ok, ["79927398713", "010003820"], ["79927398710", "12a"]),
        (checks.is_rpps, ["10001234565"], ["10001234566", "1000123456"]),
        (checks.is_finess, ["010003820", "010003812", "2A0000012"], ["010003821", "960003820"]),
        (checks.is_adeli, ["351234567", "971012345"], ["001234567", "3512345678"]),
        (checks.is_french_phone, ["06 12 34 56 78", "+33 (0)6 12 34 56 78"], ["0012345678"]),
        (checks.is_postal_code, ["35000", "97400", "20090"], ["00100", "96000", "3500"]),
        (checks.is_nir_or_nia, ["712345678901220", "185057800608491"], ["712345678901221"]),
        (
            checks.is_nhs_number,
            ["9434765919", "943 476 5919", "4010232137"],
            ["9434765918", "943476591", "0000000001"],
        ),
    ],
)
def test_check_rules(rule: object, valid: list[str], invalid: list[str]) -> None:
    assert callable(rule)
    assert all(rule(value) for value in valid)
    assert not any(rule(value) for value in invalid)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("jean.dupont@orange.fr", "j***.d***@o***.fr"),
        ("06 12 34 56 78", "0* ** ** ** **"),
        ("1 85 05 78 006 084 91", "1 ** ** ** *** *** **"),
        ("Prévenir fils Jules COUTURIER", "P*** f*** J*** C***"),
        ("1985-03-12", "1***-**-**"),
        # one line whatever the value holds: an address's line break splitting a draft's
        # comment made the file unreadable (an outside review); a terminal escape is no escape
        ("12 rue des Lilas\r\n75012 Paris", "1* r*** d*** L***↵***** P***"),
        ("Lilas\nParis\r", "L***↵P***↵"),
        ("a\tb\x1b[31m", "a b [3***"),
    ],
)
def test_masked_examples_keep_no_value(value: str, masked: str) -> None:
    assert mask(value) == masked


# -- phones of other countries, NHS number -------------------------------------------------
def found_en(analyzer: Analyzer, text: str) -> dict[str, str]:
    results = next(iter(analyzer.analyze([text], "en")))
    return {r.entity_type: text[r.start : r.end] for r in results if r.score >= REPORT_SCORE}


@pytest.mark.parametrize(
    "text",
    [
        "(206) 342-8631",
        "206-342-8631",
        "+1 206 342 8631",
        "020 7946 0018",
        "0161 496 0066",
        "+44 20 7946 0018",
        "07911 123456",
        "Call his daughter on 0113 496 0123 after 5pm",
    ],
)
def test_us_and_uk_phone_numbers_are_found(analyzer: Analyzer, text: str) -> None:
    assert "PHONE_NUMBER" in found_en(analyzer, text)


@pytest.mark.parametrize(
    "text",
    [
        "(206) 042-8631",  # exchange 042: not a valid US number
        "555-0100",  # 7 digits, no area code
        "2019-01-02",
        "10.12.200.3",
        "350000030",  # 9 digits, no trunk 0 (a FINESS number)
        "1.2.250.1.213.1.4.8",
    ],
)
def test_numbers_that_are_not_phones_of_those_countries_are_rejected(
    analyzer: Analyzer, text: str
) -> None:
    assert "PHONE_NUMBER" not in found_en(analyzer, text)


def test_nhs_number_with_its_key_is_found(analyzer: Analyzer) -> None:
    assert found_en(analyzer, "NHS number 943 476 5919").get("UK_NHS") == "943 476 5919"
    assert "UK_NHS" not in found_en(analyzer, "NHS number 943 476 5918")  # wrong key


def _nhs_key_passes(digits: str) -> bool:
    return (
        sum(int(d) * weight for d, weight in zip(digits, range(10, 0, -1), strict=True)) % 11 == 0
    )


# French mobile numbers written without spaces whose 10 digits pass the NHS mod-11 key (one
# in eleven does): made up, picked so that only the NHS rule keeps them from being NHS numbers.
_PHONES_WITH_NHS_KEY = [
    n for n in (f"06{i:08d}" for i in range(12_345_600, 12_346_600)) if _nhs_key_passes(n)
][:8]


def test_nhs_laid_out_or_named_is_found_in_any_language(analyzer: Analyzer) -> None:
    for text in ("943 476 5919", "943-476-5919", "Patient transféré, NHS 943 476 5919"):
        assert found(analyzer, text).get("UK_NHS") == text[-12:], text
    assert found(analyzer, "Patient transféré, NHS 9434765919").get("UK_NHS") == "9434765919"
    assert found(analyzer, "9434765919", context=["nhs", "number"]).get("UK_NHS") == "9434765919"
    assert found_en(analyzer, "Seen today, 9434765919, referred").get("UK_NHS") == "9434765919"


@pytest.mark.parametrize(
    "text",
    [
        "943 476-5919",  # two different separators: not the NHS layout
        "06 943 476 5919",  # part of a longer run of digit groups
        "NHS number 943 476 5918",  # wrong key
    ],
)
def test_nhs_numbers_out_of_layout_or_with_a_wrong_key_are_not_found(
    analyzer: Analyzer, text: str
) -> None:
    assert "UK_NHS" not in found(analyzer, text, context=["nhs"])


def test_french_remarks_with_compact_phone_numbers_mention_no_nhs_number(
    analyzer: Analyzer,
) -> None:
    """A French remark column (``rques``) whose phone numbers, written without spaces, pass
    the NHS key is about phones and people, not NHS numbers (it read as UK_NHS before)."""
    assert len(_PHONES_WITH_NHS_KEY) == 8
    remarks = [
        *(f"Ne pas appeler le domicile, joindre le {n}" for n in _PHONES_WITH_NHS_KEY[:4]),
        *(f"Prévenir sa fille Julie MARTIN au {n}" for n in _PHONES_WITH_NHS_KEY[4:]),
        "Patient malentendant, parler fort",
    ]
    content = analyze_values(analyzer, remarks, ["rques", "patients"], is_json=False, extra={})
    assert content.language == "fr"
    assert content.mentioned["PHONE_NUMBER"] == 8
    assert "UK_NHS" not in content.mentioned


def test_a_column_of_nhs_numbers_is_told_from_a_column_of_phones(analyzer: Analyzer) -> None:
    """Digits only: every value of an NHS column passes the key, one phone in eleven does."""
    nhs = [n for n in (f"4{i:09d}" for i in range(10_234_500, 10_234_700)) if _nhs_key_passes(n)]
    assert len(nhs) >= 10
    content = analyze_values(analyzer, nhs, ["nhs", "number", "patients"], is_json=False, extra={})
    assert content.language == "none"
    assert content.share("UK_NHS") == 1.0
    phones = [f"06{i:08d}" for i in range(12_345_600, 12_345_700)]
    content = analyze_values(analyzer, phones, ["tel", "patients"], is_json=False, extra={})
    assert content.share("PHONE_NUMBER") == 1.0
    assert content.share("UK_NHS") < 0.15


# -- context enhancement ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "language", "context"),
    [
        ("Prévenir sa fille Julie MARTIN au 06 12 34 56 78", "fr", ["rques", "patients"]),
        ("tél 0612345678, joindre le soir", "fr", None),
        ("185057800608491", "fr", ["matricule", "patients", "nir"]),
        ("Numéro de sécurité sociale : 2 85 05 78 006 084 41", "fr", None),
        ("né le 12/03/1954 à Rennes", "fr", ["rques"]),
        ("35000", "en", ["cp", "patients", "cp"]),
        ("10001234565", "en", ["rpps", "medecins"]),
        ("  06 12 34 56 78  ", "en", ["tel"]),
        ("NHS number 943 476 5919, seen by Dr Leroy", "en", None),
        ("12 bis, rue des Lilas 75011 Paris", "fr", ["adresse"]),
        ("", "fr", ["tel"]),
    ],
)
def test_the_scan_context_enhancement_gives_presidios_results(
    analyzer: Analyzer, text: str, language: str, context: list[str] | None
) -> None:
    """ScanContext (in place, bisection) against Presidio's own enhancer, same settings."""
    presidios = AnalyzerEngine(
        registry=analyzer.engine.registry,
        nlp_engine=analyzer.engine.nlp_engine,
        supported_languages=list(LANGUAGES),
        context_aware_enhancer=LemmaContextAwareEnhancer(**CONTEXT_SETTINGS),
    )

    def seen(engine: AnalyzerEngine) -> list[tuple[str, int, int, float, str | None]]:
        return sorted(
            (r.entity_type, r.start, r.end, r.score, r.analysis_explanation.supportive_context_word)
            for r in engine.analyze(text, language, context=context, return_decision_process=True)
        )

    assert isinstance(analyzer.engine.context_aware_enhancer, ScanContext)
    ours = seen(analyzer.engine)
    assert ours == seen(presidios)
    assert ours or not text
