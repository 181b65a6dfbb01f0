"""The plan cache entry (``KEY.plan``, ``medins.policy.plan``): ``calc`` settles and explains from it exactly as
from the compiled policy, without pydantic, and it is held to the cache's safety rules.

Why each test: the plan is the compiled policy with every schema model written as its fields
(:class:`~medins.policy.plan.PlainModel`); the engine reads fields only, so the two must settle every bill the
same — checked on every acceptance case of every policy, one by one (with the explanation) and as one table
(state flowing between claims); the plain fields must be the model's fields; and an entry that names anything
but the plan's own classes must never load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from medins.api import settle_bill, settle_bills
from medins.batch import run_batch
from medins.policy import cache
from medins.policy.loader import builtin_policies, load_policy
from medins.policy.plan import CompiledPolicy, PlainModel
from tests.cli_support import run

ROOT = Path(__file__).resolve().parents[1]
ACCEPTANCE = sorted((ROOT / "tests" / "acceptance").glob("*.yaml"))


class _DecimalLoader(yaml.SafeLoader):
    """YAML floats as Decimal, as the acceptance tests read their bills (money never passes through a float)."""


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: Decimal(node.value))


def as_plan(compiled: CompiledPolicy) -> CompiledPolicy:
    """``compiled`` written and read back as a plan entry's payload is."""
    plan = cache._PlanUnpickler(io.BytesIO(cache._dump_plan(compiled))).load()
    assert isinstance(plan, CompiledPolicy) and isinstance(plan.model, PlainModel)
    return plan


def same_fields(plain: object, model: object, where: str = "model") -> None:
    """``plain`` holds exactly ``model``'s fields, recursively, with plain models for models."""
    if isinstance(model, BaseModel):
        assert isinstance(plain, PlainModel) and plain._kind == type(model).__name__, where
        assert list(vars(plain)) == list(type(model).model_fields), where
        for name in type(model).model_fields:
            same_fields(getattr(plain, name), getattr(model, name), f"{where}.{name}")
    elif isinstance(model, (list, tuple)):
        assert type(plain) is type(model) and len(plain) == len(model), where
        for i, (p, m) in enumerate(zip(plain, model, strict=True)):
            same_fields(p, m, f"{where}[{i}]")
    elif isinstance(model, dict):
        assert type(plain) is type(model) and list(plain) == list(model), where
        for key in model:
            same_fields(plain[key], model[key], f"{where}.{key}")
    else:
        assert type(plain) is type(model) and plain == model, where


@pytest.mark.parametrize("name", sorted(builtin_policies()))
def test_the_plan_holds_the_models_fields(name) -> None:
    compiled = load_policy(name)
    plan = as_plan(compiled)
    same_fields(plan.model, compiled.model)
    assert plan.versions == compiled.versions and plan.overrides == compiled.overrides
    assert plan.expression_texts() == compiled.expression_texts() and plan.expressions
    assert plan.id == compiled.id and plan.label() == compiled.label()
    scope = compiled.model.scope
    names = [scope.self_pay_first_name(j) for j in range(len(scope.self_pay_first))]
    assert [plan.model.scope.self_pay_first_name(j) for j in range(len(scope.self_pay_first))] == names


@pytest.mark.parametrize("path", ACCEPTANCE, ids=[p.stem for p in ACCEPTANCE])
def test_every_acceptance_bill_settles_the_same_from_the_plan(path) -> None:
    spec = yaml.load(path.read_text(encoding="utf-8"), Loader=_DecimalLoader)
    compiled = load_policy(spec["policy"])
    plan = as_plan(compiled)
    bills = [case["bill"] for case in spec["cases"]]
    for case in spec["cases"]:
        assert settle_bill(plan, case["bill"], trace=True) == settle_bill(compiled, case["bill"], trace=True), case["id"]
    assert settle_bills(plan, bills) == settle_bills(compiled, bills)


def test_calc_takes_the_plan_and_prints_the_same(tmp_path, monkeypatch, capsys) -> None:
    """The second calc reads the plan entry (a compile would fail) and prints what the first printed."""
    from medins.policy import loader

    monkeypatch.setenv("MEDINS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MEDINS_NO_CACHE", raising=False)
    args = ("calc", str(ROOT / "examples" / "bill-items.json"), "--policy", "suqian-2007", "--explain", "--lang", "en")
    first = run(capsys, *args)
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".pickle", ".plan"]
    monkeypatch.setattr(loader, "_compile", lambda *a, **k: pytest.fail("compiled: the plan was not used"))
    (tmp_path / "cache" / next(p.name for p in (tmp_path / "cache").iterdir() if p.suffix == ".pickle")).unlink()
    assert run(capsys, *args) == first and first[0] == 0


