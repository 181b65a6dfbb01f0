"""`medins batch`: settle a claims file, with progress and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medins.commands.common import LangOpt, PolicyOpt, SetFileOpt, SetOpt, console, lang_of, missing_hint, parse_sets


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
                                                   "(bounded memory; automatic for CSV/Parquet over 32 MB).")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes for a partitioned "
                                             "file (default: one per CPU, at most 4; 1 = none).")] = None,
    lang: LangOpt = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """Settle a file of claims; malformed rows go to a rejects file. Exit 1 when any row was rejected."""
    from medins.batch import run_batch
    from medins.errors import UsageError
    from medins.interrupts import Interrupted, stop_cleanly
    from medins.partitioned import default_jobs
    from medins.policy.loader import load_policy
    from medins.report.summary import summary_view

    language = lang_of(lang)
    if encoding not in ("auto", "utf-8", "utf8", "gbk", "gb18030"):
        raise UsageError(f"--encoding must be auto, utf-8, gbk or gb18030, not {encoding!r}",
                         f"--encoding 只能是 auto、utf-8、gbk 或 gb18030,而不是 {encoding!r}")
    compiled = load_policy(policy, parse_sets(set_), set_file)
    mapping = None
    if map_ is not None:
        from medins.claims.aliases import load_mapping

        mapping = load_mapping(map_)
    out = console()
    try:
        with stop_cleanly(), _progress(out, language) as step:
            result = run_batch(claims, compiled, output, rejects=rejects, encoding=encoding, mapping=mapping,
                               fmt=format, on_stage=step, partitions=partitions,
                               jobs=default_jobs() if jobs is None else jobs)
    except Interrupted as stopped:  # the run has already cleaned up on its way out (medins.interrupts)
        from rich.console import Console

        Console(stderr=True).print(stopped.message(language), highlight=False)
        raise typer.Exit(stopped.exit_code) from None
    out.print(summary_view(result, language))
    _print_missing(out, result, compiled, language)
    if result.rows_rejected:
        raise typer.Exit(1)


def _print_missing(out, result, compiled, language: str) -> None:
    """Rows rejected for a number the policy lacks: the same hint as ``calc`` (how to supply it)."""
    import polars as pl

    frame = result.settlement
    if "reasons" not in frame.columns or frame.height == 0:
        return
    codes = frame.select(pl.col("reasons").explode().drop_nulls().unique())["reasons"].to_list()
    missing = sorted({c.split(":", 1)[1] for c in codes if c.startswith("missing_parameter:")})
    if missing:
        hint_en, hint_zh = missing_hint(compiled, missing)
        out.print(hint_zh if language == "zh" else hint_en, style="yellow", soft_wrap=True)


def _progress(screen, lang: str):
    """A Rich progress bar of the batch, only on a terminal (logs and pipes stay clean)."""
    from contextlib import contextmanager

    @contextmanager
    def display():
        if not screen.is_terminal:
            yield lambda _name, _done: None
            return
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        names = {"read": ("读取", "reading"), "settle": ("结算", "settling"), "write": ("写出", "writing")}
        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                      console=screen, transient=True) as progress:
            task = progress.add_task("", total=1.0)

            def step(name: str, done: float) -> None:
                label = names.get(name, (name, name))
                progress.update(task, description=label[0] if lang == "zh" else label[1], completed=done)

            yield step

    return display()
