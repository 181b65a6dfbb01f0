"""``medins batch … --engine spark``: a claims file or folder through Spark, a folder of part files out.

Why these choices:

* **CSV** is cut into pieces of whole records by the driver with the very code of the out-of-core batch
  (``medins.partitioned._csv_pieces``: BOM, GBK/GB18030 decoded, quoted line breaks, the encoding
  guessed as there), and each piece is parsed by a Spark task with medins' reader; the driver reads
  the file once (on a cluster, give Parquet or a Hive table: they are read by the executors).
* **Parquet** is read by Spark; each row keeps its file and its index in the file (Spark's
  ``_metadata``), so rows are numbered as the local batch numbers them, files in name order.
* The output is a folder of part files (``row`` first, then the batch columns), in input-row order,
  written beside and renamed into place whole; the rejects are one CSV file, as in the local batch.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl

from medins.errors import InputError, MedinsError, UsageError

_CSV = (".csv", ".txt")
_PARQUET = (".parquet",)


def input_files(path: Path) -> tuple[str, list[Path]]:
    """("csv" | "parquet", the files): a file, or a folder's files in name order (hidden and ``_``
    files, such as Spark's ``_SUCCESS``, skipped); one kind per run."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_"))) \
        if path.is_dir() else [path]
    kinds = {"csv" if f.suffix.lower() in _CSV else "parquet" if f.suffix.lower() in _PARQUET else f.suffix
             for f in files}
    if not files:
        raise UsageError(f"the folder {str(path)!r} holds no claims files", f"目录“{path}”中没有理赔文件",
                         hint_en="give .csv, .txt or .parquet files", hint_zh="请提供 .csv、.txt 或 .parquet 文件")
    if len(kinds) > 1 or not kinds <= {"csv", "parquet"}:
        raise UsageError(f"--engine spark reads CSV or Parquet files of one kind, not {sorted(kinds)}",
                         f"--engine spark 只读取同一种 CSV 或 Parquet 文件,而不是 {sorted(kinds)}",
                         hint_en="convert XLSX to CSV, or settle it without --engine spark",
                         hint_zh="请把 XLSX 转成 CSV,或不加 --engine spark 结算")
    return kinds.pop(), files


def output_format(output: Path, fmt: str | None) -> str:
    kind = fmt or {".csv": "csv", ".parquet": "parquet"}.get(output.suffix.lower())
    if kind not in ("csv", "parquet"):
        raise UsageError(f"--engine spark writes a folder of CSV or Parquet part files, not {fmt or output.name!r}",
                         f"--engine spark 输出 CSV 或 Parquet 分片文件目录,而不是“{fmt or output.name}”",
                         hint_en="use -o OUT.csv or OUT.parquet (a folder), or --format csv|parquet",
                         hint_zh="请使用 -o OUT.csv 或 OUT.parquet(目录),或 --format csv|parquet")
    if not output.parent.exists():
        raise UsageError(f"the output folder {str(output.parent)!r} does not exist",
                         f"输出目录“{output.parent}”不存在")
    return kind


def check_targets(claims: Path, output: Path, rejects: Path) -> None:
    """Refuse, before Spark starts, outputs that would destroy the input or each other (as ``run_batch``):
    the rejects are one CSV, Parquet or XLSX file; neither output is the claims file or folder, or inside it."""
    from medins.claims.writers import _SUFFIXES

    if rejects.suffix.lower() not in _SUFFIXES or rejects.is_dir():
        raise UsageError(f"cannot tell the format of the rejects file {str(rejects)!r}",
                         f"无法判断拒收文件“{rejects}”的格式", hint_en="use --rejects FILE.csv, .parquet or .xlsx",
                         hint_zh="请使用 .csv、.parquet 或 .xlsx 作为 --rejects 文件名")
    if output.resolve() == rejects.resolve():
        raise UsageError(f"--rejects and -o name the same path {str(output)!r}",
                         f"--rejects 与 -o 指向同一路径“{output}”",
                         hint_en="give the rejects another name (default: OUT.rejects.csv)",
                         hint_zh="请为拒收文件另取一个名字(默认:OUT.rejects.csv)")
    source = claims.resolve()
    for path in (output, rejects):
        if path.resolve() == source or source in path.resolve().parents:
            raise UsageError(f"the output {str(path)!r} is (or is inside) the claims being read",
                             f"输出“{path}”就是(或位于)正在读取的理赔数据",
                             hint_en="write somewhere else (-o, --rejects)", hint_zh="请写出到其他位置(-o、--rejects)")