def test_a_plan_naming_anything_else_never_loads(tmp_path, monkeypatch) -> None:
    """A schema class (the full entry's) or any other callable in a plan entry: refused, a miss."""
    monkeypatch.setenv("MEDINS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MEDINS_NO_CACHE", raising=False)
    compiled = load_policy("suqian-2007")
    key = "ab" * 32
    for payload, loads in ((pickle.dumps(compiled), False), (pickle.dumps(print), False),
                           (cache._dump_plan(compiled), True)):
        digest = hashlib.sha256(payload).digest()
        (tmp_path / f"{key}.plan").write_bytes(cache.PLAN_MAGIC + bytes.fromhex(key) + digest + payload)
        (tmp_path / f"{key}.plan").chmod(0o600)
        assert isinstance(cache.load(key, plan=True), CompiledPolicy) is loads
    (tmp_path / f"{key}.plan").write_bytes(b"medins-compiled-policy 1\n" + b"x" * 64)  # the other kind's header
    assert cache.load(key, plan=True) is None


def test_a_plain_model_is_frozen_and_compares_by_fields() -> None:
    plan = as_plan(load_policy("suqian-2007"))
    with pytest.raises(AttributeError):
        plan.model.id = "other"  # type: ignore[misc]
    again = as_plan(load_policy("suqian-2007"))
    assert plan.model == again.model and plan.model.scope == again.model.scope
    assert repr(plan.model.scope).startswith("Scope(")


def _batch(tmp_path: Path, claims: str, policy: CompiledPolicy, **options) -> tuple:
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}.csv"
    result = run_batch(ROOT / "examples" / claims, policy, out, **options)
    return out.read_bytes(), result.rejects.read_bytes(), result.rows_read, result.rows_rejected, result.claims_settled


@pytest.mark.parametrize("name", sorted(builtin_policies()))
def test_batch_settles_the_same_from_the_plan(tmp_path, name) -> None:
    """``medins batch`` settles from the plan entry: every policy writes the same settlements and rejects from it as
    from the compiled policy, claims with and without items, in memory and partitioned."""
    compiled = load_policy(name)
    plan = as_plan(compiled)
    for claims in ("claims.csv", "claims-items.csv"):
        for partitions in (None, 2):
            assert _batch(tmp_path, claims, plan, partitions=partitions) == \
                _batch(tmp_path, claims, compiled, partitions=partitions), (claims, partitions)


def test_workers_get_the_plan_and_settle_the_same(tmp_path) -> None:
    """``--jobs 2`` with the compiled policy (pydantic models) hands the workers its plan form: the same output
    as one process settling the compiled policy itself."""
    compiled = load_policy("suqian-2007")
    for claims in ("claims.csv", "claims-items.csv"):
        assert _batch(tmp_path, claims, compiled, partitions=2, jobs=2) == \
            _batch(tmp_path, claims, compiled, partitions=2, jobs=1), claims


def test_plan_of_gives_the_plan_form_which_unpickles_without_pydantic(tmp_path) -> None:
    """What a worker is handed (``cache.plan_of``, pickled as ``multiprocessing`` pickles it) loads in a fresh
    interpreter without importing pydantic or the schema; a plan is handed as it is."""
    compiled = load_policy("suqian-2007")
    plan = cache.plan_of(compiled)
    assert isinstance(plan.model, PlainModel) and cache.plan_of(plan) is plan
    same_fields(plan.model, compiled.model)
    assert plan.versions == compiled.versions and plan.expression_texts() == compiled.expression_texts()
    (tmp_path / "policy.pickle").write_bytes(pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL))
    code = ("import json, pickle, sys; policy = pickle.loads(open(sys.argv[1], 'rb').read()); "
            "print(json.dumps([policy.label(), sorted(m for m in sys.modules if m.startswith(('pydantic', "
            "'medins.policy.schema', 'medins.policy.compiled')))]))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "policy.pickle")], cwd=ROOT, check=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(ROOT), os.environ.get("PYTHONPATH", "")])}, timeout=120)
    assert json.loads(done.stdout) == [compiled.label(), []]


def test_plan_of_hands_a_policy_built_by_hand_as_it_is() -> None:
    """A policy whose model is not the schema's (a test double, an embedding program's) is not converted."""
    from types import SimpleNamespace

    handmade = CompiledPolicy(model=SimpleNamespace(id="x", rules=[]), file="x.yaml", versions=[])
    assert cache.plan_of(handmade) is handmade
