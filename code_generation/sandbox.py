"""Run a test file against generated code: isolated by the kernel, judged from outside the code's reach.

Security model (what :func:`run_tests` guarantees, and what it does not):

- **Isolation.** A run is two processes, each under bubblewrap in namespaces of its own (see
  :mod:`code_generation.isolation`): no network, no home folder, no file of the host but the read-only system
  and Python folders, a fresh ``/proc`` (no ``/proc/$PPID/environ`` of ours to read), an environment made of an
  allow-list (no credentials, whatever their names), every capability dropped; CPU, memory, file size and
  wall-clock limits (see :mod:`code_generation.launch`). Each works in its own temporary copy of the output's
  folder; the user's folder is never mounted. When a run ends, every process it started has ended, daemons
  included. Without bubblewrap, generated code is not run unless the caller passes ``isolate=False``
  (``--unsafe-no-sandbox``), which keeps only the limits, the copies and the environment allow-list.
- **The verdict.** The generated module runs alone in one sandbox (the *module side*); the test file runs under
  pytest or unittest in the other (the *tests side*), where ``import <module>`` is a stand-in that sends calls
  over a socket and rebuilds the results from plain data (:mod:`code_generation.harness`). No code of the
  generated module runs where the assertions are evaluated and the outcomes recorded, so it cannot patch
  pytest or ``unittest.TestCase``, print a fake summary, exit the runner early with a good status, or plant a
  ``conftest.py`` where the runner looks; ``from <module> import *`` never rebinds a name the test module
  has already, nor a built-in (``abs``, ``isinstance``). The tests side writes each collected test and its
  outcome to a file descriptor only it holds; :mod:`code_generation.verdict` accepts the counts only if every
  collected test has exactly one outcome, the runner reached its end, and every test the file defines was
  collected.
- **The user's folder** is compared before and after each run (names, sizes, hashes): anything new is removed,
  a changed test file restored, every change reported and the run failed (:mod:`code_generation.folders`).

Not guaranteed:

- values: the module side answers with whatever values it likes, so code can still be wrong in ways the tests
  do not check (it cannot read the test file, but a model that saw the tests may hard-code answers); an
  object of the generated code compared with another of its own objects decides that comparison itself;
- what the code can read: the copy of the output's folder (files of credentials such as ``.env``, ``*.pem``,
  ``id_*`` are left out, see :data:`code_generation.folders.SECRET_FILES`); what it prints or returns reaches
  the model in the failure output, redacted for known secret formats only, so it could smuggle an obfuscated
  copy of a secret kept in an ordinary file there;
- resources: the limits bound each process and the wall-clock time, not the number of processes nor the disk
  space the copies and ``/tmp`` take in the host's temporary folder while a run lasts;
- the kernel: a bug in namespaces is out of scope; run as root, the sandbox's processes are uid 0 without
  capabilities (see :mod:`code_generation.isolation`);
- ``isolate=False``: none of the isolation holds and the verdict can be forged.

Tests that need the generated code in their own process do not work: a ``monkeypatch`` of the module's
globals, running OUTPUT_FILE as a script with ``subprocess``, importing it relatively (``from .adder import``),
passing it objects that are neither plain data nor functions, subclassing its classes. A module named like
one of Python's own (``json.py``) is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from code_generation import harness, runners
from code_generation.folders import FolderWatch, copy_folder, file_sha256, place_test_file
from code_generation.isolation import INSIDE_HARNESS, INSIDE_WORK, bwrap_command, require_bwrap, sandbox_environment
from code_generation.launch import Ended, Half, run_halves
from code_generation.redaction import redact_output
from code_generation.verdict import Verdict, defined_tests, judge, read_records

OUTPUT_KEEP_CHARS = 100_000
HARNESS_PACKAGE = "create_script_harness"
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); import importlib; "
    f"importlib.import_module('{HARNESS_PACKAGE}.' + sys.argv[2]).main(sys.argv[3:])"
)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one test run.

    Attributes:
        timeout_s: wall-clock seconds before both sandboxes are killed.
        cpu_s: CPU seconds per process (``RLIMIT_CPU``); memory_mb: address space in MiB (``RLIMIT_AS``);
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
        passed / failed: test counts from the verdict channel (errors count as failed).
        reason: why the run failed beyond failing tests ("timed out after 60 s", "the tests could not be
            collected ...", "the code under test changed files outside its sandbox: ..."), or None.
        output: the runner's output, then what the module printed outside any test; sandbox paths removed,
            secrets redacted (:func:`code_generation.redaction.redact_output`), at most about 200,000 characters.
        runner: "pytest", "unittest", or "none" when nothing ran.
        seconds: wall time of the run; returncode: the tests side's exit code (None when nothing ran or it was
            stopped at the time limit; negative for a signal).
        outside_changes: what changed in the user's folder during the run (see :class:`FolderWatch`).
    """

    passed: int
    failed: int
    reason: str | None
    output: str
    runner: str
    seconds: float = 0.0
    returncode: int | None = None
    outside_changes: tuple[str, ...] = ()

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


