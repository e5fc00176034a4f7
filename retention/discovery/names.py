"""Evidence from names: what a column's name (and its table's) says it holds.

Names are split into lower-case, accent-free words (``telPortable`` and ``TEL_PORTABLE`` both
give ``tel portable``), then matched against French and English vocabularies of hospital
software. A bare ``nom``/``name`` is a person only in a table of people; in a table of
services or drugs it is a label.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

STRONG = 0.9
MEDIUM = 0.6
WEAK = 0.3


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower case without accents: the key for name and word look-ups."""
    if text.isascii():
        return text.lower()  # what the rule below gives for ASCII text, in a third of the time
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class NameEvidence:
    """The entity a name suggests, how strongly (0-1), and the words that matched."""

    entity: str
    strength: float
    matched: str


@dataclass(frozen=True)
class _Rule:
    entity: str
    pattern: re.Pattern[str]
    strength: float


def _rule(entity: str, words: str, strength: float = STRONG) -> _Rule:
    """``words``: alternatives of space-separated words, matched on whole words."""
    return _Rule(entity, re.compile(rf"(?:^| )(?:{words})(?: |$)"), strength)


# First match wins: specific before general (birthplace before birth date, e-mail address
# before postal address).
_RULES: tuple[_Rule, ...] = (
    _rule("IP_ADDRESS", r"ip|ips|ipv4|ipv6|ip ?addr(?:ess)?|adresse ip|adr ip|remote ?addr"),
    _rule("EMAIL_ADDRESS", r"e? ?mail|emails?|courriel|mel|adresse ?e? ?mail|adr ?mail"),
    _rule(
        "LOCATION",
        r"(?:lieu|ville|commune|com|cd ?com|code ?com|pays|dept|departement|code ?insee|insee"
        r"|cp|place|city|country|town)s? (?:de )?(?:naissance|naiss|nais|nai|birth)"
        r"|birth ?place|birth ?city|place of birth",
    ),
    _rule(
        "DATE_OF_BIRTH",
        r"(?:date|dt|d|jour)? ?(?:de )?(?:naissance|naiss|nais|nai)|ddn|dob"
        r"|birth ?date|birthday|date of birth|birth|born|ne le|nee le"
        r"|anniversaire",
    ),
    _rule(
        "FR_INS",
        r"ins|ins ?nir|ins ?nia|ins ?c|nia|matricule ins|insi|identifiant national"
        r"(?: de)? sante",
    ),
    _rule(
        "FR_NIR",
        r"nir|secu|num ?secu|no ?secu|n ?secu|securite sociale|nss|ssn|immat"
        r"|immatriculation|matricule|num ?insee|no ?insee|insee|social security"
        r"(?: number)?",
    ),
    _rule("UK_NHS", r"nhs|nhs ?(?:number|num|no|id)|nhsno"),
    _rule(
        "PERSON_ID",
        r"mrn|medical ?record ?(?:number|num|no|id)?|hospital ?(?:number|num|no)|chart ?(?:number"
        r"|num|no)|case ?(?:number|num|no)|patient ?(?:number|num|no)|(?:num|numero|no|n) ?dossier",
    ),
    _rule("FR_RPPS", r"rpps|num ?rpps|no ?rpps|idpp|id ?rpps"),
    _rule("FR_ADELI", r"adeli|num ?adeli|no ?adeli"),
    _rule("FR_FINESS", r"finess|num ?finess|no ?finess"),
    _rule("IBAN_CODE", r"iban|rib|bban|compte bancaire|bank ?account"),
    _rule(
        "PHONE_NUMBER",
        r"tel|tels|tél|telephone|telephones|phone|phones|portable|mobile"
        r"|gsm|fixe|fax|cell|cellphone|num ?tel|no ?tel",
    ),
    _rule(
        "USERNAME",
        r"user ?name|login|login ?name|logon|log ?in|user ?login|sam ?account ?name"
        r"|account ?name|screen ?name|nom d ?utilisateur|nom utilisateur|pseudo|benutzername"
        r"|anmeldename",
    ),
    _rule(
        "FR_POSTAL_CODE",
        r"cp|code ?postal|codepostal|code ?post|cod ?post|cd ?post|postal ?code|postcode|zip"
        r"|zip ?code"
        r"|cedex",
    ),
    _rule(
        "ADDRESS",
        r"adresse|adresses|adr|addr|address|addresses|adresse ?\d|adr ?\d|rue"
        r"|voie|nom voie|num voie|street|lieu ?dit|complement adresse|domicile",
    ),
    _rule(
        "LOCATION",
        r"ville|commune|localite|city|town|lieu|municipality|county|district|province|canton"
        r"|borough|suburb|village",
        MEDIUM,
    ),
    _rule(
        "PERSON",
        r"prenom|prenoms|prenom\w*|nom ?jf|njf|nom de jeune fille|nom jeune fille"
        r"|nom ?naissance|nom de naissance|nom ?usage|nom d usage|nom ?marital"
        r"|nom ?patronymique|patronyme|nom ?famille|nom de famille|(?:first|given|last|family"
        r"|full|middle|maiden|previous) ?names?|surnames?|forenames?|nom ?complet"
        r"|nom ?prenom",
    ),
    _rule(
        "FREE_TEXT_PERSONAL",
        r"rques?|rq|remarques?|commentaires?|comments?|com|notes?"
        r"|observations?|obs|memo|texte|text|libre|infos?|informations?"
        r"|message|messages|contenu|body|details?|description|motif"
        r"|extra|old ?values?|anciennes? valeurs?|diff|changes?|data",
        WEAK,
    ),
)


