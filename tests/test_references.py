"""References the schema does not declare (retention.catalog.references): candidate columns by
name and type, the share of their values matching a key, and the classes of a polymorphic
column with their rows, on a Mediboard-like schema without foreign keys."""

from __future__ import annotations

from typing import Any

import psycopg

from retention.catalog.introspect import read_catalog
from retention.catalog.references import (
    CandidateReference,
    PolymorphicPair,
    candidate_references,
    class_match,
    class_rows,
    class_tables,
    distinct_classes,
    match_share,
    polymorphic_pairs,
)

SCHEMA = """
CREATE TABLE patients (patient_id serial PRIMARY KEY, nom text);
CREATE TABLE medecins (medecin_id serial PRIMARY KEY);
CREATE TABLE persons (code text PRIMARY KEY);
CREATE TABLE patient (id serial PRIMARY KEY);
CREATE TABLE consultation (
    consultation_id serial PRIMARY KEY, patient_id int, plageconsult_id int,
    ancien_patient_id bigint, patient_id_text_note date
);
CREATE TABLE plageconsult (plageconsult_id serial PRIMARY KEY, date date);
CREATE TABLE stays (n serial PRIMARY KEY, person_code text, patient_id text);
CREATE TABLE visits (n serial PRIMARY KEY, patient_id int REFERENCES patients, medecin_id int);
CREATE TABLE user_log (
    user_log_id serial PRIMARY KEY, object_class varchar(40), object_id int
);
CREATE INDEX ON user_log (object_class, object_id);
CREATE TABLE files (n serial PRIMARY KEY, object_class text, object_id int);
CREATE TABLE correspondant_patient (correspondant_patient_id bigint PRIMARY KEY, tel text);
CREATE TABLE patient_details (patient_id int PRIMARY KEY, groupe text);
"""


def _schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA)
    conn.execute("INSERT INTO patients (nom) SELECT 'x' FROM generate_series(1, 100)")
    conn.execute("INSERT INTO persons SELECT 'p-' || i FROM generate_series(1, 10) AS i")


def _found(conn: psycopg.Connection[Any]) -> set[tuple[str, str, str]]:
    return {
        (f"{c.table[1]}.{c.column}", f"{c.target[1]}.{c.target_key}", c.rule)
        for c in candidate_references(read_catalog(conn))
    }


def test_candidates_by_key_name_table_name_and_key_suffix(conn: psycopg.Connection[Any]) -> None:
    _schema(conn)
    found = _found(conn)
    assert ("consultation.patient_id", "patients.patient_id", "key name") in found
    assert ("consultation.patient_id", "patient.id", "table name") in found
    assert ("consultation.plageconsult_id", "plageconsult.plageconsult_id", "key name") in found
    assert ("consultation.ancien_patient_id", "patients.patient_id", "key suffix") in found
    assert ("stays.person_code", "persons.code", "table name") in found
    assert ("visits.medecin_id", "medecins.medecin_id", "key name") in found


def test_declared_keys_own_keys_and_other_types_are_no_candidates(
    conn: psycopg.Connection[Any],
) -> None:
    _schema(conn)
    columns = {column for column, _, _ in _found(conn)}
    assert "visits.patient_id" not in columns  # a foreign key already says it
    assert "patients.patient_id" not in columns  # the key itself
    assert "consultation.patient_id_text_note" not in columns  # a date holds no key
    assert "stays.patient_id" not in columns  # text cannot hold an integer key
    assert "user_log.object_id" not in columns  # `<something>_id` with a generic key 'id'
    # a table's own key named after it, even not generated: in a 1:1 table its values often
    # equal the patients' keys (an outside review: draft proposed it as a link)
    assert "correspondant_patient.correspondant_patient_id" not in columns
    found = _found(conn)  # a primary key with the key's very name stays one (a 1:1 table)
    assert ("patient_details.patient_id", "patients.patient_id", "key name") in found


def _reference(table: str, column: str, target: str, key: str) -> CandidateReference:
    return CandidateReference(("public", table), column, ("public", target), key, "key name")


def test_match_share_counts_values_matching_a_key(conn: psycopg.Connection[Any]) -> None:
    _schema(conn)
    conn.execute(  # 30 rows: 20 patients that exist, 5 that do not, 5 NULL
        "INSERT INTO consultation (patient_id) SELECT CASE WHEN i <= 20 THEN i "
        "WHEN i <= 25 THEN 1000 + i END FROM generate_series(1, 30) AS i"
    )
    reference = _reference("consultation", "patient_id", "patients", "patient_id")
    share = match_share(conn, read_catalog(conn), reference)
    assert (share.values, share.matching, share.sampled) == (25, 20, False)
    assert share.method == "every value"
    assert share.share == 0.8


