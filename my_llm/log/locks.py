"""A cross-process lock on a file, cheap enough to take on every append.

``filelock.FileLock`` costs about 75 us per acquire and release on these machines (its reentrancy and
fork bookkeeping); an append costs about 15 us. This lock keeps the lock file open and takes
``fcntl.flock`` on it (about 1 us), behind a ``threading.Lock`` for the threads of one process. It is
compatible with ``filelock.FileLock`` on the same path (which also uses ``flock`` on Unix), so older
processes and this one exclude each other. Where ``fcntl`` does not exist (Windows), it falls back to
``filelock.FileLock``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_POLL_S = 0.001


class LockTimeout(OSError):
    """The lock was not acquired within the timeout (another process holds it)."""


class InterProcessLock:
    """An exclusive lock on ``path`` shared by the threads of this process and by other processes.

    Args:
        path: the lock file (created on first use; its folder must exist then).
        timeout: seconds to wait before raising :class:`LockTimeout` (an ``OSError``).

    Use as a context manager. Not reentrant.
    """

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._fallback = None

    def __enter__(self) -> InterProcessLock:
        if fcntl is None:  # pragma: no cover - Windows
            if self._fallback is None:
                from filelock import FileLock

                self._fallback = FileLock(str(self.path), timeout=self.timeout)
            self._fallback.acquire()
            return self
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise LockTimeout(f"Timed out after {self.timeout:g} s waiting for {self.path} (held in this process).")
        try:
            self._acquire_file()
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def _acquire_file(self) -> None:
        if self._fd is None or self._pid != os.getpid():  # a forked child must not share its parent's lock
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"Timed out after {self.timeout:g} s waiting for {self.path} (held by another process)."
                    ) from None
                time.sleep(_POLL_S)

    def __exit__(self, *exc_info) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            self._fallback.release()
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        """Close the lock file (the lock must not be held)."""
        with self._thread_lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None
