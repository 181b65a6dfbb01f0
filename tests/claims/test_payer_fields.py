"""Bill and claims facts of the payer chain (issue 13): ``amounts.paid`` / ``paid_<field>`` columns and the
person's ``assistance_class`` (one vocabulary, zh/en labels, Chinese header and value aliases)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medins.api import settle_bill
from medins.claims.bill import bill_to_tables, tables_to_bill
from medins.claims.fields import ASSISTANCE_CLASSES, FIELDS_BY_NAME
from medins.claims.readers import read_claims
from medins.engine.settle import settle
from medins.errors import InputError
from medins.policy.loader import load_policy

BILL = {"id": "B1", "person": {"id": "P", "category": "resident", "assistance_class": "dibao_margin"},
        "visit": {"type": "inpatient", "admit_date": "2023-06-01", "hospital": {"level": 2}},
        "amounts": {"total": "52000", "self_pay": "2000", "paid": {"hifp_pay": "34790", "maf_pay": "100"}}}


def test_the_vocabulary_has_the_five_classes_with_labels() -> None:
    assert list(ASSISTANCE_CLASSES) == ["extreme_poverty", "dibao", "dibao_margin", "relapse_watch",
                                        "impoverished_by_illness"]
    assert FIELDS_BY_NAME["assistance_class"].choices == tuple(ASSISTANCE_CLASSES)
    assert all(zh and en for zh, en in ASSISTANCE_CLASSES.values())


def test_bill_paid_and_assistance_class_round_trip() -> None:
    claims, _items = bill_to_tables(BILL, source="b")
    row = claims.row(0, named=True)
    assert (row["paid_hifp_pay"], row["paid_maf_pay"], row["paid_oth_pay"]) == (3479000, 10000, None)
    assert row["assistance_class"] == "dibao_margin"
    back = tables_to_bill(row, [])
    assert back["amounts"]["paid"] == {"hifp_pay": "34790.00", "maf_pay": "100.00"}
    assert back["person"]["assistance_class"] == "dibao_margin"


def test_bill_errors_are_located() -> None:
    with pytest.raises(InputError) as info:
        bill_to_tables({**BILL, "person": {"id": "P", "assistance_class": "poor"}}, source="b")
    assert "person.assistance_class" in info.value.message_en and "dibao_margin" in info.value.message_en
    with pytest.raises(InputError) as info:
        bill_to_tables({**BILL, "amounts": {"total": "100", "paid": {"hifp_pay": "80", "oth_pay": "30"}}}, source="b")
    assert "amounts.paid" in info.value.key_path and "110.00" in info.value.message_en
    with pytest.raises(InputError) as info:
        bill_to_tables({**BILL, "amounts": {"total": "100", "paid": {"hifp": "80"}}}, source="b")
    assert "did you mean 'hifp_pay'" in str(info.value.hint_en)


def test_given_payments_settle_under_the_published_policy() -> None:
    """The basic fund and a first maf tier given as paid: maf_pay keeps the given 100 (its tiers are covered)."""
    result = settle_bill(load_policy("cq-yubei-2023-resident"), BILL)
    assert (result["hifp_pay"], result["maf_pay"], result["psn_part_amt"]) == ("34790.00", "100.00", "17110.00")


def test_claims_columns_with_chinese_headers_and_values(tmp_path: Path) -> None:
    text = ("结算单号,个人编号,入院日期,医疗费总额,全自费金额,医院等级,人员类别,救助类别,已付基本医保统筹基金\n"
            "C1,P1,2023-06-01,52000,2000,2,居民,低保边缘,\n"
            "C2,P2,2023-06-01,52000,2000,2,居民,特困,34790\n"
            "C3,P3,2023-06-01,100,0,2,居民,,200\n")
    path = tmp_path / "claims.csv"
    path.write_text(text, encoding="utf-8")
    result = read_claims(path)
    rows = result.claims.to_dicts()
    assert [r["assistance_class"] for r in rows] == ["dibao_margin", "extreme_poverty"]
    assert [r["paid_hifp_pay"] for r in rows] == [None, 3479000]
    assert result.rejects["reason"].to_list() == ["paid_above_total"]
    out = settle(load_policy("cq-yubei-2023-resident"), result.claims).to_dicts()
    assert [(r["hifp_pay"], r["maf_pay"]) for r in out] == [(3479000, 1158480), (3479000, 0)]


def test_header_alias_救助对象类别(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    path.write_text("claim_id,person_id,admit_date,total,救助对象类别\nC1,P1,2023-06-01,10,因病致贫\n", encoding="utf-8")
    assert read_claims(path).claims["assistance_class"].to_list() == ["impoverished_by_illness"]


def test_batch_writes_every_payer_field(tmp_path: Path) -> None:
    """`medins batch` settles assisted persons' claims through the chain and writes each payer field."""
    import subprocess
    import sys

    import polars as pl

    src = tmp_path / "claims.csv"
    src.write_text("结算单号,个人编号,入院日期,医疗费总额,全自费金额,医院等级,人员类别,救助类别\n"
                   "C1,P1,2023-06-01,52000,2000,2,居民,低保边缘\nC2,P2,2023-06-01,52000,2000,2,居民,\n",
                   encoding="utf-8")
    out = tmp_path / "out.csv"
    proc = subprocess.run([sys.executable, "-m", "medins", "batch", str(src), "--policy", "cq-yubei-2023-resident",
                           "-o", str(out), "--lang", "en"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = pl.read_csv(out, infer_schema=False)
    assert {"hifes_pay", "cvlserv_pay", "oth_pay"} <= set(table.columns)
    assert table.select("hifp_pay", "maf_pay", "fund_pay_sumamt").rows() == [
        ("34790.00", "11584.80", "46374.80"), ("34790.00", "0.00", "34790.00")]
