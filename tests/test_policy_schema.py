"""`retention schema`: the JSON Schema of policy files that editors use, generated from the
policy model, shipped beside the policies and named by their modelines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from retention.errors import PolicyError
from retention.policy.load import load_policy_bytes
from retention.policy.schema import MODELINE, SCHEMA_FILE, policy_json_schema, render_schema

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "policies").glob("*.yaml"))


def _validator() -> jsonschema.protocols.Validator:
    schema = policy_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_command_prints_the_schema_that_ships_beside_the_policies() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "retention.cli.main", "schema"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == render_schema()
    assert (ROOT / "policies" / SCHEMA_FILE).read_text(encoding="utf-8") == printed, (
        "policies/policy.schema.json is stale: retention schema --out policies/policy.schema.json"
    )


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policies_name_the_schema_and_follow_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == MODELINE
    assert list(_validator().iter_errors(yaml.safe_load(text))) == []


def test_the_schema_carries_descriptions_and_examples() -> None:
    defs = policy_json_schema()["$defs"]
    assert defs["Phase"]["properties"]["action"]["enum"] == [
        "erase",
        "pseudonymize",
        "generalize",
        "scrub",
        "archive",
        "purge",
    ]
    assert "examples" in defs["Subject"]["properties"]["key"]
    assert defs["Polymorphic"]["properties"]["classes"]["description"]


POLICY: dict[str, Any] = {
    "name": "p",
    "subject": {"table": "patients", "key": "patient_id"},
    "retain_until": "today",
    "phases": [{"name": "x", "due": "retain_until", "action": "purge"}],
}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"retain_untill": "today"}, "a misspelt key"),
        ({"phases": [{"name": "x", "due": "today", "action": "purger"}]}, "an unknown action"),
        ({"related": {"links": [{"table": "t"}]}}, "a link of no kind"),
        (
            {"related": {"links": [{"table": "t", "column": "c", "polymorphic": {}}]}},
            "a link of both kinds",
        ),
        ({"dates": {"d": {"latest": "a", "earliest": "b"}}}, "latest and earliest"),
        ({"name": "Dossier Médical"}, "a name commands cannot take"),
    ],
)
def test_editors_flag_what_the_loader_refuses(change: dict[str, Any], why: str) -> None:
    document = {**POLICY, **change}
    assert list(_validator().iter_errors(POLICY)) == []
    assert list(_validator().iter_errors(document)), why
    with pytest.raises(PolicyError):
        load_policy_bytes(json.dumps(document).encode(), "p.yaml")
