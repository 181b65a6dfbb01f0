"""Tests of medins.claims.writers: atomic output, money as yuan, and the formula-injection guard."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from medins.claims.fields import MONEY_COLUMNS
from medins.claims.readers import read_claims
from medins.claims.writers import format_money, write_csv, write_rejects, write_table
from medins.errors import OutputError, UsageError
from medins.money import MAX_YUAN, fen_to_yuan

FRAME = pl.DataFrame({
    "claim_id": ["C1", "=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "ok-", None],
    "total": [123456, -5, 0, 7, int(MAX_YUAN) * 100, 1, 2, 3, None],
    "day": [dt.date(2008, 3, 2)] * 9,
    "codes": [["a", "b"], None, [], ["=x"], ["y"], ["z"], ["w"], ["v"], ["u"]],
})


def test_csv_money_as_yuan_and_formulas_guarded(tmp_path: Path) -> None:
    """Money columns become yuan text; text starting = + - @ tab CR gets a leading quote; lists are joined."""
    path = tmp_path / "out.csv"
    write_table(FRAME, path, money_columns=["total"])
    back = pl.read_csv(path, infer_schema=False)
    assert back["total"].to_list() == ["1234.56", "-0.05", "0.00", "0.07", "100000000000.00", "0.01", "0.02",
                                       "0.03", None]
    assert back["claim_id"].to_list() == ["C1", "'=cmd|' /C calc'!A0", "'+1", "'-2", "'@SUM(A1)", "'\tx",
                                          "'\rx", "ok-", None]
    assert back["codes"].to_list()[:4] == ["a;b", None, "", "'=x"]
    assert back["day"][0] == "2008-03-02"
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")


def test_csv_bom_on_request(tmp_path: Path) -> None:
    """bom=True writes the UTF-8 BOM Excel needs."""
    path = tmp_path / "out.csv"
    write_table(FRAME.head(1), path, bom=True)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")


def test_parquet_money_as_decimal(tmp_path: Path) -> None:
    """In Parquet money is Decimal(18, 2) yuan and text is written unchanged."""
    path = tmp_path / "out.parquet"
    write_table(FRAME, path, money_columns=["total"])
    back = pl.read_parquet(path)
    assert back.schema["total"] == pl.Decimal(18, 2)
    assert back["total"].to_list()[:2] == [Decimal("1234.56"), Decimal("-0.05")]
    assert back["claim_id"][1] == "=cmd|' /C calc'!A0" and back["codes"][0].to_list() == ["a", "b"]


def test_xlsx_round_trip(tmp_path: Path) -> None:
    """XLSX gets yuan text and guarded text too, and reads back through calamine."""
    path = tmp_path / "out.xlsx"
    write_table(FRAME, path, money_columns=["total"])
    back = pl.read_excel(path, engine="calamine", infer_schema_length=0)
    assert back["total"].to_list()[:3] == ["1234.56", "-0.05", "0.00"]
    assert back["claim_id"].to_list()[1:3] == ["'=cmd|' /C calc'!A0", "'+1"]


def test_explicit_format_overrides_suffix(tmp_path: Path) -> None:
    """format= wins over the file name."""
    path = tmp_path / "out.data"
    write_table(FRAME.head(2), path, format="parquet")
    assert pl.read_parquet(path).height == 2
    with pytest.raises(UsageError, match="output format"):
        write_table(FRAME, tmp_path / "out.data")


def test_failed_write_leaves_no_partial_and_no_temp_file(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception mid-write keeps the old file intact and removes the temporary file."""
    path = tmp_path / "out.csv"
    path.write_text("old\n", encoding="utf-8")

    def half_then_fail(self: pl.DataFrame, file: str, **_kw: object) -> None:
        Path(file).write_text("claim_id\nC1\n", encoding="utf-8")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_csv", half_then_fail)
    with pytest.raises(OutputError, match=r"disk is full.*No space"):  # a user's message, not a traceback
        write_table(FRAME, path)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_failed_first_write_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an old file, a failed write leaves the directory empty."""
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.DataFrame, "write_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_table(FRAME, tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    """Writing into a directory that does not exist is the user's mistake, reported cleanly."""
    with pytest.raises(UsageError, match="cannot write"):
        write_table(FRAME, tmp_path / "nope" / "out.csv")


