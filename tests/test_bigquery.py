"""my_llm.bigquery without servers: rows are validated before they are written, the MERGE's shape, the
sync cursor, the target from settings."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from my_llm import MessageStore, Record, Settings
from my_llm.bigquery import (
    COLUMN_NAMES,
    BigQueryError,
    Cursor,
    RowError,
    Target,
    merge_sql,
    subscription_id,
    table_schema,
    to_row,
)
from my_llm.bigquery.cursor import fingerprint


def record_data(**changes) -> dict:
    record = Record.new(
        "team",
        "s1",
        "ai",
        "hello",
        model="openai:gpt-4o-mini",
        usage={"input_tokens": 3, "output_tokens": 4, "cost_usd": 1e-06},
    )
    return json.loads(record.to_json()) | changes


def test_a_record_becomes_a_row_in_column_order():
    row = to_row(record_data(metadata=None, message={"type": "ai", "data": {"content": "hello"}}))
    assert tuple(row) == COLUMN_NAMES
    assert row["metadata"] == {} and row["message"]["type"] == "ai"
    assert row["usage"] == {"input_tokens": 3, "output_tokens": 4, "cost_usd": 1e-06}
    assert row["created_at"].endswith("Z")


def test_time_is_normalised_and_extra_usage_keys_dropped():
    row = to_row(record_data(created_at="2026-11-21T11:00:00+01:00", usage={"input_tokens": 1, "total_tokens": 9}))
    assert row["created_at"] == "2026-11-21T10:00:00.000000Z"
    assert row["usage"] == {"input_tokens": 1, "output_tokens": None, "cost_usd": None}


def test_schema_1_records_are_rows_without_a_message():
    data = record_data()
    del data["message"]
    data["schema"] = 1
    assert to_row(data)["message"] is None


@pytest.mark.parametrize(
    "changes, complaint",
    [
        ({"id": ""}, "no id"),
        ({"role": "robot"}, "role"),
        ({"namespace": "../etc"}, "namespace"),
        ({"session_id": None}, "session_id"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"schema": 3}, "schema"),
        ({"usage": {"input_tokens": -1}}, "input_tokens"),
        ({"usage": {"input_tokens": True}}, "input_tokens"),
        ({"usage": {"cost_usd": float("nan")}}, "cost_usd"),
        ({"usage": "lots"}, "usage"),
        ({"metadata": [1]}, "metadata"),
        ({"content": 7}, "content"),
    ],
)
def test_invalid_records_are_refused_before_any_write(changes, complaint):
    with pytest.raises(RowError, match=complaint):
        to_row(record_data(**changes))


def test_a_missing_required_field_is_refused():
    data = record_data()
    del data["role"]
    with pytest.raises(RowError, match="role"):
        to_row(data)
    with pytest.raises(RowError):
        to_row(["not", "an", "object"])


def test_the_table_schema_is_the_record():
    fields = {field.name: field for field in table_schema()}
    assert tuple(fields) == COLUMN_NAMES
    assert fields["created_at"].field_type == "TIMESTAMP" and fields["id"].mode == "REQUIRED"
    assert [sub.name for sub in fields["usage"].fields] == ["input_tokens", "output_tokens", "cost_usd"]
    assert fields["metadata"].field_type == "JSON" and fields["message"].field_type == "JSON"


def test_the_merge_names_its_columns_and_bounds_the_partitions():
    target = Target("p-1", "d", "messages")
    first = datetime(2026, 11, 21, 10, tzinfo=timezone.utc)
    sql = merge_sql(target, "_staging", first, datetime(2026, 11, 22, tzinfo=timezone.utc))
    assert "INSERT ROW" not in sql
    assert "INSERT (`id`, `schema`, `namespace`" in sql and "VALUES (source.`id`, source.`schema`" in sql
    assert "ON target.`id` = source.`id`" in sql
    assert (
        "BETWEEN TIMESTAMP '2026-11-21 10:00:00.000000+00:00' AND TIMESTAMP '2026-11-22 00:00:00.000000+00:00'" in sql
    )
    assert "`p-1.d.messages`" in sql and "`p-1.d._staging`" in sql


def test_the_cursor_follows_a_log_into_its_archive(tmp_path):
    store = MessageStore(tmp_path, "team")
    store.append([Record.new("team", "s", "human", f"m{i}") for i in range(3)])
    key = fingerprint(store.path)
    with Cursor(store.folder, "p.d.t") as cursor:
        assert cursor.start(store.path) == (key, 0)
        cursor.advance(key, store.path.stat().st_size)
    archived = store.archive()
    store.append([Record.new("team", "s", "human", "after")])
    with Cursor(store.folder, "p.d.t") as cursor:
        assert cursor.start(archived) == (key, archived.stat().st_size)  # the same file under its new name
        assert cursor.start(store.path) == (fingerprint(store.path), 0)  # a new live log
    with Cursor(store.folder, "p.d.other") as cursor:  # another table has its own cursor
        assert cursor.start(archived)[1] == 0


def test_a_shorter_file_is_read_again_and_a_torn_first_line_has_no_fingerprint(tmp_path):
    log = tmp_path / "team" / "messages.jsonl"
    log.parent.mkdir()
    log.write_bytes(b'{"id": "a"}\n')
    with Cursor(log.parent, "p.d.t") as cursor:
        cursor.advance(fingerprint(log), 10_000)
        assert cursor.start(log)[1] == 0
    log.write_bytes(b'{"id": "torn')
    assert fingerprint(log) is None


def test_the_target_comes_from_settings_and_the_environment(tmp_path):
    settings = Settings(message_history=tmp_path, chroma_db_path=tmp_path)
    with pytest.raises(BigQueryError, match="GOOGLE_CLOUD_PROJECT"):
        Target.from_settings(settings, environ={})
    target = Target.from_settings(settings, environ={"BIGQUERY_EMULATOR_HOST": "127.0.0.1:9050"})
    assert target.emulator_host == "http://127.0.0.1:9050" and target.project == "my-llm-local"
    assert target.table_id == "my-llm-local.my_llm.messages"
    named = Target.from_settings(
        settings, table="t", environ={"BIGQUERY_EMULATOR_HOST": "h:1", "MY_LLM_BIGQUERY_DATASET": "d"}
    )
    assert named.table_id == "my-llm-local.d.t"


def test_subscription_ids_stay_within_pubsubs_limit():
    target = Target("p", "dataset", "messages")
    assert subscription_id("my-llm-team", target) == "my-llm-team.bigquery.dataset.messages"
    long = subscription_id("my-llm-" + "n" * 250, target)
    assert len(long) == 255 and long != subscription_id("my-llm-" + "n" * 249 + "m", target)
