"""Kernel isolation for a test run: bubblewrap's namespaces, what each sandbox sees, its environment.

Each half of a test run (see :mod:`code_generation.harness`) runs under ``bwrap`` (bubblewrap, the sandbox
Flatpak uses: https://github.com/containers/bubblewrap) in new user, mount, PID, network, IPC, UTS and cgroup
namespaces, with every capability dropped, no nested user namespaces (``--disable-userns``, bwrap 0.8+),
``--die-with-parent`` and ``--new-session`` (no terminal to inject keystrokes into). Its file system is:

- read-only: ``/usr`` and the ``/bin``, ``/sbin``, ``/lib*`` links or folders, the few ``/etc`` files the dynamic
  loader needs, the Python installation (``sys.prefix``, ``sys.base_prefix`` and pytest's site-packages, which
  may sit under a home folder such as ``~/.pyenv``: only those folders of it), and the harness;
- writable: the run's own copy of the user's folder at ``/sandbox`` (its working directory) and ``/tmp``, a
  scratch folder the two halves share (so a test can hand the module a file under ``tmp_path``);
- a fresh ``/dev`` (null, zero, random, tty...) and a fresh ``/proc`` that shows only the sandbox's processes,
  its ``/proc/sys`` read-only.

Nothing else exists: no home folder, no ``/etc/passwd``, no ``/run``, no sockets of the host, no network
(only a loopback of its own). The environment is empty but for :func:`sandbox_environment`'s allow-list.
When the last process of the command ends, or the parent dies, the PID namespace and everything in it go.

The sandbox's processes run as the caller's user id. Run as root, that is uid 0 without any capability: it
cannot write what is mounted read-only nor reach what is not mounted, but a kernel bug reachable from a
capability-less root process is more dangerous than from a user's. Run create-script as an ordinary user.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from code_generation.errors import SandboxError

INSIDE_WORK = "/sandbox"
INSIDE_HARNESS = "/opt/create-script"
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
LOADER_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")
LOCALE_NAMES = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
INSTALL_HINT = (
    "Install bubblewrap (`apt-get install bubblewrap` on Debian and Ubuntu, `dnf install bubblewrap` on Fedora), "
    "or pass --unsafe-no-sandbox to run generated code without isolation (it can then read, change and send "
    "anything you can)."
)
NAMESPACES = ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
# bubblewrap leaves /proc/sys writable where its owner bits allow it, which for uid 0 (create-script run as root)
# means the host's sysctls: the sandbox gets the host's /proc/sys read-only instead.
PROC_READ_ONLY = ["--ro-bind", "/proc/sys", "/proc/sys", "--ro-bind-try", "/proc/sysrq-trigger", "/proc/sysrq-trigger"]


class SandboxUnavailableError(SandboxError):
    """bubblewrap is missing or cannot create namespaces here: generated code is not run."""


def sandbox_environment(environ: Mapping[str, str], *, plugins: bool = False, tmp: str = "/tmp") -> dict[str, str]:
    """The whole environment of a test run: an allow-list, nothing of ``environ`` but its locale.

    ``PATH`` (this Python's folder first), ``HOME`` and ``TMPDIR`` (the scratch folder ``tmp``), ``LANG``,
    ``LC_ALL``, ``LC_CTYPE``, ``TZ`` when set (``LANG`` defaults to ``C.UTF-8``), ``USER``/``LOGNAME``
    ``sandbox``, ``PYTHONDONTWRITEBYTECODE``; ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` unless ``plugins``.
    """
    env = {name: environ[name] for name in LOCALE_NAMES if environ.get(name)}
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        HOME=tmp, TMPDIR=tmp, USER="sandbox", LOGNAME="sandbox", PYTHONDONTWRITEBYTECODE="1",
    )  # fmt: skip
    if not plugins:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def python_roots() -> list[Path]:
    """The folders this Python needs, outermost only: its prefixes and the site-packages holding pytest."""
    candidates = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    candidates.add(Path(os.path.realpath(sys.executable)).parent.parent)
    spec = importlib.util.find_spec("pytest")
    if spec is not None and spec.origin:
        candidates.add(Path(spec.origin).resolve().parent.parent)
    roots = sorted(c for c in candidates if c != Path("/") and not _under(c, [Path("/usr")]))
    return [r for r in roots if not _under(r, [o for o in roots if o != r])]


def _under(path: Path, parents: Sequence[Path]) -> bool:
    return any(path == p or p in path.parents for p in parents)


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in LOADER_FILES:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def bwrap_command(
    bwrap: str, command: Sequence[str], *, work: Path, tmp: Path, harness: Path, env: Mapping[str, str], sync_fd: int
) -> list[str]:
    """The argv running ``command`` in a sandbox: ``work`` writable at ``/sandbox`` (the working directory),
    ``tmp`` writable at ``/tmp``, ``harness`` read-only at ``/opt/create-script``, the rest as the module's
    docstring says. ``sync_fd`` stays open until every process of the sandbox has ended."""
    args = [bwrap, *NAMESPACES, *_hardening(bwrap), "--clearenv", "--sync-fd", str(sync_fd), *_system_binds()]
    args += ["--dev", "/dev", "--proc", "/proc", *PROC_READ_ONLY, "--bind", str(tmp), "/tmp"]
    for root in python_roots():
        args += ["--ro-bind", str(root), str(root)]
    args += ["--ro-bind", str(harness), INSIDE_HARNESS, "--bind", str(work), INSIDE_WORK, "--chdir", INSIDE_WORK]
    for name, value in env.items():
        args += ["--setenv", name, value]
    return [*args, "--", *command]


@functools.cache
def _hardening(bwrap: str) -> tuple[str, ...]:
    """``--disable-userns`` where this bwrap has it (0.8 and later): no nested user namespace, whose full
    capabilities would widen what a kernel bug could give the code."""
    try:
        usage = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return ("--disable-userns",) if "--disable-userns" in usage else ()


@functools.cache
def _probe(bwrap: str) -> str | None:
    """None when ``bwrap`` can run this Python in the namespaces a test run uses, else why not (cached)."""
    scratch = Path(os.environ.get("TMPDIR") or "/tmp")
    read, write = os.pipe()
    command = [sys.executable, "-I", "-c", "pass"]
    try:
        argv = bwrap_command(bwrap, command, work=scratch, tmp=scratch, harness=scratch, env={}, sync_fd=write)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                              pass_fds=(write,))  # fmt: skip
    except (OSError, subprocess.SubprocessError) as error:
        return str(error)
    finally:
        os.close(read)
        os.close(write)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit code {done.returncode}")[-500:]


def require_bwrap() -> str:
    """The path of a working ``bwrap``.

    Raises:
        SandboxUnavailableError: it is not installed, or it cannot create namespaces here (a container
            without user namespaces, say); the message says how to install it and what the alternative is.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailableError(
            f"create-script runs generated code in a bubblewrap sandbox, and bwrap is not installed. {INSTALL_HINT}"
        )
    problem = _probe(bwrap)
    if problem:
        raise SandboxUnavailableError(f"bubblewrap ({bwrap}) cannot create a sandbox here: {problem}. {INSTALL_HINT}")
    return bwrap
