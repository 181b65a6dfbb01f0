"""`medins audit`: recompute an export's recorded settlements and show where they disagree with the policy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from medins.commands.common import (
    EncodingOpt,
    LangOpt,
    MapOpt,
    PolicyOpt,
    SetFileOpt,
    SetOpt,
    console,
    lang_of,
    missing_parameters,
    output_path,
    parse_sets,
    yuan,
)


def audit(
    claims: Annotated[Path, typer.Argument(metavar="CLAIMS", help="Export with recorded settlements: CSV (UTF-8/GBK), "
                                           "XLSX or Parquet.", exists=True, dir_okay=False, readable=True)],
    policy: PolicyOpt,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="PATH", callback=output_path,
                                                help="Differences file (.csv, .parquet or .xlsx): one row per "
                                                "differing field.")] = None,
    rejects: Annotated[Path | None, typer.Option("--rejects", metavar="PATH", callback=output_path,
                                                 help="Rejected rows (default with -o: DIFF.rejects.csv).")] = None,
    tolerance: Annotated[str, typer.Option("--tolerance", metavar="YUAN", callback=yuan,
                                           help="Largest difference (yuan) still agreeing (default: exact).")] = "0",
    claim: Annotated[str | None, typer.Option("--claim", metavar="ID",
                                              help="Show one claim's full explain beside its record.")] = None,
    format: Annotated[Literal["table", "json", "csv"], typer.Option("--format", "-f", metavar="table|json|csv",
                                                                    help="Output format.")] = "table",
    xlsx: Annotated[Path | None, typer.Option("--xlsx", metavar="PATH", callback=output_path,
                                              help="Also write one sheet per view to this file.")] = None,
    encoding: EncodingOpt = "auto",
    map_: MapOpt = None,
    lang: LangOpt = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """Did each claim pay what the policy says? Exit 0 all agree, 1 differences or rejected rows, 2 user error."""
    from medins.audit import run_audit, summary_views, views_in_yuan, write_outputs
    from medins.batch import _check_output, default_rejects_path
    from medins.money import to_fen
    from medins.policy.loader import load_policy

    language = lang_of(lang)
    tolerance_fen = to_fen(tolerance)  # checked by the option's callback
    if output is not None:
        rejects = rejects or default_rejects_path(output)
        _check_output(output, None, rejects, claims)
    compiled = load_policy(policy, parse_sets(set_), set_file, cache=True)
    mapping = None
    if map_ is not None:
        from medins.claims.aliases import load_mapping

        mapping = load_mapping(map_)
    result = run_audit(claims, compiled, encoding=encoding, mapping=mapping, tolerance=tolerance_fen)
    if result.missing:  # as calc and batch: a number the policy lacks stops the run, nothing written
        raise missing_parameters(compiled, list(result.missing))
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
