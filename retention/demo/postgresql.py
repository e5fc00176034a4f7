"""The demo hospital on PostgreSQL: its DDL, and its rows loaded with COPY in one transaction.

Foreign keys and secondary indexes are dropped before the load and re-created at the end (each
foreign key is then checked in one pass, as pg_restore does); sequences are moved past the
generated ids, and ``ANALYZE`` runs last.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from retention.demo.tables import (
    COLUMNS,
    FOREIGN_KEYS,
    INDEXES,
    LOAD_ORDER,
    TABLES,
    Batch,
    fk_name,
    index_name,
    key_of,
)
from retention.engines import Connection, errors, sql
from retention.errors import DatabaseError

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


def _add_foreign_key(table: str, column: str, target: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {};").format(
        sql.Identifier(table),
        sql.Identifier(fk_name(table, column)),
        sql.Identifier(column),
        sql.Identifier(target),
    )


def _create_index(table: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("CREATE INDEX {} ON {} ({});").format(
        sql.Identifier(index_name(table, columns)),
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
                sql.Identifier(table), sql.Identifier(fk_name(table, column))
            )
        )
    for table, columns in INDEXES:
        conn.execute(
            sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index_name(table, columns)))
        )


def add_constraints(conn: Connection) -> None:
    """Re-create what :func:`drop_constraints` dropped: each foreign key is checked once."""
    for statement in _constraint_statements():
        conn.execute(statement)


# -- loading ----------------------------------------------------------------------------------

_NULL = "\\N"
_CHUNK = 20_000  # COPY lines per write


class PostgreSQLLoader:
    """COPY in text format, in one transaction (see the module docstring)."""

    def prepare(self, batch: Batch) -> dict[str, list[str]]:
        """COPY text lines per table (run in the generator's thread). Values are `str()`-ed:
        ISO dates and times, `+00:00` for the instants; the generator's text has no tab,
        newline or backslash."""
        return {
            table: ["\t".join(_NULL if v is None else str(v) for v in row) for row in rows]
            for table, rows in batch.items()
        }

    @contextmanager
    def loading(self, conn: Connection, ids: Mapping[str, int]) -> Iterator[None]:
        """The load's transaction, constraints dropped before and re-created after; the
        sequences moved past `ids` (read at the end); ANALYZE once committed."""
        with conn.transaction():
            conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            drop_constraints(conn)
            yield
            add_constraints(conn)
            _reset_sequences(conn, ids)
        conn.execute("ANALYZE")

    def write(self, conn: Connection, lines: dict[str, list[str]]) -> None:
        with conn.cursor() as cur:
            for table in LOAD_ORDER:
                rows = lines.get(table)
                if not rows:
                    continue
                query = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table]))
                )
                with cur.copy(query) as copy:
                    for start in range(0, len(rows), _CHUNK):
                        copy.write("\n".join(rows[start : start + _CHUNK]) + "\n")


def _reset_sequences(conn: Connection, ids: Mapping[str, int]) -> None:
    for table in TABLES:
        conn.execute(
            "SELECT setval(pg_get_serial_sequence(%s, %s), %s, %s)",
            [f"public.{table}", key_of(table), max(ids[table], 1), ids[table] > 0],
        )
