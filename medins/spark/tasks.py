"""What runs inside Spark's Python workers: read a part of the claims, settle a person partition.

Why a module without pyspark imports at its top: the functions are pickled by reference, and a worker
imports this module (and medins' reader and engine) to run them; nothing here decides anything the
local batch does not — the reader is ``medins.claims.readers``, the engine ``medins.engine.settle``.

Rows are numbered in two steps, because a part of the input cannot know how many records came before
it: a part (a CSV piece, a Spark partition of a table, or a Parquet file) is a *chunk*, and each row
is read as (``_chunk``, ``_index`` within the chunk). Each task also emits one count row per chunk
(``_kind`` = :data:`COUNT`); the driver turns the counts into offsets, ``row = offset + _index + 1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import polars as pl
import pyarrow as pa

from medins.claims.parse import CLAIMS_SCHEMA, REJECTS_SCHEMA

#: ``_kind`` of a parsed row: a typed claim, a rejected input row, or a chunk's counts.
CLAIM, REJECT, COUNT = 0, 1, 2
#: Columns a chunked input carries besides its cells (ordered input: the chunk and the 0-based index in it).
CHUNK, INDEX = "_chunk", "_index"
#: Reject columns beside the claim columns in the parsed table (``row`` and ``claim_id`` are shared).
REJECT_ONLY = tuple(c for c in REJECTS_SCHEMA if c not in ("row", "claim_id"))
#: The parsed table: claims (``CLAIMS_SCHEMA`` without ``row``), rejects and counts in one schema.
PARSED_COLUMNS: dict[str, pl.DataType] = {
    "_kind": pl.Int32(), CHUNK: pl.Int64(), INDEX: pl.Int64(),
    **{c: t for c, t in CLAIMS_SCHEMA.items() if c != "row"},
    **{c: pl.String() for c in REJECT_ONLY}, "_records": pl.Int64(), "_rows_read": pl.Int64(),
}
#: Summary columns the settle task adds to the output (``medins.partitioned._KEYS`` and fen sums).
SUMMARY_COLUMNS: dict[str, pl.DataType] = {
    "visit_type": pl.String(), "hospital_zone": pl.String(), "hospital_level": pl.String(), "_reasons": pl.String(),
    "_medfee": pl.Int64(), "_fund": pl.Int64(), "_psn": pl.Int64(),
}


def _batches(frame: pl.DataFrame, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """``frame`` as Arrow batches of exactly ``schema`` (Polars writes large strings and lists; Spark
    declared the plain ones)."""
    yield from frame.to_arrow().cast(schema).to_batches()


def _parsed(read, chunks: pl.DataFrame, counts: pl.DataFrame) -> pl.DataFrame:
    """A read part as parsed rows: ``chunks`` maps the reader's ``row`` to (``_chunk``, ``_index``)."""
    claims = read.claims.join(chunks, on="row", how="left").with_columns(_kind=pl.lit(CLAIM, pl.Int32))
    rejects = read.rejects.join(chunks, on="row", how="left").with_columns(_kind=pl.lit(REJECT, pl.Int32))
    counts = counts.with_columns(_kind=pl.lit(COUNT, pl.Int32))
    frame = pl.concat([claims.drop("row"), rejects.drop("row"), counts], how="diagonal_relaxed")
    return frame.select(pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                        for c, t in PARSED_COLUMNS.items())


def parse_cells(batches: Iterable[pa.RecordBatch], *, headers: list[str], mapping: dict | None, file: str,
                schema: pa.Schema, ordered: bool) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` task: table cells (a Parquet file, a Hive table …) → parsed rows.

    ``ordered``: the batches carry ``_chunk`` and ``_index``; otherwise the chunk is this Spark
    partition and the index counts its rows in the order they come.
    """
    from pyspark import TaskContext

    from medins.claims.readers import read_frame_piece

    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    position = 0
    for batch in batches:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        if ordered:
            chunks = frame.select(CHUNK, INDEX)
        else:
            chunks = pl.DataFrame({CHUNK: [partition] * frame.height,
                                   INDEX: range(position, position + frame.height)},
                                  schema={CHUNK: pl.Int64, INDEX: pl.Int64})
            position += frame.height
        read = read_frame_piece(frame.select(headers), row_offset=0, mapping=mapping, file=file)
        counts = chunks.group_by(CHUNK).agg(_records=pl.len()).with_columns(_rows_read=pl.lit(0, pl.Int64))
        counts = counts.with_columns(_rows_read=pl.when(pl.int_range(pl.len()) == 0).then(read.rows_read)
                                     .otherwise(0))  # the total matters, not which chunk holds it
        chunks = chunks.with_row_index("row", offset=1).with_columns(pl.col("row").cast(pl.Int64))
        yield from _batches(_parsed(read, chunks, counts), schema)


def parse_pieces(batches: Iterable[pa.RecordBatch], *, mapping: dict | None, schema: pa.Schema
                 ) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` task: CSV pieces (UTF-8 bytes of the header and whole records, cut by the driver
    as ``medins.partitioned`` cuts them) → parsed rows; a piece is a chunk."""
    from medins.claims.readers import read_csv_piece

    for batch in batches:
        for piece in batch.to_pylist():
            read = read_csv_piece(piece["data"], row_offset=0, encoding=piece["label"], mapping=mapping,
                                  file=piece["file"])
            rows = max(read.records, read.claims.height, read.rejects.height)
            chunks = pl.DataFrame({"row": range(1, rows + 1), CHUNK: [piece[CHUNK]] * rows,
                                   INDEX: range(rows)}, schema={"row": pl.Int64, CHUNK: pl.Int64, INDEX: pl.Int64})
            counts = pl.DataFrame({CHUNK: [piece[CHUNK]], "_records": [read.records], "_rows_read": [read.rows_read]},
                                  schema={CHUNK: pl.Int64, "_records": pl.Int64, "_rows_read": pl.Int64})
            yield from _batches(_parsed(read, chunks, counts), schema)


def settle_partition(batches: Iterable[pa.RecordBatch], *, policy, fmt: str, schema: pa.Schema
                     ) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` task: one person partition (all of each of its persons' claims, in any order: the
    engine orders them by date and ``row``) settled by the engine, as the output rows plus the
    summary's facts and fen sums."""
    from medins.batch import BATCH_KEEP, output_table
    from medins.claims.writers import format_money, format_text
    from medins.engine.settle import MONEY_OUTPUTS, settle

    tables = [pl.from_arrow(batch) for batch in batches]
    if not tables:
        return
    claims = pl.concat(tables, how="vertical_relaxed")  # type: ignore[arg-type]
    claims = claims.select(pl.col(c).cast(t) for c, t in CLAIMS_SCHEMA.items())
    if claims.height == 0:
        return
    settled = settle(policy, claims, None, keep=(*BATCH_KEEP, "row"))
    # text as the output format writes it; money as Decimal(18, 2), the type Spark declared, whatever the format
    out = format_money(format_text(output_table(settled), "csv" if fmt == "csv" else "parquet", MONEY_OUTPUTS),
                       "parquet", MONEY_OUTPUTS)
    facts = settled.select(
        pl.col("visit_type", "hospital_zone"), pl.col("hospital_level").cast(pl.String),
        _reasons=pl.col("_reasons").fill_null(""), _medfee="medfee_sumamt", _fund="fund_pay_sumamt",
        _psn="psn_part_amt")
    yield from _batches(pl.concat([settled.select("row"), out, facts], how="horizontal"), schema)
