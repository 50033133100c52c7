"""BigQuery landing against real parts: bqemulator (tests/bq_fixtures.py) and the Pub/Sub emulator (conftest).

Exactly once, every way a record can arrive: the sink (also killed mid-stream and restarted), sync after the
sink, sync twice, sync after a clear and a ChatGPT import; setup twice changes nothing; the usage report
from DuckDB over the logs equals the one from the emulator's table.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from google.api_core.exceptions import NotFound
from google.cloud.bigquery import LoadJobConfig

from my_llm import MessageStore, PubSubChatMessageHistory, Record, Settings
from my_llm.bigquery import (
    BY,
    BigQueryEngine,
    LocalEngine,
    bigquery_client,
    local_logs,
    pubsub_clients,
    row_line,
    subscription_id,
    sync_namespace,
    table_schema,
    to_row,
    usage_report,
)
from my_llm.cli_bigquery import bigquery, usage
from my_llm.testing import log_tail
from tests import bq_fixtures
from tests.bq_fixtures import table_counts

pytestmark = pytest.mark.emulator
bq_emulator, bq_target = bq_fixtures.bq_emulator, bq_fixtures.bq_target  # the fixtures, for pytest to find
SAMPLE = Path(__file__).resolve().parents[1] / "chatgpt_export" / "sample_conversations.json"
SINK = "import sys; from my_llm.cli_bigquery import bigquery; sys.exit(bigquery())"


def invoke(*args: str):
    result = CliRunner().invoke(bigquery, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def sync(target, namespace: str, batch_rows: int = 100_000):
    store = MessageStore(Settings.from_env().message_history, namespace)
    return sync_namespace(bigquery_client(target), target, store, batch_rows=batch_rows)


def add_through_history(namespace: str, count: int, sessions: int = 50) -> None:
    """``count`` records through one PubSubChatMessageHistory, spread over ``sessions`` sessions (each its
    own ordering key: the Pub/Sub emulator delivers one message per key at a time until it is acknowledged)."""
    history = PubSubChatMessageHistory(namespace)
    for n in range(count):
        history.add_records([Record.new(namespace, f"session-{n % sessions}", "human", f"message {n}")])
    assert history.close() == 0  # every publish acknowledged


class SinkProcess:
    """``my-llm bigquery sink`` as a child process (to be killed), its output in ``log``."""

    def __init__(self, subscription: str, log: Path, batch_rows: int = 200) -> None:
        argv = [sys.executable, "-c", SINK, "sink", "--subscription", subscription]
        argv += ["--batch-rows", str(batch_rows), "--batch-seconds", "0.2"]
        self.log = log
        with open(log, "ab") as output:
            self.process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=dict(os.environ))

    def stop(self, how: int = signal.SIGTERM) -> int:
        self.process.send_signal(how)
        return self.process.wait(timeout=60)


def wait_for_rows(target, expected: int, sink: SinkProcess, timeout_s: float = 120.0, at_least: bool = False) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows, ids = table_counts(target)
        if (rows > 0) if at_least else ids >= expected:
            return
        assert sink.process.poll() is None, log_tail(sink.log)
        time.sleep(0.3)
    pytest.fail(f"the table has {table_counts(target)} rows, ids; waited for {expected}.\n{log_tail(sink.log)}")


@pytest.fixture
def subscribed(emulator_env, bq_target):
    """Setup for namespace ``team`` and the sink: table, views, the topic and a pull subscription; returns
    (target, subscription path)."""
    invoke("setup", "--namespace", "team", "--subscriptions", "sink")
    path = f"projects/{bq_target.project}/subscriptions/{subscription_id('my-llm-team', bq_target, 'sink')}"
    return bq_target, path


def states(output: str) -> list[str]:
    """The state column of setup's table."""
    return re.findall(r"│ (to create|to update|created|updated|exists)\s+│", output)


