"""Claims files (CSV/TXT, XLSX, Parquet) → the canonical claims and items tables, nothing lost.

Why: a batch is audited by counting — every input data row ends either in the claims table (or as
an item of a claim) or in the rejects with a reason — so a user can always reconcile rows in with
rows out. Reading is vectorised (Polars reads every cell as text, ``parse.py`` casts whole
columns); Python only touches the rows that are rejected, or a CSV too malformed for Polars.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import polars as pl

from medins.claims.aliases import check_mapping, check_required, resolve_headers
from medins.claims.fields import RECORDED_FIELDS
from medins.claims.parse import CODES, ITEMS_SCHEMA, build_rejects, claims_shape, items_shape
from medins.errors import InputError, UnreadableCsvError

if TYPE_CHECKING:
    import numpy as np

_BOM = codecs.BOM_UTF8
_CHUNK = 1 << 20
#: What ``csv_shape`` looks at: enough for any header line.
PEEK_BYTES = 1 << 16
_GB = ("gbk", "gb2312", "gb18030", "cp936")


@dataclass
class ReadResult:
    """What ``read_claims`` found: the tables, the rejects, and how the file was understood."""

    claims: pl.DataFrame
    items: pl.DataFrame
    rejects: pl.DataFrame
    rows_read: int
    encoding: str
    shape: Literal["claims", "items"]
    header_map: dict[str, str | None]
    records: int = 0  # data records, blank ones included (a piece's rows are numbered after the earlier ones)


@dataclass
class _Cells:
    """A file as text: its headers, ``row`` + one String column per header (``c0``…) + ``_codes``."""

    headers: list[str]
    cells: pl.DataFrame
    raw_text: Callable[[pl.DataFrame], pl.DataFrame]  # (row, …) → (row, raw)
    encoding: str = "utf-8"
    records: int = 0  # data records read, blank ones included (what row numbers count)
    trimmed: bool = False  # no cell holds a whitespace character (``no_whitespace``): nothing to strip


def read_claims(path: str | Path, *, encoding: str = "auto", mapping: dict | None = None,
                recorded: bool = False) -> ReadResult:
    """Read a claims file; whole-file problems raise :class:`InputError`, bad rows become rejects.

    ``row`` is the 1-based data row (the first row after the header); blank rows are skipped and not
    counted. A file with line-item amounts and no claim total is read as line items and grouped into
    claims by ``claim_id`` in order of first appearance. ``recorded`` also reads the settled amounts the
    export carries (``RECORDED_FIELDS``, for ``medins audit``) as claim columns; a bad cell rejects the row.
    """
    path = Path(path)
    check_mapping(mapping)  # a bad mapping is reported before the file is read
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            src = _read_csv(path, encoding)
        elif suffix == ".xlsx":
            src = _read_xlsx(path)
        elif suffix == ".parquet":
            src = _read_parquet(path)
        else:
            raise InputError(message_en=f"unknown claims file type {suffix or path.name!r}",
                             message_zh=f"无法识别的理赔文件类型“{suffix or path.name}”",
                             hint_en="use .csv, .txt, .xlsx or .parquet",
                             hint_zh="请使用 .csv、.txt、.xlsx 或 .parquet 文件", file=str(path))
    except OSError as exc:
        raise InputError(message_en=f"cannot read the file: {exc.strerror or exc}",
                         message_zh=f"无法读取文件：{exc.strerror or exc}", file=str(path)) from None
    return _result(src, mapping, file=str(path), recorded=recorded)


def _result(src: _Cells, mapping: dict | None, *, file: str, recorded: bool = False) -> ReadResult:
    """Cells as read → the typed tables and the rejects (the part of reading every source shares)."""
    columns, values = check_mapping(mapping)
    try:
        header_map = resolve_headers(src.headers, columns, recorded=recorded)
    except InputError as exc:
        exc.file = file
        raise
    shape = _shape(header_map)
    check_required(header_map, shape, file=file)
    wanted = [(f"c{i}", header_map[h]) for i, h in enumerate(src.headers) if header_map[h]]
    cells = src.cells.select("row", CODES, "_nfields", *(pl.col(c).alias(name) for c, name in wanted))
    extra = RECORDED_FIELDS if recorded else ()
    if shape == "claims":
        claims, bad = claims_shape(cells, values, extra, trimmed=src.trimmed)
        items = ITEMS_SCHEMA.to_frame()
    else:
        claims, items, bad = items_shape(cells, values, extra, trimmed=src.trimmed)
    headers = {name: h for h, name in header_map.items() if name}
    rejects = build_rejects(bad, cells, src.raw_text(bad.select("row")), headers, expected=len(src.headers))
    return ReadResult(claims=claims, items=items, rejects=rejects, rows_read=cells.height,
                      encoding=src.encoding, shape=shape, header_map=header_map, records=src.records)


def _shape(header_map: dict[str, str | None]) -> Literal["claims", "items"]:
    """Line items when the file has fee-line amounts and no claim total; else one claim per row."""
    present = {name for name in header_map.values() if name}
    return "items" if "item_amount" in present and "total" not in present else "claims"


def csv_shape(data: bytes, mapping: dict | None = None) -> Literal["claims", "items"]:
    """The shape of a CSV from its header line alone (UTF-8 bytes that start with it).

    Why: a large file is cut into pieces before any is parsed, and line items (grouped into claims
    across the whole file) must be read whole; a header this cannot read is reported by the reader.
    """
    data = universal_newlines(data[:PEEK_BYTES])
    first = data[: data.find(b"\n") + 1 if b"\n" in data else len(data)].decode("utf-8", "replace")
    headers = next(csv.reader(io.StringIO(first), delimiter=_separator(data)), [])
    try:
        return _shape(resolve_headers([h.strip() for h in headers], check_mapping(mapping)[0]))
    except InputError:
        return "claims"


def read_csv_piece(data: bytes, *, row_offset: int, encoding: str, mapping: dict | None = None,
                   file: str = "") -> ReadResult:
    """A piece of a large CSV: UTF-8 bytes of the header line and whole records, read like a file whose
    rows are numbered after ``row_offset`` (the records of the earlier pieces).

    Why: a file larger than memory is read piece by piece with the very same reader (field counts,
    blank rows, quoted line breaks, rejects quoting the original line), so it gives exactly the
    rows, values and rejects the whole file would.
    """
    return _result(_offset(_parse_csv(data, encoding, file=file, row_offset=row_offset), row_offset), mapping,
                   file=file)


def read_frame_piece(frame: pl.DataFrame, *, row_offset: int, mapping: dict | None = None,
                     file: str = "") -> ReadResult:
    """A slice of a large Parquet file (rows after ``row_offset``), read like the whole file."""
    return _result(_offset(_from_frame(frame, list(frame.columns)), row_offset), mapping, file=file)


def _offset(src: _Cells, offset: int) -> _Cells:
    """Number the rows of a piece after the ``offset`` records that came before it."""
    if not offset:
        return src
    inner = src.raw_text

    def raw_text(rows: pl.DataFrame) -> pl.DataFrame:
        return inner(rows.with_columns(pl.col("row") - offset)).with_columns(pl.col("row") + offset)

    return _Cells(src.headers, src.cells.with_columns(pl.col("row") + offset), raw_text, src.encoding, src.records,
                  src.trimmed)


# --- CSV ------------------------------------------------------------------------------------------

def utf8_bytes(path: Path, encoding: str = "auto") -> tuple[bytes, str]:
    """The file as UTF-8 bytes without BOM, and the encoding it was in (``utf-8`` or ``gb18030``/…).

    Why transcode: Polars reads only UTF-8. The encoding is decided for the whole file: a UTF-8 BOM
    or valid UTF-8 is UTF-8; otherwise the file is UTF-8 when its valid multi-byte characters
    outweigh its undecodable bytes (a UTF-8 export with a GBK row pasted in), else GB18030 (a
    superset of GBK and GB2312, the encodings of Chinese Excel exports). Bytes the chosen encoding
    cannot decode are replaced by a marker holding their file offset (see :func:`decode_marking`),
    so their rows are rejected as ``encoding`` and every other row is read. A file declared UTF-8
    that is mostly not UTF-8 is refused as a whole: the declaration is wrong, not a row.
    """
    enc = encoding.lower().replace("_", "-")
    enc = {"utf8": "utf-8", "utf-8-sig": "utf-8"}.get(enc, enc)
    if enc not in ("auto", "utf-8", *_GB):
        raise InputError(message_en=f"unsupported encoding {encoding!r}",
                         message_zh=f"不支持的编码“{encoding}”",
                         hint_en="use auto, utf-8, gbk or gb18030",
                         hint_zh="请使用 auto、utf-8、gbk 或 gb18030", file=str(path))
    data = path.read_bytes()
    base = 0
    if data.startswith(_BOM) and enc in ("auto", "utf-8"):
        data, enc, base = data[len(_BOM):], "utf-8", len(_BOM)
    if enc in ("auto", "utf-8"):
        if _is_utf8(data):
            return data, "utf-8"
        if utf8_wins(data):
            return decode_marking(data, "utf-8", base).text.encode("utf-8"), "utf-8"
        if enc == "utf-8":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                where = base + exc.start
                raise InputError(
                    message_en=f"the file is not valid utf-8 (bad byte at offset {where})",
                    message_zh=f"文件不是有效的 utf-8 编码（第 {where} 字节处有错误）",
                    hint_en="try --encoding auto or gb18030", hint_zh="请尝试 --encoding auto 或 gb18030",
                    file=str(path)) from None
        enc = "gb18030"
    return decode_marking(flag_utf8_lines(data), enc, base).text.encode("utf-8"), enc


def flag_utf8_lines(data: bytes) -> bytes:
    """GB18030 bytes with each line that is valid UTF-8 holding Chinese (characters of three bytes or more)
    made undecodable at its first non-ASCII byte (0xFF, never valid GB18030), so that decoding marks it
    and its row is rejected as ``encoding`` instead of read as mojibake.

    Why this is safe: GBK text almost never forms valid three-byte UTF-8 sequences across a whole line
    (a common character's second byte is A1–FE, never a UTF-8 lead's continuation after the next
    character), while a UTF-8 row pasted into a GBK file always does. The length is unchanged, so
    every offset the decoder reports is the file's.
    """
    spare = next((ch for ch in "\x1f\x1e\x1d\x1c" if ch.encode() not in data), None)
    if spare is None:  # no free byte to read whole lines with (never seen in a claims export)
        return data
    lines = pl.read_csv(data, has_header=False, separator=spare, quote_char=None, schema={"line": pl.String},
                        encoding="utf8-lossy", truncate_ragged_lines=True, empty_string_is_null=False)["line"]
    utf8 = lines.filter(~lines.str.contains(MARK, literal=True).fill_null(True))  # GBK lines hold U+FFFD here
    flagged = utf8.filter(utf8.str.contains(r"[\x{800}-\x{10FFFF}]")).unique().to_list()
    out = bytearray(data)
    for line in flagged:
        raw = line.encode()
        first = next(k for k, byte in enumerate(raw) if byte >= 0x80)
        at = data.find(raw)
        while at >= 0:
            if at == 0 or data[at - 1] in b"\r\n":  # where a line starts, not inside a longer one
                out[at + first] = 0xFF
            at = data.find(raw, at + 1)
    return bytes(out) if flagged else data


#: Replaces an undecodable byte; the first of a run is followed by ``<byte N>``, its offset in the file.
MARK = "\ufffd"
_MARK_RE = re.compile(MARK + r"<byte (\d+)>")
_MARK_LEAD = MARK.encode()[:1]


@dataclass
class Decoded:
    """Text decoded with markers for undecodable bytes, and the file offsets of those bytes."""

    text: str
    offsets: list[int]


def utf8_wins(data: bytes) -> bool:
    """Whether bytes that are not all valid UTF-8 are still a UTF-8 file with a few bad rows: more valid
    characters of three bytes or more (Chinese in UTF-8) than undecodable bytes.

    Why only characters of three bytes or more: GBK text often decodes as valid two-byte UTF-8 by
    accident (住院 = D7A1 D4BA), but far less often as three-byte sequences. Counted at C speed from
    lengths: the text re-encoded is the valid bytes plus three per U+FFFD.
    """
    for sample in (data[:_SAMPLE], data) if len(data) > _SAMPLE else (data,):
        sample = sample[: sample.rfind(b"\n") + 1] or sample  # whole lines: no character cut at the end
        text = sample.decode("utf-8", "replace")
        replaced = text.count(MARK)
        bad = len(sample) + 3 * replaced - len(text.encode("utf-8"))
        wide = _wide(sample, len(text) - replaced, bad)
        if wide + bad >= _DECISIVE:  # the start of the file is evidence enough (a GBK file: 4 MB, not all)
            break
    return wide > bad


#: How much of a file ``utf8_wins`` looks at first, and how much evidence (wide characters plus bad bytes)
#: there settles the question; with less, the whole file is counted.
_SAMPLE = 4 << 20
_DECISIVE = 10_000


class _Marking:
    """State of the running :func:`decode_marking` (one decode at a time in a process)."""

    base: ClassVar[int] = 0
    offsets: ClassVar[list[int]] = []


def _mark(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: one undecodable byte → a marker (its offset if it starts a run); never more than
    that byte, so a line break or separator after it is decoded as itself."""
    assert isinstance(exc, UnicodeDecodeError)
    offset = _Marking.base + exc.start
    starts_run = not _Marking.offsets or _Marking.offsets[-1] != offset - 1
    _Marking.offsets.append(offset)
    return (f"{MARK}<byte {offset}>" if starts_run else MARK), exc.start + 1


