"""The tests side: run the user's test file under pytest or unittest and record every outcome.

Run in its own sandbox as ``tests --channel FD --results FD --runner pytest|unittest --module NAME --tests PATH
[--plugins]``. Before the test file is imported, ``NAME`` is bound to the stand-in of :mod:`.proxy`, so no code
of the generated module runs in this process. The outcomes go to the results descriptor, one JSON object a
line, written by this process only (the module side never holds that descriptor)::

    {"event": "collected", "tests": ["test_adder.py::test_small", ...]}
    {"event": "collect_error", "where": "test_adder.py"}            (zero or more)
    {"event": "outcome", "test": "test_adder.py::test_small", "outcome": "passed|failed|error|skipped"}
    {"event": "done", "exit": 0}

The runner's own output (pytest ``-q --tb=short``, or unittest ``-v``) goes to stdout and stderr as usual; it is
feedback for the model, never the verdict.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import unittest
from pathlib import Path
from typing import Any, TextIO

from .proxy import GeneratedModuleFinder, Remote


class Results:
    """The results descriptor: one JSON object a line, flushed at once."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, **record: Any) -> None:
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


class PytestReporter:
    """A pytest plugin: the collected test ids, then one outcome per test from its setup, call and teardown."""

    def __init__(self, results: Results) -> None:
        self.results = results
        self.phases: dict[str, list[str]] = {}

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.results.write(event="collect_error", where=report.nodeid)

    def pytest_collection_finish(self, session: Any) -> None:
        self.results.write(event="collected", tests=[item.nodeid for item in session.items])

    def pytest_runtest_logreport(self, report: Any) -> None:
        outcome = report.outcome
        if report.when != "call" and outcome == "failed":
            outcome = "error"
        elif outcome == "passed" and hasattr(report, "wasxfail"):
            outcome = "failed"  # an unexpected pass of a test marked xfail
        phases = self.phases.setdefault(report.nodeid, [])
        phases.append(outcome)
        if report.when == "teardown":
            final = next((o for o in ("error", "failed", "skipped") if o in phases), "passed")
            self.results.write(event="outcome", test=report.nodeid, outcome=final)


def run_pytest(results: Results, test_path: str, plugins: bool) -> int:
    """pytest, quiet, short tracebacks, no cache folder; the project's ``addopts`` dropped unless ``plugins``."""
    import pytest

    args = ["-q", "-p", "no:cacheprovider", "--tb=short", "--color=no", "--rootdir=.", test_path]
    if not plugins:
        args[:0] = ["-o", "addopts="]
    return int(pytest.main(args, plugins=[PytestReporter(results)]))


def _flatten(suite: Any) -> list[Any]:
    tests: list[Any] = []
    for test in suite:
        tests.extend(_flatten(test) if isinstance(test, unittest.TestSuite) else [test])
    return tests


def _reporting_result(results: Results) -> type:
    class ReportingResult(unittest.TextTestResult):
        """unittest's verbose result that also records each test's outcome (subtests included)."""

        outcome = "passed"

        def startTest(self, test: Any) -> None:
            self.outcome = "passed"
            super().startTest(test)

        def stopTest(self, test: Any) -> None:
            super().stopTest(test)
            results.write(event="outcome", test=test.id(), outcome=self.outcome)

        def addError(self, test: Any, err: Any) -> None:
            super().addError(test, err)
            if isinstance(test, unittest.TestCase):
                self.outcome = "error"
            else:  # setUpClass or setUpModule failed: its tests never start
                results.write(event="collect_error", where=str(test))

        def addFailure(self, test: Any, err: Any) -> None:
            super().addFailure(test, err)
            self.outcome = "failed"

        def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
            super().addSubTest(test, subtest, err)
            if err is not None:
                self.outcome = "failed"

        def addSkip(self, test: Any, reason: str) -> None:
            super().addSkip(test, reason)
            self.outcome = "skipped"

        def addExpectedFailure(self, test: Any, err: Any) -> None:
            super().addExpectedFailure(test, err)
            self.outcome = "skipped"

        def addUnexpectedSuccess(self, test: Any) -> None:
            super().addUnexpectedSuccess(test)
            self.outcome = "failed"

    return ReportingResult


def run_unittest(results: Results, test_path: str) -> int:
    """``python -m unittest -v`` on one file: load its tests, record them, run them."""
    sys.path.insert(0, os.getcwd())
    name = ".".join(Path(test_path).with_suffix("").parts)
    tests = _flatten(unittest.defaultTestLoader.loadTestsFromName(name))
    results.write(event="collected", tests=[test.id() for test in tests])
    for test in tests:
        if type(test).__name__ == "_FailedTest":  # the file could not be imported
            results.write(event="collect_error", where=test.id())
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=_reporting_result(results))
    return 0 if runner.run(unittest.TestSuite(tests)).wasSuccessful() else 1


def main(argv: list[str]) -> None:
    """Connect to the module side, bind the stand-in, run the tests, record ``done`` and exit with the code."""

    def option(name: str) -> str:
        return argv[argv.index(name) + 1]

    channel_fd, results_fd = int(option("--channel")), int(option("--results"))
    for fd in (channel_fd, results_fd):
        os.set_inheritable(fd, False)  # no process the tests start inherits either
    results = Results(os.fdopen(results_fd, "w", encoding="utf-8"))
    remote = Remote(socket.socket(fileno=channel_fd), option("--module"))
    sys.meta_path.insert(0, GeneratedModuleFinder(remote))
    if option("--runner") == "unittest":
        code = run_unittest(results, option("--tests"))
    else:
        code = run_pytest(results, option("--tests"), "--plugins" in argv)
    results.write(event="done", exit=code)
    sys.exit(code)
