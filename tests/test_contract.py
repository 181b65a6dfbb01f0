"""One contract for every command (issue 15): help and version, exit codes, option types, --set and missing
parameters, clean errors for ordinary mistakes, and the same reading, accounting and units everywhere."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import ROOT, run

BILL = str(ROOT / "examples/bill.json")
CLAIMS = str(ROOT / "examples/claims.csv")
#: Every command and command group, as typed after ``medins``.
COMMANDS = [[], ["calc"], ["batch"], ["audit"], ["premium"], ["compare"], ["curve"], ["policy"], ["policy", "list"],
            ["policy", "show"], ["policy", "check"], ["policy", "diff"], ["policy", "schema"], ["policy", "sources"]]


def clean(code: int, out: str, err: str, expected: int = 2) -> str:
    """Assert the exit code and that no traceback reached the user; return all output."""
    assert code == expected, (code, out, err)
    assert "Traceback" not in out + err
    return out + err


# 1. CLI basics ---------------------------------------------------------------------------------------------------

def test_version(capsys) -> None:
    """``--version`` (and ``-V``) prints the package version and exits 0."""
    from medins import __version__

    for flag in ("--version", "-V"):
        code, out, _ = run(capsys, flag)
        assert code == 0 and out.strip() == f"medins {__version__}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "medins")
def test_dash_h_is_help_everywhere(capsys, command) -> None:
    """``-h`` works like ``--help`` on every command and group, and no option shows a type name for a metavar."""
    code, short, _ = run(capsys, *command, "-h")
    code_long, long, _ = run(capsys, *command, "--help")
    assert code == code_long == 0 and short == long and "Usage:" in short
    options = short.split("Options:", 1)[1]
    assert not re.search(r"<(str|int|float|list\[str\]|bool|path|file)>", options), short
    assert "DESIGN.md" not in short and "seed-policies" not in short


def test_no_arguments_prints_help_and_exits_0(capsys) -> None:
    """``medins`` and ``medins policy`` alone are questions: the help, exit 0."""
    for args in ([], ["policy"]):
        code, out, _ = run(capsys, *args)
        assert code == 0 and "Usage:" in out and "Commands:" in out


def test_shell_completion_is_offered(capsys) -> None:
    """Typer's completion options are enabled."""
    _, out, _ = run(capsys, "--help")
    assert "--install-completion" in out and "--show-completion" in out


def test_options_show_names_a_user_reads(capsys) -> None:
    """Metavars: NAME|PATH, NAME=VALUE, YUAN, zh|en, PATH."""
    _, calc, _ = run(capsys, "calc", "--help")
    _, compare, _ = run(capsys, "compare", "--help")
    _, curve, _ = run(capsys, "curve", "--help")
    assert "--policy NAME|PATH" in calc and "--set NAME=VALUE" in calc and "--lang zh|en" in calc
    assert "--income YUAN" in compare and "--xlsx PATH" in compare and "--set NAME=VALUE" in compare
    assert "--from YUAN" in curve and "--png PATH" in curve and "--set NAME=VALUE" in curve


def test_a_bug_exits_3_with_its_traceback_and_a_request_to_report(capsys, monkeypatch) -> None:
    """An exception that is not a user error is a bug: traceback, a bilingual request to report it, exit 3."""
    import medins.api

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(medins.api, "settle_bill", broken)
    code, _out, err = run(capsys, "calc", BILL, "-p", "suqian-2007")
    assert code == 3
    assert "Traceback" in err and "simulated bug" in err and "report" in err and "报告" in err


def test_calc_exits_1_when_the_policy_cannot_settle_the_bill(capsys, tmp_path) -> None:
    """A ``policy_error`` rejection is not an answer to rely on: exit 1 (a rejected claim), not 0."""
    text = (ROOT / "policies/suqian-2007.yaml").read_text(encoding="utf-8")
    marker = "    when: \"visit_type == 'inpatient'\"\n    source: \"SQ-12"
    assert marker in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(marker, "    when: \"visit_type == 'inpatient' and 1 / (total - total) > 0\"\n"
                                           "    source: \"SQ-12"), encoding="utf-8")
    code, out, _ = run(capsys, "calc", BILL, "-p", str(broken), "--lang", "en")
    assert code == 1 and "policy_error:" in out and "division by zero" in out


