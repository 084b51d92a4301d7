"""One inter-process writer lock (``fcntl.flock`` on a lock file) for every artifact directory kgclip writes.

Writers hold it across a whole read-modify-write cycle; readers take no lock because every save is atomic. The
lock dies with its process, so a killed writer never leaves a stale lock; the (empty) lock file stays, since
deleting it would race with a waiting writer. The file holds the holder's pid, which the error names.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path

from kgclip.errors import LockedError

__all__ = ["FileLock"]


class FileLock:
    """Exclusive lock on ``path``; a second holder waits up to ``timeout`` seconds, then gets ``LockedError``.

    Args:
        path: the lock file (created, with its directory, if missing).
        timeout: seconds to wait for another writer; ``0`` refuses at once.
        activity: what the holder is doing, for the error (``"writing the index at X"``).
        advice: what the user should do, for the error.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float, *, activity: str, advice: str) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.activity = activity
        self.advice = advice
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "FileLock":
        import fcntl  # POSIX only; imported here so that merely importing kgclip works everywhere

        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockedError(f"another process{holder} is {self.activity} (lock {self.path}); waited "
                                      f"{self.timeout:g} s. {self.advice}") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        import fcntl

        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 64, 0).decode().strip()
        if text:
            return f" (pid {int(text)})"
    return ""
