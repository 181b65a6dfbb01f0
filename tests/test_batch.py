"""`medins batch`: nothing lost, the same numbers as `calc`, atomic and safe outputs, one result whatever the path."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import medins.batch
import medins.partitioned
from medins.api import settle_bill
from medins.batch import run_batch
from medins.engine.settle import MONEY_OUTPUTS
from medins.errors import InputError, OutputError
from medins.policy.loader import load_policy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples/claims.csv"
ITEMS_EXAMPLE = ROOT / "examples/claims-items.csv"
SUQIAN = load_policy("suqian-2007")
HEADER = "claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,total,self_pay,class_b\n"


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medins", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def read_out(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def fen(text: str) -> int:
    return int(Decimal(text) * 100)


@pytest.fixture(params=["kept in memory", "spilled to files"])
def tiny_partitions(monkeypatch, request):
    """Every file takes the partitioned path, in pieces of a few records and output ranges of a few rows,
    its partitions kept in memory between the passes (a file of up to 160 MB) or spilled to Arrow files."""
    if request.param == "spilled to files":
        monkeypatch.setattr(medins.batch, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(medins.batch, "PARTITION_BYTES", 64)
    monkeypatch.setattr(medins.partitioned, "PIECE_BYTES", 300)
    monkeypatch.setattr(medins.partitioned, "PIECE_ROWS", 3)
    monkeypatch.setattr(medins.partitioned, "RANGE_ROWS", 4)


# --- accounting: every row ends in the output or the rejects -------------------------------------

def test_shipped_gbk_example_accounts_for_every_row(tmp_path) -> None:
    """examples/claims.csv (GBK, Chinese headers): 27 rows read = 25 settled + 2 rejected, with row numbers."""
    result = run_batch(EXAMPLE, SUQIAN, tmp_path / "out.csv")
    assert (result.rows_read, result.claims_settled, result.rows_rejected) == (27, 25, 2)
    assert result.rows_read == result.claims_settled + result.rows_rejected
    assert result.encoding in ("gb18030", "gbk")
    out = read_out(tmp_path / "out.csv")
    assert out.height == 25 and out["claim_id"].to_list()[:2] == ["SQ2008-0001", "SQ2008-0002"]
    rejects = read_out(tmp_path / "out.rejects.csv")
    assert rejects.select("row", "reason").rows() == [("26", "bad_date:admit_date"), ("27", "not_a_number:total")]
    for f, p, t in out.select("fund_pay_sumamt", "psn_part_amt", "medfee_sumamt").rows():
        assert fen(f) + fen(p) == fen(t)


def test_yearly_cap_and_account_run_across_the_file(tmp_path) -> None:
    """P01's third 2008 stay gets what is left of the 40,000 cap, 2009 starts afresh; P02's account pays 50."""
    run_batch(EXAMPLE, SUQIAN, tmp_path / "out.csv")
    out = read_out(tmp_path / "out.csv")
    paid = [fen(x) for x in out.filter(pl.col("person_id") == "P01")["hifp_pay"]]
    assert sum(paid[:3]) == 4_000_000 and paid[3] == 1_100_000
    account = [fen(x) for x in out.filter(pl.col("person_id") == "P02")["acct_pay"]]
    assert sum(account) == 10_000  # 30.00 + 20.00 of the 2008 credit, then 50.00 of 2009's 50 + 20 carried


REJECT_ROWS = [  # (cells after the claim id, expected reason)
    ("P1,inpatient,2008-04-02,in_district,true,1000,0,0", None),
    ("P1,inpatient,2008-02-30,in_district,true,1000,0,0", "bad_date:admit_date"),
    (",inpatient,2008-04-02,in_district,true,1000,0,0", "missing_field:person_id"),
    ("P1,inpatient,2008-04-02,in_district,true,-5,0,0", "negative_amount:total"),
    ("P1,inpatient,2008-04-02,in_district,true,一千,0,0", "not_a_number:total"),
    ("P1,inpatient,2008-04-02,in_district,true,12.345,0,0", "sub_fen:total"),
    ("P1,inpatient,2008-04-02,in_district,true,100000000000.01,0,0", "too_large:total"),
    ("P1,spa,2008-04-02,in_district,true,1000,0,0", "unknown_code:visit_type"),
    ("P1,inpatient,2008-04-02,moon,true,1000,0,0", "unknown_code:hospital_zone"),
    ("P1,inpatient,2008-04-02,in_district,maybe,1000,0,0", "not_a_bool:preapproved"),
    ("P1,inpatient,2008-04-02,in_district,true,1000,2000,0", "self_pay_above_total"),
    ("P1,inpatient,2008-04-02,in_district,true,1000,500,600", "class_b_above_in_scope"),
    ("P1,inpatient,2008-04-02,in_district,true,1000,0,0,extra", "field_count"),
    ("P1,inpatient,2008-04-02", "field_count"),
]


def test_every_reject_reason_reaches_the_rejects_file(tmp_path) -> None:
    """Each kind of malformed row is in the rejects file with its row number, its code, words and the line."""
    lines = [f"R{i}," + cells for i, (cells, _reason) in enumerate(REJECT_ROWS)]
    path = tmp_path / "bad.csv"
    path.write_text(HEADER.replace(",total", ",total") + "\n".join(lines) + "\n", encoding="utf-8")
    result = run_batch(path, SUQIAN, tmp_path / "out.csv")
    expected = [(str(i + 1), reason) for i, (_cells, reason) in enumerate(REJECT_ROWS) if reason]
    rejects = read_out(tmp_path / "out.rejects.csv")
    assert rejects.select("row", "reason").rows() == expected
    assert all(rejects["message_en"].str.len_chars() > 10) and all(rejects["message_zh"].str.len_chars() > 5)
    assert rejects["raw"].to_list() == [lines[int(r) - 1] for r, _ in expected]
    assert (result.rows_read, result.claims_settled, result.rows_rejected) == (len(REJECT_ROWS), 1, len(expected))


def test_line_item_reject_reasons_hold_back_the_whole_claim(tmp_path) -> None:
    """A bad line rejects its claim's every line (claim_has_bad_line); conflicting claim facts are named."""
    path = tmp_path / "items.csv"
    path.write_text(
        "claim_id,person_id,admit_date,hospital_zone,preapproved,item_class,item_amount\n"
        "C1,P1,2008-04-02,in_district,true,A,1000\n"
        "C1,P1,2008-04-02,in_district,true,B,12.345\n"
        "C2,P1,2008-05-02,in_district,true,A,1000\n"
        "C2,P1,2008-05-03,in_district,true,A,1000\n"
        "C3,P1,2008-06-02,in_district,true,A,1000\n", encoding="utf-8")
    result = run_batch(path, SUQIAN, tmp_path / "out.csv")
    rejects = read_out(tmp_path / "out.rejects.csv").select("row", "reason").rows()
    assert rejects == [("1", "claim_has_bad_line"), ("2", "sub_fen:item_amount"),
                       ("3", "conflicting_claim_fields"), ("4", "conflicting_claim_fields")]
    assert (result.rows_read, result.rows_rejected, result.claims_settled) == (5, 4, 1)


