"""PubSubChatMessageHistory against disk and the real Pub/Sub emulator."""

import json
import logging
import time

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from my_llm import InvalidNamespaceError, PubSubChatMessageHistory, Settings
from my_llm.history.chat_history import _say_disk_only
from tests.pubsub_helpers import pull_all, subscribe


def test_without_a_project_messages_go_to_disk_only_and_it_is_said_once(settings, caplog):
    _say_disk_only.cache_clear()
    with caplog.at_level(logging.WARNING):
        first = PubSubChatMessageHistory("offline", settings=settings)
        PubSubChatMessageHistory("offline", settings=settings)
    assert caplog.text.count("logged to disk only") == 1
    first.add_user_message("hello")
    first.add_ai_message("hi")
    assert first.publisher is None
    assert [m.content for m in first.messages] == ["hello", "hi"]
    assert [type(m) for m in first.messages] == [HumanMessage, AIMessage]
    assert first.path == settings.message_history / "offline" / "messages.jsonl"


def test_a_bad_namespace_fails_before_anything_is_written(settings):
    for bad in ("../x", "a/b", "", "x" * 300):
        with pytest.raises(InvalidNamespaceError):
            PubSubChatMessageHistory(bad, settings=settings)
    assert not settings.message_history.exists()


def test_clear_archives_the_log(settings):
    history = PubSubChatMessageHistory("clearing", settings=settings)
    history.add_user_message("keep me")
    history.clear()
    assert history.messages == []
    archived = list((settings.message_history / "clearing" / "archive").iterdir())
    assert len(archived) == 1 and "keep me" in archived[0].read_text()


def test_ai_records_carry_model_and_token_usage(settings):
    history = PubSubChatMessageHistory("usage", settings=settings)
    reply = AIMessage(
        "4",
        usage_metadata={"input_tokens": 9, "output_tokens": 1, "total_tokens": 10},
        response_metadata={"model_name": "gpt-4o-mini"},
    )
    history.add_messages([HumanMessage("2+2?"), reply])
    human, ai = history.records()
    assert human.role == "human" and human.model is None and human.usage is None
    assert ai.model == "gpt-4o-mini"
    assert ai.usage == {"input_tokens": 9, "output_tokens": 1, "cost_usd": round((9 * 0.15 + 1 * 0.60) / 1e6, 8)}
    assert human.session_id == ai.session_id == history.session_id


@pytest.mark.emulator
def test_200_messages_through_the_history_are_pulled_back_from_pubsub(emulator_env):
    history = PubSubChatMessageHistory("pubsub-200", settings=Settings.from_env())
    assert history.publisher.topic_path == f"projects/{emulator_env}/topics/my-llm-pubsub-200"
    history.publisher.ensure_topic()
    subscriber, subscription = subscribe(emulator_env, history.publisher.topic_path, "pubsub-200-check")

    history.add_messages([HumanMessage(f"question {i}") for i in range(100)])  # bulk
    for i in range(100):  # and one at a time
        history.add_ai_message(f"answer {i}")
    assert history.flush(timeout=60) == 0

    on_disk = {record.id: record for record in history.records()}
    pulled = pull_all(subscriber, subscription, expected=200)
    history.close()
    assert len(on_disk) == 200
    assert set(pulled) == set(on_disk)
    for record_id, message in pulled.items():
        record = on_disk[record_id]
        assert json.loads(message.data) == json.loads(record.to_json())
        assert dict(message.attributes) == {
            "namespace": "pubsub-200",
            "role": record.role,
            "id": record_id,
            "schema": "2",
        }
        assert message.ordering_key == history.session_id


def test_a_dead_pubsub_server_never_costs_a_message(monkeypatch, caplog):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # discard port: nothing listens
    history = PubSubChatMessageHistory("dead-server", settings=Settings.from_env())
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        for i in range(20):
            history.add_user_message(f"kept {i}")
    elapsed = time.monotonic() - started
    assert [m.content for m in history.messages] == [f"kept {i}" for i in range(20)]
    assert caplog.text.count("safe in") == 1 and str(history.path) in caplog.text  # said once per outage
    assert elapsed < 30  # one bounded attempt, not one per message
