"""`medins audit`: the seeded errors of the shipped export, batch's own output agreeing, mutations found, error paths."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medins.audit import COMPARED, run_audit, summary_views
from medins.batch import run_batch
from medins.errors import InputError, OutputError
from medins.policy.loader import load_policy

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "examples/audit-export.csv"
SUQIAN = load_policy("suqian-2007")
SEEDED = {"SQ-A-0002": ("deductible_differs", "act_pay_dedc"), "SQ-A-0004": ("cap_exceeded", "hifp_pay"),
          "SQ-A-0007": ("not_payable_paid", "act_pay_dedc"), "SQ-A-0010": ("class_b_reduction_missed", "hifp_pay")}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250"}  # one line per sentence, as on a wide terminal
    return subprocess.run([sys.executable, "-m", "medins", "audit", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=env)


def fen(text: str) -> int:
    return int(Decimal(text) * 100)


# --- the shipped example -------------------------------------------------------------------------

def test_example_finds_exactly_the_seeded_errors_with_their_first_step() -> None:
    result = run_audit(EXPORT, SUQIAN)
    assert result.encoding != "utf-8"  # the export is GBK with Chinese headers
    assert set(result.compared) == {"inscp_scp_amt", "act_pay_dedc", "hifp_pay", "psn_part_amt", "acct_pay",
                                    "psn_cash_pay"}
    differing = result.claims.filter(pl.col("verdict") == "differ")
    assert {r["claim_id"]: (r["reason"], r["field"]) for r in differing.iter_rows(named=True)} == SEEDED
    assert (result.agree, result.differ, result.not_settleable, result.rows_rejected) == (8, 4, 0, 0)
    messages = {r["claim_id"]: r["message_en"] for r in differing.iter_rows(named=True)}
    assert messages["SQ-A-0002"] == ("deductible charged 500.00, policy says 800.00 (standard 800.00 for in_city)"
                                     " — SQ-12, A-SQ-2, 001:L99")
    assert messages["SQ-A-0004"].startswith("pooled fund paid 20,950.00, the cap leaves 12,384.79 (cap cut 8,565.21)")
    assert "SQ-15" in messages["SQ-A-0004"]
    assert "excluded cause: traffic accident" in messages["SQ-A-0007"] and "SQ-16" in messages["SQ-A-0007"]
    assert "class-B reduction of 583.33 (10%)" in messages["SQ-A-0010"] and "SQ-22" in messages["SQ-A-0010"]
    zh = {r["claim_id"]: r["message_zh"] for r in differing.iter_rows(named=True)}
    assert "区外市内起付标准 800.00" in zh["SQ-A-0002"] and "交通事故" in zh["SQ-A-0007"]


def test_example_summary_views() -> None:
    views = summary_views(run_audit(EXPORT, SUQIAN))
    overview = views["overview"].row(0, named=True)
    assert overview == {"rows_read": 12, "rows_rejected": 0, "claims": 12, "agree": 8, "differ": 4,
                        "not_settleable": 0, "fund_overpaid": 1_696_854, "fund_underpaid": 0, "fund_net": 1_696_854}
    assert views["by_reason"].select("reason", "fund_net").rows() == [
        ("cap_exceeded", 856_521), ("not_payable_paid", 770_000), ("class_b_reduction_missed", 58_333),
        ("deductible_differs", 12_000)]
    assert views["largest"]["claim_id"].to_list() == ["SQ-A-0004", "SQ-A-0007", "SQ-A-0010", "SQ-A-0002"]
    assert views["by_hospital"].select("hospital", "differ", "fund_net").row(0) == ("省人民医院", 1, 856_521)
    months = dict(views["by_month"].select("month", "fund_net").rows())
    assert months["2008-07"] == 770_000 + 58_333 and months["2008-01"] == 0 and sum(months.values()) == 1_696_854


def test_example_differences_are_one_row_per_field() -> None:
    diffs = run_audit(EXPORT, SUQIAN).differences
    deductible = diffs.filter(pl.col("claim_id") == "SQ-A-0002")
    assert deductible.select("field", "recorded", "computed", "difference").rows() == [
        ("act_pay_dedc", 50_000, 80_000, -30_000), ("hifp_pay", 1_175_000, 1_163_000, 12_000),
        ("psn_part_amt", 1_425_000, 1_437_000, -12_000), ("psn_cash_pay", 1_425_000, 1_437_000, -12_000)]
    assert set(diffs["reason"]) == {r for r, _f in SEEDED.values()}


def test_cli_example_exit_1_with_every_format(tmp_path) -> None:
    table = run_cli(str(EXPORT), "-p", "suqian-2007", "--lang", "en")
    assert table.returncode == 1, table.stderr
    assert "rows read 12 = claims 12 + rejected 0; claims 12 = agree 8 + differ 4 + not settleable 0" in table.stdout
    for claim in SEEDED:
        assert claim in table.stdout
    zh = run_cli(str(EXPORT), "-p", "suqian-2007", "--lang", "zh")
    assert "读入 12 行" in zh.stdout and "超过封顶线支付" in zh.stdout
    doc = json.loads(run_cli(str(EXPORT), "-p", "suqian-2007", "-f", "json").stdout)
    assert doc["overview"][0]["fund_overpaid"] == "16968.54"
    assert [r["claim_id"] for r in doc["largest"]] == ["SQ-A-0004", "SQ-A-0007", "SQ-A-0010", "SQ-A-0002"]
    csv = run_cli(str(EXPORT), "-p", "suqian-2007", "-f", "csv", "-o", str(tmp_path / "diff.csv"),
                  "--xlsx", str(tmp_path / "views.xlsx"))
    assert csv.returncode == 1
    assert csv.stdout.splitlines()[0].startswith("view,") and "cap_exceeded" in csv.stdout
    written = pl.read_csv(tmp_path / "diff.csv", infer_schema=False)
    assert written.filter(pl.col("claim_id") == "SQ-A-0010", pl.col("field") == "hifp_pay").select(
        "recorded", "computed", "difference").row(0) == ("9800.00", "9216.67", "583.33")
    assert (tmp_path / "diff.rejects.csv").exists()
    sheets = pl.read_excel(tmp_path / "views.xlsx", sheet_id=0)
    assert {"overview", "by_reason", "by_hospital", "by_month", "largest"} <= set(sheets)


@pytest.mark.parametrize("suffix", [".parquet", ".xlsx"])
def test_differences_in_other_formats(tmp_path, suffix) -> None:
    out = tmp_path / f"diff{suffix}"
    assert run_cli(str(EXPORT), "-p", "suqian-2007", "-o", str(out)).returncode == 1
    frame = pl.read_parquet(out) if suffix == ".parquet" else pl.read_excel(out)
    assert set(frame["claim_id"]) == set(SEEDED)


def test_a_failing_write_leaves_no_differences_file(tmp_path, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_csv", broken)
    from medins.audit import write_outputs

    with pytest.raises(OutputError, match="nothing was replaced"):
        write_outputs(run_audit(EXPORT, SUQIAN), tmp_path / "diff.csv", tmp_path / "diff.rejects.csv")
    assert list(tmp_path.iterdir()) == []


def test_claim_explain_beside_the_record() -> None:
    shown = run_cli(str(EXPORT), "-p", "suqian-2007", "--lang", "en", "--claim", "SQ-A-0004")
    assert shown.returncode == 1
    assert "20,950.00" in shown.stdout and "12,384.79" in shown.stdout and "8,565.21" in shown.stdout
    assert "cap_exceeded" in shown.stdout and "How it was computed" in shown.stdout
    agreeing = run_cli(str(EXPORT), "-p", "suqian-2007", "--lang", "zh", "--claim", "SQ-A-0001")
    assert agreeing.returncode == 0 and "一致" in agreeing.stdout and "计算过程" in agreeing.stdout


def test_tolerance_lets_small_differences_agree(tmp_path) -> None:
    text = EXPORT.read_bytes().decode("gbk").replace("15985.21,14014.79,0.00,14014.79", "15985.22,14014.78,0.00,14014.78")
    path = tmp_path / "cent.csv"
    path.write_bytes(text.encode("gbk"))
    exact = run_audit(path, SUQIAN)
    assert exact.differ == 5
    assert exact.claims.filter(pl.col("claim_id") == "SQ-A-0001")["reason"].item() == "band_differs"
    tolerant = run_audit(path, SUQIAN, tolerance=1)
    assert tolerant.differ == 4
    views = summary_views(tolerant)  # a difference within the tolerance is no over- or under-payment
    assert views["overview"]["fund_net"].item() == views["by_reason"]["fund_net"].sum() == 1_696_854
    assert summary_views(exact)["overview"]["fund_net"].item() == 1_696_855  # one fen more on SQ-A-0001


# --- error paths -----------------------------------------------------------------------------------

def test_a_file_without_recorded_columns_is_a_user_error() -> None:
    with pytest.raises(InputError, match="no recorded settlement column"):
        run_audit(ROOT / "examples/claims.csv", SUQIAN)
    refused = run_cli("examples/claims.csv", "-p", "suqian-2007", "--lang", "en")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "recorded" in refused.stderr


@pytest.mark.parametrize(("args", "words"), [
    (["--tolerance", "0.001"], "--tolerance"),
    (["--tolerance", "abc"], "--tolerance"),
    (["--format", "xml"], "--format"),
    (["--encoding", "latin1"], "--encoding"),
    (["-o", "diff.txt2"], "output format"),
    (["--claim", "NOPE"], "no claim 'NOPE'"),
    (["--lang", "fr"], "--lang"),
])
def test_usage_errors_exit_2(args, words) -> None:
    refused = run_cli(str(EXPORT), "-p", "suqian-2007", *args)
    assert refused.returncode == 2, refused.stdout
    assert words in refused.stderr and "Traceback" not in refused.stderr


def test_rejected_rows_exit_1_and_name_the_claim(tmp_path) -> None:
    text = EXPORT.read_bytes().decode("gbk")
    text = text.replace("门诊,2008-05-06,2008-05-06", "门诊,2008-05-36,2008-05-06")
    text = text.replace("15985.21,14014.79", "15985.2x,14014.79")
    path = tmp_path / "bad.csv"
    path.write_bytes(text.encode("gbk"))
    result = run_audit(path, SUQIAN)
    assert result.rows_rejected == 2 and not result.clean
    assert sorted(result.rejects["reason"].to_list()) == ["bad_date:admit_date", "not_a_number:recorded_hifp_pay"]
    shown = run_cli(str(path), "-p", "suqian-2007", "--lang", "en", "--claim", "SQ-A-0001")
    assert shown.returncode == 2 and "was not read: row 1" in shown.stderr


def test_not_settleable_claims_are_counted_apart(tmp_path) -> None:
    header = "claim_id,person_id,visit_type,admit_date,total,hifp_pay\n"
    path = tmp_path / "nozone.csv"
    path.write_text(header + "N1,P,inpatient,2008-03-01,3000.00,100.00\n", encoding="utf-8")
    result = run_audit(path, SUQIAN)
    assert (result.not_settleable, result.differ) == (1, 0)
    assert result.claims["reason"].item() == "missing_fact:hospital_zone"
    assert summary_views(result)["not_settleable"].rows() == [("missing_fact:hospital_zone", 1)]


def test_map_names_other_recorded_headers(tmp_path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,total,fund paid\n"
                    "M1,P,inpatient,2008-03-01,in_district,true,3000.00,1250.00\n", encoding="utf-8")
    mapping = {"columns": {"fund paid": "recorded_hifp_pay"}}
    result = run_audit(path, SUQIAN, mapping=mapping)
    assert result.compared == ("hifp_pay",) and result.agree == 1


# --- batch's own output, and mutations of it -------------------------------------------------------

HEADER = "claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,cause,total,self_pay,class_b"
claim = st.tuples(
    st.sampled_from(["A", "B", "C"]),
    st.sampled_from(["inpatient"] * 3 + ["outpatient"]),
    st.dates(min_value=dt.date(2008, 1, 1), max_value=dt.date(2009, 12, 31)),
    st.sampled_from(["in_district", "in_city", "out_of_city", None]),
    st.one_of(st.integers(0, 6_000_000), st.integers(3_000_000, 9_000_000)),
    st.integers(0, 30),
    st.integers(0, 100),
    st.sampled_from(["true", "true", "false", ""]),
    st.sampled_from(["illness"] * 4 + ["traffic_accident"]),
)


def _yuan(value: int) -> str:
    return f"{'-' if value < 0 else ''}{abs(value) // 100}.{abs(value) % 100:02d}"


def _export(tmp_path: Path, claims: list[tuple]) -> pl.DataFrame:
    """The claims settled by ``batch``, its output columns joined to the input: an export as systems write it."""
    lines = []
    for i, (person, kind, day, zone, total, sp_pct, b_pct, approved, cause) in enumerate(claims):
        self_pay = total * sp_pct // 100
        lines.append(f"C{i},{person},{kind},{day.isoformat()},{zone or ''},{approved},{cause},{_yuan(total)},"
                     f"{_yuan(self_pay)},{_yuan((total - self_pay) * b_pct // 100)}")
    source = tmp_path / "in.csv"
    source.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    run_batch(source, SUQIAN, tmp_path / "out.csv")
    settled = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
    inputs = pl.read_csv(source, infer_schema=False)
    return inputs.join(settled.select("claim_id", *(c for c in COMPARED if c in settled.columns)), on="claim_id")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(claim, min_size=1, max_size=12), st.data())
def test_batch_output_audits_clean_and_mutations_are_found(tmp_path_factory, claims, data) -> None:
    tmp_path = tmp_path_factory.mktemp("audit")
    export = _export(tmp_path, claims)
    clean = tmp_path / "export.csv"
    export.write_csv(clean)
    result = run_audit(clean, SUQIAN)
    assert result.differ == 0, result.differences
    assert result.agree + result.not_settleable == len(claims)
    # mutate one recorded field of some claims: exactly those differ, first at the mutated field
    picked = data.draw(st.sets(st.integers(0, len(claims) - 1), min_size=1, max_size=len(claims)))
    mutations = {}
    for i in sorted(picked):
        field = data.draw(st.sampled_from(COMPARED))
        delta = data.draw(st.sampled_from([-100_00, -1, 1, 7, 500_00]))
        mutations[f"C{i}"] = (field, delta)
    # a negative amount would reject the row (and take the claim out of its person's year): stay at or above 0
    mutations = {c: (f, d if d > 0 or fen(export.filter(pl.col("claim_id") == c)[f].item()) + d >= 0 else -d)
                 for c, (f, d) in mutations.items()}
    mutated = export.with_columns(
        pl.struct("claim_id", field).map_elements(
            lambda r, f=field: _yuan(fen(r[f]) + mutations[r["claim_id"]][1])
            if mutations.get(r["claim_id"], ("",))[0] == f else r[f], return_dtype=pl.String).alias(field)
        for field in COMPARED)
    path = tmp_path / "mutated.csv"
    mutated.write_csv(path)
    audit = run_audit(path, SUQIAN)
    settleable = set(audit.claims.filter(pl.col("verdict") != "not_settleable")["claim_id"])
    expected = {c: m for c, m in mutations.items() if c in settleable}
    differing = audit.claims.filter(pl.col("verdict") == "differ")
    assert {r["claim_id"]: r["field"] for r in differing.iter_rows(named=True)} == {
        c: f for c, (f, _d) in expected.items()}
    for r in differing.iter_rows(named=True):
        assert r["reason"] and r["message_en"] and r["message_zh"]
        row = audit.differences.filter(pl.col("claim_id") == r["claim_id"], pl.col("field") == r["field"]).row(
            0, named=True)
        assert row["difference"] == expected[r["claim_id"]][1]
    assert run_audit(path, SUQIAN, tolerance=100_00).differ == sum(1 for f, d in expected.values() if abs(d) > 100_00)


def test_batch_ignores_recorded_columns_and_audit_refuses_two_of_one_field(tmp_path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,total,起付标准,本次起付线\n"
                    "T1,P,inpatient,2008-03-01,in_district,true,3000.00,500.00,500.00\n", encoding="utf-8")
    done = run_batch(path, SUQIAN, tmp_path / "out.csv")
    assert done.claims_settled == 1 and done.rows_rejected == 0
    assert "recorded_act_pay_dedc" not in pl.read_csv(tmp_path / "out.csv").columns
    with pytest.raises(InputError, match="both map to 'recorded_act_pay_dedc'"):
        run_audit(path, SUQIAN)


def test_readme_shows_what_the_audit_finds() -> None:
    """The README's example output is the audit's: the accounting line and the four explanations, verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("four of them settled wrongly; the first command finds exactly those four:")[1]
    lines = [line.strip() for line in block.split("```text\n")[1].split("```")[0].splitlines() if line.strip()]
    shown = run_cli(str(EXPORT), "--policy", "suqian-2007", "--lang", "en").stdout
    assert len(lines) == 5
    for line in lines:
        assert line in shown, line


