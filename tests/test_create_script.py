"""create-script: code extraction, the test-driven loop with scripted fake chat models, and one run end to end
against the real llama.cpp OpenAI-compatible server."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage

from code_generation import extract_code, isolation, names_needed_from
from code_generation.create_script import main as create_script
from my_llm import PubSubChatMessageHistory
from my_llm.models import cost_usd

ROOT = Path(__file__).resolve().parent.parent
TOKEN_KEYS = ("input_tokens", "output_tokens")
TASK = "Create a function add(a, b) that returns the sum of two numbers"
TESTS = """from adder import add


def test_small():
    assert add(1, 2) == 3


def test_zero():
    assert add(0, 0) == 0


def test_negative():
    assert add(-1, -1) == -2
"""
WRONG = "Here you go:\n```python\ndef add(a, b):\n    return a - b\n```\nRun it with `python adder.py`."  # 1 of 3
HALF_RIGHT = "```py\ndef add(a, b):\n    return abs(a) + abs(b)\n```"  # 2 of 3
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
TEST_FILE_REPLY = "```python\nfrom adder import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n```"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(tmp_path) -> Path:
    """A user's folder: the test file and a file of theirs that create-script must leave alone."""
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "test_adder.py").write_text(TESTS, encoding="utf-8")
    (folder / "notes.txt").write_text("mine\n", encoding="utf-8")
    return folder


def run_cli(project: Path, chat, *extra: str):
    args = [TASK, str(project / "adder.py"), "--test_file", str(project / "test_adder.py"), *extra]
    return CliRunner().invoke(create_script, args, obj={"chat": chat})


def logged(settings, namespace: str = "create_script") -> list:
    history = PubSubChatMessageHistory(namespace, settings=settings)
    try:
        return history.records()
    finally:
        history.close()


# --- extraction -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "```python\ndef f():\n    return 1\n```",
        "Sure!\n```Python3\ndef f():\n    return 1\n```\nThat's it.",
        "~~~ {.python}\ndef f():\n    return 1\n~~~",
        "```\ndef f():\n    return 1\n```",
        "def f():\n    return 1",
        "Here is the code:\n\ndef f():\n    return 1\n\nThis returns one.",
        "```python\ndef f():\n    return 1",  # cut off by the token limit
    ],
)
def test_code_is_extracted_from_every_reply_shape(reply):
    assert extract_code(reply, ("f",)) == "def f():\n    return 1\n"


def test_of_several_blocks_the_one_defining_what_the_tests_need_wins():
    reply = (
        "```bash\npip install nothing\n```\n"
        "```python\nprint(sum_primes(10))\n```\n"
        "```python\nimport math\n\ndef sum_primes(n):\n    return 17\n```\n"
        "```text\n17\n```"
    )
    assert extract_code(reply, ("sum_primes",)) == "import math\n\ndef sum_primes(n):\n    return 17\n"


def test_blocks_defining_the_missing_names_are_joined_in_order():
    reply = "```python\ndef helper():\n    return 2\n```\nand\n```python\ndef main_one():\n    return helper()\n```"
    assert extract_code(reply, ("main_one", "helper")) == (
        "def helper():\n    return 2\n\ndef main_one():\n    return helper()\n"
    )


@pytest.mark.parametrize("reply", ["I cannot help with that.", "```bash\nls\n```", ""])
def test_a_reply_without_python_gives_no_code(reply):
    assert extract_code(reply) == ""


def test_names_the_tests_need_come_from_imports_and_attributes():
    source = "import prime_sum as ps\nfrom prime_sum import sum_primes, LIMIT\n\ndef test():\n    ps.helper()\n"
    assert set(names_needed_from(source, "prime_sum")) == {"sum_primes", "LIMIT", "helper"}


# --- the loop with scripted fake models ---------------------------------------------------------------------


