"""The sandbox create-script runs generated code in: limits, the environment, the user's files, the runners, the
verdict. The attacks on it are in test_sandbox_attacks.py."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from code_generation import SandboxError, SandboxLimits, run_tests, sandbox_environment
from code_generation import folders as folders_module
from code_generation.runners import trim_failures
from code_generation.verdict import defined_tests, judge

SECRETS = {
    "OPENAI_API_KEY": "sk-test-not-real",
    "AWS_SECRET_ACCESS_KEY": "aws-not-real",
    "AWS_REGION": "eu-north-1",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/adc.json",
    "MY_TOKEN": "tok-not-real",
    "github_token": "lower-case-not-real",
    "DATABASE_URL": "postgres://me:hunter2@db/prod",
}
PLAIN = {"MY_PLAIN_SETTING": "visible", "LANG": "C.UTF-8"}


def write(folder: Path, module: str, tests: str, name: str = "mod") -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(module, encoding="utf-8")
    (folder / f"test_{name}.py").write_text(tests, encoding="utf-8")
    return folder / f"{name}.py", folder / f"test_{name}.py"


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def test_the_environment_is_an_allow_list():
    env = sandbox_environment({**SECRETS, **PLAIN, "GH_PAT": "ghp-x", "SENTRY_DSN": "https://k@s/1", "PRIVATE": "p"})
    assert set(env) == {"PATH", "HOME", "TMPDIR", "LANG", "USER", "LOGNAME", "PYTHONDONTWRITEBYTECODE",
                        "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}  # fmt: skip
    assert env["LANG"] == "C.UTF-8" and env["HOME"] == env["TMPDIR"] == "/tmp"


def test_the_child_sees_none_of_the_parents_environment(tmp_path, monkeypatch):
    for name, value in {**SECRETS, **PLAIN, "GH_PAT": "ghp-not-real", "PRIVATE": "not-real"}.items():
        monkeypatch.setenv(name, value)
    names = sorted([*SECRETS, "MY_PLAIN_SETTING", "GH_PAT", "PRIVATE"])
    tests = (
        "import os\n\n"
        f"def test_nothing_of_the_parent():\n    assert [n for n in {names!r} if n in os.environ] == []\n\n"
        "def test_home_is_the_scratch_folder():\n"
        "    assert os.environ['HOME'] == '/tmp' and os.getcwd() == '/sandbox'\n"
        "    assert not os.path.exists(os.path.expanduser('~/.aws'))\n\n"
        "def test_no_value_leaks():\n"
        "    assert not any('not-real' in v or 'hunter2' in v for v in os.environ.values())\n"
    )
    run = run_tests(*write(tmp_path / "p", "", tests))
    assert run.ok, run.output
    assert run.passed == 3


def test_an_infinite_loop_times_out_with_a_clear_reason(tmp_path):
    started = time.monotonic()
    run = run_tests(*write(tmp_path, "while True:\n    pass\n", "import mod\n\ndef test_x():\n    assert True\n"),
                    SandboxLimits(timeout_s=2, cpu_s=60))  # fmt: skip
    assert run.reason == "timed out after 2 s" and not run.ok
    assert time.monotonic() - started < 15


def test_cpu_time_is_limited(tmp_path):
    run = run_tests(*write(tmp_path, "while True:\n    pass\n", "import mod\n\ndef test_x():\n    pass\n"),
                    SandboxLimits(timeout_s=60, cpu_s=1))  # fmt: skip
    assert run.reason == "CPU time limit of 1 s reached", run.output


def test_a_memory_hog_hits_the_memory_limit(tmp_path):
    module = "def grab():\n    return bytearray(4 * 1024 ** 3)\n"
    tests = "from mod import grab\n\ndef test_grab():\n    assert len(grab()) > 0\n"
    run = run_tests(*write(tmp_path, module, tests), SandboxLimits(memory_mb=256))
    assert run.reason == "memory limit of 256 MB reached" and run.failed == 1, run.output
    assert "MemoryError" in run.feedback()


def test_endless_output_hits_the_file_size_limit(tmp_path):
    tests = "def test_x():\n    while True:\n        print('x' * 10000)\n"
    run = run_tests(*write(tmp_path, "", tests), SandboxLimits(file_mb=1, timeout_s=30))
    assert run.reason == "file size limit of 1 MB reached (output included)", run.output[-500:]


def test_generated_code_cannot_touch_the_users_files_or_the_tests(tmp_path):
    folder = tmp_path / "user"
    vandal = (
        "import os, pathlib, shutil\n"
        "for path in pathlib.Path('.').rglob('*'):\n"
        "    if path.is_file() and path.name not in ('mod.py', 'test_mod.py'):\n"
        "        path.unlink()\n"
        "pathlib.Path('test_mod.py').write_text('def test_fake():\\n    pass\\n')\n"
        "pathlib.Path('../escaped.txt').write_text('out')\n"
    )
    module_file, test_file = write(folder, vandal, "import mod\n\ndef test_real():\n    assert False\n")
    (folder / "data").mkdir()
    (folder / "data" / "input.csv").write_text("a,b\n1,2\n")
    before = hashes(folder)
    run = run_tests(module_file, test_file)
    assert (run.passed, run.failed, run.ok) == (0, 1, False), run.output
    assert hashes(folder) == before and run.outside_changes == ()
    assert not (tmp_path / "escaped.txt").exists()


def test_processes_left_behind_are_killed(tmp_path):
    marker = f"{time.time_ns() % 10**9}.5"  # a sleep no one else runs: found on the host by its argv
    tests = (
        "import subprocess\n\n"
        "def test_spawn():\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "    assert False\n"
    )
    run = run_tests(*write(tmp_path, "", tests))
    assert run.failed == 1, run.output
    assert not sleeping(marker), "the sleep outlived its run"


def sleeping(marker: str) -> bool:
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == f"sleep\0{marker}\0".encode():
                return "zombie" not in (proc / "status").read_text().lower()
        except OSError:
            continue  # ended while we looked
    return False


def test_a_test_file_outside_the_folder_is_copied_in(tmp_path):
    module, _ = write(tmp_path / "src", "def one():\n    return 1\n", "")
    tests = tmp_path / "elsewhere" / "test_one.py"
    tests.parent.mkdir()
    tests.write_text("from mod import one\n\ndef test_one():\n    assert one() == 1\n")
    run = run_tests(module, tests)
    assert run.ok and run.passed == 1, run.output


def test_a_folder_too_large_to_copy_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(folders_module, "MAX_COPY_FILES", 3)
    module, tests = write(tmp_path, "", "def test_x():\n    pass\n")
    for n in range(5):
        (tmp_path / f"data_{n}.txt").write_text("x")
    with pytest.raises(SandboxError, match="in a folder of their own"):
        run_tests(module, tests)


def test_unittest_style_files_run_under_unittest(tmp_path):
    tests = (
        "import unittest\nfrom mod import half\n\n"
        "class HalfTest(unittest.TestCase):\n"
        "    def test_even(self):\n        self.assertEqual(half(4), 2)\n\n"
        "    def test_odd(self):\n        self.assertEqual(half(3), 1.5)\n\n"
        "    def test_zero(self):\n        self.assertEqual(half(0), 0)\n"
    )
    run = run_tests(*write(tmp_path, "def half(n):\n    return n // 2\n", tests))
    assert (run.runner, run.passed, run.failed, run.ok) == ("unittest", 2, 1, False), run.output
    feedback = run.feedback()
    assert feedback.startswith("===\nFAIL: test_odd") and "AssertionError: 1 != 1.5" in feedback


RECORDS = [
    {"event": "collected", "tests": ["t.py::test_a", "t.py::test_b[1]", "t.py::test_b[2]"]},
    {"event": "outcome", "test": "t.py::test_a", "outcome": "passed"},
    {"event": "outcome", "test": "t.py::test_b[1]", "outcome": "failed"},
    {"event": "outcome", "test": "t.py::test_b[2]", "outcome": "passed"},
    {"event": "done", "exit": 1},
]
DEFINED = {(None, "test_a"), (None, "test_b")}


def test_a_complete_record_gives_the_counts():
    verdict = judge(RECORDS, DEFINED, "pytest")
    assert (verdict.passed, verdict.failed, verdict.problem) == (2, 1, None)


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        (RECORDS[:-1], "stopped before it finished"),  # an early exit
        ([RECORDS[0], *RECORDS[2:]], "1 collected test(s) have no outcome: t.py::test_a"),
        ([*RECORDS[:-1], {"event": "outcome", "test": "t.py::test_c", "outcome": "passed"}, RECORDS[-1]],
         "unexpected outcome"),  # a test that was not collected
        ([*RECORDS[:2], *RECORDS[1:]], "unexpected outcome"),  # two outcomes for one test
        ([RECORDS[0], {"event": "outcome", "test": "t.py::test_a", "outcome": "ok"}], "unexpected outcome"),
        (RECORDS[1:], "before it collected"),
        ([*RECORDS, RECORDS[0]], "before it collected"),
        (None, "malformed"),
    ],
)  # fmt: skip
def test_an_incomplete_or_inconsistent_record_is_a_problem(records, problem):
    assert problem in judge(records, DEFINED, "pytest").problem


def test_every_test_the_file_defines_must_have_been_collected():
    assert "were not run: test_c" in judge(RECORDS, {*DEFINED, (None, "test_c")}, "pytest").problem


def test_the_tests_a_file_defines_are_read_from_its_syntax_tree():
    source = (
        "import unittest\n\ndef test_a():\n    pass\n\nasync def test_b():\n    pass\n\ndef helper():\n    pass\n\n"
        "class TestX:\n    def test_c(self):\n        pass\n    def other(self):\n        pass\n\n"
        "class TestInit:\n    def __init__(self):\n        pass\n    def test_d(self):\n        pass\n\n"
        "class Case(unittest.TestCase):\n    def test_e(self):\n        pass\n"
    )
    assert defined_tests(source, "pytest") == {
        (None, "test_a"),
        (None, "test_b"),
        ("TestX", "test_c"),
        ("Case", "test_e"),
    }
    assert defined_tests(source, "unittest") == {("Case", "test_e")}
    assert defined_tests("def test_(:\n", "pytest") == set()


def test_failure_output_is_trimmed_to_what_matters():
    noise = "collected 100 items\n" + "." * 400 + "\n"
    failure = (
        "======== FAILURES ========\n____ test_a ____\n"
        "/usr/lib/python3.11/importlib/__init__.py:126: in import_module\n    return _bootstrap._gcd_import()\n"
        "<frozen importlib._bootstrap>:1204: in _gcd_import\n    ???\n"
        "test_a.py:3: in test_a\n    assert f(2) == 5\nE   assert 4 == 5\n"
    )
    output = noise + failure + "x" * 5000 + "\nFAILED test_a.py::test_a - assert 4 == 5\n1 failed in 0.12s\n"
    trimmed = trim_failures(output, "pytest", max_chars=600)
    assert len(trimmed) <= 650 and "collected 100 items" not in trimmed
    assert trimmed.startswith("=== FAILURES ===\n___ test_a ___\ntest_a.py:3: in test_a")  # no importlib frame
    assert "E   assert 4 == 5" in trimmed and trimmed.endswith("FAILED test_a.py::test_a - assert 4 == 5\n1 failed")
    assert "characters cut" in trimmed


# --- the two halves: values on the wire, and the stand-in module -------------------------------------------


def test_plain_values_cross_the_wire_as_themselves():
    import collections
    import datetime
    import decimal
    import fractions

    from code_generation.harness.wire import Codec

    def refuse(value):
        raise AssertionError(f"{value!r} should have been plain")

    codec = Codec(refuse, refuse)
    point = collections.namedtuple("Point", "x y")(1, 2)
    values = [None, True, 3, -(10**40), 2.5, float("inf"), "é", b"\x00\xff", 1 + 2j, [1, [2]], (1, (2,)),
              {1, 2}, frozenset({3}), {(1, 2): {"a": [None]}}, point, decimal.Decimal("1.10"),
              fractions.Fraction(1, 3), datetime.datetime(2026, 1, 2, 3, 4, 5), datetime.timedelta(days=1, seconds=2),
              Path("/tmp/x")]  # fmt: skip
    for value in values:
        back = codec.decode(json.loads(json.dumps(codec.encode(value))))
        assert back == value and type(back).__name__ == type(value).__name__, value
    assert codec.decode(codec.encode(point)).y == 2
    assert type(codec.decode(codec.encode(collections.Counter("aab")))) is dict  # a subclass travels as its base


def test_malformed_or_too_deep_values_are_refused():
    from code_generation.harness.wire import Codec, WireError

    codec = Codec(lambda v: {"t": "ref", "id": 1}, lambda tag: pytest.fail("nothing resolves here"))
    deep: list = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(WireError, match="nested deeper"):
        codec.encode(deep)
    for bad in ([1, 2], {"t": "nope"}, {"t": "set", "v": [{"t": "list", "v": []}]}, {"t": "int", "v": "xyz"}):
        with pytest.raises(WireError):
            codec.decode(bad)


STAND_IN_MODULE = """
import enum
from dataclasses import dataclass


