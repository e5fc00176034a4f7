"""The demo hospital's shape, whatever the engine: tables, columns, keys, links and indexes.

Each engine writes its own DDL for this shape (`postgresql.py`, `mariadb.py`) and loads the
rows the one generator (`generate.py`) yields, so that the same seed gives the same rows on
every engine and the same policy files apply to all of them.
"""

from __future__ import annotations

from typing import Any

TABLES: tuple[str, ...] = (
    "medecins",
    "patients",
    "sejours",
    "plagesconsult",
    "consultations",
    "dossiers_medicaux",
    "prescriptions",
    "prescription_lignes",
    "allergies",
    "contacts_urgence",
    "fichiers",
    "user_log",
    "ins_patients",
)

# Every table's columns in the order the generator yields values; the first is the key.
COLUMNS: dict[str, tuple[str, ...]] = {
    "medecins": ("medecin_id", "nom", "prenom", "rpps", "adeli", "specialite", "tel"),
    "patients": (
        "patient_id", "nom", "nom_jeune_fille", "prenom", "sexe", "naissance", "lieu_naissance",
        "matricule", "assure_nom", "assure_prenom", "assure_naissance", "assure_matricule",
        "adresse", "cp", "ville", "tel", "tel_portable", "email", "profession", "deces", "rques",
        "medecin_traitant_id", "created_at",
    ),
    "sejours": (
        "sejour_id", "patient_id", "praticien_id", "entree", "sortie", "type", "annule", "rques",
    ),
    "plagesconsult": ("plageconsult_id", "chir_id", "date", "debut", "fin"),
    "consultations": (
        "consultation_id", "patient_id", "plageconsult_id", "heure", "motif", "rques", "annule",
    ),
    "dossiers_medicaux": (
        "dossier_medical_id", "object_class", "object_id", "antecedents", "traitements",
    ),
    "prescriptions": ("prescription_id", "object_class", "object_id", "praticien_id", "date"),
    "prescription_lignes": (
        "prescription_ligne_id", "prescription_id", "medicament", "posologie", "debut", "fin",
    ),
    "allergies": ("allergie_id", "patient_id", "allergene", "reaction", "rques"),
    "contacts_urgence": ("contact_id", "patient_id", "nom", "prenom", "lien", "tel", "rques"),
    "fichiers": (
        "fichier_id", "object_class", "object_id", "file_name", "file_type", "file_size",
        "file_date",
    ),
    "user_log": (
        "user_log_id", "user_id", "object_class", "object_id", "type", "date", "fields", "extra",
    ),
    "ins_patients": ("ins_id", "patient_id", "ins_nir", "oid", "date_qualification"),
}  # fmt: skip

# Columns holding an instant (an aware datetime in UTC): timestamptz on PostgreSQL, DATETIME
# in UTC on MariaDB (whose TIMESTAMP ends in 2038). Every other date and time is wall time.
INSTANTS: dict[str, tuple[str, ...]] = {"patients": ("created_at",)}

# Columns holding JSON text.
JSON_COLUMNS: dict[str, tuple[str, ...]] = {"user_log": ("extra",)}

# (table, column, referenced table): foreign keys, added after the tables as pg_dump does, so that
# bulk loads can drop them and validate them once at the end.
FOREIGN_KEYS: tuple[tuple[str, str, str], ...] = (
    ("patients", "medecin_traitant_id", "medecins"),
    ("sejours", "patient_id", "patients"),
    ("sejours", "praticien_id", "medecins"),
    ("plagesconsult", "chir_id", "medecins"),
    ("consultations", "plageconsult_id", "plagesconsult"),
    ("prescriptions", "praticien_id", "medecins"),
    ("prescription_lignes", "prescription_id", "prescriptions"),
    ("allergies", "patient_id", "patients"),
    ("contacts_urgence", "patient_id", "patients"),
    ("ins_patients", "patient_id", "patients"),
)

# (table, columns): secondary indexes. consultations.patient_id and the polymorphic links have
# an index but no foreign key, as in real schemas.
INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sejours", ("patient_id",)),
    ("consultations", ("patient_id",)),
    ("consultations", ("plageconsult_id",)),
    ("dossiers_medicaux", ("object_class", "object_id")),
    ("prescriptions", ("object_class", "object_id")),
    ("prescription_lignes", ("prescription_id",)),
    ("allergies", ("patient_id",)),
    ("contacts_urgence", ("patient_id",)),
    ("fichiers", ("object_class", "object_id")),
    ("user_log", ("object_class", "object_id")),
    ("user_log", ("date",)),
    ("ins_patients", ("patient_id",)),
)

# parents before children, so that foreign keys hold after every load
LOAD_ORDER: tuple[str, ...] = (
    "medecins", "patients", "plagesconsult", "sejours", "consultations", "dossiers_medicaux",
    "prescriptions", "prescription_lignes", "allergies", "contacts_urgence", "fichiers",
    "user_log", "ins_patients",
)  # fmt: skip

# The rows of one batch, per table: tuples of Python values (int, str, date, time, datetime;
# None for NULL) in the order of COLUMNS.
Batch = dict[str, list[tuple[Any, ...]]]


def key_of(table: str) -> str:
    """The table's primary key column."""
    return COLUMNS[table][0]


def fk_name(table: str, column: str) -> str:
    return f"{table}_{column}_fkey"


def index_name(table: str, columns: tuple[str, ...]) -> str:
    return f"{table}_{'_'.join(columns)}_idx"
