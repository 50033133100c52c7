"""The verdict of a test run, from the tests side's results descriptor, checked against the test file itself.

The tests side writes one JSON object a line (see :mod:`code_generation.harness.tests_side`): the collected
test ids, one outcome per test, ``done``. :func:`judge` accepts them only when they are complete and
consistent: exactly one ``collected``, one outcome for each collected test and none for any other, ``done``
at the end, and every test function the test file defines (:func:`defined_tests`, read from its syntax tree
here, outside any sandbox) among the collected ones. Anything else is a *problem*: the run fails, whatever
the counts say.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

OUTCOMES = ("passed", "failed", "error", "skipped")
_PARAMETERS = re.compile(r"\[.*\]$", re.S)


@dataclass(frozen=True)
class Verdict:
    """Counts of one run and what, if anything, makes them untrustworthy or incomplete.

    Attributes:
        passed / failed / skipped: tests by outcome (errors in setup or teardown count as failed).
        problem: why the run fails beyond failing tests (``"the tests could not be collected: ..."``), or None.
    """

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    problem: str | None = None


def _is_test_case(node: ast.ClassDef) -> bool:
    return any(ast.unparse(base).split(".")[-1] in ("TestCase", "IsolatedAsyncioTestCase") for base in node.bases)


def _disabled(node: ast.ClassDef) -> bool:
    """``__test__ = False`` in the class body, or an ``__init__`` (pytest skips such classes)."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__" and not _is_test_case(node):
            return True
        if isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__test__" for t in item.targets):
            return isinstance(item.value, ast.Constant) and not item.value.value
    return False


def defined_tests(source: str, runner: str) -> set[tuple[str | None, str]]:
    """``(class or None, function)`` of every test the file defines at its top level, by the runner's default
    rules: ``test*`` functions and, in ``Test*`` classes (pytest) or ``TestCase`` subclasses (both), ``test*``
    methods. A file that does not parse defines none (its collection error says why)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    found: set[tuple[str | None, str]] = set()
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if runner == "pytest" and isinstance(node, functions) and node.name.startswith("test"):
            found.add((None, node.name))
        elif isinstance(node, ast.ClassDef) and not _disabled(node):
            if _is_test_case(node) or (runner == "pytest" and node.name.startswith("Test")):
                found |= {
                    (node.name, f.name) for f in node.body if isinstance(f, functions) and f.name.startswith("test")
                }
    return found


def key_of(test_id: str, runner: str) -> tuple[str | None, str]:
    """``(class or None, function)`` of a collected id: ``file.py::Class::test_x[1-2]`` (pytest) or
    ``module.Class.test_x`` (unittest)."""
    parts = test_id.split("::")[1:] if runner == "pytest" else test_id.rsplit(".", 2)[-2:]
    parts = [_PARAMETERS.sub("", part) for part in parts] or [test_id]
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


def read_records(path: Path) -> list[dict] | None:
    """The results file's records; None when a line is not a JSON object (nothing can be trusted then)."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        records.append(record)
    return records


def judge(records: list[dict] | None, expected: set[tuple[str | None, str]], runner: str) -> Verdict:
    """The counts, and the first problem found (see the module's docstring)."""
    if records is None:
        return Verdict(problem="the test runner's results are malformed")
    collected = [r.get("tests") for r in records if r.get("event") == "collected"]
    if len(collected) != 1 or not isinstance(collected[0], list):
        return Verdict(problem="the test runner stopped before it collected the tests")
    tests = [t for t in collected[0] if isinstance(t, str)]
    outcomes: dict[str, str] = {}
    for record in (r for r in records if r.get("event") == "outcome"):
        test, outcome = record.get("test"), record.get("outcome")
        if test not in tests or test in outcomes or outcome not in OUTCOMES:
            return Verdict(problem=f"the test runner reported an unexpected outcome ({str(test)[:100]}: {outcome})")
        outcomes[test] = outcome
    counted = [list(outcomes.values()).count(o) for o in OUTCOMES]
    passed, failed, skipped = counted[0], counted[1] + counted[2], counted[3]
    verdict = Verdict(passed, failed, skipped)
    errors = [str(r.get("where"))[:200] for r in records if r.get("event") == "collect_error"]
    if errors:
        return Verdict(
            passed,
            failed,
            skipped,
            f"the tests could not be collected ({', '.join(errors)}): an import or syntax error",
        )
    if not records or records[-1].get("event") != "done":
        return Verdict(passed, failed, skipped, "the test runner stopped before it finished")
    missing = [t for t in tests if t not in outcomes]
    if missing:
        return Verdict(
            passed, failed, skipped, f"{len(missing)} collected test(s) have no outcome: {', '.join(missing[:5])}"
        )
    not_run = sorted(f"{c}.{f}" if c else f for c, f in expected - {key_of(t, runner) for t in tests})
    if not_run:
        return Verdict(
            passed, failed, skipped, f"test(s) defined in the test file were not run: {', '.join(not_run[:5])}"
        )
    return verdict
