"""Where a namespace publishes, against the real Pub/Sub emulator: the recorded topic, replay, --topic, the
emulator host from Settings, the gcloud notice, and a process killed with acknowledgements unwritten."""

import logging
import subprocess
import sys

import pytest
from click.testing import CliRunner
from langchain_core.messages import HumanMessage

from my_llm import PubSubChatMessageHistory, Settings
from my_llm.cli import main as my_llm
from my_llm.log import Delivery, MessageStore, recorded_destination
from my_llm.log.destination import say_gcloud_project, warn_other_topic
from tests.pubsub_helpers import ensure_topic, pull_all, subscribe

PROJECT = "my-llm-test"


def _topic_and_subscription(topic_id: str, name: str):
    return subscribe(PROJECT, ensure_topic(PROJECT, topic_id), name)


def _pending(namespace: str) -> list:
    settings = Settings.from_env()
    delivery = Delivery(MessageStore(settings.message_history, namespace))
    try:
        return delivery.pending()
    finally:
        delivery.close()


_ADD_DURING_THE_OUTAGE = """
from my_llm import PubSubChatMessageHistory
history = PubSubChatMessageHistory("custom", pubsub_topic="team-log")
for i in range(100):
    history.add_user_message(f"during {i}")
history.close(timeout=0)
"""