def test_premium_refuses_an_unknown_sex(capsys) -> None:
    """``--sex X`` is a usage error (it used to price a 76-year-old woman as working-age); F prices her as retired."""
    code, out, err = run(capsys, "premium", "-p", "suqian-2007", "--birth-date", "1950-01-01", "--sex", "X",
                         "--paid-date", "2026-01-01")
    assert "'X' is not one of 'M', 'F'" in clean(code, out, err)
    code, out, _ = run(capsys, "premium", "-p", "suqian-2007", "--birth-date", "1950-01-01", "--sex", "F",
                       "--paid-date", "2026-01-01", "--format", "json")
    assert code == 0 and json.loads(out)["shares"]["individual"] == "60.00"  # SQ-6 elderly, not SQ-7 working-age


def test_premium_family_refuses_an_unknown_sex(capsys, tmp_path) -> None:
    """The same check for each person of ``--family``, naming the person."""
    family = tmp_path / "family.json"
    family.write_text('[{"birth_date": "1950-01-01", "sex": "F"}, {"birth_date": "1980-01-01", "sex": "X"}]')
    code, out, err = run(capsys, "premium", "-p", "suqian-2007", "--family", str(family), "--lang", "en")
    assert "[1].sex" in clean(code, out, err)


# 2. Missing parameters and --set ---------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["batch", CLAIMS, "-p", "lingchuan", "-o", "{tmp}/out.csv"],
    ["compare", CLAIMS, "-p", "suqian-2007", "-p", "lingchuan"],
    ["curve", "-p", "lingchuan"],
    ["audit", str(ROOT / "examples/audit-export.csv"), "-p", "lingchuan", "-o", "{tmp}/diff.csv"],
])
def test_missing_parameters_stop_every_command_that_settles(capsys, tmp_path, command) -> None:
    """A policy lacking a parameter stops batch, compare and curve as it stops calc: exit 2, how to --set it,
    and nothing written (batch used to write every claim as rejected and exit 0)."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    code, out, err = run(capsys, *args, "--lang", "en")
    text = clean(code, out, err)
    assert "lingchuan lacks" in text and "--set" in text
    assert list(tmp_path.iterdir()) == []


SETS_LINGCHUAN = ["--set", "basic_deductible=300", "--set", "basic_rate=50%", "--set", "large_rate=60%",
                  "--set", "raise_date=2010-01-01"]


def test_compare_and_curve_take_set(capsys) -> None:
    """compare and curve accept --set (they advised it without having it): the what-if numbers change."""
    code, out, _ = run(capsys, "curve", "-p", "suqian-2007", "--to", "20000", "--points", "2", "-f", "json")
    base = json.loads(out)
    assert code == 0
    code, out, _ = run(capsys, "curve", "-p", "suqian-2007", "--to", "20000", "--points", "2", "-f", "json",
                       "--set", "zone_offset.in_district=10%")
    assert code == 0 and json.loads(out)[-1]["fund"] != base[-1]["fund"]
    code, out, _err = run(capsys, "compare", BILL, "-p", "suqian-2007", "-f", "json", "--set",
                         "zone_offset.out_of_city=0%")
    assert code == 0 and json.loads(out)[0]["fund_pay_sumamt"] == "22970.00"


def test_lingchuan_settles_once_its_parameters_are_set(capsys) -> None:
    """With every missing parameter supplied, curve runs (the stop names exactly what to set)."""
    code, out, err = run(capsys, "curve", "-p", "lingchuan", "--points", "2", "-f", "json", *SETS_LINGCHUAN)
    assert code == 0, err
    assert {row["policy"] for row in json.loads(out)} == {"lingchuan"}


# 3. Ordinary mistakes end in clean errors ------------------------------------------------------------------------

def _gbk_policy(tmp_path: Path) -> str:
    path = tmp_path / "gbk.yaml"
    path.write_bytes((ROOT / "policies/suqian-2007.yaml").read_text(encoding="utf-8").encode("gbk", "replace"))
    return str(path)


def _nested_json(tmp_path: Path) -> str:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    return str(path)


def _huge_int_json(tmp_path: Path) -> str:
    path = tmp_path / "huge.json"
    path.write_text(Path(BILL).read_text(encoding="utf-8").replace('"42000.00"', "9" * 5000).replace(
        "42000.00", "9" * 5000))
    return str(path)


def _surrogate_json(tmp_path: Path) -> str:
    bill = json.loads(Path(BILL).read_text(encoding="utf-8"))
    bill["person"]["id"] = "\udc80x"
    path = tmp_path / "surrogate.json"
    path.write_text(json.dumps(bill))  # ensure_ascii: "\udc80" is a valid JSON escape of an invalid character
    return str(path)


def _surrogate_yaml(tmp_path: Path) -> str:
    path = tmp_path / "surrogate.yaml"
    text = (ROOT / "policies/suqian-2007.yaml").read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^name: .*$", lambda _: 'name: {zh: "\\ud800", en: x}', text, count=1), encoding="utf-8")
    return str(path)


def _nested_yaml(tmp_path: Path) -> str:
    path = tmp_path / "deep.yaml"
    path.write_text("columns: " + "[" * 100_000)
    return str(path)


MISTAKES = [
    (["compare", CLAIMS, "-p", "suqian-2007", "--income", "abc"], "--income"),
    (["compare", CLAIMS, "-p", "suqian-2007", "--income", "-5"], "--income"),
    (["compare", CLAIMS, "-p", "suqian-2007", "--income", "1e30"], "--income"),
    (["compare", CLAIMS, "-p", "suqian-2007", "--xlsx", "{tmp}/no/such/v.xlsx"], "does not exist"),
    (["curve", "-p", "suqian-2007", "--png", "{tmp}/no/such/c.png"], "does not exist"),
    (["calc", BILL, "-p", "{gbk}"], "not UTF-8"),
    (["policy", "check", "{gbk}"], "not UTF-8"),
    (["policy", "check", CLAIMS], "not a policy"),
    (["calc", "{deep.json}", "-p", "suqian-2007"], "nested too deeply"),
    (["calc", "{huge.json}", "-p", "suqian-2007"], "larger than"),
    (["calc", "{surrogate.json}", "-p", "suqian-2007"], "surrogate"),
    (["policy", "show", "{surrogate.yaml}"], "surrogate"),
    (["calc", "bill\udcff.json", "-p", "suqian-2007"], "not valid UTF-8"),
    (["batch", CLAIMS, "-p", "suqian-2007", "-o", "{tmp}/o.csv", "--map", "{deep.yaml}"], "too deep"),
    (["calc", BILL, "-p", "suqian-2007", "--set", "inpatient_bands[99].rate=5%"], "past the end"),
    (["calc", BILL, "-p", "suqian-2007", "--set", "deductible.in_district=1e999999"], "not a number"),
    (["premium", "-p", "beijing-employee-2009", "--input", "wage=1e99999"], "--input wage"),
    (["curve", "-p", "suqian-2007", "--to", "99999999999999999999999"], "--to"),
    (["compare", CLAIMS, "-p", "suqian-2007", "--bands", "99999999999999999999999"], "--bands"),
]


@pytest.mark.parametrize(("args", "needle"), MISTAKES, ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else v)
def test_ordinary_mistakes_are_clean_errors(capsys, tmp_path, args, needle) -> None:
    """Each used to end in a traceback: now exit 2 with a message naming the problem."""
    files = {"{gbk}": _gbk_policy, "{deep.json}": _nested_json, "{huge.json}": _huge_int_json,
             "{surrogate.json}": _surrogate_json, "{deep.yaml}": _nested_yaml, "{surrogate.yaml}": _surrogate_yaml}
    argv = []
    for arg in args:
        argv.append(files[arg](tmp_path) if arg in files else arg.replace("{tmp}", str(tmp_path)))
    code, out, err = run(capsys, *argv, "--lang", "en")
    assert needle in clean(code, out, err)


def test_gbk_policy_error_is_located(tmp_path) -> None:
    """The encoding error names the line and column of the first byte that is not UTF-8, and guesses GBK."""
    from medins.errors import PolicyError
    from medins.policy.loader import check_policy_file

    path = tmp_path / "p.yaml"
    path.write_bytes("id: x\nname: 宿迁\n".encode("gbk"))
    with pytest.raises(PolicyError) as caught:
        check_policy_file(str(path))
    issue = caught.value.issues[0]
    assert (issue.code, issue.line, issue.column) == ("encoding", 2, 7) and "GBK" in (issue.found or "")


@pytest.mark.parametrize(("text", "line", "column"), [
    ('id: x\nname: "abc\nregion: y\nscheme: z\n\n', 2, 7),     # unclosed quote: noticed at the end of the file
    ("id: x\nlist: [1, 2\nregion: y\nscheme: z\n", 2, 7),       # unclosed bracket
    ("id: x\nmap: {a: 1\nregion: y\n", 2, 6),                   # unclosed brace
    ("id: x\nname: a: b\nregion: y\n", 2, 8),                   # no construct opened: where it is found
])
def test_yaml_syntax_error_points_where_the_construct_opened(text, line, column) -> None:
    """An unclosed quote or bracket is reported where it opened, with where YAML noticed it in the message."""
    from medins.errors import PolicyError
    from medins.policy.yamlsource import load_yaml

    with pytest.raises(PolicyError) as caught:
        load_yaml(text, "p.yaml")
    issue = caught.value.issues[0]
    assert (issue.code, issue.line, issue.column) == ("yaml_syntax", line, column), issue.message_en


# 4. compare reads like batch; money in yuan, shares as percentages ----------------------------------------------

def test_compare_claims_reads_and_accounts_like_batch(capsys, tmp_path) -> None:
    """The accounting line of batch, exit 1 when rows were rejected, and the rejects written on request."""
    code, out, _ = run(capsys, "compare", CLAIMS, "-p", "suqian-2007", "--lang", "en", "--rejects",
                       str(tmp_path / "r.csv"))
    assert code == 1 and "rows read 27 = settled 25 + rejected 2" in out
    assert len((tmp_path / "r.csv").read_text(encoding="utf-8").splitlines()) == 3
    code, batch_out, _ = run(capsys, "batch", CLAIMS, "-p", "suqian-2007", "-o", str(tmp_path / "o.csv"), "--lang",
                             "en")
    assert code == 1 and "rows read 27 = settled 25 + rejected 2" in batch_out


def test_compare_machine_outputs_are_yuan_and_percent(capsys, tmp_path) -> None:
    """JSON, CSV and XLSX: money as yuan with two decimals, shares as "61.23%", no fen, no 17-digit floats."""
    import polars as pl

    code, out, _ = run(capsys, "compare", CLAIMS, "-p", "suqian-2007", "-p", "beijing-resident", "-f", "json",
                       "--xlsx", str(tmp_path / "v.xlsx"), "--income", "30000")
    views = json.loads(out)
    assert code == 1
    for rows in views.values():
        for row in rows:
            for key, value in row.items():
                if key in ("total", "fund", "inscope", "fund_change", "largest_gain"):
                    assert re.fullmatch(r"-?\d+\.\d\d", value), (key, value)
                if key in ("fund_share", "inscope_rate", "incidence") and value is not None:
                    assert re.fullmatch(r"\d+\.\d\d%", value), (key, value)
    _, csv, _ = run(capsys, "compare", CLAIMS, "-p", "suqian-2007", "-f", "csv")
    assert not re.search(r"\d\.\d{5,}", csv) and re.search(r",\d+\.\d\d,", csv) and "%" in csv
    sheet = pl.read_excel(tmp_path / "v.xlsx", sheet_name="totals")
    assert re.fullmatch(r"\d+\.\d\d", sheet["total"][0]) and sheet["fund_share"][0].endswith("%")


def test_curve_machine_outputs_are_yuan_and_percent(capsys) -> None:
    """curve JSON/CSV: totals 0.00 … 20000.00 yuan and the fund share as a percentage."""
    code, out, _ = run(capsys, "curve", "-p", "suqian-2007", "--to", "20000", "--points", "5", "-f", "json")
    rows = json.loads(out)
    assert code == 0 and [r["total"] for r in rows] == ["0.00", "5000.00", "10000.00", "15000.00", "20000.00"]
    assert rows[-1]["fund"] == "11000.00" and rows[-1]["fund_share"] == "55.00%" and rows[0]["fund_share"] is None
    code, out, _ = run(capsys, "curve", "-p", "suqian-2007", "--to", "20000", "--points", "5", "-f", "csv")
    assert code == 0 and "20000.00,11000.00,9000.00,55.00%" in out


def test_python_dash_m_without_arguments_exits_0() -> None:
    """The installed entry point behaves the same: no arguments, help, exit 0."""
    proc = subprocess.run([sys.executable, "-m", "medins"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0 and "Usage:" in proc.stdout


# 5. Every command and option, with bad values ---------------------------------------------------------------------

#: A valid invocation of each command; one value at a time is then made bad.
BASE = {
    "calc": [BILL, "-p", "suqian-2007"],
    "batch": [CLAIMS, "-p", "suqian-2007", "-o", "{tmp}/o.csv"],
    "audit": [str(ROOT / "examples/audit-export.csv"), "-p", "suqian-2007", "-o", "{tmp}/o.csv"],
    "premium": ["-p", "suqian-2007", "--birth-date", "1950-01-01", "--paid-date", "2026-01-01"],
    "compare": [CLAIMS, "-p", "suqian-2007"],
    "curve": ["-p", "suqian-2007", "--points", "3"],
    "policy list": [],
    "policy show": ["suqian-2007"],
    "policy check": [str(ROOT / "policies/suqian-2007.yaml")],
    "policy diff": ["suqian-2007", "beijing-resident"],
    "policy schema": [],
    "policy sources": ["suqian-2007"],
}
POLICY_NAMES = ["no-such-policy", "{gbk.yaml}", "{dir}", "{missing}/p.yaml"]
#: Bad values of every option and argument (by its long option, or its argument's name): wrong type, out of range,
#: missing file, a folder for a file, an unwritable path (under a file: the tests may run as root, who may write
#: anywhere), wrong encoding, too deep, too large.
BAD = {
    "--policy": POLICY_NAMES,
    "--set": ["novalue", "nope=1", "inpatient_bands[99].rate=5%", "deductible.in_district=1e999999",
              "deductible.in_district=abc"],
    "--lang": ["fr", ""],
    "--format": ["xml"],
    "--output": ["{missing}/o.csv", "{dir}", "{tmp}/o.json", "{notadir}/o.csv"],
    "--rejects": ["{missing}/r.csv", "{dir}", "{notadir}/r.csv"],
    "--encoding": ["latin1"],
    "--map": ["{missing}/m.yaml", "{gbk.yaml}", "{deep.yaml}", "{dir}"],
    "--partitions": ["abc", "0", "99999999999"],
    "--jobs": ["abc", "0", "99999999999"],
    "--engine": ["flink", ""],
    "--master": ["nonsense", "local[0]"],
    "--birth-date": ["1950-13-01", "abc"],
    "--sex": ["X"],
    "--category": ["bogus"],
    "--paid-date": ["2026-02-30"],
    "--input": ["wage=abc", "novalue", "wage=1e99999"],
    "--set-file": ["{missing}/p.yaml", "{dir}", "{gbk.yaml}", "{deep.yaml}"],
    "--family": ["{missing}/f.json", "{gbk.json}", "{deep.json}", "{dir}", "{object.json}"],
    "--xlsx": ["{missing}/v.xlsx", "{dir}", "{notadir}/v.xlsx"],
    "--bands": ["a,b", "9,5", "0", "99999999999999999999999"],
    "--ages": ["a", "70,18", "-1"],
    "--income": ["abc", "-5", "1e30", "0.001"],
    "--from": ["abc", "-5", "1e30"],
    "--to": ["abc", "-1", "1e30", "0"],
    "--points": ["abc", "1", "99999999"],
    "--tolerance": ["abc", "-0.01", "0.001", "1e30"],
    "--claim": ["NO-SUCH-CLAIM"],
    "--visit-type": ["bogus"],
    "--zone": ["bogus"],
    "--level": ["4", "-1", "abc"],
    "--date": ["2009-02-30", "abc"],
    "--png": ["{missing}/c.png", "{dir}", "{notadir}/c.png"],
    "bill": ["{missing}/b.json", "{dir}", "{gbk.json}", "{deep.json}", "{huge.json}"],
    "claims": ["{missing}/c.csv", "{dir}", "{binary.csv}"],
    "target": ["{missing}/c.csv", "{dir}", "{gbk.json}", "{binary.csv}"],
    "name": POLICY_NAMES,
    "policy": POLICY_NAMES,
    "a": POLICY_NAMES,
    "b": POLICY_NAMES,
    "files": ["{missing}/p.yaml", "{dir}", "{gbk.yaml}", CLAIMS, "{deep.yaml}"],
}
#: Options without a value to get wrong.
FLAGS = {"--explain", "--all", "--monotone", "--help", "--version", "--install-completion", "--show-completion"}


def _commands():
    """(name, click command) of every leaf command of the app."""
    import typer.main

    from medins.cli import app

    def walk(command, prefix):
        subs = getattr(command, "commands", None)
        if subs is None:
            yield " ".join(prefix), command
            return
        for name, sub in subs.items():
            yield from walk(sub, [*prefix, name])

    yield from walk(typer.main.get_command(app), [])


def _params(command) -> list[tuple[str, bool]]:
    """(key in BAD, is an argument) of each parameter of a command."""
    out = []
    for param in command.params:
        if param.param_type_name == "argument":
            out.append((param.name, True))
        else:
            out.append((next((o for o in param.opts if o.startswith("--")), param.opts[0]), False))
    return out


def test_every_option_has_bad_values() -> None:
    """The walk below covers every command and every option: a new option must get bad values here."""
    names = {name for name, _ in _commands()}
    assert names == set(BASE), names ^ set(BASE)
    unknown = {(name, key) for name, command in _commands() for key, _ in _params(command)
               if key not in BAD and key not in FLAGS}
    assert not unknown


def _cases():
    for name, command in _commands():
        arguments = [key for key, is_argument in _params(command) if is_argument]
        for key, is_argument in _params(command):
            for value in BAD.get(key, []):
                yield pytest.param(name, key, is_argument, arguments.index(key) if is_argument else -1, value,
                                   id=f"{name} {key} {value}")


def _bad_file(kind: str, tmp_path: Path) -> str:
    """The files the bad values name, made in the test's folder."""
    path = tmp_path / kind
    if kind == "gbk.yaml":
        path.write_bytes((ROOT / "policies/suqian-2007.yaml").read_text(encoding="utf-8").encode("gbk", "replace"))
    elif kind == "gbk.json":
        path.write_bytes('{"person": {"id": "张三"}}'.encode("gbk"))
    elif kind == "deep.json":
        path.write_text("[" * 100_000)
    elif kind == "huge.json":
        path.write_text('{"amounts": {"total": ' + "9" * 5000 + "}}")
    elif kind == "deep.yaml":
        path.write_text("columns: " + "[" * 100_000)
    elif kind == "binary.csv":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "object.json":
        path.write_text('{"birth_date": "1950-01-01"}')
    return str(path)