def tree_sha256(folder: Path) -> str:
    """One hash of every file's path and bytes under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}\0{file_sha256(path)}\0".encode())
    return digest.hexdigest()


def read_output(log: Path, replacements: dict[str, str]) -> str:
    """The captured output (first and last 100,000 characters of it), each sandbox path made relative."""
    text = log.read_bytes().decode("utf-8", errors="replace") if log.exists() else ""
    if len(text) > 2 * OUTPUT_KEEP_CHARS:
        cut = len(text) - 2 * OUTPUT_KEEP_CHARS
        text = f"{text[:OUTPUT_KEEP_CHARS]}\n... [{cut} characters cut] ...\n{text[-OUTPUT_KEEP_CHARS:]}"
    for path, short in replacements.items():
        text = text.replace(f"{path}{os.sep}", "").replace(path, short)
    return text


def failure_reason(
    ended: Ended,
    output: str,
    limits: SandboxLimits,
    verdict: Verdict,
    *,
    test_changed: bool = False,
    runner_changed: bool = False,
    outside_changes: tuple[str, ...] = (),
    output_full: bool = False,
) -> str | None:
    """Why a run failed beyond its failing tests, in words a user and a model understand; None if it didn't.

    Text in ``output`` can only add a reason (the module side may print anything): it never removes one.
    ``output_full``: an output file reached the file size limit (Python ignores SIGXFSZ, so an oversized
    write fails with EFBIG instead of killing the process).
    """
    codes = {ended.tests, ended.module} - {None}
    if ended.timed_out:
        return f"timed out after {limits.timeout_s:g} s"
    if -signal.SIGXCPU in codes:
        return f"CPU time limit of {limits.cpu_s} s reached"
    if -signal.SIGXFSZ in codes or output_full or "[Errno 27] File too large" in output:
        return f"file size limit of {limits.file_mb} MB reached (output included)"
    if "MemoryError" in output or "Cannot allocate memory" in output or "std::bad_alloc" in output:
        return f"memory limit of {limits.memory_mb} MB reached"
    if outside_changes:
        return "the code under test changed files outside its sandbox: " + "; ".join(outside_changes)
    if test_changed:
        return "the code under test modified the test file"
    if runner_changed:
        return "the test runner was changed during the run"
    for side, code in (("the test runner", ended.tests), ("the generated module's process", ended.module)):
        if code is not None and code < 0:
            return f"{side} was killed by signal {signal.Signals(-code).name}"
    if verdict.problem:
        return verdict.problem
    if verdict.passed + verdict.failed == 0:
        return "no test ran" if ended.tests in (0, 5) else f"the test runner failed (exit code {ended.tests})"
    return None


def _prepare(root: Path, output_file: Path, test_file: Path) -> Path:
    """The two copies, the shared scratch folder and the harness under ``root``; the test file's path in the
    tests side's copy."""
    folder = output_file.parent
    copy_folder(folder, root / "tests", leave_out=output_file)
    relative = place_test_file(folder, test_file, root / "tests")
    copy_folder(folder, root / "module", leave_out=test_file)
    (root / "tmp").mkdir()
    package = root / "opt" / HARNESS_PACKAGE
    package.mkdir(parents=True)
    for source in Path(harness.__file__).parent.glob("*.py"):
        shutil.copyfile(source, package / source.name)
    return relative


