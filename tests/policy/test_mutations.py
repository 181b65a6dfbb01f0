"""Policies are validated like code: a one-character typo either fails ``policy check`` or changes nothing.

For each built-in policy with acceptance cases, every code (vocabulary lists, hospital zones and
kinds, scope categories, table keys), every name (parameters, scale references) and every word of
every expression (names, functions, text literals) is mutated by one character — dropped,
duplicated or swapped with its neighbour, chosen deterministically — and the mutant must either be
refused by the same checks as ``medins policy check`` or settle every acceptance case of that policy
exactly as the original does (all output fields, not only the expected ones). A mutant that passes
the check and changes a payment is a silent wrong answer: the test names it.

Numbers and operators are not mutated: ``5000`` → ``500`` is a different policy, not a typo a
checker could know about. Run ``python tests/policy/test_mutations.py`` for the tried/caught counts
quoted in the README.
"""

from __future__ import annotations

import copy
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

if __name__ == "__main__":  # run as a script: import this worktree's medins, not an installed one
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest
import yaml
from pydantic import ValidationError

from medins.api import settle_bills
from medins.errors import InputError
from medins.policy.compiled import compile_policy
from medins.policy.loader import builtin_policies, check_expressions
from medins.policy.schema import Policy, iter_expressions
from medins.policy.yamlsource import load_yaml

ACCEPTANCE = Path(__file__).resolve().parents[1] / "acceptance"
#: Mutants tried per policy at most (a deterministic spread over all sites), so the test stays fast.
PER_POLICY = 120
#: YAML keys whose list items / value are vocabulary codes.
CODE_KEYS = {"excluded_causes", "excluded_zones", "known", "default", "zone", "kind", "categories"}
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|'[^']*'")


class _DecimalLoader(yaml.SafeLoader):
    """Acceptance files: YAML floats as Decimal (money never through a float)."""


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: Decimal(node.value))


@dataclass(frozen=True)
class Site:
    """Where a mutation lands: a path in the policy data, and a character span of the text there.

    ``key`` set: the mutation renames the mapping key at ``path`` (a parameter name, a table key).
    """

    path: tuple
    start: int
    end: int
    key: bool = False


def _expression_paths(data: dict) -> set[tuple]:
    """Paths of expression values, from the validated model (the schema knows which fields are expressions)."""
    return {loc for loc, _text, _holder in iter_expressions(Policy.model_validate(data))}


def sites(data: dict) -> list[Site]:
    """Every code, name and expression word of a policy (in document order)."""
    exprs = _expression_paths(data)
    found: list[Site] = []

    def walk(node: object, path: tuple) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                here = (*path, k)
                named = (path and path[-1] == "parameters") or "values" in path  # a parameter name or a table key
                if named and isinstance(k, str) and re.fullmatch(r"[a-z][a-z0-9_]*", k):
                    found.append(Site(here, 0, len(k), key=True))  # a parameter name or a table key
                if here in exprs and isinstance(v, str):
                    found.extend(Site(here, m.start(), m.end()) for m in WORD.finditer(v))
                elif isinstance(v, str) and (k in CODE_KEYS or (k == "scale" and "bands" in path)):
                    found.append(Site(here, 0, len(v)))
                else:
                    walk(v, here)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str) and path and path[-1] in CODE_KEYS:
                    found.append(Site((*path, i), 0, len(item)))
                else:
                    walk(item, (*path, i))

    walk(data, ())
    return found


def _mutate_text(text: str, site: Site, kind: int, pos: int) -> str | None:
    """Drop (0), duplicate (1) or swap with the next (2) the character at ``pos`` inside the site's span."""
    word = text[site.start:site.end]
    inner = (1, len(word) - 1) if word.startswith("'") else (0, len(word))
    span = inner[1] - inner[0]
    if span < 1 or (kind == 2 and span < 2):
        return None
    i = inner[0] + pos % (span - 1 if kind == 2 else span)
    if kind == 0:
        new = word[:i] + word[i + 1:]
    elif kind == 1:
        new = word[:i] + word[i] + word[i:]
    else:
        new = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return None if new == word else text[:site.start] + new + text[site.end:]


