"""Generate a realistic demo hospital population, the same on every database engine.

Faker (``fr_FR``, seeded) fills small pools of names, streets, cities and jobs once; a single
``random.Random(seed)`` then draws every patient from those pools, so generation is fast and the
same seed and ``today`` always give the same database, row for row, on PostgreSQL and MariaDB.

The generator yields rows of plain Python values (int, str, date, time, datetime; the instants
aware, in UTC) per table, in the column order of ``tables.COLUMNS``; each engine loads them its
own way (``postgresql.py``: COPY in one transaction; ``mariadb.py``: ``executemany`` in chunks).
Patients are drawn in batches, in a background thread, which also turns them into what the
engine sends (COPY text, driver values) while the server ingests the previous batch.

Shape of the population (relative to ``today``): about 40 % of patients last came more than 20
years ago, 15 % between 3 and 20 years ago, the rest recently; a few never came at all. Deliberate
edge cases for the legal clock: children last seen around age 5 (kept to their 28th birthday),
deaths soon after and long after the last visit, patients seen only in consultation, patients whose
only recent stay was cancelled.
"""

from __future__ import annotations

import json
import time
import unicodedata
from bisect import bisect
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from itertools import accumulate
from random import Random
from typing import TypeVar

from retention.db import connection_lost
from retention.demo.schema import loader_for
from retention.demo.tables import TABLES, Batch
from retention.engines import Connection, errors, sql
from retention.errors import DatabaseError

BATCH_PATIENTS = 10_000
_T = TypeVar("_T")
_YEAR = 365.2425
_EPOCH = date(1985, 1, 1).toordinal()  # the hospital's oldest records
_INS_START = date(2021, 1, 1).toordinal()  # INS mandatory from then on

NIR_OID = "1.2.250.1.213.1.4.8"
NIA_OID = "1.2.250.1.213.1.4.9"


@dataclass(frozen=True)
class DemoStats:
    """Rows loaded per table, and how long generation and loading took."""

    medecins: int
    patients: int
    sejours: int
    plagesconsult: int
    consultations: int
    dossiers_medicaux: int
    prescriptions: int
    prescription_lignes: int
    allergies: int
    contacts_urgence: int
    fichiers: int
    user_log: int
    ins_patients: int
    seconds: float = field(default=0.0, compare=False)

    def counts(self) -> dict[str, int]:
        """Row count per table name."""
        return {name: n for name, n in asdict(self).items() if name in TABLES}


# ---------------------------------------------------------------------------------------------
# Identifiers


def nir_key(body: str) -> int:
    """The NIR key of a 13-character body: 97 - (N mod 97), Corsica 2A/2B read as 19/18."""
    number = int(body.replace("2A", "19").replace("2B", "18"))
    return 97 - number % 97


def make_nir(body: str) -> str:
    """A 15-character NIR: the body followed by its two-digit key."""
    return f"{body}{nir_key(body):02d}"


def luhn_digit(payload: str) -> str:
    """The Luhn check digit to append to ``payload``."""
    total = 0
    for i, char in enumerate(reversed(payload)):
        digit = int(char)
        if i % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def _clean(text: str) -> str:
    """A pool value without tab, newline or backslash (safe in COPY text as it is)."""
    return " ".join(text.replace("\\", " ").split())


# ---------------------------------------------------------------------------------------------
# Pools drawn once from Faker


_DEPARTMENTS = [f"{n:02d}" for n in range(1, 96) if n != 20]
_OVERSEAS = ["971", "972", "973", "974", "976"]
_COUNTRIES = ["350", "352", "351", "139", "127", "134", "109", "101", "132", "216"]
_HOME_DEPTS = ["35", "35", "35", "35", "35", "22", "56", "29", "44", "53", "75"]

_SPECIALITES = [
    "Médecine générale", "Cardiologie", "Chirurgie orthopédique", "Pédiatrie", "Gynécologie",
    "Anesthésie-réanimation", "Gastro-entérologie", "Pneumologie", "Neurologie", "Urologie",
    "Médecine interne", "Gériatrie", "Psychiatrie", "Dermatologie", "Ophtalmologie",
]  # fmt: skip
_LIENS = ["Époux", "Épouse", "Fille", "Fils", "Mère", "Père", "Sœur", "Frère", "Ami", "Voisin"]
_ALLERGENES = [
    "Pénicilline", "Amoxicilline", "Iode", "Latex", "Arachide", "Aspirine", "Codéine",
    "Sulfamides", "Pollen", "Acariens", "Fruits à coque", "Morphine", "AINS", "Œuf",
]  # fmt: skip
_REACTIONS = ["Urticaire", "Œdème de Quincke", "Choc anaphylactique", "Prurit", "Nausées",
              "Éruption cutanée", "Bronchospasme", None]  # fmt: skip