@pytest.mark.emulator
def test_a_custom_topic_survives_an_outage_and_replay_sends_there_only(own_emulator):
    custom, default = _topic_and_subscription("team-log", "team"), _topic_and_subscription("my-llm-custom", "dflt")
    history = PubSubChatMessageHistory("custom", pubsub_topic="team-log", settings=Settings.from_env())
    for i in range(100):
        history.add_user_message(f"before {i}")
    assert history.close(timeout=60) == 0
    before = pull_all(*custom, expected=100)
    assert len(before) == 100

    own_emulator.stop()
    # A process that adds 100 more and exits during the outage (so no client of it retries afterwards).
    done = subprocess.run([sys.executable, "-c", _ADD_DURING_THE_OUTAGE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(_pending("custom")) == 100

    own_emulator.start()  # topics live in memory: a restarted emulator has none
    custom, default = _topic_and_subscription("team-log", "team"), _topic_and_subscription("my-llm-custom", "dflt")
    result = CliRunner().invoke(my_llm, ["replay", "custom", "--timeout", "60"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert f"projects/{PROJECT}/topics/team-log" in result.output and "│ 100 " in result.output
    after = pull_all(*custom, expected=100)
    assert set(before) | set(after) == {record.id for record in history.records()}
    assert len(set(before) | set(after)) == 200
    assert pull_all(*default, expected=1, timeout_s=3) == {}
    assert _pending("custom") == []


@pytest.mark.emulator
def test_replay_topic_overrides_and_the_first_publish_records_the_destination(emulator_env, monkeypatch):
    monkeypatch.setenv("MY_LLM_PUBLISH", "off")
    offline = PubSubChatMessageHistory("override", settings=Settings.from_env())
    assert offline.publisher is None
    for i in range(3):
        offline.add_user_message(f"kept {i}")
    monkeypatch.delenv("MY_LLM_PUBLISH")
    subscription = _topic_and_subscription("elsewhere", "elsewhere")
    result = CliRunner().invoke(my_llm, ["replay", "override", "--topic", f"projects/{PROJECT}/topics/elsewhere"])
    assert result.exit_code == 0, result.output
    assert set(pull_all(*subscription, expected=3)) == {record.id for record in offline.records()}
    assert recorded_destination(offline.store.folder).topic_path == f"projects/{PROJECT}/topics/elsewhere"
    listed = CliRunner().invoke(my_llm, ["namespaces"], env={"COLUMNS": "300"})
    assert f"projects/{PROJECT}/topics/elsewhere" in listed.output
    no_namespace = CliRunner().invoke(my_llm, ["replay", "--topic", "elsewhere"])
    assert no_namespace.exit_code == 2 and "NAMESPACE" in no_namespace.output


@pytest.mark.emulator
def test_a_history_given_another_topic_says_so_once(emulator_env, caplog):
    warn_other_topic.cache_clear()
    first = PubSubChatMessageHistory("two-topics", pubsub_topic="first-topic", settings=Settings.from_env())
    first.add_user_message("records the destination")
    first.close()
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            PubSubChatMessageHistory("two-topics", pubsub_topic="second-topic", settings=Settings.from_env())
    warnings = [r.getMessage() for r in caplog.records if "recorded when it was first used" in r.getMessage()]
    assert len(warnings) == 1
    assert "topics/first-topic" in warnings[0] and "topics/second-topic" in warnings[0]
    assert "my-llm replay two-topics" in warnings[0] and "--topic" in warnings[0]


@pytest.mark.emulator
def test_the_emulator_host_comes_from_settings_not_only_the_environment(pubsub_emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)  # for the test's own subscriber
    subscription = _topic_and_subscription("my-llm-from-settings", "from-settings")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens there
    settings = Settings(
        message_history=tmp_path / "logs",
        chroma_db_path=tmp_path / "chroma",
        google_cloud_project=PROJECT,
        pubsub_emulator_host=pubsub_emulator,
    )
    history = PubSubChatMessageHistory("from-settings", settings=settings)
    history.add_user_message("through the configured emulator")
    assert history.close(timeout=30) == 0
    assert history.outbox.pending() == []
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    assert list(pull_all(*subscription, expected=1)) == [history.records()[0].id]


def test_a_project_from_gcloud_is_named_with_the_topic_and_how_to_turn_publishing_off(isolated_env, caplog):
    gcloud = isolated_env / "gcloud" / "configurations"
    gcloud.mkdir(parents=True)
    (gcloud / "config_default").write_text("[core]\nproject = someones-project\n")
    say_gcloud_project.cache_clear()
    with caplog.at_level(logging.WARNING):
        history = PubSubChatMessageHistory("noticed", settings=Settings.from_env())
        PubSubChatMessageHistory("noticed", settings=Settings.from_env())
    assert history.publisher.topic_path == "projects/someones-project/topics/my-llm-noticed"
    notices = [r.getMessage() for r in caplog.records if "gcloud" in r.getMessage()]
    assert len(notices) == 1
    assert "projects/someones-project/topics/my-llm-noticed" in notices[0] and "MY_LLM_PUBLISH=off" in notices[0]


def test_publishing_can_be_turned_off(isolated_env, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "explicit")
    monkeypatch.setenv("MY_LLM_PUBLISH", "off")
    assert PubSubChatMessageHistory("off", settings=Settings.from_env()).publisher is None
    result = CliRunner().invoke(my_llm, ["replay", "off"])
    assert result.exit_code == 1


_KILLED_WITH_ACKS_UNWRITTEN = """
import os, signal
from my_llm import PubSubChatMessageHistory
history = PubSubChatMessageHistory("killed")
for i in range(1000):
    history.add_user_message(f"m{i}")
assert history.flush(timeout=60) == 0  # these acknowledgements are written
for i in range(1000, 1500):
    history.add_user_message(f"m{i}")
assert history.publisher.flush(timeout=60) == 0  # acknowledged by Pub/Sub; most not yet written to disk
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.emulator
def test_pending_survives_a_kill_and_unwritten_acknowledgements_are_just_sent_again(emulator_env):
    subscription = _topic_and_subscription("my-llm-killed", "killed")
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WITH_ACKS_UNWRITTEN], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == -9, done.stderr
    ids = [record.id for record in MessageStore(Settings.from_env().message_history, "killed").read()]
    assert len(ids) == 1500
    pending = {record.id for record in _pending("killed")}
    assert pending <= set(ids[1000:])
    result = CliRunner().invoke(my_llm, ["replay", "killed", "--timeout", "60"])
    assert result.exit_code == 0, result.output
    assert _pending("killed") == []
    assert set(pull_all(*subscription, expected=1500)) == set(ids)


@pytest.mark.emulator
def test_a_session_arrives_in_order_across_publish_requests(emulator_env):
    topic = ensure_topic(PROJECT, "my-llm-ordered")
    subscriber, _ = subscribe(PROJECT, topic, "ordered-unused")
    subscription = subscriber.subscription_path(PROJECT, "ordered")
    subscriber.create_subscription(request={"name": subscription, "topic": topic, "enable_message_ordering": True})
    history = PubSubChatMessageHistory("ordered", settings=Settings.from_env())
    for i in range(1500):
        history.add_user_message(f"m{i}")
    history.add_messages([HumanMessage(f"bulk {i}") for i in range(1500)])  # one append, several requests
    assert history.close(timeout=60) == 0
    pulled = pull_all(subscriber, subscription, expected=3000)
    assert list(pulled) == [record.id for record in history.records()]
