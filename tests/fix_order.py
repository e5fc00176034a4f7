"""Pytest plugin: the slowest tests first, so that workers never end on one.

With three workers stealing work (`make unit`), the suite ends when its last test does: a
40-second test handed out near the end made the tail. These tests, the slowest of a run on
this machine (`--durations`), are moved to the front of the collection, in this order; every
other test keeps its place. A name here that matches nothing changes nothing.
"""

from __future__ import annotations

import pytest

SLOWEST = (
    "tests/test_run_mariadb.py::test_a_run_on_mariadb_ends_as_on_postgresql",
    "tests/test_run_mariadb.py::test_kill_9_at_random_instants_on_mariadb_then_rerun",
    "tests/test_mariadb_holds.py::test_the_operator_sees_the_same_on_both_engines",
    "tests/test_privileges.py::test_least_privilege_role_scrubs_and_records_the_ledger",
    "tests/test_archive_crash.py::test_kill_9_between_write_and_delete_then_rerun",
    "tests/test_crash.py::test_kill_9_at_random_points_then_rerun",
    "tests/test_privileges.py::test_least_privilege_role_runs_and_cannot_rewrite_the_audit_trail",
    "tests/test_coverage_cli.py::test_coverage_gaps_exit_3_until_kept_or_covered",
    "tests/test_no_personal_values.py::test_outputs_logs_and_audit_hold_no_personal_value",
    "tests/test_demo_mariadb.py::test_demo_with_a_mariadb_url_runs_every_step_as_on_postgresql",
    "tests/test_scrub.py::test_worker_pool_finds_the_same_spans",
    "tests/test_daemon.py::test_two_daemons_never_overlap",
)


def _rank(item: pytest.Item) -> int:
    base = item.nodeid.split("[", 1)[0]
    return SLOWEST.index(base) if base in SLOWEST else len(SLOWEST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the others keep their order
