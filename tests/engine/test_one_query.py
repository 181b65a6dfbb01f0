"""Each stage of the engine is one query (``Run.lazy``), and reason codes are bits joined once (``engine/codes.py``).

Why counted: a stage that goes back to one eager pass per rule still gives the same settlement, only slower; the
number of Polars queries a stage runs on a one-claim bill is what says so (each ``with_columns``, ``select``,
``filter`` … on a frame is a query: ``LazyFrame.collect`` or its eager twin). The bounds are today's counts with a
little room, far below the passes a stage made before (admissibility 80, rules 27, prepare 18, totals 5).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import medins.engine.settle as settle_module
from medins.claims.bill import bill_to_tables
from medins.engine.codes import Codes, flags_to_lists
from medins.policy.checks import field_codes
from medins.policy.loader import load_policy

ROOT = Path(__file__).resolve().parents[2]

#: Most queries each stage may run on one bill (after a first settlement compiled the policy's native forms).
#: Benefits (ceiling, deductible, bands, cap and payers): 110 before its state columns became one query each and
#: its eager passes were fused (28), 19 since a policy without payers, ceilings or a mode of deductible runs no
#: step for them and the basic bands are one query, 18 since the bands and the class-B sum are one query with the
#: bound that decides their form. Rules: 13, 10 since the history checks look nothing up on a claim without history,
#: 7 (and admissibility 3) since the joined codes take their texts by indexing (a ``gather`` is a query of its own).
BOUNDS = {"engine.prepare": 3, "engine.scope": 2, "engine.admissibility": 3, "engine.rules": 7,
          "engine.benefits": 19, "engine.account": 12, "engine.totals": 2}


#: One bill of the three-payer policy (basic fund, 大额 and 倾斜救助), its published worked example: the payer chain
#: ran 98 queries for it in benefits before each payer became one query up to each state column it needs (28), 25
#: since a payer's bands and their sum are one query.
CQ_BILL = {"id": "CQ-YB-1", "person": {"id": "CQ-P1", "category": "resident", "assistance_class": "dibao_margin"},
           "visit": {"type": "inpatient", "admit_date": "2023-06-01", "discharge_date": "2023-06-15",
                     "hospital": {"level": 2, "zone": "in_district"}, "cause": "illness"},
           "amounts": {"total": 52000, "self_pay": 2000}}
CQ_BENEFITS = 26


def _queries_per_stage(monkeypatch: pytest.MonkeyPatch, bill: str | dict,
                       policy_name: str = "suqian-2007") -> Counter:
    policy = load_policy(policy_name)
    raw = bill if isinstance(bill, dict) else json.loads((ROOT / "examples" / bill).read_text(encoding="utf-8"))
    claims, items = bill_to_tables(raw, source=bill if isinstance(bill, str) else "bill", codes=field_codes(policy.model))
    settle_module.settle(policy, claims, items)  # compiles the native forms once (kept in the policy's memo)
    counts: Counter = Counter()
    current = ["outside"]

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        before, current[0] = current[0], name
        try:
            yield
        finally:
            current[0] = before

    for method in ("collect", "_collect_eager"):
        original = getattr(pl.LazyFrame, method)

        def counted(self, *args, _original=original, **kwargs):
            counts[current[0]] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(pl.LazyFrame, method, counted)
    monkeypatch.setattr(settle_module, "stage", stage)
    settle_module.settle(policy, claims, items)
    return counts


@pytest.mark.parametrize("bill", ["bill.json", "bill-items.json"])
def test_each_stage_runs_few_queries(monkeypatch: pytest.MonkeyPatch, bill: str) -> None:
    counts = _queries_per_stage(monkeypatch, bill)
    for name, bound in BOUNDS.items():
        if name == "engine.scope" and bill == "bill-items.json":
            continue  # line items are settled line by line (scope.py), not one claim-level query
        assert counts[name] <= bound, (name, counts)
    assert counts["engine.prepare"] >= 1, counts  # the counter does see the stages' queries


def test_the_payer_chain_runs_few_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = _queries_per_stage(monkeypatch, CQ_BILL, "cq-yubei-2023-resident")
    assert 1 <= counts["engine.benefits"] <= CQ_BENEFITS, counts


def _bits_frame(codes: Codes, steps: list[tuple[str | pl.Expr, pl.Expr, str]], frame: pl.DataFrame) -> pl.DataFrame:
    query = frame.lazy()
    for code, flag, prefix in steps:
        query = query.with_columns(codes.add(code, flag, prefix=prefix))
    return query.collect()


def _appended(steps: list[tuple[str | pl.Expr, pl.Expr, str]], frame: pl.DataFrame) -> list[str | None]:
    """The former way: each code appended to the text where its flag holds (``concat_str`` ignoring nulls).

    A value code was only ever flagged where its value is known (``is_in`` of a null is null, the other flags say
    ``is_not_null``): flagged on a null value, ``concat_str`` gave "" where bits give null, so the flag says so here.
    """
    out = frame.with_columns(_t=pl.lit(None, pl.String))
    for code, flag, prefix in steps:
        text = pl.lit(prefix) + code.cast(pl.String) if isinstance(code, pl.Expr) else pl.lit(code)
        known = flag & code.is_not_null() if isinstance(code, pl.Expr) else flag
        out = out.with_columns(_t=pl.when(known.fill_null(False))
                               .then(pl.concat_str([pl.col("_t"), text], separator=";", ignore_nulls=True))
                               .otherwise(pl.col("_t")))
    return out["_t"].to_list()


FRAME = pl.DataFrame({"a": [0, 1, 2, 3, None, 5, 6, 7], "zone": ["x", "y", None, "x", "y", "z", "x", "y"],
                      "level": [1, 2, 3, None, 1, 2, 3, 3]})


def test_codes_keep_the_order_they_were_added_in_and_none_is_null() -> None:
    steps: list[tuple[str | pl.Expr, pl.Expr, str]] = [
        ("late_claim", pl.col("a") >= 5, ""),
        (pl.col("zone"), pl.col("a") >= 2, "zone_not_settled:"),  # a value code: prefix + the row's value
        ("waiting_period", pl.col("a").is_in([1, 3, 7]), ""),
        ("late_claim", pl.col("a") == 6, ""),  # the same code twice stays twice, as appended before
        (pl.col("level"), pl.col("a") % 2 == 1, "hospital_level="),  # whole numbers as Polars writes them
        ("no_rule", pl.lit(None, pl.Boolean), ""),  # unknown counts as false
    ]
    codes = Codes("_reasons")
    joined = codes.joined(_bits_frame(codes, steps, FRAME))
    assert joined.to_list() == _appended(steps, FRAME)
    assert joined[0] is None  # no code: null, not ""
    assert joined.to_list()[7] == "late_claim;zone_not_settled:y;waiting_period;hospital_level=3"
    assert joined[2] is None  # a value code whose value is null adds nothing


def test_codes_past_one_bit_pattern_and_finish_drops_the_bits() -> None:
    steps: list[tuple[str | pl.Expr, pl.Expr, str]] = [
        (f"c{k}", (pl.col("a") + k) % 3 == 0, "") for k in range(70)]  # two Int64 patterns
    steps.insert(40, (pl.col("zone"), pl.col("a") == 3, "z:"))
    codes = Codes("_assumed")
    frame = _bits_frame(codes, steps, FRAME)
    expected = _appended(steps, FRAME)
    out = codes.finish(frame)
    assert out["_assumed"].to_list() == expected
    assert out.columns == [*FRAME.columns, "_assumed"]  # bit patterns and values gone
    assert codes.columns() == []


def test_no_codes_is_null_everywhere_and_no_rows_is_text() -> None:
    assert Codes("_reasons").joined(FRAME).to_list() == [None] * FRAME.height
    codes = Codes("_reasons")
    empty = _bits_frame(codes, [("x", pl.col("a") > 1, "")], FRAME.clear())
    assert codes.joined(empty).dtype == pl.String


def test_flags_to_lists_in_order() -> None:
    flags = [("b", pl.Series([True, False, None])), ("a", pl.Series([True, True, False]))]
    assert flags_to_lists(flags).to_list() == [["b", "a"], ["a"], []]


def test_a_troubled_native_form_settles_the_stage_again_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dates outside the native calendar tables (an enrolment in 1940, a claim date in 2099) are rows the
    deferred native forms hand back: the stage is run again through the exact evaluator, and the settlement
    is the one the stage gives without deferring at all."""
    from medins.api import bills_to_tables
    from medins.engine import context

    policy = load_policy("suqian-2007")
    base = json.loads((ROOT / "examples" / "bill.json").read_text(encoding="utf-8"))
    bills = []
    for k, (enrolled, claimed) in enumerate([("2007-08-15", "2008-03-20"), ("1940-01-01", "2008-03-20"),
                                              ("2007-08-15", "2099-03-20"), ("2008-02-20", "2008-03-20")]):
        bill = json.loads(json.dumps(base))
        bill["id"], bill["person"]["id"] = f"B{k}", f"P{k}"
        bill["person"]["enrolled_date"], bill["visit"]["claim_date"] = enrolled, claimed
        bills.append(bill)
    claims, items = bills_to_tables(bills, codes=field_codes(policy.model))
    reruns = []
    deferred = context.Run.deferred

    def spied(run: context.Run, step) -> None:
        def once(r: context.Run, defer: bool) -> None:
            reruns.append(defer)
            step(r, defer)
        deferred(run, once)

    monkeypatch.setattr(context.Run, "deferred", spied)
    fused = settle_module.settle(policy, claims, items)
    assert False in reruns  # a stage did go again through the evaluator
    monkeypatch.setattr(context.Run, "deferred", lambda run, step: step(run, False))
    assert fused.equals(settle_module.settle(policy, claims, items))
    assert fused["status"].to_list()[0] == "settled" and fused["reasons"].to_list()[3] == ["waiting_period"]


