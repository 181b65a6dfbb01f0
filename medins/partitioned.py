"""Out-of-core batch: settle a claims file larger than memory, a few person-hash partitions at a time.

Why it is exact: every piece of year-to-date state (deductibles, caps, cumulative bands, accounts)
belongs to one person, so claims split by a hash of ``person_id`` settle independently with the very
same engine; the partitions' outputs are then put back in input-row order. The same split is how
the engine runs on a cluster (README, "Beyond one machine").

Three passes, each holding a bounded part of the file in memory:

1. **read** — the file is read in pieces of whole records (a CSV in blocks of at most ``PIECE_BYTES``,
   as many as a multiple of the pieces parsed at once (``_block_bytes``), cut at a line break outside
   quotes, GBK/GB18030 decoded block by block; a Parquet file in row slices)
   by the same reader as a small file (``read_csv_piece``: field counts, blank rows, rejects quoting
   the original line). Typed claims go to one Arrow IPC file per (partition, piece); rejects are
   kept. A piece numbers its rows from 1; they are renumbered after the earlier pieces' records
   when the piece is collected (rejects) or its files are loaded (claims), pieces being collected
   in file order.
2. **settle** — each partition's claims are settled (in input order, so sorted by row); the output
   rows, their text formatted (lists joined, text guarded: ``writers.format_text``) and their money
   still in fen (the smallest form), are cut by input-row range — slices, not copies — and spilled.
   In this process, partitions are settled and finished so (``_finish_partition``) two at a time, each on
   a thread of its own (``_settle_here``), their results taken in partition order.
3. **write** — range by range, in order, the partitions' rows of the range are put in input-row order
   (one gather), their money formatted as yuan and appended to the output (CSV: appended text,
   ``writers.write_csv``; Parquet: ``writers.format_money``, one file per range, then streamed into one;
   XLSX holds at most a million rows anyway and is written whole).

With ``jobs`` > 1, pieces are parsed and partitions settled by that many spawned worker processes
(:func:`workers_for`), which are handed CSV bytes or Parquet row ranges and hand back file names; with
1 (the default on 2 CPUs: :func:`default_jobs`), the same task functions run in this process — the
pieces on ``READ_THREADS`` threads and the partitions on ``SETTLE_THREADS`` threads (Polars releases the
GIL) — and a file of up to ``batch.IN_MEMORY_BYTES`` keeps its pieces as tables
instead of spill files (``_store``/``_load``), each partition's claims let go once it is settled:
the engine is faster on partitions of a few hundred thousand claims than on a million at once.

The output is byte for byte what the in-memory path writes (tests/test_batch.py checks it).
"""

from __future__ import annotations

import codecs
import mmap
import os
import signal
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import polars as pl

from medins import stagetimes
from medins.atomic import OutputFiles, writing
from medins.claims.readers import (
    NUMPY_BYTES,
    ReadResult,
    _is_utf8,
    count_byte,
    csv_shape,
    decode_block_marking,
    decode_marking,
    flag_utf8_lines,
    read_claims,
    read_csv_piece,
    read_frame_piece,
    utf8_wins,
)
from medins.claims.writers import (
    _SUFFIXES,
    Format,
    _prepare,
    _write,
    format_money,
    format_text,
    write_csv,
    write_rejects,
)
from medins.engine.settle import MONEY_OUTPUTS, OUTPUT_COLUMNS, settle
from medins.errors import InputError, UnreadableCsvError

if TYPE_CHECKING:  # imported where the workers start: one process (``--jobs 1``, the default on 2 CPUs) needs none
    from concurrent.futures import ProcessPoolExecutor

#: Bytes of CSV read and parsed at a time (about 150,000 claims): a parse peaks near 300 MB.
PIECE_BYTES = 16 * 1024 * 1024
#: Rows of a Parquet input read at a time.
PIECE_ROWS = 200_000
#: Output rows put back in order at a time, so this sets the write's share of peak memory. Measured when two
#: ranges were in flight (one formatted, one appended; now one at a time): at 250,000 the 1M-claim benchmark
#: peaked at 1,015 MiB, at 100,000 at 870–890 MiB for the same CPU time (50,000 saved little more); with
#: one range, 25,000 to 200,000 rows write in the same CPU time.
RANGE_ROWS = 100_000
_SEED = 20071
#: A part of the file kept between passes: a spill file, or the table itself when the file is small.
Stored = Path | pl.DataFrame
_BOM = codecs.BOM_UTF8
_GB = ("gbk", "gb2312", "gb18030", "cp936")


class _NotUtf8(Exception):
    """``--encoding auto`` guessed UTF-8 from the start of the file, and a later piece is not UTF-8."""


