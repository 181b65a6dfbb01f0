"""Output tables (settlements, rejects) written atomically, with money as yuan and no spreadsheet formulas.

Why atomic: a batch output is what an auditor reconciles; a half-written CSV after a crash or a
full disk looks like a short batch. Each file is written next to its target under a temporary
name, synced and moved into place with ``os.replace``, so the target is either the old file or the
whole new one (a batch renames its settlements and rejects together: ``medins.atomic.OutputFiles``).
Why the guard: claims data is typed by many hands, and a cell like ``=HYPERLINK(…)`` opened
in Excel or WPS runs as a formula (CSV injection); such text cells get a leading ``'``.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from functools import cache
from pathlib import Path
from typing import IO, Literal

import polars as pl

from medins.atomic import atomic_path, writing
from medins.errors import UsageError

Format = Literal["csv", "parquet", "xlsx"]
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}
#: A text cell starting with one of these is read as a formula by spreadsheet programs.
FORMULA_START = r"^[=+\-@\t\r]"


def write_table(df: pl.DataFrame, path: str | Path, *, format: Format | None = None,
                money_columns: Collection[str] = (), bom: bool = False, into: str | Path | None = None) -> None:
    """Write ``df`` to ``path`` (format from the suffix unless given), all or nothing.

    ``money_columns`` hold Int64 fen: they are written as yuan text with two decimals in CSV/XLSX
    and as Decimal(18, 2) in Parquet. ``bom`` prefixes a CSV with the UTF-8 BOM, which Excel needs
    to recognise UTF-8. ``into``: write the file there instead, a temporary that the caller renames
    to ``path`` with the run's other files (:class:`medins.atomic.OutputFiles`).
    """
    path = Path(path)
    fmt = format or _SUFFIXES.get(path.suffix.lower())
    if fmt not in ("csv", "parquet", "xlsx"):
        raise UsageError(message_en=f"cannot tell the output format of {str(path)!r}",
                         message_zh=f"无法从文件名“{path}”判断输出格式",
                         hint_en="use a .csv, .parquet or .xlsx file name",
                         hint_zh="请使用 .csv、.parquet 或 .xlsx 文件名")
    missing = [c for c in money_columns if c not in df.columns]
    if missing:
        raise ValueError(f"money columns not in the table: {missing}")
    if not (path.parent.is_dir() and os.access(path.parent, os.W_OK)):
        raise UsageError(message_en=f"cannot write to {str(path.parent)!r}: not a writable folder",
                         message_zh=f"无法写入目录“{path.parent}”：目录不存在或不可写")
    out = _prepare(df, fmt, money_columns)
    if into is not None:
        with writing(path.parent):
            _write(out, str(into), fmt, bom, money_columns)
        return
    with atomic_path(path, f".{fmt}") as tmp:
        _write(out, tmp, fmt, bom, money_columns)


def _write(out: pl.DataFrame, file: str, fmt: Format, bom: bool, money_columns: Collection[str] = ()) -> None:
    """Write ``out`` as :func:`_prepare` made it (CSV: ``money_columns`` still Int64 fen, see :func:`write_csv`)."""
    if fmt == "csv":
        write_csv(out, file, money_columns, bom=bom)
    elif fmt == "parquet":
        out.write_parquet(file)
    else:
        out.write_excel(file, worksheet="data", autofilter=False)


def write_rejects(rejects_df: pl.DataFrame, path: str | Path, *, bom: bool = False,
                  into: str | Path | None = None) -> None:
    """Write the rejects table (same rules as :func:`write_table`; it has no money columns)."""
    write_table(rejects_df, path, bom=bom, into=into)


def yuan_text(col: pl.Expr) -> pl.Expr:
    """Int64 fen → yuan text with two decimals (``123456 → "1234.56"``, ``-5 → "-0.05"``), vectorised."""
    magnitude = col.abs()
    return pl.concat_str(pl.when(col < 0).then(pl.lit("-")).otherwise(pl.lit("")),
                         (magnitude // 100).cast(pl.String), pl.lit("."),
                         (magnitude % 100).cast(pl.String).str.zfill(2))


def yuan_decimal(col: pl.Expr, *, precision: int = 18) -> pl.Expr:
    """Int64 fen → Decimal(``precision``, 2) yuan, exactly: the fen *are* the Decimal's unscaled integer.

    Written to CSV it is the same text as :func:`yuan_text` (``-5 → -0.05``, ``0 → 0.00``) at a fraction of
    the cost, which matters for twenty money columns of a million claims. Why a reinterpretation: a Decimal
    of scale 2 is stored as its number of hundredths, so fen widened to Int128 are read as such, bit for bit
    (a third of the cost of multiplying by ``0.01`` in decimal arithmetic, and no rounding can come in).
    ``precision`` 18 is the Parquet type; 38 (CSV) writes the same text. An amount that does not fit
    ``precision`` digits raises, as the strict cast did. Polars without this reinterpretation (before 2)
    multiplies by a cent cast from text (a ``decimal.Decimal`` literal would import numpy).
    """
    if _reinterprets_decimal():
        return col.cast(pl.Int128).reinterpret(dtype=pl.Decimal(precision, 2))
    cent = pl.lit("0.01").cast(pl.Decimal(3, 2))
    product = col.cast(pl.Decimal(38, 0)) * cent
    return product if precision == 38 else product.cast(pl.Decimal(precision, 2))


@cache
def _reinterprets_decimal() -> bool:
    """Whether this Polars reinterprets Int128 as a Decimal (its unscaled integer): 1.23 from 123."""
    try:
        out = pl.Series([-123], dtype=pl.Int128).reinterpret(dtype=pl.Decimal(5, 2))
    except (TypeError, AttributeError, pl.exceptions.PolarsError):
        return False
    return out.dtype == pl.Decimal(5, 2) and str(out[0]) == "-1.23"


def guard_formula(col: pl.Expr) -> pl.Expr:
    """Prefix ``'`` to text that a spreadsheet would run as a formula."""
    return pl.when(col.str.contains(FORMULA_START)).then(pl.lit("'") + col).otherwise(col)