codecs.register_error("medins-mark", _mark)


def decode_marking(data: bytes, encoding: str, base: int = 0) -> Decoded:
    """Decode ``data`` (at file offset ``base``), marking each undecodable byte instead of failing.

    Why mark and not drop or replace silently: the row that holds the marker is rejected as
    ``encoding`` with the offset shown, and no other row is touched (the marker has no separator,
    quote or line break, so the file's structure is unchanged).
    """
    _Marking.base, _Marking.offsets = base, []
    return Decoded(data.decode(encoding, "medins-mark"), _Marking.offsets)


_ASCII = bytes(range(128))


def _wide(data: bytes, valid_chars: int, bad_bytes: int) -> int:
    """n3 + 2·n4 of a UTF-8 decoding, from counts alone (no pass in Python over the characters).

    Valid bytes = ascii + 2·n2 + 3·n3 + 4·n4 and valid non-ASCII characters = n2 + n3 + n4 (an ASCII
    byte is always a character of its own, even after an undecodable one), so their difference
    less the non-ASCII characters is n3 + 2·n4.
    """
    ascii_bytes = len(data) - len(data.translate(None, _ASCII))
    non_ascii_chars = valid_chars - ascii_bytes
    extra = len(data) - bad_bytes - valid_chars  # n2 + 2·n3 + 3·n4
    return extra - non_ascii_chars


