"""The partitioned read pass: a CSV cut into pieces of whole records, pieces parsed on threads, no row lost.

Why these tests: a cut one byte off (inside a quoted field, inside a GBK character, between CR and LF)
would split a record in two — two wrong rows, or a row silently shifted — and the parse on threads must
give exactly the table one read of the whole file gives, in file order.
"""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import given, settings

import medins.batch
import medins.partitioned as partitioned
from medins import stagetimes
from medins.batch import run_batch
from medins.claims.readers import read_claims
from medins.errors import InputError
from medins.partitioned import _csv_pieces, _cut, _NotUtf8, _read_pieces, _Spill, workers_for
from medins.policy.loader import load_policy

HEADER = "claim_id,person_id,visit_type,admit_date,hospital_zone,preapproved,total,self_pay,class_b,diagnosis"
#: Records of every awkward kind: a quoted line break, escaped quotes, a separator in quotes, an empty quoted
#: cell, Chinese text, a record much longer than a piece, a ragged row, a blank row and a bad date.
RECORDS = [
    'C1,P1,inpatient,2008-03-02,in_city,true,10000,0,0,"a ""quoted"" word"',
    'C2,P2,outpatient,2008-03-03,in_city,,120,0,0,"line one\nline two"',
    'C3,P1,inpatient,2008-04-02,东,true,2000.50,10,0,""',
    'C4,P3,inpatient,2008-05-02,in_city,true,300,0,0,"' + "长" * 400 + ',still one cell"',
    'C5,P4,inpatient,2008-13-02,in_city,true,300,0,0,x',
    'C6,P4,inpatient,2008-06-02,in_city,true,300,0,0',
    ',,,,,,,,,',
    'C7,P5,outpatient,2008-07-02,in_city,false,80,0,0,"""x"""',
    'C8,P5,outpatient,2008-07-03,in_city,false,90,0,0,"tail ""\n"" end"',
]


def text(newline: str = "\n", *, last_newline: bool = True) -> str:
    body = newline.join([HEADER, *(r.replace("\n", newline) for r in RECORDS)])
    return body + (newline if last_newline else "")


def records_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


CASES = {
    "lf": (text().encode("utf-8"), "auto"),
    "crlf": (text("\r\n").encode("utf-8"), "auto"),
    "gbk": (text().encode("gbk"), "gbk"),
    "gb18030 guessed": (text("\r\n").encode("gb18030"), "auto"),
    "bom": (b"\xef\xbb\xbf" + text().encode("utf-8"), "auto"),
    "no last newline": (text(last_newline=False).encode("utf-8"), "utf-8"),
}


@pytest.mark.parametrize("piece_bytes", [1, 7, 64, 300, 1 << 20])
@pytest.mark.parametrize("case", list(CASES))
def test_pieces_are_whole_records_that_add_up_to_the_file(tmp_path, monkeypatch, case, piece_bytes) -> None:
    """Each piece is the header line and whole records; together, in order, they are the file's records."""
    data, encoding = CASES[case]
    path = tmp_path / "claims.csv"
    path.write_bytes(data)
    monkeypatch.setattr(partitioned, "PIECE_BYTES", piece_bytes)
    try:
        pieces = list(_csv_pieces(path, encoding))
    except _NotUtf8:  # UTF-8 guessed from a first block of ASCII: read again as GB18030 (as run_partitioned does)
        assert encoding == "auto"
        pieces = list(_csv_pieces(path, "gb18030"))
    whole = text(last_newline=case != "no last newline").replace("\n", "\r\n" if "crlf" in case or "guessed" in case
                                                                   else "\n")
    expected = records_of(whole.encode("utf-8"))
    seen: list[list[str]] = []
    for piece, label, _done in pieces:
        assert label == ("utf-8" if encoding in ("auto", "utf-8") and "gb" not in case else encoding
                         if encoding != "auto" else "gb18030")
        rows = records_of(piece)
        assert rows[0] == expected[0]  # every piece starts with the header line
        seen += rows[1:]
        assert piece.endswith(b"\n") or piece is pieces[-1][0]  # a piece ends where a record ends
    assert seen == expected[1:]
    assert pieces[-1][2] == len(data)  # every byte consumed