def run_partitioned(path: Path, policy, output: Path, rejects_path: Path, *, partitions: int, encoding: str,
                    mapping: dict | None, fmt: str | None, stage: Callable[[str, float], None], start: float,
                    files: OutputFiles, jobs: int = 1, in_memory: bool = False, before_commit=None):
    """Settle ``path`` in ``partitions`` person-hash partitions; see the module docstring.

    ``jobs`` > 1 parses pieces and settles partitions in that many worker processes at once. The
    outputs are written to ``files``' temporaries and committed together; the spill folder is
    ``files.scratch()`` (removed by ``files``, after the workers have stopped).
    """
    from medins.batch import BatchResult

    kind: Format = fmt or _SUFFIXES.get(output.suffix.lower(), "csv")  # type: ignore[assignment]
    folder = files.scratch()
    # the workers stop (this context) before the spill folder they write in is removed (``files``)
    with workers_for(jobs, policy) as workers:
        spill = _Spill(folder, partitions, in_memory=in_memory)
        try:
            label = _read_pieces(path, encoding, mapping, spill, stage, workers)
        except _NotUtf8:
            spill = _Spill(folder / "again", partitions, in_memory=in_memory)
            label = _read_pieces(path, "gb18030", mapping, spill, stage, workers)

        items = spill.shape == "items"
        # each partition's claims are handed over and let go: kept in memory, they are freed once settled.
        # A worker settles and finishes its partitions (given the policy when it started: it keeps what the policy
        # memoises between partitions); in this process, threads do (``_settle_here``).
        keys = sorted(spill.files)
        if jobs > 1:
            futures = deque(workers.submit(_settle_partition, None, *spill.take(k), items, spill.target, k, kind)
                            for k in keys)
            finished: list[tuple[pl.DataFrame, dict[int, Stored]]] = []
            for done in range(len(keys)):  # in partition order, whatever order they finish in
                finished.append(futures.popleft().result())  # let go of the task: it holds its result
                stage("settle", 0.45 + 0.4 * (done + 1) / len(keys))
        else:
            finished = _settle_here(policy, spill, keys, items, kind, stage)
        facts: list[pl.DataFrame] = []
        ranges: dict[int, list[Stored]] = {}
        for aggregate, pieces in finished:
            facts.append(aggregate)
            for r, piece in pieces.items():
                ranges.setdefault(r, []).append(piece)
        del finished

        stage("write", 0.85)
        with writing(output.parent):
            _write_ranges(ranges, output, files.temp(output), kind, folder, stage)
        with stagetimes.stage("finish"):
            rejects = pl.concat(spill.rejects) if spill.rejects else None
            if rejects is None:
                from medins.claims.parse import REJECTS_SCHEMA

                rejects = REJECTS_SCHEMA.to_frame()
            write_rejects(rejects, rejects_path, into=files.temp(rejects_path))
            summary = _reaggregate(pl.concat(facts)) if facts else pl.DataFrame()
            if before_commit is not None:  # the caller's last word on the summary: nothing is replaced
                before_commit(summary)
            files.commit()
        settled_count = int(summary["_n"].sum()) if summary.height else 0
    return BatchResult(rows_read=spill.rows_read, rows_rejected=rejects.height, claims_settled=settled_count,
                       shape=spill.shape, encoding=label, output=output, rejects=rejects_path, settlement=summary,
                       rejects_table=rejects, seconds=time.perf_counter() - start)


# --- workers --------------------------------------------------------------------------------------

class _Deferred:
    """A task of :class:`_InProcess`: run when its result is first asked for."""

    def __init__(self, fn: Callable, args: tuple) -> None:
        self._call: tuple[Callable, tuple] | None = (fn, args)
        self._result = None

    def result(self):
        if self._call is not None:
            fn, args = self._call
            self._call = None  # the task's inputs (a partition's claims) are let go as soon as it has run
            self._result = fn(*args)
        return self._result


class _InProcess:
    """``jobs=1``: the tasks run here, one after the other, through the same functions as the workers.

    A task runs when its result is taken (results are taken in order): the progress bar moves as each
    partition is settled, a partition's claims are freed once it is, and an error stops the run at
    once, before any later task.
    """

    window = 1

    def submit(self, fn: Callable, *args) -> _Deferred:
        return _Deferred(fn, args)


#: The policy a worker process settles under (given once, when it starts).
_WORKER_POLICY = None
_PR_SET_PDEATHSIG = 1


def _start_worker(policy, parent: int | None = None) -> None:
    """A worker's start: keep the policy, die with the parent, leave Ctrl-C to the parent.

    Why: a parent killed with SIGKILL cannot stop its workers, and orphaned workers would go on
    settling (and spilling gigabytes) for nobody. On Linux the kernel sends them SIGKILL when the
    parent dies (``PR_SET_PDEATHSIG``); if it died before that was set, the worker ends itself. Ctrl-C
    reaches every process of the terminal: the workers ignore it and the parent ends them after its
    cleanup (``workers_for``).
    """
    global _WORKER_POLICY
    _WORKER_POLICY = policy
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        import ctypes

        with suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


