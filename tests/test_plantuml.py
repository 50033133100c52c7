"""PlantUML diagrams: the local render (the real jar on the machine's Java, under bubblewrap), the source taken
out of replies, the retry loop with scripted fake chat models, and one loop against the real llama.cpp server."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage

from code_generation import (
    CodeGenerationError,
    DiagramOptions,
    DiagramSyntaxError,
    PlantUMLUnavailableError,
    RenderLimitError,
    RenderOptions,
    extract_diagram,
    generate_diagram,
    limit_reply_tokens,
    render_svg,
)
from my_llm import PubSubChatMessageHistory, get_chat_model
from my_llm.testing import free_port

GOOD = "@startuml\nAlice -> Bob: hello\nBob --> Alice: hi\n@enduml\n"
BROKEN = "@startuml\nAlice -> Bob: hello\nfoo bar {{\n@enduml\n"
# Doubles a string 22 times (8 M characters) and draws it: PlantUML works on it for minutes.
RUNAWAY = (
    '@startuml\n!$s = "ab"\n!$i = 0\n!while $i < 22\n!$s = $s + $s\n!$i = $i + 1\n!endwhile\nA -> B : $s\n@enduml\n'
)


@pytest.fixture
def history(settings):
    history = PubSubChatMessageHistory("diagrams", source="diagram", settings=settings)
    yield history
    history.close()


class PromptRecorder(BaseCallbackHandler):
    """Keeps the text of every prompt a chat model was sent."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_chat_model_start(self, serialized, messages, **kwargs) -> None:
        self.prompts.append("\n".join(str(m.content) for m in messages[0]))


# --- the render ----------------------------------------------------------------------------------------------


def test_a_valid_diagram_renders_to_svg(plantuml):
    svg = render_svg(GOOD)
    assert "<svg" in svg and ">Alice<" in svg and ">hello<" in svg


@pytest.mark.parametrize(
    "source",
    [
        '@startuml\nclass Order {\n  +total(): float\n}\nclass Line\nOrder "1" *-- "many" Line\n@enduml',
        "@startuml\nstart\n:pay;\nif (paid?) then (yes)\n:ship;\nelse (no)\n:cancel;\nendif\nstop\n@enduml",
        "@startuml\nactor Customer\nCustomer --> (Place order)\n@enduml",
        "@startuml\n[Web] --> [API]\n[API] --> [DB]\n@enduml",
    ],
    ids=["class", "activity", "use-case", "component"],
)
def test_every_kind_of_diagram_the_benchmark_asks_for_renders(plantuml, source):
    assert "<svg" in render_svg(source)  # class, use-case and component layouts need Graphviz in the sandbox


def test_a_syntax_error_names_the_line_and_its_text(plantuml):
    with pytest.raises(DiagramSyntaxError) as raised:
        render_svg("Here it is:\n" + BROKEN + "That's all.")  # text around the block is ignored
    error = raised.value
    assert (error.line, error.text, error.detail) == (3, "foo bar {{", "Syntax Error?")
    assert "line 3" in str(error) and error.feedback() == "Line 3: `foo bar {{` -> Syntax Error?"


def test_a_source_without_startuml_is_refused_before_java_starts():
    with pytest.raises(DiagramSyntaxError, match="@startuml"):
        render_svg("Alice -> Bob: hello")
    with pytest.raises(DiagramSyntaxError, match="@enduml"):
        render_svg("@startuml\nAlice -> Bob: hello")


def test_an_unknown_start_word_is_an_error_not_a_picture_of_one(plantuml):
    # PlantUML exits 0 and draws "No @startuml/@enduml found": seen from SmolLM2's "@startuil"
    with pytest.raises(DiagramSyntaxError, match="no diagram type") as raised:
        render_svg("@startuil\nclass A\n@enduil\n")
    assert raised.value.line == 1


