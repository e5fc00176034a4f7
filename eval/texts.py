"""Free texts of a hospital database with planted personal values and medical terms.

A template such as ``"Prévenir {LIEN} {NAME} au {PHONE}"`` is filled with random values; the
position of every slot is kept: personal kinds (``name``, ``phone``, ``email``, ``nir``) must be
removed by scrub, medical kinds (``drug``, ``diagnosis``, ``allergy``, ``care_date``) must stay.
The word *allergie* in a template is a medical term too.

Names mix the usages met in real remarks: ``Prénom NOM``, ``NOM Prénom``, ``Prénom Nom``,
civility and name, lower case now and then; phones and NIRs come in their usual layouts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from random import Random

from retention.demo.generate import make_nir

PERSONAL_KINDS = ("name", "phone", "email", "nir")
MEDICAL_KINDS = ("drug", "diagnosis", "allergy", "care_date")


@dataclass(frozen=True)
class Planted:
    """A planted value: its kind and its position in the text."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Text:
    """A generated text and what was planted in it."""

    text: str
    planted: tuple[Planted, ...] = field(default=())


DRUGS = (
    "AMLODIPINE 5 mg", "Bisoprolol 2,5 mg", "ELIQUIS 5 mg", "Furosémide 40 mg", "LANTUS",
    "Metformine 1000 mg", "PREVISCAN", "Xarelto 20 mg", "Levothyrox 50 µg", "Augmentin 1 g",
    "TAHOR 40 mg", "Seresta 10", "Doliprane 1 g", "Tramadol LP 100", "OXYNORM 5 mg",
    "Kardégic 160", "Inexium 40", "Coversyl 5 mg", "PLAVIX 75 mg", "Ventoline", "Solupred 20 mg",
    "Lovenox 0,4 ml", "Temesta 1 mg", "Spiriva", "Zyloric 100",
)  # fmt: skip
DIAGNOSES = (
    "insuffisance cardiaque", "BPCO", "fibrillation auriculaire", "pneumopathie d'inhalation",
    "AVC ischémique", "diabète de type 2", "cirrhose éthylique", "fracture du col du fémur",
    "embolie pulmonaire", "maladie de Parkinson", "maladie d'Alzheimer", "maladie de Crohn",
    "sclérose en plaques", "hypothyroïdie", "pyélonéphrite aiguë", "HTA", "anémie ferriprive",
    "syndrome coronarien aigu", "lombosciatique", "cancer du côlon",
)  # fmt: skip
ALLERGENS = (
    "pénicilline", "iode", "latex", "amoxicilline", "AINS", "arachide", "sulfamides", "codéine",
    "produits de contraste", "kiwi",
)  # fmt: skip
LIENS = (
    "fils", "fille", "épouse", "époux", "mari", "femme", "frère", "sœur", "neveu", "nièce",
    "voisine", "voisin", "belle-fille", "gendre", "compagne", "compagnon",
)  # fmt: skip
DOMAINS = (
    "orange.fr", "free.fr", "gmail.com", "laposte.net", "wanadoo.fr", "sfr.fr", "hotmail.fr",
    "yahoo.fr", "outlook.fr", "neuf.fr",
)  # fmt: skip

