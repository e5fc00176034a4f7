"""An English schema shaped like OpenMRS, the open-source medical record system.

A person and its names, addresses and attributes in separate tables; patient identifiers in
a table of identifiers (``patient_identifier.identifier``: an OpenMRS ID with a check
character, an old hospital number, a national ID) typed by a catalogue
(``patient_identifier_type``); attributes as entity-attribute-value rows
(``person_attribute.value``: phones, mother's names, birthplaces, coded answers) typed by
another catalogue whose rows name kinds of information ("Telephone Number", "Mother's Name");
user accounts with logins; encounters and observations with a little free text. Every table
has a ``uuid char(38)`` and the audit columns of OpenMRS. Data from Faker ``en_US``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from random import Random
from typing import Any

import psycopg

from eval.labelled import LabelledSchema, Rows, copy_rows, valid_phone

DDL = """
CREATE SCHEMA openmrs;
SET search_path = openmrs;

CREATE TABLE location (
    location_id serial PRIMARY KEY, name varchar(255) NOT NULL, description varchar(255),
    address1 varchar(255), city_village varchar(255), state_province varchar(255),
    postal_code varchar(50), country varchar(50), retired boolean NOT NULL DEFAULT false,
    uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE person (
    person_id serial PRIMARY KEY, gender varchar(50), birthdate date,
    birthdate_estimated boolean NOT NULL DEFAULT false, dead boolean NOT NULL DEFAULT false,
    death_date timestamp, cause_of_death int, creator int, date_created timestamp NOT NULL,
    voided boolean NOT NULL DEFAULT false, uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE person_name (
    person_name_id serial PRIMARY KEY, preferred boolean NOT NULL DEFAULT false,
    person_id int NOT NULL REFERENCES person, prefix varchar(50), given_name varchar(50),
    middle_name varchar(50), family_name varchar(50), family_name2 varchar(50),
    family_name_suffix varchar(50), creator int NOT NULL, date_created timestamp NOT NULL,
    voided boolean NOT NULL DEFAULT false, uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE person_address (
    person_address_id serial PRIMARY KEY, person_id int REFERENCES person,
    preferred boolean NOT NULL DEFAULT false, address1 varchar(255), address2 varchar(255),
    city_village varchar(255), county_district varchar(255), state_province varchar(255),
    postal_code varchar(50), country varchar(50), start_date timestamp, end_date timestamp,
    creator int NOT NULL, date_created timestamp NOT NULL,
    voided boolean NOT NULL DEFAULT false, uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE person_attribute_type (
    person_attribute_type_id serial PRIMARY KEY, name varchar(50) NOT NULL,
    description text, format varchar(50), foreign_key int,
    searchable boolean NOT NULL DEFAULT false, sort_weight double precision,
    retired boolean NOT NULL DEFAULT false, uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE person_attribute (
    person_attribute_id serial PRIMARY KEY, person_id int NOT NULL REFERENCES person,
    value varchar(50) NOT NULL,
    person_attribute_type_id int NOT NULL REFERENCES person_attribute_type,
    creator int NOT NULL, date_created timestamp NOT NULL,
    voided boolean NOT NULL DEFAULT false, uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE patient (
    patient_id int PRIMARY KEY REFERENCES person, creator int NOT NULL,
    date_created timestamp NOT NULL, voided boolean NOT NULL DEFAULT false,
    allergy_status varchar(50) NOT NULL DEFAULT 'Unknown'
);
CREATE TABLE patient_identifier_type (
    patient_identifier_type_id serial PRIMARY KEY, name varchar(50) NOT NULL,
    description text, format varchar(255), check_digit boolean NOT NULL DEFAULT false,
    required boolean NOT NULL DEFAULT false, format_description varchar(255),
    validator varchar(200), location_behavior varchar(50),
    retired boolean NOT NULL DEFAULT false, uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE patient_identifier (
    patient_identifier_id serial PRIMARY KEY, patient_id int NOT NULL REFERENCES patient,
    identifier varchar(50) NOT NULL,
    identifier_type int NOT NULL REFERENCES patient_identifier_type,
    preferred boolean NOT NULL DEFAULT false, location_id int REFERENCES location,
    creator int NOT NULL, date_created timestamp NOT NULL,
    voided boolean NOT NULL DEFAULT false, uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE users (
    user_id serial PRIMARY KEY, system_id varchar(50) NOT NULL, username varchar(50),
    password varchar(128), salt varchar(128), creator int, date_created timestamp NOT NULL,
    person_id int NOT NULL REFERENCES person, retired boolean NOT NULL DEFAULT false,
    uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE encounter_type (
    encounter_type_id serial PRIMARY KEY, name varchar(50) NOT NULL, description text,
    retired boolean NOT NULL DEFAULT false, uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE concept_name (
    concept_name_id serial PRIMARY KEY, concept_id int NOT NULL, name varchar(255) NOT NULL,
    locale varchar(50) NOT NULL, concept_name_type varchar(50),
    uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE encounter (
    encounter_id serial PRIMARY KEY, encounter_type int NOT NULL REFERENCES encounter_type,
    patient_id int NOT NULL REFERENCES patient, location_id int REFERENCES location,
    form_id int, encounter_datetime timestamp NOT NULL, creator int NOT NULL,
    date_created timestamp NOT NULL, voided boolean NOT NULL DEFAULT false, visit_id int,
    uuid char(38) NOT NULL UNIQUE
);
CREATE TABLE obs (
    obs_id serial PRIMARY KEY, person_id int NOT NULL REFERENCES person,
    concept_id int NOT NULL, encounter_id int REFERENCES encounter,
    obs_datetime timestamp NOT NULL, location_id int REFERENCES location,
    value_coded int, value_numeric double precision, value_text text,
    value_datetime timestamp, comments varchar(255), creator int NOT NULL,
    date_created timestamp NOT NULL, voided boolean NOT NULL DEFAULT false,
    uuid char(38) NOT NULL UNIQUE
);
RESET search_path;
"""

TRUTH: dict[str, tuple[str, ...]] = {
    "openmrs.person.birthdate": ("DATE_OF_BIRTH",),
    "openmrs.person_name.given_name": ("PERSON",),
    "openmrs.person_name.middle_name": ("PERSON",),
    "openmrs.person_name.family_name": ("PERSON",),
    "openmrs.person_name.family_name2": ("PERSON",),
    "openmrs.person_address.address1": ("ADDRESS",),
    "openmrs.person_address.address2": ("ADDRESS",),
    "openmrs.person_address.city_village": ("LOCATION",),
    "openmrs.person_address.county_district": ("LOCATION",),
    "openmrs.person_address.state_province": ("LOCATION",),
    "openmrs.person_address.postal_code": ("POSTAL_CODE",),
    # phones, mother's names, birthplaces: one value column for every kind of attribute
    "openmrs.person_attribute.value": ("FREE_TEXT_PERSONAL", "PHONE_NUMBER", "PERSON", "LOCATION"),
    "openmrs.patient_identifier.identifier": ("PERSON_ID",),
    "openmrs.users.system_id": ("USERNAME", "PERSON_ID"),  # OpenMRS logs in with either
    "openmrs.users.username": ("USERNAME", "PERSON"),
    "openmrs.obs.value_text": ("FREE_TEXT_PERSONAL",),
}

_SITES = (
    ("Amani Hospital", "12 Hospital Road", "Springfield", "Illinois", "62701"),
    ("Inpatient Ward", None, None, None, None),
    ("Outpatient Clinic", None, None, None, None),
    ("Laboratory", None, None, None, None),
    ("Pharmacy", None, None, None, None),
)
_IDENTIFIER_TYPES = (
    ("OpenMRS ID", "Unique number used in OpenMRS", None, True,
     "org.openmrs.module.idgen.validator.LuhnMod30IdentifierValidator"),
    ("Old Identification Number", "Number given out prior to the OpenMRS system (No check "
     "digit)", None, False, None),
    ("National ID", "Government issued national identification number", r"\d{8}", False, None),
    ("Previous ID", "Identifier of a merged record, kept for look-ups", None, False, None),
)  # fmt: skip
# (name, description, format); the values of each are made below
_ATTRIBUTE_TYPES = (
    ("Telephone Number", "The telephone number for the person", "java.lang.String"),
    ("Mother's Name", "First or last name of this person's mother", "java.lang.String"),
    ("Birthplace", "Location of persons birth", "java.lang.String"),
    ("Civil Status", "Marriage status of this person", "org.openmrs.Concept"),
    ("Race", "Group of persons related by common descent or heredity", "java.lang.String"),
    ("Health Center", "Specific Location of this person's home health center.",
     "org.openmrs.Location"),
    ("Name of the next of kin", "Who to call in an emergency", "java.lang.String"),
    ("Home phone", "Landline at the person's home", "java.lang.String"),
)  # fmt: skip
_ENCOUNTER_TYPES = (
    ("ADULTINITIAL", "Outpatient Adult Initial Visit"),
    ("ADULTRETURN", "Outpatient Adult Return Visit"),
    ("PEDSINITIAL", "Outpatient Pediatric Initial Visit"),
    ("ADMISSION", "Admission to the inpatient ward"),
    ("DISCHARGE", "Discharge from the inpatient ward"),
    ("LAB RESULT", "Laboratory results entered"),
)
_CONCEPTS = (
    "WEIGHT (KG)", "HEIGHT (CM)", "TEMPERATURE (C)", "PULSE", "SYSTOLIC BLOOD PRESSURE",
    "DIASTOLIC BLOOD PRESSURE", "CD4 COUNT", "HIV VIRAL LOAD", "MALARIA SMEAR", "HEMOGLOBIN",
    "CLINICIAN NOTES", "REVIEW OF SYSTEMS", "MARRIED", "SINGLE", "DIVORCED", "WIDOWED",
    "Tuberculosis", "Pneumonia", "Diabetes mellitus", "Hypertension", "Asthma",
    "Amoxicillin", "Paracetamol", "Metformin", "Isoniazid", "Cotrimoxazole",
)  # fmt: skip
_CLINICAL_NOTES = (
    "Patient reports improvement, continue current regimen.",
    "Cough for 2 weeks, night sweats. Sputum sent for AFB.",
    "Adherence counselling done. Next visit in 4 weeks.",
    "BP controlled on current dose of amlodipine.",
    "Referred to nutrition clinic for weight loss.",
    "Mild dehydration, oral rehydration given.",
)
_PERSONAL_NOTES = (
    "Lives with her sister {name}, phone {phone}.",
    "Treatment supporter: {name} ({relation}), {phone}",
    "Mrs {last} accompanied the patient today.",
    "Call {relation} {name} on {phone} if results are abnormal.",
)
_COMMENTS = ("repeat in 3 months", "confirmed", "verbal report", "see lab slip", "fasting")
_RELATIONS = ("mother", "father", "son", "daughter", "wife", "husband", "brother", "aunt")
_RACES = ("White", "Black", "Asian", "Hispanic", "Other")
_CIVIL = ("5555", "5617", "1057", "1058", "1059")  # concept ids of MARRIED, SINGLE...
_PHONES = ("(###) ###-####", "###-###-####", "+1 ### ### ####", "###.###.####")
_BASE30 = "0123456789ACDEFGHJKLMNPRTUVWXY"


def luhn_mod30(body: str) -> str:
    """The check character of an OpenMRS ID (Luhn mod 30 over the base-30 alphabet)."""
    total, factor = 0, 2
    for char in reversed(body):
        addend = factor * _BASE30.index(char)
        factor = 1 if factor == 2 else 2
        total += addend // 30 + addend % 30
    return _BASE30[(30 - total % 30) % 30]


class _Generator:
    def __init__(self, patients: int, seed: int) -> None:
        from faker import Faker

        self.rng = Random(seed)  # noqa: S311  (reproducible data, not secrets)
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)
        self.patients = patients
        self.last = [self.fake.last_name() for _ in range(1500)]
        self.first = [self.fake.first_name() for _ in range(800)]
        self.cities = [self.fake.city() for _ in range(400)]
        self.t: Rows = {}

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def when(self, start: date = date(2009, 1, 1), days: int = 6000) -> datetime:
        day = start + timedelta(days=self.rng.randrange(days))
        return datetime(day.year, day.month, day.day, self.rng.randrange(7, 19), 0)

    def phone(self) -> str:
        return valid_phone(self.rng, "US", _PHONES)

    def person_name(self) -> str:
        return f"{self.rng.choice(self.first)} {self.rng.choice(self.last)}"

    def catalogues(self) -> None:
        rng = self.rng
        self.t["openmrs.location"] = [
            (n, name, f"{name} of the hospital", street, city, state, zip_, "United States",
             False, self.uid())
            for n, (name, street, city, state, zip_) in enumerate(_SITES, 1)
        ]  # fmt: skip
        self.t["openmrs.person_attribute_type"] = [
            (n, name, text, fmt, None, n < 4, float(n), False, self.uid())
            for n, (name, text, fmt) in enumerate(_ATTRIBUTE_TYPES, 1)
        ]
        self.t["openmrs.patient_identifier_type"] = [
            (n, name, text, fmt, check, n == 1, None, validator, "NOT_USED", False, self.uid())
            for n, (name, text, fmt, check, validator) in enumerate(_IDENTIFIER_TYPES, 1)
        ]
        self.t["openmrs.encounter_type"] = [
            (n, name, text, False, self.uid()) for n, (name, text) in enumerate(_ENCOUNTER_TYPES, 1)
        ]
        self.t["openmrs.concept_name"] = [
            (n, 1000 + n, name, rng.choice(("en", "en", "fr")), "FULLY_SPECIFIED", self.uid())
            for n, name in enumerate(_CONCEPTS, 1)
        ]

    def people(self) -> None:
        for table in ("person", "person_name", "person_address", "person_attribute",
                      "patient", "patient_identifier", "users", "encounter", "obs"):  # fmt: skip
            self.t[f"openmrs.{table}"] = []
        staff = max(20, self.patients // 100)
        for n in range(1, self.patients + staff + 1):
            self.person(n)
            if n <= staff:
                self.user(n)
            else:
                self.patient(n)

    def person(self, n: int) -> None:
        rng, t = self.rng, self.t
        sex = rng.choice("MF")
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(32000))
        dead = rng.random() < 0.03
        created = self.when()
        t["openmrs.person"].append(
            (n, sex, born, rng.random() < 0.1, dead, self.when() if dead else None,
             rng.choice((None, 5041, 5042)) if dead else None, 1, created, False, self.uid())
        )  # fmt: skip
        family = rng.choice(self.last)
        t["openmrs.person_name"].append(
            (n, True, n, rng.choice(("Mr.", "Mrs.", "Ms.", "Dr.", None, None)),
             rng.choice(self.first), rng.choice(self.first) if rng.random() < 0.4 else None,
             family, rng.choice(self.last) if rng.random() < 0.1 else None,
             rng.choice(("Jr.", "Sr.", "III")) if rng.random() < 0.03 else None,
             1, created, False, self.uid())
        )  # fmt: skip
        t["openmrs.person_address"].append(
            (n, n, True, self.fake.street_address(),
             self.fake.secondary_address() if rng.random() < 0.3 else None,
             rng.choice(self.cities), f"{self.fake.last_name()} County",
             self.fake.state(), self.fake.zipcode(), "United States",
             created, None, 1, created, False, self.uid())
        )  # fmt: skip
        for kind in rng.sample(range(1, len(_ATTRIBUTE_TYPES) + 1), rng.randint(1, 4)):
            t["openmrs.person_attribute"].append(
                (len(t["openmrs.person_attribute"]) + 1, n, self.attribute(kind), kind, 1,
                 created, False, self.uid())
            )  # fmt: skip

    def attribute(self, kind: int) -> str:
        rng = self.rng
        return {
            1: self.phone,
            2: lambda: rng.choice(self.first),
            3: lambda: rng.choice(self.cities),
            4: lambda: rng.choice(_CIVIL),
            5: lambda: rng.choice(_RACES),
            6: lambda: str(rng.randint(1, 5)),
            7: self.person_name,
            8: self.phone,
        }[kind]()

    def patient(self, n: int) -> None:
        rng, t = self.rng, self.t
        created = self.when()
        t["openmrs.patient"].append((n, 1, created, False, rng.choice(("Unknown", "No known"))))
        body = "".join(rng.choice(_BASE30) for _ in range(rng.choice((5, 6))))
        ids = [(f"{body}{luhn_mod30(body)}", 1)]
        if rng.random() < 0.5:
            old = f"{rng.randint(1, 99999)}"
            ids.append((f"{old}-{sum(map(int, old)) % 10}", 2))
        if rng.random() < 0.3:
            ids.append((f"{rng.randrange(10**7, 10**8)}", 3))
        if rng.random() < 0.05:
            ids.append((f"MRN-{rng.randrange(10**6):06d}", 4))
        for identifier, kind in ids:
            t["openmrs.patient_identifier"].append(
                (len(t["openmrs.patient_identifier"]) + 1, n, identifier, kind, kind == 1,
                 rng.randint(1, 3), 1, created, False, self.uid())
            )  # fmt: skip
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            self.encounter(n)

    def encounter(self, n: int) -> None:
        rng, t = self.rng, self.t
        at = self.when()
        encounter_id = len(t["openmrs.encounter"]) + 1
        t["openmrs.encounter"].append(
            (encounter_id, rng.randint(1, len(_ENCOUNTER_TYPES)), n, rng.randint(1, 5), None,
             at, 1, at, False, None, self.uid())
        )  # fmt: skip
        for _ in range(rng.randint(1, 4)):
            concept = rng.randint(1001, 1000 + len(_CONCEPTS))
            numeric = round(rng.uniform(30, 180), 1) if concept < 1011 else None
            text = None
            if concept == 1011:
                text = rng.choice(_CLINICAL_NOTES)
                if rng.random() < 0.25:
                    text = rng.choice(_PERSONAL_NOTES).format(
                        name=self.person_name(), phone=self.phone(),
                        relation=rng.choice(_RELATIONS), last=rng.choice(self.last),
                    )  # fmt: skip
            t["openmrs.obs"].append(
                (len(t["openmrs.obs"]) + 1, n, concept, encounter_id, at, rng.randint(1, 5),
                 rng.choice((None, 1065, 1066)) if numeric is None and text is None else None,
                 numeric, text, None,
                 rng.choice(_COMMENTS) if rng.random() < 0.1 else None,
                 1, at, False, self.uid())
            )  # fmt: skip

    def user(self, n: int) -> None:
        rng = self.rng
        first, last = self.t["openmrs.person_name"][-1][4], self.t["openmrs.person_name"][-1][6]
        system_id = ("admin", "daemon")[n - 1] if n <= 2 else f"{n}-{(n * 7) % 10}"
        login = (
            system_id if n <= 2 else rng.choice((f"{first[0]}{last}", f"{first}.{last}")).lower()
        )
        self.t["openmrs.users"].append(
            (n, system_id, login if rng.random() < 0.9 else None,
             f"{rng.getrandbits(160):040x}", f"{rng.getrandbits(256):064x}", 1, self.when(), n,
             rng.random() < 0.1, self.uid())
        )  # fmt: skip


def fill(conn: psycopg.Connection[Any], patients: int, seed: int) -> dict[str, int]:
    """Create the ``openmrs`` schema and load ``patients`` patients (and 1 % staff)."""
    conn.execute(DDL)
    gen = _Generator(patients, seed)
    gen.catalogues()
    gen.people()
    order = ("location", "person_attribute_type", "patient_identifier_type", "encounter_type",
             "concept_name", "person", "person_name", "person_address", "person_attribute",
             "patient", "patient_identifier", "users", "encounter", "obs")  # fmt: skip
    return copy_rows(conn, {f"openmrs.{name}": gen.t[f"openmrs.{name}"] for name in order})


SCHEMA = LabelledSchema(
    name="openmrs",
    language="English",
    shape="OpenMRS-like: person, names, addresses and attributes apart, identifiers typed by "
    "a catalogue, entity-attribute-value rows, user accounts, encounters and observations",
    truth=TRUTH,
    fill=fill,
)
