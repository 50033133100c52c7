"""End to end against the real llama.cpp OpenAI-compatible server (``python -m llama_cpp.server``)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from my_llm.cli import main as my_llm

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_the_memory_example_runs_through_the_openai_client(llama_server, settings, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "memory_workflow.py")],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "## Answer:" in done.stdout and "Summary" in done.stdout
    lines = (settings.message_history / "debugger" / "messages.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["role"] for r in records] == ["human", "ai", "human", "ai", "summary", "human", "ai"]
    for record in (r for r in records if r["role"] in ("ai", "summary")):
        # usage came from the server's own token counts, through langchain_openai
        assert record["usage"]["input_tokens"] > 0 and record["usage"]["output_tokens"] > 0
        assert record["model"]  # the server reports the model it served
    assert records[-1]["metadata"]["task"] == "question_memory" and records[-1]["metadata"]["sources"]


def test_my_llm_ask_and_summarise_use_the_server(llama_server, settings, monkeypatch):
    from my_llm import PubSubChatMessageHistory

    monkeypatch.setenv("OPENAI_BASE_URL", llama_server)
    history = PubSubChatMessageHistory("cli-memory", settings=settings)
    history.add_user_message("My cat is called Miso.")
    history.add_ai_message("Miso is a lovely name for a cat.")
    runner = CliRunner()
    indexed = runner.invoke(my_llm, ["index", "cli-memory"])
    assert indexed.exit_code == 0 and "Embedded 2 new message(s)" in indexed.output
    asked = runner.invoke(my_llm, ["ask", "cli-memory", "What is my cat called?", "-k", "2"])
    assert asked.exit_code == 0, asked.output
    assert "== Messages used:" in asked.output and "Miso" in asked.output.split("== Messages used:")[1]
    summarised = runner.invoke(my_llm, ["summarise", "cli-memory", "-n", "2"])
    assert summarised.exit_code == 0 and summarised.output.strip()
    assert history.records()[-1].role == "summary"
