"""`medins batch`: settle a claims file, with progress and a summary."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
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
)


def batch(
    claims: Annotated[Path, typer.Argument(metavar="CLAIMS", help="Claims file: CSV (UTF-8/GBK), XLSX or Parquet "
                                           "(--engine spark: also a folder of CSV or Parquet files).",
                                           exists=True, readable=True)],
    policy: PolicyOpt,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", callback=_output_or_folder,
                                         help="Settlement file (.csv, .parquet or .xlsx; --engine spark: a folder "
                                         "of part files).")],
    rejects: Annotated[Path | None, typer.Option("--rejects", metavar="PATH", callback=output_path,
                                                 help="Rejected rows (default: OUT.rejects.csv).")] = None,
    encoding: EncodingOpt = "auto",
    map_: MapOpt = None,
    format: Annotated[Literal["csv", "parquet", "xlsx"] | None, typer.Option(
        "--format", metavar="csv|parquet|xlsx", help="Output format (default: from -o).")] = None,
    partitions: Annotated[int | None, typer.Option("--partitions", metavar="N", min=1, max=100_000,
                                                   help="Settle in N person-hash partitions (bounded memory; "
                                                   "automatic for CSV/Parquet over 32 MB).")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", metavar="N", min=1, max=64, help="Worker processes "
                                             "for a partitioned file (default: one per two CPUs, at most 4; 1 = none).")
                    ] = None,
    engine: Annotated[Literal["local", "spark"], typer.Option(
        "--engine", metavar="local|spark", help="spark: settle on Apache Spark (pip install \"medins[spark]\", "
        "Java 17 or 21).")] = "local",
    master: Annotated[str | None, typer.Option("--master", metavar="URL", help="Spark master (--engine spark; "
                                               "default local[2]).")] = None,
    lang: LangOpt = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """Settle a file of claims; malformed rows go to a rejects file. Exit 1 when any row was rejected."""
    with _imports_out_of_gc_sight():
        from medins.batch import run_batch
        from medins.interrupts import Interrupted, stop_cleanly
        from medins.partitioned import default_jobs
        from medins.policy.loader import load_policy
        from medins.report.summary import summary_view
        from medins.stagetimes import since_start, stage

    since_start("start-up")  # the interpreter, imports and the command line, up to here (MEDINS_STAGE_TIMES)
    language = lang_of(lang)
    if engine == "local":
        _local_paths(claims, output, master)
    else:
        from medins.spark import check_master, require_spark

        master = check_master(master or "local[2]")
        require_spark()  # before the policy is compiled and the JVM started

    with stage("policy"):
        # the local engine settles from the plan entry (the models as plain fields: no pydantic, no schema
        # classes); Spark, whose JVM start dwarfs that, keeps the whole compiled policy as before
        compiled = load_policy(policy, parse_sets(set_), set_file, cache=True, plan=engine == "local")
        mapping = None
        if map_ is not None:
            from medins.claims.aliases import load_mapping

            mapping = load_mapping(map_)
    out = console()
    try:
        with stop_cleanly(), _progress(out, language) as step:
            if engine == "spark":
                from medins.spark.batch import run_spark_batch

                result = run_spark_batch(claims, compiled, output, rejects=rejects, encoding=encoding,
                                         mapping=mapping, fmt=format, on_stage=step, partitions=partitions,
                                         master=master or "local[2]", before_commit=lambda summary: _refuse_missing(summary,
                                                                                                     compiled))
            else:
                result = run_batch(claims, compiled, output, rejects=rejects, encoding=encoding, mapping=mapping,
                                   fmt=format, on_stage=step, partitions=partitions,
                                   jobs=default_jobs() if jobs is None else jobs,
                                   before_commit=lambda settled: _refuse_missing(settled, compiled))
    except Interrupted as stopped:  # the run has already cleaned up on its way out (medins.interrupts)
        from rich.console import Console

        Console(stderr=True).print(stopped.message(language), highlight=False)
        raise typer.Exit(stopped.exit_code) from None
    with stage("summary"):
        out.print(summary_view(result, language))
    if result.rows_rejected:
        raise typer.Exit(1)


@contextmanager
def _imports_out_of_gc_sight() -> Iterator[None]:
    """Import the engine (Polars, the policy models) with the cyclic collector off, then freeze what exists.

    Why: while modules load, CPython runs a collection every 700 allocations, each walking the objects
    created so far (a tenth of the start-up's CPU, for garbage that is not there); and each full collection
    while a year of claims is settled would walk them all again. ``gc.freeze`` moves them out of its
    sight: the batch's own objects are still collected as before.
    """
    if not gc.isenabled():  # someone else (a test, an embedding program) decides
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _output_or_folder(value: Path | None) -> Path | None:
    """``output_path``, except that an existing folder passes here: ``--engine spark`` replaces its output
    folder; the local engine refuses a folder in :func:`_local_paths`."""
    if value is not None and value.is_dir():
        output_path(value.with_name(f"{value.name}.part"))  # its folder exists and is writable
        return value
    return output_path(value)


def _local_paths(claims: Path, output: Path, master: str | None) -> None:
    """The local engine reads one file (an output folder is refused by ``run_batch``, like any unwritable output)
    and has no Spark master."""
    from medins.errors import UsageError

    if master is not None:
        raise UsageError("--master is a Spark option: add --engine spark", "--master 是 Spark 选项:请加 --engine spark")

    if claims.is_dir():
        raise UsageError(f"{str(claims)!r} is a folder: the local engine reads one file",
                         f"“{claims}”是目录:本地引擎只读取单个文件", hint_en="give a file, or add --engine spark",
                         hint_zh="请给出一个文件,或加 --engine spark")


def _refuse_missing(settled, compiled) -> None:
    """Claims that need a number the policy lacks stop the run as they stop ``calc``: exit 2, how to supply it,
    nothing written (``run_batch`` calls this before it renames any output into place)."""
    import polars as pl

    if "reasons" not in settled.columns or settled.height == 0:
        return
    codes = settled.select(pl.col("reasons").explode().drop_nulls().unique())["reasons"].to_list()
    missing = sorted({c.split(":", 1)[1] for c in codes if c.startswith("missing_parameter:")})
    if missing:
        raise missing_parameters(compiled, missing)


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