def _prepare(df: pl.DataFrame, fmt: Format, money_columns: Collection[str]) -> pl.DataFrame:
    """``df`` as :func:`_write` takes it: :func:`format_text`, then :func:`format_money` (each cell on its own),
    except for CSV, whose money :func:`write_csv` formats as it writes (Int64 fen until then)."""
    text = format_text(df, fmt, money_columns)
    return text if fmt == "csv" else format_money(text, fmt, money_columns)


def format_text(df: pl.DataFrame, fmt: Format, money_columns: Collection[str] = ()) -> pl.DataFrame:
    """The cells of ``df`` other than ``money_columns`` as written in ``fmt``: for CSV and XLSX, lists joined
    with ";" and text guarded against formulas (money and other columns as they are).

    Why apart from :func:`format_money`: a batch formats text as soon as a partition is settled, and keeps
    money as Int64 fen, half the memory of the Decimal it is written as, until the write. Why the guard
    only on columns that need it: guarding builds a prefixed copy of the whole column, which the result
    then keeps alive beside the original text; a column with no cell to guard is kept as it is.
    """
    if fmt == "parquet":
        return df
    exprs = []
    texts = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if name in money_columns:
            exprs.append(col)
            continue
        if isinstance(dtype, pl.List):  # CSV and XLSX cells hold text: lists are joined with ";"
            exprs.append(col.list.eval(pl.element().cast(pl.String)).list.join(";"))
        elif dtype == pl.String:
            exprs.append(col)
        elif dtype.is_nested() or dtype == pl.Object:
            exprs.append(col.map_elements(str, return_dtype=pl.String))
        else:
            exprs.append(col)
            continue
        texts.append(name)
    out = df.select(expr.alias(name) for expr, name in zip(exprs, df.columns, strict=True))
    if not texts or not out.height:
        return out
    guarded = [guard_formula(pl.col(name)).alias(name) for name in _formula_columns(out, texts)]
    return out.with_columns(guarded) if guarded else out


