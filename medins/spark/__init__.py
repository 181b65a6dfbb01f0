"""The same engine on Apache Spark: claims read, validated and settled per partition, exact to the fen.

Why it equals the local batch: every piece of year-to-date state belongs to one person (README,
"Beyond one machine"), so claims repartitioned by ``person_id`` settle independently with the very
engine ``medins batch`` uses (:func:`medins.engine.settle.settle`), each partition's claims in input
order. Reading is medins' own reader per part of the input (the same reject reasons); money crosses
Spark as Int64 fen (claims) and ``Decimal(18, 2)`` yuan (settlements), never as a double.

    from medins.api import load_policy
    from medins.spark import session, settle

    spark = session("local[4]")
    claims = spark.table("ods.yb_claims")            # raw cells: canonical or Chinese headers
    settlements, rejects = settle(claims, load_policy("suqian-2007"), row="row_no")

Install with ``pip install "medins[spark]"`` (pyspark 4, which needs Java 17 or 21).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from medins.errors import UsageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from medins.policy.compiled import CompiledPolicy

#: Claims per settle partition when the caller does not choose: the engine is fastest on a few hundred
#: thousand claims at a time (medins.partitioned), and a partition of this size needs about 0.5 GB.
CLAIMS_PER_PARTITION = 250_000
#: Arrow batch size between the JVM and the Python workers (Spark's default, 10,000, costs a reader
#: call per 10,000 cells; the reader is faster on larger tables).
ARROW_BATCH_ROWS = 100_000


def require_spark() -> None:
    """Raise a clear usage error when pyspark or Java is missing (instead of an ImportError or a JVM
    launch failure deep inside Spark)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise UsageError("--engine spark needs pyspark: pip install \"medins[spark]\"",
                         "--engine spark 需要 pyspark:pip install \"medins[spark]\"",
                         hint_en="or run without --engine spark", hint_zh="或不加 --engine spark 运行") from None
    if not java_available():
        raise UsageError("--engine spark needs Java 17 or 21 (no `java` on PATH and no JAVA_HOME)",
                         "--engine spark 需要 Java 17 或 21(PATH 中没有 java,也未设置 JAVA_HOME)",
                         hint_en="install a JRE, e.g. apt-get install openjdk-17-jre-headless",
                         hint_zh="请安装 JRE,例如 apt-get install openjdk-17-jre-headless")


#: Spark master URLs (Spark's own forms): local[N], local[*], local[N,F], spark://, yarn, k8s://, mesos://.
_MASTER = re.compile(r"local(\[(\*|[1-9]\d*)(,\s*[1-9]\d*)?\])?|yarn|(spark|k8s|mesos)://\S+")


def check_master(master: str) -> str:
    """``master`` if it is a Spark master URL, else a usage error before the JVM starts."""
    if not _MASTER.fullmatch(master.strip()):
        raise UsageError(f"--master {master!r} is not a Spark master URL",
                         f"--master“{master}”不是 Spark master 地址",
                         hint_en="local[N], local[*], spark://HOST:PORT, yarn or k8s://https://HOST:PORT",
                         hint_zh="local[N]、local[*]、spark://HOST:PORT、yarn 或 k8s://https://HOST:PORT")
    return master.strip()


def java_available() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and (Path(home) / "bin" / "java").exists()))


def session(master: str = "local[2]", app: str = "medins") -> SparkSession:
    """A Spark session for medins (the active one if there is one; its master then wins).

    Why the settings: workers must import this very medins (its folder joins ``PYTHONPATH``, which
    local workers inherit; a cluster gets the wheel instead, see README), Arrow batches are larger
    than Spark's default, and the console keeps only errors (the summary is medins' output).
    """
    require_spark()
    from pyspark.sql import SparkSession

    root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    builder = (SparkSession.builder.master(master).appName(app)
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
               .config("spark.sql.session.timeZone", "UTC"))
    if master.startswith("local"):  # a few cores: Spark's 200 shuffle partitions would be 200 Python tasks each time
        builder = builder.config("spark.sql.shuffle.partitions", str(2 * local_cores(master)))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def local_cores(master: str) -> int:
    """The N of ``local[N]`` (``local[*]``: this machine's CPUs; ``local``: 1)."""
    inside = master[master.find("[") + 1: master.find("]")] if "[" in master else "1"
    if inside.split(",")[0].strip() == "*":
        return os.cpu_count() or 1
    try:
        return max(1, int(inside.split(",")[0]))
    except ValueError:
        return 1


