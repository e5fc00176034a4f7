"""Shared by the report tests (no test here): the demo database prepared as the demo prepares
it, its personal values, and the exposure figures computed independently, by hand, in SQL.

The independent computation knows the demo schema and reads the law as written (R1112-7: 20
years after the last visit, at least until the 28th birthday, 10 years after a death less than
10 years after the last visit); it shares no code with the tool's clock compiler.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.audit.approvals import record_approval, rules_of
from retention.discovery.inventory import save_scan
from retention.discovery.model import ColumnVerdict, ScanResult
from retention.engine.outcome import RunReport
from retention.engines import Connection
from retention.plan.clock import UNKNOWN_DUE
from retention.policy.bound import BoundPolicy
from retention.policy.check import bound_policies
from retention.report.build import Report, build_report
from retention.report.exposure import compute_exposure
from retention.report.snapshots import save_snapshot
from retention.settings import Settings
from retention.store.schema import migrate
from tests.engine_helpers import run, settings, trail
from tests.fix_db import DemoTemplate, temporary_database
from tests.key_helpers import ROLES, signature

AT = date(2025, 6, 1)  # the demo template's "today"

# What `retention scan` finds in the demo database (entity and confidence per column).
DEMO_VERDICTS: tuple[tuple[str, str, str, float], ...] = (
    ("contacts_urgence", "nom", "PERSON", 0.97),
    ("contacts_urgence", "prenom", "PERSON", 0.97),
    ("contacts_urgence", "tel", "PHONE_NUMBER", 0.99),
    ("fichiers", "file_name", "FREE_TEXT_PERSONAL", 0.60),
    ("ins_patients", "ins_nir", "FR_INS", 0.97),
    ("medecins", "adeli", "FR_ADELI", 0.94),
    ("medecins", "nom", "PERSON", 0.97),
    ("medecins", "prenom", "PERSON", 0.96),
    ("medecins", "rpps", "FR_RPPS", 0.97),
    ("medecins", "tel", "PHONE_NUMBER", 0.99),
    ("patients", "adresse", "ADDRESS", 0.99),
    ("patients", "assure_matricule", "FR_NIR", 1.0),
    ("patients", "assure_naissance", "DATE_OF_BIRTH", 0.95),
    ("patients", "assure_nom", "PERSON", 0.97),
    ("patients", "assure_prenom", "PERSON", 0.97),
    ("patients", "cp", "FR_POSTAL_CODE", 0.95),
    ("patients", "email", "EMAIL_ADDRESS", 1.0),
    ("patients", "lieu_naissance", "LOCATION", 0.9),
    ("patients", "matricule", "FR_NIR", 1.0),
    ("patients", "naissance", "DATE_OF_BIRTH", 0.95),
    ("patients", "nom", "PERSON", 0.97),
    ("patients", "nom_jeune_fille", "PERSON", 0.97),
    ("patients", "prenom", "PERSON", 0.97),
    ("patients", "rques", "FREE_TEXT_PERSONAL", 0.98),
    ("patients", "tel", "PHONE_NUMBER", 0.99),
    ("patients", "tel_portable", "PHONE_NUMBER", 0.99),
    ("patients", "ville", "LOCATION", 0.6),
    ("user_log", "extra", "FREE_TEXT_PERSONAL", 0.93),
)

# Columns holding personal values in the demo database (what must never reach a report).
PERSONAL = {
    "patients": (
        "nom",
        "prenom",
        "nom_jeune_fille",
        "matricule",
        "assure_nom",
        "assure_prenom",
        "assure_matricule",
        "adresse",
        "tel",
        "tel_portable",
        "email",
        "rques",
    ),
    "contacts_urgence": ("nom", "prenom", "tel"),
    "medecins": ("nom", "prenom", "rpps", "adeli", "tel"),
    "ins_patients": ("ins_nir",),
}


def save_demo_inventory(conn: psycopg.Connection[Any]) -> int:
    """Store the demo's scan result as `retention scan` would (without running Presidio)."""
    columns = tuple(
        ColumnVerdict("public", table, column, entity, score, {"test": True})
        for table, column, entity, score in DEMO_VERDICTS
    )
    return save_scan(conn, ScanResult(datetime.now(UTC), columns), scope={"test": True})


def personal_values(conn: Connection) -> set[str]:
    """Every personal value of the demo database (at least 5 characters: shorter ones would
    match by chance, e.g. inside a number)."""
    values: set[str] = set()
    for table, columns in PERSONAL.items():
        for column in columns:
            values |= {
                str(v).strip()
                for (v,) in conn.execute(
                    f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL"
                )
            }
    return {v for v in values if len(v) >= 5}


_STRICT_DATE = """
CREATE OR REPLACE FUNCTION pg_temp.strict_date(t text) RETURNS date LANGUAGE plpgsql AS $$
BEGIN
    IF t IS NULL OR t !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN RETURN NULL; END IF;
    RETURN make_date(substr(t, 1, 4)::int, substr(t, 6, 2)::int, substr(t, 9, 2)::int);
EXCEPTION WHEN others THEN RETURN NULL;
END $$
"""