# French remarks on the patient (administrative and nursing)
PATIENT_NOTES = (
    "Prévenir {LIEN} ({NAME}) au {PHONE} en cas d'aggravation",
    "{LIEN_CAP} : {NAME}, tél {PHONE}",
    "Personne de confiance : {NAME} - {PHONE}",
    "Allergie {ALLERGEN} connue. Contact {LIEN} {NAME} {PHONE}",
    "Patient sous {DRUG} pour {DIAG}. Joindre {NAME} ({LIEN}) : {EMAIL}",
    "Dossier transmis par mail à {EMAIL} à la demande du patient",
    "NIR corrigé : {NIR} (ancien numéro erroné)",
    "Carte vitale illisible, NIR {NIR}, vérifié avec l'assuré",
    "Ne pas communiquer d'informations à {NAME}",
    "Tuteur : {NAME}, UDAF, {PHONE}",
    "Appel de {NAME} ({LIEN}) le {DATE}, souhaite être rappelé(e) au {PHONE}",
    "Adressé par le Dr {DOC} pour {DIAG}",
    "Suivi {DIAG}, traitement {DRUG}. RAS",
    "Allergie à {ALLERGEN} (urticaire)",
    "Refuse les dérivés sanguins",
    "Malentendant, privilégier l'écrit",
    "Diabète de type 2 sous {DRUG}, HbA1c à surveiller",
    "Allergie {ALLERGEN}, prémédication avant examen",
    "Vit seul, passage infirmier 2 fois par jour",
    "Régime sans sel, {DIAG}",
)
# Discharge summaries of stays
STAY_NOTES = (
    "Patient de {AGE} ans hospitalisé pour {DIAG}. Traitement de sortie : {DRUG}. "
    "Allergie : {ALLERGEN}. Sortie au domicile. Courrier au Dr {DOC}.",
    "Hospitalisation du {DATE} au {DATE} pour {DIAG}. Pas d'allergie connue. Relais {DRUG} "
    "per os. Contrôle avec le Dr {DOC}.",
    "Transfert en SSR le {DATE}. Famille prévenue ({NAME}, {PHONE}).",
    "{DIAG_CAP} compliqué. Introduction de {DRUG}. Surveillance de la kaliémie.",
    "Entrée par les urgences le {DATE} pour {DIAG}. Allergie {ALLERGEN}. Sous {DRUG}.",
    "Sortie contre avis médical, {LIEN} {NAME} informé(e) au {PHONE}.",
    "Chute à domicile, {DIAG}. Reprise de {DRUG} à J2.",
    "Décision collégiale avec {NAME} ({LIEN}), personne de confiance.",
)
# Appointment notes of the secretariat
APPOINTMENT_NOTES = (
    "Rappeler le patient au {PHONE}",
    "Accompagné de {NAME} ({LIEN})",
    "Reporté à la demande du patient",
    "Envoyer la convocation à {EMAIL}",
    "Ambulance à prévoir",
    "Prévoir interprète",
    "Bilan {DIAG} : venir à jeun",
    "Confirmer par SMS au {PHONE}",
    "Allergie {ALLERGEN} : pas de produit de contraste",
)
# English comments of the laboratory middleware
LAB_COMMENTS = (
    "Sample haemolysed, redraw requested",
    "Critical potassium called to {NAME} on {PHONE}",
    "Result sent to {EMAIL}",
    "Insufficient volume",
    "Fasting sample",
    "Verified by second technician",
    "Critical value phoned to Dr {DOC}, ward informed",
    "Clotted sample, please repeat",
)

_SLOT = re.compile(r"\{(\w+)\}")
_ALLERGY_WORD = re.compile(r"(?i)allergie")


@dataclass(frozen=True)
class Names:
    """Pools of names to draw from."""

    last: tuple[str, ...]
    male: tuple[str, ...]
    female: tuple[str, ...]


def ascii_fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


