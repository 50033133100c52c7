"""A shared Chroma server: ``CHROMA_HOST`` makes every retriever use ``chromadb.HttpClient``. A real
``chroma run`` (the CLI ships with chromadb) serves one memory to two processes with logs of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from my_llm import ConfigError, Record, Settings
from my_llm.memory import (
    DOCUMENT_KEY,
    MEMORY_DOCUMENTS,
    DocumentSettings,
    document_tag,
    memory_documents,
    shared_record,
    transcript_line,
)
from my_llm.retrieval import (
    HybridRetriever,
    ScoredDocument,
    VectorStoreUnavailableError,
    parse_chroma_host,
    remote_collection_name,
)
from my_llm.testing import ServerProcess, free_port

# One machine of the team: its own MESSAGE_HISTORY, the shared CHROMA_HOST. argv: what, session, text...
MACHINE = r"""
import json, sys
from my_llm import PubSubChatMessageHistory
from my_llm.memory import memory_retriever

what, session, *texts = sys.argv[1:]
memory = PubSubChatMessageHistory("team", session_id=session)
if what == "say":
    for text in texts:
        memory.add_user_message(text)
    print(json.dumps({"added": memory.save_vectorstore_memory()}))
elif what == "clear":
    memory.clear()
    print(json.dumps({"added": memory.save_vectorstore_memory()}))
else:
    retriever = memory_retriever(memory, memory.embeddings)
    hits = retriever.search(texts[0], k=3, where={"task": {"$ne": "question_memory"}})
    print(json.dumps({"count": retriever.count(), "hits": [hit.text.split("\n")[0] for hit in hits]}))
memory.close()
"""


# question_memory on one machine, with a chat model that records its prompt: the records it cited, the prompt.
ASK = r"""
import json, sys
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from my_llm import PubSubChatMessageHistory

prompts = []


class Recording(FakeListChatModel):
    def _call(self, messages, stop=None, run_manager=None, **kwargs):
        prompts.append("\n".join(str(m.content) for m in messages))
        return super()._call(messages, stop, run_manager, **kwargs)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        prompts.append("\n".join(str(m.content) for m in messages))
        yield from super()._stream(messages, stop, run_manager, **kwargs)


memory = PubSubChatMessageHistory("team-answers", session_id=sys.argv[1], chat=Recording(responses=["In the vault."]))
if sys.argv[2] == "say":
    memory.add_user_message(sys.argv[3])
    memory.add_ai_message(sys.argv[4])
    memory.save_vectorstore_memory()
    print(json.dumps({"ids": [r.id for r in memory.records()]}))
else:
    answer = memory.question_memory(sys.argv[3], k=2)
    cited = [[r.id, r.source, r.role, r.session_id, r.content] for r in answer.messages]
    logged = memory.records()[-1].metadata["sources"]
    print(json.dumps({"cited": cited, "prompt": prompts[0], "logged": logged}))
