"""Free texts of other styles than the evaluation database's, each value planted and labelled.

Five styles, unlike each other and unlike :mod:`eval.texts`:

- ``shift``: nurses' shift notes, telegraphic (``Nuit calme. TA 12/7. Fille (Claire) prévenue
  06/12/34/56/78.``);
- ``letter``: letters to the general practitioner (``Cher confrère, ... Madame Jeanne MARTIN,
  née le 3 mars 1948, demeurant 12 rue des Lilas, 35000 Rennes ...``);
- ``discharge``: discharge summaries with a header block (``Patient : DUPONT Jean``, ``DDN :``,
  ``Adresse :``) and a treatment list;
- ``secretary``: secretaries' notes typed in lower case (``mme dupont refuse le rdv``);
- ``changelog``: JSON change logs whose values sit under generic keys and whose field is named
  by a sibling key (``{"field": "nom", "old": "...", "new": "..."}``).

Personal kinds (:data:`PERSONAL`) must be removed, medical kinds (:data:`MEDICAL`: drugs with
their dose, eponymous diseases, other diagnoses, allergens, dates of care) kept. Values stay in
memory; nothing here is printed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from eval.texts import ALLERGENS, Names, Planted, Text, ascii_fold, assemble

PERSONAL = ("patient_name", "relative_name", "doctor_name", "phone", "email", "nir",
            "address", "birth_date")  # fmt: skip
MEDICAL = ("drug", "eponym", "diagnosis", "allergy", "care_date")
STYLES = ("shift", "letter", "discharge", "secretary", "changelog")

DRUGS = (
    "Pentasa 4000", "Pentasa 1 g", "Imurel 50 mg", "Humira 40 mg", "Lovenox 4000 UI",
    "Kardégic 75", "Eliquis 2,5 mg", "Lasilix 40 mg", "Doliprane 1000", "Tramadol 50",
    "Mopral 20", "Forlax 10 g", "Bisoce 2,5", "Dafalgan 500", "Cortancyl 20 mg",
    "Solumédrol 120 mg", "Actiskenan 5", "Skenan LP 30", "Levothyrox 75", "Previscan 20",
    "Stilnox 10", "Atarax 25", "Rivotril 2", "Ceftriaxone 1 g", "Tazocilline 4 g",
    "Amoxicilline 1 g", "Metformine 850", "Novorapid 6 UI", "Lantus 18 UI", "Spasfon 80",
)  # fmt: skip
EPONYMS = (
    "maladie de Crohn", "maladie de Parkinson", "maladie d'Alzheimer", "maladie de Horton",
    "maladie de Basedow", "syndrome de Guillain-Barré", "maladie de Hodgkin",
    "syndrome de Sjögren", "maladie de Paget", "thyroïdite de Hashimoto", "maladie de Charcot",
    "syndrome de Cushing", "maladie de Wilson", "maladie de Lyme", "maladie de Verneuil",
    "syndrome de Korsakoff", "maladie de Waldenström", "syndrome de Raynaud",
)  # fmt: skip
DIAGNOSES = (
    "rectocolite hémorragique", "pancréatite aiguë", "érysipèle", "occlusion du grêle",
    "décompensation cardiaque", "hyponatrémie", "rétention aiguë d'urines", "escarre sacrée",
    "sepsis urinaire", "pneumopathie", "confusion", "syndrome de glissement",
)  # fmt: skip
CITIES = (
    ("35000", "Rennes"), ("56100", "Lorient"), ("29200", "Brest"), ("22000", "Saint-Brieuc"),
    ("44000", "Nantes"), ("72000", "Le Mans"), ("62200", "Boulogne-sur-Mer"),
    ("13100", "Aix-en-Provence"), ("94240", "L'Haÿ-les-Roses"), ("69003", "Lyon"),
    ("31000", "Toulouse"), ("59000", "Lille"), ("33000", "Bordeaux"), ("67000", "Strasbourg"),
    ("35400", "Saint-Malo"), ("56000", "Vannes"), ("29000", "Quimper"), ("49000", "Angers"),
    ("37000", "Tours"), ("76600", "Le Havre"), ("50100", "Cherbourg-en-Cotentin"),
    ("14000", "Caen"), ("87000", "Limoges"), ("63000", "Clermont-Ferrand"),
)  # fmt: skip
STREETS = (
    "rue", "avenue", "boulevard", "allée", "impasse", "chemin", "place", "route", "quai",
    "square", "résidence",
)  # fmt: skip
STREET_NAMES = (
    "des Lilas", "de la République", "du Général de Gaulle", "Victor Hugo", "Jean Jaurès",
    "de la Paix", "du 8 Mai 1945", "des Tilleuls", "Pasteur", "de Brest", "du Moulin",
    "des Écoles", "de la Gare", "Saint-Michel", "du Maréchal Foch", "Anatole France",
    "des Mimosas", "de Verdun", "Émile Zola", "des Peupliers", "du Stade", "de l'Église",
)  # fmt: skip
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")  # fmt: skip
RELATIVES = ("fille", "fils", "épouse", "mari", "sœur", "frère", "neveu", "nièce", "belle-fille",
             "gendre", "compagne", "voisine")  # fmt: skip

# {P}: the patient's name, {R}: a relative's, {D}: a doctor's, {REL}: the relative's link
SHIFT = (
    "Nuit calme. Pat. dort. TA 13/8, FC 72.",
    "Agitée vers 3h, {DRUG} donné.",
    "{REL_CAP} ({R}) appelé(e) à 22h, rappeler au {PHONE}.",
    "Pansement escarre fait. EVA 3/10.",
    "{P} refuse le repas. Glycémie 1,45 g/l, {DRUG} fait.",
    "Visite de {R} ({REL}) 15h-17h.",
    "Chute ce matin sans gravité, Dr {D} prévenu.",
    "ATCD {EPONYM}. Sous {DRUG}.",
    "Diurèse OK. Transit +. Pas de {DIAG}.",
    "Allergie {ALLERGEN} notée sur le bracelet.",
    "Sortie prévue le {DATE}, {REL} vient chercher pat. Tél {PHONE}.",
    "Bilan sanguin fait. {DRUG} suspendu (avis Dr {D}).",
    "Pat. confus(e), demande {R}. {REL_CAP} joignable {PHONE}.",
    "Transmis à l'équipe de jour : {EPONYM} connue, surveillance {DIAG}.",
)
LETTER = (
    "Cher confrère,",
    "Je vous remercie de m'avoir adressé {P}, né(e) le {BIRTH}, pour {EPONYM}.",
    "Votre patient(e) {P}, demeurant {ADDRESS}, a été hospitalisé(e) du {DATE} au {DATE}.",
    "Sur le plan thérapeutique, nous avons introduit {DRUG} et poursuivi {DRUG}.",
    "L'évolution de la {EPONYM} est favorable sous {DRUG}.",
    "Je reste joignable au {PHONE} ou par courriel ({DOC_EMAIL}).",
    "Sa {REL}, {R}, souhaite être tenue informée ({PHONE}).",
    "Pas d'allergie connue en dehors de {ALLERGEN}.",
    "Un contrôle est prévu le {DATE} avec le Dr {D}.",
    "Bien confraternellement,",
    "Dr {D}",
    "Copie : {P}, {ADDRESS}.",
)
DISCHARGE = (
    "COMPTE RENDU D'HOSPITALISATION",
    "Patient : {P_HEADER}",
    "DDN : {BIRTH}",
    "Né(e) le {BIRTH}",
    "Adresse : {ADDRESS}",
    "NIR : {NIR}",
    "Médecin traitant : Dr {D}",
    "Personne à prévenir : {R} ({REL}) {PHONE}",
    "Motif : {DIAG} sur {EPONYM}.",
    "Antécédents : {EPONYM}, {DIAG}. Allergie : {ALLERGEN}.",
    "Traitement de sortie : {DRUG} matin, {DRUG} soir, {DRUG} si douleur.",
    "Entrée le {DATE}, sortie le {DATE}.",
    "Contact famille : {EMAIL}.",
)
SECRETARY = (
    "{P_LOWER} refuse le rdv du {DATE}, rappeler au {PHONE}",
    "rdv annulé par {P_LOWER}, reprogrammer",
    "la {REL} de {P_LOWER} ({R_LOWER}) appellera demain",
    "courrier renvoyé, nouvelle adresse : {ADDRESS_LOWER}",
    "{P_LOWER} demande un transport, tel {PHONE}",
    "résultats envoyés à {EMAIL} à la demande de {R_LOWER}",
    "dossier {P_LOWER} : ordonnance {DRUG} à refaire",
    "message de {R_LOWER} ({REL}) pour {P_LOWER}",
    "prévoir bilan {EPONYM}, à jeun",
)

_SLOT = re.compile(r"\{(\w+)\}")
Slot = Callable[[], list[tuple[str, str | None]]]
"""A slot's pieces: text and kind (None: not planted, such as a civility before a name)."""