def decode_block_marking(decoder: codecs.IncrementalDecoder, block: bytes, *, final: bool, base: int) -> Decoded:
    """:func:`decode_marking` for one block of a file read block by block (``base``: the block's file
    offset); ``decoder`` was made with ``errors="medins-mark"`` and may hold a character cut by the last block."""
    held = len(decoder.getstate()[0])
    _Marking.base, _Marking.offsets = base - held, []
    return Decoded(decoder.decode(block, final=final), _Marking.offsets)


def first_bad_offset(raw: str | None) -> str:
    """The file offset in the first marker of a raw line (``?`` when the line holds a bare U+FFFD)."""
    found = _MARK_RE.search(raw or "")
    return found.group(1) if found else "?"


def _is_utf8(data: bytes) -> bool:
    """Whether the bytes are valid UTF-8 (Polars' SIMD check: ten times faster than ``bytes.decode``)."""
    try:
        pl.Series([data], dtype=pl.Binary).cast(pl.String)
    except pl.exceptions.ComputeError:
        return False
    return True


#: Bytes from which bytes are counted and found through numpy (a vectorised compare) instead of ``bytes.count``
#: (6–9 ms a byte for 16 MiB; a piece's checks count four): below it, numpy's import (0.1 s, which a batch of a
#: small file never pays) would cost more than it saves.
NUMPY_BYTES = 1 << 20


