"""`scan` on the demo hospital database and on hand-made tables: verdicts, evidence, the JSON
shape, no raw value anywhere, sampling cost, the stored inventory and its diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from retention.catalog.introspect import read_catalog
from retention.discovery.engine import get_analyzer
from retention.discovery.inventory import diff, installed, latest_inventory, save_scan
from retention.discovery.model import ScanResult
from retention.discovery.names import column_evidence
from retention.discovery.sample import MAX_ROWS, sample_table
from retention.discovery.scan import scan
from retention.engines.postgresql import sample as sample_module
from retention.errors import UsageError
from retention.store.schema import migrate
from tests.fix_db import DemoTemplate, temporary_database

ROOT = Path(__file__).resolve().parent.parent

# The demo schema's personal columns and their entity (retention/demo/schema.py). Every other
# column is not personal: keys, codes, medical content, dates of events, professions.
DEMO_PERSONAL: dict[str, str] = {
    "medecins.nom": "PERSON",
    "medecins.prenom": "PERSON",
    "medecins.rpps": "FR_RPPS",
    "medecins.adeli": "FR_ADELI",
    "medecins.tel": "PHONE_NUMBER",
    "patients.nom": "PERSON",
    "patients.nom_jeune_fille": "PERSON",
    "patients.prenom": "PERSON",
    "patients.naissance": "DATE_OF_BIRTH",
    "patients.lieu_naissance": "LOCATION",
    "patients.matricule": "FR_NIR",
    "patients.assure_nom": "PERSON",
    "patients.assure_prenom": "PERSON",
    "patients.assure_naissance": "DATE_OF_BIRTH",
    "patients.assure_matricule": "FR_NIR",
    "patients.adresse": "ADDRESS",
    "patients.cp": "FR_POSTAL_CODE",
    "patients.ville": "LOCATION",
    "patients.tel": "PHONE_NUMBER",
    "patients.tel_portable": "PHONE_NUMBER",
    "patients.email": "EMAIL_ADDRESS",
    "patients.rques": "FREE_TEXT_PERSONAL",  # "Prévenir fils Jules COUTURIER au 07..."
    "contacts_urgence.nom": "PERSON",
    "contacts_urgence.prenom": "PERSON",
    "contacts_urgence.tel": "PHONE_NUMBER",
    "fichiers.file_name": "FREE_TEXT_PERSONAL",  # "ecg_DUPONT.png"
    "user_log.extra": "FREE_TEXT_PERSONAL",  # old values: names, phones, e-mails
    "ins_patients.ins_nir": "FR_INS",
}


@pytest.fixture(scope="module")
def demo_url(pg_admin_url: str, demo_template: DemoTemplate) -> Iterator[str]:
    """A copy of the demo database shared by the tests of this module that only read it."""
    with temporary_database(pg_admin_url, template=demo_template.dbname) as url:
        yield url


@pytest.fixture(scope="module")
def demo_scan(demo_url: str) -> ScanResult:
    """One scan of the demo database, shared by the tests that only read it."""
    get_analyzer()
    with psycopg.connect(demo_url, autocommit=True) as conn:
        return scan(conn, examples=True)


def _verdicts(result: ScanResult) -> dict[str, str | None]:
    return {f"{c.table}.{c.column}": c.entity for c in result.columns}


def test_demo_schema_personal_columns_are_exactly_found(demo_scan: ScanResult) -> None:
    found = {k: v for k, v in _verdicts(demo_scan).items() if v is not None}
    assert found == DEMO_PERSONAL


def test_every_column_of_the_demo_is_judged(demo_scan: ScanResult, demo_url: str) -> None:
    with psycopg.connect(demo_url) as conn:
        catalog = read_catalog(conn)
    expected = {(t.schema, t.name, c) for t in catalog.tables.values() for c in t.columns}
    assert {c.key for c in demo_scan.columns} == expected


def test_keys_booleans_and_event_dates_are_not_personal(demo_scan: ScanResult) -> None:
    verdicts = {f"{c.table}.{c.column}": c for c in demo_scan.columns}
    for name in ("patients.patient_id", "sejours.patient_id", "user_log.object_id"):
        assert verdicts[name].entity is None
        assert verdicts[name].evidence["type"] == "key"
    for name in ("patients.deces", "patients.created_at", "sejours.entree"):
        assert verdicts[name].entity is None
        assert verdicts[name].evidence["type"] == "date"


def test_evidence_gives_name_match_and_share_of_values(demo_scan: ScanResult) -> None:
    verdicts = {f"{c.table}.{c.column}": c for c in demo_scan.columns}
    tel = verdicts["patients.tel"]
    assert tel.evidence["name"]["entity"] == "PHONE_NUMBER"
    assert tel.evidence["sample"]["covered"]["PHONE_NUMBER"] >= 0.95
    assert tel.score >= 0.9
    rques = verdicts["patients.rques"].evidence["sample"]["mentioned"]
    assert rques["PERSON"] > 0.3 and rques["PHONE_NUMBER"] > 0.3


def test_json_shape_is_stable(demo_scan: ScanResult) -> None:
    document = json.loads(json.dumps(demo_scan.to_json()))
    assert set(document) == {"scanned_at", "columns"}
    for column in document["columns"]:
        assert set(column) == {"schema", "table", "column", "entity", "score", "evidence"}
        assert isinstance(column["score"], float | int)
    nom = next(c for c in document["columns"] if (c["table"], c["column"]) == ("patients", "nom"))
    assert nom["schema"] == "public" and nom["entity"] == "PERSON"


def test_no_raw_value_in_output_or_examples(demo_scan: ScanResult, demo_url: str) -> None:
    with psycopg.connect(demo_url) as conn:
        values = [
            str(v)
            for query in (
                "SELECT nom FROM patients",
                "SELECT prenom FROM patients",
                "SELECT email FROM patients WHERE email IS NOT NULL",
                "SELECT tel_portable FROM patients WHERE tel_portable IS NOT NULL",
                "SELECT matricule FROM patients WHERE matricule IS NOT NULL",
                "SELECT rques FROM patients WHERE rques IS NOT NULL",
                "SELECT adresse FROM patients WHERE adresse IS NOT NULL",
            )
            for (v,) in conn.execute(query)
        ]
    output = json.dumps(demo_scan.to_json(examples=True), ensure_ascii=False)
    leaked = [v for v in values if len(v) >= 4 and v in output]
    assert leaked == []
    examples = {f"{c.table}.{c.column}": c.examples for c in demo_scan.columns}
    assert examples["patients.email"] and all("***" in e for e in examples["patients.email"])


def test_scan_of_one_table_and_unknown_table(demo_conn: psycopg.Connection[TupleRow]) -> None:
    result = scan(demo_conn, tables=["public.medecins"])
    assert {c.table for c in result.columns} == {"medecins"}
    with pytest.raises(UsageError, match="unknown table 'patient'"):
        scan(demo_conn, tables=["patient"])
    with pytest.raises(UsageError, match="no table to scan in schema 'dpi'"):
        scan(demo_conn, schemas=["dpi"])


def test_english_and_abbreviated_names(conn: psycopg.Connection[TupleRow]) -> None:
    conn.execute("""
        CREATE TABLE people (id serial PRIMARY KEY, first_name text, "lastName" text,
                             birth_date date, phone text, e_mail text, zip text, notes text,
                             weight_kg numeric, active boolean);
        INSERT INTO people (first_name, "lastName", birth_date, phone, e_mail, zip, notes,
                            weight_kg, active)
        SELECT (ARRAY['Marie', 'Jean', 'Louise', 'Hugo', 'Chloé', 'Karim', 'Inès'])[1 + i % 7],
               (ARRAY['Martin', 'Bernard', 'Nguyen', 'Le Goff', 'Diallo', 'Moreau'])[1 + i % 6]
                   || CASE WHEN i % 7 = 0 THEN '-Petit' ELSE '' END,
               date '1950-01-01' + i * 100, '06 12 34 56 ' || lpad((i % 100)::text, 2, '0'),
               'user' || i || '@example.org', lpad((35000 + i)::text, 5, '0'),
               CASE WHEN i % 3 = 0
                    THEN 'Call his wife Mary SMITH at 06 11 22 33 ' || lpad((i % 100)::text, 2, '0')
                    ELSE 'Stable, no complaint' END,
               70 + i % 20, i % 2 = 0
        FROM generate_series(1, 200) i;
    """)
    verdicts = {c.column: c.entity for c in scan(conn).columns}
    assert verdicts == {
        "id": None, "first_name": "PERSON", "lastName": "PERSON",
        "birth_date": "DATE_OF_BIRTH", "phone": "PHONE_NUMBER", "e_mail": "EMAIL_ADDRESS",
        "zip": "FR_POSTAL_CODE", "notes": "FREE_TEXT_PERSONAL", "weight_kg": None,
        "active": None,
    }  # fmt: skip


def test_organisation_contact_details_are_not_personal(conn: psycopg.Connection[TupleRow]) -> None:
    conn.execute("""
        CREATE TABLE etablissements (id serial PRIMARY KEY, nom text, tel text, finess text);
        INSERT INTO etablissements (nom, tel, finess) VALUES
            ('CHU de Rennes', '02 99 28 43 21', '350005179'),
            ('Clinique Saint-Yves', '02 99 26 26 00', '350002812'),
            ('Hôpital Sud', '02 99 26 71 00', '350000030');
    """)
    verdicts = {c.column: c for c in scan(conn).columns}
    assert all(v.entity is None for v in verdicts.values())
    assert "organisation" in verdicts["tel"].evidence["reason"]


def test_locked_table_is_judged_by_its_names(
    conn: psycopg.Connection[TupleRow], db_url: str
) -> None:
    # No column default: reading the catalogue then takes no lock on the table.
    conn.execute("CREATE TABLE annuaire (id int PRIMARY KEY, nom text, email text, info text)")
    conn.execute("INSERT INTO annuaire VALUES (1, 'DUPONT', 'a.dupont@orange.fr', NULL)")
    with psycopg.connect(db_url) as locker:
        locker.execute("LOCK TABLE annuaire IN ACCESS EXCLUSIVE MODE")
        result = scan(conn, lock_timeout_ms=100)
        locker.rollback()
    verdicts = {c.column: c for c in result.columns}
    assert verdicts["email"].entity == "EMAIL_ADDRESS"
    assert verdicts["nom"].entity == "PERSON"
    assert verdicts["info"].entity is None
    assert "timed out" in verdicts["email"].evidence["sample"]["error"]


def test_sample_reads_a_fixed_number_of_rows(conn: psycopg.Connection[TupleRow]) -> None:
    conn.execute("CREATE TABLE big (id int PRIMARY KEY, label text)")
    conn.execute("INSERT INTO big SELECT i, 'value ' || i FROM generate_series(1, 300000) i")
    conn.execute("CREATE TABLE small (id int PRIMARY KEY, label text)")
    conn.execute("INSERT INTO small SELECT i, 'value ' || i FROM generate_series(1, 500) i")
    conn.execute("ANALYZE big, small")
    catalog = read_catalog(conn)
    big = catalog.tables[("public", "big")]
    small = catalog.tables[("public", "small")]
    sampled = sample_table(conn, big, [big.columns["label"]], values=200)
    assert sampled.method in ("tablesample", "tablesample+scan")
    assert len(sampled.columns["label"].values) >= 200 and sampled.rows <= MAX_ROWS
    assert sample_table(conn, small, [small.columns["label"]], values=200).method == "scan"


def test_inventory_is_stored_and_diffed(demo_conn: psycopg.Connection[TupleRow]) -> None:
    migrate(demo_conn)
    assert installed(demo_conn)
    first = scan(demo_conn, tables=["patients", "contacts_urgence"])
    first_id = save_scan(demo_conn, first)
    demo_conn.execute("UPDATE patients SET rques = 'RAS'")
    demo_conn.execute("ALTER TABLE contacts_urgence ADD COLUMN courriel text")
    demo_conn.execute(
        "UPDATE contacts_urgence SET courriel = 'contact' || contact_id || '@laposte.net'"
    )
    second = scan(demo_conn, tables=["patients", "contacts_urgence"])
    changes = diff(latest_inventory(demo_conn), second.columns)
    assert [(c.label, c.before, c.after, c.new) for c in changes] == [
        ("public.contacts_urgence.courriel", None, "EMAIL_ADDRESS", True),
        ("public.patients.rques", "FREE_TEXT_PERSONAL", None, False),
    ]
    save_scan(demo_conn, second)
    latest = {v.key: v for v in latest_inventory(demo_conn)}
    assert latest[("public", "patients", "rques")].entity is None
    assert latest[("public", "patients", "nom")].entity == "PERSON"
    before = {v.key: v for v in latest_inventory(demo_conn, before=first_id + 1)}
    assert before[("public", "patients", "rques")].entity == "FREE_TEXT_PERSONAL"
    demo_conn.execute("ALTER TABLE patients DROP COLUMN email")
    assert ("public", "patients", "email") not in {v.key for v in latest_inventory(demo_conn)}
    stored = demo_conn.execute("SELECT evidence::text FROM retention.scan_columns").fetchall()
    assert not any("@laposte.net" in text for (text,) in stored)


# `retention scan` as registered by retention/cli/scan.py, run the way main() runs commands.
_CLI = """
import argparse, sys
from retention.cli import scan
from retention.log import setup_logging
from retention.settings import load_settings
parser = argparse.ArgumentParser(prog="retention")
scan.register(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
setup_logging("WARNING")
sys.exit(args.handler(args, load_settings()))
"""


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    environ["RETENTION_DATABASE_URL"] = url
    code = _CLI
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=environ, cwd=ROOT, timeout=300, check=False)  # fmt: skip


def test_cli_scan_shows_changes_and_masked_examples(demo_db_url: str) -> None:
    with psycopg.connect(demo_db_url, autocommit=True) as conn:
        migrate(conn)
        save_scan(conn, scan(conn, tables=["patients"]))
        conn.execute("ALTER TABLE patients ADD COLUMN mail_pro text")
        conn.execute("UPDATE patients SET mail_pro = 'p' || patient_id || '@chu.fr'")
    result = _cli("scan", "--diff", "--show-examples", "--table", "patients", url=demo_db_url)
    assert result.returncode == 0, result.stderr
    assert "+ public.patients.mail_pro: new column, EMAIL_ADDRESS" in result.stdout
    assert "examples: p***@c***.fr" in result.stdout
    assert "Traceback" not in result.stderr
    with psycopg.connect(demo_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM retention.scans").fetchone() == (2,)


@pytest.mark.parametrize(
    ("table", "column", "entity"),
    [
        ("patients", "nom", "PERSON"),
        ("Personne", "NomUsuel", "PERSON"),
        ("staff", "first_name", "PERSON"),
        ("t", "nom_jeune_fille", "PERSON"),
        ("services", "nom", None),  # a label in a table of things
        ("fichiers", "file_name", None),
        ("t", "dt_nais", "DATE_OF_BIRTH"),
        ("t", "birthDate", "DATE_OF_BIRTH"),
        ("t", "lieu_naissance", "LOCATION"),
        ("t", "tel_portable", "PHONE_NUMBER"),
        ("t", "telecharge", None),
        ("t", "adresse_mail", "EMAIL_ADDRESS"),
        ("t", "adresse_ip", "IP_ADDRESS"),
        ("t", "adr1", "ADDRESS"),
        ("t", "code_post", "FR_POSTAL_CODE"),
        ("t", "num_secu", "FR_NIR"),
        ("t", "ins_nir", "FR_INS"),
        ("t", "rpps", "FR_RPPS"),
        ("t", "rques", "FREE_TEXT_PERSONAL"),
        ("t", "specialite", None),
        ("users", "username", "USERNAME"),
        ("t", "user_login", "USERNAME"),
        ("Patients", "Forenames", "PERSON"),
        ("Patients", "PreviousSurname", "PERSON"),
        ("t", "mrn", "PERSON_ID"),
        ("t", "medical_record_number", "PERSON_ID"),
        ("t", "NHSNumber", "UK_NHS"),
        ("t", "county_district", "LOCATION"),
        ("person_attribute_type", "name", None),  # a catalogue of types: names a kind
    ],
)
def test_column_names_in_french_and_english(table: str, column: str, entity: str | None) -> None:
    evidence = column_evidence(table, column)
    assert (evidence.entity if evidence else None) == entity


def test_an_unlucky_page_sample_is_topped_up(
    conn: psycopg.Connection[TupleRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TABLESAMPLE SYSTEM can return no page at all; the sample is then read from the table's
    start instead of reporting a large table as holding no values."""
    conn.execute("CREATE TABLE big (id int PRIMARY KEY, label text)")
    conn.execute("INSERT INTO big SELECT i, 'value ' || i FROM generate_series(1, 300000) i")
    conn.execute("ANALYZE big")
    big = read_catalog(conn).tables[("public", "big")]
    real = sample_module._query

    def empty_sample(*args: Any) -> tuple[str, Any]:
        method, _unused = real(*args)
        assert method == "tablesample"
        return method, sql.SQL("SELECT left(label, 10) FROM big TABLESAMPLE SYSTEM (0)")

    monkeypatch.setattr(sample_module, "_query", empty_sample)
    sampled = sample_table(conn, big, [big.columns["label"]], values=200)
    assert sampled.method == "tablesample+scan"
    assert len(sampled.columns["label"].values) >= 200


def _scan_columns(conn: psycopg.Connection[TupleRow], **kwargs: Any) -> dict[str, Any]:
    return {f"{c.table}.{c.column}": c for c in scan(conn, **kwargs).columns}


def test_identifiers_in_a_table_of_identifiers_are_personal_and_types_are_not(
    conn: psycopg.Connection[TupleRow],
) -> None:
    """A medical record number in the generic column of a table of identifiers is personal;
    the catalogue naming the kinds of identifier is not, nor UUIDs stored as text."""
    conn.execute("""
        CREATE TABLE patient_identifier_type (id serial PRIMARY KEY, name text,
                                              description text);
        INSERT INTO patient_identifier_type (name, description) VALUES
            ('OpenMRS ID', 'Unique number used in OpenMRS'),
            ('Old Identification Number', 'Number given out prior to the OpenMRS system'),
            ('Previous ID', 'Identifier of a merged record'),
            ('Home phone', 'Landline at the home of the person'),
            ('Name of the next of kin', 'Who to call in an emergency');
        CREATE TABLE patient_identifier (patient_identifier_id serial PRIMARY KEY,
            patient_id int, identifier varchar(50), identifier_type int, uuid char(38));
        INSERT INTO patient_identifier (patient_id, identifier, identifier_type, uuid)
        SELECT i, upper(substr(md5(i::text), 1, 5)) || '-' || (i % 10), 1 + i % 3,
               gen_random_uuid()::text
        FROM generate_series(1, 300) i;
    """)
    verdicts = _scan_columns(conn)
    assert verdicts["patient_identifier.identifier"].entity == "PERSON_ID"
    assert verdicts["patient_identifier.uuid"].entity is None
    assert "UUIDs" in verdicts["patient_identifier.uuid"].evidence["reason"]
    for column in ("name", "description"):
        verdict = verdicts[f"patient_identifier_type.{column}"]
        assert verdict.entity is None, verdict.evidence["reason"]


def test_a_value_column_of_typed_attributes_is_personal(
    conn: psycopg.Connection[TupleRow],
) -> None:
    """Phones on some rows, e-mails on others, coded answers on the rest: no kind covers most
    values, together they do."""
    conn.execute("""
        CREATE TABLE person_attribute (person_attribute_id serial PRIMARY KEY, person_id int,
                                       value varchar(50), person_attribute_type_id int);
        INSERT INTO person_attribute (person_id, value, person_attribute_type_id)
        SELECT i, CASE WHEN i % 10 < 4
                       THEN '06 ' || lpad((i / 100)::text, 2, '0') || ' '
                            || lpad((i % 100)::text, 2, '0') || ' 34 56'
                       WHEN i % 10 < 8 THEN 'contact' || i || '@orange.fr'
                       ELSE (1000 + i)::text END, i % 10
        FROM generate_series(1, 400) i;
    """)
    verdict = _scan_columns(conn)["person_attribute.value"]
    assert verdict.entity == "PHONE_NUMBER"
    assert "several kinds" in verdict.evidence["reason"]


def test_login_names_are_personal(conn: psycopg.Connection[TupleRow]) -> None:
    conn.execute("""
        CREATE TABLE users (user_id serial PRIMARY KEY, system_id varchar(50),
                            username varchar(50), password varchar(128), last_login timestamp);
        INSERT INTO users (system_id, username, password, last_login)
        SELECT CASE i WHEN 1 THEN 'admin' WHEN 2 THEN 'daemon' ELSE i || '-' || i % 10 END,
               (ARRAY['jdupont', 'mmartin', 'a.leroy', 'bnguyen', 'cpetit'])[1 + i % 5] || i,
               md5(i::text) || md5((i + 1)::text), now() - i * interval '1 hour'
        FROM generate_series(1, 60) i;
    """)
    verdicts = _scan_columns(conn)
    assert verdicts["users.username"].entity == "USERNAME"
    assert verdicts["users.system_id"].entity == "USERNAME"  # the account's other login
    assert verdicts["users.password"].entity is None
    assert verdicts["users.last_login"].entity is None


def test_labels_of_things_are_not_free_text(conn: psycopg.Connection[TupleRow]) -> None:
    """Wards named after people: their names label places, they do not mention a person."""
    conn.execute("""
        CREATE TABLE patients (id serial PRIMARY KEY, nom text, prenom text);
        INSERT INTO patients (nom, prenom)
        SELECT (ARRAY['DUPONT', 'MARTIN', 'CHARCOT', 'PASTEUR', 'LAENNEC', 'BOUTIN', 'LEGRIS',
                      'NGUYEN', 'DIALLO', 'KERGUELEN', 'POUPARD', 'VASSEUR'])[1 + i % 12],
               (ARRAY['Marie', 'Jean', 'Louise', 'Hugo'])[1 + i % 4]
        FROM generate_series(1, 100) i;
        CREATE TABLE location (location_id serial PRIMARY KEY, name text);
        INSERT INTO location (name) VALUES ('Pavillon Charcot'), ('Salle Pasteur'),
            ('Unité Laennec'), ('Bâtiment Dupont'), ('Hall Martin'), ('Pharmacie');
    """)
    verdicts = _scan_columns(conn)
    assert verdicts["patients.nom"].entity == "PERSON"
    assert verdicts["location.name"].entity is None


def test_postal_codes_of_other_countries_by_name(conn: psycopg.Connection[TupleRow]) -> None:
    conn.execute("""
        CREATE TABLE "Patients" (id serial PRIMARY KEY, "Postcode" varchar(8), "County" text);
        INSERT INTO "Patients" ("Postcode", "County")
        SELECT (ARRAY['SW1A', 'LS1', 'BS8', 'M14', 'EH10'])[1 + i % 5] || ' '
                   || (i % 9 + 1) || (ARRAY['AB', 'DJ', 'NT', 'QP'])[1 + i % 4],
               (ARRAY['Kent', 'Essex', 'Surrey', 'Devon', 'Cornwall', 'Norfolk', 'Dorset',
                      'Somerset', 'Cumbria', 'Durham', 'Suffolk'])[1 + i % 11]
        FROM generate_series(1, 200) i;
    """)
    verdicts = _scan_columns(conn)
    assert verdicts["Patients.Postcode"].entity == "POSTAL_CODE"
    assert verdicts["Patients.County"].entity == "LOCATION"


def test_tables_are_sampled_side_by_side_with_the_same_verdicts(
    conn: psycopg.Connection[TupleRow], db_url: str
) -> None:
    for n in range(3):
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id serial PRIMARY KEY, email text, tel text, poids int);"
                "INSERT INTO {} (email, tel, poids) SELECT 'p' || i || '@free.fr', "
                "'06 11 22 33 ' || lpad((i % 100)::text, 2, '0'), i FROM generate_series(1, 50) i"
            ).format(sql.Identifier(f"t{n}"), sql.Identifier(f"t{n}"))
        )
    one = scan(conn)
    opened: list[psycopg.Connection[TupleRow]] = []

    def connect() -> psycopg.Connection[TupleRow]:
        opened.append(psycopg.connect(db_url, autocommit=True))
        return opened[-1]

    two = scan(conn, workers=2, connect=connect)
    assert [(c.label, c.entity) for c in two.columns] == [(c.label, c.entity) for c in one.columns]
    assert len(opened) == 1 and opened[0].closed  # one more connection, closed at the end
    assert [t.label for t in two.tables] == ["public.t0", "public.t1", "public.t2"]
    assert all(t.rows == 50 and t.method == "scan" for t in two.tables)
