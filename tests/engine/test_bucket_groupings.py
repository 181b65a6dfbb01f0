"""State groupings by bucket number (``benefits._grouping``) group claims exactly as the bucket texts do.

Why: the groupings of the benefits stage's state columns are built from each rule's bucket number gathered by
``_rule`` (small integers) rather than from the bucket columns' texts; a grouping that merged two buckets (or split
one, or merged the claims no rule settles with a rule's) would share caps and deductibles that must not be shared.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import medins.engine.settle as settle_module
from medins.claims.readers import read_claims
from medins.engine import benefits
from medins.engine.rules import BUCKETS
from medins.engine.state import group_order
from medins.policy.loader import load_policy

ROOT = Path(__file__).resolve().parents[2]


def _partition(key: pl.Series) -> list[list[int]]:
    """The rows of each group, as sorted lists (a grouping's key numbers its groups in its own way)."""
    frame = pl.DataFrame({"key": key, "row": pl.int_range(0, key.len(), eager=True)})
    return sorted(frame.group_by("key").agg(pl.col("row").sort())["row"].to_list())


@pytest.mark.parametrize("policy_name", ["suqian-2007", "cq-yubei-2023-resident"])
def test_bucket_number_groupings_equal_the_bucket_texts_groupings(monkeypatch: pytest.MonkeyPatch,
                                                                  policy_name: str) -> None:
    policy = load_policy(policy_name)
    claims = read_claims(ROOT / "examples" / "claims.csv").claims
    # a claim no rule settles (an unknown visit type) must stay apart from every rule's claims
    # and a person's 门诊大病 claims share the yearly cap's bucket with the stays (two rules, one bucket)
    special = claims.head(3).with_columns(visit_type=pl.lit("outpatient_special"),
                                          diagnosis=pl.lit(["dialysis"], pl.List(pl.String)))
    claims = pl.concat([claims, claims.head(3).with_columns(visit_type=pl.lit("unknown_kind")), special],
                       how="vertical")
    runs = []
    original = settle_module.settle_benefits

    def spy(run) -> None:
        original(run)
        runs.append(run)

    monkeypatch.setattr(settle_module, "settle_benefits", spy)
    settle_module.settle(policy, claims, keep_trace=True)  # the bucket texts are kept for the trace only
    run = runs[-1]
    assert run.frame["_rule"].null_count() > 0
    for column in BUCKETS:
        order, key = benefits._grouping(run, column)
        expected = group_order(run.frame, [*benefits.PERSON_YEAR, column])
        assert _partition(key) == _partition(expected[1]), column
        # within a group the rows go in claim order (``_seq``)
        seq = run.frame["_seq"]
        sorted_key, sorted_seq = (key, seq) if order is None else (key.gather(order), seq.gather(order))
        for k in sorted_key.unique().to_list():
            within = sorted_seq.filter(sorted_key.eq_missing(k)).to_list()
            assert within == sorted(within), column


def test_rules_sharing_an_expression_evaluate_it_once_as_each_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules with the same expression (Suqian's stays and 门诊大病: ``deductible[hospital_zone]``) evaluate it once on
    their rows together: the same values and the same reasons per claim as one evaluation per rule — with a zone
    no table has (a reason) and claims of a rule without a deductible among them."""
    policy = load_policy("suqian-2007")
    claims = read_claims(ROOT / "examples" / "claims.csv").claims
    special = claims.head(4).with_columns(visit_type=pl.lit("outpatient_special"),
                                          diagnosis=pl.lit(["dialysis"], pl.List(pl.String)))
    nowhere = claims.head(2).with_columns(hospital_zone=pl.lit("nowhere"), hospital_name=pl.lit(None, pl.String))
    claims = pl.concat([claims, special, nowhere], how="vertical")
    runs = []

    class Stop(Exception):
        pass

    def spy(run) -> None:  # the run as the benefits stage gets it is all this test needs
        runs.append(run)
        raise Stop

    monkeypatch.setattr(settle_module, "settle_benefits", spy)
    with pytest.raises(Stop):
        settle_module.settle(policy, claims)
    run = runs[0]
    run.frame = run.frame.with_columns(_ok=pl.lit(True))  # every claim evaluated, the unsettled zone's too
    standard = lambda r: r.deductible.standard if r.deductible else None  # noqa: E731
    shared = [i for i, r in enumerate(policy.model.rules) if standard(r) is not None]
    assert len(shared) == 2 and len({standard(policy.model.rules[i]) for i in shared}) == 1
    run.problems = {}
    together = benefits._ev_rules(run, standard, "money", required=True)
    problems_together = {i: sorted(v) for i, v in run.problems.items()}
    run.problems = {}
    alone = benefits._pick(run, {i: run.ev(standard(policy.model.rules[i]), "money", mask=benefits._mask(run, i),
                                           required=True) for i in shared}, pl.Int64)
    assert together.to_list() == alone.to_list()
    assert problems_together == {i: sorted(v) for i, v in run.problems.items()}
    assert problems_together  # the zone no table has is a reason on its claims
