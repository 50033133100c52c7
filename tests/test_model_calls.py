"""Model calls: a dead server is one clear line and a non-zero exit with the human turn kept; a reloaded
tool-calling conversation is a request a real OpenAI-compatible server accepts; the local model's settings hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import ValidationError

from my_llm import ChatHistory, ModelCallError, PubSubChatMessageHistory, get_chat_model, request_llm
from my_llm.cli import main as my_llm
from my_llm.testing import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dead_server(monkeypatch) -> str:
    """An OpenAI-compatible base URL where nothing listens."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("MY_LLM_MODEL", "openai:local")
    return url


def test_request_llm_to_a_dead_server_raises_our_error_and_keeps_the_human_turn(dead_server, settings):
    history = ChatHistory("dead", settings=settings)
    with pytest.raises(ModelCallError, match="could not reach the model server") as raised:
        request_llm("Is anyone there?", get_chat_model(settings=settings), history)
    assert "OPENAI_BASE_URL" in str(raised.value)
    (record,) = history.records()
    assert record.role == "human" and record.content == "Is anyone there?"
    assert record.metadata["error"]["type"] == "ModelCallError"
    assert [m.content for m in history.messages] == ["Is anyone there?"]


def test_summarise_with_a_dead_server_prints_one_line_and_exits_non_zero(dead_server, settings):
    history = PubSubChatMessageHistory("dead-cli", settings=settings)
    history.add_user_message("hello")
    history.add_ai_message("hi")
    result = CliRunner().invoke(my_llm, ["summarise", "dead-cli"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: The chat model") and "Traceback" not in result.output
    assert [r.role for r in history.records()] == ["human", "ai"]  # nothing written, nothing lost


@pytest.mark.slow
def test_my_llm_ask_with_a_dead_server_keeps_the_question_on_disk(dead_server, settings):
    history = PubSubChatMessageHistory("dead-ask", settings=settings)
    history.add_user_message("My cat is called Miso.")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "my-llm"), "ask", "dead-ask", "What is my cat called?"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "could not reach the model server" in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.startswith("Error:")]) == 1
    asked = history.records()[-1]
    assert asked.content == "What is my cat called?" and asked.metadata["error"]["type"] == "ModelCallError"


@pytest.mark.slow
def test_a_reloaded_tool_calling_conversation_is_accepted_by_a_real_server(llama_server, settings, monkeypatch):
    from langchain_openai import ChatOpenAI

    call = {"name": "add", "args": {"a": 2, "b": 3}, "id": "call_add_1", "type": "tool_call"}
    writer = ChatHistory("tools-live", session_id="s1", settings=settings)
    writer.add_messages(
        [
            HumanMessage("What is 2 + 3? Use the add tool."),
            # Non-empty text: langchain_openai sends an empty one as null, which llama.cpp's server refuses.
            AIMessage("I will add them.", tool_calls=[call]),
            ToolMessage("5", tool_call_id="call_add_1", name="add"),
        ]
    )
    reloaded = ChatHistory("tools-live", session_id="s1", settings=settings).messages
    assert reloaded[1].tool_calls[0]["id"] == "call_add_1" and reloaded[2].tool_call_id == "call_add_1"
    chat = ChatOpenAI(base_url=llama_server, api_key="sk-local", model="local", max_tokens=32, max_retries=0)
    reply = chat.invoke([*reloaded, HumanMessage("So what is the answer?")])
    assert isinstance(reply, AIMessage) and reply.response_metadata.get("finish_reason") in ("stop", "length")


@pytest.mark.slow
def test_the_local_model_honours_stop_given_at_construction():
    from my_llm.models import LOCAL_CHAT_MODEL_NAME, local_gguf_path
    from my_llm.models.llama_cpp import LlamaCppChatModel

    chat = LlamaCppChatModel(model_path=str(local_gguf_path()), model_name=LOCAL_CHAT_MODEL_NAME, stop=["\n", "."])
    reply = chat.invoke("List three colours, one per line, each ending with a full stop.")
    assert "\n" not in reply.content and "." not in reply.content
    streamed = "".join(str(chunk.content) for chunk in chat.stream("Count from one to five, one per line."))
    assert "\n" not in streamed


def test_the_local_model_refuses_unknown_settings_and_arguments():
    from my_llm.models.llama_cpp import LlamaCppChatModel

    with pytest.raises(ValidationError, match="max_token"):
        LlamaCppChatModel(model_path="/nowhere.gguf", max_token=10)
    chat = LlamaCppChatModel(model_path="/nowhere.gguf")
    with pytest.raises(TypeError, match="top_kk"):
        chat.invoke("hi", top_kk=3)


def test_the_read_repo_shell_survives_a_model_error_and_goes_on():
    from qna.shell import PROMPT, run_shell

    inputs = iter(["first", "second", ":quit"])
    written = []

    def answer(question):
        if question == "first":
            raise ModelCallError("The chat model 'local' failed: could not reach the model server.")
        return f"answer to {question}"

    assert run_shell(answer, read=lambda _: next(inputs), write=written.append) == 1
    assert written == [
        PROMPT,
        "\nError: The chat model 'local' failed: could not reach the model server.",
        "answer to second",
    ]