def _halves(
    root: Path, relative: Path, runner: str, module: str, plugins: bool, bwrap: str | None
) -> tuple[Half, Half, dict[str, str]]:
    """The two halves' commands and descriptors, and the environment: (tests, module, env)."""
    env = sandbox_environment(os.environ, plugins=plugins, tmp="/tmp" if bwrap else str(root / "tmp"))
    tests_end, module_end = socket.socketpair()
    results = os.open(root / "results.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    python = [sys.executable, "-I", "-B", "-c", BOOT, INSIDE_HARNESS if bwrap else str(root / "opt")]
    tests_args = ["--channel", str(tests_end.fileno()), "--results", str(results), "--runner", runner]
    tests_args += ["--module", module, "--tests", str(relative), *(["--plugins"] if plugins else [])]
    commands = {
        "tests": ([*python, "tests_side", *tests_args], (tests_end.detach(), results)),
        "module": ([*python, "module_side", "--channel", str(module_end.fileno())], (module_end.detach(),)),
    }
    halves = []
    for name, (command, fds) in commands.items():
        sync = None
        if bwrap:
            sync, write = os.pipe()
            command = bwrap_command(bwrap, command, work=root / name, tmp=root / "tmp", harness=root / "opt",
                                    env=env, sync_fd=write)  # fmt: skip
            fds = (*fds, write)
        halves.append(Half(command, root / name, root / f"{name}.log", fds, sync))
    return halves[0], halves[1], env


def run_tests(
    output_file: Path,
    test_file: Path,
    limits: SandboxLimits | None = None,
    *,
    plugins: bool = False,
    isolate: bool = True,
) -> SandboxRun:
    """Run ``test_file`` against the code in ``output_file``, in two sandboxes (see the module's docstring).

    Args:
        output_file: the generated module (already written); its folder is what gets copied.
        test_file: pytest or unittest tests importing the module by ``output_file``'s stem.
        limits: see :class:`SandboxLimits`; plugins: let pytest autoload installed plugins.
        isolate: False runs without bubblewrap (``--unsafe-no-sandbox``): no isolation, a forgeable verdict.

    Raises:
        SandboxUnavailableError: ``isolate`` and bubblewrap is missing or cannot create namespaces.
        SandboxError: the folder is too large to copy, the test file's name is taken, pytest is missing,
            ``output_file``'s name is a module of Python's (see :func:`runners.check_module_name`).
    """
    limits = limits or SandboxLimits()
    output_file, test_file = Path(output_file).resolve(), Path(test_file).resolve()
    source = test_file.read_text(encoding="utf-8")
    runners.check_module_name(output_file.stem)
    runner = runners.choose_runner(source)
    bwrap = require_bwrap() if isolate else None
    watch = FolderWatch.take(output_file.parent, test_file)
    root = Path(tempfile.mkdtemp(prefix="create-script-"))
    try:
        relative = _prepare(root, output_file, test_file)
        harness_hash = tree_sha256(root / "opt")
        tests, module, env = _halves(root, relative, runner, output_file.stem, plugins, bwrap)
        ended = run_halves(tests, module, env, limits, bwrap=bwrap is not None)
        inside = {INSIDE_WORK: "."} if bwrap else {str(root / "tests"): ".", str(root / "module"): "."}
        output = read_output(tests.log, {**inside, str(root): "."})
        printed = read_output(module.log, {**inside, str(root): "."}).strip()
        if printed:
            output += f"\n--- printed by the generated module outside any test ---\n{printed}\n"
        output_full = any(log.stat().st_size >= limits.file_mb << 20 for log in (tests.log, module.log))
        verdict = judge(read_records(root / "results.jsonl"), defined_tests(source, runner), runner)
        test_changed = file_sha256(root / "tests" / relative) != hashlib.sha256(watch.test_bytes).hexdigest()
        runner_changed = tree_sha256(root / "opt") != harness_hash
    finally:
        remove_tree(root)
        changes = watch.repair()
    reason = failure_reason(
        ended, output, limits, verdict, test_changed=test_changed, runner_changed=runner_changed,
        outside_changes=changes, output_full=output_full,
    )  # fmt: skip
    return SandboxRun(verdict.passed, verdict.failed, reason, redact_output(output, os.environ), runner,
                      round(ended.seconds, 3), ended.tests, changes)  # fmt: skip


def remove_tree(root: Path) -> None:
    """Remove our temporary folder, even where the sandboxed code took away its own permissions."""
    for directory, dirnames, _ in os.walk(root):
        for path in (os.path.join(directory, name) for name in dirnames):
            if not os.path.islink(path):
                with contextlib.suppress(OSError):
                    os.chmod(path, 0o700)
    shutil.rmtree(root, ignore_errors=True)
