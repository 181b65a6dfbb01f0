"""Money and rates as exact integers.

Why: reimbursement is audited to the fen, and a binary float cannot hold 0.1 yuan. Inside medins
money is an ``int`` number of fen (分) and a rate is an ``int`` number of parts per million (ppm,
so 55 % is 550_000). Values enter as text or :class:`~decimal.Decimal` and leave as yuan text with
two decimals. Rounding is half up to the fen and happens only where a function here says so.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import polars as pl

from medins.textnorm import nfkc

FEN_PER_YUAN = 100
PPM = 1_000_000


class MoneyError(ValueError):
    """A value cannot be read as money or as a rate (the message says why, in English; ``code`` names it)."""

    def __init__(self, message: str, code: str = "not_a_number") -> None:
        super().__init__(message)
        self.code = code


def _to_decimal(value: object, what: str) -> Decimal:
    if isinstance(value, (bool, float)):
        # Floats are refused on purpose: read JSON with parse_float=Decimal and YAML as text.
        raise MoneyError(f"{what} {value!r} is a binary float; pass text or Decimal", "binary_float")
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, str):
        text = nfkc(value).strip().replace(",", "")
        if not text:
            raise MoneyError(f"{what} is empty", "missing_field")
        if "_" in text or not _NUMBER.match(text):
            raise MoneyError(f"{what} {value!r} is not a number", "not_a_number")
        dec = Decimal(text)
    else:
        raise MoneyError(f"{what} {value!r} has type {type(value).__name__}", "wrong_type")
    if not dec.is_finite():
        raise MoneyError(f"{what} {value!r} is not a finite number", "not_a_number")
    return dec


#: A plain decimal number (rates): digits, an optional point and decimals, an optional sign; no exponent.
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")

# --- the money grammar ------------------------------------------------------------------------------
#
# One grammar for every amount medins reads (bill JSON, batch cells, --set of a yuan parameter), applied
# after NFKC (full-width digits, points, commas, minus and spaces fold to ASCII) and trimming:
#
#   [-][¥] digits[.decimals] [元]    digits: 1200 or 1,200 (commas every three digits), no exponent,
#                                    no underscore; decimals: at most two that are not zero (1200.5000 is
#                                    1200.50, a DECIMAL(18,4) export); ¥ before and/or 元 after (￥12元 is
#                                    how some Chinese exports write it); the minus before or after ¥, only
#                                    where negatives are allowed.
#
# Anything else is refused with a code: not_a_number (exponents, underscores, NaN, inf, words, stray
# signs or quotes), sub_fen (a non-zero third decimal), too_large (above MAX_YUAN), negative_amount.

#: Largest amount accepted anywhere (yuan): 10^13 fen, so a fen amount times a rate in ppm (10^19) stays
#: exact in the engine's Int128 products and every fen amount and sum of a year's claims fits Int64.
MAX_YUAN = Decimal("100000000000")
MAX_FEN = int(MAX_YUAN) * FEN_PER_YUAN
_MAX_DIGITS = len(str(int(MAX_YUAN)))
#: Groups: 1 sign before ¥, 2 ¥, 3 sign after ¥, 4 whole yuan (commas allowed), 5 decimals, 6 元.
AMOUNT_GRAMMAR = r"^(-?)(¥?)[ \t]*(-?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]+))?[ \t]*(元?)$"
#: The shape nearly every cell has (digits, at most two decimals, below MAX_YUAN): read by a decimal cast.
_PLAIN_YUAN = r"^[0-9]{1," + str(_MAX_DIGITS - 1) + r"}(?:\.[0-9]{1,2})?$"

Stages = list[list[pl.Expr]]


def is_plain_yuan(text: pl.Expr) -> pl.Expr:
    """Whether a cell is plain yuan (ASCII digits, at most two decimals, below MAX_YUAN): false for null.

    Why it matters: such a cell is its own trimmed NFKC text and is read by :func:`plain_yuan_fen` alone,
    so a column can be read at cast speed and only its other cells sent through the whole grammar.
    """
    return text.str.contains(_PLAIN_YUAN).fill_null(False)


def plain_yuan_fen(text: pl.Expr) -> pl.Expr:
    """The fen of a plain yuan cell (see :func:`is_plain_yuan`; other cells: undefined).

    Why the physical integer: a Decimal of scale 2 *is* its fen (``12.3`` is stored as 1230); read as
    such, the multiplication by 100 and its cast (a third of the cost) are not needed. Eighteen digits
    hold any plain cell (at most 11 digits of yuan and 2 of fen).
    """
    return text.cast(pl.Decimal(18, 2), strict=False).to_physical().cast(pl.Int64)


def amount_plan(text: pl.Expr, name: str, *, allow_negative: bool = False) -> tuple[Stages, pl.Expr, pl.Expr]:
    """Trimmed, NFKC-normalised yuan text → Int64 fen and the code of a bad cell (``sub_fen:<name>``…).

    This is the money grammar above, as Polars expressions over a whole column; :func:`to_fen` runs the
    very same plan on one value, so a bill and a batch cell can never be read differently. ``stages``
    are temporary columns (``_<tag>:<name>``) to add in order: each intermediate is computed once.
    Why text and not a float or Decimal cast: a cast would round ``12.345`` silently or read ``1e4``.
    """
    def tmp(tag: str) -> pl.Expr:
        return pl.col(f"_{tag}:{name}")

    plain = tmp("p")
    groups = pl.when(~plain).then(text).str.extract_groups(AMOUNT_GRAMMAR)  # null for plain cells
    parts = tmp("g").struct
    stages: Stages = [
        [is_plain_yuan(text).alias(f"_p:{name}")],
        [groups.alias(f"_g:{name}"), pl.when(plain).then(plain_yuan_fen(text)).alias(f"_q:{name}")],
        [(parts.field("1").is_not_null()  # group 1 takes part (maybe empty) whenever the grammar matched
          & ((parts.field("1") == "") | (parts.field("3") == ""))).alias(f"_ok:{name}"),
         (parts.field("1") + parts.field("3")).alias(f"_n:{name}"),
         parts.field("4").str.replace_all(",", "", literal=True).str.strip_chars_start("0").alias(f"_w:{name}"),
         parts.field("5").fill_null("").str.strip_chars_end("0").alias(f"_f:{name}")],
        [pl.when(tmp("ok") & (tmp("w").str.len_chars() <= _MAX_DIGITS)).then(
            pl.when(tmp("w") == "").then(pl.lit("0")).otherwise(tmp("w")).cast(pl.Int64, strict=False)
            * FEN_PER_YUAN + (tmp("f") + "00").str.slice(0, 2).cast(pl.Int64)).alias(f"_a:{name}")],
    ]
    fen, negative = tmp("a"), tmp("n") == "-"
    code = (pl.when(text.is_null() | plain).then(None)
            .when(~tmp("ok")).then(pl.lit(f"not_a_number:{name}"))
            .when(tmp("f").str.len_chars() > 2).then(pl.lit(f"sub_fen:{name}"))
            .when(fen.is_null() | (fen > MAX_FEN)).then(pl.lit(f"too_large:{name}")))
    if not allow_negative:
        code = code.when(negative & (fen != 0)).then(pl.lit(f"negative_amount:{name}"))
    value = pl.when(plain).then(tmp("q")).when(tmp("ok")).then(pl.when(negative).then(-fen).otherwise(fen))
    return stages, value, code


_SCALAR_MESSAGES = {
    "not_a_number": "is not a number (write digits, e.g. 1200.50, 1,200.50 or ¥1200; no exponent or underscore)",
    "sub_fen": "has more than two decimals (finer than one fen)",
    "too_large": f"is larger than {MAX_YUAN} yuan",
    "negative_amount": "is negative",
}


@lru_cache(maxsize=2)
def _scalar_plan(allow_negative: bool) -> tuple[Stages, pl.Expr, pl.Expr]:
    return amount_plan(pl.col("v"), "v", allow_negative=allow_negative)


def _read_amounts(texts: list[str], allow_negative: bool) -> list[tuple[int | None, str | None]]:
    """(fen, None) or (None, code) per trimmed, normalised text: :func:`amount_plan` on a small frame."""
    stages, value, code = _scalar_plan(allow_negative)
    frame = pl.LazyFrame({"v": texts}, schema={"v": pl.String})
    for stage in stages:
        frame = frame.with_columns(stage)
    rows = frame.select(value.alias("fen"), code.alias("code")).collect().rows()
    return [(None, found.partition(":")[0]) if found else (fen, None) for fen, found in rows]


@lru_cache(maxsize=4096)
def _read_amount(text: str, allow_negative: bool) -> tuple[int | None, str | None]:
    return _read_amounts([text], allow_negative)[0]


def _amount_text(value: object) -> str:
    """The trimmed, NFKC-normalised text of an amount, or MoneyError for what cannot be one."""
    if isinstance(value, (bool, float)):
        raise MoneyError(f"amount {value!r} is a binary float; pass text or Decimal", "binary_float")
    if isinstance(value, (int, Decimal, str)):
        text = value if isinstance(value, str) else str(value)
    else:
        raise MoneyError(f"amount {value!r} has type {type(value).__name__}", "wrong_type")
    text = nfkc(text).strip()
    if not text:
        raise MoneyError("amount is empty", "missing_field")
    if len(text) > 100:  # the grammar could only refuse it; such texts are not worth a regex or the cache
        if text.lstrip("-").replace(".", "", 1).isdigit():
            raise MoneyError(f"amount of {len(text)} digits is larger than {MAX_YUAN} yuan", "too_large")
        raise MoneyError(f"amount {text[:40]!r}… is not a number (more than 100 characters)", "not_a_number")
    return text


def _amount_result(value: object, text: str, fen: int | None, code: str | None) -> int:
    if code is None:
        return int(fen)  # type: ignore[arg-type]
    if code == "not_a_number" and text.lower() in ("nan", "-nan", "inf", "-inf", "infinity", "-infinity", "snan"):
        raise MoneyError(f"amount {value!r} is not a finite number", code)
    raise MoneyError(f"amount {value!r} {_SCALAR_MESSAGES[code]}", code)


def to_fen(value: object, *, allow_negative: bool = False) -> int:
    """Yuan (text in the money grammar above, int or Decimal) → integer fen, or :class:`MoneyError`.

    A Decimal is read as its text (a JSON ``1e4`` arrives as ``Decimal("1E+4")`` and is refused like
    the cell ``1e4``); an int as its digits.

    >>> to_fen("12.34"), to_fen(Decimal("5000.01")), to_fen(7), to_fen("１，２００")
    (1234, 500001, 700, 120000)
    """
    text = _amount_text(value)
    return _amount_result(value, text, *_read_amount(text, allow_negative))


def amounts_to_fen(values: list[object], *, allow_negative: bool = False) -> list[int | MoneyError]:
    """:func:`to_fen` of many values in one evaluation of the plan (a bill's amounts): fen or the error."""
    out: list[int | MoneyError] = []
    texts: dict[int, str] = {}
    for i, value in enumerate(values):
        try:
            texts[i] = _amount_text(value)
        except MoneyError as exc:
            out.append(exc)
            continue
        out.append(0)
    read = _read_amounts(list(texts.values()), allow_negative) if texts else []
    for (i, text), (fen, code) in zip(texts.items(), read, strict=True):
        try:
            out[i] = _amount_result(values[i], text, fen, code)
        except MoneyError as exc:
            out[i] = exc
    return out


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
