"""The ``medins`` command line: parse, call the API, render. Nothing is computed here.

Why thin: every number comes from the engine through ``medins.api``; the CLI only turns arguments
into calls and results into tables. Heavy libraries (polars, pydantic) are imported inside the
commands so ``medins --help`` stays fast. User errors (a bad bill, a bad policy) end in a clear
message and exit code 2 (1 when some batch rows were rejected); a bug keeps its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medins.commands.analysis import compare, curve, policy_diff
from medins.commands.audit import audit
from medins.commands.batch import batch
from medins.commands.common import LangOpt, PolicyOpt, SetFileOpt, SetOpt, console, lang_of, missing_hint, parse_sets
from medins.commands.premium import premium

app = typer.Typer(
    name="medins",
    help="Chinese medical-insurance (医保) policies as reviewable YAML: settle bills and claims exactly.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: rendering help through rich would triple the start-up time
)
policy_app = typer.Typer(
    help="List, show, check, diff and export the schema of policies.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(policy_app, name="policy")


@app.command()
def calc(
    bill: Annotated[Path, typer.Argument(help="Bill JSON (DESIGN.md §3).", exists=True, dir_okay=False)],
    policy: PolicyOpt,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    explain: Annotated[bool, typer.Option("--explain", help="Show every step with its policy clause.")] = False,
    lang: LangOpt = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """Settle one bill: what the fund pays, what the patient pays, and why."""
    from medins.api import load_policy, settle_bill
    from medins.claims.bill import load_bill

    language = lang_of(lang)
    if format not in ("table", "json"):
        from medins.errors import UsageError

        raise UsageError(f"--format must be table or json, not {format!r}", "--format 只能是 table 或 json")
    compiled = load_policy(policy, parse_sets(set_), set_file)
    data = load_bill(bill)
    result = settle_bill(compiled, data, source=bill.stem, trace=explain or format == "json")
    _stop_on_missing(result, compiled)
    _stop_on_inconsistent_history(result, data, str(bill))
    if format == "json":
        import json

        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        return
    from medins.report.tables import explain_table, settlement_table

    screen = console()
    screen.print(settlement_table(result, language))
    if explain:
        screen.print(explain_table(result["steps"], language))


app.command()(batch)
app.command()(premium)
app.command()(compare)
app.command()(curve)
app.command()(audit)
policy_app.command("diff")(policy_diff)


def _stop_on_missing(result: dict, compiled) -> None:
    """A claim that needs a number the policy lacks stops with exit 2 and how to supply it."""
    missing = sorted({r.split(":", 1)[1] for r in result["reasons"] if r.startswith("missing_parameter:")})
    if not missing:
        return
    from medins.errors import UsageError

    sources = {}
    for version in compiled.versions:
        sources.update(version.params.sources)
    names = ", ".join(missing)
    detail = "; ".join(f"{m}: {sources.get(m) or sources.get(m.split('.')[0], '')}" for m in missing)
    hint_en, hint_zh = missing_hint(compiled, missing)
    raise UsageError(
        f"Policy {compiled.id} lacks {names}: the source document does not give it ({detail}).",
        f"政策 {compiled.id} 缺少参数 {names}:原始文件没有给出。",
        hint_en=hint_en,
        hint_zh=hint_zh,
    )


#: What each ``inconsistent_history:<field>`` means, and what to give instead (en, zh).
_HISTORY_WORDS = {
    "deductible_paid": (
        "history.deductible_paid {deductible_paid} does not fit history.inscope {inscope}: a per-year deductible "
        "is paid first, so after in-scope spending the deductible paid so far is the smaller of that spending "
        "and the standard (never more than the spending)",
        "history.deductible_paid {deductible_paid} 与 history.inscope {inscope} 不符:按年度计算的起付线先由个人"
        "负担,年内已付起付线应为年内政策范围内累计与起付标准中较小者(不会超过累计金额)",
        "give history.deductible_paid as it was this year (or leave history out for the year's first claim)",
        "请按实际填写 history.deductible_paid(本年度第一笔结算可不填 history)"),
    "fund_paid": (
        "history.fund_paid {fund_paid} is above the policy's yearly cap for this kind of care",
        "history.fund_paid {fund_paid} 超过政策对此类费用的年度最高支付限额",
        "check history.fund_paid: it counts what the fund paid this benefit year for this kind of care",
        "请核对 history.fund_paid:应为本结算年度基金对此类费用已支付的金额"),
}


def _stop_on_inconsistent_history(result: dict, bill: dict, source: str) -> None:
    """A bill whose history contradicts itself stops with exit 2, never a second deductible in silence."""
    fields = [r.split(":", 1)[1] for r in result["reasons"] if r.startswith("inconsistent_history:")]
    if not fields:
        return
    from medins.errors import InputError

    history = bill.get("history") or {}
    given = {k: history.get(k, "0 (not given / 未填)") for k in ("deductible_paid", "inscope", "fund_paid")}
    en, zh, hint_en, hint_zh = _HISTORY_WORDS[fields[0]]
    raise InputError(en.format(**given), zh.format(**given), hint_en=hint_en, hint_zh=hint_zh, file=source,
                     key_path=f"history.{fields[0]}")


@policy_app.command("list")
def policy_list(lang: LangOpt = None) -> None:
    """List the built-in policies with region, scheme and years."""
    from medins.report.policies import policy_list_table

    console().print(policy_list_table(lang_of(lang)))


@policy_app.command("show")
def policy_show(name: Annotated[str, typer.Argument(help="Policy file or built-in name.")], lang: LangOpt = None,
                set_: SetOpt = None) -> None:
    """Show a policy as readable tables: parameters with citations, rules, admissibility."""
    from medins.policy.loader import load_policy
    from medins.report.policies import policy_view

    console().print(policy_view(load_policy(name, parse_sets(set_)), lang_of(lang)))


@policy_app.command("check")
def policy_check(
    files: Annotated[list[Path], typer.Argument(help="Policy files to validate.")],
    lang: LangOpt = None,
    monotone: Annotated[bool, typer.Option("--monotone", help=(
        "Also settle a grid of totals for every visit type, zone, level and category the policy reads, and "
        "report every place where a bigger bill gets less from the fund or costs the patient less (exit 1)."))] = False,
    to: Annotated[int, typer.Option("--to", min=1, help="--monotone: the grid's largest total, yuan.")] = 200_000,
    points: Annotated[int, typer.Option("--points", min=2, help="--monotone: totals on the grid.")] = 2_001,
    set_: SetOpt = None,
) -> None:
    """Validate policy files like a compiler: every problem, located, at once."""
    from rich.text import Text

    from medins.errors import PolicyError
    from medins.policy.loader import check_policy_file
    from medins.report.errors import render_issues

    language = lang_of(lang)
    screen = console()
    failed: list = []
    for file in files:
        if not file.is_file():
            from medins.errors import UsageError

            raise UsageError(f"No such file: {file}", f"文件不存在:{file}")
        try:
            check_policy_file(str(file))
            screen.print(Text(f"✓ {file}", style="green"))
            from medins.policy.warnings import policy_warnings
            from medins.report.errors import render_warnings

            warnings = policy_warnings(str(file))
            if warnings:
                screen.print(render_warnings(warnings, language))
        except PolicyError as exc:
            failed.extend(exc.issues)
    if failed:
        screen.print(render_issues(failed, language))
        raise typer.Exit(2)
    if monotone and not _check_monotone(files, language, to, points, parse_sets(set_)):
        raise typer.Exit(1)


def _check_monotone(files: list[Path], language, to: int, points: int, sets: dict) -> bool:
    """Settle each policy's grid; False when some bigger bill gets less from the fund (or costs the patient less)."""
    from medins.errors import UsageError
    from medins.monotone import find_falls
    from medins.policy.loader import load_policy
    from medins.report.monotone import monotone_renderable

    clean = True
    for file in files:
        result = find_falls(load_policy(str(file), sets), to_yuan=to, points=points)
        if not result["settled"]:
            reasons = ", ".join(result["reasons"]) or "-"
            raise UsageError(f"{file}: no bill on the grid is settled ({reasons}): nothing to check",
                             f"{file}:网格上没有可结算的账单({reasons}),无法检查单调性",
                             hint_en="supply the missing parameters with --set NAME=VALUE",
                             hint_zh="请用 --set 名称=值 提供缺失的参数")
        console().print(monotone_renderable(str(file), result, language))
        clean = clean and not result["falls"].height
    return clean


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the policy JSON Schema (for editor completion and validation)."""
    import json

    from medins.policy.jsonschema import policy_json_schema

    sys.stdout.write(json.dumps(policy_json_schema(), ensure_ascii=False, indent=2) + "\n")


def main() -> None:
    """Console entry point: run the app, turning user errors into messages and exit codes."""
    from medins.errors import MedinsError

    try:
        app()
    except MedinsError as exc:
        from rich.console import Console

        from medins.report.errors import render_error, render_issues
        from medins.report.labels import default_lang

        lang = default_lang()
        for i, arg in enumerate(sys.argv):
            if arg == "--lang" and i + 1 < len(sys.argv) and sys.argv[i + 1] in ("zh", "en"):
                lang = sys.argv[i + 1]  # type: ignore[assignment]
            elif arg.startswith("--lang=") and arg[7:] in ("zh", "en"):
                lang = arg[7:]  # type: ignore[assignment]
        stderr = Console(stderr=True)
        issues = getattr(exc, "issues", None)
        stderr.print(render_issues(issues, lang) if issues else render_error(exc, lang))
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