def test_include_reads_no_file_of_the_host(plantuml, tmp_path):
    secret = tmp_path / "secret.puml"
    secret.write_text("Alice -> Bob: SECRET-4711\n", encoding="utf-8")
    source = f"@startuml\n!include {secret}\nAlice -> Bob: hi\n@enduml\n"
    # without the sandbox PlantUML does include it: what the sandbox is there to stop
    assert "SECRET-4711" in render_svg(source, RenderOptions(isolate=False))
    with pytest.raises(DiagramSyntaxError) as raised:
        render_svg(source)
    assert raised.value.line == 2 and "cannot include" in raised.value.detail
    with pytest.raises(DiagramSyntaxError) as raised:
        render_svg("@startuml\n!include /etc/passwd\nAlice -> Bob: hi\n@enduml\n")
    assert "root:" not in str(raised.value) and "cannot include /etc/passwd" in str(raised.value)


def test_includeurl_reaches_no_network(plantuml):
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            requests.append(self.path)
            body = b"Alice -> Bob: FROM-THE-NETWORK\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = f"@startuml\n!includeurl http://127.0.0.1:{port}/x.puml\nAlice -> Bob: hi\n@enduml\n"
        assert "FROM-THE-NETWORK" in render_svg(source, RenderOptions(isolate=False))  # the server works
        reached = len(requests)
        assert reached and set(requests) == {"/x.puml"}
        with pytest.raises(DiagramSyntaxError, match="Cannot open URL"):
            render_svg(source)
        assert len(requests) == reached  # the sandboxed render never reached it
    finally:
        server.shutdown()
        server.server_close()


def test_a_runaway_render_is_stopped_at_the_timeout(plantuml):
    started = time.monotonic()
    with pytest.raises(RenderLimitError, match="did not finish within 3 s"):
        render_svg(RUNAWAY, RenderOptions(timeout_s=3))
    assert time.monotonic() - started < 8


def test_output_past_the_cap_is_an_error_not_a_cut_svg(plantuml):
    with pytest.raises(RenderLimitError, match="1000 bytes"):
        render_svg(GOOD, RenderOptions(max_output_bytes=1000))
    with pytest.raises(RenderLimitError, match="characters"):
        render_svg(GOOD, RenderOptions(max_source_chars=10))


def test_a_missing_jar_or_java_is_reported_with_how_to_install():
    with pytest.raises(PlantUMLUnavailableError, match="apt-get install plantuml"):
        render_svg(GOOD, RenderOptions(jar=Path("/nonexistent/plantuml.jar")))
    with pytest.raises(PlantUMLUnavailableError, match="Java"):
        render_svg(GOOD, RenderOptions(java="/nonexistent/java"))


# --- the source in a reply -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "```plantuml\n@startuml\nA -> B\n@enduml\n```",
        "Sure! Here:\n```\n@startuml\nA -> B\n@enduml\n```\nThis shows A calling B.",
        "@startuml\nA -> B\n@enduml\nThat is the diagram.",
        "```plantuml\n@startuml\nA -> B",  # cut off by the token limit
        "```puml\nA -> B\n```",  # no markers
    ],
)
def test_the_diagram_is_extracted_from_every_reply_shape(reply):
    assert extract_diagram(reply) == "@startuml\nA -> B\n@enduml\n"


def test_a_reply_without_a_diagram_gives_no_source():
    assert extract_diagram("I cannot draw that.\n```python\nprint(1)\n```") == ""
    assert extract_diagram("```\n@startuil, @endumiul;\nclass ATM(BaseUI):\n```") == ""  # SmolLM2's


# --- the loop with scripted fake models -----------------------------------------------------------------------