def count_byte(data: bytes, byte: bytes, start: int = 0) -> int:
    """``data.count(byte, start)`` for one byte, at memory speed on large data (the bytes seen by Polars as a
    UInt8 column through numpy, without a copy: its compare-and-sum takes 0.5 ms for 16 MiB, numpy's 2)."""
    if len(data) - start < NUMPY_BYTES or len(byte) != 1:
        return data.count(byte, start)
    import numpy as np

    return int((pl.Series(np.frombuffer(data, np.uint8, offset=start)) == byte[0]).sum())


def line_breaks(data: bytes, which: Iterable[int]) -> dict[int, int]:
    """The offset in ``data`` of its i-th LF (from 0), for each i of ``which`` that ``data`` has.

    Why not every LF's offset: a piece's few rejects need a few lines, and the offsets of its 150,000 line breaks
    cost 6 ms. The LFs are marked a bit per byte (packed, a block at a time), counted 64 bytes at a time and
    summed, so each LF asked for is found in its 64 bytes: the counts cost a fifth of finding the LFs of every
    block that holds one asked for (a piece's few rejects are spread over most of its blocks).
    """
    wanted = sorted({i for i in which if i >= 0})
    if len(data) < NUMPY_BYTES:
        ends = [m.start() for m in re.finditer(b"\n", data)]
        return {i: ends[i] for i in wanted if i < len(ends)}
    if not wanted:
        return {}
    import numpy as np

    view = np.frombuffer(data, np.uint8)
    bits = np.zeros(-(-len(data) // 64) * 8, np.uint8)  # a bit per byte of ``data``, in order, whole words of 64
    step = _BLOCK - _BLOCK % 8 or 8  # a multiple of 8: each block fills whole bytes of ``bits``
    for at in range(0, len(view), step):
        packed = np.packbits(view[at: at + step] == ord("\n"))
        bits[at // 8: at // 8 + len(packed)] = packed
    before = np.cumsum(_popcount(bits.view(np.uint64)), dtype=np.int64)  # LFs up to the end of each word
    found: dict[int, int] = {}
    for i, word in zip(wanted, np.searchsorted(before, np.array(wanted) + 1).tolist(), strict=True):
        if word == len(before):  # fewer LFs than that
            break
        seen = int(before[word - 1]) if word else 0
        found[i] = 64 * word + int(np.flatnonzero(np.unpackbits(bits[8 * word: 8 * word + 8]))[i - seen])
    return found


def _popcount(words: np.ndarray) -> np.ndarray:
    """The set bits of each uint64 (numpy's own count where it has one: numpy 2)."""
    import numpy as np

    count = getattr(np, "bitwise_count", None)
    if count is not None:
        return count(words)
    table = np.array([bin(b).count("1") for b in range(256)], np.uint8)
    return table[words.view(np.uint8)].reshape(-1, 8).sum(axis=1, dtype=np.int64)


#: Bytes compared at a time by :func:`_where`: its temporary (a byte per byte compared) stays small.
_BLOCK = 1 << 20


def _where(data: bytes, byte: int) -> np.ndarray:
    """The offsets of ``byte`` in ``data`` (numpy, a block at a time: a 16 MiB piece compared at once made a 16 MB
    temporary, two pieces at once raised the read's peak by 30 MB)."""
    import numpy as np

    view = np.frombuffer(data, np.uint8)
    return np.concatenate([np.flatnonzero(view[at: at + _BLOCK] == byte) + at for at in range(0, len(view), _BLOCK)]
                          or [np.zeros(0, np.intp)])


def _quotes_paired(data: bytes) -> bool:
    """Whether every run of quote characters in ``data`` is of even length (empty quoted cells, escaped quotes).

    Why not by counts alone on large data: ``data.count(b'""')`` (a two-byte search, 18 ms for 16 MiB) is
    the slowest of a piece's checks. The quotes' positions pair up two by two, each next to its partner,
    exactly when every run is even (a run starts at an even index among them only if the runs before it
    are even) — which is the test ``count('"') == 2 * count('""')`` makes, ``count`` taking pairs left to right.
    """
    if len(data) < NUMPY_BYTES:
        return data.count(b'"') == 2 * data.count(b'""')
    import numpy as np

    # first by counts on the quotes' bit mask (3 ms for 16 MiB, where their positions cost 7): with no run of three
    # quotes, the runs are of one or two, and they are all of two when the quotes that follow a quote are half of all
    quote = pl.Series(np.frombuffer(data, np.uint8)) == ord('"')
    second = quote & quote.shift(1, fill_value=False)
    if not (second & quote.shift(2, fill_value=False)).any():
        return bool(quote.sum() == 2 * second.sum())
    at = _where(data, ord('"'))
    return at.size % 2 == 0 and bool((at[1::2] - at[::2] == 1).all())


def _separator(data: bytes) -> str:
    header = data[: data.find(b"\n") if b"\n" in data else len(data)]
    if b"\t" in header:
        return "\t"
    return ";" if b";" in header and b"," not in header else ","


def _read_csv(path: Path, encoding: str) -> _Cells:
    data, enc = utf8_bytes(path, encoding)
    if not data or data.isspace():  # as ``not data.strip()``, without copying a year of claims
        raise InputError(message_en="the file is empty", message_zh="文件为空", file=str(path))
    return _parse_csv(data, enc, file=str(path))


def universal_newlines(data: bytes) -> bytes:
    """Line ends as LF when the file has a CR that is not part of CRLF (old Mac / Excel exports end
    lines with CR alone, which Polars and our counts would read as one long line: 0 rows).

    Why only then: CRLF and LF files (nearly all) are read as they are, without copying them; a
    file that mixes CR, CRLF and LF has every line end made LF.
    """
    if b"\r" not in data:  # at memory speed, unlike a count
        return data
    crs = data.count(b"\r")
    if crs == data.count(b"\r\n"):
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _parse_csv(data: bytes, encoding: str, *, file: str, row_offset: int = 0) -> _Cells:
    """UTF-8 CSV bytes → cells: Polars when it agrees with our record count, else the csv module.

    ``row_offset``: the records before ``data`` (a piece of a larger file), for the row an error names.
    """
    data = universal_newlines(data)
    sep = _separator(data)
    try:
        src = _csv_fast(data, sep)
    except pl.exceptions.PolarsError:
        src = None
    try:
        src = src or _csv_python(data, sep)
    except UnreadableCsvError as exc:
        raise exc.after(row_offset, file) from None
    src.encoding = encoding
    # undecodable bytes (or text lost by an earlier conversion): reject their rows. The marker's first byte is
    # looked for first: a one-byte search runs at memory speed, a three-byte one an order of magnitude slower
    if _MARK_LEAD in data and MARK.encode() in data:
        _reject_marked(src, encoding, file)
    return src


def _reject_marked(src: _Cells, encoding: str, file: str) -> None:
    """Rows with a marker (or a U+FFFD) in any cell get the code ``encoding``, which replaces their others."""
    if any(MARK in h for h in src.headers):
        raise InputError(message_en=f"the header line is not valid {encoding} text",
                         message_zh=f"表头行不是有效的 {encoding} 文本",
                         hint_en="save the file as UTF-8, or try --encoding gb18030",
                         hint_zh="请将文件另存为 UTF-8，或尝试 --encoding gb18030", file=file)
    cols = [c for c in src.cells.columns if c.startswith("c") and c[1:].isdigit()]
    marked = pl.any_horizontal(pl.col(c).str.contains(MARK, literal=True).fill_null(False) for c in cols)
    src.cells = src.cells.with_columns(pl.when(marked).then(pl.lit("encoding")).otherwise(pl.col(CODES)).alias(CODES))


def _csv_fast(data: bytes, sep: str) -> _Cells | None:
    """Polars reads the cells: in one pass when each record is one line as wide as the header (nearly
    every export), else with each record's field count from its physical lines; None: use Python's csv."""
    spare = next((ch for ch in "\x1f\x1e\x1d\x1c" if ch.encode() not in data), None)
    if spare is None:  # no free byte to read whole lines with
        return None
    return _csv_one_line_records(data, sep, spare) or _csv_records(data, sep, spare)


def _csv_records(data: bytes, sep: str, spare: str) -> _Cells | None:
    """Polars reads the cells; the field count of each record comes from its physical lines.

    Why count separately: Polars pads short records and (with ``truncate_ragged_lines``) cuts long
    ones, so a ragged row would be settled on shifted cells. The count walks the quote parity from
    line to line — a line continues a record while an odd number of quotes is open — and counts the
    separators outside quotes. When Polars and the count disagree on the records, we return None and
    the Python reader takes over.
    """
    quoted = b'"' in data
    lines = _lines(data, spare)
    if quoted and lines.select(pl.col("line").str.count_matches('"', literal=True) % 2 == 1).to_series().any():
        # a quoted field spans lines: walk the quote parity to find the records
        q = pl.col("line").str.count_matches('"', literal=True)
        inside = ((q.cum_sum() - q) % 2) == 1  # the line starts inside a quoted field
        outside = (pl.when(inside).then(pl.col("line").str.replace(r'^[^"]*"?', "")).otherwise(pl.col("line"))
                   .str.replace_all(r'"[^"]*(?:"|$)', ""))
        lines = lines.with_columns(rec=(~inside).cum_sum().cast(pl.Int64) - 1,
                                   seps=outside.str.count_matches(sep, literal=True))
        records = lines.group_by("rec", maintain_order=True).agg(
            _nfields=pl.col("seps").sum() + 1)
        width = int(records["_nfields"][0])
    else:  # one line is one record
        lines = lines.with_row_index("rec").with_columns(pl.col("rec").cast(pl.Int64))
        records = lines.select("rec", _nfields=pl.col("line").str.count_matches(sep, literal=True) + 1)
        # the header's width; separators inside its quotes do not separate fields
        width = int((_fields_outside_quotes(lines.head(1), sep) if quoted else records)["_nfields"][0])
    table = pl.read_csv(data, has_header=False, separator=sep, infer_schema=False, truncate_ragged_lines=True,
                        schema={f"c{i}": pl.String for i in range(width)}, missing_columns="insert")
    if table.height != records.height:
        return None
    if quoted and "seps" not in lines.columns:
        records = _discount_quoted_separators(records, table, lines, sep, width)
    headers = [h or "" for h in table.row(0)]
    cells = pl.concat([records.select(row="rec", _nfields="_nfields"), table], how="horizontal")

    def raw_text(rows: pl.DataFrame) -> pl.DataFrame:
        return (lines.join(rows.select(rec=pl.col("row")), on="rec", how="semi", maintain_order="left")
                .group_by("rec", maintain_order=True).agg(raw=pl.col("line").str.join("\n"))
                .select(row="rec", raw="raw"))

    return _Cells(headers, _finish(cells.slice(1), width), raw_text, records=records.height - 1)


def _lines(data: bytes, spare: str, *, skip: int = 0, n_rows: int | None = None) -> pl.DataFrame:
    """Every physical line of ``data`` as text (``spare`` is a byte the data does not hold); or ``n_rows`` of
    them after the first ``skip``."""
    return pl.read_csv(data, has_header=False, separator=spare, quote_char=None, schema={"line": pl.String},
                       empty_string_is_null=False, truncate_ragged_lines=True, skip_lines=skip, n_rows=n_rows)


def _csv_one_line_records(data: bytes, sep: str, spare: str) -> _Cells | None:
    """The common case — one line per record, every record as wide as the header — read in one pass.

    Why it is safe: ``bytes.count`` gives the file's lines, separators and quotes at memory speed.
    When every run of quotes is of even length (``""`` empty fields, as Polars and many exports
    write them), no character lies inside quotes, so every separator separates fields and every
    line break ends a record. Polars refuses a record wider than the header, so (width − 1)
    separators per line on average means exactly that many on each line. Otherwise (None) the
    general reader counts each record's fields.
    """
    header = data[: data.find(b"\n") + 1 if b"\n" in data else len(data)]
    width = header.count(sep.encode()) + 1
    records = count_byte(data, b"\n") + (0 if data.endswith(b"\n") else 1)
    if width < 2 or count_byte(data, sep.encode()) != (width - 1) * records:
        return None
    if b'"' in data and not _quotes_paired(data):
        return None
    if not data.endswith(b"\n") and data[data.rfind(b"\n") + 1:].count(sep.encode()) != width - 1:
        return None  # Polars lets an unterminated last line of empty cells be wider than the header
    try:
        table = pl.read_csv(data, has_header=False, separator=sep, infer_schema=False,
                            schema={f"c{i}": pl.String for i in range(width)})
    except pl.exceptions.PolarsError:
        return None
    if table.height != records:  # a safety net: the counts above already rule this out
        return None
    headers = [h or "" for h in table.row(0)]
    cells = table.with_row_index("row").select("row", pl.lit(width, pl.Int64).alias("_nfields"), *table.columns)

    def raw_text(rows: pl.DataFrame) -> pl.DataFrame:
        # the lines asked for (a few rejects) cut from the bytes where the line breaks are: reading the span of
        # lines between the first and the last reject again cost a piece 14 ms, most of a re-read
        if rows.height == 0:
            return pl.DataFrame(schema={"row": pl.Int64, "raw": pl.String})
        breaks = records - (not data.endswith(b"\n"))  # the LFs of the piece
        wanted = sorted({r for r in rows["row"].to_list() if 0 <= r <= breaks - data.endswith(b"\n")})
        ends = line_breaks(data, (i for r in wanted for i in (r - 1, r)))
        raw = []
        for r in wanted:  # as Polars reads a line: without its break, a CR before the LF dropped
            line = data[ends[r - 1] + 1 if r else 0: ends[r] if r < breaks else len(data)]
            raw.append((line[:-1] if line.endswith(b"\r") else line).decode("utf-8"))
        return pl.DataFrame({"row": wanted, "raw": raw}, schema={"row": pl.Int64, "raw": pl.String})

    trimmed = no_whitespace(data)
    return _Cells(headers, _finish(cells.slice(1), width, trimmed=trimmed), raw_text, records=records - 1,
                  trimmed=trimmed)


#: The first byte of every character Polars' ``strip_chars`` strips (Unicode White_Space, in UTF-8): tab, LF,
#: VT, FF, CR, space; C2 (U+0085, U+00A0); E1 (U+1680); E2 (U+2000–U+200A, U+2028, U+2029, U+202F, U+205F);
#: E3 (U+3000).
_WHITESPACE_LEADS = (b" ", b"\t", b"\x0b", b"\x0c", b"\r", b"\xc2", b"\xe1", b"\xe2", b"\xe3")


def no_whitespace(data: bytes) -> bool:
    """Whether UTF-8 ``data`` holds no whitespace character but line feeds: then a cell of a one-line record (no
    line feed in it) has nothing to strip, and stripping a million of them (20 ms a column) can be left out.

    Why bytes: the test of each lead byte runs at memory speed (1 ms for 16 MiB); a text column's
    strip is a new column. Any such byte, in any role (a Chinese character's E2 or E3, say), keeps the strip.
    """
    return not any(lead in data for lead in _WHITESPACE_LEADS)


def _fields_outside_quotes(lines: pl.DataFrame, sep: str) -> pl.DataFrame:
    """``rec`` and the field count of one-line records: the separators left once quoted text is removed."""
    outside = pl.col("line").str.replace_all(r'"[^"]*(?:"|$)', "")
    return lines.select("rec", _nfields=outside.str.count_matches(sep, literal=True) + 1)


def _discount_quoted_separators(records: pl.DataFrame, table: pl.DataFrame, lines: pl.DataFrame, sep: str,
                                width: int) -> pl.DataFrame:
    """Field counts of one-line records with quotes: the line's separators less those inside its cells.

    Why not a regex over every line: the separators inside quoted cells are exactly those in the
    values Polars read, which literal counts find ten times faster. A count that comes out other than
    ``width`` (a long row's cut cells hold separators we no longer see) is redone by the regex.
    """
    inside = pl.sum_horizontal(pl.col(c).str.count_matches(sep, literal=True).fill_null(0) for c in table.columns)
    counted = records.with_columns(_nfields=pl.col("_nfields") - table.select(inside).to_series())
    odd = counted.filter(pl.col("_nfields") != width)
    if odd.height == 0:
        return counted
    redone = _fields_outside_quotes(lines.join(odd.select("rec"), on="rec", how="semi"), sep)
    return counted.update(redone, on="rec")


def _csv_python(data: bytes, sep: str) -> _Cells:
    """The slow, forgiving path for CSV that Polars refuses (e.g. a stray quote inside a field).

    A reject quotes its record as it is in the file — its physical lines joined by LF, each without its line
    break, as the other readers give them — not the cells written out again (which would requote them: an empty
    quoted cell ``""`` would come back as nothing). The csv module reads a line only when the record it is in
    needs it, so the lines read so far end at the record just returned.
    """
    physical: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(data.decode("utf-8"), newline=""):
            physical.append(line)
            yield line

    records: list[list[str]] = []
    spans: list[tuple[int, int]] = []  # each record's physical lines
    reader = csv.reader(lines(), delimiter=sep)
    try:
        for record in reader:
            spans.append((spans[-1][1] if spans else 0, len(physical)))
            records.append(record)
    except csv.Error as exc:
        raise UnreadableCsvError(len(records), str(exc)) from None
    width = len(records[0])
    rows = [(i, len(r), [*r[:width], *[""] * (width - len(r))]) for i, r in enumerate(records[1:], start=1)]
    cells = pl.DataFrame({"row": [r[0] for r in rows], "_nfields": [r[1] for r in rows],
                          **{f"c{j}": [r[2][j] for r in rows] for j in range(width)}},
                         schema={"row": pl.Int64, "_nfields": pl.Int64,
                                 **{f"c{j}": pl.String for j in range(width)}})

    def as_read(i: int) -> str | None:
        if not 0 <= i < len(spans):
            return None
        return "\n".join(_without_break(line) for line in physical[slice(*spans[i])])

    def raw_text(rows: pl.DataFrame) -> pl.DataFrame:
        wanted = rows["row"].to_list()
        return pl.DataFrame({"row": wanted, "raw": [as_read(i) for i in wanted]},
                            schema={"row": pl.Int64, "raw": pl.String})

    return _Cells(records[0], _finish(cells, width), raw_text, records=len(records) - 1)


def _without_break(line: str) -> str:
    """A physical line without its break (LF, CRLF or CR), as Polars reads a line."""
    if line.endswith("\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(("\n", "\r")) else line


def _finish(cells: pl.DataFrame, width: int, *, trimmed: bool = False) -> pl.DataFrame:
    """Drop blank rows; give rows with the wrong number of fields the ``field_count`` code.

    A row is blank when every cell is empty (Excel often exports a tail of ``,,,,`` lines) and it
    has no more fields than the header, so that no text beyond the header's width is dropped unseen.
    ``trimmed``: no cell holds whitespace (``no_whitespace``), so an empty cell is null or "" as it is.
    """
    def empty(i: int) -> pl.Expr:
        text = pl.col(f"c{i}") if trimmed else pl.col(f"c{i}").str.strip_chars()
        return pl.col(f"c{i}").is_null() | (text == "")

    # only rows whose first cell is empty can be blank: the other cells are looked at on those alone
    candidates = cells.filter(empty(0))
    blank = candidates.filter(pl.all_horizontal(empty(i) for i in range(width)) & (pl.col("_nfields") <= width))
    if blank.height:
        cells = cells.filter(~pl.col("row").is_in(blank["row"].implode()))
    ragged = pl.col("_nfields") != width
    return cells.with_columns(
        pl.col("row").cast(pl.Int64), pl.col("_nfields").cast(pl.Int64),
        pl.when(ragged).then(pl.lit("field_count")).otherwise(pl.lit(None, pl.String)).alias(CODES))


def _join(cells: list, sep: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator="").writerow(["" if c is None else c for c in cells])
    return out.getvalue()


# --- XLSX and Parquet -----------------------------------------------------------------------------

def _from_frame(frame: pl.DataFrame, headers: list[str]) -> _Cells:
    """Typed or text cells with known headers → the common text form (row numbers are data rows)."""
    names = [f"c{i}" for i in range(len(headers))]
    frame = frame.select(_as_text(pl.col(c), frame.schema[c]).alias(n) for c, n in zip(frame.columns, names,
                                                                                        strict=True))
    cells = frame.with_row_index("row", offset=1).with_columns(_nfields=pl.lit(len(names)))

    def raw_text(rows: pl.DataFrame) -> pl.DataFrame:
        picked = cells.join(rows, on="row", how="semi", maintain_order="left")
        texts = [_join(list(r)) for r in picked.select(names).rows()]
        return pl.DataFrame({"row": picked["row"], "raw": texts}, schema={"row": pl.Int64, "raw": pl.String})

    return _Cells(headers, _finish(cells, len(names)), raw_text, records=frame.height)


def _as_text(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.List):
        return col.list.eval(pl.element().cast(pl.String)).list.join(";")
    return col.cast(pl.String)


def _read_xlsx(path: Path) -> _Cells:
    try:
        frame = pl.read_excel(path, engine="calamine", has_header=False, infer_schema_length=0,
                              drop_empty_rows=False, drop_empty_cols=False)
    except Exception as exc:  # calamine raises its own error types for broken workbooks
        if isinstance(exc, OSError):
            raise
        raise InputError(message_en=f"cannot read the workbook: {exc}",
                         message_zh=f"无法读取 Excel 文件：{exc}", file=str(path)) from None
    if frame.height == 0:
        raise InputError(message_en="the workbook's first sheet is empty",
                         message_zh="Excel 第一个工作表为空", file=str(path))
    headers = ["" if h is None else str(h).strip() for h in frame.row(0)]
    return _from_frame(frame.slice(1), headers)


def _read_parquet(path: Path) -> _Cells:
    try:
        frame = pl.read_parquet(path)
    except pl.exceptions.PolarsError as exc:
        raise InputError(message_en=f"cannot read the Parquet file: {exc}",
                         message_zh=f"无法读取 Parquet 文件：{exc}", file=str(path)) from None
    return _from_frame(frame, list(frame.columns))