class InvalidInput(ValueError):
    pass


class Color(enum.Enum):
    RED = 1


@dataclass
class Point:
    x: int
    y: int

    def moved(self, dx):
        return Point(self.x + dx, self.y)


def check(n):
    if n < 0:
        raise InvalidInput(f"negative: {n}")
    print("checked", n)
    return n


def squares(n):
    yield from (i * i for i in range(n))


def apply(function, value):
    return function(value)


def first_line(path):
    with open(path) as lines:
        return lines.readline().strip()
"""

STAND_IN_TESTS = """
import pytest

import mod
from mod import *


def test_exceptions_keep_their_class_and_message():
    with pytest.raises(mod.InvalidInput, match="negative: -1"):
        check(-1)
    with pytest.raises(ValueError):
        check(-2)


def test_output_reaches_capsys(capsys):
    assert check(3) == 3
    assert capsys.readouterr().out == "checked 3\\n"


def test_objects_stay_on_the_module_side():
    assert Point(1, 2).moved(1) == Point(2, 2) and Point(1, 2).x == 1
    assert isinstance(Point(0, 0), Point) and mod.Color(1) is Color.RED
    assert list(squares(4)) == [0, 1, 4, 9] and 9 in squares(4)


def test_callbacks_and_files_in_tmp(tmp_path):
    assert apply(lambda v: v * 2, 21) == 42
    (tmp_path / "a.txt").write_text("first\\nsecond\\n")
    assert first_line(tmp_path / "a.txt") == "first"