def test_a_syntax_error_is_fed_back_and_the_second_diagram_renders(plantuml, history):
    recorder = PromptRecorder()
    replies = iter([AIMessage(f"```plantuml\n{BROKEN}```"), AIMessage(f"```plantuml\n{GOOD}```")])
    chat = GenericFakeChatModel(messages=replies, callbacks=[recorder])
    diagram = generate_diagram("Alice greets Bob", chat, history, DiagramOptions(max_retries=2))
    assert [a.ok for a in diagram.attempts] == [False, True]
    first, second = diagram.attempts
    assert first.reason == "Syntax Error? at line 3" and first.output == "Line 3: `foo bar {{` -> Syntax Error?"
    assert first.svg == "" and first.source == BROKEN
    assert diagram.ok and not diagram.first_try and diagram.rounds == 2
    assert diagram.source == GOOD and "<svg" in diagram.svg and diagram.svg == second.svg
    assert len(recorder.prompts) == 2
    assert "Alice greets Bob" in recorder.prompts[0] and "foo bar {{" not in recorder.prompts[0]
    assert "Line 3: `foo bar {{` -> Syntax Error?" in recorder.prompts[1]  # the error, with the line, fed back
    assert "Alice greets Bob" in recorder.prompts[1]  # and the task again
    records = history.records()
    assert [r.role for r in records] == ["system", "human", "ai", "human", "ai"]
    assert [r.metadata["attempt"] for r in records] == [1, 1, 1, 2, 2]
    assert {r.metadata["task"] for r in records} == {"diagram"}
    assert "Syntax Error?" in records[3].content
    assert diagram.usage.successful_requests == 2 and diagram.usage.total_tokens > 0


def test_when_retries_run_out_the_last_diagram_is_kept_and_nothing_rendered(plantuml, history):
    chat = FakeListChatModel(responses=[f"```plantuml\n{BROKEN}```", "Sorry, I cannot draw.", "Still no."])
    diagram = generate_diagram("Alice greets Bob", chat, history, DiagramOptions(max_retries=2))
    assert diagram.rounds == 3 and not diagram.ok and diagram.svg == ""
    assert [a.reason for a in diagram.attempts][1:] == ["no diagram in the reply"] * 2
    assert diagram.best.number == 1 and diagram.source == BROKEN  # the only attempt that held a diagram


def test_max_retries_zero_is_a_single_shot(plantuml, history):
    chat = FakeListChatModel(responses=[f"```plantuml\n{BROKEN}```", f"```plantuml\n{GOOD}```"])
    diagram = generate_diagram("Alice greets Bob", chat, history, DiagramOptions(max_retries=0))
    assert diagram.rounds == 1 and not diagram.ok


def test_an_empty_description_or_a_missing_jar_fails_before_any_request(history):
    chat = FakeListChatModel(responses=[GOOD])
    with pytest.raises(CodeGenerationError, match="empty"):
        generate_diagram("  ", chat, history)
    options = DiagramOptions(render=RenderOptions(jar=Path("/nonexistent.jar")))
    with pytest.raises(PlantUMLUnavailableError):
        generate_diagram("Alice greets Bob", chat, history, options)
    assert history.records() == []


# --- the loop against the real llama.cpp server ---------------------------------------------------------------


@pytest.mark.slow
def test_the_loop_against_the_llama_cpp_server(plantuml, llama_server, settings, monkeypatch, history):
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server)
    chat = limit_reply_tokens(get_chat_model("openai:local"), 200)
    scenario = "A customer logs in to the web shop; the shop checks the password with the user service."
    diagram = generate_diagram(scenario, chat, history, DiagramOptions(max_retries=1))
    assert 1 <= diagram.rounds <= 2 and (diagram.ok or diagram.rounds == 2)  # the small model may fail
    for attempt in diagram.attempts:
        assert attempt.usage.prompt_tokens > 0 and 0 < attempt.usage.completion_tokens <= 200
        assert attempt.ok == ("<svg" in attempt.svg) and attempt.ok == (attempt.reason == "")
        assert attempt.ok or attempt.output
    assert diagram.usage.successful_requests == diagram.rounds
    assert diagram.ok == ("<svg" in diagram.svg)
    records = history.records()
    assert [r.role for r in records][:3] == ["system", "human", "ai"]
    assert sum(r.role == "ai" for r in records) == diagram.rounds
    assert all(r.model for r in records if r.role == "ai")