# --- reading: encodings, headers, maps, line items ------------------------------------------------

SIMPLE = [
    ("C1", "P1", "住院", "2008-04-02", "区内", "是", "12000.00", "0", "3000.00", "宿迁𠮷医院"),
    ("C2", "P1", "住院", "2008-07-02", "市外", "是", "42000.00", "2000.00", "8000.00", "宿迁𠮷医院"),
    ("C3", "P2", "门诊", "2008-07-02", "区内", "", "30.00", "0", "0", "宿迁𠮷医院"),
]
CANONICAL = "claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,total,self_pay,class_b,hospital_name"


def _simple(header: str, *, values: dict | None = None) -> str:
    rows = [",".join((values or {}).get(v, v) for v in row) for row in SIMPLE]
    return header + "\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize(("encoding", "prefix"), [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gb18030", b"")])
def test_encodings_give_the_same_settlement(tmp_path, encoding, prefix) -> None:
    """UTF-8, UTF-8 with BOM and GB18030 (a character GBK lacks) are detected and settle identically."""
    reference = tmp_path / "ref.csv"
    reference.write_text(_simple(CANONICAL), encoding="utf-8")
    run_batch(reference, SUQIAN, tmp_path / "ref-out.csv")
    path = tmp_path / "in.csv"
    path.write_bytes(prefix + _simple(CANONICAL).encode(encoding))
    result = run_batch(path, SUQIAN, tmp_path / "out.csv")
    assert result.encoding == ("utf-8" if encoding == "utf-8" else "gb18030")
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "ref-out.csv").read_bytes()


def test_gbk_and_forced_encodings(tmp_path) -> None:
    """A GBK export reads with auto and --encoding gbk; declared UTF-8 it is an input error naming UTF-8."""
    text = _simple(CANONICAL).replace("𠮷", "中")
    path = tmp_path / "gbk.csv"
    path.write_bytes(text.encode("gbk"))
    assert run_batch(path, SUQIAN, tmp_path / "a.csv").encoding == "gb18030"
    assert run_batch(path, SUQIAN, tmp_path / "b.csv", encoding="gbk").encoding == "gbk"
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    with pytest.raises(InputError, match=r"(?i)utf-8"):
        run_batch(path, SUQIAN, tmp_path / "c.csv", encoding="utf-8")
    assert not (tmp_path / "c.csv").exists()


