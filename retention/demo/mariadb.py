"""The demo hospital on MariaDB (10.6 and later; written for MySQL 8 too): DDL and bulk load.

The same tables, columns, keys and foreign keys as on PostgreSQL (`tables.py`), in MariaDB's
types and mysqldump's style: `INT UNSIGNED AUTO_INCREMENT` keys, unsigned links, DATETIME and
DATE (the instant `created_at` as a DATETIME in UTC: TIMESTAMP ends in 2038), VARCHAR and TEXT
in utf8mb4, `JSON` (MariaDB: LONGTEXT with a `json_valid` CHECK; MySQL 8: its JSON type),
`annule` as Mediboard's `enum('0','1')`, every table InnoDB. InnoDB needs an index on each
foreign key's column: the four such columns that have none on PostgreSQL get one here.

Loading: foreign keys and secondary indexes are dropped first; each batch of the generator is
inserted with `executemany` (MariaDB's bulk protocol: values never in the SQL text) in chunks,
and committed; then the indexes are built (sorted, once) and the foreign keys added without
the server's check (`foreign_key_checks = 0`, which lets InnoDB add them in place instead of
copying each table) and checked here, each by one query. DDL is not transactional in MariaDB:
a load that fails half-way leaves a half-loaded database, which the next load refuses (drop
it). No `LOAD DATA LOCAL INFILE`: the session disables it (a server could ask for any file).

:func:`add_mediboard_tables` adds, on request, what Mediboard's own schema has and PostgreSQL
cannot: a MyISAM table (no transactions), `datetime NOT NULL DEFAULT '0000-00-00 00:00:00'`
columns holding zero dates, `enum` columns, a polymorphic `object_class`/`object_id` link whose
class names are sometimes in another case (the collation is case-insensitive). They are derived
from the loaded rows by SQL, so the default demo stays the same as on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from retention.demo.tables import (
    COLUMNS,
    FOREIGN_KEYS,
    INDEXES,
    INSTANTS,
    LOAD_ORDER,
    TABLES,
    Batch,
    fk_name,
    index_name,
    key_of,
)
from retention.engines import Connection, errors, sql
from retention.errors import DatabaseError

CHARSET = "utf8mb4"
COLLATION = "utf8mb4_unicode_ci"  # in MariaDB 10.6+ and MySQL 8 alike
_OPTIONS = f"ENGINE=InnoDB DEFAULT CHARSET={CHARSET} COLLATE={COLLATION}"

TABLES_DDL: tuple[str, ...] = tuple(
    f"{statement}) {_OPTIONS}"
    for statement in (
        """CREATE TABLE `medecins` (
  `medecin_id` int unsigned NOT NULL AUTO_INCREMENT,
  `nom` varchar(255) NOT NULL,
  `prenom` varchar(255) NOT NULL,
  `rpps` char(11) DEFAULT NULL,
  `adeli` char(9) DEFAULT NULL,
  `specialite` varchar(255) DEFAULT NULL,
  `tel` varchar(20) DEFAULT NULL,
  PRIMARY KEY (`medecin_id`)
""",
        """CREATE TABLE `patients` (
  `patient_id` int unsigned NOT NULL AUTO_INCREMENT,
  `nom` varchar(255) NOT NULL,
  `nom_jeune_fille` varchar(255) DEFAULT NULL,
  `prenom` varchar(255) NOT NULL,
  `sexe` char(1) DEFAULT NULL,
  `naissance` varchar(10) DEFAULT NULL,
  `lieu_naissance` char(5) DEFAULT NULL,
  `matricule` varchar(15) DEFAULT NULL,
  `assure_nom` varchar(255) DEFAULT NULL,
  `assure_prenom` varchar(255) DEFAULT NULL,
  `assure_naissance` varchar(10) DEFAULT NULL,
  `assure_matricule` varchar(15) DEFAULT NULL,
  `adresse` text DEFAULT NULL,
  `cp` varchar(5) DEFAULT NULL,
  `ville` varchar(255) DEFAULT NULL,
  `tel` varchar(20) DEFAULT NULL,
  `tel_portable` varchar(20) DEFAULT NULL,
  `email` varchar(255) DEFAULT NULL,
  `profession` varchar(255) DEFAULT NULL,
  `deces` date DEFAULT NULL,
  `rques` text DEFAULT NULL,
  `medecin_traitant_id` int unsigned DEFAULT NULL,
  `created_at` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`patient_id`)
""",
        """CREATE TABLE `sejours` (
  `sejour_id` int unsigned NOT NULL AUTO_INCREMENT,
  `patient_id` int unsigned NOT NULL,
  `praticien_id` int unsigned DEFAULT NULL,
  `entree` datetime NOT NULL,
  `sortie` datetime DEFAULT NULL,
  `type` varchar(10) DEFAULT NULL,
  `annule` enum('0','1') NOT NULL DEFAULT '0',
  `rques` text DEFAULT NULL,
  PRIMARY KEY (`sejour_id`)
""",
        """CREATE TABLE `plagesconsult` (
  `plageconsult_id` int unsigned NOT NULL AUTO_INCREMENT,
  `chir_id` int unsigned NOT NULL,
  `date` date NOT NULL,
  `debut` time DEFAULT NULL,
  `fin` time DEFAULT NULL,
  PRIMARY KEY (`plageconsult_id`)
""",
        """CREATE TABLE `consultations` (
  `consultation_id` int unsigned NOT NULL AUTO_INCREMENT,
  `patient_id` int unsigned NOT NULL,
  `plageconsult_id` int unsigned NOT NULL,
  `heure` time DEFAULT NULL,
  `motif` text DEFAULT NULL,
  `rques` text DEFAULT NULL,
  `annule` enum('0','1') NOT NULL DEFAULT '0',
  PRIMARY KEY (`consultation_id`)
""",
        """CREATE TABLE `dossiers_medicaux` (
  `dossier_medical_id` int unsigned NOT NULL AUTO_INCREMENT,
  `object_class` varchar(40) NOT NULL,
  `object_id` int unsigned NOT NULL,
  `antecedents` text DEFAULT NULL,
  `traitements` text DEFAULT NULL,
  PRIMARY KEY (`dossier_medical_id`)
""",
        """CREATE TABLE `prescriptions` (
  `prescription_id` int unsigned NOT NULL AUTO_INCREMENT,
  `object_class` varchar(40) NOT NULL,
  `object_id` int unsigned NOT NULL,
  `praticien_id` int unsigned DEFAULT NULL,
  `date` datetime DEFAULT NULL,
  PRIMARY KEY (`prescription_id`)
""",
        """CREATE TABLE `prescription_lignes` (
  `prescription_ligne_id` int unsigned NOT NULL AUTO_INCREMENT,
  `prescription_id` int unsigned NOT NULL,
  `medicament` varchar(255) DEFAULT NULL,
  `posologie` varchar(255) DEFAULT NULL,
  `debut` date DEFAULT NULL,
  `fin` date DEFAULT NULL,
  PRIMARY KEY (`prescription_ligne_id`)
""",
        """CREATE TABLE `allergies` (
  `allergie_id` int unsigned NOT NULL AUTO_INCREMENT,
  `patient_id` int unsigned NOT NULL,
  `allergene` varchar(255) DEFAULT NULL,
  `reaction` varchar(255) DEFAULT NULL,
  `rques` text DEFAULT NULL,
  PRIMARY KEY (`allergie_id`)
""",
        """CREATE TABLE `contacts_urgence` (
  `contact_id` int unsigned NOT NULL AUTO_INCREMENT,
  `patient_id` int unsigned NOT NULL,
  `nom` varchar(255) DEFAULT NULL,
  `prenom` varchar(255) DEFAULT NULL,
  `lien` varchar(255) DEFAULT NULL,
  `tel` varchar(20) DEFAULT NULL,
  `rques` text DEFAULT NULL,
  PRIMARY KEY (`contact_id`)
""",
        """CREATE TABLE `fichiers` (
  `fichier_id` int unsigned NOT NULL AUTO_INCREMENT,
  `object_class` varchar(40) NOT NULL,
  `object_id` int unsigned NOT NULL,
  `file_name` varchar(255) DEFAULT NULL,
  `file_type` varchar(255) DEFAULT NULL,
  `file_size` int unsigned DEFAULT NULL,
  `file_date` datetime DEFAULT NULL,
  PRIMARY KEY (`fichier_id`)
""",
        """CREATE TABLE `user_log` (
  `user_log_id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `user_id` int unsigned DEFAULT NULL,
  `object_class` varchar(40) NOT NULL,
  `object_id` int unsigned NOT NULL,
  `type` varchar(10) DEFAULT NULL,
  `date` datetime NOT NULL,
  `fields` text DEFAULT NULL,
  `extra` json DEFAULT NULL,
  PRIMARY KEY (`user_log_id`)
""",
        """CREATE TABLE `ins_patients` (
  `ins_id` int unsigned NOT NULL AUTO_INCREMENT,
  `patient_id` int unsigned NOT NULL,
  `ins_nir` varchar(15) DEFAULT NULL,
  `oid` varchar(40) DEFAULT NULL,
  `date_qualification` date DEFAULT NULL,
  PRIMARY KEY (`ins_id`)
""",
    )
)


def _fk_indexes() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """An index for each foreign key column that no index starts with (InnoDB needs one)."""
    leading = {(table, columns[0]) for table, columns in INDEXES}
    return tuple(
        (table, (column,)) for table, column, _ in FOREIGN_KEYS if (table, column) not in leading
    )


# (table, columns): the secondary indexes on MariaDB: PostgreSQL's and the foreign keys' own
MARIADB_INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = INDEXES + _fk_indexes()


def _ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def _add_indexes(table: str) -> sql.Composed | None:
    adds = [
        sql.SQL("ADD INDEX {} ({})").format(
            _ident(index_name(table, columns)), sql.SQL(", ").join(map(_ident, columns))
        )
        for name, columns in MARIADB_INDEXES
        if name == table
    ]
    if not adds:
        return None
    return sql.SQL("ALTER TABLE {} {}").format(_ident(table), sql.SQL(", ").join(adds))


def _add_foreign_keys(table: str) -> sql.Composed | None:
    adds = [
        sql.SQL("ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})").format(
            _ident(fk_name(table, column)), _ident(column), _ident(target), _ident(key_of(target))
        )
        for name, column, target in FOREIGN_KEYS
        if name == table
    ]
    if not adds:
        return None
    return sql.SQL("ALTER TABLE {} {}").format(_ident(table), sql.SQL(", ").join(adds))


def create_schema(conn: Connection) -> None:
    """Create the demo tables, their indexes and foreign keys in the connection's database."""
    try:
        for statement in TABLES_DDL:
            conn.execute(statement)
    except errors.DuplicateTable as exc:
        raise DatabaseError(
            "the demo tables already exist in this database",
            hint="use a new, empty database for the demo",
        ) from exc
    add_constraints(conn)


def add_constraints(conn: Connection) -> None:
    """The secondary indexes (one ALTER per table), then the foreign keys; the foreign keys are
    added without the server's check, then checked here (:func:`check_foreign_keys`)."""
    for table in TABLES:
        statement = _add_indexes(table)
        if statement is not None:
            conn.execute(statement)
    with _session(conn, foreign_key_checks=0):
        for table in TABLES:
            statement = _add_foreign_keys(table)
            if statement is not None:
                conn.execute(statement)
    check_foreign_keys(conn)


def drop_constraints(conn: Connection) -> None:
    """Drop the demo tables' foreign keys and secondary indexes (those that exist)."""
    fks = conn.execute(
        "SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS"
        " WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY TABLE_NAME, CONSTRAINT_NAME"
    ).fetchall()
    _drop(conn, "DROP FOREIGN KEY {}", fks)
    indexes = conn.execute(
        "SELECT DISTINCT TABLE_NAME, INDEX_NAME FROM information_schema.STATISTICS"
        " WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME <> 'PRIMARY'"
        " ORDER BY TABLE_NAME, INDEX_NAME"
    ).fetchall()
    _drop(conn, "DROP INDEX {}", indexes)


def _drop(conn: Connection, clause: str, found: list[Any]) -> None:
    by_table: dict[str, list[str]] = {}
    for table, name in found:
        if table in TABLES:
            by_table.setdefault(table, []).append(name)
    for table, names in by_table.items():
        drops = sql.SQL(", ").join(sql.SQL(clause).format(_ident(name)) for name in names)
        conn.execute(sql.SQL("ALTER TABLE {} {}").format(_ident(table), drops))


def check_foreign_keys(conn: Connection) -> None:
    """Every non-null foreign key value has its parent row; else a clear error."""
    for table, column, target in FOREIGN_KEYS:
        query = sql.SQL(
            "SELECT COUNT(*) FROM {} AS c WHERE c.{} IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM {} AS p WHERE p.{} = c.{})"
        ).format(
            _ident(table), _ident(column), _ident(target), _ident(key_of(target)), _ident(column)
        )
        row = conn.execute(query).fetchone()
        if row and row[0]:
            raise DatabaseError(
                f"foreign key {fk_name(table, column)}: {row[0]} row(s) of {table} refer to no "
                f"row of {target}"
            )


@contextmanager
def _session(conn: Connection, **values: int) -> Iterator[None]:
    """Session variables set for the block, restored after (no SET LOCAL in MariaDB)."""
    names = list(values)
    row = conn.execute(
        sql.SQL("SELECT {}").format(sql.SQL(", ").join(sql.SQL("@@SESSION." + n) for n in names))
    ).fetchone()
    saved = dict(zip(names, row or (), strict=True))
    _set(conn, values)
    try:
        yield
    finally:
        _set(conn, saved)


def _set(conn: Connection, values: Mapping[str, Any]) -> None:
    assignments = sql.SQL(", ").join(
        sql.SQL("SESSION " + name + " = {}").format(sql.Literal(int(value)))
        for name, value in values.items()
    )
    conn.execute(sql.SQL("SET {}").format(assignments))


# -- loading ----------------------------------------------------------------------------------

CHUNK_ROWS = 5_000  # rows per bulk request (measured: docs/ENGINES.md, the demo's load)


def _instant_positions() -> dict[str, tuple[int, ...]]:
    return {
        table: tuple(COLUMNS[table].index(column) for column in columns)
        for table, columns in INSTANTS.items()
    }


_INSTANTS = _instant_positions()


def _utc_wall_time(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


class MariaDBLoader:
    """`executemany` in chunks, a transaction per batch (see the module docstring)."""

    def __init__(self, chunk_rows: int = CHUNK_ROWS) -> None:
        self.chunk_rows = chunk_rows

    def prepare(self, batch: Batch) -> Batch:
        """The batch as the driver takes it (run in the generator's thread): instants as their
        wall time in UTC, which the session's `time_zone = '+00:00'` reads back unchanged."""
        for table, positions in _INSTANTS.items():
            rows = batch.get(table)
            if not rows:
                continue
            batch[table] = [
                tuple(_utc_wall_time(v) if i in positions else v for i, v in enumerate(row))
                for row in rows
            ]
        return batch

    @contextmanager
    def loading(self, conn: Connection, ids: Mapping[str, int]) -> Iterator[None]:
        """Constraints dropped, the batches written, constraints built and checked, ANALYZE.
        (AUTO_INCREMENT moves past the ids inserted by itself: `ids` is not needed.)"""
        drop_constraints(conn)
        yield
        add_constraints(conn)
        tables = sql.SQL(", ").join(map(_ident, TABLES))
        conn.execute(sql.SQL("ANALYZE TABLE {}").format(tables)).fetchall()

    def write(self, conn: Connection, batch: Batch) -> None:
        """One transaction: every table's rows in bulk requests of `chunk_rows` rows."""
        from retention.engines.mariadb import bulk  # the driver: only when MariaDB is used

        with conn.transaction():
            for table in LOAD_ORDER:
                rows = batch.get(table)
                if rows:
                    bulk.load(conn, _ident(table), COLUMNS[table], rows, chunk_rows=self.chunk_rows)


# -- the demo's database, and Mediboard's own shapes ----------------------------------------


MEDIBOARD_TABLES: tuple[str, ...] = ("operations", "observations")

_MEDIBOARD_DDL: tuple[str, ...] = (
    """CREATE TABLE `operations` (
  `operation_id` int(11) unsigned NOT NULL AUTO_INCREMENT,
  `sejour_id` int(11) unsigned NOT NULL DEFAULT 0,
  `chir_id` int(11) unsigned DEFAULT NULL,
  `date` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  `libelle` varchar(255) DEFAULT NULL,
  `cote` enum('droit','gauche','bilateral','total','inconnu') NOT NULL DEFAULT 'inconnu',
  `annulee` enum('0','1') NOT NULL DEFAULT '0',
  `rques` text DEFAULT NULL,
  PRIMARY KEY (`operation_id`),
  KEY `sejour_id` (`sejour_id`),
  KEY `date` (`date`)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE `observations` (
  `observation_id` int(11) unsigned NOT NULL AUTO_INCREMENT,
  `object_class` varchar(80) NOT NULL DEFAULT '',
  `object_id` int(11) unsigned NOT NULL DEFAULT 0,
  `user_id` int(11) unsigned DEFAULT NULL,
  `date` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  `degre` enum('low','high','info') NOT NULL DEFAULT 'low',
  `text` text DEFAULT NULL,
  PRIMARY KEY (`observation_id`),
  KEY `object` (`object_class`,`object_id`),
  KEY `date` (`date`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
)

_LIBELLES = (
    "'Arthroscopie du genou', 'Cholecystectomie', 'Prothese totale de hanche', "
    "'Appendicectomie', 'Cure de hernie inguinale', 'Canal carpien'"
)
_OBSERVATIONS = (
    "'Patient calme, constantes stables', 'Douleur controlee sous antalgiques', "
    "'Reprise alimentaire', 'Pansement propre', 'Lever au fauteuil', 'RAS'"
)

# Each operation's id is its stay's; every 11th has no known date (the zero date, the column's
# default); the side is unknown for a quarter. Observations: one per stay (id 2n) and per
# consultation (id 2n+1), every 9th without a date; every 50th names its class in lower case.
_MEDIBOARD_ROWS: tuple[str, ...] = (
    f"""INSERT INTO `operations` (`operation_id`, `sejour_id`, `chir_id`, `date`, `libelle`,
  `cote`, `annulee`)
SELECT s.`sejour_id`, s.`sejour_id`, s.`praticien_id`, s.`entree` + INTERVAL 1 DAY,
  ELT(1 + MOD(s.`sejour_id`, 6), {_LIBELLES}),
  ELT(1 + MOD(s.`sejour_id`, 4), 'droit', 'gauche', 'bilateral', 'inconnu'), s.`annule`
FROM `sejours` AS s WHERE s.`type` = 'comp' AND MOD(s.`sejour_id`, 11) <> 0""",
    f"""INSERT INTO `operations` (`operation_id`, `sejour_id`, `chir_id`, `libelle`, `annulee`)
SELECT s.`sejour_id`, s.`sejour_id`, s.`praticien_id`, ELT(1 + MOD(s.`sejour_id`, 6), {_LIBELLES}),
  s.`annule`
FROM `sejours` AS s WHERE s.`type` = 'comp' AND MOD(s.`sejour_id`, 11) = 0""",
    f"""INSERT INTO `observations` (`observation_id`, `object_class`, `object_id`, `user_id`,
  `date`, `degre`, `text`)
SELECT 2 * s.`sejour_id`, IF(MOD(s.`sejour_id`, 50) = 0, 'csejour', 'CSejour'), s.`sejour_id`,
  s.`praticien_id`, IF(MOD(s.`sejour_id`, 9) = 0, '0000-00-00 00:00:00',
  s.`entree` + INTERVAL 2 HOUR), ELT(1 + MOD(s.`sejour_id`, 3), 'low', 'high', 'info'),
  ELT(1 + MOD(s.`sejour_id`, 6), {_OBSERVATIONS})
FROM `sejours` AS s""",
    f"""INSERT INTO `observations` (`observation_id`, `object_class`, `object_id`, `date`,
  `text`)
SELECT 2 * c.`consultation_id` + 1, 'CConsultation', c.`consultation_id`,
  IF(MOD(c.`consultation_id`, 9) = 0, '0000-00-00 00:00:00', TIMESTAMP(p.`date`, c.`heure`)),
  ELT(1 + MOD(c.`consultation_id`, 6), {_OBSERVATIONS})
FROM `consultations` AS c JOIN `plagesconsult` AS p ON p.`plageconsult_id` = c.`plageconsult_id`""",
)


def add_mediboard_tables(conn: Connection) -> dict[str, tuple[int, int, str]]:
    """Create and fill Mediboard's shapes (module docstring) from the loaded demo; per table,
    its rows, its zero dates and its storage engine. The default demo does not have them: they
    exist on MariaDB only."""
    try:
        for statement in _MEDIBOARD_DDL:
            conn.execute(statement)
    except errors.DuplicateTable as exc:
        raise DatabaseError(
            "the Mediboard tables already exist in this database",
            hint="use a new, empty database for the demo",
        ) from exc
    for statement in _MEDIBOARD_ROWS:
        conn.execute(statement)
    found = {}
    for table in MEDIBOARD_TABLES:
        query = sql.SQL(
            "SELECT COUNT(*), COALESCE(SUM(MONTH({date}) = 0 OR DAY({date}) = 0), 0),"
            " (SELECT ENGINE FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {name})"
            " FROM {table}"
        ).format(date=_ident("date"), name=sql.Literal(table), table=_ident(table))
        rows, zero_dates, engine = conn.execute(query).fetchone()
        found[table] = (int(rows), int(zero_dates), str(engine))
    return found
