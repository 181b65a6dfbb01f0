"""Money and rates as exact integers.

Why: reimbursement is audited to the fen, and a binary float cannot hold 0.1 yuan. Inside medins
money is an ``int`` number of fen (分) and a rate is an ``int`` number of parts per million (ppm,
so 55 % is 550_000). Values enter as text or :class:`~decimal.Decimal` and leave as yuan text with
two decimals. Rounding is half up to the fen and happens only where a function here says so.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN_PER_YUAN = 100
PPM = 1_000_000
#: Largest amount accepted anywhere (yuan): 10 billion fen keeps every product exact in Int128.
MAX_YUAN = Decimal("100000000000")


class MoneyError(ValueError):
    """A value cannot be read as money or as a rate (the message says why, in English)."""


def _to_decimal(value: object, what: str) -> Decimal:
    if isinstance(value, (bool, float)):
        # Floats are refused on purpose: read JSON with parse_float=Decimal and YAML as text.
        raise MoneyError(f"{what} {value!r} is a binary float; pass text or Decimal")
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "").replace("，", "")
        for sign in ("¥", "￥", "元"):
            text = text.replace(sign, "")
        if not text:
            raise MoneyError(f"{what} is empty")
        try:
            dec = Decimal(text)
        except InvalidOperation:
            raise MoneyError(f"{what} {value!r} is not a number") from None
    else:
        raise MoneyError(f"{what} {value!r} has type {type(value).__name__}")
    if not dec.is_finite():
        raise MoneyError(f"{what} {value!r} is not a finite number")
    return dec


def to_fen(value: object, *, allow_negative: bool = False) -> int:
    """Yuan (text, int or Decimal; at most two decimals) → integer fen.

    >>> to_fen("12.34"), to_fen(Decimal("5000.01")), to_fen(7)
    (1234, 500001, 700)
    """
    dec = _to_decimal(value, "amount")
    if abs(dec) > MAX_YUAN:
        raise MoneyError(f"amount {value!r} is larger than {MAX_YUAN} yuan")
    fen = dec * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise MoneyError(f"amount {value!r} has more than two decimals (smaller than one fen)")
    if fen < 0 and not allow_negative:
        raise MoneyError(f"amount {value!r} is negative")
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    """Integer fen → yuan text with two decimals: ``123456 → "1234.56"``, ``-5 → "-0.05"``."""
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(int(fen)), FEN_PER_YUAN)
    return f"{sign}{q}.{r:02d}"


def fen_to_decimal(fen: int) -> Decimal:
    """Integer fen → Decimal yuan with exactly two decimals (for JSON output and tests)."""
    return Decimal(int(fen)).scaleb(-2)


def format_yuan(fen: int) -> str:
    """Integer fen → yuan with thousands separators, for people: ``1234567 → "12,345.67"``."""
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(int(fen)), FEN_PER_YUAN)
    return f"{sign}{q:,}.{r:02d}"


def to_ppm(value: object) -> int:
    """A rate → parts per million. Accepts ``"55%"``, ``"0.55"``, ``Decimal("0.55")``.

    A bare number is a fraction (0.55); a trailing ``%`` means percent. Must be a whole number of
    ppm (0.0001 %) — finer rates are refused rather than rounded.
    """
    if isinstance(value, str) and value.strip().endswith("%"):
        dec = _to_decimal(value.strip()[:-1], "rate") / 100
    else:
        dec = _to_decimal(value, "rate")
    ppm = dec * PPM
    if ppm != ppm.to_integral_value():
        raise MoneyError(f"rate {value!r} is finer than 0.0001 %")
    return int(ppm)


def ppm_to_percent(ppm: int) -> str:
    """Parts per million → percent text without trailing zeros: ``550000 → "55%"``."""
    dec = (Decimal(int(ppm)) / 10_000).normalize()
    text = format(dec, "f")
    return f"{text}%"


def div_half_up(numerator: int, denominator: int) -> int:
    """Exact integer division rounded half up (away from zero on ties), for fen results.

    >>> div_half_up(5, 2), div_half_up(-5, 2), div_half_up(4, 3)
    (3, -3, 1)
    """
    if denominator == 0:
        raise ZeroDivisionError("division by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return q if numerator >= 0 else -q


def round_decimal_to_fen(value: Decimal) -> int:
    """Decimal yuan → fen, half up (used only at the rounding points the design names)."""
    return int((value * FEN_PER_YUAN).quantize(Decimal(1), rounding=ROUND_HALF_UP))
