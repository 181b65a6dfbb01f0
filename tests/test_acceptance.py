"""The shared acceptance cases: every case of every file whose policy exists must pass as written.

Cases (single bills) go through ``settle_bill`` — the path of ``medins calc``; sequences (one
person's claims in date order) go through ``settle_bills`` — a claims table, the path of
``medins batch``. Money is compared as Decimal, never as float.
"""

from __future__ import annotations

import filecmp
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from medins.api import settle_bill, settle_bills
from medins.policy.loader import builtin_policies, load_policy

HERE = Path(__file__).parent / "acceptance"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "acceptance"


class _DecimalLoader(yaml.SafeLoader):
    """Safe loader reading YAML floats as Decimal (money must never pass through a float)."""


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: Decimal(node.value))


def _load(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_DecimalLoader)


def _files() -> list[Path]:
    return sorted(HERE.glob("*.yaml"))


def _cases():
    for path in _files():
        doc = _load(path)
        for case in doc.get("cases") or []:
            yield pytest.param(doc["policy"], case, id=f"{doc['policy']}::{case['id']}")


def _sequences():
    for path in _files():
        doc = _load(path)
        for seq in doc.get("sequences") or []:
            yield pytest.param(doc["policy"], seq, id=f"{doc['policy']}::{seq['id']}")


def _check(result: dict, expect: dict, where: str) -> None:
    for key, want in expect.items():
        got = result[key]
        if isinstance(want, (Decimal, int)) and not isinstance(want, bool):
            assert Decimal(got) == Decimal(str(want)), f"{where}: {key} = {got}, expected {want}"
        else:
            assert got == want, f"{where}: {key} = {got!r}, expected {want!r}"


def _policy_or_skip(policy_id: str):
    if policy_id not in builtin_policies():
        pytest.skip(f"policy {policy_id} is not built in yet")
    return load_policy(policy_id)


@pytest.mark.parametrize(("policy_id", "case"), list(_cases()))
def test_case(policy_id: str, case: dict) -> None:
    """A single bill settles to the expected fields."""
    policy = _policy_or_skip(policy_id)
    result = settle_bill(policy, case["bill"], source=case["id"])
    _check(result, case["expect"], case["id"])


@pytest.mark.parametrize(("policy_id", "seq"), list(_sequences()))
def test_sequence(policy_id: str, seq: dict) -> None:
    """A person's claims settled together carry year-to-date state from one claim to the next."""
    policy = _policy_or_skip(policy_id)
    results = settle_bills(policy, seq["claims"])
    assert len(results) == len(seq["expect"])
    for i, (result, expect) in enumerate(zip(results, seq["expect"], strict=True)):
        _check(result, expect, f"{seq['id']}[{i}]")


def test_every_policy_in_acceptance_is_built_in() -> None:
    """Guards against silently skipping: the number of acceptance files whose policy exists only grows."""
    ids = {_load(p)["policy"] for p in _files()}
    assert "suqian-2007" in ids & set(builtin_policies())


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/acceptance is not present (a user's clone)")
def test_copy_matches_shared() -> None:
    """tests/acceptance is an exact copy of ../shared/acceptance (never edited to make a test pass)."""
    shared = sorted(p.name for p in SHARED.iterdir() if p.is_file())
    ours = sorted(p.name for p in HERE.iterdir() if p.is_file())
    assert ours == shared
    _match, mismatch, errors = filecmp.cmpfiles(SHARED, HERE, shared, shallow=False)
    assert not mismatch and not errors, f"differs from ../shared/acceptance: {mismatch + errors}"
