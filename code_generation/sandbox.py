"""Run a test file against generated code in a sandbox.

Code a model wrote is the most dangerous thing this project runs, so each test run:

- works in a temporary copy of the output's folder (the user's files, the test file among them, are
  never opened for writing; symlinks are copied as files, so none leads back out);
- runs in its own process group with no stdin, killed after a wall-clock timeout, with ``resource``
  limits on CPU seconds (``RLIMIT_CPU``), address space (``RLIMIT_AS``) and file size (``RLIMIT_FSIZE``,
  which also bounds the captured output), and no core dumps;
- sees an environment stripped of credentials (see :func:`is_secret_name`), with ``HOME`` and ``TMPDIR``
  pointing into the sandbox, so ``~/.aws``, ``~/.netrc`` or gcloud's files are not found by default.

It is a process sandbox, not a security boundary: code that opens absolute paths can still read what
the user can read. Run untrusted models' code in a container or VM as well.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from code_generation import runners
from code_generation.errors import SandboxError

SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")
SECRET_PREFIXES = ("AWS_", "AZURE_", "CLOUDSDK_")
SECRET_NAMES = frozenset({"KUBECONFIG", "DOCKER_CONFIG", "NETRC", "PGPASSFILE"})
_URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
COPY_IGNORE = ("generation_*.txt", "*.pyc", "__pycache__", ".git", ".hg", ".svn", "node_modules", ".tox")
COPY_IGNORE += (".mypy_cache", ".pytest_cache", ".ruff_cache")
MAX_COPY_FILES = 2000
MAX_COPY_MB = 100
OUTPUT_KEEP_CHARS = 100_000


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one test run.

    Attributes:
        timeout_s: wall-clock seconds before the whole process group is killed.
        cpu_s: CPU seconds (``RLIMIT_CPU``); memory_mb: address space in MiB (``RLIMIT_AS``);
        file_mb: largest file the run may write, its captured output included (``RLIMIT_FSIZE``).
    """

    timeout_s: float = 60.0
    cpu_s: int = 60
    memory_mb: int = 1024
    file_mb: int = 64


@dataclass(frozen=True)
class SandboxRun:
    """The outcome of one test run.

    Attributes:
        passed / failed: test counts (errors count as failed).
        reason: why the run failed beyond failing tests ("timed out after 60 s", "memory limit of
            1024 MB reached", ...), or None.
        output: the runner's stdout and stderr, the sandbox path removed, at most about 200,000 characters.
        runner: "pytest", "unittest", or "none" when nothing ran.
        seconds: wall time of the run; returncode: None when nothing ran, negative for a signal.
    """

    passed: int
    failed: int
    reason: str | None
    output: str
    runner: str
    seconds: float = 0.0
    returncode: int | None = None

    @classmethod
    def not_run(cls, reason: str) -> SandboxRun:
        """A run that never started (no code to test, say): nothing passed."""
        return cls(passed=0, failed=0, reason=reason, output="", runner="none")

    @property
    def ok(self) -> bool:
        """Every test passed, at least one ran, and nothing went wrong."""
        return self.reason is None and self.returncode == 0 and self.failed == 0 and self.passed > 0

    @property
    def summary(self) -> str:
        """``3 passed, 1 failed``, then ``; <reason>`` if there is one."""
        text = f"{self.passed} passed, {self.failed} failed"
        return f"{text}; {self.reason}" if self.reason else text

    def feedback(self, max_chars: int = 2000) -> str:
        """The reason and the trimmed failure output, for the model (see :func:`runners.trim_failures`)."""
        trimmed = runners.trim_failures(self.output, self.runner, max_chars) if self.output else ""
        reason = f"The test run failed: {self.reason}.\n" if self.reason else ""
        return (reason + trimmed).strip()


def is_secret_name(name: str) -> bool:
    """True for environment names that may hold credentials: any containing KEY, TOKEN, SECRET, PASSWORD,
    PASSWD, CREDENTIAL or AUTH (case-insensitive), ``AWS_*``, ``AZURE_*``, ``CLOUDSDK_*``, and files of
    credentials (``KUBECONFIG``, ``DOCKER_CONFIG``, ``NETRC``, ``PGPASSFILE``)."""
    upper = name.upper()
    return upper in SECRET_NAMES or upper.startswith(SECRET_PREFIXES) or any(w in upper for w in SECRET_WORDS)