@dataclass(frozen=True)
class ChangeLog:
    """A JSON change log and the personal or medical values planted in it."""

    text: str
    planted: tuple[tuple[str, str], ...]


class StyleFactory:
    """Writes texts of :data:`STYLES`, recording where each value went."""

    def __init__(self, rng: Random, names: Names) -> None:
        self.rng = rng
        self.names = names
        self.slots: dict[str, Slot] = {
            "P": lambda: self.named(self.person(), "patient_name"),
            "P_HEADER": lambda: [(self.header_name(), "patient_name")],
            "P_LOWER": lambda: self.named(self.lower_person(), "patient_name"),
            "R": lambda: self.named(self.relative(), "relative_name"),
            "R_LOWER": lambda: self.named(self.lower_relative(), "relative_name"),
            "D": lambda: [(self.doctor(), "doctor_name")],
            "REL": lambda: [(rng.choice(RELATIVES), None)],
            "REL_CAP": lambda: [(rng.choice(RELATIVES).capitalize(), None)],
            "PHONE": lambda: [(self.phone(), "phone")],
            "EMAIL": lambda: [(self.email(), "email")],
            "DOC_EMAIL": lambda: [(self.email(), "email")],
            "NIR": lambda: [(self.nir(), "nir")],
            "ADDRESS": lambda: [(self.address(), "address")],
            "ADDRESS_LOWER": lambda: [(self.address().lower(), "address")],
            "BIRTH": lambda: [(self.birth(), "birth_date")],
            "DATE": lambda: [(self.care_date(), "care_date")],
            "DRUG": lambda: [(rng.choice(DRUGS), "drug")],
            "EPONYM": lambda: [(rng.choice(EPONYMS), "eponym")],
            "DIAG": lambda: [(rng.choice(DIAGNOSES), "diagnosis")],
            "ALLERGEN": lambda: [(rng.choice(ALLERGENS), "allergy")],
        }

    def named(self, name: str, kind: str) -> list[tuple[str, str | None]]:
        """A name's pieces: its civility (not personal) and the name itself."""
        civility, space, rest = name.partition(" ")
        if fold_civility(civility) and rest:
            return [(civility + space, None), (rest, kind)]
        return [(name, kind)]

    # values
    def first(self) -> str:
        pool = self.names.female if self.rng.random() < 0.5 else self.names.male
        return self.rng.choice(pool)

    def last(self) -> str:
        return self.rng.choice(self.names.last)

    def person(self) -> str:
        first, last = self.first(), self.last()
        civility = self.rng.choice(("Madame", "Monsieur", "Mme", "M."))
        return self.rng.choice(
            (f"{civility} {first} {last.upper()}", f"{civility} {last.upper()}",
             f"{civility} {last}", f"{first} {last}", f"{last.upper()} {first}")
        )  # fmt: skip

    def header_name(self) -> str:
        first, last = self.first(), self.last()
        return self.rng.choice((f"{last.upper()} {first}", f"{last.upper()} {first.upper()}",
                                f"{first} {last.upper()}"))  # fmt: skip

    def lower_person(self) -> str:
        first, last = self.first().lower(), self.last().lower()
        return self.rng.choice((f"mme {last}", f"m. {last}", f"mr {last}", f"{first} {last}",
                                f"madame {last}", f"monsieur {first} {last}"))  # fmt: skip

    def relative(self) -> str:
        first, last = self.first(), self.last()
        return self.rng.choice((first, f"{first} {last.upper()}", f"{first} {last}",
                                f"Mme {last.upper()}", f"M. {last}"))  # fmt: skip

    def lower_relative(self) -> str:
        first, last = self.first().lower(), self.last().lower()
        return self.rng.choice((f"{first} {last}", f"mme {last}", f"m. {first} {last}"))

    def doctor(self) -> str:
        first, last = self.first(), self.last()
        return self.rng.choice((last, last.upper(), f"{first[0]}. {last}", f"{first} {last}"))

    def phone(self) -> str:
        pairs = [f"{self.rng.randrange(100):02d}" for _ in range(4)]
        head = f"0{self.rng.choice('1234567')}"
        sep = self.rng.choice(("/", "/", " ", ".", "", "-"))
        if self.rng.random() < 0.1:
            return f"+33 {head[1]} {' '.join(pairs)}"
        return sep.join([head, *pairs])

    def email(self) -> str:
        first, last = ascii_fold(self.first()), ascii_fold(self.last())
        domain = self.rng.choice(("orange.fr", "free.fr", "gmail.com", "chu-rennes.fr", "sfr.fr"))
        return f"{self.rng.choice((f'{first}.{last}', f'{first[0]}{last}', last))}@{domain}"

    def nir(self) -> str:
        from retention.demo.generate import make_nir

        body = (
            f"{self.rng.choice('12')}{self.rng.randint(25, 99):02d}{self.rng.randint(1, 12):02d}"
            f"{self.rng.randint(1, 95):02d}{self.rng.randint(1, 900):03d}"
            f"{self.rng.randint(1, 999):03d}"
        )
        nir = make_nir(body.replace("20", "21", 1) if body[5:7] == "20" else body)
        if self.rng.random() < 0.5:
            return nir
        return f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"

    def address(self) -> str:
        rng = self.rng
        number = f"{rng.randint(1, 140)}{rng.choice(('', '', '', ' bis', ' ter'))}"
        street = f"{rng.choice(STREETS)} {rng.choice(STREET_NAMES)}"
        postcode, city = rng.choice(CITIES)
        city = city.upper() if rng.random() < 0.4 else city
        comma = rng.choice((", ", " ", " - "))
        return f"{number}{rng.choice(('', ','))} {street}{comma}{postcode} {city}"

    def birth(self) -> str:
        day, month, year = (
            self.rng.randint(1, 28),
            self.rng.randint(1, 12),
            self.rng.randint(1925, 2004),
        )
        return self.rng.choice(
            (f"{day:02d}/{month:02d}/{year}", f"{day:02d}.{month:02d}.{year}",
             f"{day} {MONTHS[month - 1]} {year}", f"{year}-{month:02d}-{day:02d}",
             f"{day:02d}/{month:02d}/{year % 100:02d}")
        )  # fmt: skip

    def care_date(self) -> str:
        day, month = self.rng.randint(1, 28), self.rng.randint(1, 12)
        return f"{day:02d}/{month:02d}/{self.rng.randint(2015, 2026)}"

    # texts
    def fill(self, template: str) -> Text:
        pieces: list[tuple[str, str | None]] = []
        for i, piece in enumerate(_SLOT.split(template)):
            pieces += self.slots[piece]() if i % 2 else [(piece, None)]
        return assemble(pieces)

    def compose(self, style: str) -> Text:
        """A text of ``style``: several of its sentences, in the style's order or not."""
        templates = {"shift": SHIFT, "letter": LETTER, "discharge": DISCHARGE,
                     "secretary": SECRETARY}[style]  # fmt: skip
        count = {"shift": 4, "letter": 6, "discharge": 7, "secretary": 0}[style]
        chosen = self.rng.sample(templates, min(count + self.rng.randint(0, 2), len(templates)))
        if style in ("letter", "discharge"):
            chosen.sort(key=templates.index)
        separator = {"shift": " ", "letter": "\n", "discharge": "\n", "secretary": "; "}[style]
        return join([self.fill(t) for t in chosen], separator)

    def change_log(self) -> ChangeLog:
        """A change log with generic keys: the field is named by a sibling key."""
        rng = self.rng
        field_key, old_key, new_key = rng.choice(
            (("field", "old", "new"), ("champ", "ancienne_valeur", "nouvelle_valeur"),
             ("attribute", "from", "to"), ("column", "before", "after"),
             ("nom_champ", "avant", "apres"), ("key", "old_value", "new_value"))
        )  # fmt: skip
        fields = rng.sample(_LOGGED_FIELDS, rng.randint(1, 3))
        changes, planted = [], []
        for name, kind, make in fields:
            old, new = make(self), make(self)
            changes.append({field_key: name, old_key: old, new_key: new})
            planted += [(kind, old), (kind, new)]
        if rng.random() < 0.3:  # a medical field changed too: kept
            old, new = rng.choice(DRUGS), rng.choice(DRUGS)
            changes.append({field_key: "traitement", old_key: old, new_key: new})
            planted += [("drug", old), ("drug", new)]
        document: object = changes if rng.random() < 0.4 else {
            "table": "patient", "user": rng.randint(1, 300), "changes": changes}  # fmt: skip
        if len(changes) == 1 and rng.random() < 0.5:
            document = changes[0]
        return ChangeLog(json.dumps(document, ensure_ascii=False), tuple(planted))


