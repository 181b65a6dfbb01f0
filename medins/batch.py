"""``medins batch``: a year of claims in, settlements and rejects out — exact, and losing no row.

Why a module of its own: the batch is the data team's contract. Every input row ends in exactly one
place (the settlement file, or the rejects file with its row number and a reason in words), the
outputs appear whole and together or not at all (temporaries, fsync, then rename; one run per output
at a time: ``medins.atomic.OutputFiles``), and the settlement itself is the one
engine (:func:`medins.engine.settle.settle`) that ``medins calc`` uses for a single bill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from medins import stagetimes
from medins.atomic import OutputFiles
from medins.claims.aliases import with_values
from medins.claims.readers import read_claims
from medins.claims.writers import write_rejects, write_table
from medins.engine.admissibility import REASON_COLUMNS, UNCHECKED
from medins.engine.context import ASSUMED
from medins.engine.settle import MONEY_OUTPUTS, OUTPUT_COLUMNS, settle
from medins.policy.plan import CompiledPolicy, declared_values  # not .checks/.compiled: no pydantic (the plan cache)

#: Claim facts kept next to the settlement for the summary (not written to the output file).
SUMMARY_FACTS = ("visit_type", "hospital_zone", "hospital_level")


@dataclass
class BatchResult:
    """What a batch did: counts that must add up, where the files went, and the settled table."""

    rows_read: int
    rows_rejected: int
    claims_settled: int
    shape: str
    encoding: str
    output: Path
    rejects: Path
    settlement: pl.DataFrame  # OUTPUT_COLUMNS (money in fen) + BATCH_KEEP
    rejects_table: pl.DataFrame
    seconds: float


#: A CSV or Parquet file above this size is settled partition by partition (all state is per person),
#: about this much file per partition, so peak memory stays well under 1 GiB whatever the file's size.
PARTITION_BYTES = 32 * 1024 * 1024
#: Up to this much CSV (about 1.4 million claims) settled in this process, the partitions are kept in
#: memory between the passes instead of spilled to Arrow files (a partition's claims take about 0.8 of
#: their CSV, its output 1.3). Worker processes always spill: pickling tables to them costs more.
IN_MEMORY_BYTES = 160 * 1024 * 1024


def _check_output(output: Path, fmt: str | None, rejects: Path, claims: Path) -> None:
    """Refuse, before reading a year of claims, outputs that could not be written or would destroy a file.

    Why the last checks: ``--rejects`` equal to ``-o`` would rename the rejects over the settlements,
    and an output equal to the claims file would replace the input; either loses rows for good.
    """
    from medins.claims.writers import _SUFFIXES
    from medins.errors import UsageError

    kind = fmt or _SUFFIXES.get(output.suffix.lower())
    if kind not in ("csv", "parquet", "xlsx"):
        raise UsageError(f"cannot tell the output format of {str(output)!r} (format {fmt!r})",
                         f"无法判断输出文件“{output}”的格式", hint_en="use -o FILE.csv, .parquet or .xlsx, or --format",
                         hint_zh="请使用 .csv、.parquet 或 .xlsx 文件名,或指定 --format")
    if rejects.suffix.lower() not in _SUFFIXES:
        raise UsageError(f"cannot tell the format of the rejects file {str(rejects)!r}",
                         f"无法判断拒收文件“{rejects}”的格式", hint_en="use --rejects FILE.csv, .parquet or .xlsx",
                         hint_zh="请使用 .csv、.parquet 或 .xlsx 作为 --rejects 文件名")
    for path in (output, rejects):
        if not path.parent.exists():
            raise UsageError(f"the output folder {str(path.parent)!r} does not exist",
                             f"输出目录“{path.parent}”不存在")
        if path.is_dir():
            raise UsageError(f"the output {str(path)!r} is a folder", f"输出路径“{path}”是一个目录",
                             hint_en="give a file name", hint_zh="请给出文件名")
    if output.resolve() == rejects.resolve():
        raise UsageError(f"--rejects and -o name the same file {str(output)!r}",
                         f"--rejects 与 -o 指向同一个文件“{output}”",
                         hint_en="give the rejects another name (default: OUT.rejects.csv)",
                         hint_zh="请为拒收文件另取一个名字(默认:OUT.rejects.csv)")
    for path in (output, rejects):
        if path.exists() and claims.exists() and path.samefile(claims):
            raise UsageError(f"the output {str(path)!r} is the claims file being read",
                             f"输出文件“{path}”就是正在读取的理赔文件",
                             hint_en="write to another file (-o, --rejects)", hint_zh="请写出到其他文件(-o、--rejects)")


def default_rejects_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.rejects.csv")


#: What the batch keeps of the engine's frame besides ``OUTPUT_COLUMNS``: the summary's facts, and the
#: reasons, unchecked checks and assumed defaults as the engine holds them (codes joined by ";", null: none), which
#: the output writes as they are (joining their lists again cost a fifth of the output table's CPU).
BATCH_KEEP = (*SUMMARY_FACTS, REASON_COLUMNS, UNCHECKED, ASSUMED)


def output_table(settlement: pl.DataFrame) -> pl.DataFrame:
    """The settlement (settled with ``keep=BATCH_KEEP``) as written: ``OUTPUT_COLUMNS``, reasons and
    unchecked checks and assumed defaults as codes joined by ";" (money still fen)."""
    columns = {c: pl.col(c) for c in OUTPUT_COLUMNS} | {
        "reasons": pl.col(REASON_COLUMNS).fill_null(""), "unchecked": pl.col(UNCHECKED).fill_null(""),
        "assumed": pl.col(ASSUMED).fill_null("")}
    return settlement.select(expr.alias(name) for name, expr in columns.items())


def _input_bytes(path: Path) -> int:
    """About how much CSV the file holds (a Parquet file is compressed: about a quarter of its CSV)."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    return size * 4 if path.suffix.lower() == ".parquet" else size