@dataclass
class Settled:
    """A settlement on Spark: the output rows (with the summary's columns), the rejects, and the counts.

    ``settled`` and ``rejects`` are persisted (read twice: written and summarised); ``unpersist()``
    frees them.
    """

    settled: DataFrame  # row, OUTPUT_COLUMNS, then tasks.SUMMARY_COLUMNS
    rejects: DataFrame  # REJECTS_SCHEMA
    rows_read: int
    parsed: DataFrame

    def unpersist(self) -> None:
        for frame in (self.settled, self.parsed):
            frame.unpersist()


def settle(claims: DataFrame, policy: CompiledPolicy, *, row: str | None = None, mapping: dict | None = None,
           partitions: int | None = None, file: str = "") -> tuple[DataFrame, DataFrame]:
    """Settle a Spark DataFrame of claims → ``(settlements, rejects)``, both Spark DataFrames.

    ``claims`` holds raw cells as a claims file would (canonical or Chinese headers, ``mapping`` as
    ``--map``; text or typed columns). ``row`` names a column of 1-based input row numbers; without
    it rows are numbered in the DataFrame's order (partition by partition). ``settlements`` has
    ``row``, then the batch output columns (money ``Decimal(18, 2)``); ``rejects`` has the input
    ``row``, ``claim_id``, ``reason``, the messages and the raw cells, as the batch rejects file.
    """
    from medins.engine.settle import OUTPUT_COLUMNS

    result = settle_claims(claims, policy, row=row, mapping=mapping, partitions=partitions, file=file)
    return result.settled.select("row", *OUTPUT_COLUMNS), result.rejects


def settle_claims(claims: DataFrame, policy: CompiledPolicy, *, row: str | None = None, mapping: dict | None = None,
                  partitions: int | None = None, file: str = "", fmt: str = "parquet") -> Settled:
    """:func:`settle` with everything the CLI needs (summary columns, the count of rows read)."""
    from pyspark.sql import functions as F

    from medins.claims.aliases import with_values
    from medins.policy.checks import declared_values
    from medins.spark import tasks

    mapping = with_values(mapping, declared_values(policy.model))  # the policy's own codes, as run_batch reads them
    headers = [c for c in claims.columns if c != row]
    cells = claims
    if row is not None:
        cells = claims.withColumns({tasks.CHUNK: F.lit(0).cast("long"), tasks.INDEX: F.col(row).cast("long") - 1})
    parsed = parse_cells(cells, headers, mapping=mapping, file=file, ordered=row is not None)
    return settle_parsed(parsed, policy, partitions=partitions, fmt=fmt)


def parse_cells(cells: DataFrame, headers: list[str], *, mapping: dict | None, file: str, ordered: bool) -> DataFrame:
    """Cells → parsed rows by medins' reader, per Arrow batch (``tasks.parse_cells``); ``ordered``: the
    cells carry ``_chunk`` and ``_index`` (else a partition is a chunk, its rows in the order they come)."""
    from medins.spark import tasks
    from medins.spark.schemas import arrow_schema, parsed_schema

    check_headers(headers, mapping, file)
    parse = partial(tasks.parse_cells, headers=headers, mapping=mapping, file=file,
                    schema=arrow_schema(parsed_schema()), ordered=ordered)
    return cells.mapInArrow(parse, parsed_schema())


def check_headers(headers: list[str], mapping: dict | None, file: str) -> None:
    """A missing required column (or a bad mapping) is told once, here, before any Spark job; line-item
    tables are refused (they are grouped into claims across the whole file)."""
    from medins.claims.readers import read_frame_piece

    read = read_frame_piece(pl.DataFrame(schema=dict.fromkeys(headers, pl.String)), row_offset=0,
                            mapping=mapping, file=file)
    if read.shape == "items":
        raise items_refused()