class TextFactory:
    """Fills templates with random values and records where each went."""

    def __init__(self, rng: Random, names: Names) -> None:
        self.rng = rng
        self.names = names
        self._slots: dict[str, Callable[[], tuple[str, str | None]]] = {
            "NAME": lambda: (self.full_name(), "name"),
            "DOC": lambda: (self.surname(), "name"),
            "PHONE": lambda: (self.phone(), "phone"),
            "EMAIL": lambda: (self.email(), "email"),
            "NIR": lambda: (self.nir_text(), "nir"),
            "DRUG": lambda: (rng.choice(DRUGS), "drug"),
            "DIAG": lambda: (rng.choice(DIAGNOSES), "diagnosis"),
            "DIAG_CAP": lambda: (_cap(rng.choice(DIAGNOSES)), "diagnosis"),
            "ALLERGEN": lambda: (rng.choice(ALLERGENS), "allergy"),
            "DATE": lambda: (self.care_date(), "care_date"),
            "LIEN": lambda: (rng.choice(LIENS), None),
            "LIEN_CAP": lambda: (_cap(rng.choice(LIENS)), None),
            "AGE": lambda: (str(rng.randint(18, 97)), None),
        }

    # values
    def first_name(self) -> str:
        pool = self.names.female if self.rng.random() < 0.5 else self.names.male
        name = self.rng.choice(pool)
        if self.rng.random() < 0.08:  # Jean-Pierre, Marie-Claire
            name = f"{name}-{self.rng.choice(pool)}"
        return name

    def surname(self) -> str:
        name = self.rng.choice(self.names.last)
        r = self.rng.random()
        return name.upper() if r < 0.6 else name.lower() if r > 0.96 else name

    def full_name(self) -> str:
        first, last = self.first_name(), self.rng.choice(self.names.last)
        r = self.rng.random()
        if r < 0.45:
            return f"{first} {last.upper()}"
        if r < 0.65:
            return f"{last.upper()} {first}"
        if r < 0.8:
            return f"{first} {last}"
        if r < 0.95:
            civility = self.rng.choice(("M.", "Mme", "Monsieur", "Madame", "Mlle"))
            return f"{civility} {last.upper() if self.rng.random() < 0.6 else last}"
        return f"{first.lower()} {last.lower()}"

    def phone(self) -> str:
        first = self.rng.choice("67") if self.rng.random() < 0.7 else self.rng.choice("12345")
        pairs = [f"{self.rng.randrange(100):02d}" for _ in range(4)]
        r = self.rng.random()
        if r < 0.5:
            return f"0{first} {' '.join(pairs)}"
        if r < 0.7:
            return f"0{first}.{'.'.join(pairs)}"
        if r < 0.85:
            return f"0{first}{''.join(pairs)}"
        if r < 0.95:
            return f"+33 {first} {' '.join(pairs)}"
        return f"0{first}-{'-'.join(pairs)}"

    def email(self) -> str:
        first, last = ascii_fold(self.first_name()), ascii_fold(self.rng.choice(self.names.last))
        r = self.rng.random()
        local = (
            f"{first}.{last}"
            if r < 0.5
            else f"{first[0]}{last}"
            if r < 0.75
            else f"{last}.{first}{self.rng.randrange(100)}"
        )
        return f"{local}@{self.rng.choice(DOMAINS)}"

    def nir(self, sex: str | None = None, year: int | None = None) -> str:
        sex = sex or self.rng.choice("12")
        year = year if year is not None else self.rng.randint(1925, 2005)
        month = self.rng.randint(1, 12)
        r = self.rng.random()
        if r < 0.03:
            dept, commune = self.rng.choice(("2A", "2B")), f"{self.rng.randint(1, 366):03d}"
        elif r < 0.06:
            dept, commune = "99", f"{self.rng.randint(100, 990):03d}"
        else:
            dept, commune = f"{self.rng.randint(1, 95):02d}", f"{self.rng.randint(1, 900):03d}"
        dept = "01" if dept == "20" else dept
        body = f"{sex}{year % 100:02d}{month:02d}{dept}{commune}{self.rng.randint(1, 999):03d}"
        return make_nir(body)

    def nir_text(self) -> str:
        nir = self.nir()
        if self.rng.random() < 0.4:
            return nir
        return f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"

    def care_date(self) -> str:
        day, month, year = (
            self.rng.randint(1, 28),
            self.rng.randint(1, 12),
            self.rng.randint(2012, 2026),
        )
        return f"{day:02d}/{month:02d}/{year}"

    # texts
    def fill(self, template: str) -> Text:
        pieces: list[tuple[str, str | None]] = []
        for i, piece in enumerate(_SLOT.split(template)):
            if i % 2:  # a slot
                pieces.append(self._slots[piece]())
                continue
            at = 0
            for match in _ALLERGY_WORD.finditer(piece):
                pieces += [(piece[at : match.start()], None), (match.group(), "allergy")]
                at = match.end()
            pieces.append((piece[at:], None))
        return assemble(pieces)

    def pick(self, templates: tuple[str, ...]) -> Text:
        return self.fill(self.rng.choice(templates))


def assemble(pieces: Iterable[tuple[str, str | None]]) -> Text:
    """The text of ``pieces`` (value, planted kind or None), each planted one located."""
    parts: list[str] = []
    planted: list[Planted] = []
    at = 0
    for value, kind in pieces:
        if kind is not None:
            planted.append(Planted(kind, at, at + len(value)))
        parts.append(value)
        at += len(value)
    return Text("".join(parts), tuple(planted))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
