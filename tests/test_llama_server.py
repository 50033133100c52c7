"""End to end against the real llama.cpp OpenAI-compatible server (``python -m llama_cpp.server``)."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from my_llm.cli import main as my_llm
from my_llm.models import local_gguf_path

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """The bundled SmolLM2 GGUF served by llama.cpp on a free port; yields the OpenAI base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(local_gguf_path()),
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "llama.cpp server did not answer in 120 s"
                time.sleep(0.5)
        yield base_url
    finally:
        server.terminate()
        server.wait(30)


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
