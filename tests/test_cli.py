"""The command line as a user meets it: README commands, shipped examples, outputs and every error path."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.cli_support import run as run_medins

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``medins ARGS`` in-process through the real error boundary (main); return code, stdout, stderr."""
    return run_medins(capsys, *args)


def readme_commands() -> list[str]:
    """Every `medins …` line in the README's bash blocks (the reference blocks are `text`)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.strip()
            if "&&" in line:
                line = line.split("&&", 1)[1].strip()
            if line.startswith("medins "):
                commands.append(line)
    return commands


def test_readme_has_the_quick_start_command() -> None:
    """The Quick start's first command settles the shipped example (guards the test below from passing empty)."""
    assert any(c.startswith("medins calc examples/bill.json") for c in readme_commands())


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_runs(capsys, monkeypatch, tmp_path, request, command) -> None:
    """Each medins command in the README exits 0 (or 1 when a claims file has rejected rows, as documented)."""
    if "--engine spark" in command:
        request.getfixturevalue("spark")  # the test session's Spark (skipped without Java, except in CI)
    monkeypatch.chdir(ROOT)
    args = shlex.split(command)[1:]
    for flag in ("-o", "--output", "--xlsx", "--png"):  # outputs go to a temporary folder, not the checkout
        if flag in args:
            i = args.index(flag) + 1
            args[i] = str(tmp_path / Path(args[i]).name)
    code, out, err = run(capsys, *args)
    assert code in (0, 1), f"{command}: exit {code}\n{out}\n{err}"
    if code == 1:
        assert args[0] in ("batch", "compare", "audit"), (
            f"{command} exited 1: only reading claims with rejected rows, or an audit finding differences, may")


def test_calc_table_shows_the_settlement_in_english(capsys) -> None:
    """The quick-start bill: fund 15,170.00, patient 26,830.00, with English labels and the explain steps."""
    code, out, _ = run(capsys, "calc", str(ROOT / "examples/bill.json"), "--policy", "suqian-2007.yaml",
                       "--explain", "--lang", "en")
    assert code == 0
    assert "15,170.00" in out and "26,830.00" in out
    assert "Pooled fund" in out and "How it was computed" in out and "band 4" in out


def test_calc_table_in_chinese(capsys) -> None:
    """--lang zh prints Chinese labels."""
    code, out, _ = run(capsys, "calc", str(ROOT / "examples/bill.json"), "--policy", "suqian-2007", "--lang", "zh")
    assert code == 0
    assert "统筹基金支付" in out and "个人负担" in out and "已结算" in out


def test_calc_json_has_the_design_fields_and_steps(capsys) -> None:
    """--format json prints the §4 keys as yuan text with two decimals, the status and the explain steps."""
    code, out, _ = run(capsys, "calc", str(ROOT / "examples/bill.json"), "--policy", "suqian-2007", "--format", "json")
    assert code == 0
    data = json.loads(out)
    for key in ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
                "act_pay_dedc", "hifp_pay", "hifob_pay", "hifmi_pay", "maf_pay", "fund_pay_sumamt", "psn_part_amt",
                "acct_pay", "psn_cash_pay", "claim_id", "policy", "status", "reasons", "steps"):
        assert key in data
    assert data["fund_pay_sumamt"] == "15170.00" and data["status"] == "settled"
    bands = [s for s in data["steps"] if s["step"] == "band"]
    assert [b["rate"] for b in bands] == ["30%", "35%", "40%", "50%"]
    assert all(s.get("source") for s in bands)


def test_line_item_example(capsys) -> None:
    """The line-item example: class C is fully self-paid, class B reduces the rate pro rata."""
    code, out, _ = run(capsys, "calc", str(ROOT / "examples/bill-items.json"), "--policy", "suqian-2007",
                       "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert data["fulamt_ownpay_amt"] == "2000.00" and data["inscp_scp_amt"] == "18000.00"
    assert data["fund_pay_sumamt"] == "9508.33"  # same numbers as the acceptance case self-pay-and-class-b
    # --explain: the bands less the class-B reduction (A-SQ-4, exact) give the fund's amount before rounding
    steps = {s["step"]: s for s in data["steps"]}
    assert steps["class_b"]["amount"] == "-291.666667" and steps["class_b"]["rate"] == "10%"
    bands = sum(Decimal(s["amount"]) for s in data["steps"] if s["step"] == "band")
    assert (bands + Decimal(steps["class_b"]["amount"])).quantize(Decimal("0.01")) == Decimal(steps["fund_raw"]["amount"])


def test_rejected_bill_shows_reason_in_words_and_code(capsys, tmp_path) -> None:
    """A maternity stay under Suqian: rejected, with the reason in words and its code."""
    bill = json.loads((ROOT / "examples/bill.json").read_text(encoding="utf-8"))
    bill["visit"]["cause"] = "maternity"
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bill, ensure_ascii=False), encoding="utf-8")
    code, out, _ = run(capsys, "calc", str(path), "--policy", "suqian-2007", "--lang", "en")
    assert code == 0
    assert "rejected" in out and "excluded cause: maternity" in out and "excluded_cause:maternity" in out


