"""`medins compare`, `medins curve` and `medins policy diff`: the analyst views."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from medins.commands.common import (
    Category,
    EncodingOpt,
    LangOpt,
    MapOpt,
    PoliciesOpt,
    SetFileOpt,
    SetOpt,
    VisitType,
    Zone,
    console,
    lang_of,
    load_policies,
    output_path,
    yuan,
)


def compare(
    target: Annotated[Path, typer.Argument(metavar="BILL|CLAIMS", help="A bill (.json) or a claims file "
                                           "(.csv/.xlsx/.parquet).", exists=True, dir_okay=False, readable=True)],
    policy: PoliciesOpt,
    format: Annotated[Literal["table", "json", "csv"], typer.Option("--format", "-f", metavar="table|json|csv",
                                                                    help="Output format.")] = "table",
    xlsx: Annotated[Path | None, typer.Option("--xlsx", metavar="PATH", callback=output_path,
                                              help="Also write one sheet per view to this file.")] = None,
    rejects: Annotated[Path | None, typer.Option("--rejects", metavar="PATH", callback=output_path,
                                                 help="Also write the rejected input rows to this CSV.")] = None,
    bands: Annotated[str | None, typer.Option("--bands", metavar="YUAN,YUAN,…",
                                              help="Fee-band edges in yuan, e.g. 5000,10000,20000,50000.")] = None,
    ages: Annotated[str | None, typer.Option("--ages", metavar="AGE,AGE,…", help="Age-group edges, e.g. 18,60,70.")
                    ] = None,
    income: Annotated[str | None, typer.Option("--income", metavar="YUAN", callback=yuan,
                                               help="Disposable income (yuan) when the file has none.")] = None,
    encoding: EncodingOpt = "auto",
    map_: MapOpt = None,
    lang: LangOpt = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """The same bill or claims under several policies: side by side, fee bands, age groups, burden, reform.

    A claims file is read as `batch` reads it: the accounting line first, exit 1 when rows were rejected.
    """
    from medins.errors import UsageError

    language = lang_of(lang)
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
    from medins.report.summary import accounting_line, rejected_rows_table

    def edges(text: str | None, default: tuple[int, ...], name: str) -> tuple[int, ...]:
        if not text:
            return default
        try:
            values = tuple(int(x) for x in text.split(","))
        except ValueError:
            raise UsageError(f"{name}: expected numbers separated by commas, not {text!r}",
                             f"{name} 应为逗号分隔的数字:{text!r}") from None
        if list(values) != sorted(set(values)) or values[0] <= 0 or values[-1] > MAX_EDGE:
            raise UsageError(f"{name}: edges must ascend, from 1 up to {MAX_EDGE:,}: {text!r}",
                             f"{name} 分段边界必须递增,且在 1 到 {MAX_EDGE} 之间:{text!r}")
        return values

    fee_edges, age_edges = edges(bands, cmp.DEFAULT_BANDS, "--bands"), edges(ages, cmp.DEFAULT_AGES, "--ages")
    mapping = None
    if map_ is not None:
        from medins.claims.aliases import load_mapping

        mapping = load_mapping(map_)
    comparison = cmp.compare_file(policies, target, encoding=encoding, mapping=mapping)
    views = {
        "totals": cmp.totals(comparison),
        "fee_bands": cmp.by_fee_band(comparison, fee_edges),
        "age_groups": cmp.by_age_group(comparison, age_edges),
        "catastrophic": cmp.catastrophic(comparison, income_fen=to_fen(income) if income else None),
        "not_paid": cmp.not_paid(comparison),
        "reform": cmp.reform(comparison),
    }
    rejected = comparison.rejects.height
    claims = next(iter(comparison.settlements.values())).height if comparison.settlements else 0
    line = accounting_line(comparison.rows_read, rejected, claims, comparison.encoding, None, language)
    if xlsx is not None:
        views_to_xlsx(views, xlsx)
    if rejects is not None:
        from medins.claims.writers import write_rejects

        write_rejects(comparison.rejects, rejects)
    if format == "table":
        out.print(line)
        out.print(views_renderable(views, language))
        if rejected:
            out.print(rejected_rows_table(comparison.rejects, language))
    else:
        from rich.console import Console

        Console(stderr=True).print(line)  # stdout stays one JSON document / one CSV table
        if format == "json":
            import json

            sys.stdout.write(json.dumps(views_to_json(views), ensure_ascii=False, indent=2, default=str) + "\n")
        else:
            sys.stdout.write(views_to_csv(views))
    if rejected:
        raise typer.Exit(1)


#: Largest fee-band or age edge: far above any bill, and small enough that edges in fen stay exact.
MAX_EDGE = 100_000_000_000


def curve(
    policy: PoliciesOpt,
    from_: Annotated[str, typer.Option("--from", metavar="YUAN", callback=yuan, help="Smallest bill total.")] = "0",
    to: Annotated[str, typer.Option("--to", metavar="YUAN", callback=yuan, help="Largest bill total.")] = "100000",
    points: Annotated[int, typer.Option("--points", metavar="N", min=2, max=10_000,
                                        help="Number of totals on the grid.")] = 41,
    visit_type: Annotated[VisitType, typer.Option("--visit-type", metavar="TYPE", show_choices=False,
                                                  help="Visit type: inpatient, outpatient, …")] = "inpatient",
    zone: Annotated[Zone | None, typer.Option("--zone", metavar="ZONE", show_choices=False,
                                              help="Hospital zone, e.g. in_district.")] = "in_district",
    level: Annotated[int | None, typer.Option("--level", metavar="0-3", min=0, max=3, help="Hospital level.")] = 3,
    category: Annotated[Category | None, typer.Option("--category", metavar="NAME", show_choices=False,
                                                      help="Person category, e.g. low_income.")] = None,
    date_: Annotated[str, typer.Option("--date", metavar="YYYY-MM-DD",
                                       help="Service date (a date every policy is in force).")] = "2009-06-01",
    png: Annotated[Path | None, typer.Option("--png", metavar="PATH", callback=output_path,
                                             help="Also draw the chart to this PNG file.")] = None,
    format: Annotated[Literal["chart", "table", "json", "csv"], typer.Option(
        "--format", "-f", metavar="chart|table|json|csv", help="Output format.")] = "chart",
    lang: LangOpt = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """Fund share as a function of the bill total under each policy (terminal chart, table or PNG)."""
    from datetime import date
    from decimal import Decimal

    from medins.curve import curve as make_curve
    from medins.curve import grid
    from medins.errors import UsageError
    from medins.report.compare import export_frame

    language = lang_of(lang)
    if Decimal(to) <= Decimal(from_):
        raise UsageError(f"--to ({to}) must be larger than --from ({from_})", f"--to({to})必须大于 --from({from_})")
    try:
        date.fromisoformat(date_)
    except ValueError:
        raise UsageError(f"--date must be YYYY-MM-DD, not {date_!r}", f"--date 应为 YYYY-MM-DD,而不是 {date_!r}") from None
    totals = grid(Decimal(from_), Decimal(to), points)
    data = make_curve(load_policies(policy, set_, set_file), totals, visit_type=visit_type, zone=zone, level=level,
                      category=category, day=date_)
    if png is not None:
        from medins.report.plots import curve_png

        used = curve_png(data, png, language)
        if used != language:
            sys.stderr.write("No CJK font found: the PNG uses English labels (pip install 'medins[cjk]').\n")
    if format == "json":
        import json

        sys.stdout.write(json.dumps(export_frame(data).to_dicts(), ensure_ascii=False, indent=2) + "\n")
    elif format == "csv":
        sys.stdout.write(export_frame(data).write_csv())
    elif format == "table":
        from medins.report.plots import curve_table

        console().print(curve_table(data, language))
    else:
        from medins.report.plots import terminal_chart

        sys.stdout.write(terminal_chart(data, language) + "\n")


def policy_diff(
    a: Annotated[str, typer.Argument(metavar="A", help="First policy (name or path).")],
    b: Annotated[str, typer.Argument(metavar="B", help="Second policy (name or path).")],
    all_: Annotated[bool, typer.Option("--all", help="Also list parameters that are the same.")] = False,
    format: Annotated[Literal["table", "json", "csv"], typer.Option("--format", "-f", metavar="table|json|csv",
                                                                    help="Output format.")] = "table",
    lang: LangOpt = None,
) -> None:
    """Parameter-by-parameter differences between two policies, with each side's citation."""
    from medins.policy.diff import policy_diff as diff
    from medins.policy.loader import load_policy

    language = lang_of(lang)
    pa, pb = load_policy(a, cache=True), load_policy(b, cache=True)
    rows = diff(pa, pb, all_rows=all_)
    if format == "json":
        import json

        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    if format == "csv":
        import polars as pl

        sys.stdout.write(pl.DataFrame(rows, schema=["key", "a", "b", "a_source", "b_source", "change"]).write_csv())
        return
    from medins.report.policies import diff_table

    console().print(diff_table(pa.id, pb.id, rows, language))