def test_write_rejects_and_read_back(tmp_path: Path) -> None:
    """Rejects are written like any table, with the raw line kept and guarded."""
    src = tmp_path / "in.csv"
    src.write_text("claim_id,person_id,admit_date,total\n=1+1,P,2008-03-02,x\n", encoding="utf-8")
    rejects = read_claims(src).rejects
    out = tmp_path / "rejects.csv"
    write_rejects(rejects, out)
    back = pl.read_csv(out, infer_schema=False)
    assert back["reason"].to_list() == ["not_a_number:total"]
    assert back["claim_id"].to_list() == ["'=1+1"] and back["raw"].to_list() == ["'=1+1,P,2008-03-02,x"]


def test_claims_csv_round_trip(tmp_path: Path) -> None:
    """Claims written with money as yuan read back to the same claims table."""
    src = tmp_path / "in.csv"
    src.write_text("claim_id,person_id,admit_date,total,self_pay,diagnosis,emergency\n"
                   "C1,P1,2008-03-02,1234.50,0.05,高血压;糖尿病,是\n", encoding="utf-8")
    claims = read_claims(src).claims
    out = tmp_path / "claims.csv"
    write_table(claims, out, money_columns=MONEY_COLUMNS)
    assert read_claims(out).claims.equals(claims)


# --- money as CSV writes it ------------------------------------------------------------------------

#: Any Int64 number of fen (a Decimal(38, 2) holds them all).
ANY_FEN = st.integers(-(2**63), 2**63 - 1)


def _decimal_yuan(fen: int) -> str:
    """The yuan of ``fen`` as Python's exact Decimal writes it with two places: the reference."""
    return format(Decimal(fen).scaleb(-2), "f")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(ANY_FEN, st.sampled_from([0, 1, -1, 5, -5, 99, -99, 100, -100])), min_size=1,
                max_size=60), st.booleans())
@example([0, -5, 5, 100, -100, 2**63 - 1, -(2**63)], False)
@example([0, -5, 5, 100, -100, 2**63 - 1, -(2**63)], True)
def test_csv_money_text_is_the_exact_decimal(values: list[int], null_text: bool) -> None:
    """Every fen amount — zero, negative, the largest Int64 — is written as its exact Decimal yuan with two
    places (the same text as money.fen_to_yuan), on both of write_csv's paths: zeros as the null text (a table
    without null) and the plain one (a table with a null cell, which stays empty)."""
    ids = [None if null_text and i == 0 else f"C{i}" for i in range(len(values))]
    frame = pl.DataFrame({"id": ids, "m": values}, schema={"id": pl.String, "m": pl.Int64})
    out = io.BytesIO()
    write_csv(frame, out, ["m"])
    lines = out.getvalue().decode().splitlines()
    assert lines[0] == "id,m"
    written = [line.split(",")[1] for line in lines[1:]]
    assert written == [_decimal_yuan(v) for v in values]
    assert written == [fen_to_yuan(v) for v in values]
    assert [line.split(",")[0] for line in lines[1:]] == [i or "" for i in ids]


#: Text cells, with what CSV quotes (comma, quote, line breaks), empty text and "0.00" itself.
TEXT = st.lists(st.sampled_from(["a", "甲", ",", '"', "\n", "\r", " ", "=", "0.00"]), max_size=6).map("".join)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(TEXT, st.one_of(st.just(0), ANY_FEN), st.one_of(st.just(0), ANY_FEN)), min_size=1,
                max_size=30), st.booleans())
def test_csv_zeros_as_null_text_write_the_plain_bytes(rows: list[tuple[str, int, int]], header: bool) -> None:
    """The zero amounts written as the null text give, byte for byte, what Polars writes for the Decimal money
    of format_money: text cells quoted or not, empty text as "", whatever the text holds (even "0.00")."""
    frame = pl.DataFrame(rows, schema={"text": pl.String, "a": pl.Int64, "b": pl.Int64}, orient="row")
    out = io.BytesIO()
    write_csv(frame, out, ["a", "b"], include_header=header)
    assert out.getvalue() == format_money(frame, "csv", ["a", "b"]).write_csv(include_header=header).encode()


