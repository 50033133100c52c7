"""The sandbox create-script runs generated code in: limits, credentials, the user's files, the runners."""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import pytest

from code_generation import SandboxError, SandboxLimits, run_tests, scrub_environment
from code_generation import sandbox as sandbox_module
from code_generation.runners import pytest_counts, trim_failures, unittest_counts

SECRETS = {
    "OPENAI_API_KEY": "sk-test-not-real",
    "AWS_SECRET_ACCESS_KEY": "aws-not-real",
    "AWS_REGION": "eu-north-1",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/adc.json",
    "MY_TOKEN": "tok-not-real",
    "github_token": "lower-case-not-real",
    "DATABASE_URL": "postgres://me:hunter2@db/prod",
}
PLAIN = {"MY_PLAIN_SETTING": "visible", "PATH": os.environ.get("PATH", "")}


def write(folder: Path, module: str, tests: str, name: str = "mod") -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(module, encoding="utf-8")
    (folder / f"test_{name}.py").write_text(tests, encoding="utf-8")
    return folder / f"{name}.py", folder / f"test_{name}.py"


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def test_scrubbing_removes_every_credential_and_keeps_the_rest():
    assert scrub_environment({**SECRETS, **PLAIN}) == PLAIN


def test_the_child_cannot_see_credentials_set_in_the_parent(tmp_path, monkeypatch):
    for name, value in {**SECRETS, **PLAIN}.items():
        monkeypatch.setenv(name, value)
    names = sorted(SECRETS)
    tests = (
        "import os\n\n"
        f"def test_no_credentials():\n    assert [n for n in {names!r} if n in os.environ] == []\n\n"
        "def test_plain_settings_are_kept():\n    assert os.environ['MY_PLAIN_SETTING'] == 'visible'\n\n"
        "def test_home_is_inside_the_sandbox():\n    assert not os.path.exists(os.path.expanduser('~/.aws'))\n"
        "    assert os.getcwd() != os.environ['HOME'] and os.environ['HOME'].endswith('home')\n\n"
        "def test_no_value_leaks():\n"
        "    assert not any('not-real' in v or 'hunter2' in v for v in os.environ.values())\n"
    )
    run = run_tests(*write(tmp_path / "p", "", tests))
    assert run.ok, run.output
    assert run.passed == 4


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
    assert run.reason == "the code under test modified the test file" and not run.ok
    assert hashes(folder) == before
    assert not (tmp_path / "escaped.txt").exists()


def test_processes_left_behind_are_killed(tmp_path):
    tests = (
        "import subprocess\n\n"
        "def test_spawn():\n"
        "    child = subprocess.Popen(['sleep', '300'])\n"
        "    print('PID', child.pid)\n"
        "    assert False\n"
    )
    run = run_tests(*write(tmp_path, "", tests))
    pid = int(re.search(r"PID (\d+)", run.output).group(1))
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower():
        assert time.monotonic() < deadline, f"sleep {pid} still runs"
        time.sleep(0.1)


def test_a_test_file_outside_the_folder_is_copied_in(tmp_path):
    module, _ = write(tmp_path / "src", "def one():\n    return 1\n", "")
    tests = tmp_path / "elsewhere" / "test_one.py"
    tests.parent.mkdir()
    tests.write_text("from mod import one\n\ndef test_one():\n    assert one() == 1\n")
    run = run_tests(module, tests)
    assert run.ok and run.passed == 1, run.output


def test_a_folder_too_large_to_copy_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox_module, "MAX_COPY_FILES", 3)
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


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1 failed, 2 passed in 0.03s", (2, 1)),
        ("===== 3 passed, 1 warning in 0.10s =====", (3, 0)),
        ("1 error in 0.12s", (0, 1)),
        ("2 passed, 1 skipped, 1 xfailed, 1 error in 1.00s", (2, 1)),
        ("no tests ran in 0.01s", (0, 0)),
    ],
)
def test_pytest_summaries_are_counted(line, expected):
    assert pytest_counts(f"..F\nsome output in between\n{line}\n") == expected


def test_unittest_summaries_are_counted():
    assert unittest_counts("...\nRan 5 tests in 0.001s\n\nFAILED (failures=1, errors=1, skipped=1)\n") == (2, 2)
    assert unittest_counts("Ran 3 tests in 0.001s\n\nOK\n") == (3, 0)


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
