"""Engine behaviours that no single scheme shows: unknown facts, rejected claims and state, input order."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from medins.api import load_policy, settle_bill, settle_bills
from medins.engine import benefits

SUQIAN = load_policy("suqian-2007")


def stay(total: str, day: str, zone: str | None = "in_district", person: str = "P") -> dict:
    hospital = {"zone": zone} if zone else {}
    return {"id": f"{person}-{day}", "person": {"id": person},
            "visit": {"type": "inpatient", "admit_date": day, "preapproved": True, "hospital": hospital},
            "amounts": {"total": total}}


def test_a_fact_the_rule_needs_is_never_guessed() -> None:
    """Without a zone the deductible is unknown: the claim is rejected missing_fact:hospital_zone, not settled at 0."""
    r = settle_bill(SUQIAN, stay("3000", "2008-04-02", zone=None))
    assert r["status"] == "rejected" and r["reasons"] == ["missing_fact:hospital_zone"]
    assert r["fund_pay_sumamt"] == "0.00" and r["psn_part_amt"] == "3000.00"


def test_a_claim_rejected_while_settling_consumes_no_cap() -> None:
    """The person's later claim gets the whole yearly cap when an earlier one turned out unsettleable."""
    results = settle_bills(SUQIAN, [stay("65000", "2008-01-02", zone=None), stay("65000", "2008-05-02")])
    assert [r["fund_pay_sumamt"] for r in results] == ["0.00", "40000.00"]


def test_output_is_in_input_order_while_state_follows_dates() -> None:
    """Claims given out of date order come back in input order; the cap is consumed in date order."""
    later, earlier = stay("30000", "2008-09-10"), stay("65000", "2008-01-10")
    results = settle_bills(SUQIAN, [later, earlier])
    assert [r["claim_id"] for r in results] == ["P-2008-09-10", "P-2008-01-10"]
    assert [r["fund_pay_sumamt"] for r in results] == ["0.00", "40000.00"]


def test_state_never_crosses_persons_or_years() -> None:
    """Two persons and two years each start with the full cap."""
    bills = [stay("65000", "2008-01-10", person="A"), stay("65000", "2008-02-10", person="B"),
             stay("65000", "2009-01-10", person="A")]
    assert [r["fund_pay_sumamt"] for r in settle_bills(SUQIAN, bills)] == ["40000.00"] * 3


def test_unknown_category_is_settled_by_the_general_rules() -> None:
    """A category Suqian does not distinguish (in_service) settles as the default resident (DESIGN §3)."""
    bill = stay("12000", "2008-04-02")
    bill["person"]["category"] = "in_service"
    assert settle_bill(SUQIAN, bill)["fund_pay_sumamt"] == "6200.00"


def _pro_rata(total: Decimal, class_b: Decimal, zone_offset: Decimal = Decimal(0)) -> Decimal:
    """SQ-13/SQ-22 by hand: each band's part × (its rate − zone offset − 10% × B/E), half up to the fen."""
    bands = [(Decimal(500), Decimal(5000), Decimal("0.50")), (Decimal(5000), Decimal(10000), Decimal("0.55")),
             (Decimal(10000), Decimal(30000), Decimal("0.60")), (Decimal(30000), total, Decimal("0.70"))]
    with localcontext() as ctx:
        ctx.prec = 80
        paid = sum(max(Decimal(0), min(hi, total) - lo) * max(Decimal(0), rate - zone_offset - Decimal("0.1")
                                                               * class_b / total) for lo, hi, rate in bands)
    return paid.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_class_b_pro_rata_is_exact_beyond_int64_intermediates(monkeypatch) -> None:
    """A bill so large that r × E no longer fits an Int64 takes the Int128 path and pays the exact
    Decimal amount; a normal bill pays the same whichever path (the narrow one is forced off)."""
    uncapped = load_policy("suqian-2007", {"fund_cap_year": "100000000000"})
    huge = stay("90000000000.00", "2008-04-02")
    huge["amounts"]["class_b"] = "33333333333.33"
    expected = _pro_rata(Decimal("90000000000.00"), Decimal("33333333333.33"))
    assert settle_bill(uncapped, huge)["fund_pay_sumamt"] == f"{expected:.2f}"
    normal = stay("48765.43", "2008-04-02")
    normal["amounts"]["class_b"] = "12345.67"
    narrow = settle_bill(uncapped, normal)
    monkeypatch.setattr(benefits, "_fits_int64", lambda *_args: False)
    monkeypatch.setattr(benefits, "_narrow_fits", lambda *_args: False)
    assert settle_bill(uncapped, normal) == narrow
    assert narrow["fund_pay_sumamt"] == f"{_pro_rata(Decimal('48765.43'), Decimal('12345.67')):.2f}"


def test_code_texts_without_lists_are_the_lists_joined() -> None:
    """``settle(lists=False)`` (the partitioned batch) gives the same settlement without the list columns; the
    texts it keeps instead are those lists joined by ";" (null when empty), as the output writes them."""
    import polars as pl

    from medins.batch import BATCH_KEEP
    from medins.claims.readers import read_claims
    from medins.engine.settle import CODE_LISTS, OUTPUT_COLUMNS, settle

    policy = load_policy("suqian-2007")
    from pathlib import Path

    claims = read_claims(Path(__file__).resolve().parents[2] / "examples" / "claims.csv").claims
    both = settle(policy, claims, keep=BATCH_KEEP)
    texts = settle(policy, claims, keep=BATCH_KEEP, lists=False)
    assert texts.columns == [c for c in (*OUTPUT_COLUMNS, *BATCH_KEEP) if c not in CODE_LISTS]
    assert texts.equals(both.drop(*CODE_LISTS))
    for name, text in CODE_LISTS.items():
        joined = both.select(pl.when(pl.col(name).list.len() > 0).then(pl.col(name).list.join(";"))).to_series()
        assert joined.to_list() == both[text].to_list()
    assert both["unchecked"].list.len().sum() > 0 and both["assumed"].list.len().sum() > 0  # not vacuous