_PATIENTS = """
WITH stays AS (
    SELECT patient_id, max(coalesce(sortie::date, %(at)s::date)) AS d
    FROM sejours WHERE annule = '0' GROUP BY patient_id
), consults AS (
    SELECT c.patient_id, max(p.date) AS d
    FROM consultations c JOIN plagesconsult p ON p.plageconsult_id = c.plageconsult_id
    WHERE c.annule = '0' GROUP BY c.patient_id
), holds AS (
    SELECT policy, subject_key FROM retention.holds WHERE released_at IS NULL
), facts AS (
    SELECT pt.*,
           greatest(s.d, c.d) AS last_visit,
           pg_temp.strict_date(pt.naissance) AS birth,
           (pt.patient_id::text, 'dossier-medical') IN (SELECT subject_key, policy FROM holds)
               AS held_record,
           (pt.patient_id::text, 'contacts-patients') IN (SELECT subject_key, policy FROM holds)
               AS held_contact
    FROM patients pt LEFT JOIN stays s USING (patient_id) LEFT JOIN consults c USING (patient_id)
), clocks AS (
    SELECT f.*,
           CASE WHEN last_visit IS NULL THEN NULL
                WHEN deces IS NOT NULL AND deces < (last_visit + interval '10 years')::date
                    THEN (deces + interval '10 years')::date
                ELSE greatest((last_visit + interval '20 years')::date,
                              (birth + interval '28 years')::date)
           END AS retain_until,
           (last_visit + interval '3 years')::date AS contact_due
    FROM facts f
)
SELECT
    count(*) AS subjects,
    count(*) FILTER (WHERE
        pg_temp.identifies(nom) OR pg_temp.identifies(nom_jeune_fille)
        OR pg_temp.identifies(prenom) OR pg_temp.identifies(matricule)
        OR pg_temp.identifies(assure_nom) OR pg_temp.identifies(assure_prenom)
        OR pg_temp.identifies(assure_matricule) OR pg_temp.identifies(adresse)
        OR pg_temp.identifies(tel) OR pg_temp.identifies(tel_portable)
        OR pg_temp.identifies(email)
        OR EXISTS (SELECT 1 FROM ins_patients i WHERE i.patient_id = clocks.patient_id
                   AND pg_temp.identifies(i.ins_nir))
        OR EXISTS (SELECT 1 FROM contacts_urgence u WHERE u.patient_id = clocks.patient_id
                   AND (pg_temp.identifies(u.nom) OR pg_temp.identifies(u.prenom)
                        OR pg_temp.identifies(u.tel)))
    ) AS with_direct_identifiers,
    count(*) FILTER (WHERE last_visit IS NOT NULL AND birth IS NOT NULL
                     AND retain_until < %(at)s AND NOT held_record) AS past_retention,
    count(*) FILTER (WHERE last_visit IS NOT NULL AND contact_due < %(at)s AND NOT held_contact
                     AND (tel IS NOT NULL OR tel_portable IS NOT NULL OR email IS NOT NULL
                          OR adresse IS NOT NULL
                          OR EXISTS (SELECT 1 FROM contacts_urgence u
                                     WHERE u.patient_id = clocks.patient_id
                                     AND u.tel IS NOT NULL)))
        AS contact_beyond_minimisation,
    count(*) FILTER (WHERE held_record OR held_contact) AS held,
    count(*) FILTER (WHERE last_visit IS NULL OR birth IS NULL) AS undeterminable,
    count(*) FILTER (WHERE last_visit IS NULL) AS no_due_date,
    count(*) FILTER (WHERE birth IS NULL) AS naissance
FROM clocks
"""

_IDENTIFIES = """
CREATE OR REPLACE FUNCTION pg_temp.identifies(v text) RETURNS boolean LANGUAGE sql AS $$
    SELECT v IS NOT NULL AND btrim(v) <> '' AND v !~ '^PSN-[A-Z2-7]{8,28}$'
$$
"""

_LOGS = """
SELECT count(*),
       count(*) FILTER (WHERE (date::date + interval '1 year')::date < %(at)s
           AND (user_log_id::text, 'journal-modifications') NOT IN
               (SELECT subject_key, policy FROM retention.holds WHERE released_at IS NULL))
FROM user_log
"""