_ANTECEDENTS = [
    "HTA", "Diabète de type 2", "Asthme", "Appendicectomie", "Fracture du poignet", "BPCO",
    "Infarctus du myocarde", "Cholécystectomie", "Dépression", "Hypothyroïdie", "AVC ischémique",
    "Cancer du sein traité", "Tabagisme sevré", "Insuffisance rénale chronique",
]  # fmt: skip
_MEDICAMENTS = [
    "DOLIPRANE 1000 mg cp", "AMOXICILLINE 1 g cp", "LOVENOX 4000 UI/0,4 ml", "KARDEGIC 75 mg",
    "INEXIUM 20 mg", "LASILIX 40 mg", "TRAMADOL 50 mg gél", "LEVOTHYROX 75 µg",
    "METFORMINE 850 mg", "SPASFON 80 mg", "ATARAX 25 mg", "PARACETAMOL 1 g/100 ml IV",
    "CEFTRIAXONE 1 g inj", "MORPHINE 10 mg/ml", "RAMIPRIL 5 mg", "ATORVASTATINE 20 mg",
    "SERESTA 10 mg", "VENTOLINE 100 µg",
]  # fmt: skip
_POSOLOGIES = [
    "1 cp matin, midi et soir", "1 injection SC par jour", "2 cp si douleur, max 4 par jour",
    "1 cp le matin", "1 g toutes les 6 heures", "1 cp le soir au coucher", "2 bouffées si besoin",
]  # fmt: skip
_MOTIFS = [
    "Consultation de suivi", "Douleur thoracique", "Bilan préopératoire", "Contrôle post-op",
    "Renouvellement de traitement", "Céphalées", "Douleur abdominale", "Suivi de grossesse",
    "Vaccination", "Lombalgie", "Consultation d'anesthésie",
]  # fmt: skip
_SEJOUR_RQUES = [
    "Chute à domicile", "Sortie contre avis médical", "Transfert vers SSR", "Régime sans sel",
    "Patient désorienté la nuit", "Isolement contact BMR",
]  # fmt: skip
_PLAIN_RQUES = [
    "Patient malentendant", "Refuse les transfusions", "Allergie à l'iode, voir dossier",
    "Régime sans gluten", "Interprète nécessaire (arabe)",
]  # fmt: skip
_FILE_KINDS = [
    ("CR_hospitalisation", "pdf", "application/pdf"), ("ordonnance", "pdf", "application/pdf"),
    ("radio_thorax", "jpg", "image/jpeg"), ("courrier", "pdf", "application/pdf"),
    ("ecg", "png", "image/png"), ("consentement", "pdf", "application/pdf"),
]  # fmt: skip
_PATIENT_FIELDS = ["nom", "tel", "tel_portable", "email", "adresse", "cp", "ville"]


@dataclass(frozen=True)
class _Pools:
    last_names: list[str]
    male_names: list[str]
    female_names: list[str]
    streets: list[str]
    cities: list[str]
    jobs: list[str]
    domains: list[str]
    ascii_names: dict[str, str]


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(_clean(v) for v in values if _clean(v)))


def _pools(seed: int) -> _Pools:
    from faker import Faker

    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    last = _unique([fake.last_name() for _ in range(3000)])
    male = _unique([fake.first_name_male() for _ in range(2000)])
    female = _unique([fake.first_name_female() for _ in range(2000)])
    return _Pools(
        last_names=last,
        male_names=male,
        female_names=female,
        streets=_unique([fake.street_address() for _ in range(5000)]),
        cities=_unique([fake.city() for _ in range(2000)]),
        jobs=_unique([fake.job() for _ in range(600)]),
        domains=sorted({fake.free_email_domain() for _ in range(200)}),
        ascii_names={name: _ascii(name) for name in [*last, *male, *female]},
    )


