"""One run per output: a lock file beside the output, held with ``flock`` for the length of the run.

Why ``flock`` and not a file that exists: the kernel releases a ``flock`` when its process ends, however
it ends (kill -9, out of memory), so a killed run never blocks the next one; its lock file is simply
taken over. Why a lock at all: two runs writing the same output would each rename their files into
place, and the settlements of one could end beside the rejects of the other.

The lock file ``.<output>.medins.lock`` holds the pid and start time of the run holding it (to name it
in the refusal). The holder removes it when it ends; a run that takes the lock checks that the file it
locked is still the one at that path (another run may have removed it meanwhile) and retries if not.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from medins.errors import OutputLocked

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there (the rest of the guarantees hold)
    fcntl = None  # type: ignore[assignment]


def lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.medins.lock")


class RunLock:
    """The exclusive lock of one output file; :meth:`acquire` refuses at once if another run holds it."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.path = lock_path(self.target)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`OutputLocked` naming the holder's pid (exit 2, nothing written)."""
        from medins.atomic import writing

        if fcntl is None:
            return
        while True:
            with writing(self.path.parent):
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise self._refusal(holder) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file between our open and our lock: lock the new one
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {started}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file, then let go of the lock (in that order: see the module docstring)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    def _refusal(self, holder: tuple[int | None, str]) -> OutputLocked:
        pid, started = holder
        who_en = f"another medins run (pid {pid}{', started ' + started if started else ''})" if pid else \
            "another medins run"
        who_zh = f"另一个 medins 进程(pid {pid}{',开始于 ' + started if started else ''})" if pid else \
            "另一个 medins 进程"
        return OutputLocked(
            f"{who_en} is writing {str(self.target)!r}; this run was refused and wrote nothing",
            f"{who_zh}正在写出“{self.target}”;本次运行已被拒绝,未写出任何文件",
            hint_en="wait for it to finish, or write to another file (-o)",
            hint_zh="请等待该进程结束,或改用其他输出文件(-o)", pid=pid)


def _read_holder(fd: int) -> tuple[int | None, str]:
    """The pid and start time written in a held lock file (None when the holder has not written them yet)."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        return None, ""
    if not text or not text[0].isdigit():
        return None, ""
    return int(text[0]), " ".join(text[1:])
