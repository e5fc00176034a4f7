"""The demo generator produces a realistic, deterministic hospital population."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
from psycopg.rows import TupleRow

from retention.demo.generate import DemoStats, generate
from retention.demo.schema import FOREIGN_KEYS, INDEXES, TABLES, create_schema
from retention.errors import DatabaseError
from tests.fix_db import DEMO_PATIENTS, DemoTemplate, temporary_database

TODAY = date(2025, 6, 1)
POPULATION = 3000

Conn = psycopg.Connection[TupleRow]


@pytest.fixture(scope="module")
def population(pg_admin_url: str) -> Iterator[tuple[Conn, DemoStats]]:
    """A larger population than the template's, for proportions; read-only."""
    with (
        temporary_database(pg_admin_url) as url,
        psycopg.connect(url, autocommit=True) as connection,
    ):
        create_schema(connection)
        stats = generate(connection, patients=POPULATION, seed=1234, today=TODAY)
        yield connection, stats


@pytest.fixture
def pop(population: tuple[Conn, DemoStats]) -> Conn:
    return population[0]


def scalar(conn: Conn, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# -- identifiers, checked against the definitions in DOMAIN.md, not the generator's code --------


def nir_key_is_valid(nir: str) -> bool:
    body = nir[:13].replace("2A", "19").replace("2B", "18")
    return body.isdigit() and nir[13:].isdigit() and 97 - int(body) % 97 == int(nir[13:])


def luhn_is_valid(number: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(number)):
        digit = int(char) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def test_every_nir_has_a_valid_key_and_matches_sex_birth_and_birthplace(pop: Conn) -> None:
    rows = pop.execute(
        "SELECT matricule, sexe, naissance, lieu_naissance FROM patients"
        " WHERE matricule IS NOT NULL"
    ).fetchall()
    assert len(rows) > 0.95 * POPULATION
    for nir, sexe, naissance, lieu in rows:
        assert len(nir) == 15
        assert nir_key_is_valid(nir)
        assert nir[0] == ("1" if sexe == "m" else "2")
        assert nir[5:10] == lieu
        born = parse_day(naissance)
        if born is not None:
            assert nir[1:5] == f"{born.year % 100:02d}{born.month:02d}"
    insured = [r[0] for r in pop.execute("SELECT assure_matricule FROM patients").fetchall()]
    assert all(nir_key_is_valid(nir) for nir in insured if nir is not None)


def test_nirs_include_corsica_overseas_and_foreign_births(pop: Conn) -> None:
    departments = {
        r[0] for r in pop.execute("SELECT substr(matricule, 6, 2) FROM patients").fetchall()
    }
    assert {"2A", "2B"} & departments
    assert "97" in departments
    assert "99" in departments


def test_corsica_births_before_1976_use_department_20(pop: Conn) -> None:
    rows = pop.execute(
        "SELECT matricule FROM patients WHERE substr(matricule, 6, 2) IN ('2A', '2B', '20')"
    ).fetchall()
    assert rows
    for (nir,) in rows:
        year = int(nir[1:3])
        if nir[5:7] in ("2A", "2B"):
            assert year >= 76 or year <= 25  # born 1976 or later (two-digit year wraps)


def test_rpps_numbers_pass_luhn(pop: Conn) -> None:
    rpps = [r[0] for r in pop.execute("SELECT rpps FROM medecins").fetchall()]
    assert rpps
    assert all(len(number) == 11 and luhn_is_valid(number) for number in rpps)


def test_some_birth_dates_are_impossible_or_missing(pop: Conn) -> None:
    values = [r[0] for r in pop.execute("SELECT naissance FROM patients").fetchall()]
    missing = sum(v is None for v in values)
    impossible = [v for v in values if v is not None and parse_day(v) is None]
    assert 1 <= missing <= 0.01 * POPULATION
    assert 3 <= len(impossible) <= 0.02 * POPULATION
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for v in impossible)


# -- activity and the legal clock -------------------------------------------------------------

LAST_VISIT = """
    SELECT p.patient_id, max(v.day) AS last_visit
    FROM patients p
    LEFT JOIN (
        SELECT patient_id, entree::date AS day FROM sejours WHERE annule = '0'
        UNION ALL
        SELECT c.patient_id, pc.date FROM consultations c
        JOIN plagesconsult pc USING (plageconsult_id) WHERE c.annule = '0'
    ) v USING (patient_id)
    GROUP BY p.patient_id
"""