@contextmanager
def workers_for(jobs: int, policy=None) -> Iterator:
    """``jobs`` worker processes (spawned: Polars' threads do not survive a fork), or this process for 1.

    Why processes: much of a batch's time is spent in short Polars passes and the Python between
    them, which leave other cores idle; partitions settled at once use them. Each worker costs its own
    start (Python and imports) and the Arrow files the partitions pass through, so on 2 CPUs one
    process is the better default (:data:`CPUS_PER_JOB`).
    """
    if jobs <= 1:
        yield _InProcess()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from medins.policy.cache import plan_of

    # the workers share the CPUs: each gets its part of Polars' thread pool (read when they start),
    # unless the user sized the pool
    threads = os.environ.get("POLARS_MAX_THREADS")
    os.environ["POLARS_MAX_THREADS"] = threads or str(max(1, usable_cpus() // jobs))
    try:
        # a worker unpickles the policy's plan form: no pydantic, no schema models to import
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker,
                                   initargs=(None if policy is None else plan_of(policy), os.getpid()))
        for _ in range(jobs):
            pool.submit(_ready)  # start the workers (imports) while this process cuts the first piece
    finally:
        if threads is None:
            del os.environ["POLARS_MAX_THREADS"]
        else:
            os.environ["POLARS_MAX_THREADS"] = threads
    pool.window = jobs + 1  # type: ignore[attr-defined]  # pieces in flight: bounds the memory of reading
    pool.parsers = jobs  # type: ignore[attr-defined]  # pieces parsed at once: the file is cut into a multiple
    try:
        yield pool
    except BaseException:
        _end_workers(pool)  # an error, Ctrl-C or SIGTERM: the partitions in flight are of no use any more
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes now, rather than waiting for the tasks they are running.

    ``ProcessPoolExecutor`` has no public way to do it before Python 3.14 (``terminate_workers``).
    """
    ending = getattr(pool, "terminate_workers", None)
    if ending is not None:
        ending()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with suppress(OSError, ValueError, AttributeError):
            process.kill()
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with suppress(OSError, ValueError, AttributeError, AssertionError):
            process.join(5)


#: CPUs for each worker process when ``--jobs`` is not given. Measured on 2 CPUs (1,000,000 claims): one
#: process, whose Polars threads use both CPUs, settles in two thirds of the CPU time of two workers (each
#: worker starts its own Python and imports, and the partitions pass through Arrow files) in as little or
#: less wall time, and with less memory. So a worker gets two CPUs, and 2 CPUs mean no worker at all.
CPUS_PER_JOB = 2


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity on Linux, else all of the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_jobs(limit: int = 4) -> int:
    """Worker processes for a large file when ``--jobs`` is not given: one per :data:`CPUS_PER_JOB` CPUs
    this process may use (1: no worker, the partitions settled here), at most ``limit``."""
    return max(1, min(limit, usable_cpus() // CPUS_PER_JOB))


def _ready() -> None:
    """A no-op whose only effect is that a worker has imported this module."""


@dataclass
class _Piece:
    """A piece read and spilled: its records, rows and rejects (rows numbered within the piece) and its files."""

    records: int
    rows_read: int
    shape: str
    rejects: pl.DataFrame
    files: dict[int, Stored]
    item_files: dict[int, Stored]


#: Spill files live seconds on a local disk, but a claims table spilled uncompressed is five times its CSV
#: (sixty-odd columns, the payer columns mostly empty): 7.2 GB for a 1.1 GB file of 10,000,000 claims.
#: LZ4 writes a tenth of that and costs no measurable CPU to write or read (pieces of 75,000 claims
#: split 34 ways: 4 MB instead of 43 MB), so the page cache holds it and the disk is spared.
_SPILL_COMPRESSION = "lz4"


def _store(frame: pl.DataFrame, folder: Path | None, name: str) -> Stored:
    """Keep ``frame`` for a later pass: in ``folder`` as an Arrow file, or as it is (``folder`` None)."""
    if folder is None:
        return frame
    with writing(folder.parent):  # a full disk while spilling, even in a worker: the user's message, whole
        frame.write_ipc(folder / name, compression=_SPILL_COMPRESSION)
    return folder / name


def _load(stored: Stored) -> pl.DataFrame:
    """A part kept by :func:`_store`, taken: a spill file is removed once read (each is read once).

    Why at once: the spill folder was removed whole at the end of the run, after the commit, and removing a file
    frees its cached pages (spill files live seconds: they are all in the page cache, most never written to the
    disk); at the end of a 1,000,000-claim run with ``--jobs 2`` that took 0.74 s for 144 files (107 MB), on the
    way out. Removed as they are read, by the thread or worker that reads them, the folder is empty by then. A
    file that cannot be removed (Windows, while mapped) is left to the end, as before.
    """
    if isinstance(stored, pl.DataFrame):
        return stored
    frame = pl.read_ipc(stored)
    with suppress(OSError):
        os.unlink(stored)
    return frame


def _spill_piece(read: ReadResult, folder: Path | None, partitions: int, n: int) -> _Piece:
    files: dict[int, Stored] = {}
    item_files: dict[int, Stored] = {}
    claims = read.claims.with_columns(_part=pl.col("person_id").hash(seed=_SEED) % partitions)
    for (k,), part in claims.partition_by("_part", as_dict=True, include_key=False).items():
        files[int(k)] = _store(part, folder, f"claims-{k}-{n}.arrow")
    if read.shape == "items" and read.items.height:
        items = read.items.join(claims.select(claim_row="row", _part="_part"), on="claim_row", how="inner",
                                maintain_order="left")
        for (k,), part in items.partition_by("_part", as_dict=True, include_key=False).items():
            item_files[int(k)] = _store(part, folder, f"items-{k}-{n}.arrow")
    return _Piece(read.records, read.rows_read, read.shape, read.rejects, files, item_files)


def _settle_partition(policy, claim_files: list[tuple[Stored, int]], item_files: list[tuple[Stored, int]],
                      items: bool, folder: Path | None, k: int, kind: Format) -> tuple[pl.DataFrame, dict[int, Stored]]:
    """Task of a worker process or a settling thread: settle partition ``k`` and finish it
    (:func:`_finish_partition`)."""
    return _finish_partition(_settle_claims(policy, claim_files, item_files, items), folder, k, kind)


def _settle_claims(policy, claim_files: list[tuple[Stored, int]], item_files: list[tuple[Stored, int]],
                   items: bool) -> pl.DataFrame:
    """Task: settle one partition's claims (``batch.BATCH_KEEP`` and ``row`` kept), sorted by input row."""
    from medins.batch import BATCH_KEEP

    policy = policy if policy is not None else _WORKER_POLICY
    with stagetimes.stage("partition load"):  # its pieces loaded (or taken) and put together
        claims = pl.concat([_load(f).with_columns(pl.col("row") + offset) for f, offset in claim_files],
                           rechunk=True)
        lines = None
        if items:
            from medins.claims.parse import ITEMS_SCHEMA

            lines = pl.concat([_load(f).with_columns(pl.col("claim_row") + offset) for f, offset in item_files],
                              rechunk=True) if item_files else ITEMS_SCHEMA.to_frame()
    # the codes as texts only (``BATCH_KEEP``): the output writes them, the summary aggregate reads the reasons'
    settled = settle(policy, claims, lines, keep=(*BATCH_KEEP, "row"), lists=False)
    del claims, lines
    if not settled["row"].is_sorted():  # claims grouped from line items come in claim order
        settled = settled.sort("row")
    return settled


def _finish_partition(settled: pl.DataFrame, folder: Path | None, k: int,
                      kind: Format) -> tuple[pl.DataFrame, dict[int, Stored]]:
    """Partition ``k``'s settlement as the output will hold it, cut by input-row range and stored.

    Returns the partition's summary aggregate and its output piece for each range: ``batch.output_table``
    rows, their text formatted for ``kind`` (``writers.format_text``: lists joined, text guarded), their money
    still Int64 fen (half the size of the Decimal it is written as: formatted at the write), and their input
    ``row``. Formatting is cell by cell, so formatting pieces and then putting them in order writes what putting
    them in order and then formatting wrote; done here, it runs beside the engine settling another partition (a
    settling thread, or a worker) rather than after the last partition.
    """
    from medins.batch import output_table

    with stagetimes.stage("output table"):
        block = format_text(output_table(settled).with_columns(row=settled["row"]), kind, MONEY_OUTPUTS)
    pieces = {r: _store(part, folder, f"out-{r}-{k}.arrow") for r, part in _by_range(block)}
    return _aggregate(settled), pieces


#: Partitions settled at once in this process (``--jobs 1``), each on a thread of its own. Why threads: the engine
#: is many short Polars queries, which release the interpreter while they run, and the Python between them,
#: which does not; one partition settled at a time (and finished on a thread beside the next one) kept one CPU
#: busy and left the other idle most of the engine's time. Two partitions at once fill each other's gaps.
#: Partitions are independent (all year-to-date state is one person's), and the engine keeps no state between
#: calls but the policy's memo (a dict: its look-ups and stores are atomic), ``functools`` caches and the NumPy
#: scans' workspace (one per thread: ``scan.Workspace``).
SETTLE_THREADS = min(2, usable_cpus())


def _settle_here(policy, spill: _Spill, keys: list[int], items: bool, kind: Format,
                 stage: Callable[[str, float], None]) -> list[tuple[pl.DataFrame, dict[int, Stored]]]:
    """Pass 2 in this process: each partition settled and finished (:func:`_finish_partition`), on
    :data:`SETTLE_THREADS` threads at once; the results are taken in partition order, whatever order they end
    in, so the output does not depend on which thread was quicker.

    At most that many partitions are in flight: the next one is handed over (taken from ``spill``) when the
    oldest one's result is taken, so an error in a thread is raised here before more than that many
    partitions after it have started; when this thread raises (an engine error, Ctrl-C), the running tasks
    are waited for, so that no output temporary is written to after the run has removed it. The threads'
    stages are recorded as ``beside``; this thread's wait for them is the ``engine`` stage (the wall time of
    the whole pass, and the CPU of all the threads). With one thread the partitions are settled here, in turn.
    """
    count = max(1, SETTLE_THREADS)
    finished: list[tuple[pl.DataFrame, dict[int, Stored]]] = []
    if count == 1:
        for done, k in enumerate(keys):
            finished.append(_settle_partition(policy, *spill.take(k), items, spill.target, k, kind))
            stage("settle", 0.45 + 0.4 * (done + 1) / len(keys))
        return finished
    pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="medins-settle")
    try:
        with stagetimes.stage("engine"):
            waiting = iter(keys)
            futures: deque[Future] = deque()

            def send() -> None:
                k = next(waiting, None)
                if k is not None:
                    futures.append(pool.submit(_settle_partition, policy, *spill.take(k), items, spill.target, k,
                                               kind))

            for _ in range(count):
                send()
            for done in range(len(keys)):
                finished.append(futures.popleft().result())  # let go of the task: it holds its result
                send()
                stage("settle", 0.45 + 0.4 * (done + 1) / len(keys))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return finished


