"""The memory's background sync (:class:`server.memory_answers.MemoryFreshener`): a real uvicorn server over the
scripted upstream (:mod:`tests.scripted_upstream`) with the local ONNX MiniLM embedder fills every user namespace's
real Chroma store every ``MY_LLM_MEMORY_SYNC_S`` seconds, so a question embeds nothing; with the setting 0 only a
question syncs; a bad setting refuses to start; an unchanged log is not read again; a failure is warned about once
and retried."""

from __future__ import annotations

import dataclasses
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from my_llm.testing import free_port
from server.logbook import Logbook
from server.memory_answers import MemoryAnswers, MemoryFreshener
from tests.scripted_upstream import ScriptedUpstream
from tests.test_server import auth, chat, cli, log_lines, new_key, server_env, start_server

EMBEDDED = re.compile(r"memory: (?P<namespace>\S+): (?P<count>\d+) records embedded in [\d.]+ s \((?P<reason>\w+)\)")
SCRIPT = [{"match": "cat called", "replies": ["Your cat is called Zanzibar [1]."]}]


@pytest.fixture(scope="module")
def upstream():
    with ScriptedUpstream(SCRIPT) as scripted:
        yield scripted


def stored_ids(tmp_path: Path, namespace: str) -> set[str]:
    """The ids in the namespace's real Chroma store (``<MESSAGE_HISTORY>/<namespace>/chroma``, collection
    ``memory``), read by a client of this process; empty when there is no store yet."""
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient

    folder = tmp_path / "message_history" / namespace / "chroma"
    if not (folder / "chroma.sqlite3").exists():
        return set()
    try:
        collection = chromadb.PersistentClient(path=str(folder)).get_collection("memory")
        return set(collection.get(include=[])["ids"])
    except Exception:  # noqa: BLE001 - not created yet, or the server is writing: the poll asks again
        return set()
    finally:
        SharedSystemClient.clear_system_cache()  # a fresh read each time


def namespace_ids(tmp_path: Path, namespace: str) -> set[str]:
    path = tmp_path / "message_history" / namespace / "messages.jsonl"
    return {line.split('"id":"', 1)[1].split('"', 1)[0] for line in path.read_text().splitlines()}


def wait_stored(tmp_path: Path, namespace: str, timeout_s: float = 120) -> set[str]:
    """Wait until the namespace's store holds every record of its log; returns the ids."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        wanted, stored = namespace_ids(tmp_path, namespace), stored_ids(tmp_path, namespace)
        if wanted and wanted <= stored:
            return stored
        time.sleep(0.25)
    raise AssertionError(f"{namespace}'s store holds {len(stored)} of its {len(wanted)} records after {timeout_s} s")


def embedded(log: Path) -> list[tuple[str, int, str]]:
    """The server log's ``(namespace, records embedded, reason)`` lines."""
    return [(m["namespace"], int(m["count"]), m["reason"]) for m in EMBEDDED.finditer(log.read_text())]


