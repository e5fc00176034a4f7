"""A labelled French hospital database, different from the demo's, for the evaluation.

Another software's schema (``dpi``: *dossier patient informatisé*): abbreviated French column
names (``dt_naiss``, ``cod_post``, ``tel_mob``, ``adr_mail``), quoted mixed-case identifiers
(``"NomUsuel"``), names in mixed case (``DUPONT``, ``Dupont``, ``dupont``), NIRs with and without
spaces, birth dates as ``date`` and as ``dd/mm/yyyy`` text, arrays of diagnosis codes, a JSON
document column, a JSONB change log of old and new values keyed by column names, identifiers
that are *not* personal (drug codes, invoice numbers, FINESS, lot numbers), organisations'
phones and addresses, and a few English tables (laboratory, staff directory, sessions).

:data:`TRUTH` says, for every column, whether it is personal and its entity (the families of
:data:`retention.discovery.model.FAMILIES` are compared). Free-text columns come with the
position of every planted name, phone, e-mail, NIR and medical term (:mod:`eval.texts`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any

import psycopg

from eval.labelled import LabelledSchema, copy_table
from eval.texts import (
    APPOINTMENT_NOTES,
    DIAGNOSES,
    DRUGS,
    LAB_COMMENTS,
    LIENS,
    PATIENT_NOTES,
    STAY_NOTES,
    Names,
    Text,
    TextFactory,
    ascii_fold,
)
from retention.demo.generate import luhn_digit

TODAY = date(2026, 11, 28)
"""The evaluation's fixed "today" (dates of the generated data are relative to it)."""