def _vocabulary(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that make a column about a thing, not a person: ``nom_fichier``, ``file_name``.
_THINGS = _vocabulary(
    "fichier file table schema produit medicament service etablissement unite uf specialite "
    "type categorie libelle lib code host hote serveur server app application db base "
    "colonne column champ field variable param parametre module classe class objet object "
    "document doc dossier commune ville pays region departement organisme mutuelle caisse "
    "banque voie rue acte examen molecule labo laboratoire site salle lit chambre pole "
    "protocole modele template format extension mime role groupe group projet drug medication "
    "medicine product item device equipment test exam procedure diagnosis diagnostic category "
    "unit department ward room bed hospital report setting config language country currency "
    "tag label status event task job queue"
)
# Tables whose rows are people: a bare ``nom`` there is a person's name.
_PEOPLE = _vocabulary(
    "patient personne people person user utilisateur medecin praticien doctor staff "
    "personnel agent employe contact assure beneficiaire proche tuteur famille "
    "correspondant client member membre individu identite naissance pat pers soignant "
    "infirmier intervenant"
)
# Tables whose rows are organisations: their phones and addresses are not personal data.
_ORGANISATIONS = _vocabulary(
    "etablissement etab service unite uf site laboratoire labo pharmacie fournisseur "
    "organisme mutuelle caisse banque structure hopital clinique entreprise societe company "
    "companie supplier organization organisation location facility practice"
)
# Tables whose rows name kinds of things ("Home phone", "Previous ID"): type catalogues.
_CATALOGUES = _vocabulary(
    "type kind category categorie catalogue catalog nomenclature lookup dictionary "
    "dictionnaire referentiel enum typ"
)
# Tables of identifiers, and of accounts (whose identifiers are logins).
_IDENTIFIERS = _vocabulary("identifier identifiant ident id kennung")
_ACCOUNTS = _vocabulary("user utilisateur account compte login benutzer")
# A column named only by these words holds "the identifier" (or "the value") of its row.
_GENERIC_ID = _vocabulary(
    "identifier identifiant ident id value valeur val code extension number numero num no nr "
    "nummer wert"
)
_ID_QUALIFIERS = _vocabulary(
    "system external ext local alt alternate other patient person user staff primary"
)
CONTACT_ENTITIES = frozenset(
    {"PHONE_NUMBER", "EMAIL_ADDRESS", "ADDRESS", "LOCATION", "FR_POSTAL_CODE", "POSTAL_CODE"}
)
_BARE_NAME = frozenset({"nom", "noms", "name", "names", "nm"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+|(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])")


def words(name: str) -> list[str]:
    """``telPortable2`` -> ``['tel', 'portable', '2']``."""
    return [w for w in _SPLIT.split(fold(_CAMEL.sub(" ", name))) if w]


def _singular(word: str) -> str:
    """``patients`` -> ``patient``, ``hopitaux`` -> ``hopital`` (enough for table names)."""
    if word.endswith("aux") and len(word) > 4:
        return word[:-3] + "al"
    if word.endswith(("s", "x")) and len(word) > 3:
        return word[:-1]
    return word


def _in(found: Iterable[str], vocabulary: frozenset[str]) -> bool:
    """Some word, as it is or in the singular, belongs to the vocabulary."""
    return any(w in vocabulary or _singular(w) in vocabulary for w in found)


def column_evidence(table: str, column: str) -> NameEvidence | None:
    """What the column's name says, read with its table's name; None when nothing."""
    column_words = words(column)
    text = " ".join(column_words)
    for rule in _RULES:
        if rule.strength == WEAK:  # free text: only when nothing more precise applies
            bare = _bare_name(table, column_words)
            if bare is not None:
                return bare
        match = rule.pattern.search(text)
        if match:
            return NameEvidence(rule.entity, rule.strength, match.group().strip())
    return _bare_name(table, column_words)


def _bare_name(table: str, column_words: list[str]) -> NameEvidence | None:
    """``nom``/``name`` (possibly qualified by a person: ``nom_assure``, ``name_patient``)."""
    if not _BARE_NAME & set(column_words):
        return None
    others = set(column_words) - _BARE_NAME
    if _in(others, _THINGS):
        return None
    if any(w.startswith("prenom") for w in column_words):
        return NameEvidence("PERSON", STRONG, "prenom")
    table_words = words(table)
    if is_catalogue_table(table):
        return None  # "Home phone", "Previous ID": the name of a type
    if _in(others, _PEOPLE) or _in(table_words, _PEOPLE):
        return NameEvidence("PERSON", STRONG, " ".join(column_words))
    if _in(table_words, _THINGS | _ORGANISATIONS):
        return None
    return NameEvidence("PERSON", MEDIUM, " ".join(column_words))


def is_organisation_table(table: str) -> bool:
    """A table of establishments, services, suppliers: no data subject lives there."""
    table_words = words(table)
    return _in(table_words, _ORGANISATIONS) and not _in(table_words, _PEOPLE)


def is_catalogue_table(table: str) -> bool:
    """A table whose rows name kinds of things (``person_attribute_type``, ``ContactTypes``):
    its names and descriptions describe a type, not a person."""
    return _in(words(table), _CATALOGUES)


_LABELS = _vocabulary(
    "name names nom noms label libelle lib title titre designation intitule display"
)


def is_label_column(table: str, column: str) -> bool:
    """The label of a row that is not a person (``concept_name.name``, ``location.name``):
    it names a thing, even where a model reads a person in it."""
    column_words = set(words(column))
    return bool(column_words) and column_words <= _LABELS and not _in(words(table), _PEOPLE)


def is_account_table(table: str) -> bool:
    """A table of user accounts (``users``, ``utilisateurs``): its identifiers are logins."""
    return _in(words(table), _ACCOUNTS)


def is_identifier_column(table: str, column: str) -> bool:
    """A generic identifier or value column (``identifier``, ``value``, ``system_id``) of a
    table of identifiers, of people or of accounts: it holds the identifier of a person."""
    column_words = set(words(column))
    generic = column_words - _ID_QUALIFIERS
    if not generic or not generic <= _GENERIC_ID:
        return False
    table_words = words(table)
    return _in(table_words, _IDENTIFIERS | _PEOPLE | _ACCOUNTS) and not is_catalogue_table(table)


def context_words(table: str, column: str) -> list[str]:
    """The column's words and the table's, given to Presidio as context for every value."""
    return list(dict.fromkeys([*words(column), *words(table)]))