def test_a_record_longer_than_a_piece_is_carried_whole(tmp_path, monkeypatch) -> None:
    """A quoted cell many pieces long (line breaks and quotes inside) is one record of one piece."""
    long_cell = '"' + ('x""\n' * 500) + '"'
    path = tmp_path / "long.csv"
    path.write_bytes(f"a,b\n1,{long_cell}\n2,y\n".encode())
    monkeypatch.setattr(partitioned, "PIECE_BYTES", 16)
    bodies = [records_of(p)[1:] for p, _, _ in _csv_pieces(path, "utf-8")]
    assert [r for body in bodies for r in body] == [["1", 'x"\n' * 500], ["2", "y"]]
    assert bodies[0][0] == ["1", 'x"\n' * 500]  # in the first piece, whole


def test_cut_scans_the_new_block_with_the_tail_parity() -> None:
    """``_cut`` on a block, given the parity of the quotes before it, finds the record end a scan of the
    whole text finds; and it returns the parity to carry on."""
    data = b'a,"b\nc",d\ne,"f""\n"\n"g\n'
    for split in range(len(data) + 1):
        head, block = data[:split], data[split:]
        end, parity = _cut(block, parity=head.count(b'"') % 2)
        whole = 0
        for at in range(len(data)):  # the last line break after ``split`` with an even count before it
            if at >= split and data[at:at + 1] == b"\n" and data.count(b'"', 0, at) % 2 == 0:
                whole = at + 1
        assert (split + end if end else 0) == whole
        assert parity == data.count(b'"') % 2


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60).map(lambda b: b.translate(bytes(b'"\n,a'[i % 4] for i in range(256)))),
       st.integers(0, 70), st.integers(0, 1), st.booleans())
def test_a_mapped_block_is_cut_as_its_bytes_are(tmp_path_factory, data: bytes, at: int, parity: int,
                                                 numpy: bool) -> None:
    """A block seen through a mapping of the file (``_Mapped``, any offset in it, counts by numpy or not) is cut
    where the same bytes read are cut, and viewed as those bytes."""
    path = tmp_path_factory.mktemp("mapped") / "f.csv"
    path.write_bytes(b"x" * at + data + b"tail")
    with path.open("rb") as handle, pytest.MonkeyPatch.context() as patch:
        patch.setattr(partitioned, "PIECE_BYTES", len(data))
        patch.setattr(partitioned, "NUMPY_BYTES", 0 if numpy else partitioned.NUMPY_BYTES)
        block = partitioned._map_block(handle, at, at + len(data) + 4)
        if not data:
            assert block == b""
            return
        assert bytes(partitioned._view(block)) == data
        assert _cut(block, parity=parity) == _cut(data, parity=parity)
        for k in range(len(data) + 1):
            assert bytes(partitioned._view(block, k)) == data[k:]
            assert block.count(b'"', k) == data.count(b'"', k)


def test_a_file_shorter_than_when_sized_is_read_not_mapped(tmp_path) -> None:
    """A block the file no longer holds (it shrank after it was sized) cannot be mapped: it is read, as it was."""
    path = tmp_path / "f.csv"
    path.write_bytes(b"0123456789")
    with path.open("rb") as handle:
        assert partitioned._map_block(handle, 4, 20) == b"456789"  # sized 20 bytes, 10 left


def test_cut_of_a_block_inside_a_quoted_field_finds_nothing() -> None:
    assert _cut(b"no quote here\nand a line\n", parity=1) == (0, 1)
    assert _cut(b"x\ny\n", parity=0) == (4, 0)
    assert _cut(b'h1,h2\n"a\nb",c\n', first=True) == (6, 0)


