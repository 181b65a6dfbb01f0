"""The ``medins`` command line: parse, call the API, render. Nothing is computed here.

Why thin: every number comes from the engine through ``medins.api``; the CLI only turns arguments
into calls and results into tables. Heavy libraries (polars, pydantic) are imported inside the
commands so ``medins --help`` stays fast. User errors (a bad bill, a bad policy) end in a clear
message and exit code 2 (1 when some batch rows were rejected); a bug keeps its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

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

LangOpt = Annotated[
    str | None, typer.Option("--lang", help="Label language: zh or en (default: from the locale).")
]
PolicyOpt = Annotated[str, typer.Option("--policy", "-p", help="Policy file path or built-in name.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a parameter for a what-if run: NAME=VALUE (repeatable)."),
]


def _lang(value: str | None) -> Literal["zh", "en"]:
    from medins.errors import UsageError
    from medins.report.labels import default_lang

    if value is None:
        return default_lang()
    if value not in ("zh", "en"):
        raise UsageError(f"--lang must be zh or en, not {value!r}", f"--lang 只能是 zh 或 en,而不是 {value!r}")
    return value  # type: ignore[return-value]


def parse_sets(values: list[str] | None) -> dict[str, str]:
    """``["a=1", "b.c=2%"]`` → ``{"a": "1", "b.c": "2%"}``; a malformed item is a usage error."""
    from medins.errors import UsageError

    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects NAME=VALUE, got {item!r}", f"--set 的格式应为 名称=值,而不是 {item!r}")
        out[key.strip()] = value.strip()
    return out


def _console():
    from rich.console import Console

    return Console()


@app.command()
def calc(
    bill: Annotated[Path, typer.Argument(help="Bill JSON (DESIGN.md §3).", exists=True, dir_okay=False)],
    policy: PolicyOpt,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    explain: Annotated[bool, typer.Option("--explain", help="Show every step with its policy clause.")] = False,
    lang: LangOpt = None,
    set_: SetOpt = None,
) -> None:
    """Settle one bill: what the fund pays, what the patient pays, and why."""
    from medins.api import load_policy, settle_bill
    from medins.claims.bill import load_bill

    language = _lang(lang)
    if format not in ("table", "json"):
        from medins.errors import UsageError

        raise UsageError(f"--format must be table or json, not {format!r}", "--format 只能是 table 或 json")
    compiled = load_policy(policy, parse_sets(set_))
    data = load_bill(bill)
    result = settle_bill(compiled, data, source=bill.stem, trace=explain or format == "json")
    _stop_on_missing(result, compiled)
    if format == "json":
        import json

        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        return
    from medins.report.tables import explain_table, settlement_table

    console = _console()
    console.print(settlement_table(result, language))
    if explain:
        console.print(explain_table(result["steps"], language))


@app.command()
def batch(
    claims: Annotated[Path, typer.Argument(help="Claims file: CSV (UTF-8/GBK), XLSX or Parquet.", exists=True,
                                           dir_okay=False)],
    policy: PolicyOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="Settlement file (.csv, .parquet or .xlsx).")],
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Rejected rows (default: OUT.rejects.csv).")] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="auto, utf-8, gbk or gb18030.")] = "auto",
    map_: Annotated[Path | None, typer.Option("--map", help="YAML mapping other headers/values to medins names.",
                                              exists=True, dir_okay=False)] = None,
    format: Annotated[str | None, typer.Option("--format", help="csv, parquet or xlsx (default: from -o).")] = None,
    partitions: Annotated[int | None, typer.Option("--partitions", help="Settle in N person-hash partitions "
                                                   "(bounded memory; automatic for CSV files over 32 MB).")] = None,
    lang: LangOpt = None,
    set_: SetOpt = None,
) -> None:
    """Settle a file of claims; malformed rows go to a rejects file. Exit 1 when any row was rejected."""
    from medins.batch import run_batch
    from medins.errors import UsageError
    from medins.policy.loader import load_policy
    from medins.report.summary import summary_view

    language = _lang(lang)
    if encoding not in ("auto", "utf-8", "utf8", "gbk", "gb18030"):
        raise UsageError(f"--encoding must be auto, utf-8, gbk or gb18030, not {encoding!r}",
                         f"--encoding 只能是 auto、utf-8、gbk 或 gb18030,而不是 {encoding!r}")
    compiled = load_policy(policy, parse_sets(set_))
    mapping = None
    if map_ is not None:
        from medins.claims.aliases import load_mapping

        mapping = load_mapping(map_)
    console = _console()
    with _progress(console, language) as step:
        result = run_batch(claims, compiled, output, rejects=rejects, encoding=encoding, mapping=mapping,
                           fmt=format, on_stage=step, partitions=partitions)
    console.print(summary_view(result, language))
    if result.rows_rejected:
        raise typer.Exit(1)


def _progress(console, lang: str):
    """A Rich progress display of the batch stages, only on a terminal (logs stay clean in pipelines)."""
    from contextlib import contextmanager

    @contextmanager
    def display():
        if not console.is_terminal:
            yield lambda _name: None
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        names = {"read": ("读取", "reading"), "settle": ("结算", "settling"), "write": ("写出", "writing")}
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                      transient=True) as progress:
            task = progress.add_task("", total=3)

            def step(name: str) -> None:
                label = names.get(name, (name, name))
                progress.update(task, description=label[0] if lang == "zh" else label[1], advance=1)

            yield step

    return display()


@app.command()
def premium(
    policy: PolicyOpt,
    birth_date: Annotated[str | None, typer.Option("--birth-date", help="YYYY-MM-DD (age on the payment date).")] = None,
    sex: Annotated[str | None, typer.Option("--sex", help="M or F.")] = None,
    category: Annotated[str | None, typer.Option("--category", help="Person category, e.g. low_income.")] = None,
    paid_date: Annotated[str | None, typer.Option("--paid-date", help="Payment date (default: today).")] = None,
    input_: Annotated[list[str] | None, typer.Option("--input", help="NAME=VALUE, e.g. wage=6000 (repeatable).")] = None,
    family: Annotated[Path | None, typer.Option("--family", help="JSON list of persons {birth_date, sex, category, "
                                                "inputs} paying together.", exists=True, dir_okay=False)] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    lang: LangOpt = None,
    set_: SetOpt = None,
) -> None:
    """Contributions: what the person (or family), employer and government pay under a policy."""
    from datetime import date
    from decimal import Decimal, InvalidOperation

    from medins.errors import UsageError
    from medins.money import fen_to_yuan
    from medins.policy.loader import load_policy
    from medins.premium import premium as compute

    language = _lang(lang)
    compiled = load_policy(policy, parse_sets(set_))

    def day(text: str | None, what: str) -> date | None:
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            raise UsageError(f"{what} must be YYYY-MM-DD, not {text!r}", f"{what} 应为 YYYY-MM-DD,而不是 {text!r}") from None

    def numbers(items) -> dict[str, Decimal]:
        out = {}
        for key, raw in (items.items() if isinstance(items, dict) else parse_sets(items).items()):
            try:
                out[key] = Decimal(str(raw))
            except InvalidOperation:
                raise UsageError(f"--input {key} must be a number, not {raw!r}", f"--input {key} 必须是数字") from None
        return out

    if family is not None:
        import json

        people = json.loads(family.read_text(encoding="utf-8"))
    else:
        people = [{"birth_date": birth_date, "sex": sex, "category": category, "inputs": {}}]
    shared_inputs = numbers(input_)
    paid = day(paid_date, "--paid-date")
    results = []
    for person in people:
        inputs = {**shared_inputs, **numbers(person.get("inputs") or {})}
        results.append(compute(compiled, person_category=person.get("category"), sex=person.get("sex"),
                               birth_date=day(person.get("birth_date"), "birth_date"), paid_date=paid, inputs=inputs))
    if format == "json":
        import json

        rows = [{"group": r.group, "period": r.period, "shares": {k: fen_to_yuan(v) for k, v in r.shares.items()},
                 "total": fen_to_yuan(r.total), "source": r.source} for r in results]
        sys.stdout.write(json.dumps(rows if family else rows[0], ensure_ascii=False, indent=2) + "\n")
        return
    from medins.report.premium import premium_table

    _console().print(premium_table(compiled, results, language))


@app.command()
def compare(
    target: Annotated[Path, typer.Argument(help="A bill (.json) or a claims file (.csv/.xlsx/.parquet).", exists=True,
                                           dir_okay=False)],
    policy: Annotated[list[str], typer.Option("--policy", "-p", help="Policy name or path (repeat: A, B, …).")],
    format: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Also write one sheet per view to this file.")] = None,
    bands: Annotated[str | None, typer.Option("--bands", help="Fee-band edges in yuan, e.g. 5000,10000,20000,50000.")
                     ] = None,
    ages: Annotated[str | None, typer.Option("--ages", help="Age-group edges, e.g. 18,60,70.")] = None,
    income: Annotated[str | None, typer.Option("--income", help="Disposable income (yuan) when the file has none.")
                      ] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="auto, utf-8, gbk or gb18030.")] = "auto",
    map_: Annotated[Path | None, typer.Option("--map", help="Header/value mapping YAML.", exists=True)] = None,
    lang: LangOpt = None,
) -> None:
    """The same bill or claims under several policies: side by side, fee bands, age groups, burden, reform."""
    from medins.errors import UsageError
    from medins.policy.loader import load_policy

    language = _lang(lang)
    if format not in ("table", "json", "csv"):
        raise UsageError(f"--format must be table, json or csv, not {format!r}", "--format 只能是 table、json 或 csv")
    policies = [load_policy(name) for name in policy]
    console = _console()
    if target.suffix.lower() == ".json":
        from medins.claims.bill import load_bill
        from medins.compare import bill_side_by_side
        from medins.report.compare import bill_table

        results = bill_side_by_side(policies, load_bill(target), source=target.stem)
        if format == "json":
            import json

            sys.stdout.write(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
        else:
            console.print(bill_table(results, language))
        return
    from medins import compare as cmp
    from medins.money import to_fen
    from medins.report.compare import views_renderable, views_to_csv, views_to_json, views_to_xlsx

    def edges(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
        if not text:
            return default
        try:
            values = tuple(int(x) for x in text.split(","))
        except ValueError:
            raise UsageError(f"expected numbers separated by commas, not {text!r}", f"应为逗号分隔的数字:{text!r}") from None
        if list(values) != sorted(set(values)):
            raise UsageError(f"edges must ascend: {text!r}", f"分段边界必须递增:{text!r}")
        return values

    mapping = None
    if map_ is not None:
        from medins.claims.aliases import load_mapping

        mapping = load_mapping(map_)
    comparison = cmp.compare_file(policies, target, encoding=encoding, mapping=mapping)
    views = {
        "totals": cmp.totals(comparison),
        "fee_bands": cmp.by_fee_band(comparison, edges(bands, cmp.DEFAULT_BANDS)),
        "age_groups": cmp.by_age_group(comparison, edges(ages, cmp.DEFAULT_AGES)),
        "catastrophic": cmp.catastrophic(comparison, income_fen=to_fen(income) if income else None),
        "not_paid": cmp.not_paid(comparison),
        "reform": cmp.reform(comparison),
    }
    if xlsx is not None:
        views_to_xlsx(views, xlsx)
    if format == "json":
        import json

        sys.stdout.write(json.dumps(views_to_json(views), ensure_ascii=False, indent=2, default=str) + "\n")
    elif format == "csv":
        sys.stdout.write(views_to_csv(views))
    else:
        console.print(views_renderable(views, language))


@app.command()
def curve(
    policy: Annotated[list[str], typer.Option("--policy", "-p", help="Policy name or path (repeatable).")],
    from_: Annotated[str, typer.Option("--from", help="Smallest bill total (yuan).")] = "0",
    to: Annotated[str, typer.Option("--to", help="Largest bill total (yuan).")] = "100000",
    points: Annotated[int, typer.Option("--points", help="Number of totals on the grid.")] = 41,
    visit_type: Annotated[str, typer.Option("--visit-type", help="inpatient, outpatient, …")] = "inpatient",
    zone: Annotated[str | None, typer.Option("--zone", help="Hospital zone, e.g. in_district.")] = "in_district",
    level: Annotated[int | None, typer.Option("--level", help="Hospital level 0-3.")] = 3,
    category: Annotated[str | None, typer.Option("--category", help="Person category.")] = None,
    date_: Annotated[str, typer.Option("--date", help="Service date (a date every policy is in force).")] = "2009-06-01",
    png: Annotated[Path | None, typer.Option("--png", help="Also draw the chart to this PNG file.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="chart, table, json or csv.")] = "chart",
    lang: LangOpt = None,
) -> None:
    """Fund share as a function of the bill total under each policy (terminal chart, table or PNG)."""
    from decimal import Decimal, InvalidOperation

    from medins.curve import curve as make_curve
    from medins.curve import grid
    from medins.errors import UsageError
    from medins.policy.loader import load_policy

    language = _lang(lang)
    try:
        totals = grid(Decimal(from_), Decimal(to), points)
    except (InvalidOperation, ValueError):
        raise UsageError(f"--from/--to must be amounts, not {from_!r}/{to!r}", "--from/--to 必须是金额") from None
    data = make_curve([load_policy(p) for p in policy], totals, visit_type=visit_type, zone=zone, level=level,
                      category=category, day=date_)
    if png is not None:
        from medins.report.plots import curve_png

        used = curve_png(data, png, language)
        if used != language:
            sys.stderr.write("No CJK font found: the PNG uses English labels (pip install 'medins[cjk]').\n")
    if format == "json":
        sys.stdout.write(data.write_json() + "\n")
    elif format == "csv":
        sys.stdout.write(data.write_csv())
    elif format == "table":
        from rich.table import Table

        from medins.money import format_yuan

        table = Table(title="基金支付占比" if language == "zh" else "Fund share by bill total")
        for column in ("policy", "total", "fund", "patient", "fund share"):
            table.add_column(column, justify="left" if column == "policy" else "right")
        for row in data.iter_rows(named=True):
            share = "—" if row["fund_share"] is None else f"{row['fund_share'] * 100:.1f}%"
            table.add_row(row["policy"], format_yuan(row["total"]), format_yuan(row["fund"]),
                          format_yuan(row["patient"]), share)
        _console().print(table)
    else:
        from medins.report.plots import terminal_chart

        sys.stdout.write(terminal_chart(data, language) + "\n")


@policy_app.command("diff")
def policy_diff(
    a: Annotated[str, typer.Argument(help="First policy (name or path).")],
    b: Annotated[str, typer.Argument(help="Second policy (name or path).")],
    all_: Annotated[bool, typer.Option("--all", help="Also list parameters that are the same.")] = False,
    format: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    lang: LangOpt = None,
) -> None:
    """Parameter-by-parameter differences between two policies, with each side's citation."""
    from medins.policy.diff import policy_diff as diff
    from medins.policy.loader import load_policy

    language = _lang(lang)
    pa, pb = load_policy(a), load_policy(b)
    rows = diff(pa, pb, all_rows=all_)
    if format == "json":
        import json

        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    if format == "csv":
        import polars as pl

        sys.stdout.write(pl.DataFrame(rows, schema=["key", "a", "b", "a_source", "b_source", "change"]).write_csv())
        return
    from rich.table import Table

    from medins.report.tables import short_source

    zh = language == "zh"
    table = Table(title=f"{pa.id} ↔ {pb.id}", title_justify="left")
    table.add_column("参数" if zh else "parameter")
    table.add_column(pa.id, overflow="fold")
    table.add_column(pb.id, overflow="fold")
    table.add_column("依据" if zh else "sources", style="dim", overflow="fold")
    for row in rows:
        sources = " | ".join(short_source(s) for s in (row["a_source"], row["b_source"]) if s)
        table.add_row(row["key"], row["a"], row["b"], sources)
    _console().print(table)


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
    example = " ".join(f"--set {m}=VALUE" for m in missing)
    detail = "; ".join(f"{m}: {sources.get(m, '')}" for m in missing)
    raise UsageError(
        f"Policy {compiled.id} lacks {names}: the source document does not give it ({detail}).",
        f"政策 {compiled.id} 缺少参数 {names}:原始文件没有给出。",
        hint_en=f"Supply it for a what-if run: {example}",
        hint_zh=f"可用 {example} 提供该参数后再计算。",
    )


