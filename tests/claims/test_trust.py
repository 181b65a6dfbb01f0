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


def test_bill_codes_are_nfkc_too() -> None:
    """A bill's visit type typed full-width reads as the code, as the same cell in a batch does."""
    from medins.claims.bill import bill_to_tables

    claims, _ = bill_to_tables({"visit": {"type": "ｏｕｔｐａｔｉｅｎｔ", "admit_date": "2008-04-02"},
                                "amounts": {"total": "１０"}}, source="b.json")
    assert claims.select("visit_type", "total").row(0) == ("outpatient", 1000)


def test_names_and_ids_are_kept_as_written(tmp_path: Path) -> None:
    """NFKC is for numbers and codes: a full-width id or hospital name is kept as written, trimmed only."""
    header = HEADER + ",hospital_name"
    path = tmp_path / "n.csv"
    path.write_text(f"{header}\n Ｃ１ ,P1,inpatient,2008-04-02,in_district,true,10,0,0,市医院（东院）\n",
                    encoding="utf-8")
    row = read_claims(path).claims.row(0, named=True)
    assert (row["claim_id"], row["hospital_name"]) == ("Ｃ１", "市医院（东院）")


# --- bill JSON: the same grammar, and no silent choice among duplicate keys ------------------------

BILL = ('{"id": "B1", "visit": {"type": "inpatient", "admit_date": "2008-04-02", '
        '"hospital": {"zone": "in_district"}, "preapproved": true}, "amounts": {AMOUNTS}}')


def run_calc(capsys, tmp_path: Path, text: str) -> tuple[int, str]:
    """``medins calc`` in-process through the real error boundary; (exit code, stdout + stderr)."""
    import sys

    from medins.cli import main

    path = tmp_path / "bill.json"
    path.write_text(text, encoding="utf-8")
    argv, sys.argv = sys.argv, ["medins", "calc", str(path), "--policy", "suqian-2007", "--format", "json"]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out + err


def test_bill_and_batch_read_money_alike(capsys, tmp_path: Path) -> None:
    """A full-width, comma-grouped total in a bill settles as the batch cell would; ``1e4`` is refused in both."""
    code, out = run_calc(capsys, tmp_path, BILL.replace("AMOUNTS", '"total": "２０，０００.００", "self_pay": "1200"'))
    assert code == 0 and '"medfee_sumamt": "20000.00"' in out and '"fulamt_ownpay_amt": "1200.00"' in out
    code, out = run_calc(capsys, tmp_path, BILL.replace("AMOUNTS", '"total": 1e4'))
    assert code == 2 and "amounts.total" in out and "1E+4" in out and "Traceback" not in out


@pytest.mark.parametrize(("amounts", "words"), [
    ('"total": "100", "total": "200"', ("amounts.total", "more than once")),
    ('"total": ' + "9" * 5000, ("amounts.total", "larger than")),
    ('"total": "100", "self_pay": "\\ud800"', ("amounts.self_pay", "surrogate")),
], ids=["duplicate key", "5000 digits", "lone surrogate"])
def test_bad_bill_json_is_a_located_error_not_a_traceback(capsys, tmp_path: Path, amounts: str,
                                                          words: tuple[str, str]) -> None:
    """Duplicate keys (no silent last-wins), a 5,000-digit number, a lone surrogate: exit 2, located."""
    code, out = run_calc(capsys, tmp_path, BILL.replace("AMOUNTS", amounts))
    assert code == 2 and "Traceback" not in out
    assert all(word in out for word in words), out


