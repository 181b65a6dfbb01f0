"""Tests of medins.claims.writers: atomic output, money as yuan, and the formula-injection guard."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from medins.claims.fields import MONEY_COLUMNS
from medins.claims.readers import read_claims
from medins.claims.writers import write_rejects, write_table
from medins.errors import OutputError, UsageError
from medins.money import MAX_YUAN

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