@policy_app.command("list")
def policy_list(lang: LangOpt = None) -> None:
    """List the built-in policies with region, scheme and years."""
    from medins.report.policies import policy_list_table

    _console().print(policy_list_table(_lang(lang)))


@policy_app.command("show")
def policy_show(name: Annotated[str, typer.Argument(help="Policy file or built-in name.")], lang: LangOpt = None,
                set_: SetOpt = None) -> None:
    """Show a policy as readable tables: parameters with citations, rules, admissibility."""
    from medins.policy.loader import load_policy
    from medins.report.policies import policy_view

    _console().print(policy_view(load_policy(name, parse_sets(set_)), _lang(lang)))


@policy_app.command("check")
def policy_check(files: Annotated[list[Path], typer.Argument(help="Policy files to validate.")],
                 lang: LangOpt = None) -> None:
    """Validate policy files like a compiler: every problem, located, at once."""
    from rich.text import Text

    from medins.errors import PolicyError
    from medins.policy.loader import check_policy_file
    from medins.report.errors import render_issues

    language = _lang(lang)
    console = _console()
    failed: list = []
    for file in files:
        if not file.is_file():
            from medins.errors import UsageError

            raise UsageError(f"No such file: {file}", f"文件不存在:{file}")
        try:
            check_policy_file(str(file))
            console.print(Text(f"✓ {file}", style="green"))
        except PolicyError as exc:
            failed.extend(exc.issues)
    if failed:
        console.print(render_issues(failed, language))
        raise typer.Exit(2)


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
        console = Console(stderr=True)
        issues = getattr(exc, "issues", None)
        console.print(render_issues(issues, lang) if issues else render_error(exc, lang))
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