def test_a_failure_is_fed_back_and_the_second_attempt_passes(project, settings):
    test_hash = sha256(project / "test_adder.py")
    result = run_cli(project, FakeListChatModel(responses=[WRONG, RIGHT]))
    assert result.exit_code == 0, result.output
    assert "Attempt 1: 1 passed, 2 failed -> generation_1.txt" in result.output
    assert "Attempt 2: 3 passed, 0 failed -> generation_2.txt" in result.output
    assert result.output.count("Tokens Used:") == 3  # two requests and the total
    assert "Successful Requests: 2" in result.output
    assert "Total Cost (USD): unknown" in result.output  # a fake model has no price: unknown, never $0
    assert (project / "adder.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert "a - b" in (project / "generation_1.txt").read_text()
    assert "a + b" in (project / "generation_2.txt").read_text()
    assert sha256(project / "test_adder.py") == test_hash
    assert (project / "notes.txt").read_text() == "mine\n"
    records = logged(settings)
    assert [r.role for r in records] == ["system", "human", "ai", "human", "ai"]
    assert {r.source for r in records} == {"create_script"}
    feedback = records[3].content
    assert "assert add(1, 2) == 3" in feedback and "The tests are correct, don't try and change them." in feedback
    assert "adder.py" in feedback and "/tmp/" not in feedback  # the sandbox path is cleaned out
    for record in (r for r in records if r.role == "ai"):
        assert record.usage["input_tokens"] > 0 and record.usage["output_tokens"] > 0
        assert record.usage["cost_usd"] is None
    assert [r.metadata["attempt"] for r in records] == [1, 1, 1, 2, 2]


def test_when_retries_run_out_the_attempt_passing_most_tests_is_kept(project, settings):
    chat = FakeListChatModel(responses=[HALF_RIGHT, WRONG, "Sorry, I cannot write that."])
    result = run_cli(project, chat, "--max-retries", "2")
    assert result.exit_code == 1, result.output
    assert "Attempt 3: 0 passed, 0 failed; the reply held no Python code" in result.output
    assert "Attempt 2: 1 passed, 2 failed" in result.output
    assert "holds attempt 1 (2 passed, 1 failed)" in result.output
    assert "abs(a) + abs(b)" in (project / "adder.py").read_text()
    assert sorted(p.name for p in project.glob("generation_*.txt")) == [f"generation_{n}.txt" for n in (1, 2, 3)]
    assert (project / "generation_3.txt").read_text() == "Sorry, I cannot write that."
    assert [r.role for r in logged(settings)] == ["system", "human", "ai", "human", "ai", "human", "ai"]


def test_max_retries_zero_is_a_single_shot(project, settings):
    result = run_cli(project, FakeListChatModel(responses=[WRONG, RIGHT]), "--max-retries", "0")
    assert result.exit_code == 1 and "after 1 attempt(s)" in result.output
    assert not (project / "generation_2.txt").exists()


def test_without_a_test_file_one_is_written_shown_and_the_command_stops(project, settings):
    (project / "test_adder.py").unlink()
    result = run_cli(project, FakeListChatModel(responses=[TEST_FILE_REPLY, RIGHT]), "--namespace", "tdd")
    assert result.exit_code == 0, result.output
    written = (project / "test_adder.py").read_text()
    assert written == "from adder import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n"
    assert written in result.output and "Inspect the tests" in result.output
    assert not (project / "adder.py").exists()
    assert [r.role for r in logged(settings, "tdd")] == ["system", "human", "ai"]


def test_a_known_model_price_gives_the_cost_per_request_and_in_total(project):
    def reply(text: str) -> AIMessage:
        usage = {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}
        return AIMessage(text, usage_metadata=usage, response_metadata={"model_name": "gpt-4o-mini"})

    chat = GenericFakeChatModel(messages=iter([reply(WRONG), reply(RIGHT)]))
    result = run_cli(project, chat)
    assert result.exit_code == 0, result.output
    # gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens
    assert result.output.count("Total Cost (USD): $0.000450") == 2
    assert "Tokens Used: 3000\n\tPrompt Tokens: 2000\n\tCompletion Tokens: 1000\nSuccessful Requests: 2\n" in (
        result.output
    )
    assert "Total Cost (USD): $0.000900" in result.output


def test_code_that_empties_every_file_it_sees_changes_only_its_own_copy(project):
    vandal = (
        "```python\nimport pathlib\n\nfor path in pathlib.Path('.').iterdir():\n"
        "    if path.is_file() and path.name != 'adder.py':\n        path.write_text('')\n\n"
        "def add(a, b):\n    return a + b\n```"
    )
    before = {p.name: sha256(p) for p in project.iterdir()}
    result = run_cli(project, FakeListChatModel(responses=[vandal]), "--max-retries", "0")
    assert result.exit_code == 0, result.output  # right code, and the tests ran where it cannot reach them
    assert "Attempt 1: 3 passed, 0 failed -> generation_1.txt" in result.output
    assert {p.name: sha256(p) for p in project.iterdir() if p.name in before} == before


def test_without_bubblewrap_generated_code_is_not_run(project, monkeypatch):
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)
    result = run_cli(project, FakeListChatModel(responses=[RIGHT]))
    assert result.exit_code == 3, result.output
    assert "bwrap is not installed" in result.output and "apt-get install bubblewrap" in result.output
    assert "--unsafe-no-sandbox" in result.output
    assert not (project / "generation_1.txt").exists() and not (project / "adder.py").exists()


