"""Out-of-core batch: settle a claims CSV larger than memory, one person-hash partition at a time.

Why it is exact: every piece of year-to-date state (deductibles, caps, cumulative bands, accounts)
belongs to one person, so claims split by a hash of ``person_id`` settle independently with the very
same engine; the partitions' outputs are then merged back in input-row order. Memory follows the
largest partition instead of the file. The same split is how the engine runs on a cluster.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import polars as pl

from medins.atomic import atomic_path
from medins.claims.aliases import check_mapping, resolve_headers
from medins.claims.readers import read_claims
from medins.claims.writers import _prepare
from medins.engine.settle import MONEY_OUTPUTS, OUTPUT_COLUMNS, settle
from medins.errors import InputError


def _utf8_head(head: bytes) -> bool:
    """The sample is UTF-8 (a multi-byte character cut at the sample's end still counts)."""
    try:
        head.decode("utf-8-sig")
        return True
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4


def _utf8_source(path: Path, encoding: str, folder: Path) -> Path:
    """The CSV itself when it is UTF-8, else a UTF-8 copy (GBK/GB18030 exports) streamed into ``folder``."""
    import codecs

    with path.open("rb") as handle:
        head = handle.read(1 << 20)
    if encoding in ("auto", "utf-8", "utf8") and _utf8_head(head):
        return path
    if encoding in ("utf-8", "utf8"):
        raise InputError(message_en="the file is not valid UTF-8", message_zh="文件不是有效的 UTF-8 编码",
                         file=str(path), hint_en="try --encoding gbk or --encoding auto",
                         hint_zh="请尝试 --encoding gbk 或 --encoding auto")
    source_encoding = "gb18030" if encoding in ("auto", "gbk") else encoding  # GB18030 is a superset of GBK
    decoder = codecs.getincrementaldecoder(source_encoding)()
    copy = folder / "source.csv"
    try:
        with path.open("rb") as src, copy.open("w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(1 << 24):  # 16 MB at a time: a GBK export of any size is never held whole
                dst.write(decoder.decode(chunk))
            dst.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise InputError(message_en=f"the file is not valid {source_encoding} (byte {exc.start} of a block)",
                         message_zh=f"文件不是有效的 {source_encoding} 编码", file=str(path),
                         hint_en="check --encoding", hint_zh="请检查 --encoding") from None
    return copy


def run_partitioned(path: Path, policy, output: Path, rejects_path: Path, *, partitions: int, encoding: str,
                    mapping: dict | None, fmt: str | None, stage, start: float):
    from medins.batch import SUMMARY_FACTS, BatchResult

    columns, _values = check_mapping(mapping)
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        folder = Path(tmp)
        source = _utf8_source(path, encoding, folder)
        with source.open(encoding="utf-8-sig", newline="") as handle:
            headers = next(csv.reader(io.StringIO(handle.readline())))
        header_map = resolve_headers(headers, columns)
        person = next((h for h, name in header_map.items() if name == "person_id"), None)
        if person is None:
            raise InputError(message_en="the file has no person id column", message_zh="文件缺少个人编号列",
                             file=str(path), hint_en="partitioning needs person_id (个人编号)")
        stage("read")
        lazy = pl.scan_csv(source, infer_schema=False, encoding="utf8").with_row_index("__row", offset=1)
        key = pl.col(person).hash(seed=20071) % partitions
        settled_parts, reject_parts, facts_parts = [], [], []
        rows_read = 0
        for k in range(partitions):
            chunk = lazy.filter(key == k).collect(engine="streaming")  # never the whole file in memory
            if chunk.height == 0:
                continue
            original = chunk["__row"]
            part_csv = folder / f"part{k}.csv"
            chunk.drop("__row").write_csv(part_csv)
            read = read_claims(part_csv, encoding="utf-8", mapping=mapping)
            rows_read += read.rows_read
            remap = pl.col("row").map_batches(lambda r, orig=original: orig.gather(r - 1), return_dtype=pl.UInt32)
            stage("settle")
            settled = settle(policy, read.claims, read.items if read.shape == "items" else None,
                             keep=(*SUMMARY_FACTS, "row"))
            out = settled.with_columns(remap.cast(pl.Int64))
            del settled
            part_out = folder / f"out{k}.parquet"
            out.write_parquet(part_out)
            settled_parts.append(part_out)
            rejects = read.rejects.with_columns(remap.cast(pl.Int64))
            if rejects.height:
                part_rej = folder / f"rej{k}.parquet"
                rejects.write_parquet(part_rej)
                reject_parts.append(part_rej)
            facts_parts.append(_aggregate(out))
        stage("write")
        kind = fmt or {".csv": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}.get(output.suffix.lower(), "csv")
        if kind == "csv":
            _merge_csv(settled_parts, output, folder)
        else:
            lazies = [pl.scan_parquet(part) for part in settled_parts]
            merged = lazies[0]
            for other in lazies[1:]:
                merged = merged.merge_sorted(other, key="row")
            final = merged.select(OUTPUT_COLUMNS).with_columns(pl.col("reasons").list.join(";"),
                                                               pl.col("unchecked").list.join(";"))
            _sink(final, output, kind)
        rejects_frame = (pl.scan_parquet(reject_parts).sort("row").collect() if reject_parts
                         else pl.DataFrame(schema={"row": pl.Int64, "claim_id": pl.String, "reason": pl.String,
                                                   "message_en": pl.String, "message_zh": pl.String, "raw": pl.String}))
        from medins.claims.writers import write_rejects

        write_rejects(rejects_frame, rejects_path)
        summary = _reaggregate(pl.concat(facts_parts)) if facts_parts else pl.DataFrame()
        settled_count = int(summary["_n"].sum()) if summary.height else 0
    return BatchResult(rows_read=rows_read, rows_rejected=rejects_frame.height, claims_settled=settled_count,
                       shape="claims", encoding="utf-8" if source == path else "gb18030", output=output,
                       rejects=rejects_path, settlement=summary, rejects_table=rejects_frame,
                       seconds=__import__("time").perf_counter() - start)


_KEYS = ("visit_type", "hospital_zone", "hospital_level", "status", "_reasons")


def _aggregate(out: pl.DataFrame) -> pl.DataFrame:
    """A partition's settlement reduced to what the summary needs: counts and sums by its cuts (``_n`` claims)."""
    return out.with_columns(_reasons=pl.col("reasons").list.join(";"), hospital_level=pl.col("hospital_level")
                            .cast(pl.String)).group_by(_KEYS).agg(
        _n=pl.len(), medfee_sumamt=pl.col("medfee_sumamt").sum(), fund_pay_sumamt=pl.col("fund_pay_sumamt").sum(),
        psn_part_amt=pl.col("psn_part_amt").sum())


def _reaggregate(parts: pl.DataFrame) -> pl.DataFrame:
    summed = parts.group_by(_KEYS).agg(pl.col("_n", "medfee_sumamt", "fund_pay_sumamt", "psn_part_amt").sum())
    return summed.with_columns(
        reasons=pl.when(pl.col("_reasons") == "").then(pl.lit([], pl.List(pl.String)))
        .otherwise(pl.col("_reasons").str.split(";"))).drop("_reasons")


def _records(path: Path):
    """(row, record text) of a partition CSV whose first column is the input row; quoted newlines kept."""
    with path.open(encoding="utf-8", newline="") as handle:
        handle.readline()  # header
        pending = ""
        for line in handle:
            pending += line
            if pending.count('"') % 2:  # inside a quoted field: the record goes on
                continue
            row, _, record = pending.partition(",")
            yield int(row), record
            pending = ""


def _merge_csv(parts: list[Path], output: Path, folder: Path) -> None:
    """Merge the partitions' CSV outputs (each in input order) by input row — a k-way merge, bounded memory."""
    import heapq

    texts = []
    for part in parts:
        frame = pl.read_parquet(part)
        final = frame.select("row", *OUTPUT_COLUMNS).with_columns(pl.col("reasons").list.join(";"),
                                                                  pl.col("unchecked").list.join(";"))
        text = folder / f"{part.stem}.csv"
        _prepare(final, "csv", MONEY_OUTPUTS).write_csv(text)
        texts.append(text)
        del frame, final
    with atomic_path(output, ".csv") as tmp, open(tmp, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(OUTPUT_COLUMNS) + "\n")
        for _row, record in heapq.merge(*(_records(t) for t in texts), key=lambda item: item[0]):
            out.write(record)


def _sink(frame: pl.LazyFrame, output: Path, fmt: str | None) -> None:
    """Stream the merged output to a temporary file beside ``output``, then rename (all or nothing)."""
    kind = fmt or {".csv": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}.get(output.suffix.lower(), "csv")
    with atomic_path(output, f".{kind}") as tmp:
        if kind == "xlsx":
            _prepare(frame.collect(), "xlsx", MONEY_OUTPUTS).write_excel(tmp, worksheet="data", autofilter=False)
        elif kind == "csv":
            _prepare_lazy(frame, kind).sink_csv(tmp)
        else:
            _prepare_lazy(frame, kind).sink_parquet(tmp)


def _prepare_lazy(frame: pl.LazyFrame, kind: str) -> pl.LazyFrame:
    from medins.claims.writers import guard_formula, yuan_text

    if kind == "parquet":
        return frame.with_columns([yuan_text(pl.col(c)).str.to_decimal(scale=2).cast(pl.Decimal(18, 2)).alias(c)
                                   for c in MONEY_OUTPUTS])
    strings = ["claim_id", "person_id", "policy", "status", "reasons", "unchecked"]
    return frame.with_columns([yuan_text(pl.col(c)).alias(c) for c in MONEY_OUTPUTS]
                              + [guard_formula(pl.col(c)).alias(c) for c in strings])
