"""The policy JSON Schema, published so editors can complete and check policy files.

Why: the built-in policies start with ``# yaml-language-server: $schema=…``; with the schema an
author sees every key's description and a typo is underlined before ``medins policy check`` runs.

Why the post-processing: the schema pydantic derives describes Python values, not the YAML a person
writes. The loader reads every scalar as text (``value: 40000`` and ``value: "40000"`` are the same
number, ``rate: 55%`` is a rate), so the published schema must accept what the loader accepts, in
standard JSON Schema only (no pydantic-specific keywords such as ``ge``), and must not depend on the
pydantic version that generated it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from medins.policy.schema import Policy

#: Text the loader reads as a number: ``5000``, ``1,000.50``, ``55%``, ``0.55``, ``-10%``.
NUMBER_TEXT = r"^\s*[+-]?[0-9][0-9,]*(\.[0-9]+)?\s*%?\s*$"
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def policy_json_schema() -> dict:
    """JSON Schema of a policy file (draft 2020-12, from the pydantic models, made portable)."""
    for field in Policy.model_fields.values():  # defaults such as ``scope: Scope`` are written into the schema:
        if isinstance(field.default, BaseModel):  # their models defer their build (``defer_build``), so build them
            type(field.default).model_rebuild()
    schema = _portable(Policy.model_json_schema(mode="validation"))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "medins policy"
    return schema


def _is_decimal(node: dict) -> bool:
    """pydantic's form of a Decimal: a number, or a string (with a digits pattern or none, by version)."""
    options = node.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or not all(isinstance(o, dict) for o in options):
        return False
    kinds = sorted(str(o.get("type")) for o in options)
    string = next((o for o in options if o.get("type") == "string"), {})
    return kinds == ["number", "string"] and not ({"enum", "const", "format"} & set(string))


def _portable(node: Any) -> Any:
    """Rewrite one schema node (recursively) into what the YAML loader accepts."""
    if isinstance(node, list):
        return [_portable(item) for item in node]
    if not isinstance(node, dict):
        return node
    decimal = _is_decimal(node)  # decided on pydantic's own form, before its branches are rewritten
    node = {key: _portable(value) for key, value in node.items()}
    bounds = {_BOUNDS[key]: node.pop(key) for key in list(node) if key in _BOUNDS}
    if decimal:
        # bounds may sit on the number branch or beside ``anyOf`` (pydantic versions differ): all go on the number
        number = next(o for o in node["anyOf"] if o.get("type") == "number")  # kept as it was: not a string
        beside = {key: node.pop(key) for key in list(node) if key in _BOUNDS.values()}
        bounds = {**{k: v for k, v in number.items() if k != "type"}, **beside, **bounds}
        node["anyOf"] = [{"type": "number", **dict(sorted(bounds.items()))}, {"type": "string", "pattern": NUMBER_TEXT}]
    elif bounds:
        node.update(bounds)
    if node.get("type") == "string" and not ({"pattern", "enum", "const", "format"} & set(node)):
        node["type"] = ["string", "number"]  # a scalar such as `value: 40000` is read as its text
    return node