SCHEMA_DDL = """
CREATE SCHEMA dpi;

CREATE TABLE dpi.unite_fonct (
    code_uf varchar(4) PRIMARY KEY,
    lib_uf text NOT NULL,
    tel_secr varchar(20),
    batiment text,
    etage smallint
);

CREATE TABLE dpi.etablissement (
    finess char(9) PRIMARY KEY,
    raison_sociale text NOT NULL,
    adresse text,
    cp varchar(5),
    ville text,
    tel_standard varchar(20)
);

CREATE TABLE dpi.praticien (
    id_prat serial PRIMARY KEY,
    nom_prat text NOT NULL,
    prenom_prat text,
    num_rpps char(11),
    num_adeli char(9),
    specialite text,
    tel_pro varchar(20),
    mail_pro text,
    actif boolean NOT NULL DEFAULT true
);

CREATE TABLE dpi.patient_ident (
    ipp bigint PRIMARY KEY,
    "NomUsuel" text NOT NULL,
    "NomNaissance" text,
    "Prenom1" text NOT NULL,
    "AutresPrenoms" text,
    civilite varchar(4),
    sexe char(1),
    dt_naiss date,
    cd_com_naiss varchar(5),
    nir varchar(15),
    adr_ligne1 text,
    adr_ligne2 text,
    cod_post varchar(5),
    commune text,
    tel_fixe varchar(20),
    tel_mob varchar(20),
    adr_mail text,
    situation_fam varchar(12),
    nb_enfants smallint,
    medecin_trt_id int REFERENCES dpi.praticien,
    dt_creation timestamptz NOT NULL,
    dt_maj timestamp,
    actif boolean NOT NULL DEFAULT true,
    deces_dt date,
    obs text
);

CREATE TABLE dpi.sejour_hospit (
    num_sej bigint PRIMARY KEY,
    ipp bigint NOT NULL REFERENCES dpi.patient_ident,
    dt_ent timestamp NOT NULL,
    dt_sort timestamp,
    uf_ent varchar(4) REFERENCES dpi.unite_fonct,
    mode_ent varchar(2),
    dp_cim10 varchar(6),
    das_cim10 text[],
    ghm varchar(6),
    annul char(1) NOT NULL DEFAULT 'N',
    cr_sortie text
);
CREATE INDEX ON dpi.sejour_hospit (ipp);

CREATE TABLE dpi.prescription_med (
    id_presc bigserial PRIMARY KEY,
    num_sej bigint NOT NULL REFERENCES dpi.sejour_hospit,
    id_prat int REFERENCES dpi.praticien,
    specialite_pharma text NOT NULL,
    code_cip varchar(13),
    posologie text,
    voie_admin varchar(10),
    dt_debut date,
    dt_fin date,
    num_lot varchar(12)
);

CREATE TABLE dpi.allergie_atcd (
    id serial PRIMARY KEY,
    ipp bigint NOT NULL REFERENCES dpi.patient_ident,
    libelle text NOT NULL,
    type_atcd varchar(10),
    commentaire text
);

CREATE TABLE dpi.pers_a_prevenir (
    id serial PRIMARY KEY,
    ipp bigint NOT NULL REFERENCES dpi.patient_ident,
    identite text NOT NULL,
    lien varchar(20),
    tel1 varchar(20),
    tel2 varchar(20),
    courriel text,
    personne_confiance boolean NOT NULL DEFAULT false
);

-- ipp without a foreign key, as the appointment module was bought separately
CREATE TABLE dpi.rdv_consult (
    id_rdv serial PRIMARY KEY,
    ipp bigint NOT NULL,
    id_prat int,
    dh_rdv timestamp NOT NULL,
    duree_min smallint,
    motif text,
    statut varchar(10),
    sms_rappel varchar(20),
    note_secr text
);
CREATE INDEX ON dpi.rdv_consult (ipp);

CREATE TABLE dpi.audit_modif (
    id_audit bigserial PRIMARY KEY,
    nom_table varchar(40) NOT NULL,
    id_enreg bigint NOT NULL,
    operation char(1) NOT NULL,
    dh_operation timestamptz NOT NULL,
    id_utilisateur int,
    val_avant jsonb,
    val_apres jsonb,
    poste_ip inet
);
CREATE INDEX ON dpi.audit_modif (nom_table, id_enreg);

CREATE TABLE dpi.document (
    id_doc serial PRIMARY KEY,
    num_sej bigint NOT NULL REFERENCES dpi.sejour_hospit,
    type_doc varchar(20),
    titre text,
    fichier text,
    meta json,
    taille_ko int
);

CREATE TABLE dpi.couverture_sociale (
    id serial PRIMARY KEY,
    ipp bigint NOT NULL REFERENCES dpi.patient_ident,
    nom_assure text,
    prenom_assure text,
    nir_ouvrant_droit varchar(15),
    dt_naiss_assure varchar(10),
    qualite_benef varchar(2),
    code_regime varchar(2),
    caisse varchar(3),
    dt_fin_droits date,
    iban_rembt varchar(34),
    mutuelle text
);

CREATE TABLE dpi.identite_nat (
    ipp bigint PRIMARY KEY REFERENCES dpi.patient_ident,
    matricule_ins varchar(15),
    oid_ins varchar(30),
    statut varchar(4),
    dt_qualif timestamp
);

CREATE TABLE dpi.constantes (
    id bigserial PRIMARY KEY,
    num_sej bigint NOT NULL REFERENCES dpi.sejour_hospit,
    dh_mesure timestamp NOT NULL,
    temperature numeric(3, 1),
    pa_sys smallint,
    pa_dia smallint,
    fc smallint,
    spo2 smallint,
    poids numeric(5, 2),
    saisie_par int
);

CREATE TABLE dpi.facture (
    num_facture varchar(11) PRIMARY KEY,
    num_sej bigint NOT NULL REFERENCES dpi.sejour_hospit,
    montant numeric(10, 2),
    dt_emission date,
    statut varchar(8),
    finess_geo char(9) REFERENCES dpi.etablissement
);

CREATE TABLE public.lab_result (
    result_id bigserial PRIMARY KEY,
    patient_ref bigint NOT NULL,
    test_code varchar(10),
    test_name text,
    value_num numeric,
    unit varchar(10),
    ref_range text,
    collected_at timestamptz,
    comments text,
    validated_by int
);
CREATE INDEX ON public.lab_result (patient_ref);

CREATE TABLE public.staff_directory (
    staff_id serial PRIMARY KEY,
    first_name text,
    last_name text,
    job_title text,
    department text,
    work_email text,
    mobile_phone varchar(20),
    date_of_birth date,
    badge_number varchar(8),
    hired_on date,
    home_address text,
    zip_code varchar(5),
    city text
);

CREATE TABLE public.app_sessions (
    session_id uuid PRIMARY KEY,
    user_id int,
    client_ip inet,
    user_agent text,
    started_at timestamptz,
    ended_at timestamptz
);
"""