def _read_in_pieces(path: Path, monkeypatch, threads: int, piece_bytes: int = 120, encoding: str = "auto"):
    monkeypatch.setattr(partitioned, "PIECE_BYTES", piece_bytes)
    monkeypatch.setattr(partitioned, "READ_THREADS", threads)
    spill = _Spill(path.parent / f"spill-{threads}", 3, in_memory=True)
    with workers_for(1) as workers:
        try:
            label = _read_pieces(path, encoding, None, spill, lambda *_: None, workers)
        except _NotUtf8:  # as run_partitioned: UTF-8 guessed from an ASCII start, a later piece is not
            spill = _Spill(path.parent / f"again-{threads}", 3, in_memory=True)
            label = _read_pieces(path, "gb18030", None, spill, lambda *_: None, workers)
    claims = pl.concat([frame.with_columns(pl.col("row") + offset) for k in sorted(spill.files)
                        for frame, offset in spill.files[k]]).sort("row")
    rejects = pl.concat(spill.rejects) if spill.rejects else None
    return label, spill, claims, rejects


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_pieces_read_on_threads_give_the_same_tables_as_one_read(tmp_path, monkeypatch, encoding) -> None:
    """Claims and rejects of the pieces (parsed on two threads, collected in file order, rows renumbered)
    are exactly those of one read of the whole file; rows read = claims + rejects."""
    path = tmp_path / "claims.csv"
    path.write_bytes(("".join(text() for _ in range(1)) + "\n".join(
        f"D{i},P{i % 7},inpatient,2008-0{1 + i % 9}-1{i % 10},in_city,true,{100 + i}.5,0,0,x" for i in range(60))
        + "\n").encode(encoding))
    names: set[str] = set()
    parse = partitioned.read_csv_piece

    def recording(*args, **kwargs):
        names.add(threading.current_thread().name)
        return parse(*args, **kwargs)

    monkeypatch.setattr(partitioned, "read_csv_piece", recording)
    whole = read_claims(path)
    label, spill, claims, rejects = _read_in_pieces(path, monkeypatch, threads=2)
    assert spill.pieces > 3 and all(n.startswith("medins-read") for n in names)
    assert label == whole.encoding
    assert claims.equals(whole.claims.select(claims.columns))
    assert rejects is not None and rejects.sort("row").equals(whole.rejects)
    assert spill.rows_read == whole.rows_read == claims.height + rejects.height
    # one thread: the same again
    _label, _spill, one, one_rejects = _read_in_pieces(path, monkeypatch, threads=1)
    assert one.equals(claims) and one_rejects is not None and one_rejects.equals(rejects)


def test_the_in_process_read_pass_is_timed_once(tmp_path, monkeypatch) -> None:
    """Pieces parsed on threads share the process's CPU clock: the pass is one ``read/validate`` stage (no
    piece counted twice), and no ``spill`` stage is recorded apart from it."""
    path = tmp_path / "claims.csv"
    path.write_bytes(text().encode("utf-8"))
    times = tmp_path / "stages.tsv"
    monkeypatch.setenv(stagetimes.ENV, str(times))
    _read_in_pieces(path, monkeypatch, threads=2, piece_bytes=64)
    found = {t.name: t.calls for t in stagetimes.totals(times)}
    assert found == {"read/validate": 1}


def test_every_row_ends_settled_or_rejected(tmp_path, monkeypatch) -> None:
    """Through the partitioned path in tiny pieces on threads: rows in = settled + rejected, with the very
    bytes of settling the file whole."""
    path = tmp_path / "claims.csv"
    path.write_bytes(text("\r\n").encode("gb18030"))
    suqian = load_policy("suqian-2007")
    whole = run_batch(path, suqian, tmp_path / "whole.csv", partitions=1)
    monkeypatch.setattr(medins.batch, "PARTITION_BYTES", 64)
    monkeypatch.setattr(partitioned, "PIECE_BYTES", 90)
    monkeypatch.setattr(partitioned, "READ_THREADS", 2)
    parts = run_batch(path, suqian, tmp_path / "parts.csv")
    data_rows = len(records_of(text().encode("utf-8"))) - 2  # less the header and the blank row
    assert parts.rows_read == data_rows == parts.claims_settled + parts.rows_rejected
    assert (parts.rows_read, parts.rows_rejected) == (whole.rows_read, whole.rows_rejected)
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert (tmp_path / "parts.rejects.csv").read_bytes() == (tmp_path / "whole.rejects.csv").read_bytes()