# ---------------------------------------------------------------------------------------------
# Small random helpers


def _table(weights: Sequence[float]) -> list[float]:
    """Cumulative distribution for :func:`_pick_count`."""
    total = sum(weights)
    return [w / total for w in accumulate(weights)][:-1]


_STAYS = _table([30, 20, 14, 10, 8, 6, 4, 3, 3, 2])  # 1..10, mean 3.27
_CONSULTS = _table([27, 20, 18, 14, 10, 7, 4])  # 0..6, mean 1.97
_LINES = _table([30, 25, 20, 15, 10])  # 1..5, mean 2.5
_ALLERGIES = _table([75, 19, 5, 1])  # 0..3, mean 0.32
_CONTACTS = _table([55, 40, 5])  # 0..2, mean 0.5
_FILES = _table([35, 35, 20, 10])  # 0..3, mean 1.05


def _range(rng: Random, start: int, stop: int | None = None) -> int:
    """Like ``rng.randrange`` (without step), several times faster."""
    if stop is None:
        start, stop = 0, start
    return start + int(rng.random() * (stop - start))


def _randint(rng: Random, low: int, high: int) -> int:
    """Like ``rng.randint``: ``low <= n <= high``."""
    return low + int(rng.random() * (high - low + 1))


def _choice(rng: Random, values: Sequence[_T]) -> _T:
    return values[int(rng.random() * len(values))]


def _pick_count(rng: Random, cumulative: list[float], start: int = 0) -> int:
    return start + bisect(cumulative, rng.random())


def _day(ordinal: int) -> date:
    return date.fromordinal(ordinal)