# The truth: personal columns and their entity. Every other column is not personal: keys,
# codes, medical content, dates of events, organisations' contact details. Alternatives are
# given where two answers are right (a file name with the patient's name in it).
TRUTH: dict[str, tuple[str, ...]] = {
    "dpi.praticien.nom_prat": ("PERSON",),
    "dpi.praticien.prenom_prat": ("PERSON",),
    "dpi.praticien.num_rpps": ("FR_RPPS",),
    "dpi.praticien.num_adeli": ("FR_ADELI",),
    "dpi.praticien.tel_pro": ("PHONE_NUMBER",),
    "dpi.praticien.mail_pro": ("EMAIL_ADDRESS",),
    "dpi.patient_ident.NomUsuel": ("PERSON",),
    "dpi.patient_ident.NomNaissance": ("PERSON",),
    "dpi.patient_ident.Prenom1": ("PERSON",),
    "dpi.patient_ident.AutresPrenoms": ("PERSON",),
    "dpi.patient_ident.dt_naiss": ("DATE_OF_BIRTH",),
    "dpi.patient_ident.cd_com_naiss": ("LOCATION",),
    "dpi.patient_ident.nir": ("FR_NIR",),
    "dpi.patient_ident.adr_ligne1": ("ADDRESS",),
    "dpi.patient_ident.adr_ligne2": ("ADDRESS",),
    "dpi.patient_ident.cod_post": ("FR_POSTAL_CODE",),
    "dpi.patient_ident.commune": ("LOCATION",),
    "dpi.patient_ident.tel_fixe": ("PHONE_NUMBER",),
    "dpi.patient_ident.tel_mob": ("PHONE_NUMBER",),
    "dpi.patient_ident.adr_mail": ("EMAIL_ADDRESS",),
    "dpi.patient_ident.obs": ("FREE_TEXT_PERSONAL",),
    "dpi.sejour_hospit.cr_sortie": ("FREE_TEXT_PERSONAL",),
    "dpi.pers_a_prevenir.identite": ("PERSON",),
    "dpi.pers_a_prevenir.tel1": ("PHONE_NUMBER",),
    "dpi.pers_a_prevenir.tel2": ("PHONE_NUMBER",),
    "dpi.pers_a_prevenir.courriel": ("EMAIL_ADDRESS",),
    "dpi.rdv_consult.sms_rappel": ("PHONE_NUMBER",),
    "dpi.rdv_consult.note_secr": ("FREE_TEXT_PERSONAL",),
    "dpi.audit_modif.val_avant": ("FREE_TEXT_PERSONAL",),
    "dpi.audit_modif.val_apres": ("FREE_TEXT_PERSONAL",),
    "dpi.audit_modif.poste_ip": ("IP_ADDRESS",),
    "dpi.document.fichier": ("FREE_TEXT_PERSONAL", "PERSON"),
    "dpi.document.meta": ("FREE_TEXT_PERSONAL", "PERSON"),
    "dpi.couverture_sociale.nom_assure": ("PERSON",),
    "dpi.couverture_sociale.prenom_assure": ("PERSON",),
    "dpi.couverture_sociale.nir_ouvrant_droit": ("FR_NIR",),
    "dpi.couverture_sociale.dt_naiss_assure": ("DATE_OF_BIRTH",),
    "dpi.couverture_sociale.iban_rembt": ("IBAN_CODE",),
    "dpi.identite_nat.matricule_ins": ("FR_INS",),
    "public.lab_result.comments": ("FREE_TEXT_PERSONAL",),
    "public.staff_directory.first_name": ("PERSON",),
    "public.staff_directory.last_name": ("PERSON",),
    "public.staff_directory.work_email": ("EMAIL_ADDRESS",),
    "public.staff_directory.mobile_phone": ("PHONE_NUMBER",),
    "public.staff_directory.date_of_birth": ("DATE_OF_BIRTH",),
    "public.staff_directory.home_address": ("ADDRESS",),
    "public.staff_directory.zip_code": ("FR_POSTAL_CODE",),
    "public.staff_directory.city": ("LOCATION",),
    "public.app_sessions.client_ip": ("IP_ADDRESS",),
}

# Free-text columns whose planted values scrub must remove: (table, key, column, JSON?)
FREE_TEXT: tuple[tuple[str, str, str, bool], ...] = (
    ("dpi.patient_ident", "ipp", "obs", False),
    ("dpi.sejour_hospit", "num_sej", "cr_sortie", False),
    ("dpi.rdv_consult", "id_rdv", "note_secr", False),
    ("public.lab_result", "result_id", "comments", False),
    ("dpi.audit_modif", "id_audit", "val_avant", True),
    ("dpi.audit_modif", "id_audit", "val_apres", True),
)

UF = (
    ("CARD", "Cardiologie"), ("PNEU", "Pneumologie"), ("GERI", "Gériatrie"),
    ("URGE", "Urgences"), ("CHIV", "Chirurgie viscérale"), ("ORTH", "Orthopédie"),
    ("NEUR", "Neurologie"), ("MINT", "Médecine interne"), ("GAST", "Gastro-entérologie"),
    ("NEPH", "Néphrologie"), ("ONCO", "Oncologie"), ("REAN", "Réanimation"),
)  # fmt: skip
SPECIALITES = (
    "Cardiologie", "Pneumologie", "Gériatrie", "Médecine d'urgence", "Chirurgie viscérale",
    "Chirurgie orthopédique", "Neurologie", "Médecine interne", "Médecine générale",
)  # fmt: skip
CIM10 = ("I50.0", "J44.1", "I48.9", "J69.0", "I63.9", "E11.9", "K70.3", "S72.0", "I26.9",
         "G20", "N10", "I10", "D50.9", "I21.4", "M54.4", "C18.9", "E03.9")  # fmt: skip
