"""`retention check`: every mistake gets file, line, column, what is wrong and a hint."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.demo.schema import create_schema
from retention.errors import PolicyError, Problem
from retention.policy.check import check_policies
from retention.policy.load import load_policies
from tests.engine_helpers import cli
from tests.test_actions import HEAD

VALID = """\
name: p
subject:
  table: patients
  key: patient_id
dates:
  naissance: {column: naissance, format: YYYY-MM-DD}
  dernier_sejour:
    latest: sortie
    over: sejours
    where: annule = '0'
retain_until: greatest(dernier_sejour + 20 years, naissance + 28 years)
phases:
  - name: purge
    due: retain_until
    action: purge
"""


# an archive is due before retain_until (due at it, `check` warns: its copies expire at once)
ARCHIVE_HEAD = HEAD.replace("    due: seen + 1 year\n", "    due: seen + 6 months\n")


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def _file_problems(tmp_path: Path, text: str) -> list[Problem]:
    with pytest.raises(PolicyError) as caught:
        load_policies(_write(tmp_path, text))
    return caught.value.problems


def _catalog_problems(conn: psycopg.Connection[Any], tmp_path: Path, text: str) -> list[Problem]:
    create_schema(conn)
    return check_policies(conn, _write(tmp_path, text)).problems


def test_valid_policy_binds(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    create_schema(conn)
    result = check_policies(conn, _write(tmp_path, VALID))
    assert result.errors == []
    assert [p.name for p in result.bound] == ["p"]
    tables = {t[1] for t in result.bound[0].graph.tables}
    assert {"patients", "sejours", "allergies", "contacts_urgence", "ins_patients"} <= tables


def test_shipped_policies_are_valid(conn: psycopg.Connection[Any]) -> None:
    create_schema(conn)
    result = check_policies(conn, Path(__file__).resolve().parent.parent / "policies")
    assert result.errors == []
    assert [w.message for w in result.warnings if "without any" in w.message] == []
    assert {p.name for p in result.bound} == {
        "dossier-medical",
        "contacts-patients",
        "journal-modifications",
    }


def test_unknown_key_is_located_with_a_suggestion(tmp_path: Path) -> None:
    problems = _file_problems(tmp_path, VALID.replace("  key: patient_id", "  kee: patient_id"))
    assert len(problems) == 1
    assert problems[0].location.line == 4 and problems[0].location.column == 3
    assert problems[0].message == "unknown key 'kee'"
    assert problems[0].hint == "did you mean 'key'?"


def test_unknown_action_suggests_the_closest(tmp_path: Path) -> None:
    """Said at the key that is wrong (the phase began two lines above), in plain words."""
    problems = _file_problems(tmp_path, VALID.replace("action: purge", "action: purje"))
    assert (problems[0].message, problems[0].hint) == (
        "unknown action 'purje'",
        "did you mean 'purge'?",
    )
    assert (problems[0].location.line, problems[0].location.column) == (15, 13)


def test_a_phases_columns_are_said_at_their_key_with_a_hint(tmp_path: Path) -> None:
    with_columns = VALID.replace("action: purge", "action: purge\n    columns: [tel]")
    (problem,) = _file_problems(tmp_path, with_columns)
    assert problem.message == "action 'purge' acts on whole rows; remove 'columns'"
    assert problem.location.line == 16 and problem.hint is not None
    (problem,) = _file_problems(tmp_path, VALID.replace("action: purge", "action: erase"))
    assert problem.message == "action 'erase' needs 'columns'"
    assert problem.location.line == 15
    assert problem.hint is not None and "columns: [tel, email]" in problem.hint


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    problems = _file_problems(tmp_path, "name: p\nsubject:\n  table: [patients\n")
    assert (
        problems[0].message == "the list opened by [ on line 3 is not closed where YAML expects it"
    )
    assert (problems[0].location.line, problems[0].location.column) == (3, 10)
    problems = _file_problems(tmp_path, "name: p\nsubject: &a\n  table: *b\n")
    assert problems[0].message.startswith("invalid YAML: found undefined alias")
    assert problems[0].location.line == 3


@pytest.mark.parametrize(
    ("old", "new", "where", "message", "hint"),
    [
        (  # one space short of its block
            "    over: sejours",
            "   over: sejours",
            (9, 4),
            "this line is indented 3 space(s), which matches no block above it",
            "indent it with 2 spaces as line 6 or 4 spaces as line 8",
        ),
        (  # deeper than the line above: the rest of its value
            "    over: sejours",
            "      over: sejours",
            (9, 7),
            "line 9 is indented deeper than line 8, so YAML reads it as the rest of line 8's value",
            "indent it with 4 spaces, as line 8",
        ),
        (  # a name at the level of the list's dashes
            "    due: retain_until",
            "  due: retain_until",
            (14, 3),
            "line 14 is at the level of the '- ' of the list item on line 13, without one of "
            "its own",
            "indent it with 4 spaces to belong to that item, or start a new item with '- '",
        ),
        (
            "    action: purge",
            "\taction: purge",
            (15, 1),
            "a tab character: a policy file is indented with spaces only",
            "replace the tab with spaces",
        ),
        (
            "name: p",
            "name: p: v2",
            (1, 8),
            "a second ': ' on line 1: YAML would read the rest as a new name",
            "put the value in quotes: name: 'p: v2'",
        ),
        (
            "    over: sejours",
            "    over sejours",
            (9, 5),
            "line 9 has no ':' after its name",
            "write 'name: value', with a colon and a space",
        ),
        (
            "    where: annule = '0'",
            "    where: \"annule = '0'",
            (10, 12),
            'the text opened by " on line 10 is never closed',
            'close it with " on the same line',
        ),
    ],
)
def test_yaml_syntax_errors_are_said_in_plain_words(
    tmp_path: Path, old: str, new: str, where: tuple[int, int], message: str, hint: str
) -> None:
    """PyYAML's own words ("expected <block end>, but found '<block mapping start>'") tell a
    compliance officer nothing: the line, what is wrong with it, and the spaces to use."""
    assert old in VALID
    (problem,) = _file_problems(tmp_path, VALID.replace(old, new, 1))
    assert (problem.location.line, problem.location.column) == where
    assert problem.message == message
    assert problem.hint is not None and hint in problem.hint


def test_expression_syntax_error_points_inside_the_expression(
    tmp_path: Path, conn: psycopg.Connection[Any]
) -> None:
    text = VALID.replace("retain_until: greatest(", "retain_until: greatest(+ ")
    problems = _catalog_problems(conn, tmp_path, text)
    assert len(problems) == 1
    assert problems[0].location.line == 11
    assert problems[0].location.column is not None and problems[0].location.column > 15


def test_unknown_column_suggests_the_closest(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    problems = _catalog_problems(
        conn, tmp_path, VALID.replace("{column: naissance,", "{column: naissnce,")
    )
    assert [p.message for p in problems] == ["unknown column 'naissnce' in table patients"]
    assert problems[0].hint == "did you mean 'naissance'?"
    assert problems[0].location.line == 6


def test_unknown_table_suggests_the_closest(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    problems = _catalog_problems(conn, tmp_path, VALID.replace("table: patients", "table: patient"))
    assert problems[0].message == "unknown table 'patient'"
    assert problems[0].hint == "did you mean 'patients'?"


def test_text_date_needs_a_format(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    problems = _catalog_problems(conn, tmp_path, VALID.replace(", format: YYYY-MM-DD", ""))
    assert "'naissance' is stored as character varying(10)" in problems[0].message
    assert problems[0].hint is not None and "format" in problems[0].hint


def test_unknown_date_name_in_expression(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    problems = _catalog_problems(
        conn, tmp_path, VALID.replace("naissance + 28 years)", "naisance + 28 years)")
    )
    assert "naisance" in problems[0].message
    assert problems[0].location.line == 11


def test_action_must_fit_the_column_type(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    text = (
        VALID
        + """\
  - name: pseudo
    due: dernier_sejour + 3 years
    action: pseudonymize
    columns: [sexe]