def test_csv_money_bytes_are_as_documented(tmp_path: Path) -> None:
    """The exact bytes of a settlement's money in CSV (fails if any is written differently: the places, the
    sign, zeros, quotes); a null amount or text stays an empty cell, an empty text is "" — on either path."""
    frame = pl.DataFrame({"claim_id": ["C1", "C2", "C3", "C4"], "total": [123456, -5, 0, 10**13],
                          "paid": [0, 0, -100, 7], "reasons": ["", "a;b", "", "x"]})
    expected = (b'claim_id,total,paid,reasons\nC1,1234.56,0.00,""\nC2,-0.05,0.00,a;b\nC3,0.00,-1.00,""\n'
                b"C4,100000000000.00,0.07,x\n")
    path = tmp_path / "out.csv"
    write_table(frame, path, money_columns=["total", "paid"])
    assert path.read_bytes() == expected
    with_nulls = pl.concat([frame, pl.DataFrame({"claim_id": ["C5", None], "total": [None, 0], "paid": [0, 0],
                                                 "reasons": [None, ""]})])
    write_table(with_nulls, path, money_columns=["total", "paid"])
    assert path.read_bytes() == expected + b'C5,,0.00,\n,0.00,0.00,""\n'


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(TEXT, ANY_FEN, ANY_FEN, ANY_FEN), max_size=30),
       st.lists(st.booleans(), min_size=3, max_size=3), st.booleans())
@example([], [True, True, True], True)
@example([("", 0, 0, 0)], [True, True, True], False)
def test_csv_money_columns_all_zero_write_the_plain_bytes(rows: list[tuple[str, int, int, int]], zero: list[bool],
                                                          header: bool) -> None:
    """A money column whose every amount is zero (written as a column of the Null type) gives the bytes of the
    Decimal column of format_money, beside columns that have amounts, in a table of no rows too."""
    frame = pl.DataFrame(rows, schema={"text": pl.String, "a": pl.Int64, "b": pl.Int64, "c": pl.Int64}, orient="row")
    frame = frame.with_columns(pl.lit(0, dtype=pl.Int64).alias(name) for name, z in zip("abc", zero, strict=True) if z)
    out = io.BytesIO()
    write_csv(frame, out, ["a", "b", "c"], include_header=header)
    assert out.getvalue() == format_money(frame, "csv", ["a", "b", "c"]).write_csv(include_header=header).encode()


_FORMULA_CHARS = "=+-@\t\r"


def test_every_cell_the_formula_pattern_matches_sorts_below_the_cheap_bound() -> None:
    """``_formula_columns`` skips the pattern on columns with no cell below ``_FORMULA_BELOW``: sound only while
    every character the pattern starts a cell with sorts below it (a character added to ``FORMULA_START`` that
    does not would be missed). Every character of the Basic Multilingual Plane, alone and followed by text."""
    from medins.claims.writers import _FORMULA_BELOW, FORMULA_START

    chars = pl.Series([chr(c) for c in range(1, 0x10000) if not 0xD800 <= c < 0xE000])
    cells = pl.concat([chars, chars + "x"])
    matched = cells.filter(cells.str.contains(FORMULA_START))
    assert matched.len() == 2 * len(_FORMULA_CHARS)
    assert (matched < _FORMULA_BELOW).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from([*_FORMULA_CHARS, "A", "a", "0", "<", ">",
                                                                        "?", " ", "\n", "\x00", "é", "中", "'"]),
                                              max_size=4)), max_size=30))
@example([])
@example(["", None, "A=1"])
@example(["?x", ">", "@"])
def test_formula_columns_are_those_the_pattern_finds(cells: list[str | None]) -> None:
    """The cheap comparison before the pattern (``_formula_columns``) finds exactly the columns the pattern alone
    finds, and the written text is guarded where the pattern says: on columns with and without such a cell."""
    from medins.claims.writers import FORMULA_START, _formula_columns, format_text, guard_formula

    frame = pl.DataFrame({"a": cells, "b": [None if c is None else "Z" + c for c in cells]},
                         schema={"a": pl.String, "b": pl.String})
    expected = [name for name in ("a", "b") if frame[name].str.contains(FORMULA_START).any()]
    assert _formula_columns(frame, ["a", "b"]) == expected
    assert format_text(frame, "csv").equals(frame.with_columns(guard_formula(pl.col(n)).alias(n) for n in ("a", "b")))