def mutants(data: dict, limit: int = PER_POLICY) -> Iterator[tuple[str, dict]]:
    """Deterministic one-character mutants: (description, mutated data), spread over all sites."""
    all_sites = sites(data)
    step = max(1, len(all_sites) * 3 // limit) if limit else 1
    candidates = [(s, kind) for s in all_sites for kind in range(3)][::step]
    for n, (site, kind) in enumerate(candidates):
        pos = zlib.crc32(repr((site, n)).encode())
        mutated = copy.deepcopy(data)
        parent = mutated
        for part in site.path[:-1]:
            parent = parent[part]
        last = site.path[-1]
        if site.key:
            new_key = _mutate_text(last, site, kind, pos)
            if new_key is None or new_key in parent:
                continue
            parent[new_key] = parent.pop(last)
            yield f"{'.'.join(map(str, site.path))}: key {last!r} -> {new_key!r}", mutated
        else:
            new = _mutate_text(parent[last], site, kind, pos)
            if new is None:
                continue
            parent[last] = new
            yield f"{'.'.join(map(str, site.path))}: {data_at(data, site.path)!r} -> {new!r}", mutated


def data_at(data: object, path: tuple) -> object:
    for part in path:
        data = data[part]  # type: ignore[index]
    return data


def passes_check(data: dict, positions, name: str) -> Policy | None:
    """The mutant's model when it passes the checks of ``medins policy check``, else None."""
    try:
        model = Policy.model_validate(data)
    except ValidationError:
        return None
    if check_expressions(model, positions, name):
        return None
    return model


def outcomes(model: Policy, doc: dict) -> object:
    """Every acceptance case and sequence of the policy settled under ``model``, as one claims table.

    Why one table: each case (and each sequence) gets a person of its own, so nothing flows between
    them and one settlement gives what settling them one by one gives — at a tenth of the cost.
    """
    try:
        policy = compile_policy(model, "<mutant>")
    except ValueError as exc:
        return f"compile: {exc}"
    bills = []
    for i, case in enumerate(doc.get("cases") or []):
        bills.append(_as_person(case["bill"], f"case{i}"))
    for j, seq in enumerate(doc.get("sequences") or []):
        bills += [_as_person(bill, f"seq{j}") for bill in seq["claims"]]
    if not bills:
        return []
    try:
        return settle_bills(policy, bills)
    except InputError as exc:  # a bill refused by the reader (e.g. a declared code lost): a changed outcome
        return f"input error: {exc.message_en}"


def _as_person(bill: dict, tag: str) -> dict:
    out = copy.deepcopy(bill)
    person = out.setdefault("person", {})
    person["id"] = f"{person.get('id', 'person')}#{tag}"
    return out


def acceptance_docs() -> dict[str, dict]:
    """Each built-in policy's acceptance file (no cases for a policy without one: the check alone counts)."""
    docs: dict[str, dict] = {pid: {"policy": pid, "cases": []} for pid in builtin_policies()}
    for path in sorted(ACCEPTANCE.glob("*.yaml")):
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_DecimalLoader)
        if doc["policy"] in builtin_policies():
            docs[doc["policy"]] = doc
    return docs


def run_policy(policy_id: str, doc: dict, limit: int = PER_POLICY) -> tuple[int, int, int, list[str]]:
    """(tried, caught by the check, unchanged, escaped descriptions) for one policy."""
    path = builtin_policies()[policy_id]
    data, positions = load_yaml(path.read_text(encoding="utf-8-sig"), path.name)
    baseline = outcomes(Policy.model_validate(data), doc)
    tried = caught = unchanged = 0
    escaped: list[str] = []
    for description, mutated in mutants(data, limit):  # type: ignore[arg-type]
        tried += 1
        model = passes_check(mutated, positions, path.name)
        if model is None:
            caught += 1
        elif outcomes(model, doc) == baseline:
            unchanged += 1
        else:
            escaped.append(description)
    return tried, caught, unchanged, escaped


DOCS = acceptance_docs()


def test_every_site_kind_is_mutated() -> None:
    """The sample reaches codes, names and expression words of a real policy."""
    data, _ = load_yaml(builtin_policies()["ncms-rural"].read_text(encoding="utf-8"), "ncms-rural.yaml")
    all_sites = sites(data)  # type: ignore[arg-type]
    assert any(s.key for s in all_sites)
    assert any(s.path[-2:] == ("excluded_causes", 0) for s in all_sites)
    assert any(s.path[-1] == "amount" and not s.key for s in all_sites)


def test_a_typo_the_check_misses_is_reported() -> None:
    """The harness itself: a mutant that changes a payment is an escape, not silently counted as caught."""
    doc = DOCS["ncms-rural"]
    path = builtin_policies()["ncms-rural"]
    data, positions = load_yaml(path.read_text(encoding="utf-8"), path.name)
    baseline = outcomes(Policy.model_validate(data), doc)
    changed = copy.deepcopy(data)
    changed["parameters"]["outpatient_drug_limit"]["values"]["0"] = "11"  # a number: a different policy, not a typo
    model = passes_check(changed, positions, path.name)
    assert model is not None and outcomes(model, doc) != baseline


def test_unmutated_policies_pass_and_settle_their_cases() -> None:
    """The baseline: every built-in policy with acceptance cases passes the check the mutants face."""
    assert all(DOCS[p]["cases"] for p in ("suqian-2007", "ncms-rural", "town-outpatient"))
    for policy_id, doc in DOCS.items():
        path = builtin_policies()[policy_id]
        data, positions = load_yaml(path.read_text(encoding="utf-8-sig"), path.name)
        model = passes_check(data, positions, path.name)  # type: ignore[arg-type]
        assert model is not None, policy_id
        assert not isinstance(outcomes(model, doc), str), policy_id
    assert set(DOCS) == set(builtin_policies())


@pytest.mark.parametrize("policy_id", sorted(DOCS))
def test_one_character_mutants_fail_the_check_or_change_nothing(policy_id: str) -> None:
    tried, _caught, _unchanged, escaped = run_policy(policy_id, DOCS[policy_id])
    assert tried >= min(PER_POLICY // 2, 30)
    assert not escaped, f"{len(escaped)} of {tried} mutants pass policy check and change a settlement:\n" + "\n".join(
        escaped[:20])


if __name__ == "__main__":  # python tests/policy/test_mutations.py [LIMIT]: the README's counts
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else PER_POLICY
    totals = [0, 0, 0]
    for pid, adoc in sorted(DOCS.items()):
        t, c, u, esc = run_policy(pid, adoc, limit)
        totals = [totals[0] + t, totals[1] + c, totals[2] + u]
        print(f"{pid}: tried {t}, caught {c}, unchanged {u}, escaped {len(esc)}")
        for line in esc:
            print("   ", line)
    print(f"total: tried {totals[0]}, caught {totals[1]}, unchanged {totals[2]}")