def scrub_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` without credentials: secret names (:func:`is_secret_name`) and any value that
    is a URL with a password in it (``postgres://user:pw@host``)."""
    return {
        name: value
        for name, value in environ.items()
        if not is_secret_name(name) and not _URL_WITH_PASSWORD.search(value)
    }


def child_environment(environ: Mapping[str, str], root: Path, plugins: bool) -> dict[str, str]:
    """The sandboxed run's environment: scrubbed, ``HOME``/``TMPDIR`` inside ``root``, no bytecode files,
    and pytest's plugin autoloading off unless ``plugins`` (a tenth of the start-up time, no side effects)."""
    env = scrub_environment(environ)
    env.update(HOME=str(root / "home"), TMPDIR=str(root / "tmp"), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    if not plugins:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes; ``"missing"`` when it does not exist."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return "missing"


def _skipped(directory: str | Path, names: list[str]) -> set[str]:
    directory = Path(directory)
    skipped = set(shutil.ignore_patterns(*COPY_IGNORE)(str(directory), names))
    return skipped | {name for name in names if (directory / name / "pyvenv.cfg").exists()}  # virtualenvs


def _check_copy_size(folder: Path) -> None:
    files = size = 0
    for directory, dirnames, filenames in os.walk(folder):
        skipped = _skipped(Path(directory), dirnames + filenames)
        dirnames[:] = [name for name in dirnames if name not in skipped]
        for name in filenames:
            if name not in skipped:
                files += 1
                size += (Path(directory) / name).stat().st_size if (Path(directory) / name).exists() else 0
        if files > MAX_COPY_FILES or size > MAX_COPY_MB << 20:
            raise SandboxError(
                f"{folder} holds more than {MAX_COPY_FILES} files or {MAX_COPY_MB} MB, too much to copy into the "
                "sandbox for every attempt. Put OUTPUT_FILE (and its test file) in a folder of their own."
            )


def copy_into_sandbox(folder: Path, test_file: Path, work: Path) -> Path:
    """Copy ``folder`` to ``work`` (caches, VCS folders and virtualenvs left out) and return the test file's
    path relative to ``work``; a test file outside ``folder`` is copied to ``work``'s top level.

    Raises:
        SandboxError: the folder is too large, or an outside test file's name is taken in the copy.
    """
    _check_copy_size(folder)
    shutil.copytree(folder, work, ignore=_skipped, symlinks=False, ignore_dangling_symlinks=True)
    try:
        relative = test_file.relative_to(folder)
    except ValueError:
        relative = Path(test_file.name)
        if (work / relative).exists():
            raise SandboxError(
                f"The test file {test_file} is outside {folder}, which has its own {test_file.name}: "
                "rename one, or move the test file next to OUTPUT_FILE."
            ) from None
    if not (work / relative).exists():
        (work / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(test_file, work / relative)
    return relative


def _limiter(limits: SandboxLimits) -> Callable[[], None]:
    def clamp(kind: int, soft: int, hard: int) -> tuple[int, int]:
        _, current_hard = resource.getrlimit(kind)
        if current_hard == resource.RLIM_INFINITY:
            return soft, hard
        return min(soft, current_hard), min(hard, current_hard)

    wanted = {
        resource.RLIMIT_CPU: clamp(resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1),  # SIGXCPU, then SIGKILL
        resource.RLIMIT_AS: clamp(resource.RLIMIT_AS, limits.memory_mb << 20, limits.memory_mb << 20),
        resource.RLIMIT_FSIZE: clamp(resource.RLIMIT_FSIZE, limits.file_mb << 20, limits.file_mb << 20),
        resource.RLIMIT_CORE: (0, 0),
    }

    def apply() -> None:  # runs in the child between fork and exec: no allocation-heavy work here
        for kind, value in wanted.items():
            resource.setrlimit(kind, value)

    return apply


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


def execute(command: list[str], cwd: Path, env: dict[str, str], limits: SandboxLimits, log: Path) -> tuple[int, bool]:
    """Run ``command`` under ``limits`` with stdout and stderr into ``log``; returns (returncode, timed_out).

    Whatever the command left running in its process group is killed when it ends.
    """
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_limiter(limits), start_new_session=True,
        )  # fmt: skip
        try:
            return process.wait(timeout=limits.timeout_s), False
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return process.wait(), True
        finally:
            _kill_group(process)


def read_output(log: Path, root: Path) -> str:
    """The captured output (first and last 100,000 characters of it) with the sandbox path removed."""
    text = log.read_bytes().decode("utf-8", errors="replace")
    if len(text) > 2 * OUTPUT_KEEP_CHARS:
        cut = len(text) - 2 * OUTPUT_KEEP_CHARS
        text = f"{text[:OUTPUT_KEEP_CHARS]}\n... [{cut} characters cut] ...\n{text[-OUTPUT_KEEP_CHARS:]}"
    return text.replace(f"{root}{os.sep}", "").replace(str(root), ".")


def failure_reason(
    returncode: int,
    timed_out: bool,
    output: str,
    limits: SandboxLimits,
    counted: tuple[int, int],
    test_changed: bool,
    output_full: bool = False,
) -> str | None:
    """Why a run failed beyond its failing tests, in words a user and a model understand; None if it didn't.

    ``output_full``: the captured output reached the file size limit (Python ignores SIGXFSZ, so an
    oversized write fails with EFBIG instead of killing the process).
    """
    if timed_out:
        return f"timed out after {limits.timeout_s:g} s"
    if returncode == -signal.SIGXCPU:
        return f"CPU time limit of {limits.cpu_s} s reached"
    if returncode == -signal.SIGXFSZ or output_full or "[Errno 27] File too large" in output:
        return f"file size limit of {limits.file_mb} MB reached (output included)"
    if "MemoryError" in output or "Cannot allocate memory" in output or "std::bad_alloc" in output:
        return f"memory limit of {limits.memory_mb} MB reached"
    if test_changed:
        return "the code under test modified the test file"
    if returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}"
    if returncode == 2 and "during collection" in output:
        return "the tests could not be collected: an import or syntax error"
    if counted == (0, 0):
        return "no test ran" if returncode in (0, 5) else f"the test runner failed (exit code {returncode})"
    return None


def run_tests(
    output_file: Path, test_file: Path, limits: SandboxLimits | None = None, *, plugins: bool = False
) -> SandboxRun:
    """Run ``test_file`` against the code in ``output_file`` in a sandbox copy of ``output_file``'s folder.

    Args:
        output_file: the generated module (already written); its folder is what gets copied.
        test_file: pytest or unittest tests importing the module by ``output_file``'s stem.
        limits: see :class:`SandboxLimits`; plugins: let pytest autoload installed plugins.

    Raises:
        SandboxError: the sandbox could not be set up (see :func:`copy_into_sandbox`, :func:`runners.choose_runner`).
    """
    limits = limits or SandboxLimits()
    output_file, test_file = Path(output_file).resolve(), Path(test_file).resolve()
    runner = runners.choose_runner(test_file.read_text(encoding="utf-8"))
    expected = file_sha256(test_file)
    root = Path(tempfile.mkdtemp(prefix="create-script-"))
    try:
        work = root / "work"
        relative = copy_into_sandbox(output_file.parent, test_file, work)
        (root / "home").mkdir()
        (root / "tmp").mkdir()
        env = child_environment(os.environ, root, plugins)
        started = time.monotonic()
        command = runners.runner_command(runner, relative, plugins)
        returncode, timed_out = execute(command, work, env, limits, root / "output.log")
        seconds = time.monotonic() - started
        output = read_output(root / "output.log", work)
        output_full = (root / "output.log").stat().st_size >= limits.file_mb << 20
        changed = file_sha256(work / relative) != expected
    finally:
        shutil.rmtree(root, ignore_errors=True)  # our own temporary folder; a leftover is harmless
    counted = runners.counts(runner, output)
    reason = failure_reason(returncode, timed_out, output, limits, counted, changed, output_full)
    return SandboxRun(counted[0], counted[1], reason, output, runner, round(seconds, 3), returncode)
