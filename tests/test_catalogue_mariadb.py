"""MariaDB's catalogue, read from `information_schema` into the neutral catalogue, on the real
MariaDB server (127.0.0.1:3306, or $RETENTION_TEST_MARIADB_URL's server) with a schema shaped
like Mediboard's: no foreign keys but one, MyISAM tables, zero-date defaults, enums, unsigned
keys, a JSON column, tables without a key. Each test creates and drops its own database."""

from __future__ import annotations

import pytest

from retention.catalog.introspect import Catalog, ColumnKind, ForeignKey, Hook, read_catalog
from retention.db import connect
from retention.engines import Connection, engine_of
from retention.engines.mariadb.catalogue import Catalogue
from retention.errors import DatabaseError
from retention.settings import Settings
from tests.fix_mariadb import server_is_mysql


@pytest.fixture
def maria(mariadb_conn: Connection) -> Connection:
    """The tool's connection to a new, empty MariaDB database (tests/fix_mariadb.py)."""
    return mariadb_conn


MEDIBOARD = (
    # MyISAM, an unsigned key, Mediboard's zero dates, enums
    """CREATE TABLE patients (
        patient_id int(11) unsigned NOT NULL AUTO_INCREMENT,
        nom varchar(255) NOT NULL,
        naissance date NOT NULL DEFAULT '0000-00-00',
        sexe enum('m','f','u') DEFAULT 'u',
        deces datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
        remarques text,
        poids decimal(5,1) unsigned,
        PRIMARY KEY (patient_id),
        KEY nom (nom(20))
    ) ENGINE=MyISAM""",
    """CREATE TABLE sejour (
        sejour_id int(11) unsigned NOT NULL AUTO_INCREMENT,
        patient_id int(11) unsigned NOT NULL DEFAULT 0,
        entree datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
        sortie datetime DEFAULT NULL,
        annule enum('0','1') NOT NULL DEFAULT '0',
        libelle enum('it''s','a,b','back\\\\slash','') NOT NULL DEFAULT '',
        PRIMARY KEY (sejour_id),
        KEY patient_id (patient_id),
        KEY entree (entree, annule)
    ) ENGINE=InnoDB""",
    # the change log: a polymorphic pair, JSON (LONGTEXT + json_valid), ON UPDATE timestamp
    """CREATE TABLE user_log (
        user_log_id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
        object_class varchar(80) NOT NULL,
        object_id int unsigned NOT NULL,
        date datetime NOT NULL,
        extra JSON,
        modifie timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
        FULLTEXT KEY extra_text (object_class),
        KEY object (object_class, object_id)
    ) ENGINE=InnoDB""",
    # a FOREIGN KEY clause on MyISAM: accepted, and ignored by the server
    """CREATE TABLE prescription (
        prescription_id int unsigned NOT NULL PRIMARY KEY,
        patient_id int unsigned,
        FOREIGN KEY (patient_id) REFERENCES patients (patient_id) ON DELETE CASCADE
    ) ENGINE=MyISAM""",
    # the one declared foreign key
    """CREATE TABLE consultation (
        consultation_id int unsigned NOT NULL PRIMARY KEY,
        sejour_id int unsigned,
        CONSTRAINT fk_sejour FOREIGN KEY (sejour_id) REFERENCES sejour (sejour_id)
            ON DELETE CASCADE
    ) ENGINE=InnoDB""",
    # no key; a unique key over a nullable column (NULLs repeat); a unique NOT NULL key
    "CREATE TABLE import_buffer (line text, imported datetime) ENGINE=InnoDB",
    "CREATE TABLE codes (code varchar(10), label varchar(80), UNIQUE KEY (code)) ENGINE=Aria",
    "CREATE TABLE code_alias (alias varchar(10) NOT NULL, UNIQUE KEY (alias)) ENGINE=InnoDB",
    "CREATE VIEW patients_vus AS SELECT patient_id, nom FROM patients",
    """CREATE TRIGGER sejour_supprime AFTER DELETE ON sejour FOR EACH ROW
        INSERT INTO user_log (object_class, object_id, date)
        VALUES ('CSejour', OLD.sejour_id, now())""",
    """CREATE TRIGGER sejour_ajoute AFTER INSERT ON sejour FOR EACH ROW
        INSERT INTO user_log (object_class, object_id, date)
        VALUES ('CSejour', NEW.sejour_id, now())""",
    "INSERT INTO patients (nom) VALUES ('a'), ('b'), ('c')",
)


def _mediboard(conn: Connection) -> Catalog:
    _create(conn)
    return read_catalog(conn)


def _create(conn: Connection) -> None:
    mysql = server_is_mysql()  # no Aria there: MyISAM
    for statement in MEDIBOARD:
        conn.execute(statement.replace("ENGINE=Aria", "ENGINE=MyISAM") if mysql else statement)


