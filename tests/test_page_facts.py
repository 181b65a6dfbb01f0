"""Facts as published pages state them (issue 19): age, the admission ordinal, the deposit — in bills,
claims columns with their Chinese headers, and expressions."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from medins.api import load_policy, settle_bill, settle_bills
from medins.batch import run_batch
from medins.errors import InputError

FIXTURES = Path(__file__).resolve().parent / "policies" / "fixtures"
ORDINAL = load_policy(str(FIXTURES / "ordinal.yaml"))


def stay(total: str, day: str = "2020-03-01", **visit: object) -> dict:
    return {"person": {"id": "P"}, "visit": {"type": "inpatient", "admit_date": day, **visit},
            "amounts": {"total": total}}


# --- age -------------------------------------------------------------------------------------------

def test_stated_age_is_used_where_no_birth_date_is_given() -> None:
    """Beijing-resident (BJR-7): a stated 70-year-old gets the elderly rate exactly like a birth date 70 years back."""
    policy = load_policy("beijing-resident")
    bill = {"person": {"category": "resident_other"}, "visit": {"type": "inpatient", "admit_date": "2010-06-01",
                                                                "hospital": {"level": 2}}, "amounts": {"total": "20000"}}
    by_age = settle_bill(policy, {**bill, "person": {**bill["person"], "age": 70}})
    by_birth = settle_bill(policy, {**bill, "person": {**bill["person"], "birth_date": "1940-01-01"}})
    younger = settle_bill(policy, {**bill, "person": {**bill["person"], "age": 40}})
    assert by_age["status"] == "settled" and by_age["fund_pay_sumamt"] == by_birth["fund_pay_sumamt"]
    assert by_age["fund_pay_sumamt"] != younger["fund_pay_sumamt"]


def test_age_and_birth_date_that_disagree_are_refused() -> None:
    """40 stated, but born 1980-05-01 makes 39 on 2020-03-01: a clear error naming person.age and both values."""
    bill = stay("1000")
    bill["person"].update(age=40, birth_date="1980-05-01")
    with pytest.raises(InputError) as info:
        settle_bill(ORDINAL, bill)
    assert info.value.key_path == "person.age" and "39" in info.value.message_en and "1980-05-01" in info.value.message_en
    bill["person"]["age"] = 39
    assert settle_bill(ORDINAL, bill)["status"] == "settled"


def test_age_mismatch_in_a_claims_file_rejects_the_row(tmp_path) -> None:
    """In batch the row is rejected ``age_mismatch`` (the header 年龄 maps to ``age``); an agreeing row settles."""
    src = tmp_path / "claims.csv"
    src.write_text("结算单号,个人编号,入院日期,出生日期,年龄,医疗费总额\nC1,P1,2020-03-01,1980-05-01,40,1000\n"
                   "C2,P2,2020-03-01,1980-05-01,39,1000\n", encoding="utf-8")
    run_batch(src, ORDINAL, tmp_path / "out.csv")
    out = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
    assert out["status"].to_list() == ["rejected", "settled"]
    assert out["reasons"][0] == "age_mismatch"


# --- admission ordinal --------------------------------------------------------------------------------

def test_stated_ordinal_picks_the_deductible_without_any_history() -> None:
    """"第二次住院": admission_no 2 alone (no history.admissions, no deductible_standard) gives the 280 deductible."""
    assert settle_bill(ORDINAL, stay("1000", admission_no=2))["act_pay_dedc"] == "280.00"
    assert settle_bill(ORDINAL, stay("1000"))["act_pay_dedc"] == "400.00"


def test_omitted_ordinal_is_history_admissions_plus_one() -> None:
    bill = stay("1000")
    bill["history"] = {"admissions": 1}
    assert settle_bill(ORDINAL, bill)["act_pay_dedc"] == "280.00"


def test_open_last_key_covers_every_later_admission() -> None:
    """"3+": the 3rd, 4th and 9th admission all get 200; today a 4th admission was a policy_error."""
    for n in (3, 4, 9):
        r = settle_bill(ORDINAL, stay("1000", admission_no=n))
        assert (r["status"], r["act_pay_dedc"]) == ("settled", "200.00")


def test_ordinal_is_counted_from_the_persons_claims_in_a_batch() -> None:
    """Three stays of one person in a year: 400, 280, 200 — counted in date order, not input order."""
    bills = [stay("1000", "2020-09-01"), stay("1000", "2020-01-01"), stay("1000", "2020-05-01")]
    assert [r["act_pay_dedc"] for r in settle_bills(ORDINAL, bills)] == ["200.00", "400.00", "280.00"]


def test_a_carried_ordinal_wins_and_later_stays_count_on_from_it() -> None:
    """An export starting mid-year: the first stay says 3, the next (no ordinal) is then the 4th."""
    bills = [stay("1000", "2020-05-01", admission_no=2), stay("1000", "2020-09-01")]
    results = settle_bills(ORDINAL, bills)
    assert [r["act_pay_dedc"] for r in results] == ["280.00", "200.00"]
    assert all(r["unchecked"] == [] for r in results)


def test_a_carried_ordinal_that_disagrees_with_the_sequence_is_listed(tmp_path) -> None:
    """Header 住院次数: the second stay says 1 again — settled as stated, listed in ``unchecked``."""
    src = tmp_path / "claims.csv"
    src.write_text("结算单号,个人编号,入院日期,住院次数,医疗费总额\nC1,P1,2020-01-01,1,1000\nC2,P1,2020-05-01,1,1000\n"
                   "C3,P1,2020-09-01,3,1000\n", encoding="utf-8")
    run_batch(src, ORDINAL, tmp_path / "out.csv")
    out = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
    assert out["act_pay_dedc"].to_list() == ["400.00", "400.00", "200.00"]
    assert out["unchecked"].fill_null("").to_list() == ["", "admission_no_differs:given=1,counted=2",
                                                         "admission_no_differs:given=3,counted=2"]


def test_a_bill_ordinal_that_disagrees_with_its_history_is_listed() -> None:
    bill = stay("1000", admission_no=3)
    bill["history"] = {"admissions": 1}
    r = settle_bill(ORDINAL, bill)
    assert r["act_pay_dedc"] == "200.00" and r["unchecked"] == ["admission_no_differs:given=3,counted=2"]


def test_admissions_follows_a_stated_ordinal() -> None:
    """Beijing-employee reads ``admissions == 0`` (BJE-5): the 2nd admission stated alone is not a first one."""
    policy = load_policy("beijing-employee-2009")
    bill = {"person": {"category": "in_service"}, "visit": {"type": "inpatient", "admit_date": "2009-06-01",
                                                            "hospital": {"level": 3}}, "amounts": {"total": "5000"}}
    first = settle_bill(policy, bill)
    second = settle_bill(policy, {**bill, "visit": {**bill["visit"], "admission_no": 2}})
    with_history = settle_bill(policy, {**bill, "history": {"admissions": 1}})
    assert first["act_pay_dedc"] != second["act_pay_dedc"] == with_history["act_pay_dedc"]


def test_an_ordinal_below_one_is_refused() -> None:
    with pytest.raises(InputError) as info:
        settle_bill(ORDINAL, stay("1000", admission_no=0))
    assert info.value.key_path == "visit.admission_no" and "≥ 1" in info.value.message_en


def test_an_ordinal_below_one_in_a_file_rejects_the_row(tmp_path) -> None:
    src = tmp_path / "claims.csv"
    src.write_text("结算单号,个人编号,入院日期,第几次住院,医疗费总额\nC1,P1,2020-01-01,0,1000\n", encoding="utf-8")
    result = run_batch(src, ORDINAL, tmp_path / "out.csv")
    assert result.rows_rejected == 1
    rejects = pl.read_csv(tmp_path / "out.rejects.csv", infer_schema=False)
    assert rejects["reason"][0] == "below_minimum:admission_no" and "below 1" in rejects["message_en"][0]


# --- deposit ---------------------------------------------------------------------------------------

def test_deposit_above_the_cash_share_is_refunded() -> None:
    """预交金 1,200, 个人负担 600 → 应退 600, 应补 0; fund + patient == total untouched."""
    bill = stay("1200", admission_no=4)
    bill["amounts"]["deposit"] = "1200"
    r = settle_bill(ORDINAL, bill)
    assert (r["psn_cash_pay"], r["deposit_amt"], r["refund_amt"], r["due_amt"]) == ("600.00", "1200.00", "600.00",
                                                                                    "0.00")


def test_deposit_below_the_cash_share_leaves_an_amount_due() -> None:
    bill = stay("1200", admission_no=4)
    bill["amounts"]["deposit"] = "500"
    r = settle_bill(ORDINAL, bill)
    assert (r["refund_amt"], r["due_amt"]) == ("0.00", "100.00")
    no_deposit = settle_bill(ORDINAL, stay("1200", admission_no=4))
    assert (no_deposit["deposit_amt"], no_deposit["refund_amt"], no_deposit["due_amt"]) == ("0.00", "0.00", "600.00")


def test_deposit_columns_in_batch_output_from_chinese_headers(tmp_path) -> None:
    """Headers 预交金 and 押金 both map to ``deposit``; the output has deposit_amt, refund_amt, due_amt after
    psn_cash_pay."""
    for header in ("预交金", "押金", "预交金额"):
        src = tmp_path / "claims.csv"
        src.write_text(f"结算单号,个人编号,入院日期,第几次住院,医疗费总额,{header}\nC1,P1,2020-01-01,4,1200,1000\n",
                       encoding="utf-8")
        run_batch(src, ORDINAL, tmp_path / "out.csv")
        out = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
        cols = out.columns
        assert cols[cols.index("psn_cash_pay") + 1: cols.index("psn_cash_pay") + 4] == ["deposit_amt", "refund_amt",
                                                                                         "due_amt"]
        assert (out["deposit_amt"][0], out["refund_amt"][0], out["due_amt"][0]) == ("1000.00", "400.00", "0.00")


def test_compare_age_groups_read_a_stated_age() -> None:
    """``compare --ages``: a claim stating only 年龄 70 is in the 70+ group, not "?"."""
    from medins import compare as cmp
    from medins.api import bills_to_tables

    bill = stay("1000")
    bill["person"]["age"] = 70
    claims, items = bills_to_tables([bill])
    groups = cmp.by_age_group(cmp.settle_under([ORDINAL], claims, items), (18, 60, 70))
    assert groups.filter(pl.col("claims") > 0)["group"].to_list() == ["70+"]


def test_refund_and_due_are_against_the_cash_share_not_the_account() -> None:
    """City low-income, 35 at a community station: 20 from the account, 15 cash; a 30 deposit refunds 15, not 0."""
    policy = load_policy("city-low-income")
    bill = {"person": {"id": "D"}, "visit": {"type": "outpatient", "admit_date": "2010-03-01"},
            "amounts": {"total": "35", "deposit": "30"}}
    r = settle_bill(policy, bill)
    assert (r["acct_pay"], r["psn_cash_pay"], r["refund_amt"], r["due_amt"]) == ("20.00", "15.00", "15.00", "0.00")
    bill["amounts"]["deposit"] = "10"
    assert settle_bill(policy, bill)["due_amt"] == "5.00"


def test_a_fact_in_the_wrong_block_is_shown_where_it_belongs() -> None:
    """``visit.deposit`` (the issue's attempt) was answered "did you mean 'hospital'?": now "belongs under amounts"."""
    bill = stay("1000")
    bill["visit"]["deposit"] = "1200"
    with pytest.raises(InputError) as info:
        settle_bill(ORDINAL, bill)
    assert info.value.hint_en == "visit.deposit: 'deposit' belongs under amounts"


def test_explain_ends_with_the_cashier_lines() -> None:
    """--explain / JSON steps: after the cash share, the deposit and 应退 (or 应补); none without a deposit.

    Only the money steps are ordered here: the notes (``unchecked``, ``assumed``) close the trace.
    """
    def money_steps(bill: dict) -> list[dict]:
        steps = settle_bill(ORDINAL, bill, trace=True)["steps"]
        return [s for s in steps if s["step"] not in ("unchecked", "assumed")]

    bill = stay("1200", admission_no=4)
    bill["amounts"]["deposit"] = "500"
    assert [(s["step"], s.get("amount")) for s in money_steps(bill)[-3:]] == [
        ("cash", "600.00"), ("deposit", "500.00"), ("due", "100.00")]
    bill["amounts"]["deposit"] = "700"
    assert money_steps(bill)[-1] == {"step": "refund", "amount": "100.00"}
    assert money_steps(stay("1200", admission_no=4))[-1]["step"] == "cash"
