"""The runner, exactly once on top of at-least-once delivery: from the logs on disk and from the real Pub/Sub
emulator, with a real SMTP server counting the effects. Redelivery and replay fire once; a runner killed
between the effect and the ack does not fire again; a match decided but not logged is logged once; a dry
run changes nothing; `list` shows the outcomes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import pytest

from my_llm import ChatHistory, Settings, topic_id_for
from my_llm.triggers import HistoryWriter, Ledger, PubSubSource, Runner, load_config
from tests.test_triggers_support import (
    ROOT,
    ai_record,
    append,
    mailbox_fixture,  # noqa: F401 (the fixture `mailbox`)
    run_cli,
    tool_records,
    tree_hash,
    write_config,
)

MAIL = "EMAIL: to: team@example.com\nsubject: numbers\n\nAll good.\n"
KILL_AFTER_FIRING = """
import os, signal, sys, threading
from pathlib import Path
from my_llm import Settings
from my_llm.triggers import HistoryWriter, Ledger, LogSource, PubSubSource, Runner, load_config

def kill_after_firing(handled):  # after the ledger says "recorded", before the ack / the cursor is saved
    if handled.decision == "fired":
        os.kill(os.getpid(), signal.SIGKILL)

settings, config = Settings.from_env(), load_config(Path(sys.argv[1]))
ledger = Ledger(config.ledger_path(settings.message_history))
names = config.namespaces()
if sys.argv[2] == "pubsub":
    source = PubSubSource(settings.google_cloud_project, names, config.subscription)
else:
    source = LogSource(settings.message_history, names, ledger, from_start=True)
source.start()
runner = Runner(config.triggers, ledger, HistoryWriter(settings), on_handled=kill_after_firing)
runner.run(source.batches(threading.Event(), once=True))
"""


def _config(tmp_path, mailbox, namespace="analytics", extra=""):
    return write_config(
        tmp_path,
        f"""\
        ledger = "ledger.sqlite"

        [[trigger]]
        kind = "email"
        namespaces = ["{namespace}"]
        allow = ["team@example.com"]
        smtp = "{mailbox.url}"

        [[trigger]]
        name = "shop"
        kind = "sql"
        namespaces = ["{namespace}"]
        database = "sqlite:///shop.db"
        {extra}
        """,
    )


def _shop(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "shop.db") as connection:
        connection.execute("CREATE TABLE orders (id INTEGER)")
        connection.executemany("INSERT INTO orders VALUES (?)", [(n,) for n in range(5)])
    connection.close()


def _kill_after_firing(tmp_path, config, source):
    script = tmp_path / "kill_after_firing.py"
    script.write_text(KILL_AFTER_FIRING, encoding="utf-8")
    child = subprocess.run(
        [sys.executable, str(script), str(config), source],
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=60,
        capture_output=True,
    )
    assert child.returncode == -9, child.stderr.decode()[-2000:]


def test_a_record_replayed_three_times_in_the_log_fires_once(tmp_path, settings: Settings, mailbox):
    config = _config(tmp_path, mailbox)
    record = ai_record("analytics", MAIL)
    append(settings, record)
    append(settings, record)  # a replay appends the same record (same id) again
    run_cli("run", "--once", "--source", "log", "--from-start", "--config", str(config))
    append(settings, record)
    run_cli("run", "--once", "--source", "log", "--config", str(config))
    assert len(mailbox.received) == 1
    assert len(tool_records(settings, "analytics")) == 1


@pytest.mark.parametrize("log_at_first_run", [True, False])
def test_a_log_cleared_between_runs_is_finished_from_its_archive(
    tmp_path, settings: Settings, mailbox, log_at_first_run
):
    _shop(tmp_path)
    config = _config(tmp_path, mailbox)
    history = ChatHistory("analytics", session_id="s1", settings=settings)
    if log_at_first_run:
        history.add_ai_message("SQL: SELECT 'before the first run: never fires'")
    run_cli("run", "--once", "--source", "log", "--config", str(config))  # the cursor: the log's end
    before = ai_record("analytics", "SQL: SELECT count(*) FROM orders")
    history.add_records([before])
    history.clear()  # the log, with `before` in it, moves to archive/
    after = ai_record("analytics", MAIL)
    history.add_records([after])
    history.close()

    run_cli("run", "--once", "--source", "log", "--config", str(config))

    handled = {tool.metadata["trigger"]["record_id"] for tool in tool_records(settings, "analytics")}
    assert handled == {before.id, after.id}  # `before` was read from the archive
    assert len(mailbox.received) == 1


def test_killed_between_the_effect_and_the_cursor_it_does_not_fire_again(tmp_path, settings: Settings, mailbox):
    config = _config(tmp_path, mailbox)
    append(settings, ai_record("analytics", MAIL))
    _kill_after_firing(tmp_path, config, "log")
    assert len(mailbox.received) == 1

    output = run_cli("run", "--once", "--source", "log", "--config", str(config))

    assert "handled_before" in output
    assert len(mailbox.received) == 1 and len(tool_records(settings, "analytics")) == 1


class FailingWriter:
    """A writer that dies where a killed runner would: after the ledger's `decided`, before the log."""

    def write(self, record):
        raise KeyboardInterrupt("killed before the tool record was logged")

    def contains(self, record):
        return False