def _database(conn: Connection) -> str:
    row = conn.execute("SELECT DATABASE()").fetchone()
    assert row is not None
    return str(row[0])


def test_the_catalogue_holds_the_base_tables_of_the_connections_database(
    maria: Connection,
) -> None:
    catalog = _mediboard(maria)
    db = _database(maria)
    # not the view, nor the tables of the server's other databases
    assert sorted(catalog.tables) == [
        (db, name)
        for name in (
            "code_alias",
            "codes",
            "consultation",
            "import_buffer",
            "patients",
            "prescription",
            "sejour",
            "user_log",
        )
    ]
    assert catalog.search_path == (db,)
    assert catalog.find("sejour") is catalog.tables[(db, "sejour")]
    assert catalog.find(f"{db}.patients") is catalog.tables[(db, "patients")]


@pytest.mark.mariadb_only("MariaDB's JSON is LONGTEXT, MySQL's a type of its own")
def test_columns_carry_a_neutral_kind_and_what_mariadb_adds(maria: Connection) -> None:
    catalog = _mediboard(maria)
    db = _database(maria)
    patients = catalog.tables[(db, "patients")].columns
    sejour = catalog.tables[(db, "sejour")].columns
    log = catalog.tables[(db, "user_log")].columns
    assert {n: c.kind for n, c in patients.items()} == {
        "patient_id": ColumnKind.NUMBER,
        "nom": ColumnKind.TEXT,
        "naissance": ColumnKind.DATE,
        "sexe": ColumnKind.TEXT,
        "deces": ColumnKind.DATETIME,
        "remarques": ColumnKind.TEXT,
        "poids": ColumnKind.NUMBER,
    }
    assert log["modifie"].kind is ColumnKind.TIMESTAMP
    # MariaDB's JSON is LONGTEXT with a json_valid() check
    assert log["extra"].kind is ColumnKind.JSON and log["extra"].is_json
    assert log["extra"].base_type == "longtext"
    assert not log["object_class"].is_json
    # unsigned keys; the declared type kept as the server says it
    assert patients["patient_id"].unsigned and patients["poids"].unsigned
    assert patients["patient_id"].type == "int(11) unsigned"
    assert patients["patient_id"].base_type == "int"
    assert not log["date"].unsigned
    # enums: text, with their values as stored
    assert patients["sexe"].enum_values == ("m", "f", "u")
    assert sejour["libelle"].enum_values == ("it's", "a,b", "back\\slash", "")
    assert patients["nom"].enum_values is None
    # zero-date defaults are kept as the server gives them; no default is None
    assert patients["deces"].default == "'0000-00-00 00:00:00'" and patients["deces"].not_null
    assert sejour["sortie"].default is None and not sejour["sortie"].not_null
    assert sejour["entree"].is_date and patients["naissance"].is_date
    assert patients["nom"].max_length == 255 and patients["remarques"].max_length is None
    # an UPDATE of any column of the row writes `modifie`
    assert log["modifie"].on_update == "current_timestamp()"
    assert log["date"].on_update is None


@pytest.mark.mariadb_only("an Aria table")
def test_myisam_and_aria_tables_are_not_transactional(maria: Connection) -> None:
    catalog = _mediboard(maria)
    db = _database(maria)
    found = {name: (t.transactional, t.storage) for (_, name), t in catalog.tables.items()}
    assert found["patients"] == (False, "MyISAM")
    assert found["prescription"] == (False, "MyISAM")
    assert found["codes"] == (False, "Aria")
    assert found["sejour"] == (True, "InnoDB")
    # MyISAM counts its rows exactly
    assert catalog.tables[(db, "patients")].estimated_rows == 3


def test_keys_and_indexes(maria: Connection) -> None:
    catalog = _mediboard(maria)
    db = _database(maria)
    sejour = catalog.tables[(db, "sejour")]
    log = catalog.tables[(db, "user_log")]
    assert sejour.primary_key == ("sejour_id",)
    assert sejour.is_unique(["sejour_id"]) and not sejour.is_unique(["patient_id"])
    assert sejour.is_indexed(["patient_id"]) and sejour.is_indexed(["entree"])
    assert sejour.is_indexed(["annule", "entree"]) and not sejour.is_indexed(["annule"])
    # a FULLTEXT index finds no value by equality: not an index for lookups
    assert set(log.indexes) == {("user_log_id",), ("object_class", "object_id")}
    # a prefix index still finds rows by the column
    assert catalog.tables[(db, "patients")].is_indexed(["nom"])


def test_tables_without_a_row_key_are_identifiable(maria: Connection) -> None:
    catalog = _mediboard(maria)
    keys = {name: table.row_key for (_, name), table in catalog.tables.items()}
    assert keys["import_buffer"] == ()
    assert keys["codes"] == ()  # unique, but NULLs repeat
    assert keys["code_alias"] == ("alias",)
    assert keys["patients"] == ("patient_id",)
    assert sorted(n for n, k in keys.items() if not k) == ["codes", "import_buffer"]