def items_refused() -> UsageError:
    """Line items are grouped into claims by ``claim_id`` across the whole input: not per partition."""
    return UsageError("line-item claims (one row per fee line) are not settled on Spark yet",
                      "按明细行(每行一条费用)的理赔数据暂不支持在 Spark 上结算",
                      hint_en="settle them with the local engine (without --engine spark)",
                      hint_zh="请使用本地引擎结算(不加 --engine spark)")


def settle_parsed(parsed: DataFrame, policy: CompiledPolicy, *, partitions: int | None, fmt: str) -> Settled:
    """Parsed rows (``tasks.PARSED_COLUMNS``) → numbered, partitioned by person and settled.

    No sort within a partition is needed: the engine orders each person's claims by (date, ``row``)
    itself (``medins.engine.settle.claim_order``), whatever order the shuffle delivered them in.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from medins.claims.parse import CLAIMS_SCHEMA, REJECTS_SCHEMA
    from medins.spark import tasks
    from medins.spark.schemas import arrow_schema, settled_schema

    spark = parsed.sparkSession
    parsed = parsed.persist(StorageLevel.MEMORY_AND_DISK)
    counts = (parsed.where(F.col("_kind") == tasks.COUNT).groupBy(tasks.CHUNK)
              .agg(F.sum("_records").alias("records"), F.sum("_rows_read").alias("rows_read")).collect())
    offsets, start = [], 0
    for chunk in sorted(counts, key=lambda r: r[tasks.CHUNK]):
        offsets.append((chunk[tasks.CHUNK], start))
        start += chunk["records"]
    rows_read = sum(int(c["rows_read"]) for c in counts)
    offset_table = F.broadcast(spark.createDataFrame(offsets or [(0, 0)], f"{tasks.CHUNK} long, _offset long"))
    numbered = parsed.where(F.col("_kind") != tasks.COUNT).join(offset_table, tasks.CHUNK).withColumn(
        "row", F.col("_offset") + F.col(tasks.INDEX) + 1)
    claims = numbered.where(F.col("_kind") == tasks.CLAIM).select(*CLAIMS_SCHEMA)
    rejects = numbered.where(F.col("_kind") == tasks.REJECT).select(*REJECTS_SCHEMA)
    if partitions is None:
        partitions = max(spark.sparkContext.defaultParallelism, -(-start // CLAIMS_PER_PARTITION))
    task = partial(tasks.settle_partition, policy=policy, fmt=fmt, schema=arrow_schema(settled_schema()))
    # each partition holds whole persons; the engine orders a person's claims by date, then input ``row``
    settled = (claims.repartition(partitions, "person_id")
               .mapInArrow(task, settled_schema()).persist(StorageLevel.MEMORY_AND_DISK))
    return Settled(settled=settled, rejects=rejects, rows_read=rows_read, parsed=parsed)


def summary_table(result: Settled) -> pl.DataFrame:
    """The batch summary's aggregate (``medins.partitioned._reaggregate``), summed by Spark in fen."""
    from pyspark.sql import functions as F

    from medins.partitioned import _KEYS, _reaggregate

    rows = (result.settled.groupBy(*_KEYS).agg(
        F.count(F.lit(1)).alias("_n"), F.sum("_medfee").alias("medfee_sumamt"),
        F.sum("_fund").alias("fund_pay_sumamt"), F.sum("_psn").alias("psn_part_amt")).collect())
    schema: dict[str, Any] = dict.fromkeys(_KEYS, pl.String) | {
        "_n": pl.Int64, "medfee_sumamt": pl.Int64, "fund_pay_sumamt": pl.Int64, "psn_part_amt": pl.Int64}
    frame = pl.DataFrame([r.asDict() for r in rows], schema=schema, orient="row") if rows else pl.DataFrame(
        schema=schema)
    return _reaggregate(frame)
