"""`retention check --explain`: the relation graph of a policy as a tree, each branch with its
link and the rows it reaches, so that a reviewer sees what a purge reaches before approving."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from retention.engines import Connection
from retention.plan.explain import Branch, explain_graph, render_tree
from retention.policy.check import bound_policies
from tests.fix_engines import EngineDB

ROOT = Path(__file__).resolve().parent.parent


def _walk(branch: Branch, depth: int = 0) -> list[tuple[int, str, str, int]]:
    link = "" if branch.edge is None else (branch.edge.class_value or branch.edge.kind)
    rows = [(depth, branch.table[1], link, branch.rows)]
    for child in branch.children:
        rows += _walk(child, depth + 1)
    return rows


def _count(conn: Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_the_tree_shows_every_path_with_its_link_and_its_rows(engine_demo: EngineDB) -> None:
    demo_conn = engine_demo.conn
    (policy,) = bound_policies(demo_conn, ROOT / "policies", only="dossier-medical")
    tree = {
        (depth, table, link): rows
        for depth, table, link, rows in _walk(explain_graph(demo_conn, policy))
    }

    def count(query: str) -> int:
        return _count(demo_conn, query)

    assert tree[(0, "patients", "")] == count("SELECT count(*) FROM patients")
    assert tree[(1, "sejours", "foreign key")] == count("SELECT count(*) FROM sejours")
    assert tree[(1, "consultations", "column")] == count("SELECT count(*) FROM consultations")
    assert tree[(2, "prescriptions", "CSejour")] == count(
        "SELECT count(*) FROM prescriptions WHERE object_class = 'CSejour'"
    )
    assert tree[(3, "prescription_lignes", "foreign key")] > 0
    # a change-log row about a deleted stay reaches no stay: the tree shows the branch empty
    assert tree[(2, "user_log", "CSejour")] == count(
        "SELECT count(*) FROM user_log u JOIN sejours s ON s.sejour_id = u.object_id "
        "WHERE u.object_class = 'CSejour'"
    )
    assert {table for _, table, _ in tree} == set(t[1] for t in policy.graph.tables)


def test_a_row_whose_parent_is_gone_is_not_counted(engine_demo: EngineDB) -> None:
    demo_conn = engine_demo.conn
    # a patient id no patient has (the demo's ids are unsigned on MariaDB: no -1 there)
    demo_conn.execute(
        "INSERT INTO consultations (patient_id, plageconsult_id) "
        "SELECT max(p.patient_id) + 1000, min(c.plageconsult_id) "
        "FROM patients p CROSS JOIN plagesconsult c"
    )
    (policy,) = bound_policies(demo_conn, ROOT / "policies", only="dossier-medical")
    tree = {(d, t, link): n for d, t, link, n in _walk(explain_graph(demo_conn, policy))}
    assert tree[(1, "consultations", "column")] == _count(
        demo_conn,
        "SELECT count(*) FROM consultations WHERE patient_id IN (SELECT patient_id FROM patients)",
    )
    assert tree[(1, "consultations", "column")] < _count(
        demo_conn, "SELECT count(*) FROM consultations"
    )


def test_check_explain_prints_the_tree(engine_demo: EngineDB) -> None:
    demo_conn = engine_demo.conn
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    environ |= {
        "RETENTION_DATABASE_URL": engine_demo.url,
        "RETENTION_POLICIES_DIR": str(ROOT / "policies"),
        **engine_demo.env(),
    }
    result = subprocess.run(
        [sys.executable, "-m", "retention.cli.main", "check", "--explain"],
        capture_output=True,
        text=True,
        env=environ,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (policy,) = bound_policies(demo_conn, ROOT / "policies", only="dossier-medical")
    for line in render_tree(explain_graph(demo_conn, policy)):
        assert f"      {line}\n" in result.stdout
    assert f"└── {engine_demo.table('user_log')}" in result.stdout
    assert "via object_class = 'CSejour', object_id (polymorphic, no foreign key)" in result.stdout