@pytest.mark.mariadb_only("MySQL names InnoDB's default rule NO ACTION, MariaDB RESTRICT")
def test_the_one_declared_foreign_key_is_read_with_its_delete_rule(maria: Connection) -> None:
    catalog = _mediboard(maria)
    db = _database(maria)
    expected = ForeignKey(
        "fk_sejour",
        (db, "consultation"),
        ("sejour_id",),
        (db, "sejour"),
        ("sejour_id",),
        "cascade",
        "restrict",  # MariaDB's default, said as such
    )
    # the MyISAM table's FOREIGN KEY clause declared nothing
    assert catalog.foreign_keys == (expected,)
    assert catalog.rooted_keys == (expected,)
    assert catalog.referencing((db, "sejour")) == [expected]
    assert catalog.partition_keys == {}


@pytest.mark.mariadb_only("MySQL 8.4+ refuses a foreign key to columns that are no key")
def test_a_composite_foreign_key_keeps_its_column_order(maria: Connection) -> None:
    maria.execute(
        "CREATE TABLE parent (a int, b int, PRIMARY KEY (a, b), KEY (b, a)) ENGINE=InnoDB"
    )
    maria.execute(
        "CREATE TABLE child (x int, y int, CONSTRAINT fk_p FOREIGN KEY (y, x) "
        "REFERENCES parent (b, a) ON DELETE SET NULL ON UPDATE CASCADE) ENGINE=InnoDB"
    )
    db = _database(maria)
    (key,) = read_catalog(maria).foreign_keys
    assert (key.columns, key.ref_columns) == (("y", "x"), ("b", "a"))
    assert (key.table, key.ref_table) == ((db, "child"), (db, "parent"))
    assert (key.on_delete, key.on_update) == ("set null", "cascade")


def test_delete_and_update_triggers_are_hooks(maria: Connection) -> None:
    _create(maria)
    db = _database(maria)
    maria.execute(
        "CREATE TRIGGER patient_modifie BEFORE UPDATE ON patients FOR EACH ROW "
        "SET NEW.nom = upper(NEW.nom)"
    )
    catalog = read_catalog(maria)
    sejour, patients = (db, "sejour"), (db, "patients")
    # the INSERT trigger is none: the tool's DELETE and UPDATE never fire it
    assert catalog.hooks == (
        Hook(patients, "patient_modifie", "trigger", frozenset({"update"}), None, patients),
        Hook(sejour, "sejour_supprime", "trigger", frozenset({"delete"}), None, sejour),
    )


def test_the_tools_own_database_is_never_read(maria: Connection) -> None:
    maria.execute("CREATE TABLE audit (id int PRIMARY KEY)")
    db = _database(maria)
    assert read_catalog(maria, tool_schema=db).tables == {}
    assert list(read_catalog(maria).tables) == [(db, "audit")]


def test_a_connection_without_a_database_is_refused_clearly(mariadb_admin_url: str) -> None:
    with (
        connect(Settings(), url=mariadb_admin_url) as conn,
        pytest.raises(DatabaseError, match="no database"),
    ):
        read_catalog(conn)


def test_read_catalog_asks_the_mariadb_engine(maria: Connection) -> None:
    assert isinstance(engine_of(maria).catalogue, Catalogue)


def test_table_exists_names_tables_exactly(maria: Connection) -> None:
    maria.execute("CREATE TABLE audit (id int)")
    db = _database(maria)
    catalogue = engine_of(maria).catalogue
    assert catalogue.table_exists(maria, db, "audit")
    assert not catalogue.table_exists(maria, db, "Audit")  # names have case on Linux
    assert not catalogue.table_exists(maria, db.upper(), "audit")
    assert not catalogue.table_exists(maria, "nowhere", "audit")


@pytest.mark.mariadb_only("system-versioned tables")
def test_system_versioned_and_memory_tables_are_read(maria: Connection) -> None:
    maria.execute("CREATE TABLE versioned (id int PRIMARY KEY) WITH SYSTEM VERSIONING")
    maria.execute("CREATE TABLE scratch (id int) ENGINE=MEMORY")
    db = _database(maria)
    tables = read_catalog(maria).tables
    # the history's hidden row_start/row_end columns are not the table's own
    assert list(tables[(db, "versioned")].columns) == ["id"]
    assert tables[(db, "versioned")].transactional
    assert not tables[(db, "scratch")].transactional
    # a DELETE or UPDATE there keeps the old rows in its history: check refuses such phases
    assert tables[(db, "versioned")].system_versioned
    assert not tables[(db, "scratch")].system_versioned
    # no ctid: a row is found again only by the table's own key
    assert not read_catalog(maria).row_address