def test_a_line_item_export_carries_its_record_on_every_line(tmp_path) -> None:
    """Fee lines grouped into claims, the recorded amounts repeated on each line (or blank on some, as merged
    cells export): batch's own settlement agrees; lines disagreeing on a recorded amount reject the claim."""
    items = ROOT / "examples/claims-items.csv"
    run_batch(items, SUQIAN, tmp_path / "settled.csv")
    settled = pl.read_csv(tmp_path / "settled.csv", infer_schema=False).select("claim_id", "hifp_pay", "psn_part_amt")
    lines = pl.read_csv(items, encoding="gbk", infer_schema=False)
    export = lines.join(settled.rename({"claim_id": "结算单号"}), on="结算单号", how="left", maintain_order="left")
    export = export.with_columns(pl.when(pl.int_range(pl.len()).over("结算单号") == 1).then(None)
                                 .otherwise(pl.col("psn_part_amt")).alias("psn_part_amt"))
    path = tmp_path / "items-export.csv"
    export.write_csv(path)
    result = run_audit(path, SUQIAN)
    assert result.compared == ("hifp_pay", "psn_part_amt")
    assert result.differ == 0 and result.agree == result.claims.height > 0
    first = export["结算单号"][0]
    broken = export.with_columns(pl.when((pl.col("结算单号") == first) & (pl.int_range(pl.len()).over("结算单号") == 0))
                                 .then(pl.lit("1.00")).otherwise(pl.col("hifp_pay")).alias("hifp_pay"))
    assert export.filter(pl.col("结算单号") == first).height == 5
    broken.write_csv(path)
    again = run_audit(path, SUQIAN)
    assert first not in again.claims["claim_id"].to_list()
    assert "conflicting_claim_fields" in again.rejects["reason"].to_list()


def test_a_file_of_rejected_rows_writes_an_empty_differences_file_and_exits_1(tmp_path) -> None:
    path = tmp_path / "allbad.csv"
    path.write_text("claim_id,person_id,visit_type,admit_date,hospital_zone,total,hifp_pay\n"
                    "X1,P,inpatient,2008-02-30,in_district,100.00,1.00\n", encoding="utf-8")
    shown = run_cli(str(path), "-p", "suqian-2007", "--lang", "en", "-o", str(tmp_path / "diff.csv"))
    assert shown.returncode == 1 and "rows read 1 = claims 0 + rejected 1" in shown.stdout
    assert (tmp_path / "diff.csv").read_text().splitlines() == [
        "row,claim_id,person_id,hospital_name,month,field,recorded,computed,difference,reason,step,message_en,message_zh"]
    assert "bad_date:admit_date" in (tmp_path / "diff.rejects.csv").read_text()
