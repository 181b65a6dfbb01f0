"""Money is exact: fen and ppm integers, half-up rounding only where named, floats refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medins.money import (
    MoneyError,
    div_half_up,
    fen_to_yuan,
    format_yuan,
    ppm_to_percent,
    to_fen,
    to_ppm,
)


@pytest.mark.parametrize(
    ("text", "fen"),
    [("12.34", 1234), ("0.01", 1), ("5000", 500000), ("1,234.50", 123450), ("¥12", 1200), ("12元", 1200),
     (Decimal("5000.01"), 500001), (7, 700)],
)
def test_to_fen_reads_yuan_text(text, fen) -> None:
    """Yuan text, Decimal and int become exact fen."""
    assert to_fen(text) == fen


@pytest.mark.parametrize(
    ("value", "message"),
    [(0.1, "binary float"), ("1.005", "two decimals"), ("-1", "negative"), ("abc", "not a number"),
     ("NaN", "finite"), ("", "empty"), ("1e20", "larger")],
)
def test_to_fen_refuses_what_is_not_money(value, message) -> None:
    """Floats, sub-fen amounts, negatives, text and NaN are refused with a reason."""
    with pytest.raises(MoneyError, match=message):
        to_fen(value)


def test_fen_to_yuan_has_two_decimals() -> None:
    """Yuan text at the edges always has two decimals; thousands separators only for people."""
    assert fen_to_yuan(123456) == "1234.56"
    assert fen_to_yuan(5) == "0.05"
    assert fen_to_yuan(-5) == "-0.05"
    assert format_yuan(1234567) == "12,345.67"


def test_rates_are_ppm() -> None:
    """Rates in percent or fraction become parts per million; finer than 0.0001 % is refused."""
    assert to_ppm("55%") == 550_000
    assert to_ppm("0.55") == 550_000
    assert to_ppm("2.1428%") == 21_428
    assert ppm_to_percent(550_000) == "55%"
    assert ppm_to_percent(910_000) == "91%"
    with pytest.raises(MoneyError, match="finer"):
        to_ppm("0.00000001")


def test_half_up_rounding() -> None:
    """Ties round away from zero; 2,250.0055 yuan is 225,000.55 fen → 225,001 fen (SQ-T3)."""
    assert div_half_up(5, 2) == 3
    assert div_half_up(4, 3) == 1
    assert div_half_up(-5, 2) == -3
    assert div_half_up(225_000_550_000, 1_000_000) == 225_001


@given(st.integers(-10**12, 10**12), st.integers(1, 10**9))
def test_half_up_matches_decimal(numerator: int, denominator: int) -> None:
    """div_half_up agrees with Decimal ROUND_HALF_UP for every numerator and denominator."""
    from decimal import ROUND_HALF_UP, localcontext

    with localcontext() as ctx:
        ctx.prec = 60
        expected = (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert div_half_up(numerator, denominator) == int(expected)


@given(st.integers(0, 10**13))
def test_yuan_round_trip(fen: int) -> None:
    """fen → yuan text → fen is the identity."""
    assert to_fen(fen_to_yuan(fen)) == fen