@pytest.mark.parametrize("encoding", ["auto", "utf-8"])
@pytest.mark.parametrize("bad", [b"\xff", b"\xb6\xab" * 40])
def test_pieces_checked_by_their_task_read_as_pieces_checked_when_cut(tmp_path, monkeypatch, encoding, bad) -> None:
    """Pieces whose UTF-8 the parsing task checks (``_Unchecked``) give the claims, rejects and encoding of pieces
    checked as they are cut: a few undecodable bytes in a later piece are rejected rows (``encoding``), a later
    piece of GBK text makes a guessed UTF-8 file read again as GB18030, and a declared one refused; on two
    threads as on one."""
    rows = [f"D{i},P{i % 7},inpatient,2008-0{1 + i % 9}-1{i % 10},东,true,{100 + i}.5,0,0,x" for i in range(80)]
    rows[50] += bad.decode("latin-1")
    path = tmp_path / "claims.csv"
    path.write_bytes((text() + "\n".join(rows) + "\n").encode("utf-8").replace(bad.decode("latin-1").encode(), bad))
    outcomes = []
    fallbacks: list[bool] = []
    as_utf8 = partitioned._as_utf8
    monkeypatch.setattr(partitioned, "_as_utf8", lambda *a: fallbacks.append(True) or as_utf8(*a))
    for unchecked in (False, True):
        cut = partitioned._csv_pieces
        monkeypatch.setattr(partitioned, "_csv_pieces", lambda p, e, unchecked=unchecked, cut=cut, **_k:
                            cut(p, e, unchecked=unchecked))
        for threads in (1, 2):
            try:
                label, spill, claims, rejects = _read_in_pieces(path, monkeypatch, threads, 256, encoding)
            except InputError as exc:
                outcomes.append(("refused", exc.message_en))
                continue
            assert spill.pieces > 3
            outcomes.append((label, claims, rejects))
        monkeypatch.setattr(partitioned, "_csv_pieces", cut)
    assert fallbacks  # the unchecked pieces were checked by their task, and the bad one redone
    first = outcomes[0]
    for other in outcomes[1:]:
        if first[0] == "refused":
            assert other == first
        else:
            assert other[0] == first[0] and other[1].equals(first[1]) and other[2].equals(first[2])
    if len(bad) == 1:  # one bad byte: its row is rejected, the others read
        assert first[0] == "utf-8" and "encoding" in first[2]["reason"].to_list()
    else:  # GBK text in a later piece: guessed UTF-8 is read again as GB18030; declared UTF-8 is refused
        assert first[0] == ("gb18030" if encoding == "auto" else "refused")


@pytest.mark.parametrize("parsers", [1, 2, 3])
def test_a_file_of_several_pieces_is_cut_in_a_multiple_of_the_parsers(tmp_path, monkeypatch, parsers) -> None:
    """A regular file spanning several ``PIECE_BYTES`` is cut into a multiple of ``parsers`` pieces, none larger
    than ``PIECE_BYTES`` allows, whose records are the file's (what 7 pieces on 2 threads left idle)."""
    rows = [f"D{i},P{i % 7},inpatient,2008-01-1{i % 10},in_city,true,{100 + i}.5,0,0,x" for i in range(700)]
    data = ("claim_id,person_id,kind,date,zone,insured,amount,a,b,c\n" + "\n".join(rows) + "\n").encode()
    path = tmp_path / "claims.csv"
    path.write_bytes(data)
    piece_bytes = len(data) // 7 + 1  # 7 blocks of PIECE_BYTES
    monkeypatch.setattr(partitioned, "PIECE_BYTES", piece_bytes)
    for unchecked in (False, True):
        pieces = list(_csv_pieces(path, "utf-8", unchecked=unchecked, parsers=parsers))
        bodies = [records_of(p.data if isinstance(p, partitioned._Unchecked) else p) for p, _, _ in pieces]
        assert len(pieces) == (7 if parsers == 1 else -(-7 // parsers) * parsers)
        assert all(len(p.data if isinstance(p, partitioned._Unchecked) else p) <= piece_bytes + 200 for p, _, _ in pieces)
        assert [r for body in bodies for r in body[1:]] == records_of(data)[1:]
        assert pieces[-1][2] == len(data)
    assert partitioned._block_bytes(None, 2) == piece_bytes  # a pipe: cut as it comes
    assert partitioned._block_bytes(piece_bytes, 2) == piece_bytes  # one piece: not cut in two


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["a,1", "东,2", '"x,""y""",3', "长长,44"]), min_size=1, max_size=30),
       st.integers(0, 40), st.sampled_from([None, b"\xff", b"\xe4\xb8"]), st.integers(3, 64))
