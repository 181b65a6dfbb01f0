"""docs/writing-a-policy.md: every YAML and JSON block is checked, and every stated result is reproduced.

Blocks are told apart by their info string: ``yaml policy=ID`` (a whole policy: `policy check` passes),
``yaml fragment=X`` (parameters, a rule and maybe a scope, checked inside a minimal policy),
``yaml params policy=ID`` (a ``--set-file`` file for that policy or fragment), ``json bill=NAME policy=ID``
(a bill) and ``text result=NAME`` (``field: value`` lines the bill must settle to).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from medins.api import settle_bill
from medins.policy.loader import builtin_policies, check_policy_file, load_policy

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "writing-a-policy.md"
_BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, dict[str, str], str]]:
    """(language, attributes, text) of every fenced block of the guide, in order."""
    out = []
    for lang, info, text in _BLOCK.findall(DOC.read_text(encoding="utf-8")):
        attrs = dict(part.split("=", 1) if "=" in part else (part, "") for part in info.split())
        out.append((lang, attrs, text))
    return out


BLOCKS = blocks()


def of(kind: str) -> list[tuple[dict[str, str], str]]:
    """Blocks of one kind; ``policy`` means the whole policies (YAML with ``policy=`` and nothing else)."""
    if kind == "policy":
        return [(a, t) for lang, a, t in BLOCKS if lang == "yaml" and "policy" in a and "params" not in a]
    return [(attrs, text) for lang, attrs, text in BLOCKS if kind in attrs and lang in ("yaml", "json", "text")]


def fragment_policy(name: str, text: str) -> str:
    """A fragment inside the smallest policy around it: its parameters, its scope and one rule."""
    frag = yaml.safe_load(text)
    policy = {"id": f"fragment-{name}", "name": {"zh": "片段", "en": "fragment"},
              "region": {"zh": "示例", "en": "example"}, "scheme": "test", "source": "docs/writing-a-policy.md",
              "benefit_year": {"start": "01-01", "source": "calendar year"},
              "parameters": frag.get("parameters", {}),
              "rules": [{"id": "rule", "label": {"zh": "规则", "en": "rule"}, "when": "True", "source": "doc",
                         **frag["rule"]}]}
    if "scope" in frag:
        policy["scope"] = frag["scope"]
    return yaml.safe_dump(policy, allow_unicode=True, sort_keys=False)


@pytest.fixture(scope="module")
def policies(tmp_path_factory) -> dict[str, str]:
    """Every policy of the guide written to a file (id → path), fragments included; built-ins by name."""
    folder = tmp_path_factory.mktemp("doc")
    paths = {name: name for name in builtin_policies()}
    for attrs, text in of("policy"):
        path = folder / f"{attrs['policy']}.yaml"
        path.write_text(text, encoding="utf-8")
        paths[attrs["policy"]] = str(path)
    for attrs, text in of("fragment"):
        path = folder / f"fragment-{attrs['fragment']}.yaml"
        path.write_text(fragment_policy(attrs["fragment"], text), encoding="utf-8")
        paths[f"fragment-{attrs['fragment']}"] = str(path)
    return paths


def test_the_guide_has_blocks_of_every_kind() -> None:
    """Guards the tests below from passing on an empty extraction."""
    kinds = {kind for kind in ("policy", "fragment", "params", "bill", "result") if of(kind)}
    assert kinds == {"policy", "fragment", "params", "bill", "result"}
    assert len(of("fragment")) >= 7 and len(of("bill")) == len(of("result"))
    assert all(lang in ("yaml", "json", "text") for lang, _a, _t in BLOCKS), "an untested kind of block"


@pytest.mark.parametrize("name", sorted({a.get("policy") or f"fragment-{a['fragment']}"
                                         for a, _t in of("policy") + of("fragment")}))
def test_every_policy_and_fragment_passes_policy_check(policies, name) -> None:
    assert check_policy_file(policies[name]).id == name


@pytest.mark.parametrize("block", range(len(of("params"))))
def test_every_parameter_file_loads(policies, tmp_path, block) -> None:
    attrs, text = of("params")[block]
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    compiled = load_policy(policies[attrs["policy"]], set_file=path)
    assert not any(v.params.missing for v in compiled.versions)


RESULTS = {attrs["result"]: text for attrs, text in of("result")}


@pytest.mark.parametrize("name", [a["bill"] for a, _t in of("bill")])
def test_every_bill_settles_to_the_stated_result(policies, name) -> None:
    attrs, text = next((a, t) for a, t in of("bill") if a["bill"] == name)
    result = settle_bill(load_policy(policies[attrs["policy"]]), json.loads(text), source=name)
    stated = dict(line.split(": ", 1) for line in RESULTS[name].strip().splitlines())
    assert result["status"] == "settled"
    assert {k: result[k] for k in stated} == stated


def test_readme_links_the_guide() -> None:
    assert "docs/writing-a-policy.md" in (ROOT / "README.md").read_text(encoding="utf-8")