def test_an_outcome_decided_but_not_logged_is_logged_once_and_not_fired_again(tmp_path, settings: Settings, mailbox):
    config_path = _config(tmp_path, mailbox)
    config = load_config(config_path)
    record = ai_record("analytics", MAIL)
    append(settings, record)
    ledger = Ledger(config.ledger_path(settings.message_history))
    email = config.triggers[0]
    with pytest.raises(KeyboardInterrupt):
        Runner(config.triggers, ledger, FailingWriter()).handle_match(email, email.matches(record)[0])
    assert [entry.state for entry in ledger.unfinished()] == ["decided"]
    ledger.close()

    run_cli("run", "--once", "--source", "log", "--from-start", "--config", str(config_path))
    run_cli("run", "--once", "--source", "log", "--config", str(config_path))

    assert len(mailbox.received) == 1
    (tool,) = tool_records(settings, "analytics")
    assert tool.metadata["trigger"]["decision"] == "fired"


def test_a_dry_run_changes_nothing(tmp_path, settings: Settings, mailbox):
    _shop(tmp_path)
    config = _config(tmp_path, mailbox)
    append(settings, ai_record("analytics", "SQL: SELECT count(*) FROM orders"))
    run_cli("run", "--once", "--source", "log", "--from-start", "--config", str(config))  # a ledger exists
    append(settings, ai_record("analytics", MAIL), ai_record("analytics", "SQL: DELETE FROM orders"))
    before = tree_hash(tmp_path)

    output = run_cli("run", "--once", "--source", "log", "--dry-run", "--config", str(config))

    assert "would_fire" in output and "would_refuse" in output
    assert tree_hash(tmp_path) == before and mailbox.received == []
    run_cli("run", "--once", "--source", "log", "--config", str(config))
    assert len(mailbox.received) == 1
    listing = run_cli("list", "--config", str(config))
    assert "1 fired" in listing and "1 refused" in listing and "shop" in listing


@pytest.fixture
def namespace(emulator_env):
    return f"trig-{uuid.uuid4().hex[:8]}"


def _publish(settings: Settings, namespace: str, record, times: int = 1) -> None:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(settings.google_cloud_project, topic_id_for(namespace))
    for _ in range(times):
        publisher.publish(topic, record.to_json().encode(), **record.pubsub_attributes()).result(30)


@pytest.mark.emulator
def test_the_same_message_delivered_three_times_fires_once(tmp_path, namespace, mailbox):
    settings = Settings.from_env()
    config = _config(tmp_path, mailbox, namespace)
    run_cli("run", "--once", "--source", "pubsub", "--config", str(config))  # creates the subscription
    record = ai_record(namespace, MAIL)
    _publish(settings, namespace, record, times=3)

    output = run_cli("run", "--once", "--source", "pubsub", "--config", str(config))

    assert len(mailbox.received) == 1 and len(tool_records(settings, namespace)) == 1
    assert "3 matches: 1 fired, 2 handled_before" in output


@pytest.mark.emulator
def test_a_pubsub_dry_run_acknowledges_nothing(tmp_path, namespace, mailbox):
    settings = Settings.from_env()
    config = _config(tmp_path, mailbox, namespace)
    run_cli("run", "--once", "--source", "pubsub", "--config", str(config))
    _publish(settings, namespace, ai_record(namespace, MAIL))
    before = tree_hash(tmp_path)
    assert "would_fire" in run_cli("run", "--once", "--source", "pubsub", "--dry-run", "--config", str(config))
    assert tree_hash(tmp_path) == before and mailbox.received == []
    assert "fired" in run_cli("run", "--once", "--source", "pubsub", "--config", str(config))  # released to it
    assert len(mailbox.received) == 1


@pytest.mark.emulator
def test_killed_between_the_effect_and_the_ack_it_does_not_fire_after_redelivery(tmp_path, namespace, mailbox):
    settings = Settings.from_env()
    config_path = _config(tmp_path, mailbox, namespace)
    config = load_config(config_path)
    source = PubSubSource(settings.google_cloud_project, [namespace], config.subscription)
    topic = source.subscriber.topic_path(settings.google_cloud_project, topic_id_for(namespace))
    from google.cloud import pubsub_v1

    pubsub_v1.PublisherClient().create_topic(request={"name": topic})
    subscription = source.paths[namespace]  # the shortest deadline, so the test waits 10 s, not 60
    source.subscriber.create_subscription(request={"name": subscription, "topic": topic, "ack_deadline_seconds": 10})
    _publish(settings, namespace, ai_record(namespace, MAIL))
    _kill_after_firing(tmp_path, config_path, "pubsub")
    assert len(mailbox.received) == 1

    stop, seen = threading.Event(), []

    def on_handled(handled):
        seen.append(handled.decision)
        stop.set()  # the redelivered message was handled: stop

    give_up = threading.Timer(40, stop.set)
    give_up.start()
    ledger, writer = Ledger(config.ledger_path(settings.message_history)), HistoryWriter(settings)
    try:
        Runner(config.triggers, ledger, writer, on_handled=on_handled).run(source.batches(stop, once=False))
    finally:
        give_up.cancel()
        writer.close()

    assert seen == ["handled_before"]
    assert len(mailbox.received) == 1 and len(tool_records(settings, namespace)) == 1
    assert "0 matches" in run_cli("run", "--once", "--source", "pubsub", "--config", str(config_path))  # acked
    source.close()