def test_chinese_header_aliases_settle_like_canonical_names(tmp_path) -> None:
    """结算单号/个人编号/就诊类别/就诊日期/就医地类型/是否备案/医疗费用总额/自费金额/乙类费用/医院 are recognised."""
    canonical = tmp_path / "canonical.csv"
    canonical.write_text(_simple(CANONICAL), encoding="utf-8")
    aliased = tmp_path / "aliased.csv"
    aliased.write_text(_simple("结算单号,个人编号,就诊类别,就诊日期,就医地类型,是否备案,医疗费用总额,自费金额,乙类费用,医院"),
                       encoding="gbk" if False else "utf-8")
    run_batch(canonical, SUQIAN, tmp_path / "c.csv")
    run_batch(aliased, SUQIAN, tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()


def test_map_file_maps_other_headers_and_values(tmp_path) -> None:
    """--map MAP.yaml maps an export's own headers and codes; the result equals the canonical file's (CLI)."""
    canonical = tmp_path / "canonical.csv"
    canonical.write_text(_simple(CANONICAL), encoding="utf-8")
    odd = tmp_path / "odd.csv"
    odd.write_text(_simple("就诊流水,病人,类型,日期,地区,批准,费用合计,目录外,乙类,医院",
                           values={"住院": "住院治疗", "区内": "本地"}), encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("columns: {就诊流水: claim_id, 病人: person_id, 类型: visit_type, 日期: admit_date,\n"
                       "          地区: hospital_zone, 批准: preapproved, 费用合计: total, 目录外: self_pay}\n"
                       "values:\n  visit_type: {住院治疗: inpatient}\n  hospital_zone: {本地: in_district}\n",
                       encoding="utf-8")
    assert run_cli("batch", str(canonical), "-p", "suqian-2007", "-o", str(tmp_path / "c.csv")).returncode == 0
    proc = run_cli("batch", str(odd), "-p", "suqian-2007", "-o", str(tmp_path / "m.csv"), "--map", str(mapping))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "m.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()


def test_line_item_example_settles_like_its_claim_level_rows(tmp_path) -> None:
    """examples/claims-items.csv groups lines into claims that settle exactly like their rows in claims.csv."""
    items = run_batch(ITEMS_EXAMPLE, SUQIAN, tmp_path / "items.csv")
    run_batch(EXAMPLE, SUQIAN, tmp_path / "claims.csv")
    assert (items.shape, items.rows_read, items.claims_settled, items.rows_rejected) == ("items", 25, 8, 2)
    from_items = read_out(tmp_path / "items.csv")
    from_claims = read_out(tmp_path / "claims.csv").filter(pl.col("claim_id").is_in(from_items["claim_id"].implode()))
    assert from_items.equals(from_claims)
    assert set(read_out(tmp_path / "items.rejects.csv")["reason"]) == {"claim_has_bad_line", "sub_fen:item_amount"}


def test_injection_guard_and_line_items(tmp_path) -> None:
    """Cells starting with = + - @ are neutralised in the output; a line-item file is grouped into claims."""
    path = tmp_path / "items.csv"
    path.write_text(
        "claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,item_category,item_class,item_amount\n"
        "=HYPERLINK(1),@P1,inpatient,2008-04-02,in_district,true,drug,A,8000\n"
        "=HYPERLINK(1),@P1,inpatient,2008-04-02,in_district,true,drug,C,2000\n"
        "=HYPERLINK(1),@P1,inpatient,2008-04-02,in_district,true,exam,,4000\n",
        encoding="utf-8",
    )
    result = run_batch(path, SUQIAN, tmp_path / "out.csv")
    assert (result.shape, result.rows_read, result.claims_settled) == ("items", 3, 1)
    out = read_out(tmp_path / "out.csv")
    assert (out["claim_id"][0], out["person_id"][0]) == ("'=HYPERLINK(1)", "'@P1")
    assert (out["fulamt_ownpay_amt"][0], out["inscp_scp_amt"][0], out["fund_pay_sumamt"][0]) == (
        "2000.00", "12000.00", "6200.00")
    run_batch(path, SUQIAN, tmp_path / "out.xlsx")
    sheet = pl.read_excel(tmp_path / "out.xlsx")
    assert sheet["claim_id"][0] == "'=HYPERLINK(1)"


# --- outputs: formats and atomic writes ---------------------------------------------------------

@pytest.mark.parametrize("suffix", [".parquet", ".xlsx"])
def test_other_output_formats(tmp_path, suffix) -> None:
    """Parquet keeps money as exact decimals; XLSX holds the same text as the CSV."""
    out = tmp_path / f"out{suffix}"
    run_batch(EXAMPLE, SUQIAN, out)
    run_batch(EXAMPLE, SUQIAN, tmp_path / "out.csv")
    if suffix == ".parquet":
        frame = pl.read_parquet(out)
        assert isinstance(frame.schema["fund_pay_sumamt"], pl.Decimal)
        assert frame["fund_pay_sumamt"].cast(pl.String).to_list() == read_out(tmp_path / "out.csv")[
            "fund_pay_sumamt"].to_list()
    else:
        sheet = pl.read_excel(out, infer_schema_length=0).with_columns(pl.all().fill_null(""))  # empty cells
        assert sheet.equals(read_out(tmp_path / "out.csv"))


def test_a_failing_write_leaves_no_file(tmp_path, monkeypatch) -> None:
    """A write that fails halfway leaves neither the output nor a temporary file; an older output stays whole."""
    out = tmp_path / "out.csv"
    out.write_text("old\n", encoding="utf-8")
    original = pl.DataFrame.write_csv

    def broken(self, file=None, **kwargs):
        original(self.head(1), file, **kwargs)  # something reaches the disk, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_csv", broken)
    with pytest.raises(OutputError, match="disk is full"):
        run_batch(EXAMPLE, SUQIAN, out)
    with pytest.raises(OutputError, match="disk is full"):
        run_batch(EXAMPLE, SUQIAN, tmp_path / "new.csv")
    assert out.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failing_partitioned_write_leaves_no_file(tmp_path, monkeypatch, tiny_partitions) -> None:
    """The out-of-core path writes all or nothing too, and leaves no temporary folder behind."""
    calls = {"n": 0}
    original = medins.partitioned.write_csv

    def broken(frame, out, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the third output range
            raise OSError(28, "No space left on device")
        return original(frame, out, *args, **kwargs)

    monkeypatch.setattr(medins.partitioned, "write_csv", broken)
    with pytest.raises(OutputError, match="disk is full"):
        run_batch(EXAMPLE, SUQIAN, tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


# --- the same result on every path --------------------------------------------------------------

TRICKY = ("claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,total,self_pay,class_b,hospital_name\n"
          'C1,P1,inpatient,2008-04-02,in_district,true,12000,0,0,"Ward 1, ""east""\nbuilding"\n'
          "\n"
          "C2,P2,inpatient,2008-04-05,in_city,true,30000,100,200,x\n"
          "C3,P1,inpatient,2008-06-02,in_district,true,65000,0,0,x,extra\n"
          "C4,P3,outpatient,2008-06-02,,,35.5,0,0,x\n"
          "C5,P1,inpatient,2008-09-02,in_district,true,65000,0,0,x\n"
          ",,,,,,,,,\n"
          "C6,P2,inpatient,2009-13-01,in_city,true,300,0,0,x\n"
          "C7,P3,outpatient,2009-01-02,,,80,0,0,x\n"
          "C8,P4,inpatient,2009-01-02,out_of_city,false,8000,0,0,=cmd\n"
          "C9,P1,inpatient,2009-03-02,in_district,true,45000,0,0,x\n")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
@pytest.mark.parametrize("kept", [160 * 2**20, 0])
def test_partitioned_path_gives_the_same_bytes(tmp_path, monkeypatch, suffix, encoding, kept) -> None:
    """Settling by person-hash partitions (bounded memory; pieces of a few records, quoted line breaks, ragged
    and blank rows, GB18030; partitions kept in memory or spilled to files) writes exactly what settling the
    whole file at once writes, rejects included."""
    source = tmp_path / "claims.csv"
    source.write_bytes(TRICKY.replace("east", "东").encode(encoding))
    whole = run_batch(source, SUQIAN, tmp_path / f"whole{suffix}")
    monkeypatch.setattr(medins.batch, "IN_MEMORY_BYTES", kept)
    monkeypatch.setattr(medins.batch, "PARTITION_BYTES", 64)
    monkeypatch.setattr(medins.partitioned, "PIECE_BYTES", 100)
    monkeypatch.setattr(medins.partitioned, "RANGE_ROWS", 3)
    parts = run_batch(source, SUQIAN, tmp_path / f"parts{suffix}")
    assert (parts.rows_read, parts.rows_rejected, parts.claims_settled, parts.encoding) == (
        whole.rows_read, whole.rows_rejected, whole.claims_settled, whole.encoding)
    assert (whole.rows_read, whole.rows_rejected) == (9, 2)  # blank rows are not data rows
    if suffix == ".csv":
        assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    elif suffix == ".parquet":
        assert pl.read_parquet(tmp_path / "parts.parquet").equals(pl.read_parquet(tmp_path / "whole.parquet"))
    else:
        assert pl.read_excel(tmp_path / "parts.xlsx").equals(pl.read_excel(tmp_path / "whole.xlsx"))
    assert (tmp_path / "parts.rejects.csv").read_bytes() == (tmp_path / "whole.rejects.csv").read_bytes()


#: TRICKY with output cells a CSV writer must quote or guard: a line break (and a carriage return) inside a claim
#: id, a comma, a quote, a formula and Chinese text.
TRICKY_IDS = (TRICKY.replace("C1,P1", '"C1\nsecond line",P1').replace("C2,P2", '"C,2","P""2"')
              .replace("C5,P1", '"=C5","P1\r"').replace("C7,P3", "C7,病人3"))


def test_partitioned_csv_quotes_and_guards_ids_as_the_whole_file(tmp_path, tiny_partitions) -> None:
    """Output cells that must be quoted (a line break, a comma, a quote) or guarded (a formula), cut into
    partitions and ranges of a few rows and put back in order, are the bytes of the whole file at once."""
    source = tmp_path / "claims.csv"
    source.write_text(TRICKY_IDS, encoding="utf-8")
    whole = run_batch_bytes(source, tmp_path, partitions=1)
    assert b'"C1\nsecond line"' in whole and b"'=C5" in whole and b'"C,2","P""2"' in whole
    run_batch(source, SUQIAN, tmp_path / "parts.csv")
    assert (tmp_path / "parts.csv").read_bytes() == whole


@pytest.mark.parametrize("partitions", [1, 3])
def test_money_cells_are_the_yuan_of_the_engine_fen(tmp_path, tiny_partitions, partitions) -> None:
    """Every money cell of a batch CSV, whole or cut into partitions and ranges, is the exact yuan text (two
    places, sign, 0.00 for zero) of the fen the engine settled: fails if money is written any other way."""
    from medins.batch import BATCH_KEEP, output_table
    from medins.claims.readers import read_claims
    from medins.engine.settle import settle
    from medins.money import fen_to_yuan

    read = read_claims(EXAMPLE)
    settled = output_table(settle(SUQIAN, read.claims, None, keep=BATCH_KEEP))
    run_batch(EXAMPLE, SUQIAN, tmp_path / "out.csv", partitions=partitions)
    out = read_out(tmp_path / "out.csv")
    assert out["claim_id"].to_list() == settled["claim_id"].to_list()
    for name in MONEY_OUTPUTS:
        assert out[name].to_list() == [fen_to_yuan(v) for v in settled[name]], name
    assert "0.00" in out["hifob_pay"].to_list() and any(v.count(".") == 1 and v != "0.00" for v in out["hifp_pay"])


def _out_of_order(monkeypatch, threads: set[str]) -> None:
    """Partitions settled on threads end out of order: an even partition waits (a second at most) until the odd one
    after it, settled beside it, has ended, so results come back in another order than they are taken in."""
    import time

    settle_partition = medins.partitioned._settle_partition
    started: set[int] = set()
    ended: set[int] = set()

    def slow(policy, claim_files, item_files, items, folder, k, kind):
        threads.add(threading.current_thread().name)
        started.add(k)
        begun = time.monotonic()
        while (k % 2 == 0 and threading.current_thread() is not threading.main_thread() and k + 1 not in ended
               and time.monotonic() - begun < (1.0 if k + 1 in started else 0.05)):  # no partition k + 1: go on
            time.sleep(0.002)
        try:
            return settle_partition(policy, claim_files, item_files, items, folder, k, kind)
        finally:
            ended.add(k)

    monkeypatch.setattr(medins.partitioned, "_settle_partition", slow)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_partitions_settled_on_threads_write_what_one_thread_writes(tmp_path, monkeypatch, tiny_partitions,
                                                                    suffix) -> None:
    """Partitions settled and finished two at a time on threads, ending out of order, give the same bytes as the
    same work done in turn on this thread, and as the whole file settled at once: results are taken in
    partition order, whatever order they end in."""
    source = tmp_path / "claims.csv"
    source.write_text(TRICKY, encoding="utf-8")
    threads: set[str] = set()
    _out_of_order(monkeypatch, threads)
    monkeypatch.setattr(medins.partitioned, "SETTLE_THREADS", 2)
    threaded = run_batch(source, SUQIAN, tmp_path / f"thread{suffix}")
    assert len(threads) == 2 and threading.main_thread().name not in threads  # two partitions at once
    monkeypatch.setattr(medins.partitioned, "SETTLE_THREADS", 1)
    threads.clear()
    plain = run_batch(source, SUQIAN, tmp_path / f"plain{suffix}")
    assert threads == {threading.main_thread().name}
    assert (threaded.rows_read, threaded.rows_rejected, threaded.claims_settled) == (
        plain.rows_read, plain.rows_rejected, plain.claims_settled)
    assert threaded.settlement.sort(threaded.settlement.columns).equals(
        plain.settlement.sort(plain.settlement.columns))
    assert (tmp_path / f"thread{suffix}").read_bytes() == (tmp_path / f"plain{suffix}").read_bytes()
    assert (tmp_path / "thread.rejects.csv").read_bytes() == (tmp_path / "plain.rejects.csv").read_bytes()
    if suffix == ".csv":
        assert (tmp_path / "thread.csv").read_bytes() == run_batch_bytes(source, tmp_path, partitions=1)


def run_batch_bytes(source: Path, folder: Path, *, partitions: int) -> bytes:
    out = folder / f"whole-{partitions}.csv"
    run_batch(source, SUQIAN, out, partitions=partitions)
    return out.read_bytes()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("failing", ["the first partition", "the last partition"])
def test_an_error_in_a_settling_thread_surfaces_and_leaves_no_file(tmp_path, monkeypatch, tiny_partitions,
                                                                  failing, threads) -> None:
    """An error while a partition is finished (on a thread, or in turn here) reaches the caller as itself (not a
    hang, not a later error), no partition starts after it is seen beyond those already in flight, and no
    output or temporary is left."""
    source = tmp_path / "claims.csv"
    source.write_text(TRICKY, encoding="utf-8")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "out.csv").write_text("old\n", encoding="utf-8")
    settled: list[int] = []
    finished: list[int] = []
    settle_claims, finish = medins.partitioned._settle_claims, medins.partitioned._finish_partition
    lock = threading.Lock()
    failing_at: list[int] = []

    def counted(*args):
        with lock:
            settled.append(len(settled))
        return settle_claims(*args)

    def broken(settlement, target, k, kind):
        with lock:
            finished.append(k)
        if k in failing_at:
            raise MemoryError("the finisher ran out of memory")
        return finish(settlement, target, k, kind)

    monkeypatch.setattr(medins.partitioned, "SETTLE_THREADS", threads)
    monkeypatch.setattr(medins.partitioned, "_settle_claims", counted)
    monkeypatch.setattr(medins.partitioned, "_finish_partition", broken)
    run_batch(source, SUQIAN, tmp_path / "count.csv")  # which partitions the file has
    assert len(settled) >= 3
    failing_at.append(min(finished) if failing == "the first partition" else max(finished))
    settled.clear()
    with pytest.raises(MemoryError, match="ran out of memory"):
        run_batch(source, SUQIAN, folder / "out.csv")
    if failing == "the first partition":  # seen when its result is taken: only the partitions in flight started
        assert 1 <= len(settled) <= threads  # the other one in flight may be cancelled before it starts
    assert sorted(p.name for p in folder.iterdir()) == ["out.csv"]
    assert (folder / "out.csv").read_text(encoding="utf-8") == "old\n"


@pytest.mark.parametrize("example", [EXAMPLE, ITEMS_EXAMPLE])
def test_partitioned_examples_match(tmp_path, tiny_partitions, example) -> None:
    """The shipped examples (claim rows and line items) give the same files through the out-of-core path."""
    whole = run_batch(example, SUQIAN, tmp_path / "whole.csv", partitions=1)
    parts = run_batch(example, SUQIAN, tmp_path / "parts.csv")
    assert (parts.rows_read, parts.rows_rejected, parts.claims_settled, parts.shape) == (
        whole.rows_read, whole.rows_rejected, whole.claims_settled, whole.shape)
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert (tmp_path / "parts.rejects.csv").read_bytes() == (tmp_path / "whole.rejects.csv").read_bytes()


def test_parquet_input_in_pieces_matches(tmp_path, tiny_partitions) -> None:
    """A Parquet claims file read in row slices settles like the same file read whole."""
    source = tmp_path / "claims.parquet"
    pl.read_csv(io.StringIO(_simple(CANONICAL) + "C4,P3,inpatient,2008-13-01,in_city,true,1,0,0,x\n"),
                infer_schema=False).write_parquet(source)
    whole = run_batch(source, SUQIAN, tmp_path / "whole.csv", partitions=1)
    parts = run_batch(source, SUQIAN, tmp_path / "parts.csv")
    assert (parts.rows_read, parts.rows_rejected) == (whole.rows_read, whole.rows_rejected) == (4, 1)
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert (tmp_path / "parts.rejects.csv").read_bytes() == (tmp_path / "whole.rejects.csv").read_bytes()


def test_partitioned_summary_matches(tmp_path) -> None:
    """The partitioned run's summary (pre-aggregated) shows the same totals and not-paid reasons."""
    from rich.console import Console

    from medins.report.summary import summary_view

    def text(result, lang) -> str:  # without the lines naming files and timing the run
        console = Console(file=io.StringIO(), width=200, color_system=None)
        console.print(summary_view(result, lang))
        return "\n".join(line for line in console.file.getvalue().splitlines()
                         if str(tmp_path) not in line and " s)" not in line and "秒)" not in line)

    whole = run_batch(EXAMPLE, SUQIAN, tmp_path / "w.csv")
    parts = run_batch(EXAMPLE, SUQIAN, tmp_path / "p.csv", partitions=4)
    for lang in ("en", "zh"):
        assert text(whole, lang) == text(parts, lang)
    assert "effective" in text(whole, "en") and "实际报销比例" in text(whole, "zh")


@pytest.mark.parametrize("source", ["tricky.csv", "tricky-gb.csv", "tricky.parquet", ITEMS_EXAMPLE])
def test_worker_processes_give_the_same_bytes(tmp_path, monkeypatch, source) -> None:
    """Pieces parsed and partitions settled by two worker processes (``--jobs 2``): the same output and
    rejects, byte for byte, as one process settling the file in memory; no spill file is left."""
    if isinstance(source, str):
        text = TRICKY.replace("east", "东")
        path = tmp_path / source
        if source.endswith(".parquet"):
            pl.read_csv(io.StringIO(_simple(CANONICAL) + "C4,P3,inpatient,2008-13-01,in_city,true,1,0,0,x\n"),
                        infer_schema=False).write_parquet(path)
        else:
            path.write_bytes(text.encode("gb18030" if "gb" in source else "utf-8"))
        source = path
    whole = run_batch(source, SUQIAN, tmp_path / "whole.csv", partitions=1)
    monkeypatch.setattr(medins.partitioned, "PIECE_BYTES", 100)
    monkeypatch.setattr(medins.partitioned, "PIECE_ROWS", 2)
    parts = run_batch(source, SUQIAN, tmp_path / "parts.csv", partitions=3, jobs=2)
    assert (parts.rows_read, parts.rows_rejected, parts.claims_settled, parts.encoding) == (
        whole.rows_read, whole.rows_rejected, whole.claims_settled, whole.encoding)
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert (tmp_path / "parts.rejects.csv").read_bytes() == (tmp_path / "whole.rejects.csv").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_input_error_in_a_worker_reaches_the_user_whole(tmp_path, monkeypatch) -> None:
    """A file without a required column, read by worker processes: the same bilingual error, not a crash."""
    path = tmp_path / "no-total.csv"
    path.write_text("claim_id,person_id,admit_date\n" + "".join(f"C{i},P{i},2008-01-0{1 + i % 9}\n"
                                                                for i in range(40)), encoding="utf-8")
    monkeypatch.setattr(medins.partitioned, "PIECE_BYTES", 100)
    with pytest.raises(InputError) as caught:
        run_batch(path, SUQIAN, tmp_path / "out.csv", partitions=2, jobs=2)
    assert "total" in caught.value.message_en and caught.value.message_zh
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no-total.csv"]


def test_jobs_make_partitions_smaller() -> None:
    """With N workers, N partitions are in memory at once: auto partitioning makes N times as many."""
    size = medins.batch.PARTITION_BYTES * 3 + 1

    class Big:
        suffix = ".csv"

        def stat(self):
            return type("S", (), {"st_size": size})()

    assert medins.batch.auto_partitions(Big()) == 4
    assert medins.batch.auto_partitions(Big(), jobs=2) == 8


@pytest.mark.parametrize(("cpus", "jobs"), [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (64, 4)])
def test_default_jobs_give_each_worker_two_cpus(monkeypatch, cpus, jobs) -> None:
    """Without --jobs, two CPUs settle in one process (measured faster than two workers on 2 CPUs); more
    CPUs get a worker per two, at most four."""
    monkeypatch.setattr(medins.partitioned.os, "sched_getaffinity", lambda _pid: set(range(cpus)), raising=False)
    assert medins.partitioned.default_jobs() == jobs


def test_partitioned_path_refuses_a_wrong_encoding(tmp_path) -> None:
    """A GBK file declared UTF-8 is refused with a clear input error, not a traceback, and writes nothing."""
    with pytest.raises(InputError, match="UTF-8"):
        run_batch(EXAMPLE, SUQIAN, tmp_path / "o.csv", partitions=2, encoding="utf-8")
    assert list(tmp_path.iterdir()) == []


# --- batch = calc --------------------------------------------------------------------------------

claim = st.tuples(
    st.sampled_from(["A", "B", "C"]),
    st.sampled_from(["inpatient"] * 3 + ["outpatient"]),
    st.dates(min_value=dt.date(2008, 1, 1), max_value=dt.date(2009, 12, 31)),
    st.sampled_from(["in_district", "in_city", "out_of_city", None]),
    st.one_of(st.integers(0, 6_000_000), st.integers(3_000_000, 9_000_000)),  # total, fen (big ones hit the cap)
    st.integers(0, 30),  # self-pay, % of the total
    st.integers(0, 100),  # class B, % of the rest
    st.sampled_from([True, True, True, False, None]),  # preapproved
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(claim, min_size=2, max_size=24), st.integers(2, 5))
def test_partitions_on_threads_give_the_whole_files_bytes(tmp_path_factory, claims, partitions) -> None:
    """Random persons with several claims each, cut into person-hash partitions settled two at a time on threads
    (ending out of order) and put back in input order: the output and rejects are the bytes of the whole file
    settled at once. Fails if a partition's rows were lost, doubled or written in the order the threads ended."""
    folder = tmp_path_factory.mktemp("threads")
    lines = [f"C{i},{person},{kind},{day.isoformat()},{zone or ''},{'' if ok is None else str(ok).lower()},"
             f"{_yuan(total)},{_yuan(total * sp // 100)},{_yuan((total - total * sp // 100) * b // 100)}\n"
             for i, (person, kind, day, zone, total, sp, b, ok) in enumerate(claims)]
    path = folder / "claims.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    run_batch(path, SUQIAN, folder / "whole.csv", partitions=1)
    threads: set[str] = set()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(medins.partitioned, "SETTLE_THREADS", 2)
        patch.setattr(medins.partitioned, "RANGE_ROWS", 5)
        _out_of_order(patch, threads)
        run_batch(path, SUQIAN, folder / "parts.csv", partitions=partitions)
    assert threading.main_thread().name not in threads
    assert (folder / "parts.csv").read_bytes() == (folder / "whole.csv").read_bytes()
    assert (folder / "parts.rejects.csv").read_bytes() == (folder / "whole.rejects.csv").read_bytes()


def _yuan(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(claim, min_size=1, max_size=14), st.sampled_from([1, 2]))
@example([("A", "inpatient", dt.date(2008, m, 3), "in_district", 6_000_000, 0, 10, True) for m in (9, 2, 5)]
         + [("A", "outpatient", dt.date(y, 6, 1), None, 4_000, 0, 0, None) for y in (2008, 2008, 2009)], 1)
@example([("B", "inpatient", dt.date(2009, 3, 3), "in_city", 8_000_000, 5, 50, True),
          ("B", "inpatient", dt.date(2009, 3, 3), None, 1_000_000, 0, 0, True),
          ("B", "inpatient", dt.date(2009, 4, 3), "out_of_city", 8_000_000, 0, 0, False),
          ("B", "inpatient", dt.date(2009, 5, 3), "out_of_city", 8_000_000, 0, 0, True)], 2)
def test_every_batch_row_equals_calc_with_its_history(tmp_path, claims, partitions) -> None:
    """Batch = calc: each claim settled alone, given as history its person's earlier claims of the year (fund
    paid in the cap bucket, admissions, in-scope amount) and the account balance left, gives the batch's row."""
    lines = []
    for i, (person, kind, day, zone, total, sp_pct, b_pct, approved) in enumerate(claims):
        self_pay = total * sp_pct // 100
        class_b = (total - self_pay) * b_pct // 100
        flag = "" if approved is None else str(approved).lower()
        lines.append(f"C{i},{person},{kind},{day.isoformat()},{zone or ''},{flag},{_yuan(total)},"
                     f"{_yuan(self_pay)},{_yuan(class_b)}\n")
    path = tmp_path / "seq.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    run_batch(path, SUQIAN, tmp_path / "seq-out.csv", partitions=partitions)
    rows = read_out(tmp_path / "seq-out.csv").to_dicts()
    credit = 5000  # account_credit, fen
    order = sorted(range(len(claims)), key=lambda i: (claims[i][0], claims[i][2], i))
    first_year: dict[str, int] = {}
    spent: dict[str, int] = {}
    year_state: dict[tuple, dict[str, int]] = {}
    for i in order:
        person, kind, day, zone, total, sp_pct, b_pct, approved = claims[i]
        first_year.setdefault(person, day.year)
        state = year_state.setdefault((person, day.year), {"fund": 0, "admissions": 0, "inscope": 0})
        history = {"fund_paid": _yuan(state["fund"]), "admissions": state["admissions"],
                   "inscope": _yuan(state["inscope"])}
        if kind == "outpatient":
            balance = credit * (day.year - first_year[person] + 1) - spent.get(person, 0)
            history = {"account_balance": _yuan(balance)}
        visit: dict = {"type": kind, "admit_date": day.isoformat(), "hospital": {"zone": zone} if zone else {}}
        if approved is not None:
            visit["preapproved"] = approved
        self_pay = total * sp_pct // 100
        bill = {"id": f"C{i}", "person": {"id": person}, "visit": visit,
                "amounts": {"total": _yuan(total), "self_pay": _yuan(self_pay),
                            "class_b": _yuan((total - self_pay) * b_pct // 100)},
                "history": history}
        alone = settle_bill(SUQIAN, bill)
        row = rows[i]
        assert {k: row[k] for k in (*MONEY_OUTPUTS, "status")} == {k: alone[k] for k in (*MONEY_OUTPUTS, "status")}
        assert row["reasons"] == ";".join(alone["reasons"]), (i, row, alone)
        if kind == "inpatient" and row["status"] == "settled":
            state["fund"] += fen(row["hifp_pay"])
            state["admissions"] += 1
            state["inscope"] += fen(row["inscp_scp_amt"])
        spent[person] = spent.get(person, 0) + fen(row["acct_pay"])


# --- fast paths equal the exact slow ones ---------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**12), st.sampled_from(["", ".", ".5", ".05", ".50", ".123"]),
                          st.sampled_from(["", "0", "00"])), min_size=1, max_size=40))
def test_plain_money_cells_read_like_the_general_path(cells) -> None:
    """Plain yuan text read by the decimal fast path gives the value and code the regex path gives ('+x')."""
    from medins.claims.fields import FIELDS_BY_NAME
    from medins.claims.parse import parse_fields

    texts = [f"{zeros}{whole}{frac}" for whole, frac, zeros in cells]
    frame = pl.DataFrame({"row": range(len(texts)), "total": texts})
    fast = parse_fields(frame, [FIELDS_BY_NAME["total"]], {}, required=[])
    slow = parse_fields(frame.with_columns("+" + pl.col("total")), [FIELDS_BY_NAME["total"]], {}, required=[])
    assert fast.equals(slow)


@given(st.lists(st.integers(-(10**16), 10**16), min_size=1, max_size=50))
def test_money_decimal_output_is_the_yuan_text(values) -> None:
    """Money written as Decimal(18, 2) (Parquet) or Decimal(38, 2) (CSV) gives, in CSV, exactly the yuan text of
    the fen (sign, zero padding)."""
    from medins.claims.writers import yuan_decimal, yuan_text

    frame = pl.DataFrame({"m": values}, schema={"m": pl.Int64})
    text = frame.select(yuan_text(pl.col("m")).alias("m")).write_csv()
    for precision in (18, 38):
        decimal = frame.select(yuan_decimal(pl.col("m"), precision=precision).alias("m"))
        assert decimal.schema["m"] == pl.Decimal(precision, 2)
        assert decimal.write_csv() == text


# --- the command line -----------------------------------------------------------------------------

def test_exit_codes(tmp_path) -> None:
    """Exit 1 when rows were rejected, 0 when all settled, 2 for a missing column, a bad option or output name."""
    proc = run_cli("batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", str(tmp_path / "a.csv"))
    assert proc.returncode == 1 and (tmp_path / "a.csv").exists() and (tmp_path / "a.rejects.csv").exists()
    clean = tmp_path / "clean.csv"
    clean.write_text(HEADER + "C1,P1,inpatient,2008-04-02,in_district,true,12000,0,0\n", encoding="utf-8")
    proc = run_cli("batch", str(clean), "--policy", "suqian-2007", "-o", str(tmp_path / "b.csv"), "--lang", "en")
    assert proc.returncode == 0, proc.stderr
    assert "rows read 1 = settled 1 + rejected 0" in proc.stdout and "effective" in proc.stdout
    broken = tmp_path / "broken.csv"
    broken.write_text("claim_id,person_id,admit_date\nC1,P1,2008-01-01\n", encoding="utf-8")
    for args in ([str(broken), "-o", str(tmp_path / "c.csv")],
                 [str(clean), "-o", str(tmp_path / "c.csv"), "--encoding", "latin-9"],
                 [str(clean), "-o", str(tmp_path / "c.txt2")],
                 [str(clean), "-o", str(tmp_path / "nowhere" / "c.csv")]):
        proc = run_cli("batch", *args, "--policy", "suqian-2007", "--lang", "en")
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "c.csv").exists() and not (tmp_path / "c.txt2").exists()


def test_rejects_option_and_chinese_summary(tmp_path) -> None:
    """--rejects puts the rejects where asked; --lang zh prints the accounting line and reasons in Chinese."""
    proc = run_cli("batch", "examples/claims.csv", "-p", "suqian-2007", "-o", str(tmp_path / "s.parquet"),
                  "--rejects", str(tmp_path / "bad.csv"), "--lang", "zh")
    assert proc.returncode == 1
    assert "读取 27 行 = 结算 25 行 + 拒收 2 行" in proc.stdout and "日期无效" in proc.stdout
    assert (tmp_path / "bad.csv").exists() and not (tmp_path / "s.rejects.csv").exists()


def test_jobs_option_gives_the_same_files_and_refuses_zero(tmp_path) -> None:
    """`--jobs 2` (worker processes, here over three partitions) writes the same files as one process;
    `--jobs 0` is a usage error, not a traceback."""
    one = run_cli("batch", "examples/claims.csv", "-p", "suqian-2007", "-o", str(tmp_path / "one.csv"))
    two = run_cli("batch", "examples/claims.csv", "-p", "suqian-2007", "-o", str(tmp_path / "two.csv"),
                  "--partitions", "3", "--jobs", "2")
    assert one.returncode == two.returncode == 1, two.stderr
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert (tmp_path / "two.rejects.csv").read_bytes() == (tmp_path / "one.rejects.csv").read_bytes()
    zero = run_cli("batch", "examples/claims.csv", "-p", "suqian-2007", "-o", str(tmp_path / "z.csv"), "--jobs", "0")
    assert zero.returncode == 2 and "Traceback" not in zero.stderr and not (tmp_path / "z.csv").exists()


@pytest.mark.parametrize("threads", [1, 2])
def test_in_one_process_a_failing_partition_stops_the_run_at_once(tmp_path, monkeypatch, threads) -> None:
    """With one job, an error settling a partition is raised before any partition beyond those in flight (one
    per settling thread) is settled."""
    calls = {"n": 0}

    def failing(*_args, **_kwargs):
        calls["n"] += 1
        raise RuntimeError("bug in the engine")

    monkeypatch.setattr(medins.partitioned, "SETTLE_THREADS", threads)
    monkeypatch.setattr(medins.partitioned, "settle", failing)
    with pytest.raises(RuntimeError, match="bug in the engine"):
        run_batch(EXAMPLE, SUQIAN, tmp_path / "out.csv", partitions=4)
    assert 1 <= calls["n"] <= threads  # the other one in flight may be cancelled before it starts
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("threads", [1, 2])
def test_in_one_process_the_progress_moves_with_each_partition(tmp_path, monkeypatch, threads) -> None:
    """With one job, each partition's settlement is reported as it ends, not all of them at the end: at most one
    partition per settling thread is settled ahead of the reports."""
    events: list[str] = []
    original = medins.partitioned.settle

    def settling(*args, **kwargs):
        events.append("settle")
        return original(*args, **kwargs)

    def stage(name: str, _done: float) -> None:
        if name == "settle":
            events.append("reported")

    source = tmp_path / "claims.csv"  # forty persons: every one of eight partitions has claims
    source.write_text(HEADER + "".join(f"C{i},P{i},inpatient,2009-03-02,in_city,true,4000,0,0\n" for i in range(40)),
                      encoding="utf-8")
    monkeypatch.setattr(medins.partitioned, "SETTLE_THREADS", threads)
    monkeypatch.setattr(medins.partitioned, "settle", settling)
    run_batch(source, SUQIAN, tmp_path / "out.csv", partitions=8, on_stage=stage)
    assert events.count("settle") > threads and events.count("settle") == events.count("reported")
    ahead = [events[: i + 1].count("settle") - events[: i + 1].count("reported") for i in range(len(events))]
    assert min(ahead) >= 0 and max(ahead) <= threads
    assert events.index("reported") < len(events) - 1 - events[::-1].index("settle")  # reported before the last


def test_partitions_of_a_small_file_stay_in_memory_in_one_process(tmp_path, monkeypatch) -> None:
    """Up to IN_MEMORY_BYTES settled in this process, no partition is spilled to a file; above it, or with
    worker processes, they are."""
    def no_spill(*_args, **_kwargs):
        raise AssertionError("spilled")

    monkeypatch.setattr(pl.DataFrame, "write_ipc", no_spill)
    kept = run_batch(EXAMPLE, SUQIAN, tmp_path / "kept.csv", partitions=3)
    assert kept.rows_read > 0
    monkeypatch.setattr(medins.batch, "IN_MEMORY_BYTES", 0)
    with pytest.raises(AssertionError, match="spilled"):
        run_batch(EXAMPLE, SUQIAN, tmp_path / "spilled.csv", partitions=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(["inpatient", "outpatient", None]), st.sampled_from(["a", "b", None]),
                                   st.sampled_from([1, 3, None]), st.sampled_from(["settled", "rejected"]),
                                   st.sampled_from(["", None, "late_claim", "x;y"]), st.integers(-5, 10**12)),
                         max_size=12), min_size=1, max_size=3))