def test_the_first_piece_is_the_file_start_and_checked_unless_its_block_was(tmp_path_factory, rows: list[str],
                                                                           where: int, bad: bytes | None,
                                                                           piece_bytes: int) -> None:
    """The first piece is the header line and the records after it, as the file has them (not copied anew), and
    its UTF-8 is checked unless the first block was found UTF-8 as a whole: an undecodable byte in it is marked
    (its row rejected as ``encoding``) or the file is read again as GB18030, never passed on as it is."""
    data = ("h,n\n" + "\n".join(rows) + "\n").encode()
    at = len(data)
    if bad is not None:
        at = data.index(b"\n") + 1 + where % max(1, len(data) - data.index(b"\n") - 1)
        at = data.rfind(b"\n", 0, at) + 1  # at the start of a record: never inside a character
        data = data[:at] + bad + data[at:]
    path = tmp_path_factory.mktemp("first") / "claims.csv"
    path.write_bytes(data)
    saved = partitioned.PIECE_BYTES
    partitioned.PIECE_BYTES = piece_bytes
    try:
        pieces = list(_csv_pieces(path, "auto"))
    except _NotUtf8:
        assert bad is not None
        return
    finally:
        partitioned.PIECE_BYTES = saved
    first, label = pieces[0][0], pieces[0][1]
    if label != "utf-8":  # a first block that is not UTF-8: the file is GB18030, decoded
        assert at < max(piece_bytes, 4)
        return
    if at >= len(first):
        assert data.startswith(first)
    else:  # the undecodable bytes were marked, nothing else changed
        assert "\ufffd" in first.decode("utf-8")
    assert sum(p.count(b"\n") - (i > 0) for i, (p, _, _) in enumerate(pieces)) == data.count(b"\n")  # no record lost


@pytest.mark.parametrize(("threads", "jobs"), [(1, 1), (2, 1), (1, 2)])
def test_an_unclosed_quote_is_named_at_its_file_row_whichever_piece_it_is_in(tmp_path, monkeypatch, threads,
                                                                             jobs) -> None:
    """Pieces number their rows from 1 until they are collected: the error of a quote never closed (the csv
    module's field limit reached) names the row of the file, as one read of the whole file does — on threads and
    in worker processes alike."""
    rows = [f"D{i},P{i % 7},inpatient,2008-01-1{i % 10},in_city,true,{100 + i}.5,0,0,x" for i in range(1, 5001)]
    rows[1999] = rows[1999].replace(",P", ',"P', 1)  # row 2000 opens a quote; the rows after it exceed 128 KiB
    path = tmp_path / "claims.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as whole:
        read_claims(path)
    monkeypatch.setattr(partitioned, "PIECE_BYTES", 4096)
    monkeypatch.setattr(partitioned, "READ_THREADS", threads)
    with pytest.raises(InputError) as pieces:
        run_batch(path, load_policy("suqian-2007"), tmp_path / "out.csv", partitions=2, jobs=jobs)
    assert "from row 2000 on" in whole.value.message_en
    assert pieces.value.message_en == whole.value.message_en and pieces.value.hint("zh") == whole.value.hint("zh")
    assert not (tmp_path / "out.csv").exists()


def _utf8_but_for_a_cut_end(block: bytes) -> bool:
    """The definition :func:`partitioned._utf8_start` meets: the whole block decoded by Python, a character cut by
    its end still counting as UTF-8."""
    try:
        block.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start >= len(block) - 3 and exc.reason == "unexpected end of data"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["a", "\n", ",", "东", "长长\n", "𠀀", "é"]).map(str.encode)
                | st.sampled_from([b"\xff", b"\xe4\xb8", b"\xe4", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80"]),
                max_size=30), st.integers(0, 3))
def test_a_first_block_is_utf8_as_python_decodes_it(parts: list[bytes], drop: int) -> None:
    """The first block's test (Polars' check of the block, then of the block up to its last line break, Python
    decoding only the bytes after it) says what decoding the whole block says: UTF-8, a character the block's end cuts
    still counting, an undecodable byte anywhere (before or after the last LF, or just before it) not."""
    block = b"".join(parts)
    block = block[:max(0, len(block) - drop)]  # cut at any byte, as a block is
    assert partitioned._utf8_start(block) == _utf8_but_for_a_cut_end(block)