@pytest.mark.parametrize(("value", "dtype"), [(None, pl.Int64), (None, pl.Boolean), (None, pl.String), (0, pl.Int64),
                                              (7, pl.UInt32), (False, pl.Boolean), (True, pl.Boolean), ("a", pl.String)])
@pytest.mark.parametrize("n", [0, 1, 5])
def test_repeat_is_pl_repeat_without_a_query(monkeypatch: pytest.MonkeyPatch, value: object, dtype: pl.DataType,
                                             n: int) -> None:
    """``fused.repeat`` stands in for ``pl.repeat`` in the engine: the same column (values, type, name) at any length."""
    from medins.engine.fused import repeat

    expected = pl.repeat(value, n, dtype=dtype, eager=True)
    got = repeat(value, n, dtype)
    assert got.dtype == expected.dtype and got.name == expected.name and got.to_list() == expected.to_list()


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["x", "y", None]), st.sampled_from([1, 2, None])),
                min_size=1, max_size=12),
       st.lists(st.tuples(st.sampled_from(["code", "zone", "level", "none"]),
                          st.sampled_from(["always", "never", "a>=1", "a==2", "unknown"])), min_size=1, max_size=6))
def test_joined_codes_whatever_value_columns_and_patterns(rows, kinds) -> None:
    """Value codes whose column is null on every row, one pattern on every row (an assumption every claim takes)
    or several: the joined text is what appending the codes one by one gave."""
    frame = pl.DataFrame(rows, schema={"a": pl.Int64, "zone": pl.String, "level": pl.Int64}, orient="row")
    flags = {"always": pl.lit(True), "never": pl.lit(False), "a>=1": pl.col("a") >= 1, "a==2": pl.col("a") == 2,
             "unknown": pl.lit(None, pl.Boolean)}
    values = {"zone": pl.col("zone"), "level": pl.col("level"), "none": pl.lit(None, pl.String)}
    steps: list[tuple[str | pl.Expr, pl.Expr, str]] = [
        (f"c{k}" if kind == "code" else values[kind], flags[flag], "" if kind == "code" else f"{kind}=")
        for k, (kind, flag) in enumerate(kinds)]
    codes = Codes("_assumed")
    assert codes.joined(_bits_frame(codes, steps, frame)).to_list() == _appended(steps, frame)
