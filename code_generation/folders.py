"""The user's folder around a test run: the copies each sandbox works in, and a before/after comparison.

The sandboxes never see the user's folder (they work in copies), so nothing they do can change it; the
comparison is a second line of defence, and the only one with ``--unsafe-no-sandbox``: after every run,
a file that appeared is reported and removed, a test file that changed or vanished is restored from the
bytes read before the run, and any other change is reported (the run then fails). Not compared: what
:func:`skipped` leaves out (``.git``, caches, virtualenvs) and editors' scratch files. A file the user
creates in the folder during a run is removed like any other: keep editing elsewhere while it runs.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from code_generation.errors import SandboxError

COPY_IGNORE = ("generation_*.txt", "*.pyc", "__pycache__", ".git", ".hg", ".svn", "node_modules", ".tox")
COPY_IGNORE += (".mypy_cache", ".pytest_cache", ".ruff_cache")
# Files of credentials are never copied into a sandbox: what generated code reads it can put in its output,
# which goes back to the model (redacted for known secret formats only).
SECRET_FILES = (
    ".env", ".env.*", "*.env", ".envrc", "*.pem", "*.key", "*.p12", "*.pfx", "*.kdbx", "id_rsa*", "id_dsa*",
    "id_ecdsa*", "id_ed25519*", ".netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials", ".aws", ".ssh",
    ".gnupg", ".docker", ".kube", "*credentials*.json", "service-account*.json",
)  # fmt: skip
# What editors and file managers write beside a file being edited: not watched (nothing loads them).
EDITOR_FILES = ("*.swp", "*.swo", "*.swx", "*~", ".#*", "#*#", "4913", ".DS_Store")
MAX_COPY_FILES = 2000
MAX_COPY_MB = 100


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes; ``"missing"`` when it does not exist."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError):
        return "missing"


def skipped(directory: str | Path, names: list[str]) -> set[str]:
    """Of ``names`` in ``directory``, those never copied nor watched: caches, VCS folders, virtualenvs."""
    directory = Path(directory)
    left_out = set(shutil.ignore_patterns(*COPY_IGNORE)(str(directory), names))
    return left_out | {name for name in names if (directory / name / "pyvenv.cfg").exists()}


def walk(folder: Path, *, limit: bool = True) -> list[Path]:
    """Every file, folder and symlink under ``folder`` that is not :func:`skipped`, without following links.

    Raises:
        SandboxError: ``limit`` and more than :data:`MAX_COPY_FILES` files or :data:`MAX_COPY_MB` MB.
    """
    found: list[Path] = []
    files = size = 0
    for directory, dirnames, filenames in os.walk(folder):
        left_out = skipped(directory, dirnames + filenames)
        dirnames[:] = [name for name in dirnames if name not in left_out]
        for name in [*dirnames, *filenames]:
            if name in left_out:
                continue
            path = Path(directory) / name
            found.append(path)
            if name in filenames:
                files += 1
                with contextlib.suppress(OSError):  # gone since it was listed
                    size += path.lstat().st_size
        if limit and (files > MAX_COPY_FILES or size > MAX_COPY_MB << 20):
            raise SandboxError(
                f"{folder} holds more than {MAX_COPY_FILES} files or {MAX_COPY_MB} MB, too much to copy into the "
                "sandbox for every attempt. Put OUTPUT_FILE (and its test file) in a folder of their own."
            )
    return found


def copy_folder(folder: Path, work: Path, leave_out: Path | None = None) -> None:
    """Copy ``folder`` to ``work`` as :func:`walk` sees it, without the file ``leave_out`` and files of
    credentials (:data:`SECRET_FILES`); symlinks are copied as the files they point to (dangling ones are
    dropped), so none leads back out."""
    walk(folder)  # refuses a folder too large before anything is copied
    secret = shutil.ignore_patterns(*SECRET_FILES)

    def ignore(directory: str, names: list[str]) -> set[str]:
        left_out = skipped(directory, names) | set(secret(directory, names))
        return left_out | {n for n in names if leave_out is not None and Path(directory) / n == leave_out}

    shutil.copytree(folder, work, ignore=ignore, symlinks=False, ignore_dangling_symlinks=True)


def place_test_file(folder: Path, test_file: Path, work: Path) -> Path:
    """The test file's path relative to ``work``, copying it in when it lies outside ``folder``.

    Raises:
        SandboxError: an outside test file's name is taken in the copy.
    """
    try:
        return test_file.relative_to(folder)
    except ValueError:
        relative = Path(test_file.name)
    if (work / relative).exists():
        raise SandboxError(
            f"The test file {test_file} is outside {folder}, which has its own {test_file.name}: "
            "rename one, or move the test file next to OUTPUT_FILE."
        )
    shutil.copyfile(test_file, work / relative)
    return relative


def _watched(folder: Path, *, limit: bool) -> dict[Path, str]:
    """:func:`walk`'s paths and their fingerprints, editors' scratch files (:data:`EDITOR_FILES`) left out."""
    paths = [p for p in walk(folder, limit=limit) if not any(fnmatch.fnmatch(p.name, e) for e in EDITOR_FILES)]
    return {path: _fingerprint(path) for path in paths}


def _fingerprint(path: Path) -> str:
    if not path.exists() and not path.is_symlink():
        return "missing"
    if path.is_symlink():
        return f"link:{os.readlink(path)}"
    if path.is_dir():
        return "folder"
    return f"{path.stat().st_size}:{file_sha256(path)}"


def _test_fingerprint(path: Path) -> str:
    """The test file's content (through a link) and the link itself, if it is one."""
    link = f"link:{os.readlink(path)}|" if path.is_symlink() else ""
    return link + file_sha256(path)


@dataclass(frozen=True)
class FolderWatch:
    """What the user's folder (and the test file) held before a run: names, sizes, hashes; the test file's bytes."""

    folder: Path
    test_file: Path
    test_bytes: bytes
    before: dict[Path, str]

    @classmethod
    def take(cls, folder: Path, test_file: Path) -> FolderWatch:
        """Raises SandboxError when the folder is too large (see :func:`walk`)."""
        before = _watched(folder, limit=True)
        before[test_file] = _test_fingerprint(test_file)
        return cls(folder, test_file, test_file.read_bytes(), before)

    def repair(self) -> tuple[str, ...]:
        """Compare with now; remove what appeared, restore the test file; return what changed, in words
        (``"new file conftest.py (removed)"``, ``"changed test_adder.py (restored)"``, ``"changed notes.txt"``)."""
        after = _watched(self.folder, limit=False)
        after[self.test_file] = _test_fingerprint(self.test_file)
        changes = []
        for path in sorted(set(after) - set(self.before), key=lambda p: (len(p.parts), p)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists() or path.is_symlink():
                path.unlink()
            else:
                continue  # inside a new folder removed already
            changes.append(f"new {'folder' if after[path] == 'folder' else 'file'} {self._name(path)} (removed)")
        for path in sorted(self.before):
            if after.get(path, "missing") == self.before[path]:
                continue
            if path == self.test_file:
                if path.is_symlink() and not self.before[path].startswith(f"link:{os.readlink(path)}|"):
                    path.unlink()  # never write through a link that was not there before
                path.write_bytes(self.test_bytes)
                changes.append(f"changed {self._name(path)} (restored)")
            else:
                changes.append(f"{'removed' if path not in after else 'changed'} {self._name(path)}")
        return tuple(changes)

    def _name(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.folder))
        except ValueError:
            return str(path)
