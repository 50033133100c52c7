"""Write a file inside a repository without ever following a symlink or leaving the repository.

``--summaries-in-place`` writes ``script.md`` beside ``script.py``: a path the repository chooses. A
repository can hold a symlink (dangling or not) where the summary would go, or a folder that is a symlink,
pointing anywhere (``mod.md -> ~/.ssh/authorized_keys``). Each folder from the repository's root down is
opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to the one above (``openat``), and the file with
``O_NOFOLLOW`` (and ``O_EXCL`` when it is new) relative to its folder, so a symlink anywhere on the way, even
one swapped in between a check and the write, makes the write fail instead of following it. POSIX only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


def write_inside(root: Path, relpath: str, text: str, *, replace: bool = False) -> bool:
    """Write ``text`` (UTF-8) to ``root/relpath``; returns False, writing nothing, when it cannot be done safely.

    Args:
        root: the repository's root folder (resolved: the root itself may be reached through a symlink).
        relpath: a POSIX path relative to ``root``, without ``..``; its folders must exist.
        replace: whether a regular file already there may be overwritten (one this program wrote); a new
            file is created otherwise, and an existing one is left alone.

    Returns False when a folder on the way or the file is a symlink, a folder is missing, the file exists
    and ``replace`` is False, it is not a regular file (a FIFO, a device), or the system refuses
    (permissions, a full disk: then the file may be left part-written).
    """
    path = PurePosixPath(relpath)
    if path.is_absolute() or not path.parts or any(part in ("", ".", "..") for part in path.parts):
        return False
    create = os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    flags = os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | create
    folder = handle = None
    try:
        folder = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        for part in path.parts[:-1]:
            inner = os.open(part, _DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = inner
        # ELOOP: a symlink (O_NOFOLLOW); EEXIST: a file or a dangling symlink there (O_EXCL); ENXIO: a FIFO
        handle = os.open(path.parts[-1], flags, 0o644, dir_fd=folder)
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return False
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            handle = None  # closed by the with
            out.write(text)
    except OSError:
        return False
    finally:
        for descriptor in (handle, folder):
            if descriptor is not None:
                os.close(descriptor)
    return True
