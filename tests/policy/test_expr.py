"""The policy expression language: exact numbers, unknown facts, and nothing outside its whitelist."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medins.policy.expr import ExprError, Expression, ExprEvalError


def ev(text: str, **env):
    return Expression.parse(text).evaluate(env)


def test_numbers_are_exact_decimals_and_percent_literals() -> None:
    """0.1 + 0.2 is exactly 0.3; 55% is 0.55; 50% - 10% is 0.40."""
    assert ev("0.1 + 0.2 == 0.3") is True
    assert ev("55%") == Decimal("0.55")
    assert ev("50% - 10%") == Decimal("0.40")
    assert ev("1 - 0.6 * (1 - 85%)") == Decimal("0.91")


@pytest.mark.parametrize("a", [True, False, None])
@pytest.mark.parametrize("b", [True, False, None])
def test_kleene_logic(a, b) -> None:
    """and/or/not treat None as unknown: False and ? = False, True or ? = True, not ? = ?."""
    expected_and = False if False in (a, b) else (None if None in (a, b) else True)
    expected_or = True if True in (a, b) else (None if None in (a, b) else False)
    assert ev("a and b", a=a, b=b) is expected_and
    assert ev("a or b", a=a, b=b) is expected_or
    assert ev("not a", a=a) is (None if a is None else not a)


def test_unknown_values_propagate() -> None:
    """Arithmetic, comparisons, lookups and if-else with an unknown give unknown; coalesce picks a value."""
    assert ev("x + 1", x=None) is None
    assert ev("x > 1", x=None) is None
    assert ev("t[k]", t={"a": Decimal(1)}, k=None) is None
    assert ev("1 if c else 2", c=None) is None
    assert ev("coalesce(x, 5)", x=None) == Decimal(5)
    assert ev("min(x, 5)", x=None) is None


def test_tables_membership_and_dates() -> None:
    """Nested tables with integer keys, `in` on tuples and lists, and the date functions."""
    table = {"student": {1: Decimal(0), 3: Decimal(650)}}
    assert ev("t[c][level]", t=table, c="student", level=Decimal(3)) == Decimal(650)
    assert ev("cause in ('maternity', 'work_injury')", cause="maternity") is True
    assert ev("'dialysis' in d", d=["dialysis"]) is True
    assert ev("add_months(d, 1)", d=date(2007, 8, 31)) == date(2007, 9, 30)
    assert ev("workday_add(d, 10)", d=date(2008, 9, 26)) == date(2008, 10, 15)
    assert ev("age_on(b, d)", b=date(1948, 3, 1), d=date(2008, 3, 1)) == Decimal(60)
    with pytest.raises(ExprEvalError, match="entries"):
        ev("t[k]", t={"a": Decimal(1)}, k="b")
    with pytest.raises(ExprEvalError, match="division by zero"):
        ev("1 / x", x=Decimal(0))


@pytest.mark.parametrize(
    "text",
    ["x.__class__", "__import__('os')", "open('f')", "lambda: 1", "[a for a in b]", "2 ** 3", "7 % 2",
     "f'{x}'", "(y := 1)", "min(x, key=1)"],
)
def test_forbidden_constructs_fail_at_parse_time(text) -> None:
    """Attribute access, imports, calls outside the whitelist, lambdas, comprehensions, **, modulo … are refused."""
    with pytest.raises(ExprError):
        Expression.parse(text)


def test_unknown_names_get_a_suggestion() -> None:
    """With the known names given, a typo is refused with a did-you-mean."""
    with pytest.raises(ExprError, match="visit_type"):
        Expression.parse("visit_typ == 'inpatient'", known_names={"visit_type", "cause"})
    assert Expression.parse("deductible[hospital_zone]").names == {"deductible", "hospital_zone"}


@given(st.decimals(min_value=-10**6, max_value=10**6, places=2), st.decimals(min_value=-10**6, max_value=10**6, places=2))
def test_arithmetic_matches_decimal(a, b) -> None:
    """Addition, subtraction and multiplication agree with Decimal exactly."""
    assert ev("a + b", a=a, b=b) == a + b
    assert ev("a - b", a=a, b=b) == a - b
    assert ev("a * b", a=a, b=b) == a * b


def test_a_fact_named_like_a_function_is_read_as_the_fact() -> None:
    """``year`` is a function (``year(service_date)``) and a claim fact (the benefit year): a table
    keyed by the benefit year reads the fact; only a called name is the function."""
    assert Expression.parse("ded_by_year[year]").names == frozenset({"ded_by_year", "year"})
    assert Expression.parse("year(service_date)").names == frozenset({"service_date"})
    assert ev("t[year]", t={2009: Decimal(400)}, year=2009) == Decimal(400)


def test_a_deductible_keyed_by_the_benefit_year_settles(tmp_path) -> None:
    """End to end: a policy whose deductible is ``table[year]`` settles a bill instead of rejecting it
    with "no value for 'year'"."""
    import json
    from pathlib import Path

    from medins.api import settle_bill
    from medins.policy.loader import load_policy

    root = Path(__file__).resolve().parents[2]
    text = (root / "policies" / "suqian-2007.yaml").read_text(encoding="utf-8")
    text = text.replace('standard: "deductible[hospital_zone]"', 'standard: "ded_by_year[year]"', 1)
    text = text.replace("parameters:\n", "parameters:\n  ded_by_year:\n    unit: yuan\n    values: {2008: 300, 2009: 400}\n"
                        "    source: test\n", 1)
    path = tmp_path / "by-year.yaml"
    path.write_text(text, encoding="utf-8")
    bill = json.loads((root / "examples" / "bill.json").read_text(encoding="utf-8"))
    out = settle_bill(load_policy(path), bill)
    assert out["status"] == "settled", out