def run_spark_batch(claims_path: str | Path, policy, output: str | Path, *, rejects: str | Path | None = None,
                    encoding: str = "auto", mapping: dict | None = None, fmt: str | None = None,
                    on_stage: Callable[[str, float], None] | None = None, partitions: int | None = None,
                    master: str = "local[2]", before_commit: Callable[[pl.DataFrame], None] | None = None):
    """Read, settle and write through Spark; the same counts, rows and rejects as ``run_batch``.

    ``before_commit(summary)`` may stop the run (raise) after the settlement, before any output is renamed
    into place; it gets the summary table (its ``reasons`` column lists each group's reason codes).
    """
    from medins.atomic import OutputFiles
    from medins.batch import BatchResult, default_rejects_path
    from medins.claims.aliases import with_values
    from medins.claims.parse import REJECTS_SCHEMA
    from medins.claims.writers import write_rejects
    from medins.policy.checks import declared_values
    from medins.spark import session, settle_parsed, summary_table

    start = time.perf_counter()
    claims_path, output = Path(claims_path), Path(output)
    kind = output_format(output, fmt)
    rejects_path = Path(rejects) if rejects else default_rejects_path(output)
    stage = on_stage or (lambda _name, _done: None)
    check_targets(claims_path, output, rejects_path)
    kind_in, files = input_files(claims_path)
    mapping = with_values(mapping, declared_values(policy.model)) if policy is not None else mapping  # as run_batch
    # rejects renamed first, the settlement folder last (as run_batch); one run per output
    with OutputFiles([rejects_path, output]) as outputs:
        stage("read", 0.0)
        spark = session(master)
        try:
            if kind_in == "csv":
                parsed, label = _csv_parsed(spark, files, encoding, mapping)
            else:
                parsed, label = _parquet_parsed(spark, files, mapping, str(claims_path)), "utf-8"
            stage("settle", 0.3)
            result = settle_parsed(parsed, policy, partitions=partitions, fmt=kind)
            stage("write", 0.85)
            folder = outputs.scratch() / output.name
            _write_folder(result.settled, folder, kind)
            rejects_table = pl.from_arrow(result.rejects.orderBy("row").toArrow()).cast(REJECTS_SCHEMA)
            summary = summary_table(result)
            result.unpersist()
        except MedinsError:
            raise
        except Exception as exc:
            raise _job_error(exc) from None
        assert isinstance(rejects_table, pl.DataFrame)
        write_rejects(rejects_table, rejects_path, into=outputs.temp(rejects_path))
        if before_commit is not None:
            before_commit(summary)
        outputs.commit()
        _swap_in(folder, output)
    return BatchResult(rows_read=result.rows_read, rows_rejected=rejects_table.height,
                       claims_settled=int(summary["_n"].sum()) if summary.height else 0, shape="claims",
                       encoding=label, output=output, rejects=rejects_path, settlement=summary,
                       rejects_table=rejects_table, seconds=time.perf_counter() - start)