LAB_TESTS = (
    ("K", "Potassium", "mmol/L", "3.5-5.0"), ("NA", "Sodium", "mmol/L", "135-145"),
    ("GLU", "Glucose", "mmol/L", "3.9-5.8"), ("CREA", "Creatinine", "µmol/L", "45-104"),
    ("HB", "Haemoglobin", "g/dL", "12-16"), ("CRP", "C-reactive protein", "mg/L", "0-5"),
    ("HBA1C", "HbA1c", "%", "4-6"), ("TSH", "TSH", "mU/L", "0.4-4.0"),
)  # fmt: skip
JOBS = ("Nurse", "Ward clerk", "Physician", "Pharmacist", "Lab technician", "Midwife",
        "Physiotherapist", "Medical secretary", "Porter")  # fmt: skip
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "DPI-Client/4.2.1 (Windows 10)",
)  # fmt: skip
MUTUELLES = ("MGEN", "Harmonie Mutuelle", "AG2R", "Malakoff Humanis", "MAAF Santé", None)
POSOLOGIES = ("1-0-1", "1 cp le matin", "2 cp/j", "1 inj SC/j", "si douleur, max 4/j", "0-0-1")
ALLERGIES = ("Pénicilline", "Iode", "Latex", "AINS", "Arachide", "Codéine", "Kiwi")
ATCD = ("HTA", "Diabète de type 2", "Appendicectomie", "BPCO", "Cholécystectomie")
ALLERGY_NOTES = (
    "Réaction cutanée sous amoxicilline en 2015",
    "Œdème de Quincke après injection d'iode",
    "Intolérance digestive",
    "Signalée par la famille, non documentée",
    "Choc anaphylactique au bloc, bilan allergologique fait",
)  # fmt: skip


_LOGGED = ("NomUsuel", "Prenom1", "tel_mob", "adr_mail", "adr_ligne1", "cod_post", "commune",
           "situation_fam", "nb_enfants")  # fmt: skip


@dataclass
class EvalData:
    """What was generated: rows per table, and the planted values of free texts (in memory
    only) keyed by (table, key value, column)."""

    rows: dict[str, int] = field(default_factory=dict)
    texts: dict[tuple[str, Any, str], Text] = field(default_factory=dict)
    json_planted: dict[tuple[str, Any, str], list[tuple[str, str]]] = field(default_factory=dict)


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_DDL)


def _names(seed: int) -> Names:
    from faker import Faker

    fake = Faker("fr_FR")
    fake.seed_instance(seed + 7)
    return Names(
        last=tuple(dict.fromkeys(fake.last_name() for _ in range(2500))),
        male=tuple(dict.fromkeys(fake.first_name_male() for _ in range(1200))),
        female=tuple(dict.fromkeys(fake.first_name_female() for _ in range(1200))),
    )


