"""Conditions compiled to Polars (``engine/native.py``) give, row by row, what the evaluator gives —
unknowns included — and everything outside the whitelist is left to the evaluator."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medins.engine.native import compile_condition
from medins.policy.expr import Expression

SCHEMA = {"visit_type": pl.String, "zone": pl.String, "emergency": pl.Boolean, "preapproved": pl.Boolean,
          "registered_date": pl.Date, "admit_date": pl.Date, "total": pl.Int64}
CONSTANTS = {"window": Decimal(3), "home": "in_district", "start": dt.date(2008, 3, 1), "flag": True}

CONDITIONS = [
    "visit_type == 'inpatient'",
    "visit_type != 'inpatient'",
    "visit_type in ('inpatient', 'outpatient_special')",
    "visit_type not in ['outpatient']",
    "zone == home or not emergency",
    "not coalesce(emergency, False) and not coalesce(preapproved, registered_date <= admit_date)",
    "coalesce(emergency, False) and not coalesce(preapproved, False)"
    " and registered_date > add_days(admit_date, window)",
    "registered_date >= start and (flag or zone == 'x')",
    "is_known(registered_date) and admit_date < add_days(start, 10)",
    "coalesce(zone, visit_type, 'none') == 'in_city'",
]

dates = st.one_of(st.none(), st.dates(dt.date(2008, 1, 1), dt.date(2008, 6, 30)))
rows = st.lists(st.fixed_dictionaries({
    "visit_type": st.sampled_from(["inpatient", "outpatient", "outpatient_special", None]),
    "zone": st.sampled_from(["in_district", "in_city", None]),
    "emergency": st.sampled_from([True, False, None]),
    "preapproved": st.sampled_from([True, False, None]),
    "registered_date": dates, "admit_date": dates, "total": st.integers(0, 10),
}), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(rows, st.sampled_from(CONDITIONS))
def test_compiled_condition_equals_the_evaluator_row_by_row(data, text) -> None:
    """Kleene logic, unknown comparisons and ``in``, coalesce, add_days, parameters: the same answer."""
    expr = Expression.parse(text)
    native = compile_condition(expr, SCHEMA, [CONSTANTS])
    assert native is not None, text
    frame = pl.DataFrame(data, schema=SCHEMA)
    got = frame.select(native.alias("v"))["v"].to_list()
    expected = [expr.evaluate({**CONSTANTS, **row}) for row in data]
    assert got == expected


@pytest.mark.parametrize("text", [
    "total > 100",  # amounts are the evaluator's (units, exact decimals)
    "'dialysis' in diagnosis",  # a list column
    "visit_type == 1",  # a text compared with a number: the evaluator says what it is
    "visit_type < 'z'",  # ordering of texts is not compiled
    "emergency and visit_type",  # 'and' of a text: an error the evaluator reports
    "registered_date < add_months(admit_date, 6)",  # calendar functions stay in Python
    "unknown_name == 'x'",  # neither a column nor a parameter: the evaluator reports it
    "zone == varies",  # a parameter that differs between versions
    "visit_type == None",
    "add_days(admit_date, window) == admit_date and True",
])
def test_conditions_outside_the_whitelist_are_left_to_the_evaluator(text) -> None:
    versions = [{**CONSTANTS, "varies": v, "window": Decimal("2.5")} for v in ("a", "b")]
    assert compile_condition(Expression.parse(text), {**SCHEMA, "diagnosis": pl.List(pl.String)}, versions) is None


def test_a_condition_that_is_not_true_false_is_not_compiled() -> None:
    assert compile_condition(Expression.parse("coalesce(zone, 'x')"), SCHEMA, [CONSTANTS]) is None