def _csv_parsed(spark, files: list[Path], encoding: str, mapping: dict | None):
    """CSV files → pieces cut by the driver (one Spark row each) → parsed by ``tasks.parse_pieces``."""
    from functools import partial

    from medins.claims.readers import csv_shape, read_csv_piece
    from medins.partitioned import _csv_pieces, _NotUtf8
    from medins.spark import items_refused, tasks
    from medins.spark.schemas import arrow_schema, parsed_schema

    rows: list[tuple[int, bytes, str, str]] = []
    first_label = None
    for file in files:
        try:
            pieces = list(_csv_pieces(file, encoding))
        except _NotUtf8:  # guessed UTF-8 from the start, and a later piece is not: GB18030, as the local batch
            pieces = list(_csv_pieces(file, "gb18030"))
        header = pieces[0][0][: pieces[0][0].find(b"\n") + 1]
        if csv_shape(header, mapping) == "items":
            raise items_refused()
        read_csv_piece(header, row_offset=0, encoding=pieces[0][1], mapping=mapping, file=str(file))  # headers
        first_label = first_label or pieces[0][1]
        rows.extend((len(rows) + i, data, label, str(file)) for i, (data, label, _done) in enumerate(pieces))
    frame = spark.createDataFrame(spark.sparkContext.parallelize(rows, max(1, len(rows))),
                                  f"{tasks.CHUNK} long, data binary, label string, file string")
    parse = partial(tasks.parse_pieces, mapping=mapping, schema=arrow_schema(parsed_schema()))
    return frame.mapInArrow(parse, parsed_schema()), first_label or "utf-8"


def _parquet_parsed(spark, files: list[Path], mapping: dict | None, label: str):
    """Parquet files read by Spark, each row with (file in name order, index in the file)."""
    from pyspark.sql import functions as F

    from medins.spark import parse_cells, tasks

    try:
        table = spark.read.parquet(*(str(f.resolve()) for f in files))
    except Exception as exc:
        raise InputError(message_en=f"cannot read the Parquet input: {_first_line(exc)}",
                         message_zh=f"无法读取 Parquet 文件:{_first_line(exc)}", file=label) from None
    headers = list(table.columns)
    located = table.select(*(F.col(f"`{h}`") for h in headers), F.col("_metadata.file_path").alias("_file"),
                           F.col("_metadata.row_index").alias(tasks.INDEX))
    paths = sorted(r["_file"] for r in located.select("_file").distinct().collect())
    chunk_of = F.broadcast(spark.createDataFrame(list(enumerate(paths)) or [(0, "")], f"{tasks.CHUNK} long, _file string"))
    cells = located.join(chunk_of, "_file").drop("_file")
    return parse_cells(cells, headers, mapping=mapping, file=label, ordered=True)


def _write_folder(settled, folder: Path, kind: str) -> None:
    """The output rows in input-row order as part files in ``folder`` (a scratch folder beside the output)."""
    from medins.engine.settle import OUTPUT_COLUMNS

    writer = settled.select("row", *OUTPUT_COLUMNS).orderBy("row").write.mode("error")
    if kind == "csv":
        writer.csv(str(folder), header=True, quote='"', escape='"', nullValue="", encoding="UTF-8")
    else:
        writer.parquet(str(folder))


def _swap_in(folder: Path, output: Path) -> None:
    """Rename the written ``folder`` to ``output``; an existing output is moved aside first and removed only
    once the new one is in place (a folder cannot be renamed over a folder)."""
    from medins.atomic import fsync_path, writing

    with writing(output.parent):
        old = None
        if output.exists() or output.is_symlink():
            old = output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(output, old)
        try:
            os.replace(folder, output)
        except BaseException:
            if old is not None:
                os.replace(old, output)
            raise
        fsync_path(output.parent, folder=True)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _job_error(exc: BaseException) -> MedinsError:
    """A failed Spark job as a medins error (exit 2, no JVM stack trace on the user's screen)."""
    text = str(exc)
    lines = [line.strip() for line in text.splitlines() if "Error" in line or "Exception" in line]
    said = lines[-1] if lines else _first_line(exc)
    return UsageError(f"the Spark job failed: {said}", f"Spark 作业失败:{said}",
                      hint_en="see the Spark logs; the same input can be settled without --engine spark",
                      hint_zh="请查看 Spark 日志;同一输入也可以不加 --engine spark 结算")