def test_last_visits_are_spread_between_stale_middle_and_recent(pop: Conn) -> None:
    counts = pop.execute(
        f"""SELECT count(*) FILTER (WHERE last_visit < %(today)s::date - interval '20 years'),
                   count(*) FILTER (WHERE last_visit >= %(today)s::date - interval '20 years'
                                      AND last_visit < %(today)s::date - interval '3 years'),
                   count(*) FILTER (WHERE last_visit IS NULL),
                   min(last_visit), max(last_visit)
            FROM ({LAST_VISIT}) lv""",
        {"today": TODAY},
    ).fetchone()
    assert counts is not None
    stale, middle, never, oldest, newest = counts
    assert 0.36 < stale / POPULATION < 0.45
    assert 0.12 < middle / POPULATION < 0.19
    assert 1 <= never <= 0.02 * POPULATION
    assert oldest >= date(1985, 1, 1)
    assert newest <= TODAY


def test_about_four_percent_of_stays_are_cancelled(pop: Conn) -> None:
    share = scalar(pop, "SELECT avg((annule = '1')::int) FROM sejours")
    assert 0.025 < share < 0.06


def test_some_patients_only_recent_stay_is_cancelled(pop: Conn) -> None:
    count = scalar(
        pop,
        f"""SELECT count(*) FROM ({LAST_VISIT}) lv
            WHERE last_visit < %(today)s::date - interval '3 years'
              AND EXISTS (SELECT FROM sejours s
                          WHERE s.patient_id = lv.patient_id AND s.annule = '1'
                            AND s.entree > %(today)s::date - interval '2 years')""",
        {"today": TODAY},
    )
    assert count >= 3


def test_children_last_seen_around_age_five_are_still_under_28(pop: Conn) -> None:
    count = scalar(
        pop,
        f"""SELECT count(*) FROM ({LAST_VISIT}) lv JOIN patients p USING (patient_id)
            WHERE p.naissance ~ '^\\d{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d)$'
              AND last_visit < %(today)s::date - interval '20 years'
              AND age(last_visit, p.naissance::date) BETWEEN '3 years' AND '8 years'
              AND p.naissance::date + interval '28 years' > %(today)s""",
        {"today": TODAY},
    )
    assert count >= 10


def test_deaths_happen_both_soon_and_long_after_the_last_visit(pop: Conn) -> None:
    row = pop.execute(
        f"""SELECT count(*) FILTER (WHERE p.deces < last_visit + interval '10 years'),
                   count(*) FILTER (WHERE p.deces > last_visit + interval '10 years'),
                   count(*) FILTER (WHERE p.deces < last_visit OR p.deces > %(today)s)
            FROM ({LAST_VISIT}) lv JOIN patients p USING (patient_id)
            WHERE p.deces IS NOT NULL""",
        {"today": TODAY},
    ).fetchone()
    assert row is not None
    soon, late, impossible = row
    assert soon >= 10
    assert late >= 10
    assert impossible == 0


def test_some_patients_have_consultations_but_no_stay(pop: Conn) -> None:
    count = scalar(
        pop,
        """SELECT count(*) FROM patients p
           WHERE NOT EXISTS (SELECT FROM sejours s WHERE s.patient_id = p.patient_id)
             AND EXISTS (SELECT FROM consultations c WHERE c.patient_id = p.patient_id)""",
    )
    assert 0.04 * POPULATION < count < 0.15 * POPULATION


def test_rows_per_patient_match_the_hospital_figures(population: tuple[Conn, DemoStats]) -> None:
    stats = population[1]
    per_patient = {table: n / stats.patients for table, n in stats.counts().items()}
    assert 2.7 < per_patient["sejours"] < 3.3
    assert 1.7 < per_patient["consultations"] < 2.3
    assert 5.2 < per_patient["prescription_lignes"] < 6.8
    assert 0.25 < per_patient["allergies"] < 0.42
    assert 0.4 < per_patient["contacts_urgence"] < 0.6
    assert per_patient["dossiers_medicaux"] == 1
    assert 0.85 < per_patient["fichiers"] < 1.2
    assert 1.8 < per_patient["user_log"] < 2.3