def test_unsafe_no_sandbox_runs_without_bubblewrap_and_still_repairs_the_users_folder(project, monkeypatch):
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)
    tests = project / "test_adder.py"
    vandal = (
        f"```python\nopen({str(tests)!r}, 'w').write('def test_fake():\\n    pass\\n')\n"
        f"open({str(project / 'conftest.py')!r}, 'w').write('# planted')\n\n"
        "def add(a, b):\n    return a + b\n```"
    )
    before = sha256(tests)
    result = run_cli(project, FakeListChatModel(responses=[vandal]), "--max-retries", "0", "--unsafe-no-sandbox")
    assert result.exit_code == 1, result.output
    assert "without isolation" in result.output
    assert (
        "Attempt 1: 3 passed, 0 failed; the code under test changed files outside its sandbox: "
        "new file conftest.py (removed); changed test_adder.py (restored)"
    ) in result.output
    assert sha256(tests) == before and not (project / "conftest.py").exists()


class _EditsTheTests(BaseCallbackHandler):
    def __init__(self, path: Path) -> None:
        self.path = path

    def on_llm_end(self, response, **kwargs) -> None:
        with open(self.path, "a", encoding="utf-8") as tests:
            tests.write("\n# edited while the loop ran\n")


def test_a_test_file_changed_during_an_attempt_stops_the_loop(project):
    chat = FakeListChatModel(responses=[RIGHT], callbacks=[_EditsTheTests(project / "test_adder.py")])
    result = run_cli(project, chat)
    assert result.exit_code == 3, result.output
    assert "changed while create-script ran" in result.output
    assert not (project / "adder.py").exists()


def test_the_script_runs_as_a_file_and_explains_itself():
    done = subprocess.run(
        [sys.executable, str(ROOT / "code_generation" / "create_script.py"), "--help"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for words in ("--test_file", "--max-retries", "generation_N.txt", "sandbox", "Exit status"):
        assert words in done.stdout


# --- end to end against the real llama.cpp server -----------------------------------------------------------


@pytest.mark.slow
def test_end_to_end_against_the_llama_cpp_server(llama_server, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server)
    folder = tmp_path / "prime"
    folder.mkdir()
    test_file = folder / "test_prime_sum.py"
    test_file.write_text((ROOT / "examples" / "prime_sum" / "test_prime_sum.py").read_text(), encoding="utf-8")
    test_hash = sha256(test_file)
    prompt = "Create a function that returns the sum of all prime numbers below a given number n"
    done = subprocess.run(
        [sys.executable, str(ROOT / "code_generation" / "create_script.py"), prompt, str(folder / "prime_sum.py"),
         "--test_file", str(test_file), "--max-retries", "1", "--max-tokens", "160", "--timeout", "20"],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    attempts = [line for line in done.stdout.splitlines() if line.startswith("Attempt ")]
    assert 1 <= len(attempts) <= 2 and (done.returncode == 0 or len(attempts) == 2), done.stdout
    assert all((folder / f"generation_{n}.txt").exists() for n in range(1, len(attempts) + 1))
    assert done.stdout.count("Tokens Used:") == len(attempts) + 1
    costs = re.findall(r"Total Cost \(USD\): (\S+)", done.stdout)
    assert sha256(test_file) == test_hash
    # the exit code agrees with the tests run by hand on what was kept
    kept = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=folder, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )  # fmt: skip
    assert (kept.returncode == 0) == (done.returncode == 0), kept.stdout[-2000:]
    lines = (settings.message_history / "create_script" / "messages.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["role"] for r in records][:3] == ["system", "human", "ai"]
    assert sum(r["role"] == "ai" for r in records) == len(attempts)
    replies = [r for r in records if r["role"] == "ai"]
    for record in replies:
        assert record["usage"]["input_tokens"] > 0 and 0 < record["usage"]["output_tokens"] <= 160  # --max-tokens
        assert record["model"] and record["source"] == "create_script"
        assert record["usage"]["cost_usd"] == cost_usd(record["model"], *[record["usage"][k] for k in TOKEN_KEYS])
    # what was printed is what was logged: per request, then the total ("unknown" for a model with no price)
    printed = [f"${r['usage']['cost_usd']:.6f}" if r["usage"]["cost_usd"] is not None else "unknown" for r in replies]
    assert costs[:-1] == printed
    known = [r["usage"]["cost_usd"] for r in replies]
    assert costs[-1] == ("unknown" if None in known else f"${sum(known):.6f}")