def _by_range(block: pl.DataFrame) -> Iterator[tuple[int, pl.DataFrame]]:
    """The rows of ``block`` (sorted by ``row``) in each output range: slices, no copy."""
    if not block.height:
        return
    rows = block["row"]
    first, last = (rows[0] - 1) // RANGE_ROWS, (rows[-1] - 1) // RANGE_ROWS
    starts = pl.Series([r * RANGE_ROWS + 1 for r in range(first, last + 2)], dtype=rows.dtype)
    cuts = rows.search_sorted(starts, side="left").to_list()
    for r, begin, end in zip(range(first, last + 1), cuts, cuts[1:], strict=False):
        if end > begin:
            yield r, block.slice(begin, end - begin)


class _Spill:
    """The pieces read so far: their files by partition, rejects and counts, rows renumbered file-wide."""

    def __init__(self, folder: Path, partitions: int, *, in_memory: bool = False) -> None:
        folder.mkdir(exist_ok=True)
        self.folder, self.partitions = folder, partitions
        self.target = None if in_memory else folder  # where pieces are stored (None: kept as tables)
        self.files: dict[int, list[tuple[Stored, int]]] = {}
        self.item_files: dict[int, list[tuple[Stored, int]]] = {}
        self.rejects: list[pl.DataFrame] = []
        self.rows_read = 0
        self.records = 0  # records of the pieces collected so far: the next piece's row offset
        self.shape = "claims"
        self.pieces = 0

    def next_index(self) -> int:
        self.pieces += 1
        return self.pieces - 1

    def collect(self, piece: _Piece) -> None:
        """Take a finished piece (pieces are collected in file order)."""
        offset = self.records
        self.records += piece.records
        self.rows_read += piece.rows_read
        self.shape = piece.shape
        if piece.rejects.height:
            self.rejects.append(piece.rejects.with_columns(pl.col("row") + offset))
        for k, file in piece.files.items():
            self.files.setdefault(k, []).append((file, offset))
        for k, file in piece.item_files.items():
            self.item_files.setdefault(k, []).append((file, offset))

    def take(self, k: int) -> tuple[list[tuple[Stored, int]], list[tuple[Stored, int]]]:
        """Partition ``k``'s claim and line-item pieces, handed over: the spill keeps them no longer."""
        return self.files.pop(k, []), self.item_files.pop(k, [])


