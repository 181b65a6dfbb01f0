"""`medins compare`, `medins curve` and `medins policy diff`: the analyst views."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medins.commands.common import LangOpt, SetFileOpt, SetOpt, console, lang_of, load_policies


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
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """The same bill or claims under several policies: side by side, fee bands, age groups, burden, reform."""
    from medins.errors import UsageError

    language = lang_of(lang)
    if format not in ("table", "json", "csv"):
        raise UsageError(f"--format must be table, json or csv, not {format!r}", "--format 只能是 table、json 或 csv")
    policies = load_policies(policy, set_, set_file)
    out = console()
    if target.suffix.lower() == ".json":
        from medins.claims.bill import load_bill
        from medins.compare import bill_side_by_side
        from medins.report.compare import bill_table

        results = bill_side_by_side(policies, load_bill(target), source=target.stem)
        if format == "json":
            import json

            sys.stdout.write(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
        else:
            out.print(bill_table(results, language))
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
        out.print(views_renderable(views, language))


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
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """Fund share as a function of the bill total under each policy (terminal chart, table or PNG)."""
    from decimal import Decimal, InvalidOperation

    from medins.curve import curve as make_curve
    from medins.curve import grid
    from medins.errors import UsageError

    language = lang_of(lang)
    try:
        totals = grid(Decimal(from_), Decimal(to), points)
    except (InvalidOperation, ValueError):
        raise UsageError(f"--from/--to must be amounts, not {from_!r}/{to!r}", "--from/--to 必须是金额") from None
    data = make_curve(load_policies(policy, set_, set_file), totals, visit_type=visit_type, zone=zone, level=level,
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
        console().print(table)
    else:
        from medins.report.plots import terminal_chart

        sys.stdout.write(terminal_chart(data, language) + "\n")


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

    language = lang_of(lang)
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
    console().print(table)


