"""Delivery to the real Pub/Sub emulator: outbox, outage, replay, tombstones, exit flush."""

import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from my_llm import PubSubChatMessageHistory, Settings
from my_llm.cli import main as my_llm
from my_llm.log import read_records
from tests.pubsub_helpers import ensure_topic, pull_all, subscribe

pytestmark = pytest.mark.emulator


def _history(namespace):
    history = PubSubChatMessageHistory(namespace, settings=Settings.from_env())
    topic = ensure_topic(history.publisher.project_id, history.publisher.topic_id)
    subscriber, subscription = subscribe(history.publisher.project_id, topic, f"{namespace}-check")
    return history, subscriber, subscription


def test_1000_messages_arrive_once_each_and_leave_the_outbox_empty(emulator_env):
    history, subscriber, subscription = _history("thousand")
    for i in range(1000):
        history.add_user_message(f"message {i}")
    assert history.flush(timeout=60) == 0
    assert history.outbox.pending() == []
    pulled = pull_all(subscriber, subscription, expected=1000)
    history.close()
    assert set(pulled) == {record.id for record in history.records()}
    assert len(pulled) == 1000


def test_an_outage_keeps_everything_and_replay_delivers_it(own_emulator):
    history, subscriber, subscription = _history("outage")
    history.add_user_message("before the outage")
    assert history.flush(timeout=30) == 0

    own_emulator.stop()
    slowest = 0.0
    for i in range(500):
        started = time.perf_counter()
        history.add_user_message(f"during the outage {i}")  # must neither raise nor block
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 1.0
    records = history.records()
    assert len(records) == 501
    pending_ids = {record.id for record in history.outbox.pending()}
    assert pending_ids == {record.id for record in records[1:]}
    history.close(timeout=0)

    own_emulator.start()  # a restarted emulator is empty: the topic and subscription come back
    topic = ensure_topic("my-llm-test", "my-llm-outage")
    subscriber, subscription = subscribe("my-llm-test", topic, "outage-after")
    result = CliRunner().invoke(my_llm, ["replay", "outage", "--timeout", "60"])
    assert result.exit_code == 0, result.output
    assert "500" in result.output
    pulled = pull_all(subscriber, subscription, expected=500)
    assert pending_ids <= set(pulled)
    assert PubSubChatMessageHistory("outage", settings=Settings.from_env()).outbox.pending() == []


def test_replay_since_resends_acknowledged_records_in_the_range(emulator_env):
    history, subscriber, subscription = _history("since")
    for i in range(5):
        history.add_user_message(f"old {i}")
    assert history.flush(timeout=30) == 0
    assert len(pull_all(subscriber, subscription, expected=5)) == 5
    time.sleep(0.05)
    history.add_user_message("new")
    history.flush(timeout=30)
    pull_all(subscriber, subscription, expected=1)
    new = history.records()[-1]

    result = CliRunner().invoke(my_llm, ["replay", "since", "--since", new.created_at])
    assert result.exit_code == 0, result.output
    assert list(pull_all(subscriber, subscription, expected=1, timeout_s=10)) == [new.id]
    everything = CliRunner().invoke(my_llm, ["replay", "since", "--since", "1h"])
    assert everything.exit_code == 0
    assert len(pull_all(subscriber, subscription, expected=6)) == 6


def test_nothing_pending_means_replay_sends_nothing(emulator_env):
    history, _, _ = _history("quiet")
    history.add_ai_message("delivered")
    history.close()
    result = CliRunner().invoke(my_llm, ["replay", "quiet"])
    assert result.exit_code == 0 and "│ 0 " in result.output


def test_clear_publishes_a_tombstone_kept_with_the_archive(emulator_env):
    history, subscriber, subscription = _history("tombstone")
    history.add_user_message("forget me")
    history.clear()
    assert history.flush(timeout=30) == 0
    assert history.messages == []
    archived = list(read_records(history.store.archives()[0]))
    assert [r.content for r in archived] == ["forget me", ""]
    tombstone = archived[-1]
    assert tombstone.role == "system" and tombstone.metadata == {"event": "clear"}
    pulled = pull_all(subscriber, subscription, expected=2)
    assert json.loads(pulled[tombstone.id].data)["metadata"] == {"event": "clear"}
    assert history.outbox.pending() == []  # archived records count too, and both were acknowledged


_EXIT_WITHOUT_CLOSE = """
from my_llm import PubSubChatMessageHistory
history = PubSubChatMessageHistory("exit-hook")
for i in range(300):
    history.add_user_message(f"m{i}")
"""


def test_pending_publishes_are_flushed_when_the_process_exits(emulator_env):
    ensure_topic(emulator_env, "my-llm-exit-hook")
    done = subprocess.run([sys.executable, "-c", _EXIT_WITHOUT_CLOSE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    history = PubSubChatMessageHistory("exit-hook", settings=Settings.from_env())
    assert len(history.records()) == 300
    assert history.outbox.pending() == []


def test_it_works_as_the_history_of_a_runnable(emulator_env):
    from langchain_core.runnables.history import RunnableWithMessageHistory

    history, subscriber, subscription = _history("runnable")
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])
    chain = RunnableWithMessageHistory(
        prompt | FakeListChatModel(responses=["a cat", "you said a cat"]),
        lambda session_id: history,
        input_messages_key="question",
        history_messages_key="history",
    )
    for question in ("name an animal", "which one?"):
        chain.invoke({"question": question}, config={"configurable": {"session_id": "s"}})
    assert [(r.role, r.content) for r in history.records()] == [
        ("human", "name an animal"),
        ("ai", "a cat"),
        ("human", "which one?"),
        ("ai", "you said a cat"),
    ]
    assert history.flush(timeout=30) == 0
    assert len(pull_all(subscriber, subscription, expected=4)) == 4