"""
    )
    problems = _catalog_problems(conn, tmp_path, text)
    assert any("too short for a pseudonym" in p.message for p in problems)


def test_erasing_a_not_null_column_needs_a_value(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    text = (
        VALID
        + """\
  - name: effacer
    due: dernier_sejour + 3 years
    action: erase
    columns: [nom]
"""
    )
    problems = _catalog_problems(conn, tmp_path, text)
    assert problems[0].message == "'nom' (text) is NOT NULL and has no default"
    assert problems[0].location.line == 19


def test_key_columns_cannot_be_erased(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    text = (
        VALID
        + """\
  - name: effacer
    due: dernier_sejour + 3 years
    action: erase
    columns: [sejours.patient_id]
"""
    )
    problems = _catalog_problems(conn, tmp_path, text)
    assert "is a key or a link" in problems[0].message


def test_a_clock_that_runs_without_related_rows_is_a_warning(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """greatest() leaves a missing last stay out: a patient with no stay at all would be
    judged on the 28th birthday alone. `check` says so where retain_until is written, with
    the guard that keeps such patients; the guarded clock (the shipped policy's) is silent."""
    create_schema(conn)
    result = check_policies(conn, _write(tmp_path, VALID))
    (warning,) = [w for w in result.warnings if "without any" in w.message]
    assert result.errors == []
    assert warning.location.line == 11  # retain_until
    assert warning.message == (
        "a subject without any sejours row still gets a due date here (dernier_sejour "
        "missing; greatest(), least() and coalesce() leave them out), from naissance alone"
    )
    assert warning.hint is not None and "'if dernier_sejour is null then null else" in warning.hint
    guarded = VALID.replace(
        "retain_until: greatest(",
        "retain_until: if dernier_sejour is null then null else greatest(",
    )
    result = check_policies(conn, _write(tmp_path, guarded))
    assert [w.message for w in result.warnings if "without any" in w.message] == []
    # a phase's own due date is looked at too
    minimise = VALID.replace("due: retain_until", "due: coalesce(dernier_sejour, today)")
    result = check_policies(conn, _write(tmp_path, minimise))
    assert [w.location.line for w in result.warnings if "without any" in w.message] == [11, 14]


def test_the_guard_hinted_covers_every_related_date_the_clock_reads(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A compliance officer's finding: with the last stay and the last consultation combined
    (derniere_venue), the hint said 'if dernier_sejour is null': taken literally, it keeps the
    patients seen only in consultation undeterminable forever. It names the combined date, or
    every related date when none combines them."""
    create_schema(conn)
    consultations = """  derniere_consultation:
    latest: plagesconsult.date
    over: consultations
  derniere_venue: greatest(dernier_sejour, derniere_consultation)
retain_until: greatest(derniere_venue + 20 years, naissance + 28 years)"""
    combined = VALID.replace(
        "retain_until: greatest(dernier_sejour + 20 years, naissance + 28 years)", consultations
    ).replace(
        "dates:\n", "related:\n  links:\n    - {table: consultations, column: patient_id}\ndates:\n"
    )
    (warning,) = [
        w
        for w in check_policies(conn, _write(tmp_path, combined)).warnings
        if "without any" in w.message
    ]
    assert warning.hint is not None and "'if derniere_venue is null then null else" in warning.hint
    apart = combined.replace(
        "retain_until: greatest(derniere_venue + 20 years, naissance + 28 years)",
        "retain_until: greatest(dernier_sejour + 20 years, derniere_consultation + 20 years, "
        "naissance + 28 years)",
    )
    (warning,) = [
        w
        for w in check_policies(conn, _write(tmp_path, apart)).warnings
        if "without any" in w.message
    ]
    assert warning.hint is not None and (
        "'if dernier_sejour is null and derniere_consultation is null then null else"
        in warning.hint
    )


def test_a_text_date_format_that_reads_none_of_the_values_is_a_warning(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A compliance officer's finding: format YYYY-MM-DD over DD/MM/YYYY birth dates, 'ok'
    from check, then every patient undeterminable: no purge ever, silently. check reads the
    column's first values, says how few the format reads, and which format reads them."""
    create_schema(conn)
    for key, born in enumerate(("15/03/1950", "01/12/1961", "29/02/1960", "1970-01-01"), 1):
        conn.execute(
            "INSERT INTO patients (patient_id, nom, prenom, naissance) VALUES (%s, 'N', 'P', %s)",
            (key, born),
        )
    result = check_policies(conn, _write(tmp_path, VALID), read_data=True)
    (warning,) = [w for w in result.warnings if "reads as" in w.message or "read as" in w.message]
    assert warning.message == (
        "only 1 of the first 4 value(s) of patients.naissance read as YYYY-MM-DD: the subjects "
        "of the others are undeterminable (kept, never purged)"
    )
    assert warning.hint == "they read as DD/MM/YYYY (3 of 4): write format: DD/MM/YYYY"
    assert warning.location.line == 6
    right = VALID.replace("format: YYYY-MM-DD", "format: DD/MM/YYYY")
    result = check_policies(conn, _write(tmp_path, right), read_data=True)
    assert not [w for w in result.warnings if "read as" in w.message]


def test_missing_index_is_a_warning(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    create_schema(conn)
    conn.execute("DROP INDEX IF EXISTS sejours_patient_id_idx")
    conn.execute(
        "DO $$ DECLARE r record; BEGIN FOR r IN SELECT indexrelid::regclass AS i "
        "FROM pg_index WHERE indrelid = 'sejours'::regclass AND NOT indisprimary LOOP "
        "EXECUTE 'DROP INDEX ' || r.i; END LOOP; END $$"
    )
    result = check_policies(conn, _write(tmp_path, VALID))
    assert result.errors == []
    assert any("no index on sejours(patient_id)" in w.message for w in result.warnings)


def test_unrelated_table_is_refused(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    text = (
        VALID.replace("over: sejours", "over: plagesconsult")
        .replace("where: annule = '0'", "where: debut is not null")
        .replace("latest: sortie", "latest: date")
    )
    problems = _catalog_problems(conn, tmp_path, text)
    assert problems[0].message == "plagesconsult is not related to the subject"


def test_duplicate_policy_names(tmp_path: Path) -> None:
    _write(tmp_path, VALID, "a.yaml")
    folder = _write(tmp_path, VALID, "b.yaml")
    with pytest.raises(PolicyError) as caught:
        load_policies(folder)
    assert "already used" in caught.value.problems[0].message


def test_a_percent_sign_in_a_name_of_the_graph_is_refused(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    create_schema(conn)
    conn.execute('ALTER TABLE allergies ADD COLUMN "taux%" text')
    problems = check_policies(conn, _write(tmp_path, VALID)).errors
    assert [p.message for p in problems] == [
        "allergies is in the policy's relation graph and has a name containing '%' ('taux%'): "
        "not supported"
    ]
    assert problems[0].hint is not None and "exclude" in problems[0].hint
    assert problems[0].location.line == 3  # subject: table
    # left out of the graph, the table no longer matters (without its foreign key to
    # patients: with it, every purge batch would fail, see test_purge_blocked_by_a_key...)
    conn.execute("ALTER TABLE allergies DROP CONSTRAINT allergies_patient_id_fkey")
    excluded = VALID.replace(
        "  key: patient_id\n", "  key: patient_id\nrelated:\n  exclude: [allergies]\n"
    )
    assert check_policies(conn, _write(tmp_path, excluded)).errors == []


HOOKED = """
CREATE TABLE people (id int PRIMARY KEY, seen date, tel text, nom text,
                     guardian int REFERENCES people ON DELETE SET NULL);
CREATE TABLE visits (id int, person_id int REFERENCES people, year int) PARTITION BY LIST (year);
CREATE TABLE visits_old PARTITION OF visits FOR VALUES IN (2001);
CREATE TABLE visits_new PARTITION OF visits FOR VALUES IN (2024);
CREATE TABLE billing (id int, person_id int);
CREATE TABLE letters (id int PRIMARY KEY, person_id int REFERENCES people ON DELETE CASCADE);
CREATE TABLE history (id int, tel text);
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$;
-- declared on the partitioned table (cloned on each partition), and on one partition only
CREATE TRIGGER visits_all AFTER DELETE ON visits FOR EACH ROW EXECUTE FUNCTION noop();
CREATE TRIGGER bill AFTER DELETE ON visits_old FOR EACH ROW EXECUTE FUNCTION noop();
CREATE TRIGGER on_delete AFTER DELETE ON people FOR EACH ROW EXECUTE FUNCTION noop();
CREATE FUNCTION keep_letter() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$;
CREATE TRIGGER on_delete AFTER DELETE ON letters FOR EACH ROW EXECUTE FUNCTION keep_letter();
CREATE TRIGGER guardian_log AFTER UPDATE ON people FOR EACH ROW EXECUTE FUNCTION noop();
CREATE TRIGGER nom_log AFTER UPDATE OF nom ON people FOR EACH ROW EXECUTE FUNCTION noop();
CREATE TRIGGER off AFTER DELETE OR UPDATE ON people FOR EACH ROW EXECUTE FUNCTION noop();
ALTER TABLE people DISABLE TRIGGER off;
CREATE TRIGGER on_insert BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION noop();
CREATE RULE tel_history AS ON UPDATE TO people DO ALSO INSERT INTO history VALUES (OLD.id, OLD.tel);
CREATE RULE people_insert AS ON INSERT TO people DO ALSO NOTHING;
CREATE RULE billing_kept AS ON DELETE TO visits_new DO ALSO NOTHING;
"""

# the head of test_actions' policies, with the letters left out of the record
HOOKED_POLICY = HEAD.format(name="p").replace(
    "dates:\n", "related:\n  exclude: [letters]\ndates:\n"
)


def _hooks(conn: psycopg.Connection[Any], tmp_path: Path, phase: str) -> list[tuple[str, str]]:
    found = check_policies(conn, _write(tmp_path, HOOKED_POLICY + phase)).problems
    return sorted(
        (p.severity, p.message)
        for p in found
        if " trigger" in p.message
        or " rule" in p.message
        or "triggers" in (p.hint or "")
        or "'triggers'" in p.message
        or "names triggers" in p.message
    )


def test_triggers_and_rules_a_phase_sets_off_are_listed_until_accepted(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    conn.execute(HOOKED)
    # the deletes reach the excluded letters (CASCADE) and update people.guardian (SET NULL);
    # not listed: the disabled trigger, the INSERT ones, the clones of visits_all on the
    # partitions, the rule of a partition (a rule applies to the table a statement names)
    purge = _hooks(conn, tmp_path, "    action: purge\n")
    assert {s for s, _ in purge} == {"warning"}
    archive = _hooks(conn, tmp_path, "    action: archive\n")
    assert [m.split(";")[0].replace("archive:", "purge:") for _, m in archive] == [
        m.split(";")[0] for _, m in purge
    ]
    assert {s for s, _ in archive} == {"error"}
    assert [m.split(";")[0] for _, m in purge] == [
        "purge: public.letters has the DELETE trigger on_delete (keep_letter())",
        "purge: public.people has the DELETE trigger on_delete (noop())",
        "purge: public.people has the UPDATE rule tel_history",
        "purge: public.people has the UPDATE trigger guardian_log (noop())",
        "purge: public.visits (its partition or child table public.visits_old) has the "
        "DELETE trigger bill (noop())",
        "purge: public.visits has the DELETE trigger visits_all (noop())",
    ]
    # a bare name on two tables accepts neither; table.name accepts one
    ambiguous = _hooks(conn, tmp_path, "    action: purge\n    triggers: [on_delete]\n")
    assert (
        "warning",
        "'on_delete' names triggers of 2 tables (public.letters, public.people) that do not "
        "all call one function: not accepted",
    ) in ambiguous
    accepted = _hooks(
        conn,
        tmp_path,
        "    action: purge\n    triggers: [people.on_delete, public.letters.on_delete, "
        "visits_old.bill, visits_all, guardian_log, tel_history, nothing_here]\n",
    )
    assert accepted == [("warning", "'nothing_here' is no trigger or rule this phase sets off")]
    # a column action: UPDATE triggers and rules of its table, not UPDATE OF other columns
    # (nor, above, for the purge's SET NULL of people.guardian: nom_log is UPDATE OF nom)
    erase = _hooks(conn, tmp_path, "    action: erase\n    columns: [tel]\n")
    assert [m.split(";")[0] for _, m in erase] == [
        "erase: public.people has the UPDATE rule tel_history",
        "erase: public.people has the UPDATE trigger guardian_log (noop())",
    ]


def test_an_archive_cannot_accept_a_delete_rule(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """PostgreSQL refuses COPY (DELETE ... RETURNING) on a table with a DELETE rule."""
    conn.execute(HOOKED)
    conn.execute("CREATE RULE people_kept AS ON DELETE TO people DO ALSO NOTHING")
    conn.execute("ALTER TABLE letters DROP CONSTRAINT letters_person_id_fkey")
    conn.execute("ALTER TABLE people DROP CONSTRAINT people_guardian_fkey")
    found = _hooks(
        conn,
        tmp_path,
        "    action: archive\n    triggers: [people.on_delete, visits_old.bill, visits_all, "
        "people_kept]\n",
    )
    assert found == [
        (
            "error",
            "archive: public.people has the DELETE rule people_kept: PostgreSQL cannot delete "
            "and return the rows of a table with a DELETE rule",
        )
    ]


PARTITIONED = """
CREATE TABLE people (id int PRIMARY KEY, seen date);
CREATE TABLE visits (id int, person_id int REFERENCES people ON DELETE SET NULL, born date,
                     part int) PARTITION BY LIST (part);
CREATE TABLE visits_a PARTITION OF visits FOR VALUES IN (1);
CREATE TABLE visits_b PARTITION OF visits FOR VALUES IN (2) PARTITION BY RANGE (born);
CREATE TABLE visits_b_old PARTITION OF visits_b FOR VALUES FROM ('1900-01-01') TO ('2000-01-01');
CREATE TABLE visits_b_new PARTITION OF visits_b FOR VALUES FROM ('2000-01-01') TO ('2100-01-01');
ALTER TABLE visits_a ADD PRIMARY KEY (id);
CREATE TABLE invoices (id int, visit_id int REFERENCES visits_a ON DELETE CASCADE);
CREATE TABLE "Odd.Log" (id int);
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
-- the same name on two partitions, for different events
CREATE TRIGGER hist AFTER UPDATE ON visits_a FOR EACH ROW EXECUTE FUNCTION noop();
CREATE TRIGGER hist AFTER DELETE ON visits_b_old FOR EACH ROW EXECUTE FUNCTION noop();
CREATE TRIGGER moved AFTER INSERT ON visits_b_new FOR EACH ROW EXECUTE FUNCTION noop();
CREATE TRIGGER "Bill.Del" AFTER DELETE ON invoices FOR EACH ROW EXECUTE FUNCTION noop();
CREATE TRIGGER touch BEFORE UPDATE ON visits FOR EACH ROW EXECUTE FUNCTION noop();
"""


def test_partitions_keys_through_partitions_and_moved_rows(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    conn.execute(PARTITIONED)
    head = ARCHIVE_HEAD.format(name="p")
    # an archive: visits_b_old's DELETE trigger, though visits_a has one of the same name for
    # UPDATE; invoices is reached through its key to the partition visits_a (CASCADE); the
    # SET NULL key of visits is a link of the record (its rows go first): `touch` never runs
    archive = check_policies(conn, _write(tmp_path, head + "    action: archive\n")).problems
    assert sorted(p.message.split(";")[0] for p in archive if p.severity == "error") == [
        "archive: public.invoices has the DELETE trigger Bill.Del (noop())",
        # the key is declared on the partition visits_a: it counts for visits
        "archive: public.invoices references visits through invoices_visit_id_fkey ON DELETE "
        "CASCADE, which is not a link of the record: archiving would delete or change rows "
        "that no archive holds",
        "archive: public.visits (its partition or child table public.visits_b_old) has the "
        "DELETE trigger hist (noop())",
    ]
    accepted = (
        head + '    action: archive\n    triggers: ["invoices.Bill.Del", visits_b_old.hist]\n'
    )
    left = check_policies(conn, _write(tmp_path, accepted)).problems
    assert [p.message.split(",")[0] for p in left] == [
        "archive: public.invoices references visits through invoices_visit_id_fkey ON DELETE "
        "CASCADE"
    ]
    # generalising visits.born to the year moves rows between visits_b's partitions
    moved = check_policies(
        conn,
        _write(
            tmp_path,
            head + "    action: generalize\n    columns: [{column: visits.born, to: year}]\n",
        ),
    ).problems
    assert sorted(p.message.split(";")[0] for p in moved) == [
        "generalize: public.visits (its partition or child table public.visits_a) has the "
        "UPDATE trigger hist (noop())",
        "generalize: public.visits (its partition or child table public.visits_b_new) has the "
        "INSERT trigger moved (noop())",
        "generalize: public.visits (its partition or child table public.visits_b_old) has the "
        "DELETE trigger hist (noop())",
        "generalize: public.visits has the UPDATE trigger touch (noop())",
    ]
    location = check_policies(
        conn, _write(tmp_path, head + "    action: purge\n    triggers: [touch, nothing]\n")
    ).problems
    unknown = [p for p in location if "'nothing'" in p.message]
    assert unknown[0].location.line == 10 and unknown[0].location.column == 23


def test_a_run_logs_the_check_warnings(
    demo_conn: psycopg.Connection[Any], demo_db_url: str
) -> None:
    """The warnings reach the daemon's journal, not only `retention check`."""
    demo_conn.execute(
        "CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RETURN OLD; END $$;"
        "CREATE TRIGGER allergies_history AFTER DELETE ON allergies "
        "FOR EACH ROW EXECUTE FUNCTION public.noop()"
    )
    done = cli(demo_db_url, "run", "--yes", "--allow-large", "--reason", "test")
    assert done.returncode == 0, done.stderr
    assert "policy check: " in done.stderr
    assert "purge: public.allergies has the DELETE trigger allergies_history" in done.stderr


def test_a_lock_timeout_is_said_in_the_tools_words(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    """Its server text has a CONTEXT ('while deleting tuple ...'), so it is not kept; the
    operator still learns it was a lock timeout."""
    from retention.engines.errors import describe_error as _describe

    conn.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
    with psycopg.connect(db_url) as holder:
        holder.execute("SELECT * FROM t FOR UPDATE")
        with psycopg.connect(db_url, autocommit=True) as other:
            other.execute("SET lock_timeout = '100ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable) as caught:
                other.execute("DELETE FROM t")
    assert caught.value.diag.context  # the server's text is not kept
    assert _describe(caught.value).startswith(
        "lock timeout: rows or a table held by another session: LockNotAvailable (SQLSTATE 55P03)"
    )


def test_what_fires_is_what_is_listed(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    """The partitions' copies of a trigger fire, each with its own enabled state; statement
    triggers fire on the table the statement names only; a key to an inheritance child acts
    for its parent; a column another table references cannot be changed."""
    conn.execute(
        """
        CREATE TABLE people (id int PRIMARY KEY, seen date, nir text UNIQUE);
        CREATE TABLE visits (id int, person_id int REFERENCES people, part int)
            PARTITION BY LIST (part);
        CREATE TABLE visits_a PARTITION OF visits FOR VALUES IN (1);
        CREATE TABLE stays (id int PRIMARY KEY, person_id int REFERENCES people);
        CREATE TABLE stays_2001 () INHERITS (stays);
        ALTER TABLE stays_2001 ADD PRIMARY KEY (id);
        CREATE TABLE bills (id int, stay_id int REFERENCES stays_2001 ON DELETE CASCADE);
        CREATE TABLE cards (nir text REFERENCES people (nir) ON UPDATE CASCADE);
        CREATE SCHEMA other;
        CREATE TABLE other.bills (id int);
        CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
        CREATE TRIGGER wipe AFTER DELETE ON visits FOR EACH ROW EXECUTE FUNCTION noop();
        ALTER TABLE ONLY visits DISABLE TRIGGER wipe;  -- visits_a's copy stays enabled
        CREATE TRIGGER once AFTER DELETE ON visits_a FOR EACH STATEMENT EXECUTE FUNCTION noop();
        CREATE TRIGGER "bill, paid" AFTER DELETE ON bills FOR EACH ROW EXECUTE FUNCTION noop();
        CREATE TRIGGER "bill, paid" AFTER DELETE ON other.bills FOR EACH ROW
            EXECUTE FUNCTION noop();
        """
    )
    head = HEAD.format(name="p")
    purge = check_policies(conn, _write(tmp_path, head + "    action: purge\n")).problems
    assert sorted((p.message.split(";")[0], p.hint) for p in purge) == [
        (
            "purge: public.bills has the DELETE trigger bill, paid (noop())",
            "review what it does, then accept it in this phase: 'triggers: "
            '["public.bills.bill, paid"]\' (if it writes old values to a table, cover that '
            "table with a policy)",
        ),
        (
            "purge: public.visits has the DELETE trigger wipe (noop())",
            "review what it does, then accept it in this phase: 'triggers: [\"visits.wipe\"]' "
            "(if it writes old values to a table, cover that table with a policy)",
        ),
    ]
    accepted = head + '    action: purge\n    triggers: ["public.bills.bill, paid", visits.wipe]\n'
    assert check_policies(conn, _write(tmp_path, accepted)).problems == []
    conn.execute("ALTER TABLE visits_a DISABLE TRIGGER wipe")
    quiet = check_policies(conn, _write(tmp_path, head + "    action: purge\n")).problems
    assert [p.message.split(";")[0] for p in quiet] == [
        "purge: public.bills has the DELETE trigger bill, paid (noop())"
    ]
    # ON UPDATE CASCADE: the card's NIR follows the patient's, so its history trigger runs
    conn.execute(
        "CREATE TRIGGER card_history AFTER UPDATE ON cards FOR EACH ROW EXECUTE FUNCTION noop();"
        "CREATE TRIGGER card_stamp AFTER UPDATE ON cards FOR EACH STATEMENT "
        "EXECUTE FUNCTION noop()"  # sees no row: not listed
    )
    erase = head + "    action: erase\n    columns: [nir]\n"
    assert [
        p.message.split(";")[0] for p in check_policies(conn, _write(tmp_path, erase)).problems
    ] == ["erase: public.cards has the UPDATE trigger card_history (noop())"]
    conn.execute("CREATE TABLE badges (nir text REFERENCES people (nir))")  # NO ACTION
    refused = check_policies(conn, _write(tmp_path, erase)).errors
    assert [p.message for p in refused] == [
        "'nir' of people is referenced by the foreign key badges_nir_fkey of public.badges ON "
        "UPDATE NO ACTION: erase would fail for every row it references"
    ]


def test_one_audit_trigger_on_every_table_is_accepted_once(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Audit scripts put the same trigger on every table (and on legacy inheritance children):
    a bare name whose triggers all call one function accepts them all; `table.name` is the
    trigger declared on that table, not also its children's of the same name."""
    conn.execute(
        """
        CREATE TABLE people (id int PRIMARY KEY, seen date);
        CREATE TABLE stays (id int PRIMARY KEY, person_id int REFERENCES people);
        CREATE TABLE stays_2001 () INHERITS (stays);
        CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RETURN NULL; END $$;
        CREATE FUNCTION other() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
        CREATE TRIGGER audit AFTER DELETE ON people FOR EACH ROW EXECUTE FUNCTION audit_row();
        CREATE TRIGGER audit AFTER DELETE ON stays FOR EACH ROW EXECUTE FUNCTION audit_row();
        CREATE TRIGGER audit AFTER DELETE ON stays_2001 FOR EACH ROW EXECUTE FUNCTION other();
        """
    )
    head = ARCHIVE_HEAD.format(name="p") + "    action: archive\n"
    mixed = check_policies(conn, _write(tmp_path, head + "    triggers: [audit]\n")).problems
    assert "that do not all call one function: not accepted" in mixed[0].message
    named = head + "    triggers: [people.audit, stays.audit, stays_2001.audit]\n"
    assert check_policies(conn, _write(tmp_path, named)).problems == []
    conn.execute(
        "CREATE OR REPLACE TRIGGER audit AFTER DELETE ON stays_2001 FOR EACH ROW "
        "EXECUTE FUNCTION audit_row()"
    )
    assert check_policies(conn, _write(tmp_path, head + "    triggers: [audit]\n")).problems == []


def test_on_update_chains_are_followed_to_their_end(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A value changed in people travels down ON UPDATE CASCADE keys, whatever the order of
    their names: the last table's history trigger is listed; a NO ACTION key further down the
    chain, or declared on a partition, refuses the column."""
    conn.execute(
        """
        CREATE TABLE people (id int PRIMARY KEY, seen date, nir text UNIQUE, ipp text UNIQUE);
        CREATE TABLE zz_cards (nir text UNIQUE REFERENCES people (nir) ON UPDATE CASCADE);
        CREATE TABLE aa_card_log (nir text REFERENCES zz_cards (nir) ON UPDATE CASCADE);
        CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
        CREATE TRIGGER hist AFTER UPDATE ON aa_card_log FOR EACH ROW EXECUTE FUNCTION noop();
        CREATE TABLE visits (ipp text, part int) PARTITION BY LIST (part);
        CREATE TABLE visits_a PARTITION OF visits FOR VALUES IN (1);
        ALTER TABLE visits_a ADD FOREIGN KEY (ipp) REFERENCES people (ipp);
        """
    )
    head = HEAD.format(name="p")
    erase_nir = head + "    action: erase\n    columns: [nir]\n"
    found = check_policies(conn, _write(tmp_path, erase_nir)).problems
    assert [p.message.split(";")[0] for p in found] == [
        "erase: public.aa_card_log has the UPDATE trigger hist (noop())"
    ]
    conn.execute(
        "ALTER TABLE aa_card_log ADD UNIQUE (nir);"
        "CREATE TABLE badges (nir text REFERENCES aa_card_log (nir))"  # ON UPDATE NO ACTION
    )
    deep = check_policies(conn, _write(tmp_path, erase_nir)).errors
    assert [p.message for p in deep] == [
        "'nir' of people (its value reaches nir of public.aa_card_log through the keys' ON "
        "UPDATE actions) is referenced by the foreign key badges_nir_fkey of public.badges ON "
        "UPDATE NO ACTION: erase would fail for every row it references"
    ]
    erase_ipp = head + "    action: erase\n    columns: [ipp]\n"
    partition = check_policies(conn, _write(tmp_path, erase_ipp)).errors
    assert [p.message.split(" ON UPDATE")[0] for p in partition] == [
        "'ipp' of people is referenced by the foreign key visits_a_ipp_fkey of public.visits"
    ]


def test_only_values_that_change_are_checked_and_nulls_meet_not_null(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A composite key passes on the positions that change (site keeps its value: the NO
    ACTION key on it never checks); an erased value cascades as a NULL, which a NOT NULL
    referencing column refuses; a self-reference names the column reached."""
    conn.execute(
        """
        CREATE TABLE people (id int PRIMARY KEY, seen date, nir text, site int, alias text,
                             code text UNIQUE, UNIQUE (nir, site), UNIQUE (alias));
        CREATE TABLE cards (nir text, site int UNIQUE,
                            FOREIGN KEY (nir, site) REFERENCES people (nir, site)
                            ON UPDATE CASCADE);
        CREATE TABLE badges (site int REFERENCES cards (site));
        CREATE TABLE stickers (code text NOT NULL REFERENCES people (code) ON UPDATE CASCADE);
        """
    )
    head = HEAD.format(name="p")
    erase = head + "    action: erase\n    columns: [nir]\n"
    assert check_policies(conn, _write(tmp_path, erase)).problems == []
    code = head + "    action: erase\n    columns: [code]\n"
    assert [p.message for p in check_policies(conn, _write(tmp_path, code)).errors] == [
        "'code' of people: a NULL would reach code of public.stickers (NOT NULL) through the "
        "foreign key stickers_code_fkey ON UPDATE CASCADE: erase would fail for every row it "
        "references"
    ]
    neutral = head + "    action: erase\n    columns: [{column: code, value: 'X'}]\n"
    assert check_policies(conn, _write(tmp_path, neutral)).errors == []
    conn.execute(
        "CREATE TABLE aliases (alias text REFERENCES people (alias));"
        "ALTER TABLE people ADD CONSTRAINT alias_of FOREIGN KEY (alias) "
        "REFERENCES people (code) ON UPDATE CASCADE"
    )
    self_ref = head + "    action: pseudonymize\n    columns: [code]\n"
    assert [p.message for p in check_policies(conn, _write(tmp_path, self_ref)).errors] == [
        "'code' of people (its value reaches alias of public.people through the keys' ON UPDATE "
        "actions) is referenced by the foreign key aliases_alias_fkey of public.aliases ON "
        "UPDATE NO ACTION: pseudonymize would fail for every row it references"
    ]


def test_an_archive_due_when_retention_has_ended_is_a_warning(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """An archive is the copy kept until the end of retention; due at retain_until (or
    later), archive expiry destroys it after retain_until's month, at the next run for most
    records: `check` says so on the phase's due, with the two usual intents in the hint. An
    archive due before retain_until for some subjects is silent, as is a purge."""
    create_schema(conn)

    def archive_warnings(due: str) -> list[Problem]:
        text = VALID.replace(
            "due: retain_until\n    action: purge", f"due: {due}\n    action: archive"
        )
        result = check_policies(conn, _write(tmp_path, text))
        assert result.errors == []
        return [w for w in result.warnings if "retention has ended" in w.message]

    (warning,) = archive_warnings("retain_until")
    assert warning.location.line == 14  # the phase's due
    assert warning.message.startswith("phase 'purge' archives records whose retention has ended")
    assert "or year, with archive_group: year" in warning.message
    assert warning.hint is not None and "'action: purge'" in warning.hint
    assert len(archive_warnings("retain_until + 1 year")) == 1
    # later for every sample subject, though not written from retain_until
    assert len(archive_warnings("greatest(dernier_sejour + 30 years, naissance + 30 years)")) == 1
    # before retain_until for some subjects: an intermediate archive
    assert archive_warnings("dernier_sejour + 5 years") == []
    assert archive_warnings("dernier_sejour + 25 years") == []  # before the 28th birthday's end
    result = check_policies(conn, _write(tmp_path, VALID))  # a purge at retain_until
    assert [w for w in result.warnings if "retention has ended" in w.message] == []
    # a review's findings: a date that may be missing is sampled missing too (the living are
    # archived at 5 years here), and dates too many to sample apart are not sampled alike
    dead = VALID.replace(
        "dates:\n", "dates:\n  deces: {column: deces, if_missing: 'null'}\n"
    ).replace("due: retain_until\n    action: purge", "due: DUE\n    action: archive")
    living = "if deces is not null then retain_until else dernier_sejour + 5 years"
    result = check_policies(conn, _write(tmp_path, dead.replace("DUE", living)))
    assert result.errors == []
    assert [w for w in result.warnings if "retention has ended" in w.message] == []
    dying = "if deces is not null then retain_until else retain_until + 1 day"
    result = check_policies(conn, _write(tmp_path, dead.replace("DUE", dying)))
    assert len([w for w in result.warnings if "retention has ended" in w.message]) == 1
    many = VALID.replace(
        "dates:\n",
        "dates:\n"
        + "".join(
            f"  d{i}: {{latest: sortie, over: sejours, where: \"annule = '{i}'\"}}\n"
            for i in range(4)
        ),
    )
    due = "if d0 is null and d1 is null and d2 is null and d3 is null then null else naissance"
    text = many.replace("due: retain_until\n    action: purge", f"due: {due}\n    action: archive")
    result = check_policies(conn, _write(tmp_path, text))
    assert result.errors == []
    assert [w for w in result.warnings if "retention has ended" in w.message] == []
    written = many.replace(
        "due: retain_until\n    action: purge", "due: retain_until + 2 months\n    action: archive"
    )
    assert [
        w.location.line
        for w in check_policies(conn, _write(tmp_path, written)).warnings
        if "retention has ended" in w.message
    ] == [18]