def test_deeply_nested_bill_is_a_clean_error(capsys, tmp_path: Path) -> None:
    """JSON nested a hundred thousand levels deep is refused with a message, not a RecursionError."""
    code, out = run_calc(capsys, tmp_path, '{"history": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert code == 2 and "nested too deeply" in out and "Traceback" not in out


def test_set_of_a_yuan_parameter_uses_the_money_grammar() -> None:
    """``--set`` reads yuan as the bill and the batch do: full-width and commas yes, an exponent no."""
    from medins.api import settle_bill
    from medins.errors import UsageError

    bill = {"visit": {"type": "inpatient", "admit_date": "2008-04-02", "hospital": {"zone": "in_district"},
                      "preapproved": True}, "amounts": {"total": "20000"}}
    wide = settle_bill(load_policy("suqian-2007", {"deductible.in_district": "１，０００"}), bill)
    plain = settle_bill(load_policy("suqian-2007", {"deductible.in_district": "1000"}), bill)
    assert wide["act_pay_dedc"] == plain["act_pay_dedc"] == "1000.00"
    with pytest.raises(UsageError, match="not a number"):
        load_policy("suqian-2007", {"deductible.in_district": "1e3"})


# --- line endings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"], ids=["CR", "CRLF", "LF"])
def test_every_line_ending_reads_every_row(tmp_path: Path, newline: str) -> None:
    """CR-only files (old Mac/Excel) read their rows like CRLF and LF files (before: 0 rows, exit 0)."""
    result = read_claims(write(tmp_path / "c.csv", ROWS, newline=newline))
    assert (result.rows_read, result.claims["claim_id"].to_list()) == (3, ["C1", "C2", "C3"])
    assert result.claims["visit_type"].to_list() == ["inpatient", "outpatient_special", "inpatient"]


def test_mixed_line_endings_and_a_quoted_line_break(tmp_path: Path) -> None:
    """CR, CRLF and LF in one file, and a CR inside a quoted name: three rows, the name kept whole."""
    header = HEADER + ",hospital_name"
    text = (f"{header}\r{ROWS[0]},a\r\n{ROWS[1]},\"b\rc\"\n{ROWS[2]},d\r").encode()
    path = tmp_path / "mixed.csv"
    path.write_bytes(text)
    result = read_claims(path)
    assert result.rejects.height == 0
    assert result.claims["hospital_name"].to_list() == ["a", "b\nc", "d"]


def test_cr_only_file_through_the_batch(tmp_path: Path) -> None:
    """The batch settles a CR-only file exactly as its LF twin (rows in = rows out)."""
    run_batch(write(tmp_path / "lf.csv", ROWS), SUQIAN, tmp_path / "lf-out.csv")
    result = run_batch(write(tmp_path / "cr.csv", ROWS, newline="\r"), SUQIAN, tmp_path / "cr-out.csv")
    assert result.rows_read == 3
    assert (tmp_path / "cr-out.csv").read_bytes() == (tmp_path / "lf-out.csv").read_bytes()


@pytest.fixture
def tiny_pieces(monkeypatch):
    """Every file takes the partitioned path (as tests/test_batch.py's tiny_partitions, spilled to files)."""
    import medins.batch
    import medins.partitioned

    monkeypatch.setattr(medins.batch, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(medins.batch, "PARTITION_BYTES", 64)
    monkeypatch.setattr(medins.partitioned, "PIECE_BYTES", 300)
    monkeypatch.setattr(medins.partitioned, "PIECE_ROWS", 3)
    monkeypatch.setattr(medins.partitioned, "RANGE_ROWS", 4)


@pytest.mark.parametrize("newline", ["\r", "\r\n"], ids=["CR", "CRLF"])
def test_line_endings_on_the_partitioned_path(tmp_path: Path, tiny_pieces, newline: str) -> None:
    """A large file cut into pieces reads CR-only and CRLF lines as its LF twin does."""
    rows = [r.replace("C1", f"C1-{i}").replace("C2", f"C2-{i}").replace("C3", f"C3-{i}") for i in range(4)
            for r in ROWS]
    lf = run_batch(write(tmp_path / "lf.csv", rows), SUQIAN, tmp_path / "lf-out.csv")
    other = run_batch(write(tmp_path / "x.csv", rows, newline=newline), SUQIAN, tmp_path / "x-out.csv")
    assert other.rows_read == lf.rows_read == 12
    assert (tmp_path / "x-out.csv").read_bytes() == (tmp_path / "lf-out.csv").read_bytes()


# --- encodings: decided per file, an undecodable row rejected as `encoding`, the rest read -----------

NAMED = [f"C{i},P{i},住院,2008-04-02,in_district,true,宿迁市中医院,{100 + i}.00" for i in range(6)]
NAMED_HEADER = "claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,hospital_name,total\n"


def mixed(row_encoding: str, file_encoding: str, bad: int = 3) -> bytes:
    """A file in ``file_encoding`` whose row ``bad`` (0-based) is in ``row_encoding``."""
    return NAMED_HEADER.encode(file_encoding) + b"".join(
        (r + "\n").encode(row_encoding if i == bad else file_encoding) for i, r in enumerate(NAMED))


@pytest.mark.parametrize(("row_encoding", "file_encoding", "read_as"), [
    ("gbk", "utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig", "utf-8"),
])
def test_one_gbk_row_in_a_utf8_file_is_rejected_alone(tmp_path: Path, row_encoding: str, file_encoding: str,
                                                     read_as: str) -> None:
    """The file stays UTF-8; the GBK row is rejected as ``encoding`` with the first bad byte's offset; the
    other rows read without mojibake (before: the whole file refused, or read as GB18030 mojibake)."""
    data = mixed("gbk" if row_encoding == "gbk" else "utf-8", "utf-8")
    if file_encoding == "utf-8-sig":
        data = b"\xef\xbb\xbf" + mixed("gbk", "utf-8")
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    result = read_claims(path)
    assert result.encoding == read_as
    assert result.claims["claim_id"].to_list() == ["C0", "C1", "C2", "C4", "C5"]
    assert set(result.claims["hospital_name"]) == {"宿迁市中医院"}
    reject = result.rejects.row(0, named=True)
    assert (reject["row"], reject["claim_id"], reject["reason"]) == (4, "C3", "encoding")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start
    assert f"byte {offset} of the file" in reject["message_en"] and f"第 {offset} 字节" in reject["message_zh"]
    assert f"<byte {offset}>" in reject["raw"]


def test_an_undecodable_row_in_a_gbk_file_is_rejected_alone(tmp_path: Path) -> None:
    """A GBK file with bytes GB18030 cannot decode in one row: that row is an ``encoding`` reject."""
    data = mixed("gbk", "gbk").replace(b"C2,P2,", b"C2,P2,\x81\x20")
    path = tmp_path / "gbk.csv"
    path.write_bytes(data)
    result = read_claims(path)
    assert result.encoding == "gb18030"
    assert result.claims["claim_id"].to_list() == ["C0", "C1", "C3", "C4", "C5"]
    assert set(result.claims["hospital_name"]) == {"宿迁市中医院"}
    assert result.rejects.select("row", "reason").rows() == [(3, "encoding")]
    assert f"byte {data.index(bytes([0x81, 0x20]))} " in result.rejects["message_en"][0]


def test_a_gbk_file_declared_utf8_is_still_refused_whole(tmp_path: Path) -> None:
    """When most of the file is not the declared encoding, the declaration is wrong: an input error."""
    from medins.errors import InputError

    path = tmp_path / "gbk.csv"
    path.write_bytes(mixed("gbk", "gbk"))
    with pytest.raises(InputError, match="not valid utf-8"):
        read_claims(path, encoding="utf-8")
    assert read_claims(path).claims.height == 6


def test_undecodable_header_is_an_input_error(tmp_path: Path) -> None:
    """The header names the columns: an undecodable byte there refuses the file, naming the header."""
    from medins.errors import InputError

    path = tmp_path / "h.csv"
    path.write_bytes(("结算单号,个人编号,医疗类别,入院日期,医院名称,医疗费总额\n" * 1).encode("utf-8")[:-4] + b"\xff\xfe\n"
                     + "".join(f"C{i},P{i},住院,2008-04-02,医院,1\n" for i in range(5)).encode())
    with pytest.raises(InputError, match="header"):
        read_claims(path)


def test_encoding_rejects_on_the_partitioned_path(tmp_path: Path, tiny_pieces) -> None:
    """Cut into pieces, a UTF-8 file with a GBK row settles every other row and rejects that one."""
    data = NAMED_HEADER.encode() + b"".join(
        (r.replace("C", f"K{k}-", 1) + "\n").encode("gbk" if (k, i) == (2, 3) else "utf-8")
        for k in range(3) for i, r in enumerate(NAMED))
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    result = run_batch(path, SUQIAN, tmp_path / "out.csv")
    assert (result.rows_read, result.rows_rejected, result.encoding) == (18, 1, "utf-8")
    rejects = (tmp_path / "out.rejects.csv").read_text(encoding="utf-8")
    offset = data.index("宿迁市中医院".encode("gbk"))
    assert "encoding" in rejects and f"byte {offset} of the file" in rejects


def test_a_utf8_row_in_a_gbk_file_is_rejected_not_misread(tmp_path: Path) -> None:
    """GB18030 decodes almost any bytes, so a UTF-8 row pasted into a GBK export would read as mojibake
    (宿迁市中医院 as 瀹胯縼甯備腑鍖婚櫌, failing the designated-hospital check): it is an ``encoding`` reject."""
    data = mixed("utf-8", "gbk")
    path = tmp_path / "gbk.csv"
    path.write_bytes(data)
    result = read_claims(path)
    assert result.encoding == "gb18030"
    assert result.claims["claim_id"].to_list() == ["C0", "C1", "C2", "C4", "C5"]
    assert set(result.claims["hospital_name"]) == {"宿迁市中医院"}
    assert result.rejects.select("row", "reason").rows() == [(4, "encoding")]
    assert f"byte {data.index('住院'.encode())} " in result.rejects["message_en"][0]


def test_a_utf8_row_in_a_gbk_file_on_the_partitioned_path(tmp_path: Path, tiny_pieces) -> None:
    """The same when the file is decoded block by block."""
    data = NAMED_HEADER.encode("gbk") + b"".join(
        (r.replace("C", f"K{k}-", 1) + "\n").encode("utf-8" if (k, i) == (1, 2) else "gbk")
        for k in range(3) for i, r in enumerate(NAMED))
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    result = run_batch(path, SUQIAN, tmp_path / "out.csv")
    assert (result.rows_read, result.rows_rejected, result.encoding) == (18, 1, "gb18030")
    assert "9,K1-2,encoding," in (tmp_path / "out.rejects.csv").read_text(encoding="utf-8")


def test_nfkc_looks_in_python_only_at_cells_it_may_change(monkeypatch) -> None:
    """ASCII and CJK-ideograph cells (1200元, 住院) skip the Python NFKC; full-width ones are normalised."""
    import polars as pl

    from medins import textnorm

    seen: list[str] = []
    monkeypatch.setattr(textnorm, "nfkc", lambda text: seen.append(text) or text.upper())
    out = textnorm.nfkc_series(pl.Series(["1200元", "住院", "ab", "ｘ", None, "ｘ"]))
    assert out.to_list() == ["1200元", "住院", "ab", "Ｘ", None, "Ｘ"] and seen == ["ｘ"]
