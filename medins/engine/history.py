"""A bill's ``history`` (year-to-date facts) must be possible under the policy before it is used.

Why: ``history`` tells the engine what happened earlier in the benefit year. Facts that cannot all be
true — in-scope spending so far under a per-year deductible but no deductible paid, a deductible paid
above the in-scope spending or above the standard, a fund paid above the yearly cap — would make the
engine charge the deductible a second time or pay past the cap, silently. Such a claim is rejected
``inconsistent_history:<field>`` instead (``medins calc`` stops with exit 2 and says what to give).
"""

from __future__ import annotations

import polars as pl

from medins.engine.admissibility import add_reason
from medins.engine.context import Run


def check_history(run: Run) -> None:
    """Reject claims whose history contradicts itself or the rule that settles them."""
    inscope, ded_paid, fund_paid = pl.col("hist_inscope"), pl.col("hist_deductible_paid"), pl.col("hist_fund_paid")
    add_reason(run, "inconsistent_history:deductible_paid", ded_paid > inscope)
    for idx, rule in enumerate(run.policy.model.rules):
        of_rule = run.frame.select((pl.col("_rule") == idx).fill_null(False)).to_series()
        deductible = rule.deductible
        if deductible is not None and deductible.per == "year":
            mask = of_rule & run.frame.select((inscope > 0) | (ded_paid > 0)).to_series()
            if mask.any():
                std = run.ev(deductible.standard, "money", mask=mask, on_error="ignore")
                run.frame = run.frame.with_columns(_hstd=std)
                # What a per-year deductible leaves paid after ``inscope`` of spending: min(inscope, standard).
                due = pl.min_horizontal(inscope, pl.col("_hstd"))
                add_reason(run, "inconsistent_history:deductible_paid",
                           pl.lit(mask) & pl.col("_hstd").is_not_null() & (ded_paid != due) & (ded_paid <= inscope))
                run.frame = run.frame.drop("_hstd")
        cap = rule.cap
        if cap is not None and cap.per == "year":
            mask = of_rule & run.frame.select(fund_paid > 0).to_series()
            if mask.any():
                run.frame = run.frame.with_columns(_hcap=run.ev(cap.amount, "money", mask=mask, on_error="ignore"))
                add_reason(run, "inconsistent_history:fund_paid",
                           pl.lit(mask) & pl.col("_hcap").is_not_null() & (fund_paid > pl.col("_hcap")))
                run.frame = run.frame.drop("_hcap")