def test_setup_twice_makes_nothing_new(emulator_env, bq_target):
    dry = invoke("setup", "--namespace", "team", "--dry-run").output
    assert states(dry) == ["to create"] * 8  # dataset, table, 2 views, dead-letter topic and keeper, topic, sub
    client = bigquery_client(bq_target)
    with pytest.raises(NotFound):  # a dry run makes nothing
        client.get_dataset(f"{bq_target.project}.{bq_target.dataset}")
    assert states(invoke("setup", "--namespace", "team").output) == ["created"] * 8
    assert states(invoke("setup", "--namespace", "team").output) == ["exists"] * 8
    table = client.get_table(bq_target.table_id)
    assert table.time_partitioning.field == "created_at" and table.clustering_fields == ["namespace"]
    _publisher, subscriber = pubsub_clients(bq_target)
    name = subscription_id("my-llm-team", bq_target)
    found = subscriber.get_subscription(subscription=subscriber.subscription_path(bq_target.project, name))
    assert found.bigquery_config.table == bq_target.table_id and found.bigquery_config.use_table_schema
    assert found.dead_letter_policy.dead_letter_topic.endswith("/my-llm.dead-letter")


def test_sink_lands_every_record_once_and_sync_after_it_adds_nothing(subscribed, tmp_path):
    target, subscription = subscribed
    sink = SinkProcess(subscription, tmp_path / "sink.log")
    try:
        add_through_history("team", 1000)
        wait_for_rows(target, 1000, sink)
        time.sleep(1.0)  # a redelivery in flight would land now
    finally:
        assert sink.stop() == 0, log_tail(sink.log)
    assert table_counts(target) == (1000, 1000)
    assert "1000 received, 1000 inserted" in log_tail(sink.log)
    after = sync(target, "team")
    assert (after.read, after.inserted, after.present) == (1000, 0, 1000)
    assert table_counts(target) == (1000, 1000)


def test_a_sink_killed_mid_stream_and_restarted_still_lands_each_record_once(subscribed, tmp_path):
    target, subscription = subscribed
    add_through_history("team", 1000, sessions=1000)  # after a kill, the emulator redelivers a key per lease
    first = SinkProcess(subscription, tmp_path / "sink.log", batch_rows=50)
    wait_for_rows(target, 1, first, at_least=True)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert table_counts(target)[1] < 1000, "the sink finished before it was killed: nothing was tested"
    second = SinkProcess(subscription, tmp_path / "sink.log")
    try:
        # What the killed sink held comes back after its lease (10 s); the emulator also keeps handing part of
        # each redelivery to the dead stream, so the rest arrives in waves 10 s apart (30-90 s in all here).
        wait_for_rows(target, 1000, second, timeout_s=240)
        time.sleep(1.0)
    finally:
        assert second.stop() == 0, log_tail(second.log)
    assert table_counts(target) == (1000, 1000)


def test_sync_twice_adds_nothing_and_picks_up_only_what_is_new(bq_target, settings):
    invoke("setup", "--subscriptions", "none")
    store = MessageStore(settings.message_history, "team")
    store.append([Record.new("team", f"s{n % 7}", "human", f"message {n}") for n in range(250)])
    first = sync(bq_target, "team", batch_rows=100)  # three load jobs and MERGEs
    assert (first.read, first.inserted, first.rejected) == (250, 250, 0)
    assert sync(bq_target, "team").read == 0  # the cursor: nothing new, nothing read
    store.append([Record.new("team", "s", "ai", "before the clear")])
    with open(store.path, "ab") as handle:
        handle.write(b'{"not": "a record"}\n')
    store.archive()  # clear(): the log moves to archive/, a new live log starts
    store.append([Record.new("team", "s", "human", f"after {n}") for n in range(5)])
    with open(store.path, "ab") as handle:
        handle.write(b'{"schema": 2, "id": "torn')  # a writer still writing: left for later
    second = sync(bq_target, "team")
    assert (second.read, second.inserted, second.rejected) == (7, 6, 1)
    assert table_counts(bq_target) == (256, 256)
    (store.folder / "bigquery" / f"{bq_target.table_id}.json").unlink()  # a lost cursor costs a re-read only
    again = sync(bq_target, "team")
    assert (again.inserted, again.present) == (0, 256) and table_counts(bq_target) == (256, 256)