"""


def test_the_stand_in_module_behaves_like_the_module(tmp_path):
    run = run_tests(*write(tmp_path, STAND_IN_MODULE, STAND_IN_TESTS))
    assert (run.passed, run.failed, run.ok) == (4, 0, True), run.output


def test_a_failure_in_the_module_shows_its_own_traceback(tmp_path):
    module = "def helper(n):\n    return 1 / n\n\n\ndef f(n):\n    return helper(n)\n"
    run = run_tests(*write(tmp_path, module, "from mod import f\n\n\ndef test_f():\n    assert f(0) == 1\n"))
    feedback = run.feedback()
    assert run.failed == 1 and "E   ZeroDivisionError: division by zero" in feedback, feedback
    assert 'File "mod.py", line 6, in f' in feedback and 'File "mod.py", line 2, in helper' in feedback
    assert "create_script_harness" not in feedback and "/sandbox" not in feedback


@pytest.mark.parametrize("name", ["json", "statistics", "pytest", "my-module"])
def test_a_module_named_like_one_of_python_or_the_runner_is_refused(tmp_path, name):
    with pytest.raises(SandboxError, match="OUTPUT_FILE's"):
        run_tests(*write(tmp_path, "", "def test_x():\n    pass\n", name=name))


def test_files_of_credentials_are_not_copied_into_the_sandbox(tmp_path):
    module = "import os\n\n\ndef files():\n    return sorted(os.listdir('.'))\n"
    tests = (
        "import os\n\nfrom mod import files\n\n\ndef test_nothing_secret():\n"
        "    assert files() == ['data.csv', 'mod.py']\n"
        "    assert sorted(os.listdir('.')) == ['data.csv', 'test_mod.py']\n"
    )
    module_file, test_file = write(tmp_path, module, tests)
    for name in (".env", "prod.env", "server.pem", "id_ed25519", ".netrc", "gcp-credentials.json"):
        (tmp_path / name).write_text("secret")
    (tmp_path / "data.csv").write_text("a,b\n")
    run = run_tests(module_file, test_file)
    assert run.ok, run.output


def test_the_users_folder_is_repaired_after_a_run(tmp_path):
    from code_generation.folders import FolderWatch

    module, test_file = write(tmp_path, "x = 1\n", "def test_x():\n    pass\n")
    (tmp_path / "notes.txt").write_text("mine")
    watch = FolderWatch.take(tmp_path, test_file)
    test_file.write_text("def test_x():\n    assert True  # changed\n")
    (tmp_path / "conftest.py").write_text("# planted")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "notes.txt").write_text("theirs")
    (tmp_path / ".notes.txt.swp").write_text("an editor's")
    assert watch.repair() == (
        "new file conftest.py (removed)",
        "new folder pkg (removed)",
        "changed notes.txt",
        "changed test_mod.py (restored)",
    )
    assert test_file.read_text() == "def test_x():\n    pass\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.txt.swp", "mod.py", "notes.txt", "test_mod.py"]
