"""``medins batch``: a year of claims in, settlements and rejects out — exact, and losing no row.

Why a module of its own: the batch is the data team's contract. Every input row ends in exactly one
place (the settlement file, or the rejects file with its row number and a reason in words), the
outputs appear whole or not at all (temp file, then rename), and the settlement itself is the one
engine (:func:`medins.engine.settle.settle`) that ``medins calc`` uses for a single bill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from medins.claims.aliases import with_values
from medins.claims.readers import read_claims
from medins.claims.writers import write_rejects, write_table
from medins.engine.admissibility import REASON_COLUMNS
from medins.engine.settle import MONEY_OUTPUTS, OUTPUT_COLUMNS, settle
from medins.policy.checks import declared_values
from medins.policy.compiled import CompiledPolicy

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


def _check_output(output: Path, fmt: str | None) -> None:
    from medins.claims.writers import _SUFFIXES
    from medins.errors import UsageError

    kind = fmt or _SUFFIXES.get(output.suffix.lower())
    if kind not in ("csv", "parquet", "xlsx"):
        raise UsageError(f"cannot tell the output format of {str(output)!r} (format {fmt!r})",
                         f"无法判断输出文件“{output}”的格式", hint_en="use -o FILE.csv, .parquet or .xlsx, or --format",
                         hint_zh="请使用 .csv、.parquet 或 .xlsx 文件名,或指定 --format")
    if not output.parent.exists():
        raise UsageError(f"the output folder {str(output.parent)!r} does not exist",
                         f"输出目录“{output.parent}”不存在")


def default_rejects_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.rejects.csv")


#: What the batch keeps of the engine's frame besides ``OUTPUT_COLUMNS``: the summary's facts, and the
#: reasons as the engine holds them (codes joined by ";"), which the output writes as they are.
BATCH_KEEP = (*SUMMARY_FACTS, REASON_COLUMNS)


def output_table(settlement: pl.DataFrame) -> pl.DataFrame:
    """The settlement (settled with ``keep=BATCH_KEEP``) as written: ``OUTPUT_COLUMNS``, reasons and
    unchecked checks as codes joined by ";" (money still fen)."""
    columns = {c: pl.col(c) for c in OUTPUT_COLUMNS} | {
        "reasons": pl.col(REASON_COLUMNS).fill_null(""), "unchecked": pl.col("unchecked").list.join(";")}
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
    _check_output(output, fmt)  # before reading a year of claims, not after
    rejects_path = Path(rejects) if rejects else default_rejects_path(output)
    stage = on_stage or (lambda _name, _done: None)
    mapping = with_values(mapping, declared_values(policy.model))  # codes the policy declares are accepted
    if partitions is None:
        partitions = auto_partitions(claims_path, jobs)
    if partitions and partitions > 1:
        from medins.partitioned import run_partitioned

        return run_partitioned(claims_path, policy, output, rejects_path, partitions=int(partitions),
                               encoding=encoding, mapping=mapping, fmt=fmt, stage=stage, start=start, jobs=jobs,
                               in_memory=jobs <= 1 and _input_bytes(claims_path) <= IN_MEMORY_BYTES)
    stage("read", 0.0)
    read = read_claims(claims_path, encoding=encoding, mapping=mapping)
    stage("settle", 0.3)
    settlement = settle(policy, read.claims, read.items if read.shape == "items" else None, keep=BATCH_KEEP)
    stage("write", 0.85)
    write_table(output_table(settlement), output, format=fmt, money_columns=MONEY_OUTPUTS)  # type: ignore[arg-type]
    write_rejects(read.rejects, rejects_path)
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