def ask(url: str, key: str, question: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/memory/ask", json={"question": question, "k": 4}, headers=auth(key), timeout=180)


def test_the_store_is_filled_in_the_background_and_a_question_embeds_nothing(tmp_path, upstream):
    env = server_env(tmp_path, upstream.url, MY_LLM_MEMORY_SYNC_S="0.5", MY_LLM_RATE_LIMIT="1000/minute")
    key = new_key(env, "alice")
    made = cli(env, "users", "key", "alice", "--namespace", "work")
    assert made.returncode == 0, made.stderr
    work_key = made.stdout.strip().splitlines()[-1]
    server_log = tmp_path / "server.log"
    server = start_server(env, server_log)
    try:
        assert "background sync every 0.5 s" in server_log.read_text()
        for n in range(12):
            assert chat(server.url, key, f"Note {n}: my cat is called Zanzibar and likes sardine number {n}.",
                        f"pets-{n % 3}").status_code == 200  # fmt: skip
        assert chat(server.url, work_key, "The Zanzibar report is due Friday.", "report").status_code == 200
        alice = wait_stored(tmp_path, "user-alice")
        assert len(alice) == 24 and alice == {r["id"] for r in log_lines(tmp_path, "alice")}
        assert len(wait_stored(tmp_path, "user-alice.key-work")) == 2  # every namespace of the user
        lines = embedded(server_log)
        assert {(ns, reason) for ns, _, reason in lines} == {("user-alice", "background"),
                                                             ("user-alice.key-work", "background")}  # fmt: skip
        assert sum(count for ns, count, _ in lines if ns == "user-alice") == 24  # each record embedded once

        time.sleep(1.5)  # idle rounds: nothing is embedded again
        assert embedded(server_log) == lines
        started = time.monotonic()
        answered = ask(server.url, key, "What is my cat called?")
        took = time.monotonic() - started
        assert answered.status_code == 200, answered.text
        assert any("Zanzibar" in s["excerpt"] for s in answered.json()["sources"])
        assert not [line for line in embedded(server_log) if line[2] == "question"], embedded(server_log)

        # New turns (and the question and answer just logged) are embedded by the next rounds, not by a question.
        assert chat(server.url, key, "My dog is called Biscuit.", "pets-9").status_code == 200
        assert len(wait_stored(tmp_path, "user-alice")) == 28
        assert ask(server.url, key, "What is my dog called?").status_code == 200
        assert not [line for line in embedded(server_log) if line[2] == "question"], embedded(server_log)
        print(f"question over 24 synced records: {took:.2f} s")
    finally:
        server.stop()
    assert "Traceback" not in server_log.read_text()


def test_with_the_setting_0_only_a_question_syncs(tmp_path, upstream):
    env = server_env(tmp_path, upstream.url, MY_LLM_MEMORY_SYNC_S="0")
    key = new_key(env, "alice")
    server_log = tmp_path / "server.log"
    server = start_server(env, server_log)
    try:
        assert "background sync off" in server_log.read_text()
        for n in range(3):
            assert chat(server.url, key, f"My cat is called Zanzibar ({n}).", "pets").status_code == 200
        time.sleep(2)
        assert stored_ids(tmp_path, "user-alice") == set() and embedded(server_log) == []
        answered = ask(server.url, key, "What is my cat called?")
        assert answered.status_code == 200, answered.text
        assert any("Zanzibar" in s["excerpt"] for s in answered.json()["sources"])
        assert embedded(server_log) == [("user-alice", 6, "question")]
        assert len(stored_ids(tmp_path, "user-alice")) == 6
    finally:
        server.stop()


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_a_bad_setting_refuses_to_start(tmp_path, value):
    env = server_env(tmp_path, "http://127.0.0.1:9/v1", MY_LLM_MEMORY_SYNC_S=value)
    argv = [sys.executable, "-m", "server.cli", "serve", "--port", str(free_port())]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"MY_LLM_MEMORY_SYNC_S={value!r} did not stop the server from starting")
    assert done.returncode != 0
    assert f"MY_LLM_MEMORY_SYNC_S={value!r} is not a number of seconds >= 0" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unchanged_log_is_not_read_again(settings):
    logbook = Logbook(settings)
    answers = MemoryAnswers(logbook, settings)
    try:
        logbook.log("user-alice", "pets", "human", "My cat is called Zanzibar.")
        logbook.log("user-bob", "pets", "human", "My dog is called Biscuit.")
        logbook.log("other", "s", "human", "not a user's namespace")
        assert answers.sync_changed() == ["user-alice", "user-bob"]
        reads = []
        history = logbook.history("user-alice")
        read = history.records
        history.records = lambda: reads.append(1) or read()  # counts the reads of alice's log
        assert answers.sync_changed() == [] and reads == []  # one stat per namespace, nothing read
        logbook.log("user-alice", "pets", "ai", "Noted: Zanzibar.")
        assert answers.sync_changed() == ["user-alice"] and reads == [1]
        assert answers._namespaces["user-alice"].retriever.count() == 2
        live = answers.sync("user-alice")  # the question path's sync: nothing changed, nothing embedded
        assert len(live) == 2 and answers._namespaces["user-alice"].synced[0] == 2
    finally:
        logbook.close()


def test_background_failures_are_warned_once_and_retried(settings, caplog):
    logbook = Logbook(settings)
    logbook.log("user-alice", "pets", "human", "My cat is called Zanzibar.")
    broken = dataclasses.replace(settings, embeddings=str(settings.message_history / "no-such-model"))
    answers = MemoryAnswers(logbook, broken)
    freshener = MemoryFreshener(answers, 0.05)
    caplog.set_level(logging.INFO, logger="uvicorn.error.memory")
    try:
        freshener.start()
        time.sleep(0.6)  # about ten rounds
        assert freshener._thread.is_alive()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "no-such-model" in warnings[0].getMessage(), caplog.text
        answers.settings = settings  # the embedder is back: the next round syncs
        deadline = time.monotonic() + 60
        while "records embedded" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
        assert answers._namespaces["user-alice"].retriever.count() == 1
        started = time.monotonic()
        freshener.stop()
        assert not freshener._thread.is_alive() and time.monotonic() - started < 1  # an Event, not a sleep
    finally:
        freshener.stop()
        logbook.close()


class _Recorder:
    """A fake embedder that records, per instance, the batch sizes it was asked to embed and its thread count."""

    def __init__(self, made: list) -> None:
        self.threads, self.batches = None, []
        made.append(self)

    def embed_documents(self, texts):
        self.batches.append(len(texts))
        return [[float(len(text))] for text in texts]

    def embed_query(self, text):
        return [float(len(text))]


def test_background_embedding_uses_its_own_one_thread_instance_in_paced_batches():
    import threading

    from server import memory_answers

    made: list[_Recorder] = []
    paced = memory_answers._PacedEmbeddings(lambda: _Recorder(made))
    texts = [f"text {i}" for i in range(70)]
    assert paced.embed_documents(texts) == [[float(len(t))] for t in texts]  # a question's thread: at once
    assert len(made) == 1 and made[0].batches == [70]

    stop, result = threading.Event(), {}

    def background() -> None:
        memory_answers._BACKGROUND.stop = stop
        result["vectors"] = paced.embed_documents(texts)

    worker = threading.Thread(target=background)
    worker.start()
    worker.join(10)
    assert result["vectors"] == [[float(len(t))] for t in texts]  # same vectors, in order
    assert len(made) == 2 and made[1].threads == 1 and made[1].batches == [32, 32, 6]
    assert made[0].batches == [70]  # the questions' instance was not used in the background