class _Generator:
    def __init__(self, patients: int, seed: int, today: date) -> None:
        from faker import Faker

        self.rng = Random(seed)  # noqa: S311  (reproducible data, not secrets)
        self.names = _names(seed)
        self.fake = Faker("fr_FR")
        self.fake.seed_instance(seed)
        self.texts = TextFactory(self.rng, self.names)
        self.patients = patients
        self.today = today
        self.data = EvalData()
        self.doctors = max(20, patients // 40)
        self.streets = [self.fake.street_address() for _ in range(3000)]
        self.cities = [self.fake.city() for _ in range(800)]
        self.stays: list[tuple[int, int, date]] = []  # num_sej, ipp, entry

    # -- small helpers -----------------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def day(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange(max(1, (end - start).days)))

    def stamp(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, self.rng.randrange(7, 20), 0, 0)

    def mixed(self, name: str, upper: float, lower: float = 0.0) -> str:
        r = self.rng.random()
        return name.upper() if r < upper else name.lower() if r > 1 - lower else name

    def insee(self) -> str:
        r = self.rng.random()
        if r < 0.04:
            return f"99{self.rng.randint(100, 450)}"
        if r < 0.06:
            return f"{self.rng.choice(('2A', '2B'))}{self.rng.randint(1, 366):03d}"
        dept = self.rng.randint(1, 95)
        return f"{1 if dept == 20 else dept:02d}{self.rng.randint(1, 650):03d}"

    def postal(self) -> str:
        dept = self.rng.choice((13, 31, 33, 44, 59, 67, 69, 75, 76, 92, 93, 94, 6, 34))
        return f"{dept:02d}{self.rng.randrange(0, 1000, 10):03d}"

    def rpps(self) -> str:
        payload = f"10{self.rng.randrange(10**8):08d}"
        return payload + luhn_digit(payload)

    def iban(self) -> str:
        bban = f"{self.rng.randrange(10**10):010d}{self.rng.randrange(10**11):011d}"
        bban += f"{self.rng.randrange(100):02d}"
        digits = "".join(str(int(c, 36)) for c in bban + "FR00")
        check = 98 - int(digits) % 97
        return f"FR{check:02d}{bban}"

    def ip(self, private: bool = True) -> str:
        first = 10 if private else self.rng.randint(80, 200)
        rest = (self.rng.randint(1, 40), self.rng.randint(0, 255), self.rng.randint(2, 254))
        return ".".join(map(str, (first, *rest)))

    def complement(self) -> str:
        """An address complement, as typed at the admission desk."""
        rng = self.rng
        return rng.choice(
            (
                f"Bâtiment {rng.choice('ABCDEFGH')}",
                f"Appartement {rng.randint(1, 120)}",
                f"Bât. {rng.choice('ABCD')}, {rng.randint(1, 9)}e étage",
                f"Résidence {self.fake.last_name()}",
                f"Escalier {rng.randint(1, 6)}, porte {rng.randint(1, 40)}",
                f"Lieu-dit {self.fake.last_name()}",
                f"Chez {rng.choice(self.names.last).upper()}",
                f"BP {rng.randint(10, 999)}",
            )
        )

    def remark(self, table: str, key: Any, column: str, templates: tuple[str, ...]) -> str:
        text = self.texts.pick(templates)
        self.data.texts[(table, key, column)] = text
        return text.text

    # -- tables ------------------------------------------------------------------------------
    def organisations(self) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        yield (
            "dpi.etablissement",
            [
                (
                    f"35{n:06d}0",
                    f"Centre hospitalier {self.fake.city()}",
                    self.rng.choice(self.streets),
                    self.postal(),
                    self.rng.choice(self.cities),
                    self.texts.phone(),
                )
                for n in range(1, 4)
            ],
        )
        yield (
            "dpi.unite_fonct",
            [
                (code, label, f"02 99 28 {n:02d} {n + 10:02d}", f"Bâtiment {'ABCD'[n % 4]}", n % 5)
                for n, (code, label) in enumerate(UF)
            ],
        )
        doctors = []
        for n in range(1, self.doctors + 1):
            first, last = self.texts.first_name(), self.rng.choice(self.names.last)
            doctors.append(
                (
                    n,
                    self.mixed(last, 0.8),
                    first,
                    self.rpps() if self.chance(0.9) else None,
                    f"35{self.rng.randrange(10**7):07d}" if self.chance(0.4) else None,
                    self.rng.choice(SPECIALITES),
                    self.texts.phone() if self.chance(0.7) else None,
                    f"{ascii_fold(first)}.{ascii_fold(last)}@chu-exemple.fr"
                    if self.chance(0.8)
                    else None,
                    self.chance(0.9),
                )
            )
        yield "dpi.praticien", doctors

    def patients_rows(self) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        tables: dict[str, list[tuple[Any, ...]]] = {
            name: []
            for name in (
                "dpi.patient_ident",
                "dpi.sejour_hospit",
                "dpi.prescription_med",
                "dpi.allergie_atcd",
                "dpi.pers_a_prevenir",
                "dpi.rdv_consult",
                "dpi.audit_modif",
                "dpi.document",
                "dpi.couverture_sociale",
                "dpi.identite_nat",
                "dpi.constantes",
                "dpi.facture",
                "public.lab_result",
            )
        }
        for n in range(self.patients):
            self.patient(100_000 + n * 7, tables)
        yield from tables.items()

    def patient(self, ipp: int, t: dict[str, list[tuple[Any, ...]]]) -> None:
        rng = self.rng
        sex = rng.choice("FM")
        first = self.texts.first_name()
        last = rng.choice(self.names.last)
        birth = self.day(date(1925, 1, 1), date(2024, 1, 1))
        nir = self.texts.nir("2" if sex == "F" else "1", birth.year)
        married = sex == "F" and self.chance(0.35)
        usual = rng.choice(self.names.last) if married else last
        created = self.day(date(2008, 1, 1), self.today)
        tel_fixe = self.texts.phone() if self.chance(0.5) else None
        tel_mob = self.texts.phone() if self.chance(0.8) else None
        domain = rng.choice(("orange.fr", "free.fr", "gmail.com"))
        mail = f"{ascii_fold(first)}.{ascii_fold(usual)}@{domain}" if self.chance(0.5) else None
        t["dpi.patient_ident"].append(
            (
                ipp,
                self.mixed(usual, 0.7, 0.05),
                self.mixed(last, 0.7, 0.05) if married or self.chance(0.3) else None,
                self.mixed(first, 0.1, 0.05),
                self.texts.first_name() if self.chance(0.3) else None,
                "Mme" if sex == "F" else "M.",
                sex,
                birth,
                self.insee(),
                nir if self.chance(0.95) else None,
                rng.choice(self.streets) if self.chance(0.97) else None,
                self.complement() if self.chance(0.2) else None,
                self.postal(),
                rng.choice(self.cities),
                tel_fixe,
                tel_mob,
                mail,
                rng.choice(("célibataire", "marié(e)", "veuf(ve)", "divorcé(e)", "pacsé(e)")),
                rng.randint(0, 5),
                rng.randint(1, self.doctors) if self.chance(0.8) else None,
                datetime(created.year, created.month, created.day, 9, tzinfo=UTC),
                self.stamp(self.day(created, self.today + timedelta(days=1))),
                self.chance(0.95),
                self.day(created, self.today) if self.chance(0.03) else None,
                self.remark("dpi.patient_ident", ipp, "obs", PATIENT_NOTES)
                if self.chance(0.35)
                else None,
            )
        )
        stays = [self.stay(ipp, created, t) for _ in range(rng.choice((0, 1, 1, 2, 2, 3, 4)))]
        self.medical(ipp, t)
        self.contacts(ipp, t)
        self.appointments(ipp, created, t)
        self.audit(ipp, usual, first, tel_mob, mail, stays, t)
        self.insurance(ipp, last, first, birth, nir, t)
        if self.chance(0.6) and nir:
            t["dpi.identite_nat"].append(
                (
                    ipp,
                    nir,
                    "1.2.250.1.213.1.4.8",
                    rng.choice(("VALI", "QUAL", "PROV")),
                    self.stamp(self.day(date(2021, 1, 1), self.today)),
                )
            )
        for _ in range(rng.randint(0, 4)):
            code, name, unit, ref = rng.choice(LAB_TESTS)
            result_id = len(t["public.lab_result"]) + 1
            t["public.lab_result"].append(
                (
                    result_id,
                    ipp,
                    code,
                    name,
                    round(rng.uniform(0.5, 150), 2),
                    unit,
                    ref,
                    datetime.combine(self.day(created, self.today), datetime.min.time(), UTC),
                    self.remark("public.lab_result", result_id, "comments", LAB_COMMENTS)
                    if self.chance(0.25)
                    else None,
                    rng.randint(1, 60),
                )
            )

    def stay(self, ipp: int, created: date, t: dict[str, list[tuple[Any, ...]]]) -> int:
        rng = self.rng
        num = 2_000_000 + len(t["dpi.sejour_hospit"])
        entry = self.day(created, self.today)
        t["dpi.sejour_hospit"].append(
            (
                num,
                ipp,
                self.stamp(entry),
                self.stamp(entry + timedelta(days=rng.randint(0, 20)))
                if self.chance(0.97)
                else None,
                rng.choice(UF)[0],
                rng.choice(("8", "7", "6", "85")),
                rng.choice(CIM10),
                "{" + ",".join(rng.sample(CIM10, rng.randint(0, 3))) + "}",
                f"{rng.randint(1, 28):02d}M{rng.randint(1, 20):02d}{rng.choice('1234')}",
                "O" if self.chance(0.03) else "N",
                self.remark("dpi.sejour_hospit", num, "cr_sortie", STAY_NOTES)
                if self.chance(0.4)
                else None,
            )
        )
        for _ in range(rng.randint(0, 4)):
            t["dpi.prescription_med"].append(
                (
                    len(t["dpi.prescription_med"]) + 1,
                    num,
                    rng.randint(1, self.doctors),
                    rng.choice(DRUGS),
                    f"34009{rng.randrange(10**8):08d}",
                    rng.choice(POSOLOGIES),
                    rng.choice(("PO", "IV", "SC", "IM", "INH")),
                    entry,
                    entry + timedelta(days=rng.randint(1, 30)),
                    f"{rng.choice('ABCDEFGH')}{rng.randrange(10**6):06d}",
                )
            )
        for _ in range(rng.randint(1, 6)):
            t["dpi.constantes"].append(
                (
                    len(t["dpi.constantes"]) + 1,
                    num,
                    self.stamp(entry),
                    round(rng.uniform(36, 39.5), 1),
                    rng.randint(95, 180),
                    rng.randint(50, 100),
                    rng.randint(50, 130),
                    rng.randint(88, 100),
                    round(rng.uniform(40, 120), 2),
                    rng.randint(1, 400),
                )
            )
        if self.chance(0.7):
            doc_name = f"{rng.choice(('CRH', 'CRO', 'ORDO', 'LETTRE'))}_{entry:%Y%m%d}"
            if self.chance(0.3):
                doc_name += f"_{rng.choice(self.names.last).upper()}"
            else:
                doc_name += f"_{num}"
            author = rng.choice(self.names.last)
            t["dpi.document"].append(
                (
                    len(t["dpi.document"]) + 1,
                    num,
                    rng.choice(("CRH", "CRO", "ORDONNANCE", "COURRIER")),
                    rng.choice(
                        (
                            "Compte rendu d'hospitalisation",
                            "Compte rendu opératoire",
                            "Ordonnance de sortie",
                            "Lettre de liaison",
                        )
                    ),
                    f"{doc_name}.pdf",
                    json.dumps(
                        {
                            "auteur": f"Dr {self.texts.first_name()} {author.upper()}",
                            "service": rng.choice(UF)[1],
                            "pages": rng.randint(1, 6),
                            "signe": self.chance(0.8),
                        },
                        ensure_ascii=False,
                    ),
                    rng.randint(20, 3000),
                )
            )
        t["dpi.facture"].append(
            (
                f"{rng.randrange(10**10, 10**11)}",
                num,
                round(rng.uniform(80, 25000), 2),
                entry + timedelta(days=rng.randint(5, 60)),
                rng.choice(("EMISE", "PAYEE", "RELANCE")),
                "350000010",
            )
        )
        self.stays.append((num, ipp, entry))
        return num

    def medical(self, ipp: int, t: dict[str, list[tuple[Any, ...]]]) -> None:
        for _ in range(self.rng.choice((0, 0, 0, 1, 1, 2))):
            allergy = self.chance(0.6)
            t["dpi.allergie_atcd"].append(
                (
                    len(t["dpi.allergie_atcd"]) + 1,
                    ipp,
                    self.rng.choice(ALLERGIES if allergy else ATCD),
                    "ALLERGIE" if allergy else self.rng.choice(("MEDICAL", "CHIR")),
                    self.rng.choice(ALLERGY_NOTES) if self.chance(0.4) else None,
                )
            )

    def contacts(self, ipp: int, t: dict[str, list[tuple[Any, ...]]]) -> None:
        for _ in range(self.rng.choice((0, 1, 1, 2))):
            first, last = self.texts.first_name(), self.rng.choice(self.names.last)
            identite = (
                f"{last.upper()} {first}"
                if self.chance(0.7)
                else f"{first} {self.mixed(last, 0.3)}"
            )
            t["dpi.pers_a_prevenir"].append(
                (
                    len(t["dpi.pers_a_prevenir"]) + 1,
                    ipp,
                    identite,
                    self.rng.choice(LIENS).capitalize(),
                    self.texts.phone(),
                    self.texts.phone() if self.chance(0.3) else None,
                    self.texts.email() if self.chance(0.3) else None,
                    self.chance(0.4),
                )
            )

    def appointments(self, ipp: int, created: date, t: dict[str, list[tuple[Any, ...]]]) -> None:
        for _ in range(self.rng.choice((0, 1, 1, 2, 3))):
            rdv = len(t["dpi.rdv_consult"]) + 1
            t["dpi.rdv_consult"].append(
                (
                    rdv,
                    ipp,
                    self.rng.randint(1, self.doctors),
                    self.stamp(self.day(created, self.today + timedelta(days=90))),
                    self.rng.choice((15, 20, 30, 45)),
                    f"Suivi {self.rng.choice(DIAGNOSES)}",
                    self.rng.choice(("PREVU", "HONORE", "ANNULE", "ABSENT")),
                    self.texts.phone() if self.chance(0.6) else None,
                    self.remark("dpi.rdv_consult", rdv, "note_secr", APPOINTMENT_NOTES)
                    if self.chance(0.3)
                    else None,
                )
            )

    def audit(
        self,
        ipp: int,
        usual: str,
        first: str,
        tel: str | None,
        mail: str | None,
        stays: list[int],
        t: dict[str, list[tuple[Any, ...]]],
    ) -> None:
        rng = self.rng
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            audit_id = len(t["dpi.audit_modif"]) + 1
            if stays and self.chance(0.3):  # a stay's medical fields changed
                table, record = "sejour_hospit", rng.choice(stays)
                before: dict[str, Any] = {
                    "dp_cim10": rng.choice(CIM10),
                    "uf_ent": rng.choice(UF)[0],
                }
                after: dict[str, Any] = {"dp_cim10": rng.choice(CIM10), "uf_ent": before["uf_ent"]}
                planted_before: list[tuple[str, str]] = []
                planted_after: list[tuple[str, str]] = []
            else:
                table, record = "patient_ident", ipp
                before, planted_before = self.old_values(usual, first, tel, mail)
                after, planted_after = self.old_values(usual, first, tel, mail)
                if self.chance(0.2):
                    text = self.texts.pick(PATIENT_NOTES)
                    after["obs"] = text.text
                    planted_after += [(p.kind, text.text[p.start : p.end]) for p in text.planted]
            self.data.json_planted[("dpi.audit_modif", audit_id, "val_avant")] = planted_before
            self.data.json_planted[("dpi.audit_modif", audit_id, "val_apres")] = planted_after
            t["dpi.audit_modif"].append(
                (
                    audit_id,
                    table,
                    record,
                    "U",
                    datetime.combine(
                        self.day(date(2022, 1, 1), self.today), datetime.min.time(), UTC
                    ),
                    rng.randint(1, 400),
                    json.dumps(before, ensure_ascii=False),
                    json.dumps(after, ensure_ascii=False),
                    self.ip(),
                )
            )

    def old_values(
        self, usual: str, first: str, tel: str | None, mail: str | None
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """A change-log document keyed by column names, and its planted personal values."""
        rng = self.rng
        fields = rng.sample(_LOGGED, rng.randint(1, 3))
        values: dict[str, Any] = {}
        planted: list[tuple[str, str]] = []
        for name in fields:
            if name == "NomUsuel":
                values[name] = rng.choice(self.names.last).upper()
                planted.append(("name", values[name]))
            elif name == "Prenom1":
                values[name] = first
                planted.append(("name", first))
            elif name == "tel_mob":
                values[name] = tel or self.texts.phone()
                planted.append(("phone", values[name]))
            elif name == "adr_mail":
                values[name] = mail or self.texts.email()
                planted.append(("email", values[name]))
            elif name == "adr_ligne1":
                values[name] = rng.choice(self.streets)
            elif name == "cod_post":
                values[name] = self.postal()
            elif name == "commune":
                values[name] = rng.choice(self.cities)
            elif name == "situation_fam":
                values[name] = rng.choice(("marié(e)", "veuf(ve)"))
            else:
                values[name] = rng.randint(0, 5)
        return values, planted

    def insurance(
        self,
        ipp: int,
        last: str,
        first: str,
        birth: date,
        nir: str,
        t: dict[str, list[tuple[Any, ...]]],
    ) -> None:
        rng = self.rng
        own = self.chance(0.75)
        if not own:
            first = self.texts.first_name()
            birth = self.day(date(1930, 1, 1), date(2000, 1, 1))
            nir = self.texts.nir(rng.choice("12"), birth.year)
        t["dpi.couverture_sociale"].append(
            (
                len(t["dpi.couverture_sociale"]) + 1,
                ipp,
                self.mixed(last, 0.8),
                first,
                nir,
                f"{birth:%d/%m/%Y}",
                "00" if own else rng.choice(("01", "02")),
                rng.choice(("01", "02", "03")),
                f"{rng.randint(311, 976)}",
                self.day(self.today, self.today + timedelta(days=700)),
                self.iban() if self.chance(0.5) else None,
                rng.choice(MUTUELLES),
            )
        )

    def staff(self) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        rows = []
        for n in range(1, max(60, self.patients // 10) + 1):
            first, last = self.texts.first_name(), self.rng.choice(self.names.last)
            rows.append(
                (
                    n,
                    first,
                    last,
                    self.rng.choice(JOBS),
                    self.rng.choice(UF)[1],
                    f"{ascii_fold(first)}.{ascii_fold(last)}@chu-exemple.fr",
                    self.texts.phone() if self.chance(0.8) else None,
                    self.day(date(1960, 1, 1), date(2002, 1, 1)),
                    f"B{self.rng.randrange(10**6):06d}",
                    self.day(date(1990, 1, 1), self.today),
                    self.rng.choice(self.streets) if self.chance(0.9) else None,
                    self.postal(),
                    self.rng.choice(self.cities),
                )
            )
        yield "public.staff_directory", rows
        sessions = []
        for _ in range(max(300, self.patients)):
            start = datetime.combine(
                self.day(date(2025, 1, 1), self.today), datetime.min.time(), UTC
            )
            sessions.append(
                (
                    uuid.UUID(int=self.rng.getrandbits(128)),
                    self.rng.randint(1, 400),
                    self.ip(private=self.chance(0.7)),
                    self.rng.choice(AGENTS),
                    start + timedelta(hours=self.rng.randint(7, 18)),
                    start + timedelta(hours=self.rng.randint(19, 23)),
                )
            )
        yield "public.app_sessions", sessions


def generate(
    conn: psycopg.Connection[Any], *, patients: int = 4000, seed: int = 2026, today: date
) -> EvalData:
    """Create the schema and load the data; returns the planted values (in memory)."""
    create_schema(conn)
    gen = _Generator(patients, seed, today)
    for source in (gen.organisations(), gen.patients_rows(), gen.staff()):
        for table, rows in source:
            copy_table(conn, table, rows)
            gen.data.rows[table] = len(rows)
    conn.execute("ANALYZE")
    return gen.data


def _fill(conn: psycopg.Connection[Any], patients: int, seed: int) -> dict[str, int]:
    return generate(conn, patients=patients, seed=seed, today=TODAY).rows


SCHEMA = LabelledSchema(
    name="dpi",
    language="French",
    shape="French hospital software: abbreviated and mixed-case names, JSON change log, "
    "free texts with planted values, a few English tables",
    truth=TRUTH,
    fill=_fill,
)