def test_a_chatgpt_import_then_sync_lands_every_imported_record(bq_target, settings):
    invoke("setup", "--subscriptions", "none")
    history = PubSubChatMessageHistory("imported", settings=settings)
    report = history.load_chatgpt_export(SAMPLE)
    history.close()
    logged = sum(1 for _ in MessageStore(settings.message_history, "imported").read())
    assert logged > 0 and report is not None
    result = invoke("sync", "imported")
    assert "imported" in result.output
    assert table_counts(bq_target, "imported") == (logged, logged)
    rows = bigquery_client(bq_target).query(
        f"SELECT COUNT(*) AS n FROM {bq_target.quoted()} WHERE source = 'chatgpt_export' AND message IS NOT NULL"
    )
    assert next(iter(rows.result()))["n"] > 0


def usage_records(namespace: str, start) -> list[Record]:
    records = []
    models = [("openai:gpt-4o-mini", 2.5e-06), ("gpt-4o", 3.3e-05), ("ollama:llama3.1", None), (None, None)]
    for n in range(120):
        model, price = models[n % len(models)]
        when = start + timedelta(hours=7 * n)
        records.append(Record.new(namespace, f"s{n % 9}", "human", f"question {n}", created_at=when))
        usage_data = {"input_tokens": 10 + n, "output_tokens": n % 13, "cost_usd": price and price * (n + 1)}
        records.append(
            Record.new(
                namespace,
                f"s{n % 9}",
                "ai",
                f"answer {n}",
                model=model,
                created_at=when,
                usage=None if model is None else usage_data,
            )  # fmt: skip
        )
    return records


def test_the_usage_report_from_duckdb_equals_the_one_from_bigquery(bq_target, settings):
    invoke("setup", "--subscriptions", "none")
    begin = datetime.now(timezone.utc) - timedelta(days=40)
    for namespace in ("alpha", "beta"):
        MessageStore(settings.message_history, namespace).append(usage_records(namespace, begin))
        sync(bq_target, namespace)
    local = LocalEngine(local_logs(settings.message_history))
    remote = BigQueryEngine(bigquery_client(bq_target), bq_target)
    for by in BY:
        for since in (None, begin + timedelta(days=10)):
            mine, theirs = usage_report(local, by, since), usage_report(remote, by, since)
            assert mine.rows == theirs.rows, (by, since)
            assert mine.totals == theirs.totals and mine.sessions == theirs.sessions, (by, since)
    assert mine.totals["requests"] > 0 and mine.totals["unpriced_requests"] > 0
    runner = CliRunner()
    local_json = runner.invoke(usage, ["--by", "day", "--json"]).output
    remote_json = runner.invoke(usage, ["--by", "day", "--json", "--bigquery"]).output
    assert local_json.replace('"duckdb"', '"bigquery"') == remote_json


def test_a_duplicate_row_counts_once(bq_target, settings):
    """A Pub/Sub BigQuery subscription writes at least once: a row landed twice is one request."""
    invoke("setup", "--subscriptions", "none")
    records = [reply for reply in usage_records("alpha", datetime.now(timezone.utc)) if reply.usage][:10]
    MessageStore(settings.message_history, "alpha").append(records)
    sync(bq_target, "alpha")
    client, engine = bigquery_client(bq_target), BigQueryEngine(bigquery_client(bq_target), bq_target)
    before = usage_report(engine, "model")
    config = LoadJobConfig(schema=table_schema(), source_format="NEWLINE_DELIMITED_JSON")
    again = io.BytesIO(row_line(to_row(json.loads(records[0].to_json()))))
    client.load_table_from_file(again, bq_target.table_id, job_config=config).result()  # not through the MERGE
    assert table_counts(bq_target) == (11, 10)
    after = usage_report(engine, "model")
    assert after.rows == before.rows and after.totals == before.totals and after.totals["requests"] == 10
