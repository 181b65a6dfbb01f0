"""`medins audit`: recompute an export's recorded settlements and show where they disagree with the policy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medins.commands.common import LangOpt, PolicyOpt, SetFileOpt, SetOpt, console, lang_of, parse_sets


def audit(
    claims: Annotated[Path, typer.Argument(help="Export with recorded settlements: CSV (UTF-8/GBK), XLSX or Parquet.",
                                           exists=True, dir_okay=False)],
    policy: PolicyOpt,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Differences file (.csv, .parquet or .xlsx): "
                                                "one row per differing field.")] = None,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Rejected rows (default with -o: "
                                                 "DIFF.rejects.csv).")] = None,
    tolerance: Annotated[str, typer.Option("--tolerance", help="Largest difference (yuan) still agreeing.")] = "0",
    claim: Annotated[str | None, typer.Option("--claim", help="Show one claim's full explain beside its record.")
                     ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Also write one sheet per view to this file.")] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="auto, utf-8, gbk or gb18030.")] = "auto",
    map_: Annotated[Path | None, typer.Option("--map", help="YAML mapping other headers/values to medins names.",
                                              exists=True, dir_okay=False)] = None,
    lang: LangOpt = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """Did each claim pay what the policy says? Exit 0 all agree, 1 differences or rejected rows, 2 user error."""
    from medins.audit import run_audit, summary_views, views_in_yuan, write_outputs
    from medins.batch import _check_output, default_rejects_path
    from medins.errors import UsageError
    from medins.money import MoneyError, to_fen
    from medins.policy.loader import load_policy

    language = lang_of(lang)
    if format not in ("table", "json", "csv"):
        raise UsageError(f"--format must be table, json or csv, not {format!r}",
                         f"--format 只能是 table、json 或 csv,而不是 {format!r}")
    if encoding not in ("auto", "utf-8", "utf8", "gbk", "gb18030"):
        raise UsageError(f"--encoding must be auto, utf-8, gbk or gb18030, not {encoding!r}",
                         f"--encoding 只能是 auto、utf-8、gbk 或 gb18030,而不是 {encoding!r}")
    try:
        tolerance_fen = to_fen(tolerance)
    except MoneyError:
        raise UsageError(f"--tolerance must be an amount in yuan with at most two decimals, not {tolerance!r}",
                         f"--tolerance 应为金额(元,最多两位小数),而不是 {tolerance!r}") from None
    if output is not None:
        rejects = rejects or default_rejects_path(output)
        _check_output(output, None, rejects, claims)
    for path in (xlsx, rejects):
        if path is not None and not path.parent.is_dir():
            raise UsageError(f"the output folder {str(path.parent)!r} does not exist", f"输出目录“{path.parent}”不存在")
    compiled = load_policy(policy, parse_sets(set_), set_file)
    mapping = None
    if map_ is not None:
        from medins.claims.aliases import load_mapping

        mapping = load_mapping(map_)
    result = run_audit(claims, compiled, encoding=encoding, mapping=mapping, tolerance=tolerance_fen)
    out = console()
    if claim is not None:
        from medins.report.audit import claim_view

        out.print(claim_view(result, claim, language, compiled))
        verdict = result.claims.filter(result.claims["claim_id"] == claim)["verdict"][0]
        raise typer.Exit(0 if verdict == "agree" else 1)
    views = summary_views(result)
    write_outputs(result, output, rejects)
    if xlsx is not None:
        from medins.report.compare import views_to_xlsx

        views_to_xlsx(views_in_yuan(views), xlsx)
    if format == "json":
        import json

        from medins.report.compare import views_to_json

        doc = views_to_json(views_in_yuan(views)) | {"compared": list(result.compared)}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")
    elif format == "csv":
        from medins.report.compare import views_to_csv

        sys.stdout.write(views_to_csv(views_in_yuan(views)))
    else:
        from medins.report.audit import audit_view

        out.print(audit_view(result, views, language))
    if not result.clean:
        raise typer.Exit(1)