def test_stats_match_the_rows_in_the_tables(population: tuple[Conn, DemoStats]) -> None:
    conn, stats = population
    for table, expected in stats.counts().items():
        assert scalar(conn, f"SELECT count(*) FROM {table}") == expected
    assert set(stats.counts()) == set(TABLES)


# -- identity and contact details -------------------------------------------------------------


def test_about_thirty_percent_of_patients_are_insured_through_someone_else(pop: Conn) -> None:
    share = scalar(
        pop,
        """SELECT avg((assure_prenom IS DISTINCT FROM prenom
                       OR assure_matricule IS DISTINCT FROM matricule)::int) FROM patients""",
    )
    assert 0.25 < share < 0.36


PHONE_FORMATS = {
    "spaces": r"0\d( \d\d){4}",
    "dots": r"0\d(\.\d\d){4}",
    "international": r"\+33 \d( \d\d){4}",
    "compact": r"0\d{9}",
}


def test_phones_come_in_several_french_formats(pop: Conn) -> None:
    phones = [
        r[0]
        for r in pop.execute(
            """SELECT tel FROM patients UNION ALL SELECT tel_portable FROM patients
               UNION ALL SELECT tel FROM contacts_urgence"""
        ).fetchall()
        if r[0] is not None
    ]
    seen = {
        name
        for phone in phones
        for name, pattern in PHONE_FORMATS.items()
        if re.fullmatch(pattern, phone)
    }
    assert seen == set(PHONE_FORMATS)
    assert all(any(re.fullmatch(p, phone) for p in PHONE_FORMATS.values()) for phone in phones)


def test_some_remarks_name_a_relative_and_a_phone(pop: Conn) -> None:
    count = scalar(
        pop,
        r"""SELECT count(*) FROM patients
            WHERE rques ~ '[A-Z]{2,}' AND rques ~ '(0|\+33 )[1-9]([ .]?\d\d){4}'""",
    )
    assert count >= 0.03 * POPULATION


def test_change_log_keeps_old_values_over_the_last_three_years(pop: Conn) -> None:
    row = pop.execute(
        """SELECT min(date), max(date),
                  count(*) FILTER (WHERE date < %(today)s::date - interval '1 year'),
                  count(*) FILTER (WHERE extra ? 'tel' OR extra ? 'email' OR extra ? 'nom')
           FROM user_log""",
        {"today": TODAY},
    ).fetchone()
    assert row is not None
    oldest, newest, older_than_a_year, with_old_contacts = row
    assert oldest.date() >= date(2022, 5, 1)
    assert newest.date() <= TODAY
    assert older_than_a_year > 0
    assert with_old_contacts > 0.3 * POPULATION


def test_ins_rows_use_the_nir_or_nia_oid(pop: Conn) -> None:
    rows = pop.execute("SELECT oid, ins_nir FROM ins_patients").fetchall()
    oids = {oid for oid, _ in rows}
    assert oids == {"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9"}
    assert all(nir_key_is_valid(nir) for _, nir in rows)


# -- links --------------------------------------------------------------------------------------

POLYMORPHIC = [
    ("dossiers_medicaux", "CPatient", "patients", "patient_id"),
    ("prescriptions", "CSejour", "sejours", "sejour_id"),
    ("prescriptions", "CConsultation", "consultations", "consultation_id"),
    ("fichiers", "CPatient", "patients", "patient_id"),
    ("fichiers", "CSejour", "sejours", "sejour_id"),
    ("fichiers", "CConsultation", "consultations", "consultation_id"),
    ("user_log", "CPatient", "patients", "patient_id"),
]


