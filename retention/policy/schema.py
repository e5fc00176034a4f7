"""The JSON Schema of policy files, for editors: generated from :mod:`retention.policy.model`.

Editors that use `yaml-language-server` (VS Code's YAML extension, Neovim, Emacs, JetBrains,
Helix, ...) complete and validate a policy file whose first lines carry the modeline
:data:`MODELINE`; the schema file itself lies beside the policies (no network needed).
The schema describes the file's shape only: names are checked against the database, and
expressions parsed, by `retention check`.
"""

from __future__ import annotations

import json
from typing import Any

from retention.policy.model import Policy

SCHEMA_FILE = "policy.schema.json"
MODELINE = f"# yaml-language-server: $schema={SCHEMA_FILE}"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file, with the model's descriptions and examples."""
    schema = Policy.model_json_schema()
    schema["title"] = "retention policy"
    schema["description"] = (
        "A retention policy: the data subjects (subject), which rows belong to each "
        "(related), named dates, the end of retention (retain_until) and the phases of a "
        "record's life. Checked against the database by `retention check`."
    )
    return {"$schema": _DIALECT, **schema}


def render_schema() -> str:
    """The schema as the text `retention schema` prints and `policies/` ships."""
    return json.dumps(policy_json_schema(), indent=2, ensure_ascii=False) + "\n"
