"""Test runners: which one a test file needs, its command line, its pass/fail counts, its failures trimmed.

pytest runs anything pytest collects (plain ``assert`` tests and ``unittest.TestCase`` classes alike); a file
written only for ``unittest`` (imports unittest, defines a TestCase, never mentions pytest) runs under
``python -m unittest`` so that it works where pytest is not installed.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from code_generation.errors import SandboxError

PYTEST, UNITTEST = "pytest", "unittest"
_UNITTEST_IMPORT = re.compile(r"^\s*(import\s+unittest|from\s+unittest\s+import)", re.M)
_PYTEST_STYLE = re.compile(r"\bpytest\b|^def\s+test_", re.M)
_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)\b")
_PYTEST_TIMING = re.compile(r" in \d+(\.\d+)?s( \(\d+:\d+:\d+\))?")
_PYTEST_SECTION = re.compile(r"^=+ (FAILURES|ERRORS) =+$", re.M)
_UNITTEST_SECTION = re.compile(r"^={20,}\n(FAIL|ERROR): ", re.M)
_RULE = re.compile(r"([=_!-])\1{3,}")
# a pytest --tb=short frame of a file outside the sandbox: an absolute path, or frozen importlib
_OUTSIDE_FRAME = re.compile(r"^(?:/\S+|<frozen [^>]+>):\d+: in \S+\n(?:[ \t]+.*\n)*", re.M)
_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests?", re.M)
_UNITTEST_FAILED = re.compile(r"^FAILED \(([^)]*)\)", re.M)


def choose_runner(test_source: str) -> str:
    """``"unittest"`` for a file written only for unittest, else ``"pytest"``.

    Raises:
        SandboxError: the file needs pytest and this Python has no pytest.
    """
    only_unittest = bool(_UNITTEST_IMPORT.search(test_source)) and "TestCase" in test_source
    if only_unittest and not _PYTEST_STYLE.search(test_source):
        return UNITTEST
    if importlib.util.find_spec("pytest") is None:
        raise SandboxError(f"The test file needs pytest, which {sys.executable} lacks: pip install pytest")
    return PYTEST


def runner_command(runner: str, test_path: Path, plugins: bool = False) -> list[str]:
    """The argv that runs ``test_path`` (relative to the sandbox folder) with this interpreter.

    pytest runs quiet, with short tracebacks and no cache folder; unless ``plugins``, the project's
    ``addopts`` are dropped (they often name plugins, which the sandbox does not load).
    """
    if runner == UNITTEST:
        return [sys.executable, "-m", "unittest", "-v", str(test_path)]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=short", "--color=no"]
    if not plugins:
        command += ["-o", "addopts="]
    return [*command, "--rootdir=.", str(test_path)]


def pytest_counts(output: str) -> tuple[int, int]:
    """``(passed, failed)`` from pytest's last summary line; errors count as failed. ``(0, 0)`` if none."""
    for line in reversed(output.splitlines()):
        if " in " not in line:
            continue
        counts = {kind.rstrip("s"): int(n) for n, kind in _PYTEST_COUNT.findall(line)}
        if counts or "no tests ran" in line:
            failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("xpassed", 0)
            return counts.get("passed", 0), failed
    return 0, 0


def unittest_counts(output: str) -> tuple[int, int]:
    """``(passed, failed)`` from unittest's ``Ran N tests`` and ``FAILED (failures=1, errors=2)`` lines."""
    ran = _UNITTEST_RAN.findall(output)
    if not ran:
        return 0, 0
    total = int(ran[-1])
    details: dict[str, int] = {}
    failed_lines = _UNITTEST_FAILED.findall(output)
    if failed_lines:
        for part in failed_lines[-1].split(","):
            key, _, value = part.strip().partition("=")
            if value.isdigit():
                details[key] = int(value)
    failed = details.get("failures", 0) + details.get("errors", 0) + details.get("unexpected successes", 0)
    not_run = details.get("skipped", 0) + details.get("expected failures", 0)
    return max(total - failed - not_run, 0), failed


def counts(runner: str, output: str) -> tuple[int, int]:
    """``(passed, failed)`` for ``runner``'s output."""
    return unittest_counts(output) if runner == UNITTEST else pytest_counts(output)


def trim_failures(output: str, runner: str, max_chars: int = 2000) -> str:
    """What a model needs from a failed run, at most ``max_chars`` characters (head and tail kept).

    Keeps the failure sections (tracebacks, failing assertions, the short summary); drops what precedes
    them, traceback frames of files outside the sandbox (the standard library's importlib, say; sandbox
    paths are relative by then), timings (as aider's benchmark does, so equal failures read the same) and
    the length of long rules (``=====`` becomes ``===``), which small context windows cannot spare.
    """
    section = _UNITTEST_SECTION if runner == UNITTEST else _PYTEST_SECTION
    found = section.search(output)
    text = output[found.start() :] if found else output
    text = _OUTSIDE_FRAME.sub("", _PYTEST_TIMING.sub("", text))
    text = _RULE.sub(r"\1\1\1", text).strip()
    if len(text) <= max_chars:
        return text
    head = max_chars * 2 // 3
    tail = max_chars - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n... [{cut} characters cut] ...\n{text[-tail:]}"