@pytest.mark.parametrize(("table", "object_class", "target", "key"), POLYMORPHIC)
def test_polymorphic_links_resolve(
    pop: Conn, table: str, object_class: str, target: str, key: str
) -> None:
    total, dangling = pop.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE t.{key} IS NULL)
            FROM {table} x LEFT JOIN {target} t ON t.{key} = x.object_id
            WHERE x.object_class = %s""",
        [object_class],
    ).fetchone() or (0, 0)
    assert total > 0
    assert dangling == 0


def test_only_deleted_stays_leave_dangling_log_entries(pop: Conn) -> None:
    classes = {r[0] for r in pop.execute("SELECT DISTINCT object_class FROM user_log").fetchall()}
    assert classes <= {"CPatient", "CSejour"}
    row = pop.execute(
        """SELECT count(*), count(s.sejour_id), count(*) FILTER (WHERE l.type = 'delete')
           FROM user_log l LEFT JOIN sejours s ON s.sejour_id = l.object_id
           WHERE l.object_class = 'CSejour'"""
    ).fetchone()
    assert row is not None
    total, resolved, deletes = row
    assert total == deletes
    assert resolved == 0


def test_consultation_patients_exist_without_a_foreign_key(pop: Conn) -> None:
    dangling = scalar(
        pop,
        """SELECT count(*) FROM consultations c
           WHERE NOT EXISTS (SELECT FROM patients p WHERE p.patient_id = c.patient_id)""",
    )
    assert dangling == 0
    fk_on_consultation_patient = scalar(
        pop,
        """SELECT count(*) FROM pg_constraint
           WHERE conrelid = 'consultations'::regclass AND contype = 'f'
             AND conkey = ARRAY[(SELECT attnum FROM pg_attribute
                                 WHERE attrelid = 'consultations'::regclass
                                   AND attname = 'patient_id')]""",
    )
    assert fk_on_consultation_patient == 0


def test_foreign_keys_and_indexes_are_back_after_loading(pop: Conn) -> None:
    foreign_keys = scalar(
        pop,
        """SELECT count(*) FROM pg_constraint
           WHERE contype = 'f' AND connamespace = 'public'::regnamespace""",
    )
    indexes = scalar(
        pop,
        """SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
           WHERE c.relnamespace = 'public'::regnamespace AND NOT i.indisprimary""",
    )
    assert foreign_keys == len(FOREIGN_KEYS)
    assert indexes == len(INDEXES)


# -- loading ------------------------------------------------------------------------------------


def table_digests(conn: Conn) -> dict[str, str]:
    digests = {}
    for table in TABLES:
        digests[table] = scalar(
            conn,
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t",
        )
    return digests


def reset_schema(conn: Conn) -> None:
    conn.execute("DROP SCHEMA public CASCADE")
    conn.execute("CREATE SCHEMA public")
    create_schema(conn)


def test_same_seed_and_day_give_the_same_database(conn: Conn) -> None:
    create_schema(conn)
    generate(conn, patients=150, seed=7, today=TODAY)
    first = table_digests(conn)
    reset_schema(conn)
    generate(conn, patients=150, seed=7, today=TODAY)
    assert table_digests(conn) == first
    reset_schema(conn)
    generate(conn, patients=150, seed=8, today=TODAY)
    assert table_digests(conn)["patients"] != first["patients"]


def test_generating_into_a_non_empty_schema_is_refused(demo_conn: Conn) -> None:
    with pytest.raises(DatabaseError, match="already holds rows"):
        generate(demo_conn, patients=10, today=TODAY)


def test_generating_without_the_schema_is_refused(conn: Conn) -> None:
    with pytest.raises(DatabaseError, match="do not exist"):
        generate(conn, patients=10, today=TODAY)


def test_creating_the_schema_twice_is_refused(demo_conn: Conn) -> None:
    with pytest.raises(DatabaseError, match="already exist"):
        create_schema(demo_conn)


def test_sequences_continue_after_the_generated_ids(demo_conn: Conn) -> None:
    new_id = scalar(
        demo_conn, "INSERT INTO patients (nom, prenom) VALUES ('X', 'Y') RETURNING patient_id"
    )
    assert new_id == DEMO_PATIENTS + 1
    log_id = scalar(
        demo_conn,
        """INSERT INTO user_log (object_class, object_id, date)
           VALUES ('CPatient', 1, now()) RETURNING user_log_id""",
    )
    assert log_id == scalar(demo_conn, "SELECT max(user_log_id) FROM user_log")


def test_zero_patients_loads_only_the_physicians(conn: Conn) -> None:
    create_schema(conn)
    stats = generate(conn, patients=0, today=TODAY)
    assert stats.medecins > 0
    assert sum(stats.counts().values()) == stats.medecins


def test_template_copies_hold_the_template_data(
    demo_conn: Conn, demo_template: DemoTemplate
) -> None:
    assert scalar(demo_conn, "SELECT count(*) FROM patients") == demo_template.patients
    assert scalar(demo_conn, "SELECT count(*) FROM sejours") == demo_template.stats.sejours