def test_set_changes_the_result(capsys) -> None:
    """--set overrides a parameter: without the out-of-city −20 points, 39,000 × 20 % = 7,800 more."""
    code, out, _ = run(capsys, "calc", str(ROOT / "examples/bill.json"), "--policy", "suqian-2007",
                       "--format", "json", "--set", "zone_offset.out_of_city=0%")
    assert code == 0 and json.loads(out)["fund_pay_sumamt"] == "22970.00"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["calc", "examples/bill.json", "--policy", "suqain-2007"], "suqian-2007"),
        (["calc", "examples/bill.json", "--policy", "suqian-2007", "--set", "nope=1"], "no parameter"),
        (["calc", "examples/bill.json", "--policy", "suqian-2007", "--set", "novalue"], "NAME=VALUE"),
        (["calc", "examples/bill.json", "--policy", "suqian-2007", "--set", "zone_offset.in_city=150%"], "0–100%"),
        (["calc", "examples/bill.json", "--policy", "suqian-2007", "--lang", "fr"], "'fr' is not one of 'zh', 'en'"),
        (["calc", "examples/bill.json", "--policy", "suqian-2007", "--format", "xml"], "'xml' is not one of"),
    ],
)
def test_usage_errors_exit_2_with_a_hint(capsys, monkeypatch, args, needle) -> None:
    """Misspelt policy, unknown or malformed --set, bad --lang or --format: exit 2, a message, no traceback."""
    monkeypatch.chdir(ROOT)
    code, out, err = run(capsys, *args)
    assert code == 2
    assert needle in out + err and "Traceback" not in out + err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"person": {"id": "P"}, "visit": {"type": "inpatient", "admit_date": "2008-04-02"}, "amounts": {"total": 1}',
         "line"),
        ('{"person": {"id": "P"}, "visit": {"typ": "inpatient", "admit_date": "2008-04-02"}, "amounts": {"total": 1}}',
         "type"),
        ('{"person": {"id": "P"}, "visit": {"type": "inpatient", "admit_date": "2008-04-02"},'
         ' "amounts": {"total": "1.005"}}', "decimals"),
    ],
)
def test_bad_bills_exit_2_with_the_key(capsys, tmp_path, content, needle) -> None:
    """Broken JSON, an unknown key (with did-you-mean), sub-fen money: exit 2 naming the problem."""
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "calc", str(path), "--policy", "suqian-2007", "--lang", "en")
    assert code == 2 and needle in out + err and "Traceback" not in out + err


def test_missing_bill_file_is_a_usage_error(capsys) -> None:
    """A bill path that does not exist is refused by the argument parser (exit 2)."""
    code, _, err = run(capsys, "calc", "no/such/bill.json", "--policy", "suqian-2007")
    assert code == 2 and "does not exist" in err


def test_policy_list_and_show(capsys) -> None:
    """`policy list` names the built-in policies; `policy show` lays out parameters with citations."""
    code, out, _ = run(capsys, "policy", "list", "--lang", "en")
    assert code == 0 and "suqian-2007" in out
    code, out, _ = run(capsys, "policy", "show", "suqian-2007", "--lang", "zh")
    assert code == 0 and "SQ-12" in out and "inpatient_bands" in out and "待遇规则" in out


def test_policy_schema_is_the_shipped_file(capsys) -> None:
    """`policy schema` prints the JSON Schema shipped beside the built-in policies (kept in sync)."""
    code, out, _ = run(capsys, "policy", "schema")
    assert code == 0
    assert json.loads(out) == json.loads((ROOT / "policies/policy.schema.json").read_text(encoding="utf-8"))


def test_python_dash_m_and_help() -> None:
    """`python -m medins --help` works and lists the commands."""
    proc = subprocess.run([sys.executable, "-m", "medins", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "calc" in proc.stdout and "policy" in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", "{tmp}/o.csv", "--encoding", "latin1"],
         "'latin1' is not one of"),
        (["batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", "{tmp}/o.json"], "output format"),
        (["batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", "{tmp}/no/such/o.csv"], "does not exist"),
        (["compare", "examples/claims.csv", "-p", "suqian-2007", "--bands", "9,5"], "ascend"),
        (["compare", "examples/claims.csv", "-p", "suqian-2007", "--bands", "a,b"], "commas"),
        (["compare", "examples/bill.json", "-p", "suqian-2007", "--format", "xml"], "'xml' is not one of"),
        (["curve", "-p", "suqian-2007", "--from", "abc"], "--from"),
        (["premium", "--policy", "suqian-2007", "--paid-date", "2008-13-01"], "YYYY-MM-DD"),
        (["premium", "--policy", "ncms-rural"], "no contributions"),
        (["premium", "--policy", "beijing-employee-2009", "--input", "wage=abc"], "number"),
        (["policy", "diff", "suqian-2007", "nope-policy"], "nope-policy"),
    ],
)
def test_more_usage_errors_exit_2(capsys, monkeypatch, tmp_path, args, needle) -> None:
    """Every command refuses bad options with exit 2 and a message, never a traceback."""
    monkeypatch.chdir(ROOT)
    code, out, err = run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == 2, (out, err)
    assert needle in out + err and "Traceback" not in out + err
