"""An English general practice system (UK), unlike the French ``dpi`` schema and OpenMRS.

One wide patient table in CamelCase (``"NHSNumber"``, ``"Forenames"``, ``"DateOfBirth"``,
``"Postcode"``), UK formats (NHS numbers with their mod-11 key, postcodes such as
``SW1A 1AA``, phones such as ``020 7946 0018``), a practice and its staff with logins, an
entity-attribute-value table of contact details typed by a catalogue (``"ContactTypes"``:
"Home telephone", "Next of kin name"), consultations with free-text notes, coded problems,
repeat medication, appointments, and an audit trail of logins and workstation addresses.
Data from Faker ``en_GB``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from random import Random
from typing import Any

import psycopg

from eval.labelled import LabelledSchema, Rows, copy_rows, valid_phone

DDL = """
CREATE SCHEMA gp;
SET search_path = gp;

CREATE TABLE "Practice" (
    "PracticeCode" varchar(6) PRIMARY KEY, "Name" text NOT NULL, "AddressLine1" text,
    "Town" text, "Postcode" varchar(8), "Telephone" varchar(20), "OdsRegion" varchar(3)
);
CREATE TABLE "Staff" (
    "StaffId" serial PRIMARY KEY, "PracticeCode" varchar(6) REFERENCES "Practice",
    "Title" varchar(10), "Forename" text, "Surname" text, "Role" text, "Login" varchar(40),
    "Active" boolean NOT NULL DEFAULT true, "StartDate" date
);
CREATE TABLE "Patients" (
    "PatientGuid" uuid PRIMARY KEY, "NHSNumber" char(10), "Title" varchar(10),
    "Forenames" text NOT NULL, "Surname" text NOT NULL, "PreviousSurname" text,
    "DateOfBirth" date NOT NULL, "Sex" char(1), "AddressLine1" text, "AddressLine2" text,
    "Town" text, "County" text, "Postcode" varchar(8), "HomePhone" varchar(20),
    "MobilePhone" varchar(20), "EmailAddress" text, "RegisteredDate" date NOT NULL,
    "UsualGP" int REFERENCES "Staff", "EthnicityCode" varchar(3),
    "Deceased" boolean NOT NULL DEFAULT false
);
CREATE TABLE "ContactTypes" (
    "Code" varchar(4) PRIMARY KEY, "Description" text NOT NULL, "Channel" varchar(10)
);
CREATE TABLE "PatientContacts" (
    "ContactId" bigserial PRIMARY KEY, "PatientGuid" uuid NOT NULL REFERENCES "Patients",
    "ContactType" varchar(4) NOT NULL REFERENCES "ContactTypes", "Value" text NOT NULL,
    "Preferred" boolean NOT NULL DEFAULT false
);
CREATE TABLE "Consultations" (
    "ConsultationId" bigserial PRIMARY KEY, "PatientGuid" uuid NOT NULL REFERENCES "Patients",
    "StaffId" int REFERENCES "Staff", "ConsultedAt" timestamp NOT NULL,
    "ConsultationType" varchar(20), "DurationMinutes" smallint, "Notes" text
);
CREATE TABLE "Problems" (
    "ProblemId" bigserial PRIMARY KEY, "PatientGuid" uuid NOT NULL REFERENCES "Patients",
    "SnomedCode" varchar(18), "Term" text, "OnsetDate" date, "Status" varchar(10)
);
CREATE TABLE "Medications" (
    "MedicationId" bigserial PRIMARY KEY, "PatientGuid" uuid NOT NULL REFERENCES "Patients",
    "DrugName" text, "Dosage" text, "Quantity" smallint, "IssuedOn" date,
    "IsRepeat" boolean NOT NULL DEFAULT false
);
CREATE TABLE "Appointments" (
    "AppointmentId" bigserial PRIMARY KEY, "PatientGuid" uuid REFERENCES "Patients",
    "SlotStart" timestamp NOT NULL, "StaffId" int REFERENCES "Staff", "Status" varchar(12),
    "BookingNotes" text
);
CREATE TABLE "AuditTrail" (
    "AuditId" bigserial PRIMARY KEY, "UserLogin" varchar(40) NOT NULL,
    "EventTime" timestamptz NOT NULL, "Action" varchar(20) NOT NULL,
    "PatientGuid" uuid, "WorkstationIp" inet
);
RESET search_path;
"""

TRUTH: dict[str, tuple[str, ...]] = {
    "gp.Staff.Forename": ("PERSON",),
    "gp.Staff.Surname": ("PERSON",),
    "gp.Staff.Login": ("USERNAME", "PERSON"),
    "gp.Patients.NHSNumber": ("UK_NHS",),
    "gp.Patients.Forenames": ("PERSON",),
    "gp.Patients.Surname": ("PERSON",),
    "gp.Patients.PreviousSurname": ("PERSON",),
    "gp.Patients.DateOfBirth": ("DATE_OF_BIRTH",),
    "gp.Patients.AddressLine1": ("ADDRESS",),
    "gp.Patients.AddressLine2": ("ADDRESS",),
    "gp.Patients.Town": ("LOCATION",),
    "gp.Patients.County": ("LOCATION",),
    "gp.Patients.Postcode": ("POSTAL_CODE",),
    "gp.Patients.HomePhone": ("PHONE_NUMBER",),
    "gp.Patients.MobilePhone": ("PHONE_NUMBER",),
    "gp.Patients.EmailAddress": ("EMAIL_ADDRESS",),
    # phones, e-mails, next of kin's names: one value column for every kind of contact
    "gp.PatientContacts.Value": ("FREE_TEXT_PERSONAL", "PHONE_NUMBER", "EMAIL_ADDRESS", "PERSON"),
    "gp.Consultations.Notes": ("FREE_TEXT_PERSONAL",),
    "gp.Appointments.BookingNotes": ("FREE_TEXT_PERSONAL",),
    "gp.AuditTrail.UserLogin": ("USERNAME", "PERSON"),
    "gp.AuditTrail.WorkstationIp": ("IP_ADDRESS",),
}

_CONTACT_TYPES = (
    ("HTEL", "Home telephone", "phone"),
    ("MTEL", "Mobile telephone", "phone"),
    ("WTEL", "Work telephone", "phone"),
    ("EML", "Email address", "email"),
    ("NOKN", "Next of kin name", "text"),
    ("NOKT", "Next of kin telephone", "phone"),
    ("CARR", "Carer's name and relationship", "text"),
)
_ROLES = ("GP Partner", "Salaried GP", "Practice Nurse", "Healthcare Assistant", "Receptionist",
          "Practice Manager", "Clinical Pharmacist")  # fmt: skip
_PROBLEMS = (
    ("38341003", "Hypertensive disorder"), ("44054006", "Type 2 diabetes mellitus"),
    ("195967001", "Asthma"), ("13645005", "Chronic obstructive lung disease"),
    ("35489007", "Depressive disorder"), ("49436004", "Atrial fibrillation"),
    ("396275006", "Osteoarthritis"), ("40930008", "Hypothyroidism"),
)  # fmt: skip
_DRUGS = (
    ("Amlodipine 5mg tablets", "One tablet daily"), ("Metformin 500mg tablets", "One twice a day"),
    ("Salbutamol 100micrograms inhaler", "Two puffs when required"),
    ("Sertraline 50mg tablets", "One tablet daily"), ("Apixaban 5mg tablets", "One twice a day"),
    ("Levothyroxine 50microgram tablets", "One each morning"),
    ("Atorvastatin 20mg tablets", "One at night"), ("Ramipril 2.5mg capsules", "One daily"),
)  # fmt: skip
_NOTES = (
    "BP 138/84. Continue amlodipine, review in 3 months.",
    "Cough 5 days, chest clear, viral URTI. Safety-netting advice given.",
    "Diabetic review: HbA1c 52, feet checked, retinal screening due.",
    "Low mood, PHQ-9 14. Started sertraline, review 2 weeks.",
    "Knee pain, OA likely. Physio referral.",
    "Medication review done, no changes.",
)
_PERSONAL_NOTES = (
    "Attended with daughter {name}, who asks to be called on {phone}.",
    "Carer {name} ({phone}) reports more falls at home.",
    "Wife {name} phoned, worried about memory. Call back on {phone}.",
    "Letter copied to Mrs {surname} at her request.",
    "Son {name} has lasting power of attorney, contact {email}.",
)
_BOOKING = ("Flu jab", "Smear test", "Bloods", "Review", "Telephone consultation", "Dressing")
_PERSONAL_BOOKING = (
    "Call {name} on {phone} to confirm",
    "Booked by {name} (husband)",
    "Interpreter needed, contact {phone}",
)
_LANDLINES = ("020 7946 0###", "0161 496 0###", "0113 496 0###", "0117 496 0###",
              "01632 96####", "0131 496 0###")  # fmt: skip
_MOBILES = ("07700 9#####", "07#########", "+44 7### ######")


class _Generator:
    def __init__(self, patients: int, seed: int) -> None:
        from faker import Faker

        self.rng = Random(seed)  # noqa: S311  (reproducible data, not secrets)
        self.fake = Faker("en_GB")
        self.fake.seed_instance(seed)
        self.patients = patients
        self.last = [self.fake.last_name() for _ in range(1500)]
        self.first = [self.fake.first_name() for _ in range(800)]
        self.towns = [self.fake.city() for _ in range(300)]
        self.t: Rows = {}

    def phone(self, mobile: bool | None = None) -> str:
        mobile = self.rng.random() < 0.6 if mobile is None else mobile
        return valid_phone(self.rng, "GB", _MOBILES if mobile else _LANDLINES)

    def name(self) -> str:
        return f"{self.rng.choice(self.first)} {self.rng.choice(self.last)}"

    def email(self, first: str, last: str) -> str:
        domain = self.rng.choice(("gmail.com", "outlook.com", "btinternet.com", "yahoo.co.uk"))
        return f"{first}.{last}{self.rng.randint(1, 99)}@{domain}".lower().replace(" ", "")

    def nhs(self) -> str:
        while True:
            body = [self.rng.randint(4, 7), *(self.rng.randrange(10) for _ in range(8))]
            check = 11 - sum(d * (10 - i) for i, d in enumerate(body)) % 11
            if check == 11:
                check = 0
            if check != 10:
                return "".join(map(str, body)) + str(check)

    def when(self, start: date = date(2010, 1, 1), days: int = 5800) -> datetime:
        day = start + timedelta(days=self.rng.randrange(days))
        return datetime(day.year, day.month, day.day, self.rng.randrange(8, 18), 0)

    def practice(self) -> None:
        rng = self.rng
        self.t["gp.Practice"] = [
            ("A81001", "The Health Centre", "1 Market Street", "Leeds", "LS1 6AB",
             "0113 496 0000", "Y63"),
            ("A81002", "Riverside Surgery", "24 Quay Road", "Bristol", "BS1 4DJ",
             "0117 496 0123", "Y58"),
        ]  # fmt: skip
        self.t["gp.ContactTypes"] = list(_CONTACT_TYPES)
        self.t["gp.Staff"] = []
        for n in range(1, max(15, self.patients // 150) + 1):
            first, last = rng.choice(self.first), rng.choice(self.last)
            self.t["gp.Staff"].append(
                (n, rng.choice(("A81001", "A81002")), rng.choice(("Dr", "Mrs", "Mr", "Ms")),
                 first, last, rng.choice(_ROLES), f"{first[0]}{last}{n}".lower(),
                 rng.random() < 0.9, self.when().date())
            )  # fmt: skip

    def people(self) -> None:
        for table in ("Patients", "PatientContacts", "Consultations", "Problems",
                      "Medications", "Appointments", "AuditTrail"):  # fmt: skip
            self.t[f"gp.{table}"] = []
        for _ in range(self.patients):
            self.patient()

    def patient(self) -> None:
        rng, t = self.rng, self.t
        guid = uuid.UUID(int=rng.getrandbits(128), version=4)
        sex = rng.choice("MF")
        first, last = rng.choice(self.first), rng.choice(self.last)
        if rng.random() < 0.3:
            first = f"{first} {rng.choice(self.first)}"
        registered = self.when().date()
        t["gp.Patients"].append(
            (guid, self.nhs() if rng.random() < 0.97 else None,
             rng.choice(("Mr", "Mrs", "Miss", "Ms", "Dr", None)), first, last,
             rng.choice(self.last) if sex == "F" and rng.random() < 0.3 else None,
             date(1930, 1, 1) + timedelta(days=rng.randrange(33000)), sex,
             self.fake.street_address().split("\n")[0],
             self.fake.secondary_address() if rng.random() < 0.25 else None,
             rng.choice(self.towns), self.fake.county(), self.fake.postcode(),
             self.phone(False) if rng.random() < 0.5 else None,
             self.phone(True) if rng.random() < 0.85 else None,
             self.email(first.split()[0], last) if rng.random() < 0.6 else None,
             registered, rng.randint(1, len(t["gp.Staff"])),
             rng.choice(("A", "B", "C", "D", "E", "F", "G", "H", "J", "Z")),
             rng.random() < 0.02)
        )  # fmt: skip
        self.contacts(guid, first, last)
        self.clinical(guid)

    def contacts(self, guid: uuid.UUID, first: str, last: str) -> None:
        rng = self.rng
        for code, _, channel in rng.sample(_CONTACT_TYPES, rng.randint(0, 3)):
            if channel == "phone":
                value = self.phone()
            elif channel == "email":
                value = self.email(first.split(maxsplit=1)[0], last)
            else:
                value = self.name() + (" (daughter)" if rng.random() < 0.3 else "")
            rows = self.t["gp.PatientContacts"]
            rows.append((len(rows) + 1, guid, code, value, rng.random() < 0.3))

    def clinical(self, guid: uuid.UUID) -> None:
        rng, t = self.rng, self.t
        staff = len(t["gp.Staff"])
        for _ in range(rng.choice((0, 1, 2, 2, 3, 5))):
            note = rng.choice(_NOTES)
            if rng.random() < 0.2:
                note = self.fill(rng.choice(_PERSONAL_NOTES))
            at = self.when()
            t["gp.Consultations"].append(
                (len(t["gp.Consultations"]) + 1, guid, rng.randint(1, staff), at,
                 rng.choice(("Surgery", "Telephone", "Home visit", "Video")),
                 rng.choice((10, 10, 15, 20)), note)
            )  # fmt: skip
            login = t["gp.Staff"][rng.randrange(staff)][6]
            for action in ("OPEN_RECORD", rng.choice(("PRINT", "EDIT", "VIEW_LETTER"))):
                t["gp.AuditTrail"].append(
                    (len(t["gp.AuditTrail"]) + 1, login, at, action, guid,
                     f"10.{rng.randint(10, 20)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}")
                )  # fmt: skip
        for code, term in rng.sample(_PROBLEMS, rng.randint(0, 2)):
            t["gp.Problems"].append(
                (len(t["gp.Problems"]) + 1, guid, code, term, self.when().date(),
                 rng.choice(("Active", "Past")))
            )  # fmt: skip
        for drug, dosage in rng.sample(_DRUGS, rng.randint(0, 3)):
            t["gp.Medications"].append(
                (len(t["gp.Medications"]) + 1, guid, drug, dosage, rng.choice((28, 56, 84)),
                 self.when().date(), rng.random() < 0.6)
            )  # fmt: skip
        if rng.random() < 0.5:
            booking = rng.choice(_BOOKING)
            if rng.random() < 0.15:
                booking = self.fill(rng.choice(_PERSONAL_BOOKING))
            t["gp.Appointments"].append(
                (len(t["gp.Appointments"]) + 1, guid, self.when(), rng.randint(1, staff),
                 rng.choice(("Booked", "Attended", "DNA", "Cancelled")), booking)
            )  # fmt: skip

    def fill(self, template: str) -> str:
        first, last = self.rng.choice(self.first), self.rng.choice(self.last)
        return template.format(
            name=f"{first} {last}", surname=last, phone=self.phone(), email=self.email(first, last)
        )


def fill(conn: psycopg.Connection[Any], patients: int, seed: int) -> dict[str, int]:
    """Create the ``gp`` schema and load ``patients`` patients."""
    conn.execute(DDL)
    gen = _Generator(patients, seed)
    gen.practice()
    gen.people()
    order = ("Practice", "Staff", "Patients", "ContactTypes", "PatientContacts",
             "Consultations", "Problems", "Medications", "Appointments", "AuditTrail")  # fmt: skip
    return copy_rows(conn, {f"gp.{name}": gen.t[f"gp.{name}"] for name in order})


SCHEMA = LabelledSchema(
    name="gp",
    language="English (UK)",
    shape="UK general practice: one wide CamelCase patient table, NHS numbers, UK postcodes "
    "and phones, contact details as typed values, staff logins, an audit trail",
    truth=TRUTH,
    fill=fill,
)
