"""The policy JSON Schema, published so editors can complete and check policy files.

Why: the built-in policies start with ``# yaml-language-server: $schema=…``; with the schema an
author sees every key's description and a typo is underlined before ``medins policy check`` runs.
"""

from __future__ import annotations

from medins.policy.schema import Policy


def policy_json_schema() -> dict:
    """JSON Schema of a policy file (draft 2020-12, from the pydantic models)."""
    schema = Policy.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "medins policy"
    return schema
