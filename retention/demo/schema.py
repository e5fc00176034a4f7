"""The demo hospital schema: a Mediboard-like patient database, as real ones are.

French column names, birth dates stored as text, the insured person beside the patient, stays and
consultations in separate tables (the consultation date only in the planning table), polymorphic
links (``object_class`` + ``object_id``, no foreign key), a change log keeping old values as JSON.
"""

from __future__ import annotations

from retention.engines import Connection, errors, sql
from retention.errors import DatabaseError

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

TABLES_DDL = """
CREATE TABLE medecins (
    medecin_id serial PRIMARY KEY,
    nom text NOT NULL,
    prenom text NOT NULL,
    rpps char(11),
    adeli char(9),
    specialite text,
    tel varchar(20)
);

CREATE TABLE patients (
    patient_id serial PRIMARY KEY,
    nom text NOT NULL,
    nom_jeune_fille text,
    prenom text NOT NULL,
    sexe char(1),
    naissance varchar(10),
    lieu_naissance char(5),
    matricule varchar(15),
    assure_nom text,
    assure_prenom text,
    assure_naissance varchar(10),
    assure_matricule varchar(15),
    adresse text,
    cp varchar(5),
    ville text,
    tel varchar(20),
    tel_portable varchar(20),
    email text,
    profession text,
    deces date,
    rques text,
    medecin_traitant_id int,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sejours (
    sejour_id serial PRIMARY KEY,
    patient_id int NOT NULL,
    praticien_id int,
    entree timestamp NOT NULL,
    sortie timestamp,
    type varchar(10),
    annule char(1) NOT NULL DEFAULT '0',
    rques text
);

CREATE TABLE plagesconsult (
    plageconsult_id serial PRIMARY KEY,
    chir_id int NOT NULL,
    date date NOT NULL,
    debut time,
    fin time
);

-- patient_id has no foreign key: a plain column link, as in real schemas.
CREATE TABLE consultations (
    consultation_id serial PRIMARY KEY,
    patient_id int NOT NULL,
    plageconsult_id int NOT NULL,
    heure time,
    motif text,
    rques text,
    annule char(1) NOT NULL DEFAULT '0'
);

CREATE TABLE dossiers_medicaux (
    dossier_medical_id serial PRIMARY KEY,
    object_class varchar(40) NOT NULL,
    object_id int NOT NULL,
    antecedents text,
    traitements text
);

CREATE TABLE prescriptions (
    prescription_id serial PRIMARY KEY,
    object_class varchar(40) NOT NULL,
    object_id int NOT NULL,
    praticien_id int,
    date timestamp
);

CREATE TABLE prescription_lignes (
    prescription_ligne_id serial PRIMARY KEY,
    prescription_id int NOT NULL,
    medicament text,
    posologie text,
    debut date,
    fin date
);

CREATE TABLE allergies (
    allergie_id serial PRIMARY KEY,
    patient_id int NOT NULL,
    allergene text,
    reaction text,
    rques text
);

CREATE TABLE contacts_urgence (
    contact_id serial PRIMARY KEY,
    patient_id int NOT NULL,
    nom text,
    prenom text,
    lien text,
    tel varchar(20),
    rques text
);

CREATE TABLE fichiers (
    fichier_id serial PRIMARY KEY,
    object_class varchar(40) NOT NULL,
    object_id int NOT NULL,
    file_name text,
    file_type text,
    file_size int,
    file_date timestamp
);

CREATE TABLE user_log (
    user_log_id bigserial PRIMARY KEY,
    user_id int,
    object_class varchar(40) NOT NULL,
    object_id int NOT NULL,
    type varchar(10),
    date timestamp NOT NULL,
    fields text,
    extra jsonb
);

CREATE TABLE ins_patients (
    ins_id serial PRIMARY KEY,
    patient_id int NOT NULL,
    ins_nir varchar(15),
    oid varchar(40),
    date_qualification date
);
"""
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


def _fk_name(table: str, column: str) -> str:
    return f"{table}_{column}_fkey"


def _index_name(table: str, columns: tuple[str, ...]) -> str:
    return f"{table}_{'_'.join(columns)}_idx"


def _add_foreign_key(table: str, column: str, target: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {};").format(
        sql.Identifier(table),
        sql.Identifier(_fk_name(table, column)),
        sql.Identifier(column),
        sql.Identifier(target),
    )


def _create_index(table: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("CREATE INDEX {} ON {} ({});").format(
        sql.Identifier(_index_name(table, columns)),
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
    )


def _constraint_statements() -> list[sql.Composed]:
    return [_add_foreign_key(*fk) for fk in FOREIGN_KEYS] + [
        _create_index(*index) for index in INDEXES
    ]


CONSTRAINTS_DDL = "\n".join(statement.as_string(None) for statement in _constraint_statements())

DDL = TABLES_DDL + "\n" + CONSTRAINTS_DDL + "\n"


def create_schema(conn: Connection) -> None:
    """Create the demo tables in schema ``public`` of an empty database, in one transaction."""
    try:
        with conn.transaction():
            conn.execute(DDL)
    except errors.DuplicateTable as exc:
        raise DatabaseError(
            "the demo tables already exist in this database",
            hint="use a new, empty database for the demo",
        ) from exc


def drop_constraints(conn: Connection) -> None:
    """Drop the foreign keys and secondary indexes, before a bulk load (primary keys stay)."""
    for table, column, _ in FOREIGN_KEYS:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                sql.Identifier(table), sql.Identifier(_fk_name(table, column))
            )
        )
    for table, columns in INDEXES:
        conn.execute(
            sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(_index_name(table, columns)))
        )


def add_constraints(conn: Connection) -> None:
    """Re-create what :func:`drop_constraints` dropped: each foreign key is checked once."""
    for statement in _constraint_statements():
        conn.execute(statement)