def test_partition_aggregates_add_up_to_the_summary_of_the_filled_keys(parts) -> None:
    """Each partition grouped by its columns as they are (``_aggregate``), then added up (``_reaggregate``), gives
    the counts and sums by the summary's keys (no reasons as "", the level as text) of all the claims at once."""
    from medins.partitioned import _KEYS, _aggregate, _reaggregate

    schema = {"visit_type": pl.String, "hospital_zone": pl.String, "hospital_level": pl.Int64, "status": pl.String,
              "_reasons": pl.String, "medfee_sumamt": pl.Int64}
    frames = [pl.DataFrame([(*row[:5], row[5]) for row in part], schema=schema, orient="row").with_columns(
        fund_pay_sumamt=pl.col("medfee_sumamt") // 3, psn_part_amt=pl.col("medfee_sumamt") * 2) for part in parts]
    whole = pl.concat(frames).with_columns(_reasons=pl.col("_reasons").fill_null(""),
                                           hospital_level=pl.col("hospital_level").cast(pl.String))
    want = _reaggregate(whole.group_by(_KEYS).agg(_n=pl.len(), medfee_sumamt=pl.col("medfee_sumamt").sum(),
                                                  fund_pay_sumamt=pl.col("fund_pay_sumamt").sum(),
                                                  psn_part_amt=pl.col("psn_part_amt").sum()))
    got = _reaggregate(pl.concat([_aggregate(f) for f in frames]))
    assert got.schema == want.schema
    keys = [*_KEYS[:-1], "_r"]
    assert got.with_columns(_r=pl.col("reasons").list.join(";")).sort(keys, nulls_last=True).equals(
        want.with_columns(_r=pl.col("reasons").list.join(";")).sort(keys, nulls_last=True))


def test_spill_files_are_removed_as_they_are_read_so_the_end_of_the_run_has_none_to_remove(tmp_path, monkeypatch):
    """A spilled run removes each spill file (claims pieces, output pieces) once read: the spill folder is already
    empty when the run removes it after the commit, and the files are what a run kept in memory writes."""
    import medins.atomic

    monkeypatch.setattr(medins.batch, "PARTITION_BYTES", 64)
    monkeypatch.setattr(medins.partitioned, "PIECE_BYTES", 300)
    monkeypatch.setattr(medins.partitioned, "RANGE_ROWS", 4)
    kept = run_batch(EXAMPLE, SUQIAN, tmp_path / "kept.csv", partitions=3)
    monkeypatch.setattr(medins.batch, "IN_MEMORY_BYTES", 0)
    left: dict[str, list[str]] = {}
    spilled: list[str] = []
    real_rmtree, real_write_ipc = medins.atomic.shutil.rmtree, pl.DataFrame.write_ipc

    def rmtree(path, *args, **kwargs):
        left[Path(path).name] = sorted(p.name for p in Path(path).rglob("*") if p.is_file())
        real_rmtree(path, *args, **kwargs)

    def write_ipc(frame, file, *args, **kwargs):
        spilled.append(Path(file).name)
        return real_write_ipc(frame, file, *args, **kwargs)

    monkeypatch.setattr(medins.atomic.shutil, "rmtree", rmtree)
    monkeypatch.setattr(pl.DataFrame, "write_ipc", write_ipc)
    spill = run_batch(EXAMPLE, SUQIAN, tmp_path / "spill.csv", partitions=3)
    assert {name.split("-")[0] for name in spilled} == {"claims", "out"}
    assert list(left.values()) == [[]]
    assert (tmp_path / "spill.csv").read_bytes() == (tmp_path / "kept.csv").read_bytes()
    assert (tmp_path / "spill.rejects.csv").read_bytes() == (tmp_path / "kept.rejects.csv").read_bytes()
    assert spill.rows_read == kept.rows_read