def _read_pieces(path: Path, encoding: str, mapping: dict | None, spill: _Spill,
                 stage: Callable[[str, float], None], workers) -> str:
    """Pass 1: read ``path`` piece by piece into ``spill``; returns the encoding the file was read in.

    This process cuts the file into pieces (and decodes GBK); the pieces are parsed by the workers,
    at most ``workers.window`` at a time, and collected in file order. Without worker processes
    (``--jobs 1``) they are parsed here, on :data:`READ_THREADS` threads (:func:`_read_here`).
    """
    if isinstance(workers, _InProcess):
        with stagetimes.stage("read/validate"):  # the whole pass, once: the threads' CPU is this process's
            return _read_here(path, encoding, mapping, spill, stage)
    return _read_all(path, encoding, mapping, spill, stage, workers, timed=True)


#: Threads parsing pieces in this process (``--jobs 1``). Why threads: a piece's parse is a few hundred
#: short Polars calls, which release the GIL, and the Python between them; two pieces parsed at once keep
#: both CPUs busy through those gaps, where one leaves one idle. More than two pieces at once only add
#: memory (each parse peaks near ten times its CSV) on a machine of two CPUs.
READ_THREADS = min(2, usable_cpus())


class _Threads:
    """Pieces parsed on a thread pool of this process, in the shape :func:`_read_all` submits to."""

    def __init__(self, pool: ThreadPoolExecutor, threads: int) -> None:
        self.pool, self.window, self.parsers = pool, threads, threads

    def submit(self, fn: Callable, *args) -> Future:
        return self.pool.submit(fn, *args)


def _read_here(path: Path, encoding: str, mapping: dict | None, spill: _Spill,
               stage: Callable[[str, float], None]) -> str:
    """Pass 1 in this process: the pieces parsed on :data:`READ_THREADS` threads, collected in file order."""
    threads = max(1, READ_THREADS)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="medins-read")
    try:
        return _read_all(path, encoding, mapping, spill, stage, _Threads(pool, threads), timed=False)
    finally:  # an error: the pieces not started are of no use; those running end before their spill goes
        pool.shutdown(wait=True, cancel_futures=True)


def _read_all(path: Path, encoding: str, mapping: dict | None, spill: _Spill,
              stage: Callable[[str, float], None], workers, *, timed: bool) -> str:
    """Cut ``path`` into pieces, hand them to ``workers`` (at most ``workers.window`` in flight beyond the
    one being collected) and collect them in file order. ``timed``: each piece times its own stages."""
    suffix = path.suffix.lower()
    stage("read", 0.0)
    file = str(path)
    if suffix not in (".csv", ".txt", ".parquet"):  # XLSX: at most a million rows, read whole
        spill.collect(_spill_piece(read_claims(path, encoding=encoding, mapping=mapping), spill.target,
                                   spill.partitions, spill.next_index()))
        return "utf-8"
    in_flight: deque[Future | _Deferred] = deque()

    def collect_next() -> None:
        try:
            piece = in_flight.popleft().result()
        except UnreadableCsvError as exc:  # its row was counted from the piece's start
            raise exc.after(spill.records) from None
        spill.collect(piece)

    def send(source: bytes | _Rows | _Unchecked, label: str) -> None:
        in_flight.append(workers.submit(_read_piece, source, label, mapping, file, spill.target, spill.partitions,
                                        spill.next_index(), timed))
        while len(in_flight) > workers.window:
            collect_next()

    if suffix == ".parquet":
        total = pl.scan_parquet(path).select(pl.len()).collect().item()
        for offset in range(0, max(total, 1), PIECE_ROWS):
            send(_Rows(offset, PIECE_ROWS), "utf-8")  # the task reads its rows: no table is pickled
            stage("read", 0.45 * min(1.0, (offset + PIECE_ROWS) / max(total, 1)))
        label = "utf-8"
    else:
        size = max(path.stat().st_size, 1)
        label = "utf-8"
        for data, label, done in _csv_pieces(path, encoding, unchecked=True,
                                             parsers=getattr(workers, "parsers", 1)):
            first = data.data if isinstance(data, _Unchecked) else data
            if spill.pieces == 0 and done < size and csv_shape(first, mapping) == "items":
                # line items are grouped into claims by claim_id across the whole file: read it whole
                spill.collect(_spill_piece(read_claims(path, encoding=encoding, mapping=mapping), spill.target,
                                           spill.partitions, spill.next_index()))
                return label
            send(data, label)
            stage("read", 0.45 * done / size)
    while in_flight:
        collect_next()
    return label


@dataclass(frozen=True)
class _Rows:
    """A Parquet piece as the task is given it: which rows of the file (``length`` rows after ``offset``)."""

    offset: int
    length: int


@dataclass(frozen=True)
class _Unchecked:
    """A piece of a file read as UTF-8 whose bytes after the header line were not checked to be UTF-8 (the header
    line was, with the first piece): ``body`` is the file offset of those bytes; ``guessed``, whether UTF-8 was
    the encoding guessed from the start of the file (``--encoding auto``) rather than given.

    Why the task checks: Polars checks the UTF-8 of every cell as it reads a piece, and a piece that is not UTF-8
    fails there (the Python reader, last, raises ``UnicodeDecodeError``). Checked first in this process, every
    piece was copied into a Polars column for the test: 13 ms of a 16 MiB piece, on the thread that cuts them.
    """

    data: bytes
    header: int
    body: int
    guessed: bool


#: ``decode_marking`` keeps the offsets it marks in its module (one decode at a time in a process).
_MARKING = threading.Lock()


