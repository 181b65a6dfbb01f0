"""The bundled source list: the documents and clauses the built-in policies cite.

Why bundled: a policy's ``source:`` prints codes (``SQ-12``, ``A-SQ-4``) and seed lines (``001:L99``); a
citation is only useful if the reader can look it up. ``policies/sources/sources.yaml`` ships beside the
policies (in a clone and inside the wheel) with each document's title, the part each built-in policy
encodes, and every clause's rule and original words, so ``medins policy sources ID`` and ``--explain``
can quote them without any file outside the package.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

#: A rule code (SQ-12, BJE-8, A-SQ-4, SQ-T4) in a ``source`` text.
CODE = re.compile(r"\b(?:A-)?[A-Z]{1,5}-T?\d+[a-z]?\b")


@cache
def source_list() -> dict:
    """``{"documents": …, "policies": …, "clauses": …}`` from the bundled file (empty parts if absent)."""
    import yaml

    from medins.policy.loader import policy_dirs

    for folder in policy_dirs():
        path = Path(folder) / "sources" / "sources.yaml"
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return {key: data.get(key) or {} for key in ("documents", "policies", "clauses")}
    return {"documents": {}, "policies": {}, "clauses": {}}


def codes_in(text: str) -> list[str]:
    """The rule codes a ``source`` text cites, in order, once each."""
    return list(dict.fromkeys(CODE.findall(text or "")))


def clause(code: str) -> dict | None:
    """The bundled entry of a code: ``rule``, and ``cites`` + ``quote`` (a clause) or ``reading`` (an A-* code)."""
    return source_list()["clauses"].get(code)


def policy_citations(model) -> list[str]:
    """Every code a policy's ``source`` fields cite, in file order."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "source" and isinstance(value, str):
                    found.extend(codes_in(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(model.model_dump(mode="json"))
    return list(dict.fromkeys(found))