def test_match_share_reads_a_bounded_number_of_values(conn: psycopg.Connection[Any]) -> None:
    _schema(conn)
    conn.execute(
        "INSERT INTO consultation (patient_id) SELECT 1 + i % 200 FROM generate_series(1, 5000) i"
    )
    reference = _reference("consultation", "patient_id", "patients", "patient_id")
    # never analysed: no estimate, read from the start up to the limit
    first = match_share(conn, read_catalog(conn), reference, limit=400)
    assert (first.values, first.matching, first.sampled) == (400, 200, True)
    assert first.method == "the first 400 values"
    conn.execute("ANALYZE consultation")
    sampled = match_share(conn, read_catalog(conn), reference, limit=400)
    assert sampled.sampled and sampled.method.startswith("a sample of random blocks")
    assert 0 < sampled.values <= 400
    assert 0 < sampled.matching < sampled.values


def test_match_share_of_an_empty_column(conn: psycopg.Connection[Any]) -> None:
    _schema(conn)
    reference = _reference("stays", "person_code", "persons", "code")
    share = match_share(conn, read_catalog(conn), reference)
    assert (share.values, share.matching, share.share) == (0, 0, None)


def _classes(conn: psycopg.Connection[Any], table: str) -> None:
    conn.execute(
        f"INSERT INTO {table} (object_class, object_id) "
        "SELECT (ARRAY['CPatient', 'CSejour', 'CConsultation'])[1 + i % 3], i "
        "FROM generate_series(1, 300) AS i"
    )
    conn.execute(f"INSERT INTO {table} (object_class, object_id) VALUES ('CFile', 1), (NULL, 2)")


def test_distinct_classes_with_and_without_an_index(conn: psycopg.Connection[Any]) -> None:
    _schema(conn)
    for table in ("user_log", "files"):  # user_log: loose index scan; files: no index
        _classes(conn, table)
        catalog = read_catalog(conn)
        found = distinct_classes(conn, catalog.tables[("public", table)], "object_class")
        assert found.values == ("CConsultation", "CFile", "CPatient", "CSejour")
        assert found.complete
        cut = distinct_classes(conn, catalog.tables[("public", table)], "object_class", limit=2)
        assert (cut.values, cut.complete) == (("CConsultation", "CFile"), False)


def test_class_rows_of_every_class_or_of_some(conn: psycopg.Connection[Any]) -> None:
    _schema(conn)
    _classes(conn, "user_log")
    log = read_catalog(conn).tables[("public", "user_log")]
    every = {(c.value, c.rows) for c in class_rows(conn, log, "object_class")}
    assert every == {("CConsultation", 100), ("CFile", 1), ("CPatient", 100), ("CSejour", 100)}
    some = class_rows(conn, log, "object_class", ["CFile", "CNothing"])
    assert [(c.value, c.rows) for c in some] == [("CFile", 1)]


def test_polymorphic_pairs_by_the_names_of_their_columns(conn: psycopg.Connection[Any]) -> None:
    _schema(conn)
    conn.execute(
        "CREATE TABLE comments (n serial PRIMARY KEY, commentable_type text, commentable_id int, "
        "body_type text, owner_class int, owner_id int)"
    )
    pairs = {p.label for p in polymorphic_pairs(read_catalog(conn))}
    assert pairs == {
        "user_log.object_class + object_id",
        "files.object_class + object_id",
        "comments.commentable_type + commentable_id",
    }  # body_type has no body_id; owner_class holds no text


def test_a_class_names_the_table_by_its_name_or_by_its_key(conn: psycopg.Connection[Any]) -> None:
    _schema(conn)
    conn.execute("CREATE TABLE sejours (sejour_id serial PRIMARY KEY)")
    conn.execute("CREATE TABLE dossier (dossier_medical_id serial PRIMARY KEY)")
    catalog = read_catalog(conn)

    def named(value: str) -> list[str]:
        return [t[1] for t in class_tables(catalog, value)]

    assert named("CSejour") == ["sejours"]  # Mediboard: a leading C, a plural table
    assert named("CPatient") == ["patient", "patients"]  # ambiguous: for a human
    assert named("App\\Models\\Persons") == ["persons"]
    assert named("CDossierMedical") == ["dossier"]  # by its key dossier_medical_id
    assert named("CPlageconsult") == ["plageconsult"]
    assert named("CFacture") == []
    assert named("1 + 1") == []


def test_class_match_counts_the_ids_of_one_class_only(conn: psycopg.Connection[Any]) -> None:
    _schema(conn)
    _classes(conn, "user_log")  # ids 1..300: CPatient ids are 3, 6, ..., 300
    catalog = read_catalog(conn)
    pair = PolymorphicPair(("public", "user_log"), "object_class", "object_id")
    match = class_match(conn, catalog, pair, "CPatient", ("public", "patients"))
    assert (match.values, match.matching, match.target_key) == (100, 33, "patient_id")
    assert match.share == 0.33 and not match.sampled
