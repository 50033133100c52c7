"""Start the two halves of a test run, wait for the tests side under the wall-clock limit, stop everything.

Each half runs with ``resource`` limits set by ``prlimit`` (util-linux) just before it execs the half's command
(inherited by bwrap and everything in the sandbox): CPU seconds (``RLIMIT_CPU``), address space (``RLIMIT_AS``),
file size (``RLIMIT_FSIZE``, which also bounds the captured output) and no core dumps; no stdin; its own session.
When the tests side ends (or the time is up), both halves are killed; under bwrap, the sandbox's ``--sync-fd`` is
then read to its end, which comes only when every process of that sandbox, ``setsid`` daemons included, has ended.
"""

from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SYNC_WAIT_S = 10.0


class Limits(Protocol):
    """What :func:`limited` reads (``SandboxLimits`` has it)."""

    timeout_s: float
    cpu_s: int
    memory_mb: int
    file_mb: int


@dataclass(frozen=True)
class Half:
    """One half of a run: its argv, working directory, output file, descriptors it inherits, and the read end
    of its sandbox's sync pipe (None without bwrap)."""

    command: list[str]
    cwd: Path
    log: Path
    fds: tuple[int, ...]
    sync: int | None = None


@dataclass(frozen=True)
class Ended:
    """How a run ended. ``tests``: the tests side's exit code (negative: killed by that signal; None when it was
    stopped at the time limit); ``module``: the module side's, when it ended by itself before being stopped."""

    tests: int | None
    module: int | None
    timed_out: bool
    seconds: float


PRLIMIT = shutil.which("prlimit") or shutil.which("prlimit", path=os.defpath)  # found once, at import
PRLIMIT_FLAGS = {
    resource.RLIMIT_CPU: "--cpu",
    resource.RLIMIT_AS: "--as",
    resource.RLIMIT_FSIZE: "--fsize",
    resource.RLIMIT_CORE: "--core",
}


def with_rlimits(command: list[str], wanted: Mapping[int, tuple[int, int]]) -> list[str]:
    """``command`` run under ``prlimit`` with the ``(soft, hard)`` limits ``wanted`` (keys from
    :data:`PRLIMIT_FLAGS`), never above the current hard limits.

    Why not a ``preexec_fn``: CPython documents it as unsafe when the program has threads (the child may
    deadlock before exec), and the server runs sandboxes from worker threads. ``prlimit`` sets the limits on
    itself and execs ``command``, so the pid, process group and exit status stay the command's.

    Raises:
        FileNotFoundError: ``prlimit`` (Debian's util-linux, always installed) is missing.
    """
    prlimit = PRLIMIT
    if prlimit is None:
        raise FileNotFoundError("prlimit (util-linux) is not installed: it sets the sandbox's resource limits.")
    args = [prlimit]
    for kind, (soft, hard) in wanted.items():
        _, current_hard = resource.getrlimit(kind)
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        args.append(f"{PRLIMIT_FLAGS[kind]}={soft}:{hard}")
    return [*args, "--", *command]


def limited(command: list[str], limits: Limits) -> list[str]:
    """``command`` under the run's rlimits: CPU seconds (SIGXCPU, then SIGKILL a second later), address space,
    file size, no core dumps."""
    return with_rlimits(
        command,
        {
            resource.RLIMIT_CPU: (limits.cpu_s, limits.cpu_s + 1),
            resource.RLIMIT_AS: (limits.memory_mb << 20, limits.memory_mb << 20),
            resource.RLIMIT_FSIZE: (limits.file_mb << 20, limits.file_mb << 20),
            resource.RLIMIT_CORE: (0, 0),
        },
    )


def exit_code(returncode: int, bwrap: bool) -> int:
    """A negative signal number for a process killed by a signal: bwrap reports it as 128 + the signal."""
    if bwrap and 128 < returncode <= 128 + signal.NSIG:
        return -(returncode - 128)
    return returncode


def _start(half: Half, env: Mapping[str, str], limits: Limits) -> subprocess.Popen:
    with open(half.log, "wb") as out:
        return subprocess.Popen(
            limited(half.command, limits), cwd=half.cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, pass_fds=half.fds,
        )  # fmt: skip


def _stop(process: subprocess.Popen, sync: int | None) -> None:
    """Kill the half's process group; under bwrap, wait until its whole sandbox is gone."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone
    process.wait()
    if sync is None:
        return
    deadline = time.monotonic() + SYNC_WAIT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sync], [], [], max(0.0, deadline - time.monotonic()))
            if ready and not os.read(sync, 4096):
                return
    finally:
        os.close(sync)


def run_halves(tests: Half, module: Half, env: Mapping[str, str], limits: Limits, *, bwrap: bool) -> Ended:
    """Start the module side, then the tests side; wait for the tests side at most ``limits.timeout_s``.

    The descriptors in ``tests.fds`` and ``module.fds`` are closed here once both have started.
    """
    started = time.monotonic()
    processes: list[subprocess.Popen] = []
    try:
        processes.append(_start(module, env, limits))
        processes.append(_start(tests, env, limits))
    except BaseException:
        for process, half in zip(processes, (module, tests), strict=False):
            _stop(process, half.sync)
        raise
    finally:
        for fd in {*tests.fds, *module.fds}:
            os.close(fd)
    module_process, tests_process = processes
    tests_code, timed_out = None, False
    try:
        tests_code = exit_code(tests_process.wait(timeout=limits.timeout_s), bwrap)
    except subprocess.TimeoutExpired:
        timed_out = True
    module_code = module_process.poll()
    seconds = time.monotonic() - started
    _stop(tests_process, tests.sync)
    _stop(module_process, module.sync)
    return Ended(tests_code, None if module_code is None else exit_code(module_code, bwrap), timed_out, seconds)