def _as_utf8(piece: _Unchecked, file: str) -> bytes:
    """A piece that is not UTF-8, as :func:`_csv_pieces` made one it checked: a few undecodable bytes marked (their
    rows rejected as ``encoding``); else read again as GB18030 (``_NotUtf8``) where UTF-8 was guessed, or refused."""
    header, body = piece.data[:piece.header], piece.data[piece.header:]
    if utf8_wins(body):
        with _MARKING:
            return header + decode_marking(body, "utf-8", piece.body).text.encode()
    if piece.guessed:
        raise _NotUtf8
    raise InputError(message_en="the file is not valid UTF-8", message_zh="文件不是有效的 UTF-8 编码", file=file,
                     hint_en="try --encoding gbk or --encoding auto", hint_zh="请尝试 --encoding gbk 或 --encoding auto")


def _read_piece(source: bytes | _Rows | _Unchecked, label: str, mapping: dict | None, file: str, folder: Path | None,
                partitions: int, n: int, timed: bool = True) -> _Piece:
    """Task: read one piece (CSV bytes, or rows of a Parquet file) and spill its claims by person hash.

    ``timed``: record the piece's ``read/validate`` and ``spill`` stages (a worker process); pieces parsed
    on threads are not timed one by one, their process's CPU being shared: the caller times the pass.
    """
    with stagetimes.stage("read/validate") if timed else nullcontext():
        if isinstance(source, _Rows):
            frame = pl.scan_parquet(file).slice(source.offset, source.length).collect()
            read = read_frame_piece(frame, row_offset=0, mapping=mapping, file=file)
        elif isinstance(source, _Unchecked):
            try:  # Polars checks every cell's UTF-8 as it reads them; a piece that is not UTF-8 fails at the end
                read = read_csv_piece(source.data, row_offset=0, encoding=label, mapping=mapping, file=file)
            except UnicodeDecodeError:
                read = read_csv_piece(_as_utf8(source, file), row_offset=0, encoding=label, mapping=mapping,
                                      file=file)
        else:
            read = read_csv_piece(source, row_offset=0, encoding=label, mapping=mapping, file=file)
    with stagetimes.stage("spill") if timed else nullcontext():
        return _spill_piece(read, folder, partitions, n)


def _csv_pieces(path: Path, encoding: str, *, unchecked: bool = False,
                parsers: int = 1) -> Iterator[tuple[bytes | _Unchecked, str, int]]:
    """(UTF-8 bytes of the header line + whole records, encoding label, bytes of the file consumed so far).

    ``unchecked``: the pieces after the first of a file read as UTF-8 are given as :class:`_Unchecked`, for the
    task that parses them to check (:func:`_read_piece`); else every piece is checked here. ``parsers``: pieces
    parsed at once; a regular file is cut into a multiple of that many blocks (:func:`_block_bytes`).
    """
    enc = encoding.lower().replace("_", "-")
    enc = {"utf8": "utf-8", "utf-8-sig": "utf-8"}.get(enc, enc)
    if enc not in ("auto", "utf-8", *_GB):
        raise InputError(message_en=f"unsupported encoding {encoding!r}", message_zh=f"不支持的编码“{encoding}”",
                         hint_en="use auto, utf-8, gbk or gb18030", hint_zh="请使用 auto、utf-8、gbk 或 gb18030",
                         file=str(path))
    header: bytes | None = None
    consumed = 0
    decoder = None
    at = 0  # file offset of ``pending`` (UTF-8: the bytes are the file's)
    with path.open("rb") as handle:
        step = _block_bytes(_regular_size(handle), parsers)
        first = handle.read(max(step, len(_BOM)))  # a BOM is seen whole, however small the pieces
        if first.startswith(_BOM) and enc in ("auto", "utf-8"):
            first, enc = first[len(_BOM):] or handle.read(step), "utf-8"
            consumed = at = len(_BOM)
        # the first block when it was checked and is UTF-8 (but for a character its end cuts): the first piece, cut from
        # it alone at a line break, is not checked again
        checked: bytes | None = None
        if enc == "auto":  # as the whole-file reader decides (readers.utf8_bytes), on the first block
            if _utf8_start(first):  # a piece cut from it alone ends at a line break: it is UTF-8
                enc, checked = "utf-8", first
            else:
                enc = "utf-8" if utf8_wins(first) else "gb18030"
            guessed = True
        else:
            guessed = False
        if enc != "utf-8":
            decoder = codecs.getincrementaldecoder(enc)("medins-mark")  # undecodable bytes → rows rejected
        size_of_file = _regular_size(handle) if decoder is None else None

        def next_block() -> bytes | _Mapped:
            if size_of_file is None:
                return handle.read(step)
            at = handle.tell()
            block = _map_block(handle, at, size_of_file, step)
            handle.seek(at + len(block))
            return block

        block: bytes | _Mapped = first
        tail, parity = b"", 0  # the bytes after the last record end so far, and the parity of their quotes
        while True:
            final = len(block) == 0
            consumed += len(block)
            if decoder is not None:
                block = decode_block_marking(decoder, flag_utf8_lines(block), final=final,
                                             base=consumed - len(block)).text.encode()
            if final:  # what is left, with what the decoder held back (an incomplete character, marked)
                if not tail and not block:
                    if header is None:
                        raise InputError(message_en="the file is empty", message_zh="文件为空", file=str(path))
                    return
                end = len(block)
            else:  # the new block alone is scanned: the tail's quotes are known by their parity
                end, parity = _cut(block, parity=parity)
                if not end:  # a record longer than the block: it goes on in the next one
                    tail = b"".join((tail, _view(block)))
                    block = next_block()
                    continue
            # the piece, copied once: (header,) the tail and the block up to its last record end
            size = len(tail) + end
            tail_before = bool(tail)
            data = b"".join((header or b"", tail, _view(block, 0, end)))
            tail = bytes(_view(block, end))  # a copy of the few bytes left: the block (a mapping) can go
            at += size
            if decoder is None and unchecked and header is not None:
                if final or len(data) > len(header):
                    yield _Unchecked(data, len(header), at - size, guessed), enc, consumed
                if final:
                    return
                block = next_block()
                continue
            # a piece of the checked first block alone (no tail before it) ends at a line break: UTF-8 as the block is
            if decoder is None and not (block is checked and not tail_before) and not _is_utf8(data):
                body = data[len(header or b""):]
                if utf8_wins(body):  # a few undecodable rows: rejected as ``encoding``
                    data = (header or b"") + decode_marking(body, "utf-8", at - size).text.encode()
                elif guessed:
                    raise _NotUtf8
                else:
                    raise InputError(message_en="the file is not valid UTF-8",
                                     message_zh="文件不是有效的 UTF-8 编码", file=str(path),
                                     hint_en="try --encoding gbk or --encoding auto",
                                     hint_zh="请尝试 --encoding gbk 或 --encoding auto")
            if header is None and data:
                split = _cut(data, first=True)[0] or len(data)
                header = data[:split]
                if not header.strip():
                    raise InputError(message_en="the file is empty", message_zh="文件为空", file=str(path))
                if not header.endswith(b"\n"):
                    header += b"\n"
                if split == len(data):  # the header line alone (with the line break it was given)
                    data = header if final else b""
                # else ``data`` is already the header line (ending at the line break found) and the records after it:
                # ``header + data[split:]`` copied 14 MB twice, on the thread every parse waits for
            if final or len(data) > len(header or b""):
                yield data, enc, consumed
            if final:
                return
            block = next_block()