def independent_exposure(conn: psycopg.Connection[Any], at: date) -> dict[str, dict[str, Any]]:
    """The exposure figures of the demo database at `at`, per subject table."""
    conn.execute(_STRICT_DATE)
    conn.execute(_IDENTIFIES)
    with conn.cursor() as cur:
        cur.execute(_PATIENTS, {"at": at})
        names = [d.name for d in cur.description or []]
        row = dict(zip(names, cur.fetchone() or (), strict=True))
    reasons = {UNKNOWN_DUE: row.pop("no_due_date"), "naissance": row.pop("naissance")}
    row["undeterminable_reasons"] = {k: v for k, v in reasons.items() if v}
    logs = conn.execute(_LOGS, {"at": at}).fetchone()
    assert logs is not None
    return {
        "public.patients": row,
        "public.user_log": {
            "subjects": logs[0],
            "with_direct_identifiers": 0,
            "past_retention": logs[1],
            "contact_beyond_minimisation": None,
            "held": 0,
            "undeterminable": 0,
            "undeterminable_reasons": {},
        },
    }


def tool_figures(exposure_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The same figures as the tool gives them (the keys `independent_exposure` computes)."""
    keys = (
        "subjects",
        "with_direct_identifiers",
        "past_retention",
        "contact_beyond_minimisation",
        "held",
        "undeterminable",
        "undeterminable_reasons",
    )
    return {p["table"]: {key: p[key] for key in keys} for p in exposure_json["populations"]}


def hold(
    conn: psycopg.Connection[Any], policy: str, keys: list[int], *, released: bool = False
) -> None:
    """Holds narrowed to `policy` (on patients), as `hold add --policy` records them."""
    for key in keys:
        conn.execute(
            "INSERT INTO retention.holds (policy, subject_key, reason, released_at, "
            "subject_table, subject_column) VALUES (%s, %s, 'claim', CASE WHEN %s THEN now() "
            "END, 'public.patients', 'patient_id')",
            (policy, str(key), released),
        )


def due_record_keys(conn: psycopg.Connection[Any], limit: int) -> list[int]:
    """Patients past their R1112-7 retention at AT (by the independent reading)."""
    conn.execute(_STRICT_DATE)
    rows = conn.execute(
        "WITH v AS (SELECT patient_id, max(coalesce(sortie::date, %(at)s::date)) AS d "
        "FROM sejours WHERE annule = '0' GROUP BY 1) "
        "SELECT p.patient_id FROM patients p JOIN v USING (patient_id) "
        "WHERE pg_temp.strict_date(p.naissance) IS NOT NULL AND p.deces IS NULL "
        "AND (v.d + interval '20 years')::date < %(at)s "
        "AND (pg_temp.strict_date(p.naissance) + interval '28 years')::date < %(at)s "
        "ORDER BY 1 LIMIT %(n)s",
        {"at": AT, "n": limit},
    ).fetchall()
    return [int(r[0]) for r in rows]


def minimise_by_hand(conn: psycopg.Connection[Any], keys: list[int]) -> None:
    """Some patients already minimised: pseudonyms, blanks, no more NIR or contact rows."""
    conn.execute(
        "UPDATE patients SET nom = 'PSN-ABCDEFGHIJ', prenom = 'PSN-KLMNOPQRST', "
        "nom_jeune_fille = NULL, assure_nom = '', assure_prenom = NULL, matricule = NULL, "
        "assure_matricule = '   ', adresse = NULL, tel = NULL, tel_portable = NULL, email = NULL "
        "WHERE patient_id = ANY(%s)",
        (keys,),
    )
    conn.execute("DELETE FROM ins_patients WHERE patient_id = ANY(%s)", (keys,))
    conn.execute("DELETE FROM contacts_urgence WHERE patient_id = ANY(%s)", (keys[1:],))


@dataclass(frozen=True)
class Prepared:
    """The demo database after the demo's steps, and what the tests compare against."""

    url: str
    config: Settings
    policies: list[BoundPolicy]
    values: set[str]
    run: RunReport
    report: Report


def prepare_demo(conn: psycopg.Connection[Any], url: str, required_approvals: int = 2) -> Prepared:
    """What `retention demo` does, at the template's date: inventory, holds, approvals, a
    snapshot before the run, the run (which stores the snapshot after it), the report."""
    config = settings(url, required_approvals=required_approvals)
    migrate(conn)
    values = personal_values(conn)
    save_demo_inventory(conn)
    hold(conn, "dossier-medical", due_record_keys(conn, 2))
    policies = bound_policies(conn, config.policies_dir)
    audit = trail(conn, config)
    for policy in policies:
        for by in ("dr.martin", "m.durand"):
            sha = policy.loaded.sha256
            record_approval(
                conn, audit, policy.name, sha, by, ROLES[by], signature(by, policy.name, sha)
            )
    save_snapshot(conn, "retention", compute_exposure(conn, policies, AT))
    report = run(conn, config, at=AT)
    built = build_report(conn, policies, AT, approvals=rules_of(config))
    return Prepared(url, config, policies, values, report, built)


@pytest.fixture(scope="module")
def prepared(pg_admin_url: str, demo_template: DemoTemplate) -> Iterator[Prepared]:
    """One prepared demo database for a whole test module (read-only for its tests)."""
    with (
        temporary_database(pg_admin_url, template=demo_template.dbname) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        yield prepare_demo(conn, url)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
