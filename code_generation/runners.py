"""Test runners: which one a test file needs, and its failures trimmed for the model.

pytest runs anything pytest collects (plain ``assert`` tests and ``unittest.TestCase`` classes alike); a file
written only for ``unittest`` (imports unittest, defines a TestCase, never mentions pytest) runs under
unittest's own runner so that it works where pytest is not installed. Both run inside the sandbox's tests side
(:mod:`code_generation.harness.tests_side`); their output is feedback, never the verdict.
"""

from __future__ import annotations

import importlib.util
import re
import sys

from code_generation.errors import SandboxError

PYTEST, UNITTEST = "pytest", "unittest"
_UNITTEST_IMPORT = re.compile(r"^\s*(import\s+unittest|from\s+unittest\s+import)", re.M)
_PYTEST_STYLE = re.compile(r"\bpytest\b|^def\s+test_", re.M)
_PYTEST_TIMING = re.compile(r" in \d+(\.\d+)?s( \(\d+:\d+:\d+\))?")
_PYTEST_SECTION = re.compile(r"^=+ (FAILURES|ERRORS) =+$", re.M)
_UNITTEST_SECTION = re.compile(r"^={20,}\n(FAIL|ERROR): ", re.M)
_RULE = re.compile(r"([=_!-])\1{3,}")
# a pytest --tb=short frame of a file outside the sandbox: an absolute path, or frozen importlib
_OUTSIDE_FRAME = re.compile(r"^(?:/\S+|<frozen [^>]+>):\d+: in \S+\n(?:[ \t]+.*\n)*", re.M)


RUNNER_MODULES = frozenset({"pytest", "_pytest", "pluggy", "iniconfig", "packaging", "create_script_harness"})


def check_module_name(name: str) -> None:
    """Refuse an OUTPUT_FILE whose module name is a standard library module or one the test runner imports:
    the tests side would take its own imports of that name for the generated module.

    Raises:
        SandboxError: with the name to change.
    """
    if not name.isidentifier():
        raise SandboxError(f"OUTPUT_FILE's name {name!r} is not a Python module name the tests could import.")
    if name in getattr(sys, "stdlib_module_names", ()) or name in RUNNER_MODULES:
        raise SandboxError(
            f"OUTPUT_FILE's module name {name!r} is also a module of Python or of the test runner: "
            "give OUTPUT_FILE another name (and import that name in the tests)."
        )


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