_LOGGED_FIELDS: tuple[tuple[str, str, Callable[[StyleFactory], str]], ...] = (
    ("nom", "patient_name", lambda f: f.last().upper()),
    ("nom_naissance", "patient_name", lambda f: f.last()),
    ("prenom", "patient_name", lambda f: f.first()),
    ("date_naissance", "birth_date", lambda f: f.birth()),
    ("dt_naiss", "birth_date", lambda f: f.birth()),
    ("telephone", "phone", lambda f: f.phone()),
    ("tel_portable", "phone", lambda f: f.phone()),
    ("email", "email", lambda f: f.email()),
    ("adresse", "address", lambda f: f.address()),
)


def fold_civility(word: str) -> bool:
    return word.lower().rstrip(".") in ("m", "mme", "mr", "madame", "monsieur", "mlle")


def join(texts: list[Text], separator: str) -> Text:
    """Texts joined, their planted values moved to their new positions."""
    out, planted, at = [], [], 0
    for n, text in enumerate(texts):
        if n:
            out.append(separator)
            at += len(separator)
        out.append(text.text)
        planted += [Planted(p.kind, p.start + at, p.end + at) for p in text.planted]
        at += len(text.text)
    return Text("".join(out), tuple(planted))


@dataclass(frozen=True)
class Corpus:
    """Texts per style; change logs with their planted values."""

    texts: dict[str, list[Text]]
    logs: list[ChangeLog]

    def all_texts(self) -> list[str]:
        return [t.text for texts in self.texts.values() for t in texts] + [
            log.text for log in self.logs
        ]


def corpus(per_style: int, seed: int, names: Names) -> Corpus:
    """``per_style`` texts of each style (names drawn from ``names``)."""
    factory = StyleFactory(Random(seed), names)  # noqa: S311  (reproducible texts)
    texts = {s: [factory.compose(s) for _ in range(per_style)] for s in STYLES if s != "changelog"}
    return Corpus(texts, [factory.change_log() for _ in range(per_style)])
