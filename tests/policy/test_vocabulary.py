"""Closed vocabularies: one registry, refused typos everywhere a code is named, declared extra codes.

Issue 12 (Trust, part C): ``cosmetics`` for ``cosmetic`` under ncms-rural moved 1,000 into scope
(fund 1,200.00 instead of 600.00); ``excluded_causes: [work_injry]`` paid a work-injury bill.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from medins.api import settle_bill, settle_bills
from medins.batch import run_batch
from medins.claims.fields import CLAIM_FIELDS, ITEM_FIELDS
from medins.claims.vocabulary import CLOSED_FIELDS, FIELD_VOCABULARY, VOCABULARIES, close_code
from medins.errors import InputError
from medins.policy.loader import builtin_policies, check_policy_file, load_policy
from medins.policy.schema import Bands, Check, iter_expressions

NCMS = builtin_policies()["ncms-rural"]


def _bill(category: str) -> dict:
    """A township inpatient stay: 1,000 of drugs and 1,000 of the given category."""
    return {"id": "V1", "person": {"id": "P1", "category": "rural"},
            "visit": {"type": "inpatient", "admit_date": "2009-04-07", "discharge_date": "2009-04-10",
                      "hospital": {"level": 1, "zone": "in_district"}, "cause": "illness"},
            "items": [{"name": "药", "category": "drug", "class": "A", "amount": "1000.00"},
                      {"name": "美容", "category": category, "amount": "1000.00"}]}


def test_registry_defines_each_code_once_with_labels() -> None:
    """Every vocabulary code is unique, labelled in zh and en, and its aliases name one code each."""
    for vocab in VOCABULARIES.values():
        assert len(set(vocab.names)) == len(vocab.names), vocab.name
        for code in vocab.codes:
            assert code.zh and code.en and code.code.isidentifier(), code
        aliases = [a for c in vocab.codes for a in c.aliases]
        assert len(aliases) == len(set(aliases)), vocab.name


def test_fields_take_their_choices_from_the_registry() -> None:
    """The claim and item fields a vocabulary governs accept exactly its codes (no second list)."""
    fields = {f.name: f for f in (*CLAIM_FIELDS, *ITEM_FIELDS)}
    for name, vocab in CLOSED_FIELDS.items():
        assert fields[name].choices == vocab.names
    assert set(FIELD_VOCABULARY) - set(CLOSED_FIELDS) == {"diagnosis"}  # policy-side only: bills list any


def test_close_code_only_for_close_names() -> None:
    assert close_code("cosmetics", VOCABULARIES["item_categories"].names) == "cosmetic"
    assert close_code("work_injry", VOCABULARIES["causes"].names) == "work_injury"
    assert close_code("xyz", VOCABULARIES["item_categories"].names) is None


def test_optional_expressions_are_visited() -> None:
    """A check's ``when`` and a band's ``rate`` are optional fields: ``policy check`` must still see them."""
    model = check_policy_file(str(builtin_policies()["suqian-2007"]))
    holders = {(type(holder), loc[-1]) for loc, _text, holder in iter_expressions(model)}
    assert (Bands, "rate") in holders
    beijing = check_policy_file(str(builtin_policies()["beijing-employee-2009"]))
    assert any(isinstance(h, Check) and loc[-1] == "when" for loc, _t, h in iter_expressions(beijing)) or \
        not any(c.when for c in beijing.admission.checks)


def test_bill_with_a_misspelt_item_category_is_refused() -> None:
    """``cosmetics`` is not ``cosmetic``: refused naming the item and the likely code, not settled in scope."""
    policy = load_policy("ncms-rural")
    assert settle_bill(policy, _bill("cosmetic"))["status"] == "settled"
    with pytest.raises(InputError) as info:
        settle_bill(policy, _bill("cosmetics"))
    assert "items[1].category" in info.value.message_en
    assert "did you mean 'cosmetic'?" in (info.value.hint_en or "")
    assert "cosmetic" in (info.value.hint_zh or "")


def test_calc_refuses_a_misspelt_category_with_exit_2(capsys, tmp_path) -> None:
    import json

    from tests.test_cli import run

    path = tmp_path / "bill.json"
    path.write_text(json.dumps(_bill("cosmetics"), ensure_ascii=False), encoding="utf-8")
    code, out, err = run(capsys, "calc", str(path), "--policy", "ncms-rural", "--lang", "en")
    assert code == 2 and "cosmetic'?" in out + err and "Traceback" not in out + err


ITEMS_HEADER = "claim_id,person_id,person_category,visit_type,admit_date,hospital_level,hospital_zone,cause,item_category," \
    "item_class,item_amount\n"


def _items_file(tmp_path: Path, category: str, cause: str = "illness") -> Path:
    path = tmp_path / "items.csv"
    path.write_text(ITEMS_HEADER
                    + f"C1,P1,rural,inpatient,2009-04-07,1,in_district,{cause},drug,A,1000\n"
                    + f"C1,P1,rural,inpatient,2009-04-07,1,in_district,{cause},{category},,1000\n"
                    + "C2,P2,rural,inpatient,2009-04-07,1,in_district,illness,drug,A,500\n", encoding="utf-8")
    return path


def test_batch_rejects_a_misspelt_item_category_with_did_you_mean(tmp_path) -> None:
    """A claims file: the line is a reject with its reason and the likely code; its claim is held back."""
    result = run_batch(_items_file(tmp_path, "cosmetics"), load_policy("ncms-rural"), tmp_path / "out.csv")
    rejects = result.rejects_table
    bad = rejects.filter(pl.col("reason") == "unknown_code:item_category")
    assert bad.height == 1 and "did you mean 'cosmetic'?" in bad["message_en"][0]
    assert "是否应为“cosmetic”" in bad["message_zh"][0]
    assert result.claims_settled == 1


def test_batch_rejects_a_misspelt_cause(tmp_path) -> None:
    result = run_batch(_items_file(tmp_path, "cosmetic", cause="work_injry"), load_policy("ncms-rural"),
                       tmp_path / "out.csv")
    reasons = result.rejects_table["reason"].to_list()
    assert "unknown_code:cause" in ";".join(reasons)
    assert any("work_injury" in m for m in result.rejects_table["message_en"].to_list())


def _policy_with_extra_code(tmp_path: Path) -> Path:
    """ncms-rural plus a declared item category ``xyz`` (alias 某项), excluded from scope."""
    text = NCMS.read_text(encoding="utf-8")
    text = text.replace("    - classes: [C]\n", "    - {categories: [xyz], source: \"test\"}\n    - classes: [C]\n", 1)
    text += ("\nvocabulary:\n  item_categories:\n    - {code: xyz, label: {zh: 某项, en: some item}, aliases: [某项],"
             " source: \"test\"}\n")
    path = tmp_path / "ncms-xyz.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_declared_codes_pass_check_and_are_accepted_for_that_policy_only(tmp_path) -> None:
    """A policy's ``vocabulary:`` code passes ``policy check``, bills and claims files under it; not elsewhere."""
    path = _policy_with_extra_code(tmp_path)
    check_policy_file(str(path))
    policy = load_policy(str(path))
    result = settle_bill(policy, _bill("xyz"))
    assert result["status"] == "settled" and result["fulamt_ownpay_amt"] == "1000.00"
    assert settle_bills(policy, [_bill("xyz")])[0]["fulamt_ownpay_amt"] == "1000.00"
    batch = run_batch(_items_file(tmp_path, "某项"), policy, tmp_path / "out.csv")
    assert batch.rejects_table.height == 0 and batch.claims_settled == 2
    parted = run_batch(_items_file(tmp_path, "xyz"), policy, tmp_path / "parted.csv", partitions=2)
    assert parted.rows_rejected == 0 and parted.claims_settled == 2  # the partitioned reader too
    with pytest.raises(InputError):
        settle_bill(load_policy("ncms-rural"), _bill("xyz"))
    other = run_batch(_items_file(tmp_path, "xyz"), load_policy("ncms-rural"), tmp_path / "out2.csv")
    assert other.rejects_table.height == 2


def test_undeclared_code_in_the_policy_is_located(tmp_path) -> None:
    """Without the declaration the same policy fails ``policy check`` at the code."""
    path = _policy_with_extra_code(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("\nvocabulary:")] + "\n", encoding="utf-8")
    from medins.errors import PolicyError

    with pytest.raises(PolicyError) as info:
        check_policy_file(str(path))
    assert [i.code for i in info.value.issues] == ["unknown_code"]
    assert info.value.issues[0].key_path.startswith("scope.excluded[")