def _stamp(ordinal: int, minutes: int) -> datetime:
    """Wall time on that day, `minutes` after midnight (always less than a day)."""
    return datetime.fromordinal(ordinal).replace(hour=minutes // 60, minute=minutes % 60)


def _clock(minutes: int) -> clock_time:
    return clock_time(minutes // 60, minutes % 60)


def _day_text(ordinal: int) -> str:
    """A day as ISO text, for text columns and JSON."""
    return date.fromordinal(ordinal).isoformat()


def _phone(rng: Random, mobile: bool) -> str:
    first = _choice(rng, "67") if mobile else _choice(rng, "123459")
    digits = f"{_range(rng, 10**8):08d}"
    pairs = [digits[0:2], digits[2:4], digits[4:6], digits[6:8]]
    style = rng.random()
    if style < 0.5:
        return f"0{first} {' '.join(pairs)}"
    if style < 0.65:
        return f"0{first}.{'.'.join(pairs)}"
    if style < 0.8:
        return f"+33 {first} {' '.join(pairs)}"
    return f"0{first}{''.join(pairs)}"


# ---------------------------------------------------------------------------------------------
# The generator


@dataclass
class _Rows:
    """The rows of one batch, per table (values in the order of ``tables.COLUMNS``)."""

    lines: Batch = field(default_factory=lambda: {t: [] for t in TABLES})

    def add(self, table: str, *values: object) -> None:
        self.lines[table].append(values)


@dataclass
class _Person:
    nom: str
    prenom: str
    sexe: str
    birth: int  # ordinal
    place: str  # INSEE code of the birthplace
    nir: str | None
    tel: str | None = None
    portable: str | None = None
    email: str | None = None


class _Generator:
    """Draws the population; holds the id counters so batches chain up."""

    def __init__(self, seed: int, today: date, patients: int) -> None:
        self.rng = Random(seed)  # noqa: S311  (reproducible fake data, not secrets)
        self.pools = _pools(seed)
        self.today = today.toordinal()
        self.ids = dict.fromkeys(TABLES, 0)
        self.n_medecins = max(20, patients // 400)
        self.plages: dict[tuple[int, int], tuple[int, int]] = {}

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    # -- reference data ----------------------------------------------------------------------

    def medecins(self) -> _Rows:
        rows = _Rows()
        rng, pools = self.rng, self.pools
        for _ in range(self.n_medecins):
            payload = "10" + "".join(_choice(rng, "0123456789") for _ in range(8))
            rows.add(
                "medecins",
                self.next_id("medecins"),
                _choice(rng, pools.last_names).upper(),
                _choice(rng, pools.male_names if rng.random() < 0.5 else pools.female_names),
                payload + luhn_digit(payload),
                f"{_choice(rng, _HOME_DEPTS)}1{_range(rng, 10**6):06d}"
                if rng.random() < 0.7
                else None,
                _choice(rng, _SPECIALITES),
                _phone(rng, mobile=False),
            )
        return rows

    # -- one patient -------------------------------------------------------------------------

    def _birth_place(self, birth: int) -> str:
        """The INSEE code of a birthplace, which is also the NIR's department + commune."""
        rng = self.rng
        r = rng.random()
        if r < 0.015:
            dept = "20" if date.fromordinal(birth).year < 1976 else _choice(rng, ("2A", "2B"))
            place = f"{dept}{_range(rng, 1, 370):03d}"
        elif r < 0.04:
            place = f"{_choice(rng, _OVERSEAS)}{_range(rng, 1, 35):02d}"
        elif r < 0.12:
            place = f"99{_choice(rng, _COUNTRIES)}"
        else:
            place = f"{_choice(rng, _DEPARTMENTS)}{_range(rng, 1, 700):03d}"
        return place

    def _nir(self, sexe: str, birth: int, place: str) -> str:
        born = date.fromordinal(birth)
        sex_digit = "1" if sexe == "m" else "2"
        order = _range(self.rng, 1, 1000)
        body = f"{sex_digit}{born.year % 100:02d}{born.month:02d}{place}{order:03d}"
        return make_nir(body)

    def _person(self, sexe: str, birth: int, nom: str | None = None) -> _Person:
        pools = self.pools
        names = pools.male_names if sexe == "m" else pools.female_names
        place = self._birth_place(birth)
        return _Person(
            nom=nom or _choice(self.rng, pools.last_names),
            prenom=_choice(self.rng, names),
            sexe=sexe,
            birth=birth,
            place=place,
            nir=self._nir(sexe, birth, place),
        )

    def _naissance(self, birth: int) -> str | None:
        r = self.rng.random()
        if r < 0.002:
            return None
        born = date.fromordinal(birth)
        if r < 0.007:  # impossible dates typed in by hand
            return _choice(
                self.rng,
                (
                    f"{born.year}-00-00",
                    f"{born.year}-13-{_range(self.rng, 32, 46)}",
                    f"{born.year}-02-{_choice(self.rng, (30, 31))}",
                    f"{born.year}-04-31",
                ),
            )
        return born.isoformat()

    def _last_visit(self) -> tuple[str, int]:
        """The patient's profile and the day of the last real (non-cancelled) visit."""
        rng, today = self.rng, self.today
        r = rng.random()
        twenty = today - int(20 * _YEAR) - 1
        three = today - int(3 * _YEAR)
        if r < 0.005:
            return "inactive", _randint(rng, _EPOCH, today)
        if r < 0.035:  # a child last seen around age 5, most of them still kept to age 28
            return "child", _randint(rng, max(_EPOCH, twenty - int(6 * _YEAR)), max(_EPOCH, twenty))
        if r < 0.405:
            return "stale", _randint(rng, _EPOCH, max(_EPOCH, twenty))
        if r < 0.555:
            return "middle", _randint(rng, twenty + 1, three)
        return "recent", _randint(rng, three + 1, today)

    def _age_days(self, profile: str, last: int) -> int:
        rng = self.rng
        if profile == "child":
            return int(rng.uniform(3, 7.5) * _YEAR)
        r = rng.random()
        if r < 0.15:
            years = rng.uniform(0, 18)
        elif r < 0.55:
            years = rng.uniform(18, 50)
        elif r < 0.85:
            years = rng.uniform(50, 75)
        else:
            years = rng.uniform(75, 99)
        return min(int(years * _YEAR), last - date(1900, 1, 1).toordinal())

    def _deces(self, profile: str, birth: int, last: int) -> int | None:
        rng, today = self.rng, self.today
        r = rng.random()
        if profile in ("stale", "middle") and r < 0.05:  # died within 10 years of the last visit
            death = last + _randint(rng, 180, int(9.5 * _YEAR))
        elif profile == "stale" and r < 0.10:  # died long after the last visit
            death = last + _randint(rng, int(10.5 * _YEAR), int(35 * _YEAR))
        elif profile == "recent" and r < 0.01:  # died during the last stay
            death = last
        else:
            return None
        if death > today or death - birth > int(104 * _YEAR):
            return None
        return death

    def batch(self, size: int) -> _Rows:
        """The rows of the next ``size`` patients."""
        rows = _Rows()
        for _ in range(size):
            self.patient(rows)
        return rows

    def patient(self, rows: _Rows) -> None:
        """One patient: identity, insured person, contacts, visits and what hangs off them."""
        rng, pools = self.rng, self.pools
        pid = self.next_id("patients")
        profile, last = self._last_visit()
        birth = last - self._age_days(profile, last)
        me = self._person("f" if rng.random() < 0.52 else "m", birth)
        nom_jf = None
        if me.sexe == "f" and last - birth > 25 * _YEAR and rng.random() < 0.5:
            nom_jf, me.nom = me.nom, _choice(rng, pools.last_names)  # married name in use
        if rng.random() < 0.02:
            me.nir = None
        self._contact(me)
        naissance = self._naissance(birth)
        assure = self._insured(me, last)
        first = max(birth, _EPOCH, last - _randint(rng, 0, int(15 * _YEAR)))
        deces = self._deces(profile, birth, last)
        rows.add(
            "patients",
            pid,
            me.nom.upper(),
            nom_jf.upper() if nom_jf else None,
            me.prenom,
            me.sexe,
            naissance,
            me.place,
            me.nir,
            assure.nom.upper(),
            assure.prenom,
            naissance if assure is me else _day_text(assure.birth),
            assure.nir,
            _choice(rng, pools.streets) if rng.random() < 0.97 else None,
            f"{_choice(rng, _HOME_DEPTS)}{_range(rng, 1000):03d}",
            _choice(rng, pools.cities),
            me.tel,
            me.portable,
            me.email,
            _choice(rng, pools.jobs) if rng.random() < 0.6 else None,
            _day(deces) if deces else None,
            self._patient_rques(me.nom),
            _randint(rng, 1, self.n_medecins) if rng.random() < 0.8 else None,
            _stamp(first, _range(rng, 480, 1080)).replace(tzinfo=UTC),
        )
        stays, consults = self._visits(
            rows, pid, profile=profile, first=first, last=last, deces=deces
        )
        self._medical(rows, pid, me, stays, consults)
        self._log(rows, pid, me, first)
        if last >= _INS_START:
            self._ins(rows, pid, me, first)

    def _insured(self, me: _Person, last: int) -> _Person:
        """The insured person: a parent for a child, sometimes a spouse, else the patient."""
        rng = self.rng
        if last - me.birth < 18 * _YEAR:
            return self._person(
                _choice(rng, "mf"), me.birth - _randint(rng, 8000, 15000), nom=me.nom
            )
        if rng.random() < 0.18:
            spouse_birth = me.birth + _randint(rng, -2500, 2500)
            return self._person("m" if me.sexe == "f" else "f", spouse_birth, nom=me.nom)
        return me

    def _contact(self, me: _Person) -> None:
        rng, pools = self.rng, self.pools
        me.tel = _phone(rng, mobile=False) if rng.random() < 0.6 else None
        me.portable = _phone(rng, mobile=True) if rng.random() < 0.75 else None
        if rng.random() < 0.45:
            number = _range(rng, 100) if rng.random() < 0.4 else ""
            me.email = (
                f"{pools.ascii_names[me.prenom]}.{pools.ascii_names[me.nom]}{number}"
                f"@{_choice(rng, pools.domains)}"
            )

    def _ins(self, rows: _Rows, pid: int, me: _Person, first: int) -> None:
        """The INS identity, qualified (since 2021) for most recent patients with a NIR."""
        rng = self.rng
        if me.nir is None or rng.random() >= 0.75:
            return
        nia = rng.random() < 0.05
        rows.add(
            "ins_patients",
            self.next_id("ins_patients"),
            pid,
            make_nir(f"{me.nir[0]}{_range(rng, 10**12):012d}") if nia else me.nir,
            NIA_OID if nia else NIR_OID,
            _day(_randint(rng, max(_INS_START, first), max(_INS_START, self.today))),
        )

    def _patient_rques(self, nom: str) -> str | None:
        rng, pools = self.rng, self.pools
        r = rng.random()
        if r >= 0.2:
            return None
        prenom = _choice(rng, pools.female_names if rng.random() < 0.5 else pools.male_names)
        if r < 0.06:
            lien = _choice(rng, _LIENS).lower()
            return f"Prévenir {lien} {prenom} {nom.upper()} au {_phone(rng, mobile=True)}"
        if r < 0.09:
            relative = f"{prenom} {_choice(rng, pools.last_names).upper()}"
            return f"{_choice(rng, _LIENS)} : {relative} {_phone(rng, mobile=True)}"
        if r < 0.11:
            return f"Sous tutelle, tuteur {prenom} {_choice(rng, pools.last_names).upper()}"
        if r < 0.13:
            return f"Ne pas appeler le domicile, joindre le {_phone(rng, mobile=True)}"
        return _choice(rng, _PLAIN_RQUES)

    # -- activity ----------------------------------------------------------------------------

    def _visits(
        self, rows: _Rows, pid: int, *, profile: str, first: int, last: int, deces: int | None
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Stays and consultations; returns (id, day) of the non-cancelled ones."""
        rng = self.rng
        if profile == "inactive":
            return [], []
        only_consults = rng.random() < 0.08
        n_stays = 0 if only_consults else _pick_count(rng, _STAYS, 1)
        n_consults = _pick_count(rng, _CONSULTS) + (1 if only_consults else 0)
        days = sorted(_randint(rng, first, last) for _ in range(n_stays + n_consults - 1))
        days.append(last)
        kinds = [True] * n_stays + [False] * n_consults  # True: a stay
        rng.shuffle(kinds)
        stays: list[tuple[int, int]] = []
        consults: list[tuple[int, int]] = []
        for i, (day, is_stay) in enumerate(zip(days, kinds, strict=True)):
            # the last visit is never cancelled, so it stays the last real visit
            cancelled = i < len(days) - 1 and rng.random() < 0.04
            if is_stay:
                sid = self._stay(rows, pid, day, cancelled, deces)
                if not cancelled:
                    stays.append((sid, day))
            else:
                cid = self._consult(rows, pid, day, cancelled)
                if not cancelled:
                    consults.append((cid, day))
        if profile in ("stale", "child", "middle") and rng.random() < 0.03:
            # a recent stay that was cancelled: it must not count as activity
            day = _randint(rng, self.today - 700, self.today)
            if deces is None or day <= deces:
                self._stay(rows, pid, day, True, None)
        return stays, consults

    def _stay(self, rows: _Rows, pid: int, day: int, cancelled: bool, deces: int | None) -> int:
        rng = self.rng
        sid = self.next_id("sejours")
        if rng.random() < 0.003:  # a stay deleted later: a gap in the ids, a trace in user_log
            self._deleted_stay(rows, pid, sid, day)
            sid = self.next_id("sejours")
        kind = rng.choices(("comp", "ambu", "urg", "seances"), (40, 30, 20, 10))[0]
        start = _range(rng, 0, 1440) if kind == "urg" else _range(rng, 420, 840)
        length = _randint(rng, 1440, 15 * 1440) if kind == "comp" else _randint(rng, 60, 600)
        end_day, end_min = divmod(day * 1440 + start + length, 1440)
        sortie: datetime | None = _stamp(end_day, end_min)
        if end_day > self.today or (deces is not None and end_day > deces):
            sortie = None  # still in hospital, or died during the stay
        rows.add(
            "sejours",
            sid,
            pid,
            _randint(rng, 1, self.n_medecins),
            _stamp(day, start),
            sortie,
            kind,
            "1" if cancelled else "0",
            _choice(rng, _SEJOUR_RQUES) if rng.random() < 0.1 else None,
        )
        return sid

    def _deleted_stay(self, rows: _Rows, pid: int, sid: int, day: int) -> None:
        rng = self.rng
        extra = {"patient_id": pid, "entree": str(_stamp(day, 600)), "type": "comp"}
        rows.add(
            "user_log",
            self.next_id("user_log"),
            _randint(rng, 1, 200),
            "CSejour",
            sid,
            "delete",
            _stamp(self._log_day(), _range(rng, 480, 1080)),
            None,
            json.dumps(extra, ensure_ascii=False),
        )

    def _consult(self, rows: _Rows, pid: int, day: int, cancelled: bool) -> int:
        rng = self.rng
        chir = _randint(rng, 1, max(1, self.n_medecins * 2 // 5))
        plage = self.plages.get((chir, day))
        if plage is None:
            debut = _choice(rng, (480, 510, 810, 840))
            plage = (self.next_id("plagesconsult"), debut)
            self.plages[(chir, day)] = plage
            rows.add(
                "plagesconsult",
                plage[0],
                chir,
                _day(day),
                _clock(debut),
                _clock(debut + 240),
            )
        cid = self.next_id("consultations")
        heure = plage[1] + 15 * _range(rng, 16)
        rows.add(
            "consultations",
            cid,
            pid,
            plage[0],
            _clock(heure),
            _choice(rng, _MOTIFS),
            "Patient en retard" if rng.random() < 0.03 else None,
            "1" if cancelled else "0",
        )
        return cid

    def _medical(
        self,
        rows: _Rows,
        pid: int,
        me: _Person,
        stays: list[tuple[int, int]],
        consults: list[tuple[int, int]],
    ) -> None:
        rng = self.rng
        rows.add(
            "dossiers_medicaux",
            self.next_id("dossiers_medicaux"),
            "CPatient",
            pid,
            ", ".join(rng.sample(_ANTECEDENTS, _range(rng, 4))) or None,
            ", ".join(rng.sample(_MEDICAMENTS, _range(rng, 3))) or None,
        )
        for sid, day in stays:
            if rng.random() < 0.7:
                self._prescription(rows, "CSejour", sid, day)
        for cid, day in consults:
            if rng.random() < 0.2:
                self._prescription(rows, "CConsultation", cid, day)
        for _ in range(_pick_count(rng, _ALLERGIES)):
            rows.add(
                "allergies",
                self.next_id("allergies"),
                pid,
                _choice(rng, _ALLERGENES),
                _choice(rng, _REACTIONS),
                "Signalée par la famille" if rng.random() < 0.1 else None,
            )
        for _ in range(_pick_count(rng, _CONTACTS)):
            lien = _choice(rng, _LIENS)
            same_name = lien not in ("Ami", "Voisin") and rng.random() < 0.7
            rows.add(
                "contacts_urgence",
                self.next_id("contacts_urgence"),
                pid,
                (me.nom if same_name else _choice(rng, self.pools.last_names)).upper(),
                _choice(rng, self.pools.female_names + self.pools.male_names),
                lien,
                _phone(rng, mobile=rng.random() < 0.8),
                "Personne de confiance" if rng.random() < 0.2 else None,
            )
        self._files(rows, pid, me, stays, consults)

    def _prescription(self, rows: _Rows, object_class: str, object_id: int, day: int) -> None:
        rng = self.rng
        prid = self.next_id("prescriptions")
        rows.add(
            "prescriptions",
            prid,
            object_class,
            object_id,
            _randint(rng, 1, self.n_medecins),
            _stamp(day, _range(rng, 480, 1200)),
        )
        for _ in range(_pick_count(rng, _LINES, 1)):
            rows.add(
                "prescription_lignes",
                self.next_id("prescription_lignes"),
                prid,
                _choice(rng, _MEDICAMENTS),
                _choice(rng, _POSOLOGIES),
                _day(day),
                _day(day + _randint(rng, 1, 30)),
            )

    def _files(
        self,
        rows: _Rows,
        pid: int,
        me: _Person,
        stays: list[tuple[int, int]],
        consults: list[tuple[int, int]],
    ) -> None:
        rng = self.rng
        for _ in range(_pick_count(rng, _FILES)):
            r = rng.random()
            if r < 0.4 and stays:
                object_class, (object_id, day) = "CSejour", _choice(rng, stays)
            elif r < 0.6 and consults:
                object_class, (object_id, day) = "CConsultation", _choice(rng, consults)
            else:
                object_class, object_id = "CPatient", pid
                day = _randint(rng, _EPOCH, self.today)
            stem, ext, mime = _choice(rng, _FILE_KINDS)
            suffix = f"_{me.nom.upper()}" if rng.random() < 0.3 else f"_{object_id}"
            rows.add(
                "fichiers",
                self.next_id("fichiers"),
                object_class,
                object_id,
                f"{stem}{suffix}.{ext}",
                mime,
                _randint(rng, 20_000, 3_000_000),
                _stamp(day, _range(rng, 480, 1200)),
            )

    def _log_day(self) -> int:
        return _randint(self.rng, self.today - int(3 * _YEAR), self.today)

    def _log(self, rows: _Rows, pid: int, me: _Person, first: int) -> None:
        rng, pools = self.rng, self.pools
        for _ in range(_randint(rng, 1, 3)):
            day = self._log_day()
            r = rng.random()
            if r < 0.1 and first >= self.today - int(3 * _YEAR):
                kind, fields, extra = "create", None, None
                day = first
            elif r < 0.15:
                kind, fields = "merge", "nom prenom naissance"
                extra = {
                    "merged_patient_id": _randint(rng, 1, max(1, pid)),
                    "nom": me.nom.upper(),
                    "prenom": me.prenom,
                    "naissance": _day_text(me.birth),
                }
            else:
                kind = "store"
                names = rng.sample(_PATIENT_FIELDS, _randint(rng, 1, 3))
                fields = " ".join(names)
                old = {
                    "nom": _choice(rng, pools.last_names).upper(),
                    "tel": me.tel or _phone(rng, mobile=False),
                    "tel_portable": me.portable or _phone(rng, mobile=True),
                    "email": me.email
                    or f"{pools.ascii_names[me.prenom]}@{_choice(rng, pools.domains)}",
                    "adresse": _choice(rng, pools.streets),
                    "cp": f"{_choice(rng, _HOME_DEPTS)}{_range(rng, 1000):03d}",
                    "ville": _choice(rng, pools.cities),
                }
                extra = {name: old[name] for name in names}
            rows.add(
                "user_log",
                self.next_id("user_log"),
                _randint(rng, 1, 200),
                "CPatient",
                pid,
                kind,
                _stamp(day, _range(rng, 480, 1200)),
                fields,
                json.dumps(extra, ensure_ascii=False) if extra is not None else None,
            )


# ---------------------------------------------------------------------------------------------
# Loading


def _check_empty(conn: Connection) -> None:
    try:
        for table in TABLES:
            query = sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(table))
            if conn.execute(query).fetchone() is not None:
                raise DatabaseError(
                    f"table {table} already holds rows; demo data goes into an empty schema",
                    hint="create a new database, then create_schema() and generate()",
                )
    except errors.UndefinedTable as exc:
        raise DatabaseError(
            "the demo tables do not exist", hint="run create_schema() first"
        ) from exc


def generate(
    conn: Connection, *, patients: int, seed: int = 42, today: date | None = None
) -> DemoStats:
    """Fill the (empty) demo schema with ``patients`` patients and everything that hangs off them.

    Deterministic for a given ``seed`` and ``today`` (default: the current date), and the same
    rows on every engine. PostgreSQL loads in one transaction; MariaDB, whose DDL is not
    transactional, in one transaction per batch (a failed load leaves a database to drop).
    """
    if patients < 0:
        raise ValueError("patients must be >= 0")
    started = time.monotonic()
    gen = _Generator(seed, today or date.today(), patients)
    loader = loader_for(conn)
    counts = dict.fromkeys(TABLES, 0)
    sizes = [min(BATCH_PATIENTS, patients - start) for start in range(0, patients, BATCH_PATIENTS)]

    def drawn(rows: _Rows) -> tuple[object, dict[str, int]]:
        """What the engine sends for these rows, and how many per table."""
        return loader.prepare(rows.lines), {t: len(v) for t, v in rows.lines.items()}

    def draw(size: int) -> tuple[object, dict[str, int]]:
        return drawn(gen.batch(size))

    def write(batch: tuple[object, dict[str, int]]) -> None:
        loader.write(conn, batch[0])
        for table, count in batch[1].items():
            counts[table] += count

    try:
        _check_empty(conn)
        with loader.loading(conn, gen.ids):
            write(drawn(gen.medecins()))
            # The next batch is drawn in a thread while the server ingests the current one.
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(draw, sizes[0]) if sizes else None
                for size in sizes[1:]:
                    assert pending is not None
                    current = pending.result()
                    pending = pool.submit(draw, size)
                    write(current)
                if pending:
                    write(pending.result())
    except errors.OperationalError as exc:
        if connection_lost(conn, exc):
            raise DatabaseError(f"lost the database while loading demo data: {exc}") from exc
        raise DatabaseError(f"the database refused the demo data: {exc}") from exc
    return DemoStats(**counts, seconds=time.monotonic() - started)
