"""A bill's ``history`` (year-to-date facts) must be possible under the policy before it is used.

Why: ``history`` tells the engine what happened earlier in the benefit year. Facts that cannot all be
true — in-scope spending so far under a per-year deductible but no deductible paid, a deductible paid
above the in-scope spending or above the standard, a fund paid above the yearly cap — would make the
engine charge the deductible a second time or pay past the cap, silently. Such a claim is rejected
``inconsistent_history:<field>`` instead (``medins calc`` stops with exit 2 and says what to give).
"""

from __future__ import annotations

import polars as pl

from medins.engine.admissibility import REASON_COLUMNS
from medins.engine.context import Lazy


def check_history(q: Lazy) -> None:
    """Reject claims whose history contradicts itself or the rule that settles them (on the rules stage's query)."""
    inscope, ded_paid, fund_paid = pl.col("hist_inscope"), pl.col("hist_deductible_paid"), pl.col("hist_fund_paid")
    q.code(REASON_COLUMNS, "inconsistent_history:deductible_paid", ded_paid > inscope)
    # The checks below read a claim's history only where it holds some spending or payment: on claims without any
    # (a batch's, whose state comes from its own earlier claims) their masks hold nowhere, and their standards and
    # caps (looked up by the evaluator, which first materialises the stage's pending query) need no evaluating.
    frame = q.run.frame  # the history columns are the claims' own: no step of the stage changes them
    spent = _any_positive(frame, "hist_inscope") or _any_positive(frame, "hist_deductible_paid")
    paid = _any_positive(frame, "hist_fund_paid")
    for idx, rule in enumerate(q.run.policy.model.rules):
        of_rule = (pl.col("_rule") == idx).fill_null(False)
        deductible = rule.deductible
        if spent and deductible is not None and deductible.per == "year":
            mask = of_rule & ((inscope > 0) | (ded_paid > 0)).fill_null(False)
            std = q.ev(deductible.standard, "money", mask=mask, on_error="ignore")
            # What a per-year deductible leaves paid after ``inscope`` of spending: min(inscope, standard).
            due = pl.min_horizontal(inscope, std)
            q.code(REASON_COLUMNS, "inconsistent_history:deductible_paid",
                   mask & std.is_not_null() & (ded_paid != due) & (ded_paid <= inscope))
        cap = rule.cap
        if paid and cap is not None and cap.per == "year":
            mask = of_rule & (fund_paid > 0).fill_null(False)
            limit = q.ev(cap.amount, "money", mask=mask, on_error="ignore")
            q.code(REASON_COLUMNS, "inconsistent_history:fund_paid",
                   mask & limit.is_not_null() & (fund_paid > limit))


def _any_positive(frame: pl.DataFrame, name: str) -> bool:
    """Whether some row of column ``name`` is above 0 (a Series reduction: no query)."""
    top = frame[name].max()
    return top is not None and top > 0  # type: ignore[operator]