memory.close()
"""


@pytest.fixture(autouse=True)
def release_chroma():
    """Chroma keeps every client's database open for the process's life (about 10 file descriptors each):
    release them after each test, so a long test session does not run out."""
    yield
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """``chroma run`` on a free port of 127.0.0.1 for this module; yields its ``host:port``."""
    chroma = Path(sys.executable).with_name("chroma")
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    argv = [chroma, "run", "--path", folder / "data", "--host", "127.0.0.1", "--port", port]
    server = ServerProcess(
        argv, port, folder / "server.log", name="The Chroma server", ready_path="/api/v2/heartbeat"
    ).start()
    try:
        yield server.host
    finally:
        server.stop()


def machine(home: Path, data_home: Path, chroma_host: str, *argv: str, script: str = MACHINE) -> subprocess.Popen:
    env = {
        **os.environ,
        "MESSAGE_HISTORY": str(home),
        "CHROMA_HOST": chroma_host,
        "MY_LLM_PUBLISH": "off",
        "XDG_DATA_HOME": str(data_home),  # the embedder's ONNX export: shared by both, never the user's
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    return subprocess.Popen([sys.executable, "-c", script, *argv], env=env, stdout=subprocess.PIPE, text=True)


def result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_processes_index_and_query_one_memory_through_the_server(chroma_server, tmp_path):
    alice, bob, data_home = tmp_path / "alice", tmp_path / "bob", tmp_path / "xdg-data"
    said = [
        machine(alice, data_home, chroma_server, "say", "a1", "The deploy key lives in the vault under ops/deploy."),
        machine(bob, data_home, chroma_server, "say", "b1", "Our staging database is Postgres 16 on port 5433."),
    ]
    assert [result(p)["added"] for p in said] == [1, 1]  # at the same time, into one collection

    from_bob = result(machine(bob, data_home, chroma_server, "ask", "b1", "Where does the deploy key live?"))
    from_alice = result(machine(alice, data_home, chroma_server, "ask", "a1", "Which database runs staging?"))
    assert from_bob["count"] == from_alice["count"] == 2
    assert from_bob["hits"][0].startswith("user: The deploy key lives in the vault")  # Alice's, found by Bob
    assert from_alice["hits"][0].startswith("user: Our staging database is Postgres 16")
    assert not (alice / "team" / "chroma").exists() and not (bob / "team" / "chroma").exists()  # vectors remote

    # Saving again adds nothing and removes nothing of the other machine; clear() removes only its own.
    assert result(machine(bob, data_home, chroma_server, "say", "b1"))["added"] == 0
    assert result(machine(alice, data_home, chroma_server, "clear", "a1"))["added"] == 0
    left = result(machine(bob, data_home, chroma_server, "ask", "b1", "Where does the deploy key live?"))
    assert left["count"] == 1 and left["hits"][0].startswith("user: Our staging database")


@pytest.mark.slow
def test_an_answer_cites_the_records_of_another_machine_from_the_shared_store(chroma_server, tmp_path):
    alice, bob, data_home = tmp_path / "alice", tmp_path / "bob", tmp_path / "xdg-data"
    key = "Where does the deploy key live?"
    said = result(machine(alice, data_home, chroma_server, "a1", "say", key, "In the vault, under ops/deploy.",
                          script=ASK))["ids"]  # fmt: skip
    result(machine(bob, data_home, chroma_server, "b1", "say", "Lunch at noon?", "Yes, at the canteen.", script=ASK))

    asked = result(machine(bob, data_home, chroma_server, "b1", "ask", "Where is the deploy key kept?", script=ASK))
    cited = {row[0]: row[1:] for row in asked["cited"]}
    assert cited[said[1]] == ["shared", "ai", "a1", "In the vault, under ops/deploy."]  # Alice's, not in Bob's log
    assert set(said) <= set(cited) and set(asked["logged"]) == set(cited)  # Bob's answer record cites it too
    assert "assistant: In the vault, under ops/deploy." in asked["prompt"]
    assert f"user: {key}" in asked["prompt"]
    assert "ops/deploy" not in (bob / "team-answers" / "messages.jsonl").read_text()  # only the server has it


@pytest.mark.parametrize(
    "settings",
    [MEMORY_DOCUMENTS, DocumentSettings(turn_repeat=2, date=False), DocumentSettings(turn_repeat=2, date=True)],
    ids=str,
)
def test_a_shared_hit_reads_back_as_the_record_it_was_built_from(settings):
    first = Record.new("team", "s1", "human", "Where is the key? (8 May 2023)")
    second = Record.new("team", "s1", "ai", "In the vault.\nUnder ops/deploy.")
    for original, document in zip([first, second], memory_documents([first, second], settings), strict=True):
        metadata = {**document.metadata, DOCUMENT_KEY: document_tag(settings)}
        rebuilt = shared_record(ScoredDocument(document.id, 1.0, document.text, metadata, 1, 1), "team")
        assert transcript_line(rebuilt) == transcript_line(original)
        assert (rebuilt.id, rebuilt.role, rebuilt.session_id, rebuilt.content, rebuilt.source) == (
            original.id, original.role, original.session_id, original.content, "shared"
        )  # fmt: skip
    assert shared_record(ScoredDocument("x", 1.0, "user: hi", {"role": "human"}, 1, None), "team") is None


def test_a_server_that_does_not_answer_is_a_clear_error(tmp_path):
    settings = Settings(message_history=tmp_path, chroma_db_path=tmp_path, chroma_host=f"127.0.0.1:{free_port()}")
    retriever = HybridRetriever(tmp_path / "ns" / "chroma", embeddings=None, settings=settings)
    with pytest.raises(VectorStoreUnavailableError, match="chroma run"):
        retriever.count()
    assert not (tmp_path / "ns").exists()


def test_chroma_host_values():
    assert parse_chroma_host("chroma.internal") == ("chroma.internal", 8000, False)
    assert parse_chroma_host("127.0.0.1:8123") == ("127.0.0.1", 8123, False)
    assert parse_chroma_host("[::1]:9000") == ("::1", 9000, False)
    assert parse_chroma_host("https://chroma.example.com") == ("chroma.example.com", 443, True)
    assert parse_chroma_host("http://chroma.example.com:8001/") == ("chroma.example.com", 8001, False)
    for bad in ("", ":8000", "host:port", "host:70000", "ftp://host", "http://host/path"):
        with pytest.raises(ConfigError, match="CHROMA_HOST"):
            parse_chroma_host(bad)


def test_remote_collections_are_named_after_the_index():
    assert remote_collection_name("memory", Path("/home/a/history/debugger/chroma")) == "memory-debugger"
    assert remote_collection_name("repo", Path("/data/chroma/click-0123456789/chroma")) == "repo-click-0123456789"
    odd = remote_collection_name("memory", Path("/h/ends_with_dot./chroma"))
    assert odd.startswith("memory-") and len(odd) == len("memory-") + 16