def auto_partitions(path: Path, jobs: int = 1) -> int | None:
    """How many person partitions a file needs (None: settle it in memory).

    With ``jobs`` workers, ``jobs`` partitions are in memory at once: each is made that much smaller.
    """
    if path.suffix.lower() not in (".csv", ".txt", ".parquet"):
        return None
    size = path.stat().st_size
    if path.suffix.lower() == ".parquet":
        size *= 4  # compressed: about four times as much as CSV
    return max(2, -(-size // PARTITION_BYTES)) * max(1, jobs) if size > PARTITION_BYTES else None


def run_batch(
    claims_path: str | Path,
    policy: CompiledPolicy,
    output: str | Path,
    *,
    rejects: str | Path | None = None,
    encoding: str = "auto",
    mapping: dict | None = None,
    fmt: str | None = None,
    on_stage: Callable[[str, float], None] | None = None,
    partitions: int | None = None,
    jobs: int = 1,
    before_commit: Callable[[pl.DataFrame], None] | None = None,
) -> BatchResult:
    """Read, settle and write; every input row ends in the output or in the rejects.

    ``on_stage(stage, done)`` is told the stage ("read", "settle", "write") and the fraction of the
    run done so far (a progress bar). ``partitions`` (or a CSV/Parquet file larger than
    :data:`PARTITION_BYTES`) settles the file in that many person-hash partitions, one at a time, so
    memory follows a partition rather than the file (``medins.partitioned``); the output is the same.
    ``jobs`` worker processes then settle partitions side by side (the same output again). As with any
    multiprocessing code, a script calling this with ``jobs`` > 1 runs it under ``if __name__ == "__main__":``.
    """
    start = time.perf_counter()
    output = Path(output)
    claims_path = Path(claims_path)
    rejects_path = Path(rejects) if rejects else default_rejects_path(output)
    _check_output(output, fmt, rejects_path, claims_path)  # before reading a year of claims, not after
    stage = on_stage or (lambda _name, _done: None)
    mapping = with_values(mapping, declared_values(policy.model))  # codes the policy declares are accepted
    if partitions is None:
        partitions = auto_partitions(claims_path, jobs)
    # rejects renamed first, settlements last: new settlements always stand beside their own rejects
    with OutputFiles([rejects_path, output]) as files:
        if partitions and partitions > 1:
            from medins.partitioned import run_partitioned

            return run_partitioned(claims_path, policy, output, rejects_path, partitions=int(partitions),
                                   encoding=encoding, mapping=mapping, fmt=fmt, stage=stage, start=start, jobs=jobs,
                                   in_memory=jobs <= 1 and _input_bytes(claims_path) <= IN_MEMORY_BYTES, files=files,
                                   before_commit=before_commit)
        stage("read", 0.0)
        with stagetimes.stage("read/validate"):
            read = read_claims(claims_path, encoding=encoding, mapping=mapping)
        stage("settle", 0.3)
        settlement = settle(policy, read.claims, read.items if read.shape == "items" else None, keep=BATCH_KEEP)
        stage("write", 0.85)
        with stagetimes.stage("write"):
            write_table(output_table(settlement), output, format=fmt, money_columns=MONEY_OUTPUTS,  # type: ignore[arg-type]
                        into=files.temp(output))
        with stagetimes.stage("finish"):
            write_rejects(read.rejects, rejects_path, into=files.temp(rejects_path))
            if before_commit is not None:  # the caller's last word (e.g. a missing parameter): nothing is replaced
                before_commit(settlement)
            files.commit()
    return BatchResult(
        rows_read=read.rows_read,
        rows_rejected=read.rejects.height,
        claims_settled=settlement.height,
        shape=read.shape,
        encoding=read.encoding,
        output=output,
        rejects=rejects_path,
        settlement=settlement,
        rejects_table=read.rejects,
        seconds=time.perf_counter() - start,
    )