class _Mapped:
    """A block of a file mapped into memory (``mm[lo:hi]``), with the few ``bytes`` methods :func:`_cut` uses.

    Why: a UTF-8 file's blocks read by ``read`` were copied twice on their way to a piece (the read, then the
    join of header, tail and block), each copy into fresh memory (a 16 MiB piece: 4,096 page faults); a block
    seen through a mapping of the file's pages is copied once, into the piece. One mapping per block keeps
    only the block being cut among the process's resident pages.
    """

    __slots__ = ("hi", "lo", "mm")

    def __init__(self, mm: mmap.mmap, lo: int, hi: int) -> None:
        self.mm, self.lo, self.hi = mm, lo, hi

    def __len__(self) -> int:
        return self.hi - self.lo

    def _span(self, start: int, end: int | None) -> tuple[int, int]:
        return self.lo + start, self.hi if end is None else self.lo + end

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        at = self.mm.find(sub, *self._span(start, end))
        return at - self.lo if at >= 0 else -1

    def rfind(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        at = self.mm.rfind(sub, *self._span(start, end))
        return at - self.lo if at >= 0 else -1

    def count(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        lo, hi = self._span(start, end)
        if hi - lo < NUMPY_BYTES or len(sub) != 1:
            return self.mm[lo:hi].count(sub)
        import numpy as np  # as ``count_byte`` counts: the mapped bytes seen by Polars through numpy, not copied

        return int((pl.Series(np.frombuffer(self.mm, np.uint8, hi - lo, lo)) == sub[0]).sum())


def _view(block: bytes | _Mapped, start: int = 0, end: int | None = None) -> bytes | memoryview:
    """``block[start:end]`` without a copy."""
    if isinstance(block, _Mapped):
        lo, hi = block._span(start, end)
        return memoryview(block.mm)[lo:hi]
    return memoryview(block)[start:end]


def _regular_size(handle: BinaryIO) -> int | None:
    """The size of a regular file that can be mapped (None: read it; a pipe, say)."""
    try:
        info = os.fstat(handle.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) and info.st_size > 0 else None


def _block_bytes(size: int | None, parsers: int) -> int:
    """Bytes of the file cut into one piece: at most ``PIECE_BYTES``, evened out over a file of known ``size``
    spanning several pieces so that their count is a multiple of ``parsers``.

    Why: pieces are parsed ``parsers`` at a time; a 113 MB file cut in 16 MiB blocks gave 7 pieces on 2
    threads, the last parsed alone while the other CPU idled. Cut in 8 blocks of about 14 MB, the threads end
    together. Blocks are never larger than ``PIECE_BYTES`` (the memory of a parse); a file of one piece or of
    unknown size (a pipe) is cut as before.
    """
    if size is None or parsers <= 1 or size <= PIECE_BYTES:
        return PIECE_BYTES
    pieces = -(-size // PIECE_BYTES)
    pieces = -(-pieces // parsers) * parsers
    return max(1, -(-size // pieces))


def _map_block(handle: BinaryIO, at: int, size: int, step: int | None = None) -> bytes | _Mapped:
    """Up to ``step`` (``PIECE_BYTES``) bytes of the file from offset ``at``, mapped (empty bytes at the end of
    the file)."""
    hi = min(size, at + (PIECE_BYTES if step is None else step))
    if hi <= at:
        return b""
    base = at - at % mmap.ALLOCATIONGRANULARITY  # a mapping starts on a granule
    try:
        mm = mmap.mmap(handle.fileno(), hi - base, access=mmap.ACCESS_READ, offset=base)
    except (OSError, ValueError):  # the file shrank since it was sized, say: read what there is
        handle.seek(at)
        return handle.read(hi - at)
    return _Mapped(mm, at - base, hi - base)


def _utf8_start(block: bytes) -> bool:
    """The block is UTF-8 (a character cut by the end of the block still counts).

    Polars' SIMD check first, of the whole block (a 16 MiB block decoded by Python costs 27 ms), then of the block up
    to its last line break: an LF is never part of a multi-byte character, so the block is UTF-8 but for a character
    cut at its end exactly when the part up to its last LF is UTF-8 and the few bytes after it decode but for such a
    cut (only they are decoded by Python, to tell a cut character from a bad byte). Why: a block cut at a byte count
    ends inside a Chinese character about as often as not, and was then decoded whole by Python.
    """
    if _is_utf8(block):
        return True
    cut = block.rfind(b"\n") + 1
    if cut and not _is_utf8(block[:cut]):
        return False
    try:
        block[cut:].decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start >= len(block) - cut - 3 and exc.reason == "unexpected end of data"


def _cut(data: bytes | _Mapped, *, first: bool = False, start: int = 0, parity: int = 0) -> tuple[int, int]:
    """(Index just after the last — ``first``: the first — line break outside quotes, 0 when there is none;
    the parity of the quote characters in ``data``).

    ``data`` starts at a record boundary, so a line break is outside quotes when an even number of
    quote characters precedes it (an escaped quote ``""`` counts twice). Only ``data[start:]`` is
    looked at, ``parity`` being that of the quotes before ``start``: a block read is scanned once,
    the tail carried over from the block before is not scanned again (a record longer than a piece
    would otherwise be re-counted on every block, quadratically). A block without a quote (the
    membership test runs at memory speed) needs no count at all.
    """
    if first:
        at = data.find(b"\n")
        while at >= 0:
            if data.count(b'"', 0, at) % 2 == 0:
                return at + 1, 0
            at = data.find(b"\n", at + 1)
        return 0, data.count(b'"') % 2
    quotes = (data.count(b'"', start) if isinstance(data, _Mapped) else count_byte(data, b'"', start)) \
        if data.find(b'"', start) >= 0 else 0
    total = (parity + quotes) % 2
    if not quotes and parity:  # inside a quoted field from ``start`` to the end: no record ends here
        return 0, total
    after = 0  # quotes after the line break looked at
    end = len(data)
    at = data.rfind(b"\n", start)
    while at >= 0:
        if quotes:
            after += data.count(b'"', at, end)
        if (total - after) % 2 == 0:
            return at + 1, total
        end, at = at, data.rfind(b"\n", start, at)
    return 0, total


def _write_ranges(ranges: dict[int, list[Stored]], output: Path, into: Path, kind: Format, folder: Path,
                  stage: Callable[[str, float], None]) -> None:
    """Pass 3: the output in input order, one row range at a time, written to the temporary ``into``.

    The pieces hold ``output_table`` rows (text formatted for ``kind``, money in fen) and their input ``row``;
    each range's pieces are put in row order (one gather), their money formatted, and written. A CSV range is
    appended here, after it is put in order: appended on a thread while the next range was put in order, the
    same 1,000,000 claims took about a quarter more CPU (the two threads' Polars work competing for two CPUs)
    for no shorter a write.
    """
    def in_order():
        order = sorted(ranges)
        for i, r in enumerate(order):
            stage("write", 0.85 + 0.15 * i / max(len(order), 1))
            frame = pl.concat([_load(f) for f in ranges.pop(r)]).sort("row").drop("row")
            yield frame if kind == "csv" else format_money(frame, kind, MONEY_OUTPUTS)  # CSV: by write_csv

    if kind == "xlsx" or not ranges:
        frames = list(in_order())
        _write(pl.concat(frames) if frames else _empty_output(kind), str(into), kind, False, MONEY_OUTPUTS)
        return
    if kind == "csv":
        with stagetimes.stage("write"), open(into, "wb") as out:
            out.write((",".join(OUTPUT_COLUMNS) + "\n").encode())
            for frame in in_order():
                write_csv(frame, out, MONEY_OUTPUTS, include_header=False)
                del frame
        return
    pieces = []
    for i, frame in enumerate(in_order()):
        piece = folder / f"final-{i}.parquet"
        frame.write_parquet(piece)
        pieces.append(piece)
    pl.scan_parquet(pieces).sink_parquet(into)


def _empty_output(kind: Format) -> pl.DataFrame:
    from medins.batch import BATCH_KEEP, SUMMARY_FACTS, output_table

    schema = {c: pl.String for c in OUTPUT_COLUMNS} | {c: pl.Int64 for c in MONEY_OUTPUTS}
    schema |= {"reasons": pl.List(pl.String), "unchecked": pl.List(pl.String),
               "assumed": pl.List(pl.String)} | dict.fromkeys(BATCH_KEEP[len(SUMMARY_FACTS):], pl.String)
    return _prepare(output_table(pl.DataFrame(schema=schema)), kind, MONEY_OUTPUTS)


_KEYS = ("visit_type", "hospital_zone", "hospital_level", "status", "_reasons")


def _aggregate(out: pl.DataFrame) -> pl.DataFrame:
    """A partition's settlement reduced to what the summary needs: counts and sums by its cuts (``_n`` claims).

    Grouped by the columns as they are, the few groups then given the summary's key types (no reasons: "", the
    level as text): filled and cast row by row first, then grouped, the same took about a third more CPU. Should two
    groups get the same keys so (none and "" reasons), :func:`_reaggregate` adds them up.
    """
    return out.lazy().group_by(_KEYS).agg(
        _n=pl.len(), medfee_sumamt=pl.col("medfee_sumamt").sum(), fund_pay_sumamt=pl.col("fund_pay_sumamt").sum(),
        psn_part_amt=pl.col("psn_part_amt").sum()).with_columns(
        _reasons=pl.col("_reasons").fill_null(""), hospital_level=pl.col("hospital_level").cast(pl.String)).collect()


def _reaggregate(parts: pl.DataFrame) -> pl.DataFrame:
    summed = parts.group_by(_KEYS).agg(pl.col("_n", "medfee_sumamt", "fund_pay_sumamt", "psn_part_amt").sum())
    return summed.with_columns(
        reasons=pl.when(pl.col("_reasons") == "").then(pl.lit([], pl.List(pl.String)))
        .otherwise(pl.col("_reasons").str.split(";"))).drop("_reasons")
