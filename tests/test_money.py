"""Money is exact: fen and ppm integers, half-up rounding only where named, floats refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
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
     ("NaN", "finite"), ("", "empty"), ("1e20", "not a number")],
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


@settings(deadline=None)  # the first reads compile the grammar; a busy machine must not fail it
@given(st.integers(0, 10**13))
def test_yuan_round_trip(fen: int) -> None:
    """fen → yuan text → fen is the identity."""
    assert to_fen(fen_to_yuan(fen)) == fen


# --- the money grammar (issue 12, deliverable 1): one reader for calc, batch, compare and --set ---------

@pytest.mark.parametrize(("text", "fen"), [
    ("１２００.００", 120000), ("１，２００．５", 120050), ("\u3000１２００\u3000", 120000), ("1,200.00", 120000),
    ("1,234,567", 123456700), ("1200.5", 120050), ("1200.5000", 120050), ("¥ 1,200.50", 120050),
    ("￥12元", 1200), ("12 元", 1200), ("0001", 100), ("100000000000", 10_000_000_000_000), ("-0", 0),
])
def test_money_grammar_accepts(text: str, fen: int) -> None:
    """Full-width digits, points, commas and spaces (NFKC), thousands commas, ¥/￥ and 元, zero decimals
    beyond the fen: each reads as the amount written."""
    assert to_fen(text) == fen


@pytest.mark.parametrize(("text", "code"), [
    ("1e4", "not_a_number"), ("1E+4", "not_a_number"), ("12_000", "not_a_number"), ("1,20,0", "not_a_number"),
    ("12,0000", "not_a_number"), (".5", "not_a_number"), ("5.", "not_a_number"), ("--5", "not_a_number"),
    ("-¥-5", "not_a_number"), ('"12"', "not_a_number"), ("1 200", "not_a_number"), ("+5", "not_a_number"),
    ("inf", "not_a_number"), ("NaN", "not_a_number"), ("0x10", "not_a_number"), ("一千", "not_a_number"),
    ("12.345", "sub_fen"), ("１２．３４５", "sub_fen"), ("1" * 31, "too_large"), ("100000000000.01", "too_large"),
    ("-5", "negative_amount"), ("－５", "negative_amount"), ("¥-5", "negative_amount"), ("\u2212" + "5", "negative_amount"),
    ("", "missing_field"), ("\u3000", "missing_field"),
])
def test_money_grammar_refuses_with_a_code(text: str, code: str) -> None:
    """Exponents, underscores, misplaced commas, signs, NaN/inf, sub-fen, huge, negative, empty: refused."""
    with pytest.raises(MoneyError) as caught:
        to_fen(text)
    assert caught.value.code == code


def test_negatives_only_where_allowed() -> None:
    """A leading minus (ASCII, full-width or U+2212, before or after ¥) is read only when allowed."""
    assert [to_fen(t, allow_negative=True) for t in ("-5", "－５", "¥-5", "-¥5", "\u22125")] == [-500] * 5


def test_decimal_and_int_values_follow_the_grammar() -> None:
    """A JSON number arrives as Decimal or int: ``1e4`` (Decimal("1E+4")) and 31 digits are refused as text is."""
    assert to_fen(Decimal("1200.50")) == 120050 and to_fen(12) == 1200
    with pytest.raises(MoneyError, match="not a number"):
        to_fen(Decimal("1E+4"))
    with pytest.raises(MoneyError, match="larger"):
        to_fen(10**30)
    with pytest.raises(MoneyError, match="larger"):
        to_fen("9" * 5000)  # a very long text is refused without a regex over it
    with pytest.raises(MoneyError, match="not a number"):
        to_fen("9x" * 100)


_CELL = st.text(st.sampled_from("0123456789０１２３４５６７８９.,，．-－ ¥￥元e_+\u3000"), max_size=14)


@settings(max_examples=150, deadline=None)
@given(_CELL)
def test_scalar_reader_agrees_with_decimal(text: str) -> None:
    """Whatever the text, an accepted amount equals the Decimal value of its NFKC digits (no rounding)."""
    try:
        fen = to_fen(text)
    except MoneyError as exc:
        assert exc.code in ("not_a_number", "sub_fen", "too_large", "negative_amount", "missing_field")
        return
    import unicodedata

    digits = unicodedata.normalize("NFKC", text).strip().replace(",", "").replace("¥", "").replace("元", "")
    assert Decimal(digits.replace(" ", "")) * 100 == fen