@pytest.mark.parametrize(("name", "key", "is_argument", "index", "value"), list(_cases()))
def test_every_bad_value_is_a_usage_error(capsys, tmp_path, name, key, is_argument, index, value) -> None:
    """Each bad value of each option: exit 2 with a message, no traceback, and no output file written."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("a file where a folder should be")

    def fill(text: str) -> str:
        for kind in ("gbk.yaml", "gbk.json", "deep.json", "huge.json", "deep.yaml", "binary.csv", "object.json"):
            if text == "{" + kind + "}":
                return _bad_file(kind, tmp_path)
        return (text.replace("{missing}", str(tmp_path / "no/such")).replace("{dir}", str(tmp_path / "dir"))
                .replace("{notadir}", str(tmp_path / "file")).replace("{tmp}", str(tmp_path)))

    args = [fill(a) for a in BASE[name]]
    if is_argument:
        positions = [i for i, a in enumerate(BASE[name]) if not a.startswith("-") and
                     (i == 0 or not BASE[name][i - 1].startswith("-"))]
        args[positions[index]] = fill(value)
    else:
        args += [key, fill(value)]
    code, out, err = run(capsys, *name.split(), *args)
    clean(code, out, err)
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.json").exists()


# 7. Citations resolve to a bundled source list -------------------------------------------------------------------

def test_every_citation_of_every_builtin_policy_is_bundled() -> None:
    """Each code a built-in policy's ``source:`` fields cite has an entry (rule + quote, or a reading); a policy
    written from a published page (no seed codes) has the page and its worked example bundled."""
    from medins.policy.loader import builtin_policies, load_policy
    from medins.sources import clause, policy_citations, source_list

    for name in builtin_policies():
        model = load_policy(name).model
        codes = policy_citations(model)
        entry = source_list()["policies"].get(name, {})
        assert codes or source_list()["documents"].get(entry.get("document")), name
        assert [c for c in codes if clause(c) is None] == [], name
        assert name in source_list()["policies"], name


def test_policy_sources_lists_the_document_and_quotes_each_clause(capsys) -> None:
    """``policy sources suqian-2007``: the seed document and part, and SQ-12 with its original words."""
    code, out, _ = run(capsys, "policy", "sources", "suqian-2007", "--lang", "en")
    assert code == 0 and "大病保险管理办法范文3" in out and "L67-135" in out and "2007" in out
    assert "SQ-12" in out and "区内…起付线500元,区外市内…800元,市外…1000元" in out
    assert "A-SQ-4" in out and "reading" in out


def test_explain_quotes_the_clause_beside_its_code_and_formats_amounts_once(capsys) -> None:
    """--explain: each cited code once with its quoted clause; no raw 6-decimal amount in the table."""
    code, out, _ = run(capsys, "calc", str(ROOT / "examples/bill-items.json"), "-p", "suqian-2007", "--explain",
                       "--lang", "zh")
    assert code == 0
    assert re.search(r"SQ-22 001:L115\s+“使用医疗保险药品目录中“乙类”药品的费用", out)
    assert "291.666667" not in out and "≈-291.67" in out
    assert not re.search(r"\d\.\d{3,}", out)  # every amount to the fen, grouped: 5,000.00 not 5000.00
    assert "(5,000.00," in out and "10,000.00]" in out and "5000.00" not in out


# 6. Readable at 80 columns --------------------------------------------------------------------------------------

def _render(renderable, width: int) -> str:
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(width=width, file=buffer, color_system=None, legacy_windows=False).print(renderable)
    return buffer.getvalue()


def _assert_whole(text: str, needles, width: int) -> None:
    """Every money value, id and name is printed whole, and no line is wider than the console."""
    missing = [n for n in needles if n not in text]
    assert not missing, f"cut at {width} columns: {missing[:5]}\n{text}"
    from rich.cells import cell_len

    assert max(cell_len(line) for line in text.splitlines()) <= width


WIDTHS = [80, 120]


@pytest.mark.parametrize("width", WIDTHS)
def test_calc_and_explain_at_width(width) -> None:
    """The settlement and its explain waterfall: every amount whole, no "…" anywhere in the tables."""
    from medins.api import load_policy, settle_bill
    from medins.claims.bill import load_bill
    from medins.report.tables import _money, explain_table, settlement_table

    for bill in ("bill.json", "bill-items.json"):
        result = settle_bill(load_policy("suqian-2007"), load_bill(ROOT / "examples" / bill), source="b", trace=True)
        for lang in ("zh", "en"):
            table = _render(settlement_table(result, lang), width)
            _assert_whole(table, [_money(result[k]) for k in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt")]
                          + [result["policy"]], width)
            assert "…" not in table
            steps = _render(explain_table(result["steps"], lang), width)
            amounts = [_money(s["amount"]) for s in result["steps"] if re.fullmatch(r"-?\d+\.\d\d", s.get("amount", ""))]
            _assert_whole(steps, amounts, width)
            assert "…" not in steps.split("依据原文" if lang == "zh" else "The clauses cited")[0]


@pytest.mark.parametrize("width", WIDTHS)
def test_batch_summary_at_width(tmp_path, width) -> None:
    """The batch summary: accounting line, every total and share whole."""
    from medins.batch import run_batch
    from medins.money import format_yuan
    from medins.policy.loader import load_policy
    from medins.report.summary import breakdown, summary_view

    result = run_batch(CLAIMS, load_policy("suqian-2007"), tmp_path / "o.csv")
    for lang in ("zh", "en"):
        text = _render(summary_view(result, lang), width)
        needles = []
        for by in (None, "visit_type", "hospital_zone", "hospital_level"):
            for row in breakdown(result.settlement, by).iter_rows(named=True):
                needles += [format_yuan(row["total"]), format_yuan(row["fund"]), format_yuan(row["patient"])]
        _assert_whole(text, needles, width)
        assert "…" not in text


def _comparison():
    from medins import compare as cmp
    from medins.policy.loader import load_policy

    policies = [load_policy(p) for p in ("suqian-2007", "beijing-resident")]
    return cmp, cmp.compare_file(policies, CLAIMS)


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_views_at_width(width) -> None:
    """Every compare view (the ones that were unreadable below ~170 columns): every money cell whole."""
    from medins.money import format_yuan
    from medins.report.compare import MONEY_VIEW_COLUMNS, views_renderable

    cmp, comparison = _comparison()
    views = {"totals": cmp.totals(comparison), "fee_bands": cmp.by_fee_band(comparison),
             "age_groups": cmp.by_age_group(comparison), "catastrophic": cmp.catastrophic(comparison),
             "not_paid": cmp.not_paid(comparison), "reform": cmp.reform(comparison)}
    needles = {"suqian-2007", "beijing-resident"}
    for frame in views.values():
        for row in frame.iter_rows(named=True):
            needles |= {format_yuan(int(v)) for k, v in row.items() if k in MONEY_VIEW_COLUMNS and v is not None}
            needles |= {str(row["group"])} if "group" in row else set()
    for lang in ("zh", "en"):
        text = _render(views_renderable(views, lang), width)
        _assert_whole(text, sorted(needles), width)
        assert "…" not in text


@pytest.mark.parametrize("width", WIDTHS)
def test_bill_under_five_policies_at_width(width) -> None:
    """One bill under five policies: split into parts, every policy label and amount whole."""
    from medins.claims.bill import load_bill
    from medins.compare import bill_side_by_side
    from medins.policy.loader import load_policy
    from medins.report.compare import bill_table
    from medins.report.tables import _money

    names = ("suqian-2007", "beijing-resident", "ncms-rural", "shnu-student", "beijing-employee-2009")
    results = bill_side_by_side([load_policy(n) for n in names], load_bill(BILL))
    for lang in ("zh", "en"):
        text = _render(bill_table(results, lang), width)
        _assert_whole(text, [r["policy"] for r in results] + [_money(r["fund_pay_sumamt"]) for r in results], width)
        assert "…" not in text


@pytest.mark.parametrize("width", WIDTHS)
def test_policy_views_at_width(width) -> None:
    """policy list (ids were cut), show (parameter and rule ids), diff (keys), sources (codes): all whole."""
    from medins.policy.diff import policy_diff
    from medins.policy.loader import builtin_policies, load_policy
    from medins.report.policies import diff_table, policy_list_table, policy_view, sources_view
    from medins.sources import policy_citations

    for lang in ("zh", "en"):
        _assert_whole(_render(policy_list_table(lang), width), list(builtin_policies()), width)
        for name in builtin_policies():
            policy = load_policy(name)
            text = _render(policy_view(policy, lang), width)
            _assert_whole(text, [*policy.model.parameters, *(r.id for r in policy.model.rules)], width)
            _assert_whole(_render(sources_view(policy.model, lang), width), policy_citations(policy.model), width)
    rows = policy_diff(load_policy("suqian-2007"), load_policy("beijing-resident"), all_rows=True)
    for lang in ("zh", "en"):
        text = _render(diff_table("suqian-2007", "beijing-resident", rows, lang), width)
        _assert_whole(text, [r["key"] for r in rows], width)


@pytest.mark.parametrize("width", WIDTHS)
def test_premium_and_curve_at_width(width) -> None:
    """The premium table of a family and the curve table: every amount whole."""
    from decimal import Decimal

    from medins.curve import curve, grid
    from medins.money import format_yuan
    from medins.policy.loader import load_policy
    from medins.premium import premium
    from medins.report.plots import curve_table
    from medins.report.premium import premium_table

    policy = load_policy("suqian-2007")
    people = [premium(policy, birth_date=__import__("datetime").date(y, 1, 1), sex="F",
                      paid_date=__import__("datetime").date(2026, 1, 1)) for y in (1950, 1980, 2015)]
    data = curve([policy, load_policy("beijing-resident")], grid(Decimal(0), Decimal(1_000_000), 5))
    for lang in ("zh", "en"):
        text = _render(premium_table(policy, people, lang), width)
        _assert_whole(text, [format_yuan(p.total) for p in people], width)
        assert "…" not in text
        text = _render(curve_table(data, lang), width)
        _assert_whole(text, [format_yuan(v) for v in data["fund"].to_list()] + ["beijing-resident"], width)
        assert "…" not in text


# 7. Self-contained docs ------------------------------------------------------------------------------------------

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Files a user's clone does not have (they lived beside the project while it was written).
ABSENT = ("DESIGN.md", "seed-policies.md", "STYLE.md")


@pytest.mark.parametrize("name", ["fields.md", "policy-language.md"])
def test_generated_docs_match_the_registry_and_schema(name) -> None:
    """docs/fields.md and docs/policy-language.md are what ``python -m medins.report.docs`` writes today."""
    from medins.report import docs

    assert set(docs.GENERATED) == {"fields.md", "policy-language.md"}
    text = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert docs.generated_part(text) == docs.GENERATED[name](), f"regenerate: python -m medins.report.docs ({name})"


def test_fields_doc_lists_every_column_and_chinese_header() -> None:
    """Every registry field appears with its Chinese header; every policy key appears in the language doc."""
    from medins.claims.fields import CLAIM_FIELDS, ITEM_FIELDS
    from medins.policy.jsonschema import policy_json_schema

    fields = (ROOT / "docs/fields.md").read_text(encoding="utf-8")
    for f in (*CLAIM_FIELDS, *ITEM_FIELDS):
        assert f"| `{f.name}` |" in fields and f.zh in fields
    language = (ROOT / "docs/policy-language.md").read_text(encoding="utf-8")
    schema = policy_json_schema()
    for node in (schema, *schema["$defs"].values()):
        for key in node.get("properties", {}):
            assert f"| `{key}` |" in language, key


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_file_mention_resolves(doc) -> None:
    """Markdown links and backticked paths in the README and docs name files a clone has; none of the absent ones."""
    text = doc.read_text(encoding="utf-8")
    for absent in ABSENT:
        assert absent not in text, f"{doc.name} mentions {absent}"
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    for target in targets:
        assert (doc.parent / target.split("#")[0]).exists(), f"{doc.name}: link {target}"
    mentions = re.findall(r"`([\w.-]+(?:/[\w.-]+)+/?)`", text)
    if doc == ROOT / "README.md":  # the patterns find what they should (guards this test from passing empty)
        assert "examples/bill.json" in mentions and "docs/outputs.md" in targets
    for mention in mentions:
        assert (ROOT / mention).exists() or (doc.parent / mention).exists(), f"{doc.name}: {mention}"


def test_readme_links_the_docs() -> None:
    """The README points a user to every document in docs/."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in (ROOT / "docs").glob("*.md"):
        assert f"docs/{doc.name}" in readme or (doc.name == "README.md" and "docs/README.md" in readme), doc.name


def test_help_cites_no_absent_file() -> None:
    """No --help text of any command, nor the shipped JSON Schema editors show, names a file a clone lacks."""
    import typer.main

    from medins.cli import app

    def texts(command):
        yield command.help or ""
        for param in command.params:
            yield getattr(param, "help", "") or ""
        for sub in getattr(command, "commands", {}).values():
            yield from texts(sub)

    schema = (ROOT / "policies/policy.schema.json").read_text(encoding="utf-8")
    for text in [*texts(typer.main.get_command(app)), schema]:
        for absent in ABSENT:
            assert absent not in text