#: Every cell that ``FORMULA_START`` matches sorts below this text: the characters it starts with are all below
#: "A", so a cell starting with "A" or above (byte by byte) cannot match (a test holds the pattern to it).
_FORMULA_BELOW = "A"


def _formula_columns(df: pl.DataFrame, names: list[str]) -> list[str]:
    """Those of the text columns ``names`` with a cell matching ``FORMULA_START``.

    Why a comparison first: the pattern costs ~27 ns a cell (a 250,000-row partition's seven text columns:
    ~45 ms); a cell can only match when it is not empty and sorts below :data:`_FORMULA_BELOW` (its first
    byte is below "A"), one comparison at ~3 ns a cell. Ids, statuses and codes start with letters: the pattern
    is then matched on no column at all, and on the columns with such a cell it is matched as before.
    """
    maybe = df.select(((pl.col(name) < _FORMULA_BELOW) & (pl.col(name).str.len_bytes() > 0)).any()
                      for name in names).row(0)
    suspects = [name for name, flag in zip(names, maybe, strict=True) if flag]
    if not suspects:
        return []
    found = df.select(pl.col(name).str.contains(FORMULA_START).any() for name in suspects).row(0)
    return [name for name, flag in zip(suspects, found, strict=True) if flag]


def format_money(df: pl.DataFrame, fmt: Format, money_columns: Collection[str]) -> pl.DataFrame:
    """``money_columns`` (Int64 fen) as written in ``fmt``: yuan text (XLSX), Decimal(38, 2) (CSV: the same
    text as Decimal(18, 2), and any Int64 fits) or Decimal(18, 2) (Parquet); the other columns as they are."""
    if not money_columns:
        return df
    exprs = []
    for name in money_columns:
        fen = pl.col(name).cast(pl.Int64)
        exprs.append((yuan_text(fen) if fmt == "xlsx" else yuan_decimal(fen, precision=38 if fmt == "csv" else 18))
                     .alias(name))
    return df.with_columns(exprs)


#: A zero amount as written in CSV: the text of a zero Decimal(38, 2).
ZERO_YUAN = "0.00"


def write_csv(df: pl.DataFrame, file: str | Path | IO[bytes], money_columns: Collection[str] = (), *,
              include_header: bool = True, bom: bool = False) -> None:
    """``df`` (text formatted: :func:`format_text`; ``money_columns`` Int64 fen) written as CSV to ``file`` (a
    path, or an open binary file appended to), money as yuan text with two decimals (:func:`format_money`).

    Why zeros are written as the null text: Polars writes a Decimal cell at about twice the cost of an
    integer (a 128-bit number turned to digits), while a null cell is a fixed text copied as it is; and zero
    is most of a settlement's money cells (a policy pays from a few of the national list's funds, the others'
    columns are all zero). So each zero amount is made null and nulls are written as ``0.00``, the very text
    of a zero Decimal(38, 2): the same bytes, and the write of 1,000,000 claims a quarter cheaper. That is only
    sound when no other cell is null (a null stays an empty cell): a table holding a null is written plainly.
    A money column with no amount but zero (half a settlement's columns, the funds a policy does not pay from)
    is written as a column of the Null type: the same null text, without its Decimal (a 128-bit copy of the
    column and a range check) and with the writer's cheapest cell: 5% fewer instructions for the write of a range
    of the 1,000,000-claim benchmark (Suqian: ten of the twenty columns are zero).
    """
    if not money_columns or any(column.has_nulls() for column in df.iter_columns()):
        format_money(df, "csv", money_columns).write_csv(file, include_header=include_header, include_bom=bom)
        return
    fen = [pl.col(name).cast(pl.Int64) for name in money_columns]
    paid = df.select(col.ne(0).any() for col in fen).row(0)
    zeros_null = df.with_columns(
        (yuan_decimal(pl.when(col != 0).then(col), precision=38) if any_paid else pl.lit(None, dtype=pl.Null))
        .alias(name) for col, name, any_paid in zip(fen, money_columns, paid, strict=True))
    zeros_null.write_csv(file, include_header=include_header, include_bom=bom, null_value=ZERO_YUAN)
