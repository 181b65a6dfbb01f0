"""The published policy JSON Schema holds for what authors write (issue 15: it rejected 8 of 9 built-ins)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from medins.policy.jsonschema import policy_json_schema

POLICIES = Path(__file__).resolve().parents[2] / "policies"


class _Yaml12Loader(yaml.SafeLoader):
    """YAML as an editor's language server reads it (YAML 1.2 core: ``2009-01-01`` is a string)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _validator() -> jsonschema.Draft202012Validator:
    schema = policy_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_builtin_policy_validates_against_the_schema(path: Path) -> None:
    """An editor using the shipped schema underlines nothing in a built-in policy."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Yaml12Loader)
    errors = [f"{list(e.absolute_path)}: {e.message[:120]}" for e in _validator().iter_errors(data)]
    assert not errors, errors


def test_schema_uses_only_standard_keywords() -> None:
    """No pydantic-only keyword (``ge``/``le``) leaks into the published schema."""
    text = json.dumps(policy_json_schema())
    assert '"ge":' not in text and '"le":' not in text


def test_schema_still_catches_mistakes() -> None:
    """The schema is not made permissive: unknown keys and a rate that is not a number are flagged."""
    validator = _validator()
    policy = yaml.load((POLICIES / "suqian-2007.yaml").read_text(encoding="utf-8"), Loader=_Yaml12Loader)
    policy["parameterz"] = {}
    policy["parameters"]["fund_cap_year"]["scale"] = [{"rate": "lots"}]
    messages = " ".join(e.message for e in validator.iter_errors(policy))
    assert "parameterz" in messages
    assert "lots" in messages


def test_shipped_schema_is_generated() -> None:
    """policies/policy.schema.json is what `medins policy schema` prints (regenerate it after a schema change)."""
    shipped = json.loads((POLICIES / "policy.schema.json").read_text(encoding="utf-8"))
    assert shipped == policy_json_schema()
